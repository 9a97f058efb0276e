/*
 * live.c: the list of every object that owns a connection (a proxy
 * request, an OOB exchange, a service-side tunnel, a splice), so that a
 * clean stop closes them all (hl__live_abort_all, from main.c); among
 * them the connections that only have a last word to send (a refusal)
 * before they close.
 */
#include <stdlib.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "daemon.h"

static struct hl__live *live_list;

void
hl__live_add(struct hl__live *l, void (*abort)(struct hl__live *))
{
	l->abort = abort;
	HL_LIST_INSERT(live_list, l);
}

void
hl__live_remove(struct hl__live *l)
{
	if (l->prevp == NULL)
		return;
	HL_LIST_REMOVE(l);
	l->next = NULL;
	l->prevp = NULL;
}

void
hl__live_abort_all(void)
{
	while (live_list != NULL) {
		struct hl__live *l = live_list;
		hl__live_remove(l);
		l->abort(l);
	}
}

/* ---- connections that only have a last word to send ---- */

struct closing {
	struct hl__live live; /* first: the list hands back this pointer */
	struct bufferevent *bev;
};

static long nclosing;

static void
closing_free(struct closing *x)
{
	hl__live_remove(&x->live);
	bufferevent_free(x->bev);
	nclosing--;
	free(x);
}

static void
closing_abort(struct hl__live *l)
{
	closing_free((struct closing *)l);
}

static void
closing_write_callback(struct bufferevent *bev, void *arg)
{
	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		closing_free(arg);
}

static void
closing_event_callback(struct bufferevent *bev HL_UNUSED, short what HL_UNUSED,
                       void *arg)
{
	closing_free(arg);
}

void
hl__close_after_write(struct bufferevent *bev, const void *data, size_t len,
                      int timeout_sec)
{
	struct closing *x = len > 0 ? calloc(1, sizeof *x) : NULL;
	struct timeval tv = {timeout_sec, 0};

	if (x == NULL) {
		bufferevent_free(bev);
		return;
	}
	x->bev = bev;
	nclosing++;
	hl__live_add(&x->live, closing_abort);
	bufferevent_setcb(bev, NULL, closing_write_callback,
	                  closing_event_callback, x);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_disable(bev, EV_READ);
	bufferevent_write(bev, data, len);
	bufferevent_enable(bev, EV_WRITE);
}

long
hl__closing_count(void)
{
	return nclosing;
}
