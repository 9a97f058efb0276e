/*
 * outbound.c: the client side of a tunnel, shared by every front (the
 * HTTP proxy, SOCKS, forwards, `hlcore connect`): ask the router for a
 * tunnel to the keyhash, exchange the OOB lines with the password,
 * remember the WANHosts the server told, and hand the tunnel over ready
 * to splice. Each front only says what its local side gets on failure.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>

#include "daemon.h"

/* Tunnels being set up at once (routing or in the OOB exchange), from
 * every front together: a bound on what local clients can make this node
 * hold before any service has answered. */
#define OUTBOUND_MAX 1024

enum { ROUTING, EXCHANGING };

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
	char via[128];
	struct event *busy; /* HL_OUT_BUSY comes from the loop */
};

static size_t npending;

static void
outbound_free(struct hl__outbound *o)
{
	hl__live_remove(&o->live);
	if (o->route != NULL)
		hl__route_cancel(o->route);
	if (o->busy != NULL)
		event_free(o->busy);
	/* The password is a secret: not left in freed memory. */
	memset(o->password, 0, sizeof o->password);
	free(o);
	npending--;
}

static void
outbound_oob_callback(void *arg, struct bufferevent *tunnel,
                      struct hl__oob *oob, const char *error)
{
	struct hl__outbound *o = arg;
	hl__outbound_cb cb = o->cb;
	void *cbarg = o->arg;
	char via[sizeof o->via];

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
		cb(cbarg, HL_OUT_HANDSHAKE, NULL, via, error);
		return;
	}
	if (oob->wanhosts != NULL && oob->wanhosts[0] != '\0')
		hl__peercache_learn(o->keyhash, oob->wanhosts);
	outbound_free(o);
	cb(cbarg, HL_OUT_OK, tunnel, via, NULL);
}

static void
outbound_route_callback(void *arg, struct bufferevent *tunnel, const char *via,
                        const char *trace)
{
	struct hl__outbound *o = arg;
	char *line;

	o->route = NULL;
	if (tunnel == NULL) {
		hl__outbound_cb cb = o->cb;
		void *cbarg = o->arg;
		outbound_free(o);
		cb(cbarg, HL_OUT_NO_ROUTE, NULL, NULL, trace);
		return;
	}
	snprintf(o->via, sizeof o->via, "%s", via);
	line = hl__oob_client_line(o->password);
	if (line == NULL) {
		hl__outbound_cb cb = o->cb;
		void *cbarg = o->arg;
		bufferevent_free(tunnel);
		outbound_free(o);
		cb(cbarg, HL_OUT_HANDSHAKE, NULL, via, "out of memory");
		return;
	}
	o->state = EXCHANGING;
	/* The exchange owns the tunnel until its callback; if it runs out
	 * of memory it calls back at once, which is fine here. */
	hl__oob_exchange(tunnel, line, outbound_oob_callback, o);
	memset(line, 0, strlen(line));
	free(line);
}

static void
outbound_busy_callback(evutil_socket_t fd, short what, void *arg)
{
	struct hl__outbound *o = arg;
	hl__outbound_cb cb = o->cb;
	void *cbarg = o->arg;

	(void)fd;
	(void)what;
	outbound_free(o);
	cb(cbarg, HL_OUT_BUSY, NULL, NULL,
	   "too many tunnels are being set up at once: try again in a "
	   "moment");
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
	npending++;
	o->core = c;
	o->cb = cb;
	o->arg = arg;
	o->state = ROUTING;
	snprintf(o->keyhash, sizeof o->keyhash, "%s", keyhash);
	snprintf(o->password, sizeof o->password, "%s",
	         password ? password : "");
	hl__live_add(&o->live, outbound_abort);
	if (npending > OUTBOUND_MAX) {
		c->stats.refused_busy++;
		o->busy = evtimer_new(c->base, outbound_busy_callback, o);
		if (o->busy == NULL) {
			outbound_free(o);
			return NULL;
		}
		event_active(o->busy, EV_TIMEOUT, 0);
		return o;
	}
	o->route = hl__route_start(c, keyhash, outbound_route_callback, o);
	if (o->route == NULL) {
		outbound_free(o);
		return NULL;
	}
	return o;
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

struct hl__splice *
hl__outbound_splice(struct bufferevent *local, struct bufferevent *tunnel,
                    const char *keyhash, const char *peer, const char *via,
                    const char *origin, hl__splice_cb cb, void *arg)
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
	snprintf(info.origin, sizeof info.origin, "%s", origin ? origin : "");
	hl__splice_set_info(sp, &info);
	return sp;
}
