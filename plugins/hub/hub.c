/*
 * hub: a rendezvous hub (docs/protocol.md, "Hub messages"). Service nodes
 * register their keyhashes here, proving they hold the key; clients ask
 * for a keyhash with their own candidates; the hub hands each side the
 * other's candidates and observed address, and is never on the data path.
 * The same UDP port answers STUN binding requests (libnice's stun
 * library), told apart by the first byte (RFC 7983, RFC 9443).
 *
 * One UDP socket on the core's loop, one sweep timer. Every table is
 * bounded (registrations, pending challenges, rate-limit buckets); every
 * datagram is checked by hubmsg_parse() or libnice's validator before
 * anything else looks at it; what is refused is dropped and counted.
 *
 * Config (plugins: hub:):
 *   listen: "0.0.0.0:7777"     the UDP address (required)
 *   addresses: ["hub.example.org:7777"]  names the hub is dialed by, beside
 *                              the local address a datagram arrived at
 *   max_registrations: 4096   max_pending: 1024
 *   lifetime: 90  refresh: 25  seconds
 *   rate: 20  burst: 40        datagrams per second per source address
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sodium.h>
#include <stun/stunagent.h>
#include <stun/stunmessage.h>

#include "hardline/plugin.h"
#include "hardline/evutil.h"
#include "hardline/util.h"
#include "hubauth.h"
#include "hubmsg.h"

#define DEFAULT_MAX_REGS 4096
#define DEFAULT_MAX_PENDING 1024
#define DEFAULT_LIFETIME 90
#define DEFAULT_REFRESH 25
#define DEFAULT_RATE 20
#define DEFAULT_BURST 40
#define CHALLENGE_MS 10000 /* a nonce must be used within this */
#define SWEEP_MS 5000
#define STATS_LOG_SEC 300 /* counters in the log this often, if changed */
#define READS_PER_EVENT 64
#define MAX_ADDRESSES 16
#define BUCKETS 1024 /* rate-limit buckets: 4-way sets, LRU */
#define BUCKET_WAYS 4
#define INTRO_BURST 10 /* intros sent to one registration */
#define INTRO_PER_SEC 5
#define RECV_BUF 2048

struct bucket {
	struct hubmsg_addr src; /* port 0: keyed by IP only */
	struct hl_rate rate;
};

struct reg {
	int used;
	int next; /* in its hash chain, or -1 */
	uint8_t keyhash[20];
	uint8_t token[HUBMSG_TOKEN_LEN];
	struct sockaddr_storage sa; /* where it registered from */
	socklen_t salen;
	struct sockaddr_storage local; /* the hub's address it dialed */
	struct hubmsg_addr observed;
	struct hubmsg_cand cands[HUBMSG_CANDS_MAX];
	size_t ncands;
	uint64_t last_ms;
	struct hl_rate intro;
};

struct pending {
	uint64_t expires_ms; /* 0: free */
	uint8_t nonce[HUBMSG_NONCE_LEN];
	uint8_t keyhash[20];
	struct hubmsg_addr src;
};

struct stats {
	unsigned long received, stun_answered, stun_changed, stun_dropped,
	    malformed, oversized, not_ours, rate_limited, unexpected,
	    challenges, replayed, forged, wrong_hub, unauthenticated,
	    registered, refreshed, expired, lookups, found, not_found, intros,
	    intros_limited, full, send_errors, status;
};

struct hub {
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct event_base *base;

	struct sockaddr_storage bind_sa;
	socklen_t bind_len;
	uint16_t port;
	char listen[HL_SOCKADDR_STRLEN + 8];
	char addresses[MAX_ADDRESSES][HUBMSG_HUBADDR_MAX + 1];
	int naddresses;
	int max_regs, max_pending, lifetime, refresh, rate, burst;

	int fd;
	/* RFC 5780 behaviour discovery (`hlcore nat` measures filtering):
	 * alt_fd, bound to the same address on another port, answers
	 * CHANGE-REQUESTs for another port; another of the host's addresses
	 * (ips) answers those for another address (a hub on 0.0.0.0 or [::]
	 * only: one bound to an address cannot send from another). */
	int alt_fd;
	uint16_t alt_port;
	struct sockaddr_storage ips[8];
	int nips;
	int family;
	struct event *rx_ev, *sweep_ev;

	struct reg *regs;
	int *heads; /* hash buckets of regs */
	int nheads;
	int nregs;
	int free_head; /* unused regs, chained through next */
	unsigned char hash_key[crypto_shorthash_KEYBYTES];
	struct pending *pending;
	int pending_next;
	struct bucket buckets[BUCKETS];

	StunAgent stun;
	struct stats st, st_logged;
	uint64_t stats_logged_ms;
	uint8_t buf[RECV_BUF];
};

static uint64_t
now_ms(void)
{
	return (uint64_t)hl_mono_ms();
}

static void
hex20(const uint8_t *raw, char out[41])
{
	hl_hex_encode(raw, 20, out);
}

/* ---- rate limits ---- */

/* The bucket of a source IP: a set of BUCKET_WAYS chosen by a hash of the
 * address, the least recently used of them taken over when it is new. */
static struct bucket *
bucket_for(struct hub *h, const struct hubmsg_addr *a)
{
	uint32_t x = 2166136261u;
	size_t n = a->family == 4 ? 4 : 8; /* an IPv6 /64 counts as one */
	struct bucket *set, *old;

	for (size_t i = 0; i < n; i++)
		x = (x ^ a->ip[i]) * 16777619u;
	set = &h->buckets[(x % (BUCKETS / BUCKET_WAYS)) * BUCKET_WAYS];
	old = &set[0];
	for (int i = 0; i < BUCKET_WAYS; i++) {
		if (set[i].rate.last_ms != 0 &&
		    set[i].src.family == a->family &&
		    memcmp(set[i].src.ip, a->ip, n) == 0)
			return &set[i];
		if (set[i].rate.last_ms < old->rate.last_ms)
			old = &set[i];
	}
	memset(old, 0, sizeof *old);
	old->src.family = a->family;
	memcpy(old->src.ip, a->ip, n);
	return old;
}

