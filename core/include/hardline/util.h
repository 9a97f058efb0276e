/*
 * hardline/util.h: small helpers that hlcore and its plugins all need,
 * offered once so that nobody writes them again: hex digits, keyhashes,
 * "host:port"
 * addresses and comma-separated lists of them, socket addresses as text,
 * intrusive lists and queues, monotonic time and pauses (a listener out
 * of descriptors), and, for init, the state, the error for a core too
 * old, and integer config values.
 *
 * Everything here is a static inline function or a macro: it adds no
 * symbol to the ABI, nothing to link, and no version to check. The
 * functions use only libc and POSIX (the init and config helpers also
 * need hardline/plugin.h, see below), keep no state, never allocate (but
 * HL_STATE_NEW, which is there to), may change errno, and any thread may
 * call them (the helpers below plugin.h's: only where the services table
 * may be used, the loop thread). Every output buffer is bounded by its
 * length argument.
 *
 * Installed beside hardline/plugin.h; part of the SDK, not of the ABI.
 */
#ifndef HARDLINE_UTIL_H
#define HARDLINE_UTIL_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A parameter a callback must take but does not use:
 *   static void on_timer(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
 *                        void *arg) */
#if defined(__GNUC__)
#define HL_UNUSED __attribute__((unused))
#else
#define HL_UNUSED
#endif

/* ---- hex ---- */

/* The value (0..15) of the hex digit c, in either case, or -1 when c is
 * not one (a char that is negative or NUL included). */
static inline int
hl_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode 2n hex digits (either case) from hex into the n bytes of out.
 * Returns 0, or -1 as soon as a character is not a hex digit: reading
 * stops there, so a string shorter than 2n (its NUL) is safe to pass. What
 * follows the 2n digits is not looked at. out may be partly written on
 * failure.
 */
