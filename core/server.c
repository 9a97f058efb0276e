/*
 * server.c: the service side of a tunnel. A transport hands over a
 * handshaken tunnel for one of our services; we tell the client our
 * WANHosts, read its password, check it in constant time, and only then
 * connect the backend and splice.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <sodium.h>

#include "daemon.h"

struct incoming {
	struct hl__live live; /* first: the list hands back this pointer */
	struct hl__core *core;
	struct hl__identity *id;
	struct hl__source *src; /* the peer's address, for the caps */
	struct bufferevent *tunnel;
	struct bufferevent *backend;
	struct event *pw_wait; /* in password backoff: the turn to check */
	char password[HL_PASSWORD_MAX + 1]; /* the client's, while it waits */
	int has_password;
	int established; /* spliced: counted as a tunnel, not authenticating */
	char peer[HL_PEER_MAX];
	const char *target; /* the backend's host:port, from the config */
	char via[32]; /* the transport plugin that brought it */
};

/*
 * Every tunnel served counts against the caps (hl__limits): in all, per
 * peer address (hl__source) and per service; those still authenticating
 * (the OOB exchange, the password, the backend's connect) have tighter
 * caps of their own, so that peers holding tunnels open before
 * authenticating cannot use up the node's descriptors. At a cap the
 * client is told so ("busy", with when to try again) at once: an hlcore
 * client waits and tries again instead of failing.
 */
static long nauth, ntunnels;
/* Per identity: [0] authenticating, [1] established. */
static long (*svc_count)[2];
static size_t nsvc_count;

static long *
service_count(const struct hl__identity *id)
{
	size_t n = hl__identities_count(), i = 0;

	while (i < n && hl__identities_at(i) != id)
		i++;
	if (svc_count == NULL) {
		svc_count = calloc(n ? n : 1, sizeof *svc_count);
		if (svc_count == NULL)
			return NULL;
		nsvc_count = n;
	}
	return i < nsvc_count ? svc_count[i] : NULL;
}

/* Count in->src, its service and the totals, or take it back (-1). */
static void
count(struct incoming *in, int established, int delta)
{
	long *sc = service_count(in->id);

	if (established) {
		ntunnels += delta;
		in->src->tunnels += delta;
	} else {
		nauth += delta;
		in->src->auth += delta;
	}
	if (sc != NULL)
		sc[established ? 1 : 0] += delta;
}

/* A reason to refuse a tunnel from src to id now, or NULL. */
static const char *
at_cap(const struct hl__identity *id, const struct hl__source *src, char *buf,
       size_t len)
{
	const struct hl__limits *L = &hl__limits;
	long *sc = service_count(id);

	if (src == NULL)
		return "this node tracks too many peer addresses";
	if (nauth >= L->auth)
		snprintf(buf, len,
		         "%ld tunnels are authenticating on this node, its "
		         "maximum",
		         nauth);
	else if (src->auth >= L->auth_per_peer)
		snprintf(buf, len,
		         "%ld tunnels from your address are authenticating, "
		         "the maximum per address",
		         src->auth);
	else if (sc != NULL && sc[0] >= L->auth_per_service)
		snprintf(buf, len,
		         "%ld tunnels to service %s are authenticating, the "
		         "maximum per service",
		         sc[0], id->pub.name);
	else if (nauth + ntunnels >= L->tunnels)
		snprintf(buf, len,
		         "this node serves %ld tunnels, its maximum (limits "
		         "tunnels)",
		         nauth + ntunnels);
	else if (src->auth + src->tunnels >= L->per_peer)
		snprintf(buf, len,
		         "your address holds %ld tunnels, the maximum per "
		         "address (limits tunnels_per_peer)",
		         src->auth + src->tunnels);
	else if (sc != NULL && sc[0] + sc[1] >= L->per_service)
		snprintf(buf, len,
		         "service %s holds %ld tunnels, its maximum (limits "
		         "tunnels_per_service)",
		         id->pub.name, sc[0] + sc[1]);
	else if (hl__source_pw_backlog(src) > 20)
		snprintf(buf, len,
		         "too many wrong passwords from your address: "
		         "password checks wait %ld s",
		         hl__source_pw_backlog(src));
	else
		return NULL;
	return buf;
}

/* ---- refusals: the busy line goes out, then the tunnel closes ---- */

