/*
 * socksd.c: the SOCKS5 front (RFC 1928). It takes connections on the
 * proxy's port (proxy.socks: a first byte of 5 or 4 is SOCKS) or on a
 * port of its own (proxy.socks_listen), accepts "no authentication" and
 * CONNECT to "<password>-<keyhash>.localhost" only, and then takes the
 * same path as the HTTP proxy (outbound.c). Everything else gets its
 * refusal code and the connection is closed: SOCKS4, BIND, UDP ASSOCIATE,
 * IP addresses and other names. The negotiation is bounded in size (the
 * parser's) and in time (10 s).
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "daemon.h"

/* After the OOB exchange, how long to wait for the service's node to
 * close the tunnel (a wrong password, a backend that is down) before the
 * client is told "succeeded": the node closes right after it reads the
 * password, so the close comes with its own OOB line but for jitter. A
 * first byte from the service ends the wait at once. */
#define PROBE_MS 50
/* Bytes a client may send before the tunnel is up (optimistic data). */
#define EARLY_MAX (64 * 1024)

enum { GREETING, REQUEST, ROUTING, PROBING };

struct socks_conn {
	struct hl__live live; /* first: the list hands back this pointer */
	struct hl__core *core;
	struct bufferevent *client;
	struct bufferevent *tunnel; /* PROBING */
	struct hl__outbound *out; /* ROUTING */
	struct event *timer; /* the negotiation's deadline; the probe */
	int state;
	char peer[HL_PEER_MAX];
	char keyhash[HL_KEYHASH_LEN + 1];
	char password[HL_PASSWORD_MAX + 1];
	char via[192];
	unsigned flags; /* the route's HL__ROUTE_* */
};

static void
conn_free(struct socks_conn *sc)
{
	hl__live_remove(&sc->live);
	hl_event_free(&sc->timer);
	hl__outbound_cancel(sc->out);
	hl_bufferevent_free(&sc->tunnel);
	hl_bufferevent_free(&sc->client);
	memset(sc->password, 0, sizeof sc->password);
	free(sc);
}

HL__FRONT_ABORT(conn_abort, struct socks_conn, conn_free)

/* Send data (a refusal) and close once it has gone out (within 10 s). */
static void
conn_close_with(struct socks_conn *sc, const void *data, size_t len)
{
	struct bufferevent *client = sc->client;

	sc->client = NULL;
	conn_free(sc);
	hl__close_after_write(client, data, len, 10);
}

static void
conn_refuse(struct socks_conn *sc, int rep)
{
	unsigned char reply[10];

	hl__socks_reply(reply, rep);
	conn_close_with(sc, reply, sizeof reply);
}

static char *
socks_splice_callback(void *arg, int closed_side, size_t a_to_b, size_t b_to_a)
{
	char *keyhash = arg;

	if (closed_side >= 0)
		hl__debug("socks: %.8s closed by the %s (%zu bytes up, %zu "
		          "down)",
		          keyhash, closed_side == 0 ? "client" : "service",
		          a_to_b, b_to_a);
	free(keyhash);
	return NULL;
}

/* The tunnel stands: tell the client and splice. */
static void
conn_succeed(struct socks_conn *sc)
{
	unsigned char reply[10];
	struct bufferevent *client = sc->client, *tunnel = sc->tunnel;
	char *kh = strdup(sc->keyhash);

	if (kh == NULL) {
		conn_refuse(sc, HL_SOCKS_GENERAL_FAILURE);
		return;
	}
	hl__socks_reply(reply, HL_SOCKS_SUCCEEDED);
	bufferevent_write(client, reply, sizeof reply);
	sc->client = sc->tunnel = NULL;
	if (hl__outbound_splice(client, tunnel, sc->keyhash, sc->peer, sc->via,
	                        sc->flags, "socks", socks_splice_callback,
	                        kh) == NULL)
		free(kh);
	conn_free(sc);
}

static void
probe_timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                     void *arg)
{
	conn_succeed(arg);
}

static void
probe_read_callback(struct bufferevent *bev HL_UNUSED, void *arg)
{
	conn_succeed(arg);
}