static inline int
hl_hex_decode(const char *hex, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hl_hexval(hex[2 * i]);
		int lo = hi < 0 ? -1 : hl_hexval(hex[2 * i + 1]);
		if (lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* The n bytes of in as 2n lowercase hex digits and a NUL in out, which
 * holds 2n + 1 chars. */
static inline void
hl_hex_encode(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- keyhashes ---- */

/*
 * A keyhash (docs/protocol.md: 40 hex digits) in the form the services table
 * uses, lowercase: s[0..len) must be exactly 40 hex digits in any case.
 * Writes them in lowercase and a NUL into out and returns 0, or returns
 * -1 (out may be partly written). Reads nothing past len.
 */
static inline int
hl_keyhash_lower(const char *s, size_t len, char out[41])
{
	if (len != 40)
		return -1;
	for (size_t i = 0; i < 40; i++) {
		int c = (unsigned char)s[i];
		if (hl_hexval(c) < 0)
			return -1;
		out[i] = (char)(c >= 'A' && c <= 'F' ? c - 'A' + 'a' : c);
	}
	out[40] = '\0';
	return 0;
}

/* 1 when s is a keyhash in the services table's form: 40 lowercase hex
 * digits and the NUL; else 0. Reads stop at the first character that is
 * not one, so a shorter string is safe to pass. */
static inline int
hl_keyhash_is_lower(const char *s)
{
	for (size_t i = 0; i < 40; i++)
		if (hl_hexval(s[i]) < 0 || (s[i] >= 'A' && s[i] <= 'F'))
			return 0;
	return s[40] == '\0';
}

/* ---- comma-separated lists ---- */

/*
 * The next item of a comma-separated list (such as WANHosts, "a:1,[v6]:2")
 * in s[0..len): s[*a..*b) is the text from *pos to the next ',' or to len,
 * without the blanks (space, tab) around it; it may be empty (",,", a
 * trailing comma). *pos then moves past that comma. Returns 1 with an
 * item, 0 when none is left (*pos > len). Start with *pos = 0; s need not
 * be NUL-ended, and nothing beyond len is read.
 *
 *   for (size_t pos = 0, a, b; hl_split_next(s, len, &pos, &a, &b);)
 *       if (a < b) use(s + a, b - a);
 */
static inline int
hl_split_next(const char *s, size_t len, size_t *pos, size_t *a, size_t *b)
{
	size_t i = *pos, e = *pos;

	if (i > len)
		return 0;
	while (e < len && s[e] != ',')
		e++;
	*pos = e + 1;
	while (i < e && (s[i] == ' ' || s[i] == '\t'))
		i++;
	while (e > i && (s[e - 1] == ' ' || s[e - 1] == '\t'))
		e--;
	*a = i;
	*b = e;
	return 1;
}

/* ---- addresses ---- */

/* Room for any numeric socket address as hl_sockaddr_str writes it:
 * "[" 45 "]:" 5 digits and the NUL. */
#define HL_SOCKADDR_STRLEN 54

/*
 * Split "host:port" or "[v6]:port" (the form of every address in the
 * config, in WANHosts and in the services table) into host, without
 * brackets and NUL-ended, and port.
 *
 * Returns 0, or -1 when addr is NULL or malformed: no port; a port that
 * is not 0..65535 in decimal digits only; an empty host, or one of
 * hostlen chars or more; a bare IPv6 address (it needs brackets); a host
 * with a space, a control character, a byte from 0x7f up, '/', '[' or
 * ']'. Port 0 is accepted (a listener's "any port"): a caller that dials
 * or announces checks that it is not 0. The host is not resolved nor
 * checked further: it may be a name or an IP address. host and port are
 * written only on success.
 */
static inline int
hl_addr_split(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon, *h = addr;
	size_t hl;
	char *end;
	long p;

	if (addr == NULL || *addr == '\0')
		return -1;
	if (*addr == '[') {
		const char *rb = strchr(addr, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		h = addr + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL)
			return -1;
		hl = (size_t)(colon - addr);
		if (memchr(addr, ':', hl) != NULL)
			return -1; /* a bare IPv6 address needs brackets */
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	for (size_t i = 0; i < hl; i++) {
		unsigned char c = (unsigned char)h[i];
		if (c <= ' ' || c >= 0x7f || c == '/' || c == '[' || c == ']')
			return -1;
	}
	if (colon[1] < '0' || colon[1] > '9')
		return -1;
	errno = 0;
	p = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || p < 0 || p > 65535)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (uint16_t)p;
	return 0;
}

/*
 * Write a socket address as text into out (outlen chars, NUL included;
 * a longer text is cut, HL_SOCKADDR_STRLEN is always enough): "ip:port"
 * for IPv4 and for an IPv4-mapped IPv6 address (what a dual-stack
 * listener reports for an IPv4 peer), "[v6]:port" for IPv6, and
 * "(unknown address family N)" for anything else. sa must be at least as
 * long as its family's struct.
 */
static inline void
hl_sockaddr_str(const struct sockaddr *sa, char *out, size_t outlen)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
		snprintf(out, outlen, "%s:%u", ip, ntohs(s4->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], ip,
			          sizeof ip);
			snprintf(out, outlen, "%s:%u", ip,
			         ntohs(s6->sin6_port));
		} else {
			inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
			snprintf(out, outlen, "[%s]:%u", ip,
			         ntohs(s6->sin6_port));
		}
	} else {
		snprintf(out, outlen, "(unknown address family %d)",
		         sa->sa_family);
	}
}

/*
 * Fill ss with a socket address of family (AF_INET or AF_INET6) from the
 * address's bytes in network order at ip (4 or 16 of them, as a DNS
 * answer or getaddrinfo has them) and port (host order). Returns the
 * address's length, or 0 for another family (ss is then zeroed).
 */
static inline socklen_t
hl_sockaddr_make(struct sockaddr_storage *ss, int family, const void *ip,
                 uint16_t port)
{
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		*s4 = (struct sockaddr_in){.sin_family = AF_INET,
		                           .sin_port = htons(port)};
		memcpy(&s4->sin_addr, ip, 4);
		return sizeof *s4;
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		*s6 = (struct sockaddr_in6){.sin6_family = AF_INET6,
		                            .sin6_port = htons(port)};
		memcpy(&s6->sin6_addr, ip, 16);
		return sizeof *s6;
	}
	memset(ss, 0, sizeof *ss);
	return 0;
}

/* 1 when sa is a loopback address: IPv4 127.0.0.0/8, IPv6 ::1, or an
 * IPv4-mapped 127.0.0.0/8; else 0 (other families included). */
