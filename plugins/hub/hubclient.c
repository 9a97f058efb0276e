/*
 * hubclient.c: the node's side of the hub (hubclient.h).
 */
#include "hubclient.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include <stun/stunmessage.h>
#include <stun/usages/bind.h>

#include "hubauth.h"

/* ---- host candidates ---- */

size_t
hubclient_host_candidates(int family, uint16_t port, struct hubmsg_cand *out,
                          size_t max)
{
	struct ifaddrs *ifa0, *ifa;
	size_t n = 0;

	if (port == 0 || getifaddrs(&ifa0) != 0)
		return 0;
	for (ifa = ifa0; ifa != NULL && n < max; ifa = ifa->ifa_next) {
		struct hubmsg_cand c;
		int dup = 0;

		if (ifa->ifa_addr == NULL || !(ifa->ifa_flags & IFF_UP) ||
		    (ifa->ifa_flags & IFF_LOOPBACK))
			continue;
		if (ifa->ifa_addr->sa_family != AF_INET &&
		    ifa->ifa_addr->sa_family != AF_INET6)
			continue;
		if (family != AF_UNSPEC && ifa->ifa_addr->sa_family != family)
			continue;
		if (ifa->ifa_addr->sa_family == AF_INET6) {
			const struct sockaddr_in6 *s6 =
			    (const struct sockaddr_in6 *)ifa->ifa_addr;
			if (IN6_IS_ADDR_LINKLOCAL(&s6->sin6_addr) ||
			    IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr) ||
			    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
				continue;
		}
		memset(&c, 0, sizeof c);
		if (hubmsg_addr_from_sa(&c.addr, ifa->ifa_addr) != 0)
			continue;
		c.kind = HUBMSG_CAND_HOST;
		c.addr.port = port;
		if ((c.addr.family == 4 && c.addr.ip[0] == 127) ||
		    (c.addr.family == 4 && !memcmp(c.addr.ip, "\0\0\0\0", 4)))
			continue;
		for (size_t i = 0; i < n; i++)
			dup |= hubmsg_addr_eq(&out[i].addr, &c.addr);
		if (!dup)
			out[n++] = c;
	}
	freeifaddrs(ifa0);
	return n;
}

/* ---- STUN ---- */

static const uint16_t stun_known[] = {STUN_ATTRIBUTE_MAPPED_ADDRESS,
                                      STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS,
                                      STUN_ATTRIBUTE_SOFTWARE,
                                      STUN_ATTRIBUTE_FINGERPRINT,
                                      STUN_ATTRIBUTE_ERROR_CODE,
                                      STUN_ATTRIBUTE_ALTERNATE_SERVER,
                                      0};

size_t
hubclient_stun_request(struct hubclient_stun *s)
{
	memset(s, 0, sizeof *s);
	stun_agent_init(&s->agent, stun_known, STUN_COMPATIBILITY_RFC5389,
	                STUN_AGENT_USAGE_IGNORE_CREDENTIALS);
	s->len =
	    stun_usage_bind_create(&s->agent, &s->req, s->buf, sizeof s->buf);
	return s->len;
}

size_t
hubclient_stun_request_change(struct hubclient_stun *s, uint32_t change)
{
	memset(s, 0, sizeof *s);
	stun_agent_init(&s->agent, stun_known, STUN_COMPATIBILITY_RFC5389,
	                STUN_AGENT_USAGE_IGNORE_CREDENTIALS);
	if (!stun_agent_init_request(&s->agent, &s->req, s->buf, sizeof s->buf,
	                             STUN_BINDING) ||
	    stun_message_append32(&s->req, STUN_ATTRIBUTE_CHANGE_REQUEST,
	                          change) != STUN_MESSAGE_RETURN_SUCCESS)
		return 0;
	s->len = stun_agent_finish_message(&s->agent, &s->req, NULL, 0);
	return s->len;
}