/* ---- registrations ---- */

/* The hash chain of a keyhash: SipHash with a key of this run, so that
 * nobody can make certificates whose keyhashes share a chain. */
static int
head_of(struct hub *h, const uint8_t *kh)
{
	unsigned char out[crypto_shorthash_BYTES];
	uint64_t x;

	crypto_shorthash(out, kh, 20, h->hash_key);
	memcpy(&x, out, sizeof x);
	return (int)(x % (uint64_t)h->nheads);
}

static struct reg *
reg_find(struct hub *h, const uint8_t *kh)
{
	for (int i = h->heads[head_of(h, kh)]; i >= 0; i = h->regs[i].next)
		if (memcmp(h->regs[i].keyhash, kh, 20) == 0)
			return &h->regs[i];
	return NULL;
}

/* A free slot linked under kh, or NULL when the table is full. */
static struct reg *
reg_new(struct hub *h, const uint8_t *kh)
{
	int b = head_of(h, kh), i = h->free_head;
	struct reg *r;

	if (i < 0)
		return NULL;
	r = &h->regs[i];
	h->free_head = r->next;
	memset(r, 0, sizeof *r);
	r->used = 1;
	memcpy(r->keyhash, kh, 20);
	r->next = h->heads[b];
	h->heads[b] = i;
	h->nregs++;
	return r;
}

static void
reg_remove(struct hub *h, struct reg *r)
{
	int idx = (int)(r - h->regs);
	int *pp = &h->heads[head_of(h, r->keyhash)];

	while (*pp >= 0 && *pp != idx)
		pp = &h->regs[*pp].next;
	if (*pp == idx)
		*pp = r->next;
	r->used = 0;
	r->next = h->free_head;
	h->free_head = idx;
	h->nregs--;
}

/* ---- sending ---- */

/* One control message (level, type, data) in buf, for sendmsg. */
static void
set_control(struct msghdr *mh, char *buf, int level, int type, const void *data,
            size_t len)
{
	struct cmsghdr *c;

	mh->msg_control = buf;
	mh->msg_controllen = CMSG_SPACE(len);
	c = CMSG_FIRSTHDR(mh);
	c->cmsg_level = level;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(c), data, len);
}

/* The header of one datagram in iov, to or from the address name. */
static struct msghdr
dgram_header(void *name, socklen_t namelen, struct iovec *iov)
{
	struct msghdr mh;

	memset(&mh, 0, sizeof mh);
	mh.msg_name = name;
	mh.msg_namelen = namelen;
	mh.msg_iov = iov;
	mh.msg_iovlen = 1;
	return mh;
}

/* Send from the local address the asker used (a hub with several
 * addresses must answer from the one that was dialed, or NATs drop the
 * answer): local is that address, or NULL. */
