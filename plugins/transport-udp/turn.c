/*
 * turn.c: the TURN client of turn.h. libnice's stun library makes and
 * checks the messages (usages/turn.h for Allocate, Refresh and
 * CreatePermission, stunagent for transactions and the long-term
 * credential's MESSAGE-INTEGRITY); Send indications are built and Data
 * indications read with its stunmessage API, which its usages lack.
 */
#include "turn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <stun/stunagent.h>
#include <stun/stunmessage.h>

#include "hardline/util.h"
#include <stun/usages/turn.h>

/* A request with a 127-byte user, a realm and nonce each up to 255 bytes
 * (RFC 8489 allows fewer than 128 characters of each) fits. */
#define TURN_REQ_MAX 1024
#define TURN_STALE_MAX 3
#define NTX (1 + TURN_MAX_PEERS)

/* TX_CLEAR: Refresh with lifetime 0 after a 437 to Allocate (an allocation
 * of an earlier run, on the same 5-tuple, that was not closed: a crash),
 * then Allocate again. */
enum tx_kind { TX_NONE = 0, TX_ALLOC, TX_REFRESH, TX_PERM, TX_CLOSE, TX_CLEAR };

struct tx {
	int kind;
	int authed; /* carried USERNAME and MESSAGE-INTEGRITY */
	unsigned stale; /* 438 answers in a row to this request */
	uint8_t buf[TURN_REQ_MAX];
	size_t len;
	StunTransactionId id;
	unsigned sent;
	uint64_t next;
};

struct peer {
	int used;
	int confirmed;
	int failed;
	struct sockaddr_storage addr;
	uint64_t refresh_at;
	uint64_t used_at; /* last permitted again or heard from */
};

struct turn {
	struct turn_url u;
	struct turn_config cfg;
	turn_send_fn send;
	void *arg;
	StunAgent agent;
	enum turn_state state;
	char err[256];
	/* The last 401/438 answer: its REALM and NONCE go into requests. */
	uint8_t chal[TURN_REQ_MAX];
	StunMessage chal_msg;
	int have_chal;
	uint8_t realm[256], nonce[256];
	uint16_t realm_len, nonce_len;
	struct tx tx[NTX]; /* tx[0]: Allocate or Refresh; tx[1 + i]: peer i */
	struct peer peers[TURN_MAX_PEERS];
	struct sockaddr_storage relayed, mapped;
	uint32_t lifetime;
	uint64_t refresh_at;
	unsigned refreshes;
	int cleared; /* a TX_CLEAR was sent (once) */
	uint8_t out[TURN_MAX_DATA + 128];
};

/* Attributes whose meaning this client knows (comprehension-required ones
 * outside this list make libnice refuse a message). */
static const uint16_t turn_known[] = {STUN_ATTRIBUTE_MAPPED_ADDRESS,
                                      STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS,
                                      STUN_ATTRIBUTE_RELAY_ADDRESS,
                                      STUN_ATTRIBUTE_XOR_PEER_ADDRESS,
                                      STUN_ATTRIBUTE_DATA,
                                      STUN_ATTRIBUTE_LIFETIME,
                                      STUN_ATTRIBUTE_ERROR_CODE,
                                      STUN_ATTRIBUTE_UNKNOWN_ATTRIBUTES,
                                      STUN_ATTRIBUTE_REALM,
                                      STUN_ATTRIBUTE_NONCE,
                                      STUN_ATTRIBUTE_USERNAME,
                                      STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
                                      STUN_ATTRIBUTE_REQUESTED_TRANSPORT,
                                      STUN_ATTRIBUTE_RESERVATION_TOKEN,
                                      STUN_ATTRIBUTE_EVEN_PORT,
                                      0};

/* ---- the URL ---- */

/* s[0..n) %-decoded into out (cap with the NUL); 0 or -1. */
static int
pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= n)
				return -1;
			h = hl_hexval(s[i + 1]);
			l = hl_hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = h * 16 + l;
			i += 2;
		}
		if (c == 0 || o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = 0;
	return o > 0 ? 0 : -1;
}

