/*
 * test-hubmsg: the hub's messages against the test vectors of
 * docs/protocol.md ("Hub messages"): every message type formatted byte for
 * byte and parsed back, the signed data of a REGISTER and the signature
 * of tests/vectors/hub-register.hex, the keyhash rule on its certificate,
 * and what the parser refuses.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "hardline/util.h"
#include "hubauth.h"
#include "hubmsg.h"

#define KH "4edde683894d49d6c60b396ebe3c05deb97d4ab3"

/* The vectors of docs/protocol.md: txid 0001..07, keyhash KH, nonce
 * 1011..1f, token 2021..2f, observed 11.0.0.2:5000. */
static const struct {
	const char *name, *hex;
} vectors[] = {
    {"challenge-request", "0b0101000001020304050607010014" KH},
    {"challenge", "0b0102000001020304050607010014" KH
                  "020010101112131415161718191a1b1c1d1e1f"},
    {"registered", "0b0104000001020304050607010014" KH
                   "030010202122232425262728292a2b2c2d2e2f0700070413880b0000"
                   "02090002005a0a00020019"},
    {"keep-alive", "0b0105000001020304050607010014" KH
                   "030010202122232425262728292a2b2c2d2e2f"},
    {"keep-alive-ack",
     "0b0106000001020304050607010014" KH "0700070413880b000002"},
    {"lookup", "0b0107000001020304050607010014" KH
               "080008010413880a01000208001401061b6020010db800000000000000"
               "0000000001"},
    {"lookup-answer", "0b0108000001020304050607010014" KH
                      "0700070413880b000002080008010413880a0100020800080204"
                      "13880b000002"},
    {"intro", "0b0109000001020304050607010014" KH
              "070007049c400b000003080008010413880a020002"},
    {"status-request", "0b010a000001020304050607"},
    {"status",
     "0b010b0000010203040506070c00137b22726567697374726174696f6e73223a317d"},
    {"error", "0b010f0000010203040506070100144edde683894d49d6c60b396ebe3c05d"
              "eb97d4ab30b00020001"},
};

static void
set_addr(struct hubmsg_addr *a, int a0, int a1, int a2, int a3, int port)
{
	memset(a, 0, sizeof *a);
	a->family = 4;
	a->ip[0] = (uint8_t)a0;
	a->ip[1] = (uint8_t)a1;
	a->ip[2] = (uint8_t)a2;
	a->ip[3] = (uint8_t)a3;
	a->port = (uint16_t)port;
}