int
hubclient_stun_answer(struct hubclient_stun *s, const uint8_t *buf, size_t len,
                      struct hubmsg_addr *mapped)
{
	return hubclient_stun_answer_other(s, buf, len, mapped, NULL);
}

int
hubclient_stun_answer_other(struct hubclient_stun *s, const uint8_t *buf,
                            size_t len, struct hubmsg_addr *mapped,
                            struct hubmsg_addr *other)
{
	StunMessage msg;
	struct sockaddr_storage ss, alt;
	socklen_t sslen = sizeof ss, altlen = sizeof alt;
	StunTransactionId want, got;

	if (s->len == 0 || len < 20 || len > 1400 ||
	    stun_message_validate_buffer_length(buf, len, true) != (int)len)
		return -1;
	/* The agent knows the transaction it sent: an answer to anything
	 * else does not validate. */
	if (stun_agent_validate(&s->agent, &msg, buf, len, NULL, NULL) !=
	    STUN_VALIDATION_SUCCESS)
		return -1;
	stun_message_id(&s->req, want);
	stun_message_id(&msg, got);
	if (memcmp(want, got, sizeof want) != 0 ||
	    stun_message_get_class(&msg) != STUN_RESPONSE ||
	    stun_message_get_method(&msg) != STUN_BINDING)
		return -1;
	if (stun_usage_bind_process(&msg, (struct sockaddr *)&ss, &sslen,
	                            (struct sockaddr *)&alt,
	                            &altlen) != STUN_USAGE_BIND_RETURN_SUCCESS)
		return -1;
	if (hubmsg_addr_from_sa(mapped, (const struct sockaddr *)&ss) != 0 ||
	    mapped->port == 0)
		return -1;
	if (other != NULL) {
		struct sockaddr_storage oa;
		socklen_t ol = sizeof oa;
		memset(other, 0, sizeof *other);
		/* OTHER-ADDRESS, RFC 5780 (libnice has no name for it) */
		if (stun_message_find_addr(&msg, (StunAttribute)0x802C,
		                           (struct sockaddr_storage *)&oa,
		                           &ol) == STUN_MESSAGE_RETURN_SUCCESS)
			hubmsg_addr_from_sa(other, (struct sockaddr *)&oa);
	}
	return 0;
}

int
hubclient_nat_kind(const struct hubmsg_addr *local,
                   const struct hubmsg_addr *m1, const struct hubmsg_addr *m2)
{
	if (m1->family == 0 || m2->family == 0)
		return HUBCLIENT_NAT_UNKNOWN;
	if (local != NULL && local->family != 0 && hubmsg_addr_eq(local, m1) &&
	    hubmsg_addr_eq(local, m2))
		return HUBCLIENT_NAT_NONE;
	if (hubmsg_addr_eq(m1, m2))
		return HUBCLIENT_NAT_CONE;
	return HUBCLIENT_NAT_SYMMETRIC;
}

const char *
hubclient_nat_name(int kind)
{
	switch (kind) {
	case HUBCLIENT_NAT_NONE:
		return "no NAT";
	case HUBCLIENT_NAT_CONE:
		return "cone (endpoint-independent mapping)";
	case HUBCLIENT_NAT_SYMMETRIC:
		return "symmetric (a mapping per destination)";
	default:
		return "unknown";
	}
}

/* ---- messages ---- */

static void
head(struct hubmsg *m, int type, const uint8_t *txid, const uint8_t *kh)
{
	memset(m, 0, sizeof *m);
	m->type = (uint8_t)type;
	memcpy(m->txid, txid, HUBMSG_TXID_LEN);
	m->have = HUBMSG_BIT(HUBMSG_A_KEYHASH);
	memcpy(m->keyhash, kh, 20);
}

static int
cands_copy(struct hubmsg *m, const struct hubmsg_cand *c, size_t n)
{
	if (n > HUBMSG_CANDS_MAX)
		return -1;
	if (n > 0)
		memcpy(m->cands, c, n * sizeof *c);
	m->ncands = n;
	return 0;
}

