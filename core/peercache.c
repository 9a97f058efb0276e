/*
 * peercache.c: the addresses a node remembers for keyhashes it has
 * visited (the WANHosts their servers told it), kept in
 * <state_dir>/peers.cache across restarts, plus short-lived hints heard
 * on the LAN. The file is a line per keyhash:
 *   <keyhash> <unix time last seen> <addr>,<addr>,...
 * written atomically; entries unseen for 30 days are dropped. Learning
 * never writes the file on the spot (a tunnel's setup is no place for a
 * write and an fsync): it marks the cache dirty, and a timer on the loop
 * writes it at most once every SAVE_EVERY seconds, and at stop.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "daemon.h"

#define CACHE_MAX_ENTRIES 4096
/* LAN hints have their own, smaller room: a flood of announces must never
 * push out the addresses remembered from servers a user really visited. */
#define HINT_MAX_ENTRIES 256
#define CACHE_MAX_AGE (30L * 86400)
#define HINT_MAX_AGE 90
#define CACHE_FILE_MAX (4 * 1024 * 1024)
#define SAVE_EVERY 5 /* seconds, at most one write per */

struct entry {
	char keyhash[HL_KEYHASH_LEN + 1];
	time_t seen;
	int hint; /* memory only: a LAN announce, forgotten after 90 s */
	size_t naddrs;
	char addrs[HL_WANHOSTS_MAX][HL_ADDR_MAX];
	struct entry *next;
};

static struct entry *entries;
static size_t nentries, nhints;
static char cache_path[PATH_MAX];
static struct event *save_ev;
static int dirty;
static time_t last_save; /* monotonic */

static time_t
monotonic(void)
{
	return (time_t)(hl_mono_ms() / 1000);
}

static int
keyhash_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return i == HL_KEYHASH_LEN;
}

static struct entry *
find(const char *keyhash, int hint)
{
	for (struct entry *e = entries; e != NULL; e = e->next)
		if (e->hint == hint && strcmp(e->keyhash, keyhash) == 0)
			return e;
	return NULL;
}

static void
expire(time_t now)
{
	struct entry **pp = &entries;

	while (*pp != NULL) {
		struct entry *e = *pp;
		long age = (long)(now - e->seen);
		if (age > (e->hint ? HINT_MAX_AGE : CACHE_MAX_AGE)) {
			*pp = e->next;
			if (e->hint)
				nhints--;
			else
				nentries--;
			free(e);
		} else {
			pp = &e->next;
		}
	}
}

static struct entry *
get_entry(const char *keyhash, int hint)
{
	struct entry *e = find(keyhash, hint);

	if (e != NULL)
		return e;
	if ((hint ? nhints : nentries) >=
	    (hint ? HINT_MAX_ENTRIES : CACHE_MAX_ENTRIES)) {
		/* Forget the oldest of the same kind. */
		struct entry **pp, **oldest = NULL;
		for (pp = &entries; *pp != NULL; pp = &(*pp)->next)
			if ((*pp)->hint == hint &&
			    (oldest == NULL || (*pp)->seen < (*oldest)->seen))
				oldest = pp;
		if (oldest != NULL) {
			e = *oldest;
			*oldest = e->next;
			free(e);
			if (hint)
				nhints--;
			else
				nentries--;
		}
	}
	e = calloc(1, sizeof *e);
	if (e == NULL)
		return NULL;
	snprintf(e->keyhash, sizeof e->keyhash, "%s", keyhash);
	e->hint = hint;
	e->next = entries;
	entries = e;
	if (hint)
		nhints++;
	else
		nentries++;
	return e;
}

int
hl__peercache_load(const char *state_dir)
{
	char *buf, *line, *save = NULL;
	time_t now = time(NULL);
	int n;

	n = snprintf(cache_path, sizeof cache_path, "%s/peers.cache",
	             state_dir);
	if (n < 0 || (size_t)n >= sizeof cache_path)
		return -1;
	buf = hl__read_file(cache_path, CACHE_FILE_MAX, NULL);
	if (buf == NULL)
		return errno == ENOENT ? 0 : -1;
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char kh[HL_KEYHASH_LEN + 8], *addrs;
		long long seen;
		struct entry *e;
		int bad = 0;

		addrs = malloc(strlen(line) + 1);
		if (addrs == NULL)
			break;
		if (sscanf(line, "%47s %lld %s", kh, &seen, addrs) != 3 ||
		    !keyhash_ok(kh) || now - (time_t)seen > CACHE_MAX_AGE) {
			free(addrs);
			continue;
		}
		e = get_entry(kh, 0);
		if (e != NULL) {
			e->seen = (time_t)seen;
			e->naddrs = hl__endpoints_split(
			    addrs, e->addrs, HL_WANHOSTS_MAX, 1, &bad);
		}
		free(addrs);
	}
	free(buf);
	return 0;
}

