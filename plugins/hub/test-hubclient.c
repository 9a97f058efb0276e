/*
 * test-hubclient: the node's side of the hub (hubclient.c): the messages
 * it builds against docs/protocol.md's vectors (REGISTER signed with the
 * vector key and verified), LOOKUP padding, a STUN binding request
 * answered the way the hub answers it, the NAT kinds, host candidates.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stun/stunagent.h>
#include <stun/stunmessage.h>

#include "check.h"
#include "hardline/util.h"
#include "hubauth.h"
#include "hubclient.h"
#include "hubmsg.h"

#define KH "4edde683894d49d6c60b396ebe3c05deb97d4ab3"

static const uint8_t txid[8] = {0, 1, 2, 3, 4, 5, 6, 7};
static uint8_t kh[20], nonce[16], token[16];

static void
v4(struct hubmsg_addr *a, const char *ip, int port)
{
	memset(a, 0, sizeof *a);
	a->family = 4;
	inet_pton(AF_INET, ip, a->ip);
	a->port = (uint16_t)port;
}

static void
test_messages(void)
{
	static char hex[4096], pem[4096];
	uint8_t reg[HUBMSG_MAX], cert[HUBMSG_MAX], out[HUBMSG_MAX];
	uint8_t data[HUBMSG_SIGNED_MAX];
	struct hubmsg_cand c[5];
	struct hubmsg m, v;
	const char *why = "";
	size_t n, hn, dn;
	char got[2 * HUBMSG_MAX + 1];

	/* The certificate from the REGISTER vector. */
	hn = check_read_vector("hub-register.hex", hex, sizeof hex);
	while (hn > 0 && (hex[hn - 1] == '\n' || hex[hn - 1] == '\r'))
		hn--;
	CHECK(hl_hex_decode(hex, hn / 2, cert) == 0, "vector hex");
	CHECK(hubmsg_parse(cert, hn / 2, &v, &why) == 0, "vector: %s", why);
	check_read_vector("keyhash.cert.private", pem, sizeof pem);

	c[0].kind = HUBMSG_CAND_HOST;
	v4(&c[0].addr, "10.1.0.2", 5000);
	n = hubclient_register(reg, sizeof reg, txid, kh, nonce, v.cert,
	                       v.cert_len, pem, "11.0.0.1:7777", c, 1);
	CHECK(n > 0, "hubclient_register");
	CHECK(hubmsg_parse(reg, n, &m, &why) == 0, "register parses: %s", why);
	CHECK(m.type == HUBMSG_REGISTER && memcmp(m.keyhash, kh, 20) == 0 &&
	          memcmp(m.nonce, nonce, 16) == 0 && m.cert_len == v.cert_len &&
	          strcmp(m.hub_addr, "11.0.0.1:7777") == 0 && m.ncands == 1,
	      "register fields");
	dn = hubmsg_signed_data(nonce, kh, "11.0.0.1:7777", data, sizeof data);
	CHECK(hubauth_verify(m.cert, m.cert_len, m.sig, m.sig_len, data, dn,
	                     &why) == 0,
	      "register signature: %s", why);
	/* Everything but the (randomised) signature is the vector's. */
	CHECK(n - m.sig_len == hn / 2 - v.sig_len &&
	          memcmp(reg, cert, (size_t)(m.sig - reg) - 3) == 0,
	      "register up to the signature = the vector");
	CHECK(hubclient_register(reg, sizeof reg, txid, kh, nonce, v.cert,
	                         v.cert_len, "garbage", "11.0.0.1:7777", c,
	                         1) == 0,
	      "no REGISTER without a key");

	n = hubclient_challenge_req(out, sizeof out, txid, kh);
	hl_hex_encode(out, n, got);
	CHECK(strcmp(got, "0b0101000001020304050607010014" KH) == 0,
	      "challenge-request %s", got);
	n = hubclient_keepalive(out, sizeof out, txid, kh, token, NULL, 0);
	hl_hex_encode(out, n, got);
	CHECK(strcmp(got, "0b0105000001020304050607010014" KH
	                  "030010202122232425262728292a2b2c2d2e2f") == 0,
	      "keep-alive %s", got);

	/* LOOKUP: padded to 80 bytes; with 4 IPv4 candidates (79 bytes) a
	 * pad of zero bytes makes 82. */
	n = hubclient_lookup(out, sizeof out, txid, kh, c, 1);
	CHECK(n == 80 && hubmsg_parse(out, n, &m, &why) == 0 && m.ncands == 1,
	      "padded lookup: %zu bytes", n);
	for (int i = 1; i < 4; i++)
		c[i] = c[0];
	n = hubclient_lookup(out, sizeof out, txid, kh, c, 4);
	CHECK(n == 82 && hubmsg_parse(out, n, &m, &why) == 0 && m.ncands == 4,
	      "lookup of 79 bytes padded: %zu bytes", n);
	CHECK(hubclient_lookup(out, 60, txid, kh, c, 1) == 0,
	      "lookup needs room for its pad");
}

