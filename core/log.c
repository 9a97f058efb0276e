/* log.c: one line per event on stderr, with a level. */
#include <pthread.h>
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

void
hl__vlog(int level, const char *who, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	int n, keep = !(level & HL_LOG_PRIVATE);

	level &= ~HL_LOG_PRIVATE;
	if (level > hl__log_level)
		return;
	if (level < HL_LOG_ERROR)
		level = HL_LOG_ERROR;
	if (level > HL_LOG_DEBUG)
		level = HL_LOG_DEBUG;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof line, "%02d:%02d:%02d.%03ld %-5s %s%s",
	             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
	             level_names[level], who ? who : "", who ? ": " : "");
	if (n < 0 || (size_t)n >= sizeof line)
		n = 0;
	vsnprintf(line + n, sizeof line - n, fmt, ap);
	/* One write per line so that lines of several processes interleave
	 * whole; control characters from the network are made visible. */
	for (char *p = line + n; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	fprintf(stderr, "%s\n", line); /* stdio locks: whole lines */
	if (!keep)
		return;
	pthread_mutex_lock(&recent_lock);
	recent[recent_next].t = ts.tv_sec;
	recent[recent_next].level = level;
	snprintf(recent[recent_next].text, sizeof recent[recent_next].text,
	         "%s%s%s", who ? who : "", who ? ": " : "", line + n);
	recent_next = (recent_next + 1) % RECENT_MAX;
	if (recent_count < RECENT_MAX)
		recent_count++;
	pthread_mutex_unlock(&recent_lock);
}

void
hl__log(int level, const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hl__vlog(level, who, fmt, ap);
	va_end(ap);
}
