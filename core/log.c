/*
 * log.c: one line per event on stderr, with a level. A call site that
 * repeats (the same format, level and `who` more than FLOOD_BURST times
 * within FLOOD_WINDOW seconds) is counted instead of written, and one line
 * "(N more like this: <text>)" says how many were left out, once it has
 * been quiet for FLOOD_WINDOW seconds and every FLOOD_REPORT seconds while
 * it goes on (hl__log_flush, called every second by the loop). So a flood
 * of bad requests never fills a disk nor pushes the other lines out of
 * the recent log that the admin panel shows.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hl.h"

int hl__log_level = HL_LOG_INFO;

static const char *level_names[] = {"error", "warn", "info", "debug"};

/* The last lines logged, for the admin panel. */
#define RECENT_MAX 200
static struct {
	time_t t;
	int level;
	char text[512];
} recent[RECENT_MAX];
static size_t recent_next, recent_count;
static pthread_mutex_t recent_lock = PTHREAD_MUTEX_INITIALIZER;

/* Call sites that log often, least recently used replaced first. The key
 * (fmt, who, level) is compared, never dereferenced: a plugin's format
 * may be unmapped by the time its summary is written, so the slot keeps
 * its own copy of the text. */
#define FLOOD_BURST 10
#define FLOOD_WINDOW 10 /* seconds */
#define FLOOD_REPORT 60 /* seconds between summaries of a flood going on */
#define FLOOD_SLOTS 64
static struct flood {
	const void *fmt, *who; /* the key, with level */
	int level; /* HL_LOG_PRIVATE included */
	time_t window; /* when the current window began */
	time_t last; /* the last line of this site */
	time_t reported; /* the last summary, or when the flood began */
	unsigned count; /* lines in the window */
	unsigned long held; /* lines counted, not written, since the summary */
	int flooding;
	char who_text[64];
	char text[200]; /* the first line held back */
} floods[FLOOD_SLOTS];
static pthread_mutex_t flood_lock = PTHREAD_MUTEX_INITIALIZER;

const char *
hl__log_level_name(int level)
{
	return level >= 0 && level <= HL_LOG_DEBUG ? level_names[level] : "?";
}

void
hl__log_recent(void (*fn)(void *arg, time_t t, int level, const char *text),
               void *arg)
{
	size_t start, count;

	/* fn must not log: the lock is held (a copy would cost 100 KiB). */
	pthread_mutex_lock(&recent_lock);
	count = recent_count;
	start = (recent_next + RECENT_MAX - count) % RECENT_MAX;
	for (size_t i = 0; i < count; i++) {
		size_t k = (start + i) % RECENT_MAX;
		fn(arg, recent[k].t, recent[k].level, recent[k].text);
	}
	pthread_mutex_unlock(&recent_lock);
}

static time_t
monotonic(void)
{
	return (time_t)(hl_mono_ms() / 1000);
}

/* Write one line: msg is the message (made printable here), who may be
 * NULL; level holds HL_LOG_PRIVATE when it must stay out of the ring. */
static void
emit(int level, const char *who, char *msg)
{
	char line[2304];
	struct timespec ts;
	struct tm tm;
	int keep = !(level & HL_LOG_PRIVATE);

	level &= ~HL_LOG_PRIVATE;
	/* Control characters from the network are made visible. */
	for (char *p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %-5s %s%s%s",
	         tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
	         level_names[level], who ? who : "", who ? ": " : "", msg);
	/* One write per line so that lines of several processes interleave
	 * whole (stdio locks the stream). */
	fprintf(stderr, "%s\n", line);
	if (!keep)
		return;
	pthread_mutex_lock(&recent_lock);
	recent[recent_next].t = ts.tv_sec;
	recent[recent_next].level = level;
	snprintf(recent[recent_next].text, sizeof recent[recent_next].text,
	         "%s%s%s", who ? who : "", who ? ": " : "", msg);
	recent_next = (recent_next + 1) % RECENT_MAX;
	if (recent_count < RECENT_MAX)
		recent_count++;
	pthread_mutex_unlock(&recent_lock);
}