/* The hub's answer to a binding request (as plugins/hub/hub.c makes it). */
static size_t
stun_answer(const uint8_t *req, size_t len, const struct hubmsg_addr *to,
            uint8_t *out, size_t cap)
{
	static const uint16_t known[] = {0};
	StunAgent agent;
	StunMessage rq, rs;
	struct sockaddr_storage ss;
	socklen_t sl = hubmsg_addr_to_sa(to, &ss);

	stun_agent_init(&agent, known, STUN_COMPATIBILITY_RFC5389,
	                STUN_AGENT_USAGE_IGNORE_CREDENTIALS);
	if (stun_agent_validate(&agent, &rq, req, len, NULL, NULL) !=
	        STUN_VALIDATION_SUCCESS ||
	    !stun_agent_init_response(&agent, &rs, out, cap, &rq) ||
	    stun_message_append_xor_addr(&rs, STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS,
	                                 &ss,
	                                 sl) != STUN_MESSAGE_RETURN_SUCCESS)
		return 0;
	return stun_agent_finish_message(&agent, &rs, NULL, 0);
}

static void
test_stun(void)
{
	struct hubclient_stun s, other;
	struct hubmsg_addr at, got;
	uint8_t ans[256];
	size_t n;

	CHECK(hubclient_stun_request(&s) == 20, "binding request of 20 bytes");
	CHECK(s.buf[0] == 0 && s.buf[1] == 1 && hubmsg_demux(s.buf, s.len) == 2,
	      "a binding request, demultiplexed as STUN");
	v4(&at, "11.0.0.2", 5000);
	n = stun_answer(s.buf, s.len, &at, ans, sizeof ans);
	CHECK(n > 20, "the hub-style answer");
	CHECK(hubclient_stun_answer(&s, ans, n, &got) == 0 &&
	          hubmsg_addr_eq(&got, &at),
	      "XOR-MAPPED-ADDRESS read back");
	hubclient_stun_request(&other);
	CHECK(hubclient_stun_answer(&other, ans, n, &got) != 0,
	      "an answer to another transaction refused");
	CHECK(hubclient_stun_answer(&s, s.buf, s.len, &got) != 0,
	      "a request is no answer");
	CHECK(hubclient_stun_answer(&s, ans, n - 1, &got) != 0,
	      "a cut answer refused");

	hubclient_stun_request(&s);
	memset(&at, 0, sizeof at);
	at.family = 6;
	inet_pton(AF_INET6, "2001:db8::7", at.ip);
	at.port = 40000;
	n = stun_answer(s.buf, s.len, &at, ans, sizeof ans);
	CHECK(hubclient_stun_answer(&s, ans, n, &got) == 0 &&
	          hubmsg_addr_eq(&got, &at),
	      "an IPv6 mapped address");
}

static void
test_nat_kind(void)
{
	struct hubmsg_addr local, a, b, none;

	memset(&none, 0, sizeof none);
	v4(&local, "10.1.0.2", 5000);
	v4(&a, "11.0.0.2", 5000);
	v4(&b, "11.0.0.2", 5000);
	CHECK(hubclient_nat_kind(&local, &a, &b) == HUBCLIENT_NAT_CONE, "cone");
	b.port = 31000;
	CHECK(hubclient_nat_kind(&local, &a, &b) == HUBCLIENT_NAT_SYMMETRIC,
	      "symmetric by port");
	v4(&b, "11.0.0.9", 5000);
	CHECK(hubclient_nat_kind(&local, &a, &b) == HUBCLIENT_NAT_SYMMETRIC,
	      "symmetric by address");
	CHECK(hubclient_nat_kind(&local, &local, &local) == HUBCLIENT_NAT_NONE,
	      "no NAT");
	CHECK(hubclient_nat_kind(NULL, &local, &local) == HUBCLIENT_NAT_CONE,
	      "local unknown");
	CHECK(hubclient_nat_kind(&local, &a, &none) == HUBCLIENT_NAT_UNKNOWN,
	      "one answer missing");
	CHECK(strcmp(hubclient_nat_name(HUBCLIENT_NAT_SYMMETRIC),
	             "symmetric (a mapping per destination)") == 0,
	      "names");
}

static void
test_host(void)
{
	struct hubmsg_cand c[16];
	size_t n = hubclient_host_candidates(AF_UNSPEC, 7008, c, 16);

	for (size_t i = 0; i < n; i++) {
		char s[64];
		hubmsg_addr_str(&c[i].addr, s, sizeof s);
		printf("host candidate %s\n", s);
		CHECK(c[i].kind == HUBMSG_CAND_HOST && c[i].addr.port == 7008,
		      "candidate %s", s);
		CHECK(!(c[i].addr.family == 4 && c[i].addr.ip[0] == 127), "%s",
		      s);
		CHECK(!(c[i].addr.family == 6 && c[i].addr.ip[0] == 0xfe &&
		        (c[i].addr.ip[1] & 0xc0) == 0x80),
		      "no link-local: %s", s);
		for (size_t j = 0; j < i; j++)
			CHECK(!hubmsg_addr_eq(&c[i].addr, &c[j].addr),
			      "no duplicate %s", s);
	}
	CHECK(hubclient_host_candidates(AF_UNSPEC, 7008, c, 0) == 0, "max 0");
	CHECK(hubclient_host_candidates(AF_UNSPEC, 0, c, 16) == 0, "port 0");
	n = hubclient_host_candidates(AF_INET6, 7008, c, 16);
	for (size_t i = 0; i < n; i++)
		CHECK(c[i].addr.family == 6, "AF_INET6 only");
}

int
main(void)
{
	hl_hex_decode(KH, 20, kh);
	for (int i = 0; i < 16; i++) {
		nonce[i] = (uint8_t)(0x10 + i);
		token[i] = (uint8_t)(0x20 + i);
	}
	test_messages();
	test_stun();
	test_nat_kind();
	test_host();
	return check_done();
}
