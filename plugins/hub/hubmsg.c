/*
 * hubmsg.c: the hub's message codec (hubmsg.h; docs/protocol.md, "Hub
 * messages"). No libevent, no OpenSSL: transport-udp compiles this file
 * too.
 */
#include "hubmsg.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "hardline/util.h"

#define A(x) HUBMSG_BIT(HUBMSG_A_##x)

/* What each type must carry and what it may carry besides. */
static const struct {
	uint32_t required, optional;
} rules[HUBMSG_TYPE_MAX + 1] = {
    [HUBMSG_CHALLENGE_REQ] = {A(KEYHASH), 0},
    [HUBMSG_CHALLENGE] = {A(KEYHASH) | A(NONCE), 0},
    [HUBMSG_REGISTER] = {A(KEYHASH) | A(NONCE) | A(CERT) | A(SIGNATURE) |
                             A(HUB_ADDR),
                         A(CANDIDATE)},
    [HUBMSG_REGISTERED] = {A(KEYHASH) | A(TOKEN) | A(OBSERVED) | A(LIFETIME) |
                               A(REFRESH),
                           0},
    [HUBMSG_KEEPALIVE] = {A(KEYHASH) | A(TOKEN), A(CANDIDATE)},
    [HUBMSG_KEEPALIVE_ACK] = {A(KEYHASH) | A(OBSERVED), 0},
    [HUBMSG_LOOKUP] = {A(KEYHASH), A(CANDIDATE)},
    [HUBMSG_LOOKUP_ANSWER] = {A(KEYHASH) | A(OBSERVED), A(CANDIDATE)},
    [HUBMSG_INTRO] = {A(KEYHASH) | A(OBSERVED), A(CANDIDATE)},
    [HUBMSG_STATUS_REQ] = {0, 0},
    [HUBMSG_STATUS] = {A(TEXT), 0},
    [HUBMSG_ERROR] = {A(ERROR), A(KEYHASH)},
};

/* Types that exist: the ones with a rule (STATUS_REQ has none, so it is
 * named here). */
static int
type_known(unsigned t)
{
	return t >= 1 && t <= HUBMSG_TYPE_MAX &&
	       (rules[t].required != 0 || t == HUBMSG_STATUS_REQ);
}

const char *
hubmsg_type_name(int type)
{
	static const char *const names[HUBMSG_TYPE_MAX + 1] = {
	    [HUBMSG_CHALLENGE_REQ] = "challenge-request",
	    [HUBMSG_CHALLENGE] = "challenge",
	    [HUBMSG_REGISTER] = "register",
	    [HUBMSG_REGISTERED] = "registered",
	    [HUBMSG_KEEPALIVE] = "keep-alive",
	    [HUBMSG_KEEPALIVE_ACK] = "keep-alive-ack",
	    [HUBMSG_LOOKUP] = "lookup",
	    [HUBMSG_LOOKUP_ANSWER] = "lookup-answer",
	    [HUBMSG_INTRO] = "intro",
	    [HUBMSG_STATUS_REQ] = "status-request",
	    [HUBMSG_STATUS] = "status",
	    [HUBMSG_ERROR] = "error",
	};
	if (type < 1 || type > HUBMSG_TYPE_MAX || names[type] == NULL)
		return "unknown";
	return names[type];
}

int
hubmsg_demux(const uint8_t *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (buf[0] == HUBMSG_MARK)
		return 1;
	if (buf[0] <= 3)
		return 2;
	return 0;
}

/* ---- addresses ---- */

static int
addr_zero(const struct hubmsg_addr *a)
{
	size_t n = a->family == 4 ? 4 : 16;

	for (size_t i = 0; i < n; i++)
		if (a->ip[i] != 0)
			return 0;
	return 1;
}

/* An address from v[0..n): 0, or -1 (bad family, length, port 0 or the
 * unspecified address). */
static int
addr_read(const uint8_t *v, size_t n, struct hubmsg_addr *a)
{
	memset(a, 0, sizeof *a);
	if (n == 7 && v[0] == 4) {
		memcpy(a->ip, v + 3, 4);
	} else if (n == 19 && v[0] == 6) {
		memcpy(a->ip, v + 3, 16);
	} else {
		return -1;
	}
	a->family = v[0];
	a->port = (uint16_t)(v[1] << 8 | v[2]);
	if (a->port == 0 || addr_zero(a))
		return -1;
	return 0;
}

