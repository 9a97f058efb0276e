/*
 * test-log.c: repeated log lines are counted, not written (README, "Limits:
 * what one node holds"): a call site that logs the same line thousands of times
 * writes a burst, then one "(N more like this: ...)" line when flushed, and the
 * other lines still reach the recent log that the admin panel shows.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hl.h"

static char *
read_all(FILE *f)
{
	long len;
	char *s;

	fflush(f);
	len = ftell(f);
	s = calloc(1, (size_t)len + 1);
	rewind(f);
	if (s != NULL && len > 0 && fread(s, 1, (size_t)len, f) != (size_t)len)
		s[0] = '\0';
	fseek(f, 0, SEEK_END);
	return s;
}

static size_t
count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

struct recent {
	size_t flood, summary, other, priv;
};

static void
recent_line(void *arg, time_t t HL_UNUSED, int level HL_UNUSED,
            const char *text)
{
	struct recent *r = arg;

	if (strstr(text, "more like this: bad request from") != NULL)
		r->summary++;
	else if (strstr(text, "bad request from") != NULL)
		r->flood++;
	if (strstr(text, "an unrelated line") != NULL)
		r->other++;
	if (strstr(text, "secret") != NULL)
		r->priv++;
}

static void
flood(int n)
{
	for (int i = 0; i < n; i++)
		hl__log(HL_LOG_INFO, NULL, "bad request from 192.0.2.%d",
		        i % 250);
}

static void *
thread_flood(void *arg HL_UNUSED)
{
	for (int i = 0; i < 500; i++)
		hl__log(HL_LOG_WARN, "plugin-x", "thread line %d", i);
	return NULL;
}

static void
log_private(int i)
{
	hl__log(HL_LOG_INFO | HL_LOG_PRIVATE, NULL, "secret %d", i);
}

int
main(void)
{
	FILE *f = tmpfile();
	struct recent r = {0};
	pthread_t th[4];
	char *out;
	int saved = dup(2);

	if (f == NULL || saved < 0)
		return 1;
	fflush(stderr);
	dup2(fileno(f), 2);

	flood(5000);
	hl__log(HL_LOG_WARN, NULL, "an unrelated line");
	hl__log_flush(1);
	out = read_all(f);
	CHECK(count(out, "bad request from") <= 12,
	      "5000 repeats of one line: at most a burst and a summary "
	      "written, got %zu lines",
	      count(out, "bad request from"));
	CHECK(count(out, "more like this: bad request from 192.0.2.") == 1,
	      "one \"(N more like this: ...)\" line, got %zu",
	      count(out, "more like this: "));
	CHECK(strstr(out, "(4990 more like this: bad request from 192.0.2.") !=
	          NULL,
	      "the summary counts the 4990 lines not written");
	CHECK(count(out, "an unrelated line") == 1,
	      "an unrelated line is written once");
	free(out);

	hl__log_recent(recent_line, &r);
	CHECK(r.flood <= 10, "the recent log holds at most the burst, got %zu",
	      r.flood);
	CHECK(r.summary == 1, "the recent log holds the summary, got %zu",
	      r.summary);
	CHECK(r.other == 1, "the recent log holds the unrelated line");

	/* Private lines stay out of the recent log, summaries included. */
	for (int i = 0; i < 100; i++)
		log_private(i);
	hl__log_flush(1);
	memset(&r, 0, sizeof r);
	hl__log_recent(recent_line, &r);
	CHECK(r.priv == 0, "private lines in the recent log: %zu", r.priv);
	out = read_all(f);
	CHECK(count(out, "secret") <= 11, "private lines written: %zu",
	      count(out, "secret"));
	free(out);

	/* Threads logging at once: counted, not written, and no race (TSan
	 * and ASan see the rest). */
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, thread_flood, NULL);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	hl__log_flush(1);
	out = read_all(f);
	CHECK(count(out, "thread line") <= 11,
	      "2000 lines from 4 threads: written %zu",
	      count(out, "thread line"));
	CHECK(strstr(out, "plugin-x: (1990 more like this: thread line") !=
	          NULL,
	      "the threads' summary names the plugin and the count");
	free(out);

	/* Debug lines at info level: nothing at all. */
	for (int i = 0; i < 100; i++)
		hl__log(HL_LOG_DEBUG, NULL, "debug %d", i);
	hl__log_flush(1);
	out = read_all(f);
	CHECK(strstr(out, "debug") == NULL, "debug lines at level info");
	free(out);

	fflush(stderr);
	dup2(saved, 2);
	return check_done();
}