/* Tunnels closing after their refusal at most; more are closed at once. */
#define REFUSING_MAX 256

static void
refuse_busy(struct bufferevent *bev, const char *why)
{
	char *line = NULL;

	hl__stats.refused_busy++;
	if (hl__closing_count() < REFUSING_MAX)
		line = hl__oob_busy_line(hl__wanhosts(), why, 250);
	if (line == NULL) {
		bufferevent_free(bev);
		return;
	}
	hl__close_after_write(bev, line, strlen(line), 5);
	free(line);
}

static void
incoming_free(struct incoming *in)
{
	hl__live_remove(&in->live);
	count(in, in->established, -1);
	hl__source_put(in->src);
	hl_event_free(&in->pw_wait);
	hl_bufferevent_free(&in->tunnel);
	hl_bufferevent_free(&in->backend);
	sodium_memzero(in->password, sizeof in->password);
	free(in);
}

static void
incoming_abort(struct hl__live *l)
{
	incoming_free((struct incoming *)l);
}

static char *
server_splice_callback(void *arg, int closed_side, size_t a_to_b, size_t b_to_a)
{
	struct incoming *in = arg;

	if (closed_side >= 0)
		hl__debug("%s: tunnel from %s closed by the %s (%zu bytes "
		          "in, %zu out)",
		          in->id->pub.name, in->peer,
		          closed_side == 0 ? "client" : "backend", a_to_b,
		          b_to_a);
	incoming_free(in); /* owns nothing any more: only the counts */
	return NULL;
}

static void
backend_event_callback(struct bufferevent *bev, short what, void *arg)
{
	struct incoming *in = arg;

	if (what & BEV_EVENT_CONNECTED) {
		struct bufferevent *t = in->tunnel, *b = in->backend;
		in->tunnel = in->backend = NULL;
		struct hl__splice *sp;
		struct hl__tunnel_info info;

		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
		           &(int){1}, sizeof(int));

		/* The splice owns `in` from here; it frees it when it ends.
		 * It counts as an established tunnel from now on. */
		hl__live_remove(&in->live);
		count(in, 0, -1);
		in->established = 1;
		count(in, 1, 1);
		sp = hl__splice_new(t, b, server_splice_callback, in);
		if (sp == NULL) {
			bufferevent_free(t);
			bufferevent_free(b);
			incoming_free(in);
			return;
		}
		memset(&info, 0, sizeof info);
		info.service = in->id->pub.name;
		snprintf(info.keyhash, sizeof info.keyhash, "%s",
		         in->id->keyhash);
		snprintf(info.peer, sizeof info.peer, "%s", in->peer);
		snprintf(info.via, sizeof info.via, "%s -> %s", in->via,
		         in->target);
		hl__splice_set_info(sp, &info);
		return;
	}
	hl__stats.backend_failed++;
	hl__warn("%s: backend %s is not answering (%s): closing the tunnel "
	         "from %s",
	         in->id->pub.name, in->target,
	         (what & BEV_EVENT_TIMEOUT)
	             ? "timed out"
	             : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()),
	         in->peer);
	incoming_free(in);
}

static const struct hl__service_conf *
service_conf(struct hl__core *c, const struct hl__identity *id)
{
	for (size_t i = 0; i < c->cfg->nservices; i++)
		if (strcmp(c->cfg->services[i].name, id->pub.name) == 0)
			return &c->cfg->services[i];
	return NULL;
}