static void
probe_event_callback(struct bufferevent *bev, short what, void *arg)
{
	struct socks_conn *sc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (evbuffer_get_length(in) > 0) {
		/* It answered, then closed: the client gets the answer. */
		unsigned char reply[10];
		size_t n = evbuffer_get_length(in);
		char *data = malloc(sizeof reply + n);
		if (data == NULL) {
			conn_refuse(sc, HL_SOCKS_GENERAL_FAILURE);
			return;
		}
		hl__socks_reply(reply, HL_SOCKS_SUCCEEDED);
		memcpy(data, reply, sizeof reply);
		evbuffer_remove(in, data + sizeof reply, n);
		conn_close_with(sc, data, sizeof reply + n);
		free(data);
		return;
	}
	hl__info("socks: %s asked for %.8s: the service's node closed the "
	         "tunnel at once (a wrong or missing password, or its "
	         "backend is down)",
	         sc->peer, sc->keyhash);
	conn_refuse(sc, HL_SOCKS_CONNECTION_REFUSED);
}

static void
socks_outbound_callback(void *arg, int result, struct bufferevent *tunnel,
                        const char *via, unsigned flags, const char *why)
{
	struct socks_conn *sc = arg;
	struct timeval tv = {0, PROBE_MS * 1000};

	sc->out = NULL;
	if (result != HL_OUT_OK) {
		hl__info("socks: %s asked for %.8s: %s%s", sc->peer,
		         sc->keyhash,
		         result == HL_OUT_NO_ROUTE
		             ? "no path to the service worked (the admin "
		               "panel's routing trace says why)"
		             : "",
		         result == HL_OUT_NO_ROUTE ? "" : why);
		conn_refuse(sc, result == HL_OUT_NO_ROUTE
		                    ? HL_SOCKS_HOST_UNREACHABLE
		                    : HL_SOCKS_GENERAL_FAILURE);
		return;
	}
	snprintf(sc->via, sizeof sc->via, "%s", via);
	sc->flags = flags;
	sc->tunnel = tunnel;
	sc->state = PROBING;
	if (evbuffer_get_length(bufferevent_get_input(tunnel)) > 0) {
		conn_succeed(sc);
		return;
	}
	event_free(sc->timer);
	sc->timer = evtimer_new(sc->core->base, probe_timer_callback, sc);
	if (sc->timer == NULL) {
		conn_refuse(sc, HL_SOCKS_GENERAL_FAILURE);
		return;
	}
	evtimer_add(sc->timer, &tv);
	bufferevent_setcb(tunnel, probe_read_callback, NULL,
	                  probe_event_callback, sc);
	bufferevent_enable(tunnel, EV_READ);
}

static void
client_read_callback(struct bufferevent *bev, void *arg)
{
	struct socks_conn *sc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in), used;
	const unsigned char *buf;
	struct hl__socks_request req;
	int r;

	if (sc->state == GREETING) {
		if (len == 0)
			return;
		buf = evbuffer_pullup(in, len < HL_SOCKS_GREETING_MAX
		                              ? (ev_ssize_t)len
		                              : HL_SOCKS_GREETING_MAX);
		if (buf[0] == 4) {
			unsigned char no[8];
			hl__socks4_refusal(no);
			hl__debug("socks: %s speaks SOCKS4: refused", sc->peer);
			conn_close_with(sc, no, sizeof no);
			return;
		}
		r = hl__socks_greeting(buf, len, &used);
		if (r == 0)
			return;
		if (r < 0) {
			hl__stats.proxy_bad_request++;
			conn_close_with(sc, NULL, 0);
			return;
		}
		evbuffer_drain(in, used);
		if (r == 2) {
			/* No method we take: only "no authentication". */
			static const unsigned char none[2] = {5, 0xff};
			conn_close_with(sc, none, sizeof none);
			return;
		}
		bufferevent_write(bev, "\x05\x00", 2);
		sc->state = REQUEST;
		len = evbuffer_get_length(in);
	}
	if (sc->state != REQUEST || len == 0)
		return; /* ROUTING: early data waits in the input buffer */
	buf = evbuffer_pullup(in, len < HL_SOCKS_REQUEST_MAX
	                              ? (ev_ssize_t)len
	                              : HL_SOCKS_REQUEST_MAX);
	r = hl__socks_request(buf, len, &used, &req);
	if (r == 0)
		return;
	if (r < 0) {
		hl__stats.proxy_bad_request++;
		conn_refuse(sc, HL_SOCKS_GENERAL_FAILURE);
		return;
	}
	evbuffer_drain(in, used);
	if (req.rep != HL_SOCKS_SUCCEEDED) {
		hl__stats.proxy_bad_request++;
		hl__info("socks: %s: refused %s (code %d)", sc->peer,
		         req.cmd != 1    ? "a command other than CONNECT"
		         : req.atyp != 3 ? "a destination that is not a name"
		                         : "a name that is not a Hardline "
		                           "service",
		         req.rep);
		conn_refuse(sc, req.rep);
		return;
	}
	snprintf(sc->keyhash, sizeof sc->keyhash, "%s", req.keyhash);
	snprintf(sc->password, sizeof sc->password, "%s", req.password);
	memset(&req, 0, sizeof req);
	/* The negotiation is over: the route and the OOB exchange have
	 * deadlines of their own. */
	evtimer_del(sc->timer);
	bufferevent_setwatermark(bev, EV_READ, 0, EARLY_MAX);
	sc->state = ROUTING;
	hl__debug("socks: %s asks for %.8s", sc->peer, sc->keyhash);
	sc->out = hl__outbound_start(sc->core, sc->keyhash, sc->password,
	                             socks_outbound_callback, sc);
	if (sc->out == NULL)
		conn_refuse(sc, HL_SOCKS_GENERAL_FAILURE);
}