void
hl__peercache_save(void)
{
	size_t cap = 64, len = 0;
	char *buf;

	if (cache_path[0] == '\0')
		return;
	expire(time(NULL));
	for (struct entry *e = entries; e != NULL; e = e->next)
		cap += 64 + e->naddrs * HL_ADDR_MAX;
	buf = malloc(cap);
	if (buf == NULL)
		return;
	for (struct entry *e = entries; e != NULL; e = e->next) {
		if (e->hint || e->naddrs == 0)
			continue;
		len += (size_t)snprintf(buf + len, cap - len, "%s %lld ",
		                        e->keyhash, (long long)e->seen);
		for (size_t i = 0; i < e->naddrs; i++)
			len += (size_t)snprintf(buf + len, cap - len, "%s%s",
			                        i ? "," : "", e->addrs[i]);
		len += (size_t)snprintf(buf + len, cap - len, "\n");
	}
	if (hl__write_file_atomic(cache_path, buf, len, 0600) != 0)
		hl__warn("cannot save %s: %s", cache_path, strerror(errno));
	free(buf);
	dirty = 0;
	last_save = monotonic();
}

static void
save_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
              void *arg HL_UNUSED)
{
	if (dirty)
		hl__peercache_save();
}

/* Save soon: at once when the last write is SAVE_EVERY seconds old, else
 * when it will be; changes meanwhile go into the same write. */
static void
schedule_save(void)
{
	time_t wait = last_save + SAVE_EVERY - monotonic();
	struct timeval tv = {wait > 0 ? wait : 0, 0};

	dirty = 1;
	if (save_ev != NULL && !evtimer_pending(save_ev, NULL))
		evtimer_add(save_ev, &tv);
}

int
hl__peercache_start(struct event_base *base)
{
	if (save_ev == NULL)
		save_ev = evtimer_new(base, save_callback, NULL);
	if (save_ev == NULL)
		return -1;
	if (dirty)
		schedule_save();
	return 0;
}

void
hl__peercache_learn(const char *keyhash, const char *wanhosts)
{
	struct entry *e;
	char addrs[HL_WANHOSTS_MAX][HL_ADDR_MAX];
	size_t n;
	int bad = 0, changed;

	if (!keyhash_ok(keyhash) || wanhosts == NULL)
		return;
	/* WANHosts and typed endpoints ("quic://..."), as the tunnel's OOB
	 * line gave them. */
	n = hl__endpoints_split(wanhosts, addrs, HL_WANHOSTS_MAX, 1, &bad);
	if (n == 0)
		return;
	e = get_entry(keyhash, 0);
	if (e == NULL)
		return;
	changed =
	    e->naddrs != n || memcmp(e->addrs, addrs, sizeof addrs[0] * n);
	memcpy(e->addrs, addrs, sizeof addrs[0] * n);
	e->naddrs = n;
	/* Saved when the addresses change, and on the first visit of a
	 * day, so that "last seen" stays meaningful for the 30-day
	 * expiry without a write per connection. */
	if (changed || time(NULL) - e->seen > 86400) {
		e->seen = time(NULL);
		schedule_save();
	}
}

void
hl__peercache_hint(const char *keyhash, const char *addr)
{
	struct entry *e;
	char host[HL_ADDR_MAX];
	uint16_t port;

	if (!keyhash_ok(keyhash) ||
	    hl__addr_split(addr, host, sizeof host, &port) != 0)
		return;
	e = get_entry(keyhash, 1);
	if (e == NULL)
		return;
	e->seen = time(NULL);
	for (size_t i = 0; i < e->naddrs; i++)
		if (strcmp(e->addrs[i], addr) == 0)
			return;
	if (e->naddrs == HL_WANHOSTS_MAX)
		e->naddrs--; /* the newest replaces the last */
	memmove(e->addrs[1], e->addrs[0], sizeof e->addrs[0] * e->naddrs);
	snprintf(e->addrs[0], sizeof e->addrs[0], "%s", addr);
	e->naddrs++;
}

size_t
hl__peercache_get(const char *keyhash, char out[][HL_ADDR_MAX], size_t max)
{
	size_t n = 0;

	expire(time(NULL));
	/* LAN hints first: they are fresher than anything remembered. */
	for (int hint = 1; hint >= 0; hint--) {
		struct entry *e = find(keyhash, hint);
		if (e == NULL)
			continue;
		for (size_t i = 0; i < e->naddrs && n < max; i++)
			snprintf(out[n++], HL_ADDR_MAX, "%s", e->addrs[i]);
	}
	return n;
}

void
hl__peercache_free(void)
{
	hl_event_free(&save_ev);
	save_ev = NULL;
	dirty = 0;
	last_save = 0;
	while (entries != NULL) {
		struct entry *e = entries;
		entries = e->next;
		free(e);
	}
	nentries = nhints = 0;
}