/* The password is right: connect the backend. */
static void
connect_backend(struct incoming *in)
{
	const struct hl__service_conf *sc;
	char host[HL_ADDR_MAX];
	uint16_t port;
	struct timeval tv = {10, 0};

	sc = service_conf(in->core, in->id);
	if (sc == NULL ||
	    hl__addr_split(sc->target, host, sizeof host, &port) != 0) {
		incoming_free(in);
		return;
	}
	in->target = sc->target;
	in->backend =
	    bufferevent_socket_new(in->core->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (in->backend == NULL) {
		incoming_free(in);
		return;
	}
	bufferevent_setcb(in->backend, NULL, NULL, backend_event_callback, in);
	bufferevent_set_timeouts(in->backend, NULL, &tv);
	if (bufferevent_socket_connect_hostname(in->backend, in->core->dns,
	                                        AF_UNSPEC, host, port) != 0) {
		/* Refused before any lookup started: no callback comes. */
		hl__warn("%s: cannot connect to backend %s", in->id->pub.name,
		         in->target);
		incoming_free(in);
	}
	/* From here on backend_event_callback owns `in` (it may already have
	 * run, for a numeric address that failed at once). */
}

/* Check the password, in constant time; an unset password matches only an
 * empty one. */
static void
check_password(struct incoming *in)
{
	int ok = hl_ct_streq(in->password, in->id->password);

	sodium_memzero(in->password, sizeof in->password);
	if (ok) {
		if (in->has_password)
			hl__source_pw_result(in->src, 1);
		connect_backend(in);
		return;
	}
	hl__stats.bad_password++;
	/* A missing password is a visitor who does not know there is one;
	 * a wrong one may be a guess: those slow down per source. */
	if (!in->has_password)
		hl__warn("%s: tunnel from %s refused: missing password",
		         in->id->pub.name, in->peer);
	else if (hl__source_pw_result(in->src, 0))
		hl__warn("%s: tunnel from %s refused: wrong password",
		         in->id->pub.name, in->peer);
	incoming_free(in);
}

static void
pw_wait_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	check_password(arg);
}

static void
server_oob_callback(void *arg, struct bufferevent *bev, struct hl__oob *oob,
                    const char *error)
{
	struct incoming *in = arg;
	struct timeval tv = {0, 0};
	long wait;

	in->tunnel = bev; /* back from the exchange */
	if (error != NULL) {
		hl__info("%s: tunnel from %s dropped: %s", in->id->pub.name,
		         in->peer, error);
		incoming_free(in);
		return;
	}
	memcpy(in->password, oob->password, sizeof in->password);
	in->has_password = oob->has_password;
	/* After wrong passwords from this address, each check waits its
	 * turn (hl__source_pw_wait); a right password does too. */
	wait = in->has_password ? hl__source_pw_wait(in->src) : 0;
	if (wait == 0) {
		check_password(in);
		return;
	}
	in->pw_wait = evtimer_new(in->core->base, pw_wait_callback, in);
	if (in->pw_wait == NULL) {
		incoming_free(in);
		return;
	}
	bufferevent_disable(bev, EV_READ);
	tv.tv_sec = wait / 1000;
	tv.tv_usec = (wait % 1000) * 1000;
	evtimer_add(in->pw_wait, &tv);
}

void
hl__server_incoming(struct hl__core *c, struct bufferevent *bev,
                    const char *keyhash, const char *peer, const char *via)
{
	struct hl__identity *id = hl__identities_find(keyhash);
	struct hl__source *src;
	struct incoming *in;
	const char *why;
	char whybuf[200], *line;

	if (id == NULL) {
		hl__warn("a transport handed over a tunnel for %s, which this "
		         "node does not serve",
		         keyhash);
		bufferevent_free(bev);
		return;
	}
	src = hl__source_get(peer ? peer : "?");
	why = at_cap(id, src, whybuf, sizeof whybuf);
	if (why != NULL) {
		hl__info("%s: tunnel from %s refused: %s", id->pub.name,
		         peer ? peer : "?", why);
		hl__source_put(src);
		refuse_busy(bev, why);
		return;
	}
	in = calloc(1, sizeof *in);
	line = hl__oob_server_line(hl__wanhosts(), hl__endpoints());
	if (in == NULL || line == NULL) {
		free(in);
		free(line);
		hl__source_put(src);
		bufferevent_free(bev);
		return;
	}
	hl__stats.tunnels_in++;
	in->core = c;
	in->id = id;
	in->src = src;
	count(in, 0, 1);
	in->tunnel = NULL; /* the exchange owns it until its callback */
	hl__live_add(&in->live, incoming_abort);
	snprintf(in->peer, sizeof in->peer, "%s", peer ? peer : "?");
	snprintf(in->via, sizeof in->via, "%s", via ? via : "?");
	hl__debug("%s: tunnel from %s", id->pub.name, in->peer);
	hl__oob_exchange(bev, line, NULL, server_oob_callback, in);
	free(line);
}

void
hl__server_free(void)
{
	free(svc_count);
	svc_count = NULL;
	nsvc_count = 0;
}