static inline int
hl_sockaddr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr) &&
		       s6->sin6_addr.s6_addr[12] == 127;
	}
	return 0;
}

/* ---- time ---- */

/*
 * Milliseconds of CLOCK_MONOTONIC: for deadlines and durations, never for
 * the time of day. Only where <time.h> declares clock_gettime, i.e. when
 * the plugin asks for POSIX (_POSIX_C_SOURCE 199309L or later, or
 * _GNU_SOURCE, defined before any header): plain -std=c11 hides it.
 */
#ifdef CLOCK_MONOTONIC
static inline long long
hl_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
#endif

/* ms milliseconds (0 or more) as a struct timeval, for a timer. */
static inline struct timeval
hl_timeval_ms(long long ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

/* ---- out of descriptors ---- */

/*
 * 1 when err, the errno of a failed accept(), means the process or the
 * system ran out of descriptors or of kernel memory (EMFILE, ENFILE,
 * ENOBUFS, ENOMEM); else 0. Then the connection stays in the backlog and
 * the listening socket stays readable: a listener that calls accept()
 * again at once spins, so it stops accepting for a pause (see
 * hl_pause_next) and resumes by itself.
 */
static inline int
hl_accept_out_of_descriptors(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS ||
	       err == ENOMEM;
}

/* The pause after one of cur ms: min when cur is 0 (or less, no pause
 * yet), else twice cur, and never more than max. */
static inline int
hl_pause_next(int cur, int min, int max)
{
	if (cur <= 0)
		return min;
	return cur > max / 2 ? max : cur * 2;
}

/* ---- records per peer address ---- */

/*
 * A hash table of records keyed by a peer's IP address, its port left
 * out (an IPv4-mapped IPv6 address is the IPv4 one): for caps per
 * address. Each record starts with a struct hl_addr_rec; the table is an
 * array of nbuckets heads, zeroed.
 */
struct hl_addr_rec {
	unsigned char key[17]; /* the family's size (4 or 16), the address */
	struct hl_addr_rec *next; /* in its bucket */
};

/* sa's key; 0, or -1 for a family other than IPv4 and IPv6. */
static inline int
hl_addr_key(const struct sockaddr *sa, unsigned char key[17])
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0,    0,
	                                         0, 0, 0, 0, 0xff, 0xff};

	memset(key, 0, 17);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const unsigned char *a =
		    ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, mapped, 12) == 0) {
			key[0] = 4;
			memcpy(key + 1, a + 12, 4);
		} else {
			key[0] = 16;
			memcpy(key + 1, a, 16);
		}
	} else {
		return -1;
	}
	return 0;
}

static inline struct hl_addr_rec **
hl_addr_bucket(struct hl_addr_rec **tab, size_t nbuckets,
               const unsigned char key[17])
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (int i = 0; i < 17; i++)
		h = (h ^ key[i]) * 16777619u;
	return &tab[h % nbuckets];
}

/* The record of sa's address. When it has none: with create, a new one
 * of size bytes (zeroed but for its key), else NULL. NULL too for
 * another family or out of memory. */
static inline void *
hl_addr_rec_get(struct hl_addr_rec **tab, size_t nbuckets,
                const struct sockaddr *sa, size_t size, int create)
{
	unsigned char key[17];
	struct hl_addr_rec **b, *r;

	if (hl_addr_key(sa, key) != 0)
		return NULL;
	b = hl_addr_bucket(tab, nbuckets, key);
	for (r = *b; r != NULL; r = r->next)
		if (memcmp(r->key, key, sizeof key) == 0)
			return r;
	if (!create || size < sizeof *r || (r = calloc(1, size)) == NULL)
		return NULL;
	memcpy(r->key, key, sizeof key);
	r->next = *b;
	*b = r;
	return r;
}

/* Take r out of the table and free it. */
static inline void
hl_addr_rec_free(struct hl_addr_rec **tab, size_t nbuckets,
                 struct hl_addr_rec *r)
{
	for (struct hl_addr_rec **pp = hl_addr_bucket(tab, nbuckets, r->key);
	     *pp != NULL; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			free(r);
			return;
		}
}

