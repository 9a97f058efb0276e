/*
 * outbound.c: the client side of a tunnel, shared by every front (the
 * HTTP proxy, SOCKS, forwards, `hlcore connect`): ask the router for a
 * tunnel to the keyhash, exchange the OOB lines with the password,
 * remember the WANHosts the server told, and hand the tunnel over ready
 * to splice. Each front only says what its local side gets on failure.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "daemon.h"

/* How long a tunnel may wait for a route slot (limits routes) or for a
 * busy service's node (its OOB line said "busy"), before the front is
 * told HL_OUT_BUSY. */
#define SLOT_WAIT_SEC 15

enum { ROUTING, EXCHANGING, WAITING };

struct hl__outbound {
	struct hl__live live; /* first: the list hands back this pointer */
	struct hl__core *core;
	struct hl__route *route; /* ROUTING */
	int state;
	int cancelled; /* EXCHANGING: freed when the exchange ends */
	hl__outbound_cb cb;
	void *arg;
	char keyhash[HL_KEYHASH_LEN + 1];
	char password[HL_PASSWORD_MAX + 1];
	char via[192];
	unsigned flags; /* the winning route's HL__ROUTE_* */
	struct event *wait; /* WAITING: for a slot, or to try again */
	time_t give_up; /* no more waiting after this */
	int queued; /* in `queue`, for a route slot */
	struct hl__outbound *qnext;
	char busy[200]; /* why the service's node said busy */
	/* The tunnel's first bytes: still in the front's buffer (early_src),
	 * or taken to go right behind the OOB line (early), kept for a
	 * retry after "busy". */
	struct evbuffer *early_src, *early;
};

/* Routes in progress, from every front together (limits routes): a web
 * page can start hundreds of requests at once; beyond the cap they wait
 * in order for a slot. */
static long nroutes;
static struct hl__outbound *queue, **queue_tail = &queue;
static struct event *dequeue_ev;

static void start_route(struct hl__outbound *o);

static void
queue_remove(struct hl__outbound *o)
{
	struct hl__outbound **pp;

	if (!o->queued)
		return;
	for (pp = &queue; *pp != o; pp = &(*pp)->qnext)
		;
	*pp = o->qnext;
	if (queue_tail == &o->qnext)
		queue_tail = pp;
	o->queued = 0;
}

static void
dequeue_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                 void *arg HL_UNUSED)
{
	while (queue != NULL && nroutes < hl__limits.routes) {
		struct hl__outbound *o = queue;
		queue_remove(o);
		start_route(o);
	}
}

/* A route ended: the first waiting tunnels take the free slots, from the
 * loop (this may run inside a plugin's call to the router). */
static void
route_released(struct hl__core *c)
{
	nroutes--;
	if (queue == NULL)
		return;
	if (dequeue_ev == NULL)
		dequeue_ev = evtimer_new(c->base, dequeue_callback, NULL);
	if (dequeue_ev != NULL)
		event_active(dequeue_ev, EV_TIMEOUT, 0);
}

static void
outbound_free(struct hl__outbound *o)
{
	hl__live_remove(&o->live);
	queue_remove(o);
	if (o->route != NULL) {
		hl__route_cancel(o->route);
		route_released(o->core);
	}
	hl_event_free(&o->wait);
	if (o->early != NULL)
		evbuffer_free(o->early);
	/* The password is a secret: not left in freed memory. */
	memset(o->password, 0, sizeof o->password);
	free(o);
}

/* Tell the front it waited in vain. */
static void
give_up(struct hl__outbound *o)
{
	hl__outbound_cb cb = o->cb;
	void *cbarg = o->arg;
	char text[400];

	if (o->busy[0] != '\0')
		snprintf(text, sizeof text,
		         "the service's node is at a limit and asked to try "
		         "again later (\"%s\"); waited %d s for a slot",
		         o->busy, SLOT_WAIT_SEC);
	else
		snprintf(text, sizeof text,
		         "%ld routes are in progress on this node, its maximum "
		         "(limits routes), and no slot came free within %d s",
		         nroutes, SLOT_WAIT_SEC);
	hl__stats.refused_busy++;
	outbound_free(o);
	cb(cbarg, HL_OUT_BUSY, NULL, NULL, 0, text);
}