int
turn_parse_url(const char *url, struct turn_url *out, char *err, size_t errlen)
{
	const char *p, *at, *colon, *host, *hend, *port = NULL;
	size_t hl;

	memset(out, 0, sizeof *out);
#define FAIL(...)                                                              \
	do {                                                                   \
		if (errlen > 0)                                                \
			snprintf(err, errlen, "turn URL: " __VA_ARGS__);       \
		return -1;                                                     \
	} while (0)
	if (url == NULL || strncasecmp(url, "turn://", 7) != 0)
		FAIL("not turn://user:pass@host:port");
	if (strlen(url) > 7 + 3 * 2 * TURN_CRED_MAX + TURN_HOST_MAX + 8)
		FAIL("too long");
	p = url + 7;
	at = strrchr(p, '@');
	if (at == NULL)
		FAIL("no user:pass@ (TURN needs the long-term credentials)");
	colon = memchr(p, ':', (size_t)(at - p));
	if (colon == NULL)
		FAIL("no password (user:pass@)");
	if (pct_decode(p, (size_t)(colon - p), out->user, sizeof out->user))
		FAIL("bad or empty user name");
	if (pct_decode(colon + 1, (size_t)(at - colon - 1), out->pass,
	               sizeof out->pass))
		FAIL("bad or empty password");
	host = at + 1;
	if (*host == '[') {
		hend = strchr(host, ']');
		if (hend == NULL)
			FAIL("unclosed [");
		host++;
		if (hend[1] == ':')
			port = hend + 2;
		else if (hend[1] != 0)
			FAIL("junk after ]");
	} else {
		hend = strchr(host, ':');
		if (hend == NULL)
			hend = host + strlen(host);
		else
			port = hend + 1;
	}
	hl = (size_t)(hend - host);
	if (hl == 0 || hl >= sizeof out->host)
		FAIL("bad host");
	for (size_t i = 0; i < hl; i++)
		if (strchr("/?#@ \t", host[i]) != NULL)
			FAIL("bad character in host");
	memcpy(out->host, host, hl);
	out->port = 3478;
	if (port != NULL) {
		unsigned long v = 0;

		if (*port == 0)
			FAIL("empty port");
		for (const char *q = port; *q; q++) {
			if (*q < '0' || *q > '9' || v > 65535)
				FAIL("bad port");
			v = v * 10 + (unsigned long)(*q - '0');
		}
		if (v == 0 || v > 65535)
			FAIL("port out of range");
		out->port = (uint16_t)v;
	}
#undef FAIL
	return 0;
}

/* ---- helpers ---- */

static void fail(struct turn *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
fail(struct turn *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->err, sizeof t->err, fmt, ap);
	va_end(ap);
	t->state = TURN_FAILED;
	for (int i = 0; i < NTX; i++) {
		if (t->tx[i].kind != TX_NONE)
			stun_agent_forget_transaction(&t->agent, t->tx[i].id);
		t->tx[i].kind = TX_NONE;
	}
}

/* The end of TURN_CLOSING: whatever the answer, nothing more to do. */
static void
closed(struct turn *t)
{
	for (int i = 0; i < NTX; i++) {
		if (t->tx[i].kind != TX_NONE)
			stun_agent_forget_transaction(&t->agent, t->tx[i].id);
		t->tx[i].kind = TX_NONE;
	}
	t->state = TURN_CLOSED;
}

/* An IPv4 or IPv6 address of at least its family's size. */
static int
sa_ok(const struct sockaddr *sa, socklen_t len)
{
	return (sa->sa_family == AF_INET &&
	        len >= (socklen_t)sizeof(struct sockaddr_in)) ||
	       (sa->sa_family == AF_INET6 &&
	        len >= (socklen_t)sizeof(struct sockaddr_in6));
}

static int
ip_eq(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return 0;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		              &((const struct sockaddr_in6 *)b)->sin6_addr,
		              16) == 0;
	return 0;
}

static void
addr_str(const struct sockaddr_storage *a, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (a->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr,
		          ip, sizeof ip);
	else if (a->ss_family == AF_INET6)
		inet_ntop(AF_INET6,
		          &((const struct sockaddr_in6 *)a)->sin6_addr, ip,
		          sizeof ip);
	snprintf(out, cap, "%s", ip);
}

/* The ERROR-CODE's reason phrase, printable ASCII only, into out. */
static void
reason(const StunMessage *m, char *out, size_t cap)
{
	uint16_t alen = 0;
	const uint8_t *a =
	    stun_message_find(m, STUN_ATTRIBUTE_ERROR_CODE, &alen);
	size_t o = 0;

	out[0] = 0;
	if (a == NULL || alen < 4)
		return;
	for (size_t i = 4; i < alen && o + 1 < cap && o < 80; i++)
		out[o++] = (a[i] >= 0x20 && a[i] < 0x7f) ? (char)a[i] : '?';
	out[o] = 0;
}