/* Free every record. */
static inline void
hl_addr_table_free(struct hl_addr_rec **tab, size_t nbuckets)
{
	for (size_t i = 0; i < nbuckets; i++)
		while (tab[i] != NULL) {
			struct hl_addr_rec *r = tab[i];
			tab[i] = r->next;
			free(r);
		}
}

/* ---- rate limits ---- */

/*
 * A token bucket: up to `burst` events at once, then `per_sec` a second.
 * Zero-initialised it is full; last_ms is 0 until its first use (so a
 * table of them can tell a free slot). Pass the same burst and per_sec
 * each time, and now_ms from one monotonic clock (hl_mono_ms()).
 */
struct hl_rate {
	int64_t milli; /* tokens, in thousandths */
	uint64_t last_ms;
};

/* 1: an event may go now (a token taken); 0: over the rate. */
static inline int
hl_rate_take(struct hl_rate *b, int burst, int per_sec, uint64_t now_ms)
{
	int64_t cap = (int64_t)burst * 1000;

	if (b->last_ms == 0) {
		b->milli = cap;
	} else {
		b->milli += (int64_t)(now_ms - b->last_ms) * per_sec;
		if (b->milli > cap)
			b->milli = cap;
	}
	b->last_ms = now_ms;
	if (b->milli < 1000)
		return 0;
	b->milli -= 1000;
	return 1;
}

/* ---- lists ---- */

/*
 * A doubly linked list threaded through its elements, each with two
 * members: `next` (the following element, NULL at the end) and `prevp`
 * (the address of the pointer that points to this element: the head, or
 * the previous element's next). An element removes itself in constant
 * time without knowing the head. head is the list's first-element
 * pointer, an lvalue (NULL when empty); the arguments are evaluated more
 * than once, so pass plain names or members.
 */
/* Put e first in the list head. */
#define HL_LIST_INSERT(head, e)                                                \
	do {                                                                   \
		(e)->next = (head);                                            \
		if ((e)->next != NULL)                                         \
			(e)->next->prevp = &(e)->next;                         \
		(e)->prevp = &(head);                                          \
		(head) = (e);                                                  \
	} while (0)
/* Take e out of the list it is in (its next and prevp are left as
 * they were). */
#define HL_LIST_REMOVE(e)                                                      \
	do {                                                                   \
		if ((e)->next != NULL)                                         \
			(e)->next->prevp = (e)->prevp;                         \
		*(e)->prevp = (e)->next;                                       \
	} while (0)

/*
 * A queue (first in, first out) threaded through its elements' `next`
 * member: head is the first element (NULL when empty) and tail the
 * address of the last element's next (&head when empty), both lvalues,
 * as in a queue of results that a thread hands to the loop. The
 * arguments are evaluated more than once: pass plain names or members.
 */
/* Make the queue empty (it forgets its elements, freeing none). */
#define HL_QUEUE_INIT(head, tail)                                              \
	do {                                                                   \
		(head) = NULL;                                                 \
		(tail) = &(head);                                              \
	} while (0)
/* Put e last in the queue. */
#define HL_QUEUE_PUSH(head, tail, e)                                           \
	do {                                                                   \
		(e)->next = NULL;                                              \
		*(tail) = (e);                                                 \
		(tail) = &(e)->next;                                           \
	} while (0)
/* Take every element at once: list gets the first (the rest follow
 * through next, in order), and the queue is empty. */
#define HL_QUEUE_TAKE_ALL(list, head, tail)                                    \
	do {                                                                   \
		(list) = (head);                                               \
		HL_QUEUE_INIT(head, tail);                                     \
	} while (0)

#ifdef __cplusplus
}
#endif

#endif /* HARDLINE_UTIL_H */

/* ---- config values ---- */

/*
 * This part needs the services table, so it is there only where
 * hardline/plugin.h was included before this header (include this header
 * again after plugin.h to add it). It uses only ABI 1.0 services.
 */
#if defined(HARDLINE_PLUGIN_H) && !defined(HARDLINE_UTIL_CONF)
#define HARDLINE_UTIL_CONF

