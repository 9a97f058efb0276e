/*
 * hardline/evutil.h: helpers for what plugins do with libevent, the loop
 * the core hands them (svc->event_base()): timers set and started in
 * milliseconds, events freed whether or not they were made, and a stream
 * handed over to the core in the state plugin.h asks for.
 *
 * Like hardline/util.h, everything here is a static inline function: no
 * symbol, nothing to link beyond libevent, which every plugin already
 * uses through the ABI. Loop thread only, as libevent's calls are.
 *
 * Installed beside hardline/plugin.h; part of the SDK, not of the ABI.
 */
#ifndef HARDLINE_EVUTIL_H
#define HARDLINE_EVUTIL_H

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* (Re)arm the event ev (a timer, or a persistent event's period) for ms
 * milliseconds (0 or more) from now, as event_add does with a struct
 * timeval: 0, or -1. */
static inline int
hl_evtimer_add_ms(struct event *ev, long long ms)
{
	struct timeval tv = hl_timeval_ms(ms);

	return event_add(ev, &tv);
}

/*
 * A new timer on base that calls cb(-1, EV_TIMEOUT, arg) once, ms
 * milliseconds from now: the timer (event_free cancels and frees it), or
 * NULL when it could not be made or armed.
 */
static inline struct event *
hl_evtimer_start_ms(struct event_base *base, event_callback_fn cb, void *arg,
                    long long ms)
{
	struct event *ev = evtimer_new(base, cb, arg);

	if (ev != NULL && hl_evtimer_add_ms(ev, ms) != 0) {
		event_free(ev);
		ev = NULL;
	}
	return ev;
}

/* event_free for an event that may never have been made: frees *evp
 * unless NULL, and leaves it NULL. For fini and for error paths. */
static inline void
hl_event_free(struct event **evp)
{
	if (*evp != NULL)
		event_free(*evp);
	*evp = NULL;
}

/* The same for a bufferevent: bufferevent_free unless NULL, then NULL. */
static inline void
hl_bufferevent_free(struct bufferevent **bevp)
{
	if (*bevp != NULL)
		bufferevent_free(*bevp);
	*bevp = NULL;
}

/*
 * Make bev ready to give to the core (the dial callback, svc->incoming):
 * no callbacks and no timeouts of the plugin's left set on it, as
 * plugin.h asks. The plugin must not touch bev once it is handed over.
 */
static inline void
hl_bufferevent_handover(struct bufferevent *bev)
{
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
}

#ifdef __cplusplus
}
#endif

#endif /* HARDLINE_EVUTIL_H */