static uint32_t
total_wait_ms(const struct turn *t)
{
	uint32_t w = 0, rto = t->cfg.rto_ms;

	for (unsigned k = 1; k < t->cfg.rc; k++, rto *= 2)
		w += rto;
	return w + 16 * t->cfg.rto_ms;
}

static void
tx_send(struct turn *t, struct tx *x, uint64_t now)
{
	uint64_t wait = x->sent + 1 >= t->cfg.rc
	                    ? 16ull * t->cfg.rto_ms
	                    : (uint64_t)t->cfg.rto_ms
	                          << (x->sent < 20 ? x->sent : 20);

	x->sent++;
	x->next = now + wait;
	t->send(t->arg, x->buf, x->len);
}

/* Builds the request of kind for slot i (peer i - 1 for TX_PERM) with the
 * credentials when a challenge was seen, and sends it. */
static int
tx_start(struct turn *t, int i, int kind, int32_t lifetime, uint64_t now)
{
	struct tx *x = &t->tx[i];
	StunMessage msg;
	size_t n = 0;
	int auth = t->have_chal;
	uint8_t *user = auth ? (uint8_t *)t->u.user : NULL;
	uint8_t *pass = auth ? (uint8_t *)t->u.pass : NULL;
	size_t ul = auth ? strlen(t->u.user) : 0;
	size_t pl = auth ? strlen(t->u.pass) : 0;

	if (x->kind != TX_NONE)
		stun_agent_forget_transaction(&t->agent, x->id);
	x->kind = TX_NONE;
	if (kind == TX_ALLOC) {
		n = stun_usage_turn_create(
		    &t->agent, &msg, x->buf, sizeof x->buf,
		    auth ? &t->chal_msg : NULL,
		    STUN_USAGE_TURN_REQUEST_PORT_NORMAL, -1, lifetime, user, ul,
		    pass, pl, STUN_USAGE_TURN_COMPATIBILITY_RFC5766);
	} else if (kind == TX_REFRESH || kind == TX_CLOSE || kind == TX_CLEAR) {
		n = stun_usage_turn_create_refresh(
		    &t->agent, &msg, x->buf, sizeof x->buf,
		    auth ? &t->chal_msg : NULL, lifetime, user, ul, pass, pl,
		    STUN_USAGE_TURN_COMPATIBILITY_RFC5766);
	} else if (kind == TX_PERM) {
		/* libnice 0.1.21 declares stun_usage_turn_create_permission
		 * but does not export it: the same message, with its
		 * stunmessage API. */
		struct sockaddr_storage peer = t->peers[i - 1].addr;
		socklen_t plen = peer.ss_family == AF_INET6
		                     ? sizeof(struct sockaddr_in6)
		                     : sizeof(struct sockaddr_in);

		if (stun_agent_init_request(&t->agent, &msg, x->buf,
		                            sizeof x->buf,
		                            STUN_CREATEPERMISSION) &&
		    stun_message_append_xor_addr(
		        &msg, STUN_ATTRIBUTE_XOR_PEER_ADDRESS, &peer, plen) ==
		        STUN_MESSAGE_RETURN_SUCCESS &&
		    (!auth ||
		     (stun_message_append_bytes(&msg, STUN_ATTRIBUTE_NONCE,
		                                t->nonce, t->nonce_len) ==
		          STUN_MESSAGE_RETURN_SUCCESS &&
		      stun_message_append_bytes(&msg, STUN_ATTRIBUTE_REALM,
		                                t->realm, t->realm_len) ==
		          STUN_MESSAGE_RETURN_SUCCESS &&
		      stun_message_append_bytes(&msg, STUN_ATTRIBUTE_USERNAME,
		                                user, ul) ==
		          STUN_MESSAGE_RETURN_SUCCESS)))
			n = stun_agent_finish_message(&t->agent, &msg, pass,
			                              pl);
	}
	if (n == 0 || n > sizeof x->buf)
		return -1;
	x->len = n;
	x->kind = kind;
	x->authed = auth;
	x->stale = 0;
	x->sent = 0;
	stun_message_id(&msg, x->id);
	tx_send(t, x, now);
	return 0;
}