static size_t
addr_len(const struct hubmsg_addr *a)
{
	return a->family == 4 ? 7 : a->family == 6 ? 19 : 0;
}

static void
addr_write(const struct hubmsg_addr *a, uint8_t *out)
{
	out[0] = a->family;
	out[1] = (uint8_t)(a->port >> 8);
	out[2] = (uint8_t)(a->port & 0xff);
	memcpy(out + 3, a->ip, a->family == 4 ? 4 : 16);
}

static int
addr_ok(const struct hubmsg_addr *a)
{
	return (a->family == 4 || a->family == 6) && a->port != 0 &&
	       !addr_zero(a);
}

int
hubmsg_addr_from_sa(struct hubmsg_addr *a, const struct sockaddr *sa)
{
	memset(a, 0, sizeof *a);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		a->family = 4;
		memcpy(a->ip, &s4->sin_addr, 4);
		a->port = ntohs(s4->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			a->family = 4;
			memcpy(a->ip, &s6->sin6_addr.s6_addr[12], 4);
		} else {
			a->family = 6;
			memcpy(a->ip, &s6->sin6_addr, 16);
		}
		a->port = ntohs(s6->sin6_port);
		return 0;
	}
	return -1;
}

socklen_t
hubmsg_addr_to_sa(const struct hubmsg_addr *a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (a->family == 4) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(a->port);
		memcpy(&s4->sin_addr, a->ip, 4);
		return sizeof *s4;
	}
	if (a->family == 6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(a->port);
		memcpy(&s6->sin6_addr, a->ip, 16);
		return sizeof *s6;
	}
	return 0;
}

void
hubmsg_addr_str(const struct hubmsg_addr *a, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN];

	if (a->family == 4) {
		inet_ntop(AF_INET, a->ip, ip, sizeof ip);
		snprintf(out, outlen, "%s:%u", ip, a->port);
	} else if (a->family == 6) {
		inet_ntop(AF_INET6, a->ip, ip, sizeof ip);
		snprintf(out, outlen, "[%s]:%u", ip, a->port);
	} else {
		snprintf(out, outlen, "(none)");
	}
}

int
hubmsg_addr_eq(const struct hubmsg_addr *a, const struct hubmsg_addr *b)
{
	return a->family == b->family && a->port == b->port &&
	       memcmp(a->ip, b->ip, a->family == 4 ? 4 : 16) == 0;
}

/* ---- parsing ---- */

static int
hub_addr_ok(const char *s)
{
	char host[HUBMSG_HUBADDR_MAX + 1];
	uint16_t port;

	return hl_addr_split(s, host, sizeof host, &port) == 0 && port != 0;
}

#define REFUSE(w)                                                              \
	do {                                                                   \
		*why = (w);                                                    \
		return -1;                                                     \
	} while (0)