size_t
hubclient_register(uint8_t *out, size_t cap,
                   const uint8_t txid[HUBMSG_TXID_LEN],
                   const uint8_t keyhash[20],
                   const uint8_t nonce[HUBMSG_NONCE_LEN],
                   const uint8_t *cert_der, size_t cert_len,
                   const char *key_pem, const char *hub_addr,
                   const struct hubmsg_cand *cands, size_t ncands)
{
	uint8_t data[HUBMSG_SIGNED_MAX], sig[HUBMSG_SIG_MAX];
	struct hubmsg m;
	size_t dn, sn;

	if (strlen(hub_addr) > HUBMSG_HUBADDR_MAX)
		return 0;
	dn = hubmsg_signed_data(nonce, keyhash, hub_addr, data, sizeof data);
	if (dn == 0)
		return 0;
	sn = hubauth_sign(key_pem, data, dn, sig, sizeof sig);
	if (sn == 0)
		return 0;
	head(&m, HUBMSG_REGISTER, txid, keyhash);
	m.have |= HUBMSG_BIT(HUBMSG_A_NONCE) | HUBMSG_BIT(HUBMSG_A_CERT) |
	          HUBMSG_BIT(HUBMSG_A_SIGNATURE) |
	          HUBMSG_BIT(HUBMSG_A_HUB_ADDR);
	memcpy(m.nonce, nonce, HUBMSG_NONCE_LEN);
	m.cert = cert_der;
	m.cert_len = cert_len;
	m.sig = sig;
	m.sig_len = sn;
	memcpy(m.hub_addr, hub_addr, strlen(hub_addr) + 1);
	if (cands_copy(&m, cands, ncands) != 0)
		return 0;
	return hubmsg_format(&m, out, cap);
}

size_t
hubclient_challenge_req(uint8_t *out, size_t cap,
                        const uint8_t txid[HUBMSG_TXID_LEN],
                        const uint8_t keyhash[20])
{
	struct hubmsg m;

	head(&m, HUBMSG_CHALLENGE_REQ, txid, keyhash);
	return hubmsg_format(&m, out, cap);
}

size_t
hubclient_keepalive(uint8_t *out, size_t cap,
                    const uint8_t txid[HUBMSG_TXID_LEN],
                    const uint8_t keyhash[20],
                    const uint8_t token[HUBMSG_TOKEN_LEN],
                    const struct hubmsg_cand *cands, size_t ncands)
{
	struct hubmsg m;

	head(&m, HUBMSG_KEEPALIVE, txid, keyhash);
	m.have |= HUBMSG_BIT(HUBMSG_A_TOKEN);
	memcpy(m.token, token, HUBMSG_TOKEN_LEN);
	if (cands_copy(&m, cands, ncands) != 0)
		return 0;
	return hubmsg_format(&m, out, cap);
}

size_t
hubclient_lookup(uint8_t *out, size_t cap, const uint8_t txid[HUBMSG_TXID_LEN],
                 const uint8_t keyhash[20], const struct hubmsg_cand *cands,
                 size_t ncands)
{
	struct hubmsg m;
	size_t n;

	head(&m, HUBMSG_LOOKUP, txid, keyhash);
	if (cands_copy(&m, cands, ncands) != 0)
		return 0;
	n = hubmsg_format(&m, out, cap);
	/* Pad with an attribute the hub skips (type 0x80), so that its
	 * answer, at most three times this, can hold every candidate. */
	if (n > 0 && n < 80) {
		size_t to = n + 3 > 80 ? n + 3 : 80, pad = to - n - 3;
		if (cap < to)
			return 0;
		out[n] = 0x80;
		out[n + 1] = 0;
		out[n + 2] = (uint8_t)pad;
		memset(out + n + 3, 0, pad);
		n = to;
	}
	return n;
}