static int32_t
want_lifetime(const struct turn *t)
{
	return t->cfg.lifetime_s ? (int32_t)t->cfg.lifetime_s : -1;
}

static void
schedule_refresh(struct turn *t, uint64_t now)
{
	uint32_t lt = t->lifetime ? t->lifetime : 600;
	uint32_t margin = lt > 120 ? 60 : lt / 2;

	t->refresh_at = now + (uint64_t)(lt - margin) * 1000;
}

/* ---- the public functions ---- */

struct turn *
turn_new(const struct turn_url *u, const struct turn_config *cfg,
         turn_send_fn send, void *arg)
{
	struct turn *t = calloc(1, sizeof *t);

	if (t == NULL)
		return NULL;
	t->u = *u;
	t->u.user[sizeof t->u.user - 1] = 0;
	t->u.pass[sizeof t->u.pass - 1] = 0;
	t->u.host[sizeof t->u.host - 1] = 0;
	if (cfg != NULL)
		t->cfg = *cfg;
	if (t->cfg.rto_ms == 0 || t->cfg.rto_ms > 60000)
		t->cfg.rto_ms = 500;
	if (t->cfg.lifetime_s > 86400)
		t->cfg.lifetime_s = 86400;
	if (t->cfg.rc == 0 || t->cfg.rc > 12)
		t->cfg.rc = 7;
	if (t->cfg.perm_refresh_s == 0 || t->cfg.perm_refresh_s > 290)
		t->cfg.perm_refresh_s = 240;
	t->send = send;
	t->arg = arg;
	stun_agent_init(&t->agent, turn_known, STUN_COMPATIBILITY_RFC5389,
	                STUN_AGENT_USAGE_LONG_TERM_CREDENTIALS);
	return t;
}

void
turn_free(struct turn *t)
{
	free(t);
}

int
turn_start(struct turn *t, uint64_t now)
{
	if (t->state != TURN_IDLE)
		return -1;
	t->state = TURN_ALLOCATING;
	if (tx_start(t, 0, TX_ALLOC, want_lifetime(t), now) < 0) {
		fail(t, "TURN: cannot build an Allocate request");
		return -1;
	}
	return 0;
}

static void
perm_start(struct turn *t, int p, uint64_t now)
{
	if (tx_start(t, 1 + p, TX_PERM, -1, now) < 0) {
		char a[64];

		addr_str(&t->peers[p].addr, a, sizeof a);
		t->peers[p].failed = 1;
		snprintf(t->err, sizeof t->err,
		         "TURN: cannot build a CreatePermission for %s", a);
	}
}

int
turn_permit(struct turn *t, const struct sockaddr *peer, socklen_t len,
            uint64_t now)
{
	int free_slot = -1;

	if (t->state == TURN_FAILED || t->state == TURN_CLOSED)
		return -1;
	if (!sa_ok(peer, len))
		return -1;
	len = peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
	                                 : sizeof(struct sockaddr_in6);
	for (int i = 0; i < TURN_MAX_PEERS; i++) {
		if (t->peers[i].used && ip_eq(peer, &t->peers[i].addr)) {
			t->peers[i].used_at = now;
			return 0;
		}
		if (!t->peers[i].used && free_slot < 0)
			free_slot = i;
	}
	/* Full: the peer idle the longest (and at least TURN_PEER_IDLE_MS)
	 * makes room, if its permission is not being sent right now. */
	for (int i = 0; free_slot < 0 && i < TURN_MAX_PEERS; i++)
		if (t->tx[1 + i].kind == TX_NONE &&
		    t->peers[i].used_at + TURN_PEER_IDLE_MS <= now &&
		    (free_slot < 0 ||
		     t->peers[i].used_at < t->peers[free_slot].used_at))
			free_slot = i;
	if (free_slot < 0)
		return -1;
	memset(&t->peers[free_slot], 0, sizeof t->peers[free_slot]);
	memcpy(&t->peers[free_slot].addr, peer, (size_t)len);
	t->peers[free_slot].used = 1;
	t->peers[free_slot].used_at = now;
	if (t->state == TURN_READY)
		perm_start(t, free_slot, now);
	return 0;
}

int
turn_permitted(const struct turn *t, const struct sockaddr *peer)
{
	for (int i = 0; i < TURN_MAX_PEERS; i++)
		if (t->peers[i].used && t->peers[i].confirmed &&
		    ip_eq(peer, &t->peers[i].addr))
			return 1;
	return 0;
}