int
hubmsg_parse(const uint8_t *buf, size_t len, struct hubmsg *m, const char **why)
{
	size_t pos = HUBMSG_HEAD;

	memset(m, 0, sizeof *m);
	if (len > HUBMSG_MAX)
		REFUSE("too long");
	if (len < HUBMSG_HEAD)
		REFUSE("too short");
	if (buf[0] != HUBMSG_MARK)
		REFUSE("not a hub message");
	if (buf[1] != HUBMSG_VERSION)
		REFUSE("unknown version");
	if (!type_known(buf[2]))
		REFUSE("unknown type");
	if (buf[3] != 0)
		REFUSE("flags not zero");
	m->type = buf[2];
	memcpy(m->txid, buf + 4, HUBMSG_TXID_LEN);

	while (pos < len) {
		unsigned t;
		size_t n;
		const uint8_t *v;

		if (len - pos < 3)
			REFUSE("attribute head cut short");
		t = buf[pos];
		n = (size_t)buf[pos + 1] << 8 | buf[pos + 2];
		pos += 3;
		if (n > len - pos)
			REFUSE("attribute runs past the end");
		v = buf + pos;
		pos += n;
		if (t >= 0x80)
			continue; /* optional, from a later minor: skipped */
		if (t < 1 || t > HUBMSG_A_TEXT)
			REFUSE("unknown attribute");
		if (!((rules[m->type].required | rules[m->type].optional) &
		      HUBMSG_BIT(t)))
			REFUSE("attribute not allowed in this type");
		if (t != HUBMSG_A_CANDIDATE && (m->have & HUBMSG_BIT(t)))
			REFUSE("duplicate attribute");
		switch (t) {
		case HUBMSG_A_KEYHASH:
			if (n != 20)
				REFUSE("bad keyhash length");
			memcpy(m->keyhash, v, 20);
			break;
		case HUBMSG_A_NONCE:
			if (n != HUBMSG_NONCE_LEN)
				REFUSE("bad nonce length");
			memcpy(m->nonce, v, n);
			break;
		case HUBMSG_A_TOKEN:
			if (n != HUBMSG_TOKEN_LEN)
				REFUSE("bad token length");
			memcpy(m->token, v, n);
			break;
		case HUBMSG_A_CERT:
			if (n < 1 || n > HUBMSG_CERT_MAX)
				REFUSE("bad certificate length");
			m->cert = v;
			m->cert_len = n;
			break;
		case HUBMSG_A_SIGNATURE:
			if (n < 1 || n > HUBMSG_SIG_MAX)
				REFUSE("bad signature length");
			m->sig = v;
			m->sig_len = n;
			break;
		case HUBMSG_A_HUB_ADDR:
			if (n < 1 || n > HUBMSG_HUBADDR_MAX ||
			    memchr(v, '\0', n) != NULL)
				REFUSE("bad hub address length");
			memcpy(m->hub_addr, v, n);
			m->hub_addr[n] = '\0';
			if (!hub_addr_ok(m->hub_addr))
				REFUSE("hub address is not host:port");
			break;
		case HUBMSG_A_OBSERVED:
			if (addr_read(v, n, &m->observed) != 0)
				REFUSE("bad observed address");
			break;
		case HUBMSG_A_CANDIDATE: {
			struct hubmsg_cand *c;
			if (m->ncands == HUBMSG_CANDS_MAX)
				REFUSE("too many candidates");
			c = &m->cands[m->ncands];
			if (n < 1 || v[0] < HUBMSG_CAND_HOST ||
			    v[0] > HUBMSG_CAND_RELAY)
				REFUSE("bad candidate kind");
			c->kind = v[0];
			if (addr_read(v + 1, n - 1, &c->addr) != 0)
				REFUSE("bad candidate address");
			m->ncands++;
			break;
		}
		case HUBMSG_A_LIFETIME:
		case HUBMSG_A_REFRESH:
		case HUBMSG_A_ERROR: {
			uint16_t x;
			if (n != 2)
				REFUSE("bad number length");
			x = (uint16_t)(v[0] << 8 | v[1]);
			if (x == 0)
				REFUSE("number is zero");
			if (t == HUBMSG_A_LIFETIME)
				m->lifetime = x;
			else if (t == HUBMSG_A_REFRESH)
				m->refresh = x;
			else
				m->error = x;
			break;
		}
		case HUBMSG_A_TEXT:
			if (n > HUBMSG_TEXT_MAX || memchr(v, '\0', n) != NULL)
				REFUSE("bad text");
			m->text = (const char *)v;
			m->text_len = n;
			break;
		}
		m->have |= HUBMSG_BIT(t);
	}
	if ((m->have & rules[m->type].required) != rules[m->type].required)
		REFUSE("a required attribute is missing");
	return 0;
}

/* ---- formatting ---- */

struct out {
	uint8_t *p;
	size_t cap, len;
	int bad;
};

static uint8_t *
attr(struct out *o, unsigned t, size_t n)
{
	uint8_t *v;

	if (o->bad || n > 0xffff || o->cap - o->len < 3 + n) {
		o->bad = 1;
		return NULL;
	}
	v = o->p + o->len;
	v[0] = (uint8_t)t;
	v[1] = (uint8_t)(n >> 8);
	v[2] = (uint8_t)(n & 0xff);
	o->len += 3 + n;
	return v + 3;
}

static void
attr_bytes(struct out *o, unsigned t, const void *b, size_t n)
{
	uint8_t *v = attr(o, t, n);

	if (v != NULL && n > 0)
		memcpy(v, b, n);
}

static void
attr_u16(struct out *o, unsigned t, uint16_t x)
{
	uint8_t b[2] = {(uint8_t)(x >> 8), (uint8_t)(x & 0xff)};

	if (x == 0)
		o->bad = 1;
	attr_bytes(o, t, b, 2);
}