/* The message a vector holds, built field by field. */
static void
build(const char *name, struct hubmsg *m)
{
	static const char text[] = "{\"registrations\":1}";

	memset(m, 0, sizeof *m);
	for (int i = 0; i < 8; i++)
		m->txid[i] = (uint8_t)i;
	hl_hex_decode(KH, 20, m->keyhash);
	for (int i = 0; i < 16; i++) {
		m->nonce[i] = (uint8_t)(0x10 + i);
		m->token[i] = (uint8_t)(0x20 + i);
	}
	set_addr(&m->observed, 11, 0, 0, 2, 5000);
	m->have = HUBMSG_BIT(HUBMSG_A_KEYHASH);
	if (strcmp(name, "challenge-request") == 0) {
		m->type = HUBMSG_CHALLENGE_REQ;
	} else if (strcmp(name, "challenge") == 0) {
		m->type = HUBMSG_CHALLENGE;
		m->have |= HUBMSG_BIT(HUBMSG_A_NONCE);
	} else if (strcmp(name, "registered") == 0) {
		m->type = HUBMSG_REGISTERED;
		m->have |= HUBMSG_BIT(HUBMSG_A_TOKEN) |
		           HUBMSG_BIT(HUBMSG_A_OBSERVED) |
		           HUBMSG_BIT(HUBMSG_A_LIFETIME) |
		           HUBMSG_BIT(HUBMSG_A_REFRESH);
		m->lifetime = 90;
		m->refresh = 25;
	} else if (strcmp(name, "keep-alive") == 0) {
		m->type = HUBMSG_KEEPALIVE;
		m->have |= HUBMSG_BIT(HUBMSG_A_TOKEN);
	} else if (strcmp(name, "keep-alive-ack") == 0) {
		m->type = HUBMSG_KEEPALIVE_ACK;
		m->have |= HUBMSG_BIT(HUBMSG_A_OBSERVED);
	} else if (strcmp(name, "lookup") == 0) {
		static const uint8_t v6[16] = {0x20, 0x01, 0x0d,
		                               0xb8, [15] = 1};
		m->type = HUBMSG_LOOKUP;
		m->cands[0].kind = HUBMSG_CAND_HOST;
		set_addr(&m->cands[0].addr, 10, 1, 0, 2, 5000);
		m->cands[1].kind = HUBMSG_CAND_HOST;
		m->cands[1].addr.family = 6;
		m->cands[1].addr.port = 7008;
		memcpy(m->cands[1].addr.ip, v6, 16);
		m->ncands = 2;
	} else if (strcmp(name, "lookup-answer") == 0) {
		m->type = HUBMSG_LOOKUP_ANSWER;
		m->have |= HUBMSG_BIT(HUBMSG_A_OBSERVED);
		m->cands[0].kind = HUBMSG_CAND_HOST;
		set_addr(&m->cands[0].addr, 10, 1, 0, 2, 5000);
		m->cands[1].kind = HUBMSG_CAND_SRFLX;
		set_addr(&m->cands[1].addr, 11, 0, 0, 2, 5000);
		m->ncands = 2;
	} else if (strcmp(name, "intro") == 0) {
		m->type = HUBMSG_INTRO;
		m->have |= HUBMSG_BIT(HUBMSG_A_OBSERVED);
		set_addr(&m->observed, 11, 0, 0, 3, 40000);
		m->cands[0].kind = HUBMSG_CAND_HOST;
		set_addr(&m->cands[0].addr, 10, 2, 0, 2, 5000);
		m->ncands = 1;
	} else if (strcmp(name, "status-request") == 0) {
		m->type = HUBMSG_STATUS_REQ;
		m->have = 0;
	} else if (strcmp(name, "status") == 0) {
		m->type = HUBMSG_STATUS;
		m->have = HUBMSG_BIT(HUBMSG_A_TEXT);
		m->text = text;
		m->text_len = strlen(text);
	} else if (strcmp(name, "error") == 0) {
		m->type = HUBMSG_ERROR;
		m->have |= HUBMSG_BIT(HUBMSG_A_ERROR);
		m->error = HUBMSG_E_NOT_FOUND;
	}
}

static void
test_vectors(void)
{
	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		uint8_t want[HUBMSG_MAX], out[HUBMSG_MAX];
		size_t wn = check_unhex(vectors[i].hex, want, sizeof want), n;
		struct hubmsg m, p;
		const char *why = "";
		char hex[2 * HUBMSG_MAX + 1];

		CHECK(wn > 0, "%s: vector hex", vectors[i].name);
		build(vectors[i].name, &m);
		n = hubmsg_format(&m, out, sizeof out);
		hl_hex_encode(out, n, hex);
		CHECK(n == wn && memcmp(out, want, n) == 0, "%s: formatted %s",
		      vectors[i].name, hex);
		CHECK(hubmsg_parse(want, wn, &p, &why) == 0, "%s: parse: %s",
		      vectors[i].name, why);
		CHECK(p.type == m.type && p.ncands == m.ncands &&
		          (p.have & ~HUBMSG_BIT(HUBMSG_A_CANDIDATE)) == m.have,
		      "%s: parsed fields", vectors[i].name);
		n = hubmsg_format(&p, out, sizeof out);
		CHECK(n == wn && memcmp(out, want, n) == 0,
		      "%s: parsed and formatted again", vectors[i].name);
		CHECK(hubmsg_demux(want, wn) == 1, "%s: demux",
		      vectors[i].name);
	}
}

/* The hex file tests/vectors/<name>, decoded into out. */
static size_t
read_vector(const char *name, uint8_t *out, size_t cap)
{
	static char hex[2 * HUBMSG_MAX + 8];

	if (check_read_vector(name, hex, sizeof hex) == 0)
		return 0;
	return check_unhex(hex, out, cap);
}