int
turn_send(struct turn *t, const struct sockaddr *peer, socklen_t peer_len,
          const uint8_t *data, size_t len)
{
	StunMessage msg;
	struct sockaddr_storage ss;
	size_t n;

	if (t->state != TURN_READY || len > TURN_MAX_DATA ||
	    !sa_ok(peer, peer_len) || !turn_permitted(t, peer))
		return -1;
	peer_len = peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
	                                      : sizeof(struct sockaddr_in6);
	memset(&ss, 0, sizeof ss);
	memcpy(&ss, peer, (size_t)peer_len);
	if (!stun_agent_init_indication(&t->agent, &msg, t->out, sizeof t->out,
	                                STUN_IND_SEND) ||
	    stun_message_append_xor_addr(&msg, STUN_ATTRIBUTE_XOR_PEER_ADDRESS,
	                                 &ss, peer_len) !=
	        STUN_MESSAGE_RETURN_SUCCESS ||
	    stun_message_append_bytes(&msg, STUN_ATTRIBUTE_DATA, data, len) !=
	        STUN_MESSAGE_RETURN_SUCCESS)
		return -1;
	n = stun_agent_finish_message(&t->agent, &msg, NULL, 0);
	if (n == 0 || n > sizeof t->out)
		return -1;
	t->send(t->arg, t->out, n);
	return 0;
}

void
turn_close(struct turn *t, uint64_t now)
{
	if (t->state == TURN_READY) {
		for (int i = 1; i < NTX; i++) {
			if (t->tx[i].kind != TX_NONE)
				stun_agent_forget_transaction(&t->agent,
				                              t->tx[i].id);
			t->tx[i].kind = TX_NONE;
		}
		t->state = TURN_CLOSING;
		if (tx_start(t, 0, TX_CLOSE, 0, now) == 0)
			return;
	}
	for (int i = 0; i < NTX; i++) {
		if (t->tx[i].kind != TX_NONE)
			stun_agent_forget_transaction(&t->agent, t->tx[i].id);
		t->tx[i].kind = TX_NONE;
	}
	if (t->state != TURN_FAILED)
		t->state = TURN_CLOSED;
}

enum turn_state
turn_state(const struct turn *t)
{
	return t->state;
}

const char *
turn_error(const struct turn *t)
{
	return t->err;
}

int
turn_relayed(const struct turn *t, struct sockaddr_storage *relayed,
             struct sockaddr_storage *mapped)
{
	if (t->state != TURN_READY)
		return -1;
	if (relayed != NULL)
		*relayed = t->relayed;
	if (mapped != NULL)
		*mapped = t->mapped;
	return 0;
}

uint32_t
turn_lifetime(const struct turn *t)
{
	return t->lifetime;
}

unsigned
turn_refreshes(const struct turn *t)
{
	return t->refreshes;
}

int
turn_is_stun(const uint8_t *buf, size_t len)
{
	if (len < 20 || len > TURN_MAX_DATAGRAM || (buf[0] & 0xC0) != 0 ||
	    buf[4] != 0x21 || buf[5] != 0x12 || buf[6] != 0xA4 ||
	    buf[7] != 0x42)
		return 0;
	return stun_message_validate_buffer_length(buf, len, true) == (int)len;
}

uint64_t
turn_next_timeout(const struct turn *t)
{
	uint64_t next = UINT64_MAX;

	if (t->state != TURN_ALLOCATING && t->state != TURN_READY &&
	    t->state != TURN_CLOSING)
		return next;
	for (int i = 0; i < NTX; i++)
		if (t->tx[i].kind != TX_NONE && t->tx[i].next < next)
			next = t->tx[i].next;
	if (t->state != TURN_READY)
		return next;
	if (t->tx[0].kind == TX_NONE && !t->cfg.no_refresh &&
	    t->refresh_at < next)
		next = t->refresh_at;
	for (int i = 0; i < TURN_MAX_PEERS; i++)
		if (t->peers[i].used && t->peers[i].confirmed &&
		    t->tx[1 + i].kind == TX_NONE &&
		    t->peers[i].refresh_at < next)
			next = t->peers[i].refresh_at;
	return next;
}

