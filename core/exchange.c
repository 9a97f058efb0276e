/*
 * exchange.c: the first thing on every tunnel a transport hands over,
 * both ways: our OOB line leaves in a write of its own, the peer's line
 * is read (bounded in size and time) and parsed (oob.c). What follows
 * the line stays buffered for the splice (splice.c).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "daemon.h"

struct oob_exchange {
	struct hl__live live; /* first: the list hands back this pointer */
	struct bufferevent *bev;
	hl__oob_cb cb;
	void *arg;
	int flushed; /* our line has left the output buffer */
	int received; /* the peer's line is in oob */
	struct hl__oob oob;
	/* 10 s in all, however slowly the peer trickles bytes (bufferevent
	 * timeouts restart with every byte read). */
	struct event *deadline;
};

static void
oob_finish(struct oob_exchange *x, const char *error)
{
	struct bufferevent *bev = x->bev;
	hl__oob_cb cb = x->cb;
	void *arg = x->arg;
	struct hl__oob oob = x->oob;

	hl__live_remove(&x->live);
	hl_bufferevent_handover(bev);
	hl_event_free(&x->deadline);
	free(x);
	if (error != NULL) {
		hl__oob_clear(&oob);
		cb(arg, bev, NULL, error);
		return;
	}
	cb(arg, bev, &oob, NULL);
	hl__oob_clear(&oob);
}

static void
oob_read_callback(struct bufferevent *bev, void *arg)
{
	struct oob_exchange *x = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr nl;
	size_t len = evbuffer_get_length(in);
	char line[HL_OOB_MAX];

	if (x->received)
		return;
	nl = evbuffer_search(in, "\n", 1, NULL);
	if (nl.pos < 0) {
		if (len >= HL_OOB_MAX)
			oob_finish(x,
			           "the peer's OOB line is longer than 4 KiB");
		return;
	}
	if ((size_t)nl.pos >= HL_OOB_MAX) {
		oob_finish(x, "the peer's OOB line is longer than 4 KiB");
		return;
	}
	evbuffer_remove(in, line, (size_t)nl.pos);
	evbuffer_drain(in, 1);
	if (hl__oob_parse(line, (size_t)nl.pos, &x->oob) != 0) {
		hl__stats.bad_oob++;
		oob_finish(x, "the peer's OOB line is not a valid JSON object");
		return;
	}
	x->received = 1;
	/* Stop reading until whoever gets the tunnel next is ready: what
	 * follows the line stays in the input buffer. */
	bufferevent_disable(bev, EV_READ);
	if (x->flushed)
		oob_finish(x, NULL);
}

static void
oob_write_callback(struct bufferevent *bev, void *arg)
{
	struct oob_exchange *x = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	x->flushed = 1;
	if (x->received)
		oob_finish(x, NULL);
}

static void
oob_event_callback(struct bufferevent *bev HL_UNUSED, short what, void *arg)
{
	struct oob_exchange *x = arg;

	if (what & BEV_EVENT_TIMEOUT)
		oob_finish(x, "no OOB line from the peer within 10 s");
	else if (what & BEV_EVENT_EOF)
		oob_finish(x, "the peer closed the tunnel before its OOB line");
	else if (what & BEV_EVENT_ERROR)
		oob_finish(x, "the tunnel failed during the OOB exchange");
}

static void
oob_abort(struct hl__live *l)
{
	struct oob_exchange *x = (struct oob_exchange *)l;

	bufferevent_free(x->bev);
	hl__oob_clear(&x->oob);
	hl_event_free(&x->deadline);
	free(x);
}

static void
oob_deadline_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                      void *arg)
{
	oob_finish(arg, "no OOB line from the peer within 10 s");
}

void
hl__oob_exchange(struct bufferevent *bev, const char *line,
                 struct evbuffer *early, hl__oob_cb cb, void *arg)
{
	struct oob_exchange *x = calloc(1, sizeof *x);
	struct timeval tv = {HL_OOB_TIMEOUT_SEC, 0};

	if (x == NULL) {
		cb(arg, bev, NULL, "out of memory");
		return;
	}
	x->bev = bev;
	x->cb = cb;
	x->arg = arg;
	hl__live_add(&x->live, oob_abort);
	x->deadline =
	    evtimer_new(bufferevent_get_base(bev), oob_deadline_callback, x);
	if (x->deadline != NULL)
		evtimer_add(x->deadline, &tv);
	/* The line goes out in a write (and so a TLS record) of its own: no
	 * other byte is queued until the write callback says it has left. */
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_setwatermark(bev, EV_READ, 0, HL_OOB_MAX);
	bufferevent_setcb(bev, oob_read_callback, oob_write_callback,
	                  oob_event_callback, x);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_write(bev, line, strlen(line));
	if (early != NULL && evbuffer_get_length(early) > 0)
		bufferevent_write(bev, evbuffer_pullup(early, -1),
		                  evbuffer_get_length(early));
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/* A peer line may already be buffered (the transport read it with
	 * the handshake). */
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		oob_read_callback(bev, x);
}