static void
test_register(void)
{
	uint8_t buf[HUBMSG_MAX], out[HUBMSG_MAX], data[HUBMSG_SIGNED_MAX];
	uint8_t hash[32], bad[HUBMSG_SIG_MAX];
	char kh[41], hex[2 * HUBMSG_SIGNED_MAX + 1];
	size_t n = read_vector("hub-register.hex", buf, sizeof buf), dn;
	struct hubmsg m;
	const char *why = "";

	CHECK(n == 548, "hub-register.hex: %zu bytes", n);
	CHECK(hubmsg_parse(buf, n, &m, &why) == 0, "register parses: %s", why);
	CHECK(m.type == HUBMSG_REGISTER && m.cert_len == 390 &&
	          strcmp(m.hub_addr, "11.0.0.1:7777") == 0 && m.ncands == 1,
	      "register fields");
	CHECK(hubmsg_format(&m, out, sizeof out) == n &&
	          memcmp(out, buf, n) == 0,
	      "register formatted again");

	/* The keyhash rule of docs/protocol.md on the certificate inside. */
	crypto_generichash(hash, 32, m.cert, m.cert_len, NULL, 0);
	hl_hex_encode(hash, 20, kh);
	CHECK(strcmp(kh, KH) == 0, "certificate keyhash %s", kh);

	dn = hubmsg_signed_data(m.nonce, m.keyhash, m.hub_addr, data,
	                        sizeof data);
	hl_hex_encode(data, dn, hex);
	CHECK(strcmp(hex, "686172646c696e652d6875622d72656769737465722d7631001"
	                  "01112131415161718191a1b1c1d1e1f" KH
	                  "0d31312e302e302e313a37373737") == 0,
	      "signed data %s", hex);
	CHECK(hubauth_verify(m.cert, m.cert_len, m.sig, m.sig_len, data, dn,
	                     &why) == 0,
	      "the vector's signature verifies: %s", why);

	/* Another hub address, nonce or keyhash: not what was signed. */
	dn = hubmsg_signed_data(m.nonce, m.keyhash, "11.0.0.9:7777", data,
	                        sizeof data);
	CHECK(hubauth_verify(m.cert, m.cert_len, m.sig, m.sig_len, data, dn,
	                     &why) != 0,
	      "signature for another hub refused");
	memcpy(bad, m.sig, m.sig_len);
	bad[m.sig_len / 2] ^= 1;
	dn = hubmsg_signed_data(m.nonce, m.keyhash, m.hub_addr, data,
	                        sizeof data);
	CHECK(hubauth_verify(m.cert, m.cert_len, bad, m.sig_len, data, dn,
	                     &why) != 0,
	      "a flipped signature bit refused");
	CHECK(hubauth_verify(m.cert, m.cert_len - 1, m.sig, m.sig_len, data, dn,
	                     &why) != 0,
	      "a cut certificate refused");
}

static void
test_sign(void)
{
	const char *src = getenv("HL_SOURCE_DIR");
	char path[4096], pem[4096];
	uint8_t cert[2048], data[64] = "some data", sig[HUBMSG_SIG_MAX];
	size_t n = read_vector("hub-register.hex", cert, sizeof cert), sn;
	struct hubmsg m;
	const char *why = "";
	FILE *f;
	size_t pn;

	snprintf(path, sizeof path, "%s/tests/vectors/keyhash.cert.private",
	         src ? src : "..");
	f = fopen(path, "rb");
	CHECK(f != NULL, "open %s", path);
	if (f == NULL)
		return;
	pn = fread(pem, 1, sizeof pem - 1, f);
	pem[pn] = '\0';
	fclose(f);
	CHECK(hubmsg_parse(cert, n, &m, &why) == 0, "register parses");
	sn = hubauth_sign(pem, data, sizeof data, sig, sizeof sig);
	CHECK(sn > 0, "hubauth_sign");
	CHECK(hubauth_verify(m.cert, m.cert_len, sig, sn, data, sizeof data,
	                     &why) == 0,
	      "own signature verifies: %s", why);
	CHECK(hubauth_sign("not a key", data, sizeof data, sig, sizeof sig) ==
	          0,
	      "a bad key signs nothing");
}

static int
refused(const char *hex, const char *what)
{
	uint8_t b[2 * HUBMSG_MAX];
	size_t n = check_unhex(hex, b, sizeof b);
	struct hubmsg m;
	const char *why = "";
	int r = hubmsg_parse(b, n, &m, &why);

	CHECK(r != 0, "%s: parsed, should be refused", what);
	return r != 0;
}