static void
wait_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct hl__outbound *o = arg;

	if (o->queued) { /* still no route slot */
		queue_remove(o);
		give_up(o);
		return;
	}
	start_route(o);
}

/* Wait ms (or until give_up, when ms < 0) with o->wait. */
static int
wait_for(struct hl__outbound *o, long ms)
{
	if (o->wait == NULL)
		o->wait = evtimer_new(o->core->base, wait_callback, o);
	if (o->wait == NULL)
		return -1;
	if (ms < 0)
		ms = (long)(o->give_up - time(NULL)) * 1000;
	if (ms < 0)
		ms = 0;
	o->state = WAITING;
	hl_evtimer_add_ms(o->wait, ms);
	return 0;
}

static void
outbound_oob_callback(void *arg, struct bufferevent *tunnel,
                      struct hl__oob *oob, const char *error)
{
	struct hl__outbound *o = arg;
	hl__outbound_cb cb = o->cb;
	void *cbarg = o->arg;
	char via[sizeof o->via];
	unsigned flags;

	if (o->cancelled) {
		bufferevent_free(tunnel);
		outbound_free(o);
		return;
	}
	snprintf(via, sizeof via, "%s", o->via);
	if (error != NULL) {
		bufferevent_free(tunnel);
		hl__info("tunnel to %.8s via %s: the Hardline handshake "
		         "failed: %s",
		         o->keyhash, via, error);
		outbound_free(o);
		cb(cbarg, HL_OUT_HANDSHAKE, NULL, via, 0, error);
		return;
	}
	if ((oob->wanhosts != NULL && oob->wanhosts[0] != '\0') ||
	    (oob->endpoints != NULL && oob->endpoints[0] != '\0')) {
		/* Remembered together: the typed endpoints after the
		 * WANHosts (the cache is hlcore's own). */
		size_t n = (oob->wanhosts ? strlen(oob->wanhosts) : 0) +
		           (oob->endpoints ? strlen(oob->endpoints) : 0) + 2;
		char *all = malloc(n);
		if (all != NULL) {
			snprintf(all, n, "%s,%s",
			         oob->wanhosts ? oob->wanhosts : "",
			         oob->endpoints ? oob->endpoints : "");
			hl__peercache_learn(o->keyhash, all);
			free(all);
		}
	}
	if (oob->is_busy) {
		/* The service's node is at a cap: wait and try again (with
		 * some jitter, so that not all come back at once). */
		long ms = oob->retry_ms < 50     ? 50
		          : oob->retry_ms > 2000 ? 2000
		                                 : oob->retry_ms;
		ms += random() % 50;
		bufferevent_free(tunnel);
		snprintf(o->busy, sizeof o->busy, "%s", oob->busy);
		if (time(NULL) + (ms + 999) / 1000 > o->give_up ||
		    wait_for(o, ms) != 0)
			give_up(o);
		return;
	}
	flags = o->flags;
	outbound_free(o);
	cb(cbarg, HL_OUT_OK, tunnel, via, flags, NULL);
}

/* The first bytes go right behind the OOB line to a node that is
 * hlcore for sure; any other waits for the server's line, so they go
 * back to the front's buffer (after a retry that took them). NULL: none
 * to send early. */
static struct evbuffer *
early_bytes(struct hl__outbound *o, unsigned flags)
{
	if (o->early_src == NULL)
		return NULL;
	if (!(flags & HL__ROUTE_HLCORE_PEER)) {
		if (o->early != NULL)
			evbuffer_prepend_buffer(o->early_src, o->early);
		return NULL;
	}
	if (o->early == NULL)
		o->early = evbuffer_new();
	if (o->early != NULL)
		evbuffer_add_buffer(o->early, o->early_src);
	return o->early;
}