static void
send_raw_fd(struct hub *h, int fd, const uint8_t *buf, size_t len,
            const struct sockaddr_storage *to, socklen_t tolen,
            const struct sockaddr_storage *local)
{
	struct iovec iov = {(void *)buf, len};
	union {
		char b[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} cb;
	struct msghdr mh;
	ssize_t n;

	memset(&cb, 0, sizeof cb);
	mh = dgram_header((void *)to, tolen, &iov);
	if (local != NULL && local->ss_family == AF_INET &&
	    h->family == AF_INET) {
		struct in_pktinfo pi;
		memset(&pi, 0, sizeof pi);
		pi.ipi_spec_dst = ((const struct sockaddr_in *)local)->sin_addr;
		set_control(&mh, cb.b, IPPROTO_IP, IP_PKTINFO, &pi, sizeof pi);
	} else if (local != NULL && local->ss_family == AF_INET6 &&
	           h->family == AF_INET6) {
		struct in6_pktinfo pi;
		memset(&pi, 0, sizeof pi);
		pi.ipi6_addr = ((const struct sockaddr_in6 *)local)->sin6_addr;
		set_control(&mh, cb.b, IPPROTO_IPV6, IPV6_PKTINFO, &pi,
		            sizeof pi);
	}
	n = sendmsg(fd, &mh, MSG_DONTWAIT);
	if (n < 0 && errno == EINVAL && mh.msg_control != NULL) {
		/* The local address cannot be a source (it was a broadcast
		 * address, or is gone): let the kernel choose. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		n = sendmsg(fd, &mh, MSG_DONTWAIT);
	}
	if (n < 0) {
		char a[HL_SOCKADDR_STRLEN];
		h->st.send_errors++;
		hl_sockaddr_str((const struct sockaddr *)to, a, sizeof a);
		h->svc->log(h->self, HL_LOG_DEBUG, "sending to %s: %s", a,
		            strerror(errno));
	}
}

static void
send_raw(struct hub *h, const uint8_t *buf, size_t len,
         const struct sockaddr_storage *to, socklen_t tolen,
         const struct sockaddr_storage *local)
{
	send_raw_fd(h, h->fd, buf, len, to, tolen, local);
}

static void
send_msg(struct hub *h, const struct hubmsg *m,
         const struct sockaddr_storage *to, socklen_t tolen,
         const struct sockaddr_storage *local)
{
	uint8_t out[HUBMSG_MAX];
	size_t n = hubmsg_format(m, out, sizeof out);

	if (n == 0) {
		h->svc->log(h->self, HL_LOG_WARN, "cannot format a %s message",
		            hubmsg_type_name(m->type));
		return;
	}
	send_raw(h, out, n, to, tolen, local);
}

/* One datagram being handled: who sent it, to which local address. */
struct dgram {
	struct sockaddr_storage src;
	socklen_t srclen;
	struct hubmsg_addr from; /* src as a hubmsg address */
	char from_str[HL_SOCKADDR_STRLEN];
	struct sockaddr_storage local; /* ss_family 0: unknown */
	uint64_t now;
};

static void
answer(struct hub *h, const struct dgram *d, struct hubmsg *m)
{
	send_msg(h, m, &d->src, d->srclen, &d->local);
}

/* Start m as an answer of this type to q: q's txid, the attributes in
 * have, and q's keyhash when have has it. */
static void
answer_start(struct hubmsg *m, const struct hubmsg *q, int type, uint32_t have)
{
	memset(m, 0, sizeof *m);
	m->type = (uint8_t)type;
	memcpy(m->txid, q->txid, sizeof m->txid);
	m->have = have;
	if (have & HUBMSG_BIT(HUBMSG_A_KEYHASH))
		memcpy(m->keyhash, q->keyhash, 20);
}

/* Start m as an answer of this type to q that tells where a node is: its
 * observed address and its candidates (an INTRO, a LOOKUP_ANSWER). */
static void
answer_start_where(struct hubmsg *m, const struct hubmsg *q, int type,
                   const struct hubmsg_addr *observed,
                   const struct hubmsg_cand *cands, size_t ncands)
{
	answer_start(m, q, type,
	             HUBMSG_BIT(HUBMSG_A_KEYHASH) |
	                 HUBMSG_BIT(HUBMSG_A_OBSERVED));
	m->observed = *observed;
	memcpy(m->cands, cands, ncands * sizeof *cands);
	m->ncands = ncands;
}

static void refuse(struct hub *h, const struct dgram *d, const struct hubmsg *q,
                   int code, unsigned long *counter, int level, const char *fmt,
                   ...) __attribute__((format(printf, 7, 8)));

/* Refuse q: counted in *counter (unless NULL), logged at level, answered
 * with the error code (and q's keyhash, when it had one). */
static void
refuse(struct hub *h, const struct dgram *d, const struct hubmsg *q, int code,
       unsigned long *counter, int level, const char *fmt, ...)
{
	struct hubmsg m;
	char why[1024];
	va_list ap;

	if (counter != NULL)
		(*counter)++;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	h->svc->log(h->self, level, "%s", why);
	answer_start(&m, q, HUBMSG_ERROR,
	             HUBMSG_BIT(HUBMSG_A_ERROR) |
	                 (q->have & HUBMSG_BIT(HUBMSG_A_KEYHASH)));
	m.error = (uint16_t)code;
	answer(h, d, &m);
}

/* ---- the messages ---- */

static void
on_challenge_req(struct hub *h, const struct dgram *d, const struct hubmsg *q)
{
	uint32_t slot = (uint32_t)h->pending_next;
	struct pending *p = &h->pending[slot];
	struct hubmsg m;

	/* A ring: the oldest challenge makes room (the rate limit per source
	 * keeps one sender from flushing it quickly). The nonce starts with
	 * its slot, so that a registration finds it at once; the other 12
	 * bytes are random. */
	h->pending_next = (h->pending_next + 1) % h->max_pending;
	p->nonce[0] = (uint8_t)(slot >> 24);
	p->nonce[1] = (uint8_t)(slot >> 16);
	p->nonce[2] = (uint8_t)(slot >> 8);
	p->nonce[3] = (uint8_t)slot;
	if (RAND_bytes(p->nonce + 4, sizeof p->nonce - 4) != 1) {
		p->expires_ms = 0;
		return;
	}
	memcpy(p->keyhash, q->keyhash, 20);
	p->src = d->from;
	p->expires_ms = d->now + CHALLENGE_MS;
	h->st.challenges++;

	answer_start(&m, q, HUBMSG_CHALLENGE,
	             HUBMSG_BIT(HUBMSG_A_KEYHASH) | HUBMSG_BIT(HUBMSG_A_NONCE));
	memcpy(m.nonce, p->nonce, sizeof m.nonce);
	answer(h, d, &m);
}

/* Take the pending challenge with this nonce for this keyhash and source,
 * if it is still fresh: 0, or -1. A nonce is used up by any attempt. */
static int
pending_take(struct hub *h, const struct dgram *d, const struct hubmsg *q)
{
	uint32_t slot = (uint32_t)q->nonce[0] << 24 |
	                (uint32_t)q->nonce[1] << 16 |
	                (uint32_t)q->nonce[2] << 8 | q->nonce[3];
	struct pending *p;
	int ok;

	if (slot >= (uint32_t)h->max_pending)
		return -1;
	p = &h->pending[slot];
	if (p->expires_ms == 0 ||
	    CRYPTO_memcmp(p->nonce, q->nonce, sizeof p->nonce) != 0)
		return -1;
	ok = p->expires_ms > d->now &&
	     memcmp(p->keyhash, q->keyhash, 20) == 0 &&
	     hubmsg_addr_eq(&p->src, &d->from);
	p->expires_ms = 0;
	return ok ? 0 : -1;
}

/* 1 when the node signed an address this hub answers at: one of the
 * config's addresses:, or the local address the datagram came to with
 * the listening port. */
static int
hub_addr_is_ours(struct hub *h, const struct dgram *d, const char *addr)
{
	char host[HUBMSG_HUBADDR_MAX + 1];
	uint16_t port;
	struct hubmsg_addr mine, said;
	struct sockaddr_storage ss;

	for (int i = 0; i < h->naddresses; i++)
		if (strcasecmp(addr, h->addresses[i]) == 0)
			return 1;
	if (hl_addr_split(addr, host, sizeof host, &port) != 0 ||
	    port != h->port)
		return 0;
	memset(&said, 0, sizeof said);
	memset(&ss, 0, sizeof ss);
	if (inet_pton(AF_INET, host, said.ip) == 1)
		said.family = 4;
	else if (inet_pton(AF_INET6, host, said.ip) == 1)
		said.family = 6;
	else
		return 0;
	said.port = port;
	if (d->local.ss_family != 0)
		ss = d->local;
	else
		ss = h->bind_sa;
	if (hubmsg_addr_from_sa(&mine, (const struct sockaddr *)&ss) != 0)
		return 0;
	mine.port = h->port;
	return hubmsg_addr_eq(&mine, &said);
}

static void
on_register(struct hub *h, const struct dgram *d, const struct hubmsg *q)
{
	uint8_t data[HUBMSG_SIGNED_MAX];
	char kh[41], want[41];
	const char *why = NULL;
	size_t n;
	struct reg *r;
	struct hubmsg m;
	int isnew = 0;

	hex20(q->keyhash, want);
	if (pending_take(h, d, q) != 0) {
		refuse(h, d, q, HUBMSG_E_BAD_NONCE, &h->st.replayed,
		       HL_LOG_DEBUG,
		       "refused a registration of %s from %s: unknown, used or "
		       "stale nonce (a replay?)",
		       want, d->from_str);
		return;
	}
	if (!hub_addr_is_ours(h, d, q->hub_addr)) {
		refuse(h, d, q, HUBMSG_E_BAD_HUB, &h->st.wrong_hub,
		       HL_LOG_DEBUG,
		       "refused a registration of %s from %s: it was signed "
		       "for the hub %s, not this one (add it to addresses: if "
		       "it is)",
		       want, d->from_str, q->hub_addr);
		return;
	}
	h->svc->keyhash_of_cert(q->cert, q->cert_len, kh);
	n = hubmsg_signed_data(q->nonce, q->keyhash, q->hub_addr, data,
	                       sizeof data);
	if (strcmp(kh, want) != 0)
		why = "the certificate's keyhash is another";
	else if (n == 0 || hubauth_verify(q->cert, q->cert_len, q->sig,
	                                  q->sig_len, data, n, &why) != 0)
		why = why ? why : "bad signature";
	if (why != NULL) {
		refuse(h, d, q, HUBMSG_E_BAD_PROOF, &h->st.forged, HL_LOG_INFO,
		       "refused a registration of %s from %s: %s", want,
		       d->from_str, why);
		return;
	}
	r = reg_find(h, q->keyhash);
	if (r == NULL) {
		r = reg_new(h, q->keyhash);
		isnew = 1;
	}
	if (r == NULL) {
		refuse(h, d, q, HUBMSG_E_FULL, &h->st.full, HL_LOG_WARN,
		       "refused a registration of %s: %d registrations, the "
		       "maximum (max_registrations)",
		       want, h->max_regs);
		return;
	}
	/* The latest proof wins: whoever registered before held the key
	 * too (a node that moved, or restarted). */
	if (RAND_bytes(r->token, sizeof r->token) != 1) {
		reg_remove(h, r);
		return;
	}
	r->sa = d->src;
	r->salen = d->srclen;
	r->local = d->local;
	r->observed = d->from;
	memcpy(r->cands, q->cands, sizeof r->cands);
	r->ncands = q->ncands;
	r->last_ms = d->now;
	h->st.registered++;
	h->svc->log(h->self, isnew ? HL_LOG_INFO : HL_LOG_DEBUG,
	            "registered %s from %s (%zu candidate%s)", want,
	            d->from_str, q->ncands, q->ncands == 1 ? "" : "s");

	answer_start(&m, q, HUBMSG_REGISTERED,
	             HUBMSG_BIT(HUBMSG_A_KEYHASH) | HUBMSG_BIT(HUBMSG_A_TOKEN) |
	                 HUBMSG_BIT(HUBMSG_A_OBSERVED) |
	                 HUBMSG_BIT(HUBMSG_A_LIFETIME) |
	                 HUBMSG_BIT(HUBMSG_A_REFRESH));
	memcpy(m.token, r->token, sizeof m.token);
	m.observed = d->from;
	m.lifetime = (uint16_t)h->lifetime;
	m.refresh = (uint16_t)h->refresh;
	answer(h, d, &m);
}

static void
on_keepalive(struct hub *h, const struct dgram *d, const struct hubmsg *q)
{
	struct reg *r = reg_find(h, q->keyhash);
	struct hubmsg m;

	if (r == NULL ||
	    CRYPTO_memcmp(r->token, q->token, sizeof r->token) != 0 ||
	    !hubmsg_addr_eq(&r->observed, &d->from)) {
		char kh[41];
		/* A hub that restarted knows nobody: the node registers
		 * again. A wrong token, or a known token from another
		 * address (the NAT mapping changed), gets the same answer:
		 * only a fresh proof moves a registration. */
		hex20(q->keyhash, kh);
		refuse(h, d, q, HUBMSG_E_UNKNOWN,
		       r != NULL ? &h->st.unauthenticated : NULL, HL_LOG_DEBUG,
		       "keep-alive for %s from %s: %s", kh, d->from_str,
		       r == NULL ? "not registered" : "wrong token or address");
		return;
	}
	r->last_ms = d->now;
	r->local = d->local;
	if (q->ncands > 0) {
		memcpy(r->cands, q->cands, sizeof r->cands);
		r->ncands = q->ncands;
	}
	h->st.refreshed++;
	answer_start(&m, q, HUBMSG_KEEPALIVE_ACK,
	             HUBMSG_BIT(HUBMSG_A_KEYHASH) |
	                 HUBMSG_BIT(HUBMSG_A_OBSERVED));
	m.observed = d->from;
	answer(h, d, &m);
}

/* The size of an answer with n candidates of these families. */
static size_t
answer_size(const struct hubmsg_addr *obs, const struct hubmsg_cand *c,
            size_t n)
{
	size_t len = HUBMSG_HEAD + 3 + 20 + 3 + (obs->family == 4 ? 7 : 19);

	for (size_t i = 0; i < n; i++)
		len += 3 + 1 + (c[i].addr.family == 4 ? 7 : 19);
	return len;
}

static void
on_lookup(struct hub *h, const struct dgram *d, const struct hubmsg *q,
          size_t qlen)
{
	struct reg *r = reg_find(h, q->keyhash);
	struct hubmsg m;
	char kh[41];

	h->st.lookups++;
	hex20(q->keyhash, kh);
	if (r == NULL) {
		refuse(h, d, q, HUBMSG_E_NOT_FOUND, &h->st.not_found,
		       HL_LOG_DEBUG, "lookup of %s from %s: not registered", kh,
		       d->from_str);
		return;
	}
	h->st.found++;
	/* The service node learns who wants it and where to punch. */
	if (hl_rate_take(&r->intro, INTRO_BURST, INTRO_PER_SEC, d->now)) {
		answer_start_where(&m, q, HUBMSG_INTRO, &d->from, q->cands,
		                   q->ncands);
		/* From the address the node keeps its mapping open to: a
		 * NAT that filters by address drops anything else. */
		send_msg(h, &m, &r->sa, r->salen, &r->local);
		h->st.intros++;
	} else {
		h->st.intros_limited++;
	}
	h->svc->log(h->self, HL_LOG_DEBUG,
	            "lookup of %s from %s: at %s, %zu candidate%s", kh,
	            d->from_str, "its observed address", r->ncands,
	            r->ncands == 1 ? "" : "s");
	answer_start_where(&m, q, HUBMSG_LOOKUP_ANSWER, &r->observed, r->cands,
	                   r->ncands);
	/* No amplification: an answer is at most three times the size of
	 * the lookup; a client that wants every candidate pads its lookup
	 * (docs/protocol.md). */
	while (m.ncands > 0 &&
	       answer_size(&m.observed, m.cands, m.ncands) > 3 * qlen)
		m.ncands--;
	answer(h, d, &m);
}

static size_t
stats_json(struct hub *h, char *out, size_t cap)
{
	const struct stats *s = &h->st;
	int n = snprintf(
	    out, cap,
	    "{\"registrations\":%d,\"max_registrations\":%d,"
	    "\"received\":%lu,\"stun_answered\":%lu,\"stun_changed\":%lu,"
	    "\"stun_dropped\":%lu,"
	    "\"malformed\":%lu,\"oversized\":%lu,\"not_ours\":%lu,"
	    "\"rate_limited\":%lu,\"unexpected\":%lu,\"challenges\":%lu,"
	    "\"replayed\":%lu,\"forged\":%lu,\"wrong_hub\":%lu,"
	    "\"unauthenticated\":%lu,\"registered\":%lu,\"refreshed\":%lu,"
	    "\"expired\":%lu,\"lookups\":%lu,\"found\":%lu,"
	    "\"not_found\":%lu,\"intros\":%lu,\"intros_limited\":%lu,"
	    "\"full\":%lu,\"send_errors\":%lu,\"status\":%lu}",
	    h->nregs, h->max_regs, s->received, s->stun_answered,
	    s->stun_changed, s->stun_dropped, s->malformed, s->oversized,
	    s->not_ours, s->rate_limited, s->unexpected, s->challenges,
	    s->replayed, s->forged, s->wrong_hub, s->unauthenticated,
	    s->registered, s->refreshed, s->expired, s->lookups, s->found,
	    s->not_found, s->intros, s->intros_limited, s->full, s->send_errors,
	    s->status);
	return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static void
on_status_req(struct hub *h, const struct dgram *d, const struct hubmsg *q)
{
	char text[HUBMSG_TEXT_MAX];
	struct hubmsg m;

	/* Counters are for the hub's admin: loopback only. */
	if (!hl_sockaddr_is_loopback((const struct sockaddr *)&d->src)) {
		h->st.unauthenticated++;
		return;
	}
	h->st.status++;
	answer_start(&m, q, HUBMSG_STATUS, HUBMSG_BIT(HUBMSG_A_TEXT));
	m.text = text;
	m.text_len = stats_json(h, text, sizeof text);
	answer(h, d, &m);
}

static void
on_hub_message(struct hub *h, const struct dgram *d, const uint8_t *buf,
               size_t len)
{
	struct hubmsg q;
	const char *why = NULL;

	if (hubmsg_parse(buf, len, &q, &why) != 0) {
		h->st.malformed++;
		h->svc->log(h->self, HL_LOG_DEBUG,
		            "dropped a malformed hub message from %s: %s",
		            d->from_str, why);
		return;
	}
	switch (q.type) {
	case HUBMSG_CHALLENGE_REQ:
		on_challenge_req(h, d, &q);
		break;
	case HUBMSG_REGISTER:
		on_register(h, d, &q);
		break;
	case HUBMSG_KEEPALIVE:
		on_keepalive(h, d, &q);
		break;
	case HUBMSG_LOOKUP:
		on_lookup(h, d, &q, len);
		break;
	case HUBMSG_STATUS_REQ:
		on_status_req(h, d, &q);
		break;
	default: /* what a hub sends, not what it is sent */
		h->st.unexpected++;
		break;
	}
}

/* ---- STUN ---- */

#define CHANGE_IP 0x4u /* CHANGE-REQUEST flags (RFC 5780) */
#define CHANGE_PORT 0x2u
/* libnice 0.1.21 names OTHER-ADDRESS (RFC 5780) only as a comprehension-
 * optional number. */
#define STUN_ATTRIBUTE_OTHER_ADDRESS ((StunAttribute)0x802C)

/* Another address of this host than local's (same family), or NULL. */
static const struct sockaddr_storage *
other_ip(const struct hub *h, const struct sockaddr_storage *local)
{
	for (int i = 0; i < h->nips; i++) {
		const struct sockaddr_storage *a = &h->ips[i];
		if (local->ss_family != a->ss_family)
			continue;
		if (a->ss_family == AF_INET &&
		    ((const struct sockaddr_in *)a)->sin_addr.s_addr !=
		        ((const struct sockaddr_in *)local)->sin_addr.s_addr)
			return a;
		if (a->ss_family == AF_INET6 &&
		    memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		           &((const struct sockaddr_in6 *)local)->sin6_addr,
		           16) != 0)
			return a;
	}
	return NULL;
}

static socklen_t
sa_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6) {
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
		return sizeof(struct sockaddr_in6);
	}
	((struct sockaddr_in *)ss)->sin_port = htons(port);
	return sizeof(struct sockaddr_in);
}

static void
on_stun(struct hub *h, const struct dgram *d, const uint8_t *buf, size_t len)
{
	StunMessage req, resp;
	uint8_t out[256];
	struct sockaddr_storage mapped;
	const struct sockaddr_storage *other;
	socklen_t mlen;
	uint32_t change;
	size_t n;

	if (stun_message_validate_buffer_length(buf, len, true) != (int)len ||
	    stun_agent_validate(&h->stun, &req, buf, len, NULL, NULL) !=
	        STUN_VALIDATION_SUCCESS ||
	    stun_message_get_class(&req) != STUN_REQUEST ||
	    stun_message_get_method(&req) != STUN_BINDING ||
	    !stun_message_has_cookie(&req)) {
		h->st.stun_dropped++;
		return;
	}
	if (stun_message_find32(&req, STUN_ATTRIBUTE_CHANGE_REQUEST, &change) !=
	    STUN_MESSAGE_RETURN_SUCCESS)
		change = 0;
	other = other_ip(h, &d->local);
	if (((change & CHANGE_IP) && other == NULL) ||
	    ((change & CHANGE_PORT) && h->alt_fd < 0)) {
		h->st.stun_dropped++; /* no OTHER-ADDRESS told: not asked */
		return;
	}
	/* An IPv4 client of a dual-stack socket is told its IPv4 address. */
	mlen = hubmsg_addr_to_sa(&d->from, &mapped);
	if (!stun_agent_init_response(&h->stun, &resp, out, sizeof out, &req) ||
	    stun_message_append_xor_addr(
	        &resp, STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, &mapped, mlen) !=
	        STUN_MESSAGE_RETURN_SUCCESS) {
		h->st.stun_dropped++;
		return;
	}
	/* RFC 5780: where CHANGE-REQUESTs are answered from. */
	if (other != NULL && h->alt_fd >= 0) {
		struct sockaddr_storage oa = *other;
		socklen_t ol = sa_set_port(&oa, h->alt_port);
		stun_message_append_addr(&resp, STUN_ATTRIBUTE_OTHER_ADDRESS,
		                         (struct sockaddr *)&oa, ol);
	}
	n = stun_agent_finish_message(&h->stun, &resp, NULL, 0);
	if (n == 0) {
		h->st.stun_dropped++;
		return;
	}
	h->st.stun_answered++;
	if (change != 0)
		h->st.stun_changed++;
	send_raw_fd(h, (change & CHANGE_PORT) ? h->alt_fd : h->fd, out, n,
	            &d->src, d->srclen,
	            (change & CHANGE_IP) ? other : &d->local);
}

/* ---- the socket ---- */

static void
handle(struct hub *h, struct dgram *d, const uint8_t *buf, size_t len)
{
	int kind;

	h->st.received++;
	if (hubmsg_addr_from_sa(&d->from, (const struct sockaddr *)&d->src) !=
	        0 ||
	    d->from.port == 0) {
		h->st.not_ours++;
		return;
	}
	kind = hubmsg_demux(buf, len);
	if (kind == 0) {
		h->st.not_ours++;
		return;
	}
	if (!hl_rate_take(&bucket_for(h, &d->from)->rate, h->burst, h->rate,
	                  d->now)) {
		h->st.rate_limited++;
		return;
	}
	hl_sockaddr_str((const struct sockaddr *)&d->src, d->from_str,
	                sizeof d->from_str);
	if (kind == 2)
		on_stun(h, d, buf, len);
	else
		on_hub_message(h, d, buf, len);
}

static void
read_callback(evutil_socket_t fd, short what HL_UNUSED, void *arg)
{
	struct hub *h = arg;

	for (int k = 0; k < READS_PER_EVENT; k++) {
		struct dgram d;
		struct iovec iov = {h->buf, sizeof h->buf};
		union {
			char b[CMSG_SPACE(sizeof(struct in6_pktinfo)) +
			       CMSG_SPACE(sizeof(struct in_pktinfo))];
			struct cmsghdr align;
		} cb;
		struct msghdr mh;
		ssize_t n;

		memset(&d, 0, sizeof d);
		mh = dgram_header(&d.src, sizeof d.src, &iov);
		mh.msg_control = cb.b;
		mh.msg_controllen = sizeof cb.b;
		n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n < 0)
			break; /* EAGAIN, or an ICMP error: nothing to do */
		d.srclen = mh.msg_namelen;
		d.now = now_ms();
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL;
		     c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == IPPROTO_IP &&
			    c->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;
				memcpy(&pi, CMSG_DATA(c), sizeof pi);
				hl_sockaddr_make(&d.local, AF_INET,
				                 &pi.ipi_addr, 0);
			} else if (c->cmsg_level == IPPROTO_IPV6 &&
			           c->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi;
				memcpy(&pi, CMSG_DATA(c), sizeof pi);
				hl_sockaddr_make(&d.local, AF_INET6,
				                 &pi.ipi6_addr, 0);
			}
		}
		if ((size_t)n > HUBMSG_MAX || (mh.msg_flags & MSG_TRUNC)) {
			h->st.received++;
			h->st.oversized++;
			continue;
		}
		handle(h, &d, h->buf, (size_t)n);
	}
}