/* The summary of slot f; flood_lock held. */
static void
emit_summary(struct flood *f)
{
	char msg[320];

	if (f->held == 0)
		return;
	snprintf(msg, sizeof msg, "(%lu more like this: %s)", f->held, f->text);
	emit(f->level, f->who_text[0] ? f->who_text : NULL, msg);
	f->held = 0;
}

/*
 * Whether this line of a call site may be written: 1 yes, 0 it is
 * counted instead. msg is the formatted message (kept when it is the
 * first held back).
 */
static int
flood_admit(int level, const char *who, const void *key, const char *msg)
{
	struct flood *f = NULL, *lru = &floods[0];
	time_t now = monotonic();
	int ok;

	pthread_mutex_lock(&flood_lock);
	for (size_t i = 0; i < FLOOD_SLOTS; i++) {
		struct flood *s = &floods[i];
		if (s->fmt == key && s->level == level && s->who == who) {
			f = s;
			break;
		}
		if (lru->fmt != NULL && (s->fmt == NULL || s->last < lru->last))
			lru = s;
	}
	if (f == NULL) {
		f = lru;
		emit_summary(f);
		memset(f, 0, sizeof *f);
		f->fmt = key;
		f->who = who;
		f->level = level;
		f->window = now;
		snprintf(f->who_text, sizeof f->who_text, "%s", who ? who : "");
	}
	f->last = now;
	if (f->flooding) {
		ok = 0;
	} else {
		if (now - f->window >= FLOOD_WINDOW) {
			f->window = now;
			f->count = 0;
		}
		ok = ++f->count <= FLOOD_BURST;
		if (!ok) {
			f->flooding = 1;
			f->reported = now;
		}
	}
	if (!ok && f->held++ == 0)
		snprintf(f->text, sizeof f->text, "%s", msg);
	pthread_mutex_unlock(&flood_lock);
	return ok;
}

void
hl__log_flush(int all)
{
	time_t now = monotonic();

	pthread_mutex_lock(&flood_lock);
	for (size_t i = 0; i < FLOOD_SLOTS; i++) {
		struct flood *f = &floods[i];
		if (!f->flooding)
			continue;
		if (all || now - f->last >= FLOOD_WINDOW) {
			/* Over: say how many, and let the next burst in. */
			emit_summary(f);
			f->flooding = 0;
			f->count = 0;
			f->window = now;
		} else if (now - f->reported >= FLOOD_REPORT) {
			emit_summary(f);
			f->reported = now;
		}
	}
	pthread_mutex_unlock(&flood_lock);
}

void
hl__vlog_site(int level, const char *who, const void *site, const char *fmt,
              va_list ap)
{
	char msg[2048];
	int lvl = level & ~HL_LOG_PRIVATE;

	if (lvl > hl__log_level)
		return;
	if (lvl < HL_LOG_ERROR)
		lvl = HL_LOG_ERROR;
	if (lvl > HL_LOG_DEBUG)
		lvl = HL_LOG_DEBUG;
	level = lvl | (level & HL_LOG_PRIVATE);
	vsnprintf(msg, sizeof msg, fmt, ap);
	/* Debug lines are what an admin asked for to see everything: they
	 * are not rate-limited (debug is never the default level). */
	if (lvl < HL_LOG_DEBUG &&
	    !flood_admit(level, who, site ? site : fmt, msg))
		return;
	emit(level, who, msg);
}

void
hl__vlog(int level, const char *who, const char *fmt, va_list ap)
{
	hl__vlog_site(level, who, NULL, fmt, ap);
}

void
hl__log(int level, const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hl__vlog_site(level, who, NULL, fmt, ap);
	va_end(ap);
}

void
hl__log_text(int level, const char *who, const char *text)
{
	uint64_t h = 1469598103934665603ULL;

	/* The key of a line that comes formatted (libevent's): its text
	 * without digits, so that descriptor numbers do not split it. */
	for (const char *p = text; *p; p++)
		if (*p < '0' || *p > '9')
			h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	hl__log_site(level, who, (const void *)(uintptr_t)(h | 1), "%s", text);
}

void
hl__log_site(int level, const char *who, const void *site, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hl__vlog_site(level, who, site, fmt, ap);
	va_end(ap);
}