void
turn_tick(struct turn *t, uint64_t now)
{
	if (t->state != TURN_ALLOCATING && t->state != TURN_READY &&
	    t->state != TURN_CLOSING)
		return;
	for (int i = 0; i < NTX && t->state != TURN_FAILED; i++) {
		struct tx *x = &t->tx[i];

		if (x->kind == TX_NONE || x->next > now)
			continue;
		if (x->sent < t->cfg.rc) {
			tx_send(t, x, now);
			continue;
		}
		if (x->kind == TX_CLOSE) {
			closed(t);
		} else if (x->kind == TX_ALLOC || x->kind == TX_CLEAR) {
			fail(t,
			     "no answer from the TURN server %s:%u within %u s",
			     t->u.host, t->u.port,
			     (total_wait_ms(t) + 999) / 1000);
		} else if (x->kind == TX_REFRESH) {
			fail(t,
			     "allocation lost: no answer to Refresh from the "
			     "TURN server %s:%u within %u s",
			     t->u.host, t->u.port,
			     (total_wait_ms(t) + 999) / 1000);
		} else {
			char a[64];

			addr_str(&t->peers[i - 1].addr, a, sizeof a);
			stun_agent_forget_transaction(&t->agent, x->id);
			x->kind = TX_NONE;
			t->peers[i - 1].failed = 1;
			t->peers[i - 1].confirmed = 0;
			snprintf(t->err, sizeof t->err,
			         "permission for %s: no answer from the TURN "
			         "server within %u s",
			         a, (total_wait_ms(t) + 999) / 1000);
		}
	}
	if (t->state != TURN_READY)
		return;
	if (t->tx[0].kind == TX_NONE && !t->cfg.no_refresh &&
	    t->refresh_at <= now) {
		if (tx_start(t, 0, TX_REFRESH, want_lifetime(t), now) < 0)
			fail(t, "TURN: cannot build a Refresh request");
	}
	for (int i = 0; i < TURN_MAX_PEERS && t->state == TURN_READY; i++) {
		struct peer *p = &t->peers[i];

		if (!p->used || !p->confirmed || t->tx[1 + i].kind != TX_NONE ||
		    p->refresh_at > now)
			continue;
		/* A peer not heard from (nor permitted again) for a
		 * permission's lifetime is let go: its slot is free. */
		if (p->used_at + TURN_PEER_IDLE_MS <= now)
			memset(p, 0, sizeof *p);
		else
			perm_start(t, i, now);
	}
}

/* Keeps the 401/438 answer m (its REALM and NONCE). 0, or -1 (missing or
 * too long). */
static int
keep_challenge(struct turn *t, const StunMessage *m, const uint8_t *buf,
               size_t len)
{
	uint16_t rl = 0, nl = 0;
	const uint8_t *r = stun_message_find(m, STUN_ATTRIBUTE_REALM, &rl);
	const uint8_t *n = stun_message_find(m, STUN_ATTRIBUTE_NONCE, &nl);

	if (r == NULL || n == NULL || rl == 0 || nl == 0 ||
	    rl > sizeof t->realm || nl > sizeof t->nonce ||
	    len > sizeof t->chal)
		return -1;
	memcpy(t->realm, r, rl);
	memcpy(t->nonce, n, nl);
	t->realm_len = rl;
	t->nonce_len = nl;
	memcpy(t->chal, buf, len);
	memset(&t->chal_msg, 0, sizeof t->chal_msg);
	t->chal_msg.agent = &t->agent;
	t->chal_msg.buffer = t->chal;
	t->chal_msg.buffer_len = len;
	t->have_chal = 1;
	return 0;
}

static const char *
what(int kind)
{
	return kind == TX_ALLOC || kind == TX_CLEAR ? "allocation refused"
	       : kind == TX_REFRESH ? "allocation lost (Refresh refused)"
	                            : "permission refused";
}

