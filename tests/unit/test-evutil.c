/*
 * test-evutil.c: the SDK's libevent helpers (hardline/evutil.h): timers
 * in milliseconds, freeing events that may not exist, and a stream
 * cleared for the core.
 */
#include <stdlib.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "check.h"
#include "hardline/evutil.h"

static int fired;

static void
count_callback(evutil_socket_t fd HL_UNUSED, short what, void *arg)
{
	CHECK(what & EV_TIMEOUT, "a timer fires with EV_TIMEOUT");
	CHECK(arg == &fired, "the callback gets its argument");
	fired++;
}

static void
read_callback(struct bufferevent *bev HL_UNUSED, void *arg HL_UNUSED)
{
}

static void
test_timers(struct event_base *base)
{
	struct event *ev;
	long long t0 = hl_mono_ms();

	ev = hl_evtimer_start_ms(base, count_callback, &fired, 30);
	CHECK(ev != NULL, "hl_evtimer_start_ms made a timer");
	if (ev == NULL)
		return;
	CHECK(evtimer_pending(ev, NULL), "and armed it");
	event_base_dispatch(base);
	CHECK_INT(fired, 1);
	CHECK(hl_mono_ms() - t0 >= 25, "it waited about 30 ms, not %lld",
	      hl_mono_ms() - t0);

	CHECK_INT(hl_evtimer_add_ms(ev, 0), 0);
	event_base_dispatch(base);
	CHECK_INT(fired, 2);

	hl_event_free(&ev);
	CHECK(ev == NULL, "hl_event_free leaves the pointer NULL");
	hl_event_free(&ev); /* and takes NULL */
}

static void
test_bufferevents(struct event_base *base)
{
	struct bufferevent *bev =
	    bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	struct timeval tv = {5, 0};
	bufferevent_data_cb rd = NULL;
	void *arg = NULL;

	CHECK(bev != NULL, "a bufferevent");
	if (bev == NULL)
		return;
	bufferevent_setcb(bev, read_callback, NULL, NULL, &fired);
	bufferevent_set_timeouts(bev, &tv, &tv);
	hl_bufferevent_handover(bev);
	bufferevent_getcb(bev, &rd, NULL, NULL, &arg);
	CHECK(rd == NULL && arg == NULL, "no callback left");
	hl_bufferevent_free(&bev);
	CHECK(bev == NULL, "hl_bufferevent_free leaves the pointer NULL");
	hl_bufferevent_free(&bev);
}

int
main(void)
{
	struct event_base *base = event_base_new();

	if (base == NULL)
		return 1;
	test_timers(base);
	test_bufferevents(base);
	event_base_free(base);
	return check_done();
}