#ifdef __cplusplus
extern "C" {
#endif

/*
 * For init, when the core lacks a service the plugin needs (HL_HAS said
 * no): logs "this hlcore (ABI M.m) lacks <what>: upgrade hlcore" as an
 * error and returns -1, init's answer.
 */
static inline int
hl_core_lacks(const struct hl_services *svc, struct hl_plugin *self,
              const char *what)
{
	svc->log(self, HL_LOG_ERROR,
	         "this hlcore (ABI %u.%u) lacks %s: upgrade hlcore",
	         svc->abi_major, svc->abi_minor, what);
	return -1;
}

/*
 * A plugin's state for init: p (a pointer to the plugin's struct, which
 * has the members svc, self and base) gets a zeroed struct with svc and
 * self set from init's arguments and base to the core's loop; or NULL
 * when out of memory. The arguments are evaluated more than once: pass
 * plain names.
 *
 *   HL_STATE_NEW(t, svc, self);
 *   if (t == NULL)
 *       return -1;
 */
#define HL_STATE_NEW(p, svc_, self_)                                           \
	do {                                                                   \
		(p) = calloc(1, sizeof *(p));                                  \
		if ((p) != NULL) {                                             \
			(p)->svc = (svc_);                                     \
			(p)->self = (self_);                                   \
			(p)->base = (svc_)->event_base(self_);                 \
		}                                                              \
	} while (0)

/*
 * An integer setting: the scalar under key in the map conf, in decimal
 * as strtol reads it (leading blanks and a sign allowed, nothing after the
 * digits), from lo to hi. Returns 0 with *out set, or 0 with *out
 * untouched when key is absent (keep the default there); or -1 after
 * reporting the problem at the value's place with svc->conf_error:
 * "<key>: expected a number" (not a scalar, or empty) or "<key>: expected
 * a number from <lo> to <hi>", and *out untouched.
 */
static inline int
hl_conf_int(const struct hl_services *svc, struct hl_plugin *self,
            const struct hl_conf *conf, const char *key, int lo, int hi,
            int *out)
{
	const struct hl_conf *n = svc->conf_get(conf, key);
	const char *s;
	char *end;
	long v;

	if (n == NULL)
		return 0;
	s = svc->conf_str(n);
	if (s == NULL || *s == '\0') {
		svc->conf_error(self, n, "%s: expected a number", key);
		return -1;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0' || errno != 0 || v < lo || v > hi) {
		svc->conf_error(self, n, "%s: expected a number from %d to %d",
		                key, lo, hi);
		return -1;
	}
	*out = (int)v;
	return 0;
}

/* n random bytes (getrandom(2), the kernel's CSPRNG) into p. */
static inline void
hl_random(void *p, size_t n)
{
	uint8_t *b = (uint8_t *)p;

	while (n > 0) {
		ssize_t r = getrandom(b, n, 0);
		if (r <= 0)
			continue;
		b += r;
		n -= (size_t)r;
	}
}

/* 1 when a and b are the same string, in time that depends on their
 * lengths only (passwords: every byte up to the longer length is looked
 * at, whatever differs and wherever). */
static inline int
hl_ct_streq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), n = la > lb ? la : lb;
	volatile unsigned char d = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char x = i < la ? (unsigned char)a[i] : 0;
		unsigned char y = i < lb ? (unsigned char)b[i] : 0;
		d |= x ^ y;
	}
	return (d | (la != lb)) == 0;
}

/* A key that takes one value or a list of them (n from conf_get, maybe
 * NULL): how many values (0 for NULL or a map: the caller calls that
 * wrong), and the i-th. */
static inline size_t
hl_conf_count(const struct hl_services *svc, const struct hl_conf *n)
{
	if (n == NULL)
		return 0;
	return svc->conf_type(n) == HL_CONF_SCALAR ? 1
	       : svc->conf_type(n) == HL_CONF_LIST ? svc->conf_len(n)
	                                           : 0;
}

static inline const struct hl_conf *
hl_conf_at(const struct hl_services *svc, const struct hl_conf *n, size_t i)
{
	return svc->conf_type(n) == HL_CONF_SCALAR ? n : svc->conf_item(n, i);
}

#ifdef __cplusplus
}
#endif

#endif /* HARDLINE_PLUGIN_H && !HARDLINE_UTIL_CONF */
