/* log.c: one line per event on stderr, with a level. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hl.h"

int hl__log_level = HL_LOG_INFO;

static const char *level_names[] = {"error", "warn", "info", "debug"};

void
hl__vlog(int level, const char *who, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	int n;

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
	fprintf(stderr, "%s\n", line);
}

void
hl__log(int level, const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hl__vlog(level, who, fmt, ap);
	va_end(ap);
}
