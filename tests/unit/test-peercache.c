/*
 * test-peercache.c: learning a server's WANHosts never writes peers.cache
 * on the spot (that is a tunnel's setup, on the loop); a timer writes it,
 * at most once every 5 s with every change made meanwhile, and the stop
 * writes what is left.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "check.h"
#include "daemon.h"

#define KH "00112233445566778899aabbccddeeff00112233"

static char dir[] = "/tmp/hl-test-peercache-XXXXXX";
static char path[4096];

static char *
cache(void)
{
	char *s = hl__read_file(path, 1 << 20, NULL);

	return s ? s : strdup("(none)");
}

static void
run_for(struct event_base *base, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

int
main(void)
{
	struct event_base *base = event_base_new();
	char *s;

	if (base == NULL || mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof path, "%s/peers.cache", dir);
	CHECK_INT(hl__peercache_load(dir), 0);
	CHECK_INT(hl__peercache_start(base), 0);

	hl__peercache_learn(KH, "192.0.2.1:7008");
	CHECK(access(path, F_OK) != 0,
	      "peers.cache written by learn itself, on the loop's time");
	run_for(base, 300);
	s = cache();
	CHECK(strstr(s, KH " ") != NULL && strstr(s, "192.0.2.1:7008"),
	      "the timer writes the first change at once, got \"%s\"", s);
	free(s);

	/* Two more changes within 5 s of that write: one write, later. */
	hl__peercache_learn(KH, "192.0.2.2:7008");
	hl__peercache_learn(KH, "192.0.2.3:7008");
	run_for(base, 1500);
	s = cache();
	CHECK(strstr(s, "192.0.2.1:7008") != NULL,
	      "no second write within 5 s of the first, got \"%s\"", s);
	free(s);
	run_for(base, 4500);
	s = cache();
	CHECK(strstr(s, "192.0.2.3:7008") != NULL &&
	          strstr(s, "192.0.2.2:") == NULL,
	      "the changes in one write after 5 s, got \"%s\"", s);
	free(s);

	/* The stop writes what the timer has not yet. */
	hl__peercache_learn(KH, "192.0.2.4:7008");
	hl__peercache_save();
	s = cache();
	CHECK(strstr(s, "192.0.2.4:7008") != NULL,
	      "the save at stop, got \"%s\"", s);
	free(s);

	hl__peercache_free();
	event_base_free(base);
	unlink(path);
	rmdir(dir);
	return check_done();
}