/* ---- timers ---- */

static int
stats_changed(const struct stats *a, const struct stats *b)
{
	return memcmp(a, b, sizeof *a) != 0;
}

static void
log_stats(struct hub *h, const char *when)
{
	char text[HUBMSG_TEXT_MAX];

	if (stats_json(h, text, sizeof text) > 0)
		h->svc->log(h->self, HL_LOG_INFO, "counters%s: %s", when, text);
	h->st_logged = h->st;
}

static void
sweep_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct hub *h = arg;
	uint64_t now = now_ms();

	for (int i = 0; i < h->max_regs; i++) {
		struct reg *r = &h->regs[i];
		char kh[41];
		if (!r->used ||
		    now - r->last_ms <= (uint64_t)h->lifetime * 1000)
			continue;
		hex20(r->keyhash, kh);
		h->svc->log(h->self, HL_LOG_INFO, "forgot %s: silent for %d s",
		            kh, h->lifetime);
		reg_remove(h, r);
		h->st.expired++;
	}
	for (int i = 0; i < h->max_pending; i++)
		if (h->pending[i].expires_ms != 0 &&
		    h->pending[i].expires_ms <= now)
			h->pending[i].expires_ms = 0;
	if (now - h->stats_logged_ms >= STATS_LOG_SEC * 1000) {
		if (stats_changed(&h->st, &h->st_logged))
			log_stats(h, "");
		h->stats_logged_ms = now;
	}
}