static void
client_event_callback(struct bufferevent *bev HL_UNUSED, short what HL_UNUSED,
                      void *arg)
{
	/* The client went away (or stalled the negotiation). */
	conn_free(arg);
}

static void
deadline_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct socks_conn *sc = arg;

	hl__debug("socks: %s did not finish the negotiation within 10 s",
	          sc->peer);
	conn_free(sc);
}

void
hl__socksd_take(struct hl__core *c, struct bufferevent *bev, const char *peer)
{
	struct socks_conn *sc = calloc(1, sizeof *sc);
	struct timeval tv = {HL_HTTP_HEAD_TIMEOUT_SEC, 0};

	if (sc == NULL) {
		bufferevent_free(bev);
		return;
	}
	sc->core = c;
	sc->client = bev;
	sc->state = GREETING;
	snprintf(sc->peer, sizeof sc->peer, "%s", peer);
	hl__live_add(&sc->live, conn_abort);
	sc->timer = evtimer_new(c->base, deadline_callback, sc);
	if (sc->timer == NULL) {
		conn_free(sc);
		return;
	}
	evtimer_add(sc->timer, &tv);
	bufferevent_setwatermark(bev, EV_READ, 0, HL_SOCKS_REQUEST_MAX);
	bufferevent_setcb(bev, client_read_callback, NULL,
	                  client_event_callback, sc);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	{
		/* No per-read timeouts (the deadline bounds the negotiation),
		 * and none left from the proxy: see clear_timeouts() in
		 * tunnel.c for why setting NULL alone is not enough. */
		struct timeval day = {86400, 0};
		bufferevent_set_timeouts(bev, &day, &day);
		bufferevent_set_timeouts(bev, NULL, NULL);
	}
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		client_read_callback(bev, sc);
}

static void
socksd_accept_callback(void *arg, evutil_socket_t fd, struct sockaddr *sa,
                       socklen_t salen HL_UNUSED)
{
	struct hl__core *c = arg;
	struct bufferevent *bev;
	char peer[HL_PEER_MAX];

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	hl_sockaddr_str(sa, peer, sizeof peer);
	bev = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		evutil_closesocket(fd);
		return;
	}
	hl__socksd_take(c, bev, peer);
}

int
hl__socksd_start(struct hl__core *c)
{
	const char *listen = c->cfg->socks_listen;
	struct sockaddr_storage ss;
	int sslen = sizeof ss;

	if (c->cfg->proxy_socks && c->cfg->proxy_listen != NULL &&
	    evutil_parse_sockaddr_port(c->cfg->proxy_listen,
	                               (struct sockaddr *)&ss, &sslen) == 0 &&
	    !hl_sockaddr_is_loopback((struct sockaddr *)&ss))
		hl__warn("proxy: SOCKS5 on %s, beyond this machine: anyone "
		         "who reaches it can use this node's tunnels",
		         c->cfg->proxy_listen);
	if (listen == NULL)
		return 0;
	c->socks = hl__acceptor_listen(c->base, "socks", listen,
	                               socksd_accept_callback, c, &ss);
	if (c->socks == NULL)
		return -1;
	if (!hl_sockaddr_is_loopback((struct sockaddr *)&ss))
		hl__warn("socks: listening on %s, beyond this machine: anyone "
		         "who reaches it can use this node's tunnels",
		         listen);
	else
		hl__info("socks: SOCKS5 listening on %s", listen);
	return 0;
}

void
hl__socksd_stop(struct hl__core *c)
{
	hl__acceptor_free(c->socks);
	c->socks = NULL;
}
