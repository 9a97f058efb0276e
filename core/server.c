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

#include "daemon.h"

struct incoming {
	struct hl__live live; /* first: the list hands back this pointer */
	struct hl__core *core;
	struct hl__identity *id;
	struct bufferevent *tunnel;
	struct bufferevent *backend;
	char peer[HL_PEER_MAX];
	const char *target; /* the backend's host:port, from the config */
	char via[32]; /* the transport plugin that brought it */
	struct incoming *next, **prevp; /* before the splice: `waiting` */
};

/*
 * Tunnels not yet spliced: still in the OOB exchange (no password yet) or
 * connecting the backend. Bounded in all and per client address, so that
 * peers holding tunnels open before authenticating cannot use up the
 * node's descriptors.
 */
#define WAITING_MAX 256
#define WAITING_PER_HOST 16
static struct incoming *waiting;
static size_t nwaiting;

static size_t
host_len(const char *peer)
{
	const char *colon = strrchr(peer, ':');

	return colon ? (size_t)(colon - peer) : strlen(peer);
}

static size_t
waiting_from(const char *peer)
{
	size_t n = 0, len = host_len(peer);

	for (struct incoming *w = waiting; w != NULL; w = w->next)
		if (host_len(w->peer) == len &&
		    strncmp(w->peer, peer, len) == 0)
			n++;
	return n;
}

static void
waiting_remove(struct incoming *in)
{
	if (in->prevp == NULL)
		return;
	if (in->next != NULL)
		in->next->prevp = in->prevp;
	*in->prevp = in->next;
	in->prevp = NULL;
	nwaiting--;
}

static void
incoming_free(struct incoming *in)
{
	hl__live_remove(&in->live);
	waiting_remove(in);
	if (in->tunnel != NULL)
		bufferevent_free(in->tunnel);
	if (in->backend != NULL)
		bufferevent_free(in->backend);
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
	free(in);
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

		/* The splice owns `in` from here; it frees it when it ends. */
		hl__live_remove(&in->live);
		waiting_remove(in);
		sp = hl__splice_new(t, b, server_splice_callback, in);
		if (sp == NULL) {
			bufferevent_free(t);
			bufferevent_free(b);
			free(in);
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
	in->core->stats.backend_failed++;
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

static void
server_oob_callback(void *arg, struct bufferevent *bev, struct hl__oob *oob,
                    const char *error)
{
	struct incoming *in = arg;
	const struct hl__service_conf *sc;
	char host[HL_ADDR_MAX];
	uint16_t port;
	struct timeval tv = {10, 0};

	in->tunnel = bev; /* back from the exchange */
	if (error != NULL) {
		hl__info("%s: tunnel from %s dropped: %s", in->id->pub.name,
		         in->peer, error);
		incoming_free(in);
		return;
	}
	/* An unset password matches only an empty one; compare in constant
	 * time either way. */
	if (!hl__ct_streq(oob->password, in->id->password)) {
		in->core->stats.bad_password++;
		hl__warn("%s: tunnel from %s refused: %s password",
		         in->id->pub.name, in->peer,
		         oob->has_password ? "wrong" : "missing");
		incoming_free(in);
		return;
	}
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

void
hl__server_incoming(struct hl__core *c, struct bufferevent *bev,
                    const char *keyhash, const char *peer, const char *via)
{
	struct hl__identity *id = hl__core_identity(c, keyhash);
	struct incoming *in;
	char *line;

	if (id == NULL) {
		hl__warn("a transport handed over a tunnel for %s, which this "
		         "node does not serve",
		         keyhash);
		bufferevent_free(bev);
		return;
	}
	if (nwaiting >= WAITING_MAX ||
	    waiting_from(peer ? peer : "?") >= WAITING_PER_HOST) {
		c->stats.refused_busy++;
		hl__debug("%s: tunnel from %s refused: too many tunnels are "
		          "still authenticating",
		          id->pub.name, peer ? peer : "?");
		bufferevent_free(bev);
		return;
	}
	in = calloc(1, sizeof *in);
	line = hl__oob_server_line(c->wanhosts_str);
	if (in == NULL || line == NULL) {
		free(in);
		free(line);
		bufferevent_free(bev);
		return;
	}
	c->stats.tunnels_in++;
	in->core = c;
	in->id = id;
	in->tunnel = NULL; /* the exchange owns it until its callback */
	hl__live_add(&in->live, incoming_abort);
	snprintf(in->peer, sizeof in->peer, "%s", peer ? peer : "?");
	in->next = waiting;
	if (in->next != NULL)
		in->next->prevp = &in->next;
	in->prevp = &waiting;
	waiting = in;
	nwaiting++;
	snprintf(in->via, sizeof in->via, "%s", via ? via : "?");
	hl__debug("%s: tunnel from %s", id->pub.name, in->peer);
	hl__oob_exchange(bev, line, server_oob_callback, in);
	free(line);
}
