/*
 * limits.c: what one node holds. At start the soft descriptor limit is
 * raised to the hard one and every cap is sized from it (or taken from
 * the config's `limits:`). The table of sources keeps, per peer address
 * (the IP, without the port), the tunnels it holds and its wrong
 * passwords, so that one address cannot take the whole node and password
 * guessing slows down per source.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "daemon.h"

/* Until hl__limits_init: what a soft limit of 1024 gives. */
struct hl__limits hl__limits = {
    .nofile = 1024,
    .tunnels = 480,
    .per_peer = 240,
    .per_service = 480,
    .auth = 120,
    .auth_per_peer = 30,
    .auth_per_service = 120,
    .proxy_conns = 480,
    .routes = 120,
    .idle_timeout = HL_IDLE_TIMEOUT_DEFAULT,
};

#define SOURCE_BUCKETS 4096
/* A source with no tunnel is forgotten this long after its last wrong
 * password. */
#define SOURCE_FORGET_SEC 900
/* Wrong passwords in a row checked at once; after that each check from
 * the source waits 1 s, 2 s, 4 s ... up to PW_DELAY_MAX, one at a time. */
#define PW_FREE_TRIES 3
#define PW_DELAY_MAX 30
#define SWEEP_SEC 10

static struct hl__source *buckets[SOURCE_BUCKETS];
static size_t nsources, max_sources;
static struct event *sweep_ev;

static long
clamp(long v, long lo, long hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Read /proc/sys/fs/nr_open: the kernel's bound for an unlimited hard
 * limit. */
static rlim_t
nr_open(void)
{
	char *s = hl__read_file("/proc/sys/fs/nr_open", 64, NULL);
	long v = s ? atol(s) : 0;

	free(s);
	return v > 0 ? (rlim_t)v : 1048576;
}

void
hl__limits_init(const struct hl__config *cfg)
{
	const struct hl__limits_conf *lc = &cfg->limits;
	struct rlimit rl;
	rlim_t was = 0;
	long n, budget;
	struct hl__limits *L = &hl__limits;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		was = rl.rlim_cur;
		if (rl.rlim_max == RLIM_INFINITY)
			rl.rlim_max = nr_open();
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
				getrlimit(RLIMIT_NOFILE, &rl);
		}
		n = rl.rlim_cur > (rlim_t)(1L << 24) ? 1L << 24
		                                     : (long)rl.rlim_cur;
	} else {
		n = 1024;
	}
	L->nofile = n;
	/* Descriptors kept for the rest: plugins' sockets, DNS, files. */
	budget = n - (32 + n / 32);
	if (budget < 16)
		budget = 16;
	/* A served tunnel holds two descriptors (tunnel, backend), and so
	 * does a proxied one (browser, tunnel). */
	L->tunnels = lc->tunnels > 0 ? lc->tunnels : budget / 2;
	L->per_peer = lc->per_peer > 0 ? lc->per_peer : (L->tunnels + 1) / 2;
	L->per_service = lc->per_service > 0  ? lc->per_service
	                 : cfg->nservices > 1 ? L->tunnels * 3 / 4
	                                      : L->tunnels;
	L->auth = clamp(budget / 8, 16, 4096);
	if (L->auth > L->tunnels)
		L->auth = L->tunnels;
	L->auth_per_peer = clamp(L->auth / 4, 8, 256);
	L->auth_per_service = cfg->nservices > 1 ? L->auth * 3 / 4 : L->auth;
	L->proxy_conns = budget / 2;
	L->routes = lc->routes > 0 ? lc->routes : clamp(budget / 8, 16, 1024);
	L->idle_timeout = lc->idle_timeout;
	max_sources = (size_t)(L->tunnels + L->auth) + 4096;
	if ((rlim_t)n != was)
		hl__info("descriptors: %ld (soft limit raised from %lu)", n,
		         (unsigned long)was);
	else
		hl__info("descriptors: %ld", n);
	hl__info("limits: %ld tunnels served (%ld per peer address, %ld per "
	         "service), %ld authenticating (%ld per address, %ld per "
	         "service), %ld proxy connections, %ld routes in progress; "
	         "idle tunnels close after %s%ld s",
	         L->tunnels, L->per_peer, L->per_service, L->auth,
	         L->auth_per_peer, L->auth_per_service, L->proxy_conns,
	         L->routes, L->idle_timeout ? "" : "(never) ", L->idle_timeout);
}

/* ---- sources ---- */

/* The host part of "ip:port" or "[v6]:port"; an IPv4 peer on a dual-stack
 * listener ("[::ffff:1.2.3.4]:p") is the same source as "1.2.3.4:p". */
static void
host_of(const char *peer, char *out, size_t outlen)
{
	uint16_t port;

	if (hl_addr_split(peer, out, outlen, &port) != 0)
		snprintf(out, outlen, "%s", peer); /* "?" and the like */
	else if (strncmp(out, "::ffff:", 7) == 0 && strchr(out, '.') != NULL)
		memmove(out, out + 7, strlen(out + 7) + 1);
}