size_t
hubmsg_format(const struct hubmsg *m, uint8_t *out, size_t cap)
{
	struct out o = {out, cap > HUBMSG_MAX ? HUBMSG_MAX : cap, 0, 0};
	uint32_t allowed, have = m->have;

	if (!type_known(m->type) || o.cap < HUBMSG_HEAD)
		return 0;
	if (m->ncands > 0)
		have |= A(CANDIDATE);
	allowed = rules[m->type].required | rules[m->type].optional;
	if ((have & rules[m->type].required) != rules[m->type].required ||
	    (have & ~allowed) != 0 || m->ncands > HUBMSG_CANDS_MAX)
		return 0;
	out[0] = HUBMSG_MARK;
	out[1] = HUBMSG_VERSION;
	out[2] = m->type;
	out[3] = 0;
	memcpy(out + 4, m->txid, HUBMSG_TXID_LEN);
	o.len = HUBMSG_HEAD;

	if (have & A(KEYHASH))
		attr_bytes(&o, HUBMSG_A_KEYHASH, m->keyhash, 20);
	if (have & A(NONCE))
		attr_bytes(&o, HUBMSG_A_NONCE, m->nonce, HUBMSG_NONCE_LEN);
	if (have & A(TOKEN))
		attr_bytes(&o, HUBMSG_A_TOKEN, m->token, HUBMSG_TOKEN_LEN);
	if (have & A(CERT)) {
		if (m->cert_len < 1 || m->cert_len > HUBMSG_CERT_MAX)
			return 0;
		attr_bytes(&o, HUBMSG_A_CERT, m->cert, m->cert_len);
	}
	if (have & A(SIGNATURE)) {
		if (m->sig_len < 1 || m->sig_len > HUBMSG_SIG_MAX)
			return 0;
		attr_bytes(&o, HUBMSG_A_SIGNATURE, m->sig, m->sig_len);
	}
	if (have & A(HUB_ADDR)) {
		size_t n = strnlen(m->hub_addr, sizeof m->hub_addr);
		if (n < 1 || n > HUBMSG_HUBADDR_MAX ||
		    !hub_addr_ok(m->hub_addr))
			return 0;
		attr_bytes(&o, HUBMSG_A_HUB_ADDR, m->hub_addr, n);
	}
	if (have & A(OBSERVED)) {
		uint8_t *v;
		if (!addr_ok(&m->observed))
			return 0;
		v = attr(&o, HUBMSG_A_OBSERVED, addr_len(&m->observed));
		if (v != NULL)
			addr_write(&m->observed, v);
	}
	for (size_t i = 0; i < m->ncands; i++) {
		const struct hubmsg_cand *c = &m->cands[i];
		uint8_t *v;
		if (!addr_ok(&c->addr) || c->kind < HUBMSG_CAND_HOST ||
		    c->kind > HUBMSG_CAND_RELAY)
			return 0;
		v = attr(&o, HUBMSG_A_CANDIDATE, 1 + addr_len(&c->addr));
		if (v != NULL) {
			v[0] = c->kind;
			addr_write(&c->addr, v + 1);
		}
	}
	if (have & A(LIFETIME))
		attr_u16(&o, HUBMSG_A_LIFETIME, m->lifetime);
	if (have & A(REFRESH))
		attr_u16(&o, HUBMSG_A_REFRESH, m->refresh);
	if (have & A(ERROR))
		attr_u16(&o, HUBMSG_A_ERROR, m->error);
	if (have & A(TEXT)) {
		if (m->text_len > HUBMSG_TEXT_MAX ||
		    (m->text_len > 0 &&
		     memchr(m->text, '\0', m->text_len) != NULL))
			return 0;
		attr_bytes(&o, HUBMSG_A_TEXT, m->text, m->text_len);
	}
	return o.bad ? 0 : o.len;
}

size_t
hubmsg_signed_data(const uint8_t nonce[HUBMSG_NONCE_LEN],
                   const uint8_t keyhash[20], const char *hub_addr,
                   uint8_t *out, size_t cap)
{
	static const char ctx[] = "hardline-hub-register-v1"; /* + its NUL */
	size_t n = strlen(hub_addr),
	       len = sizeof ctx + HUBMSG_NONCE_LEN + 20 + 1 + n;

	if (n > HUBMSG_HUBADDR_MAX || len > cap)
		return 0;
	memcpy(out, ctx, sizeof ctx);
	memcpy(out + sizeof ctx, nonce, HUBMSG_NONCE_LEN);
	memcpy(out + sizeof ctx + HUBMSG_NONCE_LEN, keyhash, 20);
	out[sizeof ctx + HUBMSG_NONCE_LEN + 20] = (uint8_t)n;
	memcpy(out + sizeof ctx + HUBMSG_NONCE_LEN + 21, hub_addr, n);
	return len;
}