static void
outbound_route_callback(void *arg, struct bufferevent *tunnel, const char *via,
                        unsigned flags, const char *trace)
{
	struct hl__outbound *o = arg;
	char *line;

	o->route = NULL;
	route_released(o->core);
	if (tunnel == NULL) {
		hl__outbound_cb cb = o->cb;
		void *cbarg = o->arg;
		outbound_free(o);
		cb(cbarg, HL_OUT_NO_ROUTE, NULL, NULL, 0, trace);
		return;
	}
	snprintf(o->via, sizeof o->via, "%s", via);
	o->flags = flags;
	line = hl__oob_client_line(o->password);
	if (line == NULL) {
		hl__outbound_cb cb = o->cb;
		void *cbarg = o->arg;
		bufferevent_free(tunnel);
		outbound_free(o);
		cb(cbarg, HL_OUT_HANDSHAKE, NULL, via, 0, "out of memory");
		return;
	}
	o->state = EXCHANGING;
	/* The exchange owns the tunnel until its callback; if it runs out
	 * of memory it calls back at once, which is fine here. */
	hl__oob_exchange(tunnel, line, early_bytes(o, flags),
	                 outbound_oob_callback, o);
	memset(line, 0, strlen(line));
	free(line);
}

/* Find a tunnel for o, or wait in line for a route slot. Called from the
 * loop only (never inside hl__outbound_start's caller's stack). */
static void
start_route(struct hl__outbound *o)
{
	if (nroutes >= hl__limits.routes) {
		o->queued = 1;
		o->qnext = NULL;
		*queue_tail = o;
		queue_tail = &o->qnext;
		if (wait_for(o, -1) != 0) {
			queue_remove(o);
			give_up(o);
		}
		return;
	}
	if (o->wait != NULL)
		evtimer_del(o->wait);
	nroutes++;
	o->state = ROUTING;
	o->route =
	    hl__route_start(o->core, o->keyhash, outbound_route_callback, o);
	if (o->route == NULL) {
		nroutes--;
		give_up(o);
	}
}

/*
 * On a stop (hl__live_abort_all): the route is cancelled; an OOB exchange
 * under way is on the list too and is aborted on its own, so nothing
 * calls back into o after this.
 */
static void
outbound_abort(struct hl__live *l)
{
	outbound_free((struct hl__outbound *)l);
}

struct hl__outbound *
hl__outbound_start(struct hl__core *c, const char *keyhash,
                   const char *password, hl__outbound_cb cb, void *arg)
{
	struct hl__outbound *o = calloc(1, sizeof *o);

	if (o == NULL)
		return NULL;
	o->core = c;
	o->cb = cb;
	o->arg = arg;
	o->give_up = time(NULL) + SLOT_WAIT_SEC;
	snprintf(o->keyhash, sizeof o->keyhash, "%s", keyhash);
	snprintf(o->password, sizeof o->password, "%s",
	         password ? password : "");
	hl__live_add(&o->live, outbound_abort);
	/* The route starts from the loop, so that cb never runs inside this
	 * call (a full queue or a failed start calls back). */
	if (wait_for(o, 0) != 0) {
		outbound_free(o);
		return NULL;
	}
	return o;
}

void
hl__outbound_early(struct hl__outbound *o, struct evbuffer *src)
{
	o->early_src = src;
}

void
hl__outbound_cancel(struct hl__outbound *o)
{
	if (o == NULL)
		return;
	if (o->state == EXCHANGING) {
		/* The exchange ends within HL_OOB_TIMEOUT_SEC and frees the
		 * tunnel then. */
		o->cancelled = 1;
		return;
	}
	outbound_free(o);
}

void
hl__outbound_stop(void)
{
	hl_event_free(&dequeue_ev);
	dequeue_ev = NULL;
}

struct hl__splice *
hl__outbound_splice(struct bufferevent *local, struct bufferevent *tunnel,
                    const char *keyhash, const char *peer, const char *via,
                    unsigned flags, const char *origin, hl__splice_cb cb,
                    void *arg)
{
	struct hl__splice *sp = hl__splice_new(local, tunnel, cb, arg);
	struct hl__tunnel_info info;

	if (sp == NULL) {
		bufferevent_free(local);
		bufferevent_free(tunnel);
		return NULL;
	}
	memset(&info, 0, sizeof info);
	info.outgoing = 1;
	info.service = "";
	snprintf(info.keyhash, sizeof info.keyhash, "%s", keyhash);
	snprintf(info.peer, sizeof info.peer, "%s", peer ? peer : "");
	snprintf(info.via, sizeof info.via, "%s", via ? via : "");
	info.relayed = (flags & HL__ROUTE_RELAYED) != 0;
	snprintf(info.origin, sizeof info.origin, "%s", origin ? origin : "");
	hl__splice_set_info(sp, &info);
	return sp;
}