static unsigned
hash(const char *s)
{
	unsigned h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h % SOURCE_BUCKETS;
}

struct hl__source *
hl__source_get(const char *peer)
{
	char host[HL_PEER_MAX];
	struct hl__source *s;
	unsigned b;

	host_of(peer ? peer : "?", host, sizeof host);
	b = hash(host);
	for (s = buckets[b]; s != NULL; s = s->next)
		if (strcmp(s->host, host) == 0)
			return s;
	if (nsources >= max_sources)
		return NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL)
		return NULL;
	snprintf(s->host, sizeof s->host, "%s", host);
	s->next = buckets[b];
	buckets[b] = s;
	nsources++;
	return s;
}

static int
source_idle(const struct hl__source *s, time_t now)
{
	return s->auth == 0 && s->tunnels == 0 && s->pw_unlogged == 0 &&
	       (s->pw_fails == 0 || now - s->pw_last > SOURCE_FORGET_SEC);
}

static void
source_unlink(struct hl__source *s)
{
	struct hl__source **pp = &buckets[hash(s->host)];

	while (*pp != NULL && *pp != s)
		pp = &(*pp)->next;
	if (*pp == s) {
		*pp = s->next;
		nsources--;
		free(s);
	}
}

void
hl__source_put(struct hl__source *s)
{
	if (s != NULL && source_idle(s, time(NULL)))
		source_unlink(s);
}

/* How long the next password check from s waits; 0: at once. */
static long
pw_delay(const struct hl__source *s)
{
	int k = s->pw_fails - PW_FREE_TRIES;

	if (k < 0)
		return 0;
	return k >= 5                     ? PW_DELAY_MAX
	       : (1L << k) < PW_DELAY_MAX ? 1L << k
	                                  : PW_DELAY_MAX;
}

long
hl__source_pw_wait(struct hl__source *s)
{
	long long now = hl_mono_ms();
	long long at = s->pw_next > now ? s->pw_next : now;

	/* The checks take turns: this one at `at`, the next one the
	 * current delay later (more if this one is wrong too). */
	s->pw_next = at + pw_delay(s) * 1000;
	return (long)(at - now);
}

static void
pw_log(struct hl__source *s, time_t now)
{
	hl__warn("%lu more wrong password%s from %s in the last minute; "
	         "password checks from there now wait %ld s each",
	         s->pw_unlogged, s->pw_unlogged == 1 ? "" : "s", s->host,
	         pw_delay(s));
	s->pw_unlogged = 0;
	s->pw_logged = now;
}

long
hl__source_pw_backlog(const struct hl__source *s)
{
	long long now = hl_mono_ms();

	return s->pw_next > now ? (long)((s->pw_next - now) / 1000) : 0;
}

int
hl__source_pw_result(struct hl__source *s, int ok)
{
	time_t now = time(NULL);

	if (ok) {
		s->pw_fails = 0;
		s->pw_next = 0;
		return 0;
	}
	s->pw_fails++;
	s->pw_last = now;
	if (s->pw_next < hl_mono_ms() + pw_delay(s) * 1000)
		s->pw_next = hl_mono_ms() + pw_delay(s) * 1000;
	/* One line per source per minute: the first is the caller's, the
	 * rest are counted and told by the sweep. */
	if (now - s->pw_logged >= 60) {
		s->pw_logged = now;
		return 1;
	}
	s->pw_unlogged++;
	return 0;
}

static void
sweep_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
               void *arg HL_UNUSED)
{
	time_t now = time(NULL);

	for (size_t b = 0; b < SOURCE_BUCKETS; b++) {
		struct hl__source *s = buckets[b], *next;
		for (; s != NULL; s = next) {
			next = s->next;
			if (s->pw_unlogged > 0 && now - s->pw_logged >= 60)
				pw_log(s, now);
			if (source_idle(s, now))
				source_unlink(s);
		}
	}
}

int
hl__limits_start(struct event_base *base)
{
	sweep_ev = hl__every(base, SWEEP_SEC * 1000L, sweep_callback, NULL);
	return sweep_ev != NULL ? 0 : -1;
}

void
hl__limits_stop(void)
{
	/* The counts not yet told go to the log before they are gone. */
	for (size_t b = 0; b < SOURCE_BUCKETS; b++)
		for (struct hl__source *s = buckets[b]; s != NULL; s = s->next)
			if (s->pw_unlogged > 0)
				pw_log(s, time(NULL));
	if (sweep_ev != NULL) {
		event_free(sweep_ev);
		sweep_ev = NULL;
	}
	for (size_t b = 0; b < SOURCE_BUCKETS; b++)
		while (buckets[b] != NULL) {
			struct hl__source *s = buckets[b];
			buckets[b] = s->next;
			free(s);
		}
	nsources = 0;
}