static void
test_refused(void)
{
	uint8_t big[HUBMSG_MAX + 1];
	struct hubmsg m;
	const char *why;
	char kha[] = "0100144edde683894d49d6c60b396ebe3c05deb97d4ab3";
	char hex[4096];
	uint8_t b[HUBMSG_MAX];
	size_t n;

	refused("", "empty");
	refused("0b0101000001020304050607", "challenge-request w/o keyhash");
	refused("0b020100000102030405060701001400", "version 2");
	refused("0c0101000001020304050607", "another mark");
	refused("0b0101010001020304050607", "flags not zero");
	refused("0b010c000001020304050607", "type 12");
	refused("0b010a0000010203040506", "head cut short");
	refused("0b010a00000102030405060701", "attribute head cut short");
	refused("0b010a0000010203040506070100", "attribute head cut short 2");
	snprintf(hex, sizeof hex, "0b0101000001020304050607%s%s", kha, kha);
	refused(hex, "keyhash twice");
	refused("0b01010000010203040506070100134edde683894d49d6c60b396ebe3c05"
	        "deb97d4ab3",
	        "keyhash of 19 bytes");
	refused("0b01010000010203040506070100154edde683894d49d6c60b396ebe3c05"
	        "deb97d4ab3",
	        "attribute past the end");
	snprintf(hex, sizeof hex, "0b0101000001020304050607%s0d0000", kha);
	refused(hex, "unknown attribute 13");
	snprintf(hex, sizeof hex, "0b0101000001020304050607%s020010%s", kha,
	         "101112131415161718191a1b1c1d1e1f");
	refused(hex, "nonce in a challenge-request");
	refused("0b010f0000010203040506070b00020000", "error code 0");
	/* 0.0.0.0 and port 0 are no candidates. */
	static const struct {
		const char *attr, *why;
	} bad_candidates[] = {
	    {"0800080104138800000000", "candidate 0.0.0.0"},
	    {"080008010400000a010002", "candidate port 0"},
	    {"080008050413880a010002", "candidate kind 5"},
	    {"080008010613880a010002", "family 6 in 7 bytes"},
	};
	for (size_t i = 0; i < sizeof bad_candidates / sizeof *bad_candidates;
	     i++) {
		snprintf(hex, sizeof hex, "0b0107000001020304050607%s%s", kha,
		         bad_candidates[i].attr);
		refused(hex, bad_candidates[i].why);
	}

	/* An attribute from 0x80 up is skipped. */
	snprintf(hex, sizeof hex, "0b0101000001020304050607%s800003616263",
	         kha);
	n = check_unhex(hex, b, sizeof b);
	CHECK(hubmsg_parse(b, n, &m, &why) == 0, "attribute 0x80 skipped");

	/* Eight candidates pass, nine do not. */
	snprintf(hex, sizeof hex, "0b0107000001020304050607%s", kha);
	for (int i = 0; i < 8; i++)
		strcat(hex, "080008010413880a010002");
	n = check_unhex(hex, b, sizeof b);
	CHECK(hubmsg_parse(b, n, &m, &why) == 0 && m.ncands == 8,
	      "eight candidates");
	strcat(hex, "080008010413880a010002");
	refused(hex, "nine candidates");

	/* HUBMSG_MAX bytes pass (an attribute skipped), one more does not. */
	memset(big, 0, sizeof big);
	n = check_unhex("0b010a000001020304050607", big, sizeof big);
	big[n] = 0x80;
	big[n + 1] = (uint8_t)((HUBMSG_MAX - n - 3) >> 8);
	big[n + 2] = (uint8_t)((HUBMSG_MAX - n - 3) & 0xff);
	CHECK(hubmsg_parse(big, HUBMSG_MAX, &m, &why) == 0, "1400 bytes: %s",
	      why);
	big[n + 2]++;
	CHECK(hubmsg_parse(big, HUBMSG_MAX + 1, &m, &why) != 0,
	      "1401 bytes refused");

	/* A hub address must be host:port. */
	memset(&m, 0, sizeof m);
	m.type = HUBMSG_CHALLENGE_REQ;
	m.have = HUBMSG_BIT(HUBMSG_A_KEYHASH) | HUBMSG_BIT(HUBMSG_A_NONCE);
	CHECK(hubmsg_format(&m, b, sizeof b) == 0,
	      "format refuses an attribute the type does not allow");
	m.have = 0;
	CHECK(hubmsg_format(&m, b, sizeof b) == 0,
	      "format refuses a missing required attribute");
	CHECK(hubmsg_signed_data(m.nonce, m.keyhash, "", b, 10) == 0,
	      "signed data needs room");
	CHECK(hubmsg_demux((const uint8_t *)"\x01", 1) == 2 &&
	          hubmsg_demux((const uint8_t *)"\x40", 1) == 0,
	      "demux STUN and QUIC");
}

int
main(void)
{
	check_setup(sodium_init() >= 0, "sodium_init");
	test_vectors();
	test_register();
	test_sign();
	test_refused();
	return check_done();
}