/* An error answer with code to the request in slot i. */
static void
on_error(struct turn *t, int i, int code, const StunMessage *m,
         const uint8_t *buf, size_t len, uint64_t now)
{
	struct tx *x = &t->tx[i];
	int kind = x->kind;
	unsigned stale = x->stale + (code == 438);
	char why[96];

	x->kind = TX_NONE;
	if (kind == TX_CLOSE && code != 438) {
		closed(t);
		return;
	}
	if (kind == TX_CLEAR && code != 438 && (code != 401 || x->authed)) {
		/* Whatever the answer, the old allocation is gone or never
		 * will be: allocate again (a second 437 fails). */
		if (tx_start(t, 0, TX_ALLOC, want_lifetime(t), now) < 0)
			fail(t, "TURN: cannot build an Allocate request");
		return;
	}
	if (kind == TX_ALLOC && code == 437 && !t->cleared) {
		t->cleared = 1;
		if (tx_start(t, 0, TX_CLEAR, 0, now) < 0)
			fail(t, "TURN: cannot build a Refresh request");
		return;
	}
	if ((code == 401 && !x->authed) || code == 438) {
		if (keep_challenge(t, m, buf, len) < 0) {
			fail(t, "%s: %d without a usable realm and nonce",
			     what(kind), code);
			return;
		}
		if (stale > TURN_STALE_MAX) {
			if (kind == TX_CLOSE) {
				closed(t);
				return;
			}
			fail(t, "%s: 438 stale nonce %u times in a row",
			     what(kind), stale);
			return;
		}
		if (tx_start(t, i, kind,
		             kind == TX_PERM ? -1
		             : kind == TX_CLOSE || kind == TX_CLEAR
		                 ? 0
		                 : want_lifetime(t),
		             now) < 0)
			fail(t, "%s: cannot build the request again",
			     what(kind));
		else
			x->stale = stale;
		return;
	}
	if (code == 401) {
		fail(t,
		     "%s: 401 wrong credentials (user \"%s\", realm "
		     "\"%.*s\")",
		     what(kind), t->u.user, (int)t->realm_len,
		     (const char *)t->realm);
		return;
	}
	reason(m, why, sizeof why);
	if (kind == TX_PERM) {
		char a[64];

		addr_str(&t->peers[i - 1].addr, a, sizeof a);
		t->peers[i - 1].failed = 1;
		t->peers[i - 1].confirmed = 0;
		snprintf(t->err, sizeof t->err,
		         "permission for %s refused: "
		         "%d %s",
		         a, code, why);
		return;
	}
	fail(t, "%s: %d %s", what(kind), code, why);
}

static void
on_success(struct turn *t, int i, StunMessage *m, uint64_t now)
{
	struct tx *x = &t->tx[i];
	int kind = x->kind;

	x->kind = TX_NONE;
	if (kind == TX_CLEAR) {
		if (tx_start(t, 0, TX_ALLOC, want_lifetime(t), now) < 0)
			fail(t, "TURN: cannot build an Allocate request");
		return;
	}
	if (kind == TX_CLOSE) {
		closed(t);
	} else if (kind == TX_ALLOC) {
		socklen_t rl = sizeof t->relayed, ml = sizeof t->mapped;
		uint32_t bw = 0, lt = 0;
		StunUsageTurnReturn r = stun_usage_turn_process(
		    m, &t->relayed, &rl, &t->mapped, &ml, NULL, NULL, &bw, &lt,
		    STUN_USAGE_TURN_COMPATIBILITY_RFC5766);

		if (r != STUN_USAGE_TURN_RETURN_RELAY_SUCCESS &&
		    r != STUN_USAGE_TURN_RETURN_MAPPED_SUCCESS) {
			fail(t,
			     "allocation refused: the server's answer has no "
			     "XOR-RELAYED-ADDRESS");
			return;
		}
		if (r != STUN_USAGE_TURN_RETURN_MAPPED_SUCCESS)
			memset(&t->mapped, 0, sizeof t->mapped);
		t->lifetime = lt;
		t->state = TURN_READY;
		schedule_refresh(t, now);
		for (int p = 0; p < TURN_MAX_PEERS && t->state == TURN_READY;
		     p++)
			if (t->peers[p].used && t->tx[1 + p].kind == TX_NONE)
				perm_start(t, p, now);
	} else if (kind == TX_REFRESH) {
		uint32_t lt = t->lifetime;

		if (stun_usage_turn_refresh_process(
		        m, &lt, STUN_USAGE_TURN_COMPATIBILITY_RFC5766) !=
		    STUN_USAGE_TURN_RETURN_RELAY_SUCCESS) {
			fail(t, "allocation lost: bad Refresh answer");
			return;
		}
		t->lifetime = lt;
		t->refreshes++;
		schedule_refresh(t, now);
	} else if (kind == TX_PERM) {
		struct peer *p = &t->peers[i - 1];

		p->confirmed = 1;
		p->failed = 0;
		p->refresh_at = now + (uint64_t)t->cfg.perm_refresh_s * 1000;
	}
}