/* ---- config, init, fini ---- */

static int
check_conf(const struct hl_services *svc, struct hl_plugin *self,
           const struct hl_conf *conf, struct hub *h)
{
	static const char *const allowed[] = {
	    "listen",      "addresses", "max_registrations",
	    "max_pending", "lifetime",  "refresh",
	    "rate",        "burst",     NULL};
	const struct hl_conf *n;
	int bad = svc->conf_check_keys(self, conf, allowed);
	int max_regs = DEFAULT_MAX_REGS, max_pending = DEFAULT_MAX_PENDING;
	int lifetime = DEFAULT_LIFETIME, refresh = DEFAULT_REFRESH;
	int rate = DEFAULT_RATE, burst = DEFAULT_BURST;
	const char *listen = NULL;
	char host[HUBMSG_HUBADDR_MAX + 1];
	uint16_t port = 0;
	struct sockaddr_storage ss;
	socklen_t sslen = 0;

	bad += hl_conf_int(svc, self, conf, "max_registrations", 1, 262144,
	                   &max_regs) != 0;
	bad += hl_conf_int(svc, self, conf, "max_pending", 16, 262144,
	                   &max_pending) != 0;
	bad +=
	    hl_conf_int(svc, self, conf, "lifetime", 10, 3600, &lifetime) != 0;
	bad += hl_conf_int(svc, self, conf, "refresh", 2, 1800, &refresh) != 0;
	bad += hl_conf_int(svc, self, conf, "rate", 1, 100000, &rate) != 0;
	bad += hl_conf_int(svc, self, conf, "burst", 1, 100000, &burst) != 0;
	if (refresh * 2 > lifetime) {
		svc->conf_error(self,
		                svc->conf_get(conf, "refresh")
		                    ? svc->conf_get(conf, "refresh")
		                    : conf,
		                "refresh: at most half of lifetime (%d s), so "
		                "that one lost keep-alive does not lose the "
		                "registration",
		                lifetime);
		bad++;
	}
	n = svc->conf_get(conf, "listen");
	if (n == NULL || (listen = svc->conf_str(n)) == NULL) {
		svc->conf_error(self, n ? n : conf,
		                "listen: expected the UDP address to serve "
		                "on, e.g. \"0.0.0.0:7777\"");
		bad++;
	} else {
		memset(&ss, 0, sizeof ss);
		if (hl_addr_split(listen, host, sizeof host, &port) == 0 &&
		    port != 0) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
				s4->sin_family = AF_INET;
				s4->sin_port = htons(port);
				sslen = sizeof *s4;
			} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) ==
			           1) {
				s6->sin6_family = AF_INET6;
				s6->sin6_port = htons(port);
				sslen = sizeof *s6;
			}
		}
		if (sslen == 0) {
			svc->conf_error(self, n,
			                "listen: expected an IP address and a "
			                "port, e.g. \"0.0.0.0:7777\" or "
			                "\"[::]:7777\"");
			bad++;
		}
	}
	n = svc->conf_get(conf, "addresses");
	if (n != NULL) {
		size_t cnt =
		    svc->conf_type(n) == HL_CONF_LIST ? svc->conf_len(n) : 0;
		if (svc->conf_type(n) != HL_CONF_LIST || cnt > MAX_ADDRESSES) {
			svc->conf_error(
			    self, n,
			    "addresses: expected a list of at most "
			    "%d \"host:port\", the names this hub is "
			    "dialed by",
			    MAX_ADDRESSES);
			bad++;
			cnt = 0;
		}
		for (size_t i = 0; i < cnt; i++) {
			const struct hl_conf *it = svc->conf_item(n, i);
			const char *s = svc->conf_str(it);
			uint16_t p;
			if (s == NULL || strlen(s) > HUBMSG_HUBADDR_MAX ||
			    hl_addr_split(s, host, sizeof host, &p) != 0 ||
			    p == 0) {
				svc->conf_error(
				    self, it,
				    "addresses: expected \"host:port\"");
				bad++;
			} else if (h != NULL) {
				snprintf(h->addresses[h->naddresses++],
				         sizeof h->addresses[0], "%s", s);
			}
		}
	}
	if (h != NULL) {
		h->max_regs = max_regs;
		h->max_pending = max_pending;
		h->lifetime = lifetime;
		h->refresh = refresh;
		h->rate = rate;
		h->burst = burst;
		h->port = port;
		if (sslen > 0) {
			h->bind_sa = ss;
			h->bind_len = sslen;
			snprintf(h->listen, sizeof h->listen, "%s", listen);
		}
	}
	return bad ? -1 : 0;
}