int
turn_input(struct turn *t, const uint8_t *buf, size_t len, uint64_t now,
           struct turn_data *out)
{
	StunMessage msg;
	StunValidationStatus v;
	StunTransactionId id;
	int cls, i;

	if (!turn_is_stun(buf, len))
		return TURN_IN_NOT_TURN;
	if (t->state != TURN_ALLOCATING && t->state != TURN_READY &&
	    t->state != TURN_CLOSING)
		return TURN_IN_DONE;
	memset(&msg, 0, sizeof msg);
	v = stun_agent_validate(&t->agent, &msg, buf, len, NULL, NULL);
	if (v == STUN_VALIDATION_NOT_STUN ||
	    v == STUN_VALIDATION_INCOMPLETE_STUN)
		return TURN_IN_NOT_TURN;
	cls = stun_message_get_class(&msg);
	if (cls == STUN_INDICATION) {
		const uint8_t *d;
		uint16_t dl = 0;

		if (v != STUN_VALIDATION_SUCCESS ||
		    stun_message_get_method(&msg) != STUN_IND_DATA ||
		    t->state != TURN_READY || out == NULL)
			return TURN_IN_DONE;
		memset(out, 0, sizeof *out);
		out->peer_len = sizeof out->peer;
		if (stun_message_find_xor_addr(
		        &msg, STUN_ATTRIBUTE_XOR_PEER_ADDRESS, &out->peer,
		        &out->peer_len) != STUN_MESSAGE_RETURN_SUCCESS)
			return TURN_IN_DONE;
		d = stun_message_find(&msg, STUN_ATTRIBUTE_DATA, &dl);
		/* The relay enforces permissions; this client too. */
		if (d == NULL ||
		    !turn_permitted(t, (const struct sockaddr *)&out->peer))
			return TURN_IN_DONE;
		for (int p = 0; p < TURN_MAX_PEERS; p++)
			if (t->peers[p].used &&
			    ip_eq((const struct sockaddr *)&out->peer,
			          &t->peers[p].addr))
				t->peers[p].used_at = now;
		out->data = d;
		out->len = dl;
		return TURN_IN_DATA;
	}
	if (cls != STUN_RESPONSE && cls != STUN_ERROR)
		return TURN_IN_DONE;
	stun_message_id(&msg, id);
	for (i = 0; i < NTX; i++)
		if (t->tx[i].kind != TX_NONE &&
		    memcmp(t->tx[i].id, id, sizeof id) == 0)
			break;
	if (i == NTX)
		return TURN_IN_DONE;
	if (cls == STUN_ERROR) {
		int code = 0;

		/* An error answer without MESSAGE-INTEGRITY to an
		 * authenticated request (libnice: unauthorized) still ends
		 * the transaction: it matched a transaction id that only
		 * this host and the server know. */
		if ((v != STUN_VALIDATION_SUCCESS &&
		     v != STUN_VALIDATION_UNAUTHORIZED &&
		     v != STUN_VALIDATION_UNAUTHORIZED_BAD_REQUEST &&
		     v != STUN_VALIDATION_UNKNOWN_ATTRIBUTE) ||
		    stun_message_find_error(&msg, &code) !=
		        STUN_MESSAGE_RETURN_SUCCESS)
			return TURN_IN_DONE;
		stun_agent_forget_transaction(&t->agent, id);
		on_error(t, i, code, &msg, buf, len, now);
		return TURN_IN_DONE;
	}
	if (v == STUN_VALIDATION_UNKNOWN_ATTRIBUTE) {
		if (t->tx[i].kind == TX_CLOSE) {
			closed(t);
		} else if (t->tx[i].kind == TX_PERM) {
			t->tx[i].kind = TX_NONE;
			t->peers[i - 1].failed = 1;
			snprintf(t->err, sizeof t->err,
			         "permission refused: an unknown "
			         "comprehension-required attribute");
		} else {
			fail(t,
			     "%s: the server's answer has an unknown "
			     "comprehension-required attribute",
			     what(t->tx[i].kind));
		}
		return TURN_IN_DONE;
	}
	if (v != STUN_VALIDATION_SUCCESS)
		return TURN_IN_DONE; /* a forged or damaged answer: wait on */
	on_success(t, i, &msg, now);
	return TURN_IN_DONE;
}