/* RFC 5780's other port (the same address) and, for a hub on a wildcard
 * address, the host's other addresses. Without them CHANGE-REQUESTs are
 * not answered and OTHER-ADDRESS is not sent. */
static void
open_alt(struct hub *h)
{
	struct sockaddr_storage a = h->bind_sa;
	socklen_t al = sizeof a;
	struct ifaddrs *ifa0 = NULL;
	int wildcard =
	    h->family == AF_INET
	        ? ((struct sockaddr_in *)&a)->sin_addr.s_addr == INADDR_ANY
	        : IN6_IS_ADDR_UNSPECIFIED(
	              &((struct sockaddr_in6 *)&a)->sin6_addr);

	h->alt_fd =
	    socket(h->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	sa_set_port(&a, 0);
	if (h->alt_fd >= 0) {
		int off = 0, small = 1;
		if (h->family == AF_INET6)
			setsockopt(h->alt_fd, IPPROTO_IPV6, IPV6_V6ONLY, &off,
			           sizeof off);
		/* it only sends: what comes to it is left to drop */
		setsockopt(h->alt_fd, SOL_SOCKET, SO_RCVBUF, &small,
		           sizeof small);
		if (bind(h->alt_fd, (struct sockaddr *)&a, h->bind_len) != 0 ||
		    getsockname(h->alt_fd, (struct sockaddr *)&a, &al) != 0) {
			close(h->alt_fd);
			h->alt_fd = -1;
		} else {
			h->alt_port =
			    ntohs(a.ss_family == AF_INET6
			              ? ((struct sockaddr_in6 *)&a)->sin6_port
			              : ((struct sockaddr_in *)&a)->sin_port);
		}
	}
	if (!wildcard || getifaddrs(&ifa0) != 0)
		return;
	for (struct ifaddrs *i = ifa0; i != NULL && h->nips < 8;
	     i = i->ifa_next) {
		if (i->ifa_addr == NULL || (i->ifa_flags & IFF_LOOPBACK) ||
		    !(i->ifa_flags & IFF_UP))
			continue;
		if (i->ifa_addr->sa_family == AF_INET)
			memcpy(&h->ips[h->nips++], i->ifa_addr,
			       sizeof(struct sockaddr_in));
		else if (i->ifa_addr->sa_family == AF_INET6 &&
		         !IN6_IS_ADDR_LINKLOCAL(
		             &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr))
			memcpy(&h->ips[h->nips++], i->ifa_addr,
			       sizeof(struct sockaddr_in6));
	}
	freeifaddrs(ifa0);
}

static int
open_socket(struct hub *h)
{
	int on = 1, off = 0;

	h->family = h->bind_sa.ss_family;
	h->fd = socket(h->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (h->fd < 0) {
		h->svc->log(h->self, HL_LOG_ERROR, "socket: %s",
		            strerror(errno));
		return -1;
	}
	if (h->family == AF_INET6) {
		/* [::] serves IPv4 clients too. */
		setsockopt(h->fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
		if (setsockopt(h->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on,
		               sizeof on) != 0)
			h->svc->log(h->self, HL_LOG_WARN,
			            "IPV6_RECVPKTINFO: %s", strerror(errno));
	} else if (setsockopt(h->fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) !=
	           0) {
		h->svc->log(h->self, HL_LOG_WARN, "IP_PKTINFO: %s",
		            strerror(errno));
	}
	if (bind(h->fd, (struct sockaddr *)&h->bind_sa, h->bind_len) != 0) {
		h->svc->log(h->self, HL_LOG_ERROR,
		            "cannot bind UDP %s: %s (another program holds "
		            "it? change hub: listen:)",
		            h->listen, strerror(errno));
		return -1;
	}
	open_alt(h);
	h->rx_ev =
	    event_new(h->base, h->fd, EV_READ | EV_PERSIST, read_callback, h);
	if (h->rx_ev == NULL || event_add(h->rx_ev, NULL) != 0)
		return -1;
	return 0;
}

static void hub_fini(void *state);

static int
hub_init(const struct hl_services *svc, struct hl_plugin *self,
         const struct hl_conf *conf, void **state)
{
	static const uint16_t known[] = {STUN_ATTRIBUTE_SOFTWARE,
	                                 STUN_ATTRIBUTE_FINGERPRINT,
	                                 STUN_ATTRIBUTE_CHANGE_REQUEST, 0};
	struct hub *h = calloc(1, sizeof *h);
	struct timeval tv = {SWEEP_MS / 1000, 0};

	if (h == NULL)
		return -1;
	if (sodium_init() < 0) {
		svc->log(self, HL_LOG_ERROR, "libsodium failed to start");
		free(h);
		return -1;
	}
	h->svc = svc;
	h->self = self;
	h->base = svc->event_base(self);
	h->fd = -1;
	h->alt_fd = -1;
	if (check_conf(svc, self, conf, h) != 0) {
		free(h);
		return -1;
	}
	h->nheads = h->max_regs < 1024 ? 1024 : h->max_regs;
	h->regs = calloc((size_t)h->max_regs, sizeof *h->regs);
	h->heads = malloc((size_t)h->nheads * sizeof *h->heads);
	h->pending = calloc((size_t)h->max_pending, sizeof *h->pending);
	if (h->regs == NULL || h->heads == NULL || h->pending == NULL)
		goto fail;
	for (int i = 0; i < h->nheads; i++)
		h->heads[i] = -1;
	for (int i = 0; i < h->max_regs; i++)
		h->regs[i].next = i + 1 < h->max_regs ? i + 1 : -1;
	h->free_head = 0;
	randombytes_buf(h->hash_key, sizeof h->hash_key);
	stun_agent_init(&h->stun, known, STUN_COMPATIBILITY_RFC5389,
	                STUN_AGENT_USAGE_IGNORE_CREDENTIALS);
	if (open_socket(h) != 0)
		goto fail;
	h->sweep_ev = event_new(h->base, -1, EV_PERSIST, sweep_callback, h);
	if (h->sweep_ev == NULL || event_add(h->sweep_ev, &tv) != 0)
		goto fail;
	h->stats_logged_ms = now_ms();
	svc->log(self, HL_LOG_INFO,
	         "rendezvous hub on UDP %s (STUN too): at most %d "
	         "registrations, forgotten after %d s without a keep-alive "
	         "(asked every %d s)",
	         h->listen, h->max_regs, h->lifetime, h->refresh);
	*state = h;
	return 0;
fail:
	hub_fini(h);
	return -1;
}

static void
hub_fini(void *state)
{
	struct hub *h = state;

	if (h->st.received > 0)
		log_stats(h, " at exit");
	hl_event_free(&h->rx_ev);
	hl_event_free(&h->sweep_ev);
	if (h->fd >= 0)
		close(h->fd);
	if (h->alt_fd >= 0)
		close(h->alt_fd);
	free(h->regs);
	free(h->heads);
	free(h->pending);
	free(h);
}

static int
hub_validate(const struct hl_services *svc, struct hl_plugin *self,
             const struct hl_conf *conf)
{
	return check_conf(svc, self, conf, NULL);
}

/* A hub discovers nothing for this node and dials nothing: it is a
 * control-kind plugin with no facet, served from its own socket. */
HL_PLUGIN(HL_KIND_CONTROL, .name = "hub", .version = "0.1.0",
          .description = "a rendezvous hub for nodes behind NATs: "
                         "registrations with proof of the key, lookups, "
                         "STUN on the same UDP port",
          .default_priority = 50, .init = hub_init, .fini = hub_fini,
          .validate = hub_validate);
