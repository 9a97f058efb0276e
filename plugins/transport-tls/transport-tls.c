/*
 * transport-tls: tunnels over TCP + TLS 1.2/1.3 (OpenSSL through libevent
 * bufferevents), wire-compatible with the original Python Hardline:
 * the client sends the bare keyhash as SNI, the server answers with the
 * certificate of the service whose keyhash that is (and fails the
 * handshake for any other name), and the client pins the certificate by
 * its hash (the core checks it; no CA is involved).
 *
 * Config (plugins: transport-tls:):
 *   listen: "[::]:7008"            or a list; none: dial only
 *   advertise: ["198.51.100.7:7008"]  ports forwarded by hand (WANHosts)
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

/* Uses nothing newer than ABI 1.0, so 1.0 cores load it too. */
#define HL_PLUGIN_ABI_MINOR 0
#include "hardline/plugin.h"
#include "hardline/evutil.h"
#include "hardline/util.h"

#define HANDSHAKE_TIMEOUT_SEC 10
#define MAX_LISTENERS 8
#define ADDR_MAX 262
#define PEER_MAX 64 /* "[v6]:port" */

/*
 * What accepting holds at once, sized at init from the descriptor limit
 * (README.md, "### transport-tls"): handshakes in progress, nofile/8
 * within [16, 4096], at most 64 (and half of all) per peer address;
 * accepted sockets parked, without TLS state, until their address has a
 * free handshake slot: nofile/4 within [16, 1024], at most 256 (and half
 * of all) per address. Beyond that a connection is closed at once.
 */
#define HANDSHAKES_MIN 16
#define HANDSHAKES_MAX 4096
#define HANDSHAKES_PER_HOST 64
#define PARKED_MIN 16
#define PARKED_MAX 1024
#define PARKED_PER_HOST 256
#define HOST_BUCKETS 1024

/* Out of descriptors: a listener stops for 50 ms, doubling to 2 s. */
#define PAUSE_MIN_MS 50
#define PAUSE_MAX_MS 2000
#define TLS13_SUITES                                                           \
	"TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"                 \
	"TLS_AES_256_GCM_SHA384"

struct service_ctx {
	char keyhash[41];
	SSL_CTX *ctx;
};

/* Handshakes and parked sockets of one peer address (its IP, any port).
 * Freed when it has neither. */
struct host {
	struct hl_addr_rec rec; /* first: the table's part */
	unsigned nhandshakes, nparked;
	int refusal_logged;
};

/* A handshake must end 10 s after the accept: bufferevent timeouts alone
 * restart with every byte, so a peer trickling bytes could hold it open. */
struct accepting {
	struct tls *tls;
	struct host *host;
	struct bufferevent *bev;
	struct event *deadline;
	char peer[PEER_MAX];
	struct accepting *next, **prevp;
};

/* An accepted socket whose address has no free handshake slot: no TLS
 * state yet, only what starting it later takes. */
struct parked {
	evutil_socket_t fd;
	struct host *host;
	long long accepted_ms; /* CLOCK_MONOTONIC */
	char peer[PEER_MAX];
	struct parked *next, *prev; /* all parked sockets, oldest first */
};

struct listener {
	struct tls *tls;
	struct evconnlistener *lev;
	struct event *resume; /* the end of a pause */
	struct sockaddr_storage addr;
	socklen_t len;
	char name[ADDR_MAX];
	int enabled; /* as libevent has it */
	int paused; /* out of descriptors, until `resume` */
	int pause_ms; /* the next pause */
	int accepted; /* an accept succeeded since the last pause */
	long long resumed_ms;
	unsigned long errors; /* accepts failed for lack of descriptors */
	int other_logged;
};

struct hl_dial {
	struct tls *tls;
	struct bufferevent *bev;
	struct event *deadline;
	hl_dial_cb cb;
	void *arg;
	char addr[ADDR_MAX];
	struct hl_dial *next, **prevp;
};

struct tls {
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct event_base *base;
	SSL_CTX *client_ctx;
	SSL_CTX *server_ctx; /* accepted connections start here; SNI picks */
	struct service_ctx *services;
	size_t nservices;
	struct listener listeners[MAX_LISTENERS];
	size_t nlisteners;
	int full; /* handshakes_max in progress: listeners off */
	int stopping; /* in fini: nothing starts any more */
	size_t handshakes_max, handshakes_per_host;
	size_t parked_max, parked_per_host;
	struct accepting *accepting;
	size_t naccepting;
	struct hl_addr_rec *hosts[HOST_BUCKETS];
	struct parked *parked_head, *parked_tail;
	size_t nparked;
	struct event *park_timer; /* the oldest parked socket's deadline */
	struct hl_dial *dials;
	/* For the log at exit. */
	unsigned long refused_sni, refused_busy, parked_total, parked_expired;
	unsigned long pauses, full_count;
};

/*
 * Why a connection failed, in words for the error page. libevent reports a
 * socket that failed under TLS (refused, reset) as the bare OpenSSL code
 * SSL_ERROR_SYSCALL, by when errno is gone.
 */
static const char *
ssl_error_text(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	int dns = bufferevent_socket_get_dns_error(bev);

	if (dns != 0)
		snprintf(buf, len, "name lookup failed: %s",
		         evutil_gai_strerror(dns));
	else if (e == SSL_ERROR_SYSCALL)
		snprintf(buf, len,
		         "TCP connection failed (refused, reset or "
		         "unreachable)");
	else if (e != 0) {
		char reason[256];
		ERR_error_string_n(e, reason, sizeof reason);
		snprintf(buf, len, "TLS handshake failed: %s", reason);
	} else
		snprintf(buf, len,
		         "connection closed during the TLS "
		         "handshake");
	return buf;
}

/* ---- dialling ---- */

static void
dial_unlink_free(struct hl_dial *d)
{
	HL_LIST_REMOVE(d);
	hl_bufferevent_free(&d->bev);
	hl_event_free(&d->deadline);
	free(d);
}

static void
dial_deadline_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                       void *arg)
{
	struct hl_dial *d = arg;
	char err[128];

	snprintf(err, sizeof err,
	         "no TLS connection within %d s (host down or unreachable?)",
	         HANDSHAKE_TIMEOUT_SEC);
	d->cb(d->arg, NULL, NULL, 0, err);
	dial_unlink_free(d);
}

static void
dial_event_callback(struct bufferevent *bev, short what, void *arg)
{
	struct hl_dial *d = arg;
	char err[400];

	if (what & BEV_EVENT_CONNECTED) {
		SSL *ssl = bufferevent_openssl_get_ssl(bev);
		int one = 1;

		/* Small writes (the OOB line, a request) go out at once
		 * instead of waiting for a delayed ACK (~40 ms each). */
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
		           &one, sizeof one);
		X509 *cert = SSL_get0_peer_certificate(ssl);
		unsigned char *der = NULL;
		int len = cert ? i2d_X509(cert, &der) : -1;
		hl_dial_cb cb = d->cb;
		void *cbarg = d->arg;

		if (len <= 0) {
			d->cb(d->arg, NULL, NULL, 0,
			      "the server sent no certificate");
			dial_unlink_free(d);
			return;
		}
		hl_bufferevent_handover(bev);
		d->bev = NULL;
		dial_unlink_free(d);
		cb(cbarg, bev, der, (size_t)len, NULL);
		OPENSSL_free(der);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(err, sizeof err,
		         "no TLS connection within %d s (host down or "
		         "unreachable?)",
		         HANDSHAKE_TIMEOUT_SEC);
	else
		ssl_error_text(bev, err, sizeof err);
	d->cb(d->arg, NULL, NULL, 0, err);
	dial_unlink_free(d);
}

static struct hl_dial *
tls_dial(void *state, const char *keyhash, const char *addr, hl_dial_cb cb,
         void *arg)
{
	struct tls *t = state;
	struct hl_dial *d;
	char host[ADDR_MAX];
	uint16_t port;
	SSL *ssl;
	struct timeval tv = {HANDSHAKE_TIMEOUT_SEC, 0};

	/* "tls://host:port" names this transport (ABI 1.2 schemes); a bare
	 * host:port is for every transport. */
	if (strncmp(addr, "tls://", 6) == 0)
		addr += 6;
	if (hl_addr_split(addr, host, sizeof host, &port) != 0 || port == 0)
		return NULL;
	d = calloc(1, sizeof *d);
	ssl = SSL_new(t->client_ctx);
	if (d == NULL || ssl == NULL)
		goto fail;
	/* SNI is the bare keyhash: that is how the server picks the
	 * service (docs/protocol.md, "The tunnel"). */
	if (SSL_set_tlsext_host_name(ssl, keyhash) != 1)
		goto fail;
	d->bev = bufferevent_openssl_socket_new(
	    t->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (d->bev == NULL)
		goto fail;
	ssl = NULL; /* the bufferevent owns it */
	bufferevent_openssl_set_allow_dirty_shutdown(d->bev, 1);
	d->tls = t;
	d->cb = cb;
	d->arg = arg;
	d->deadline = hl_evtimer_start_ms(t->base, dial_deadline_callback, d,
	                                  HANDSHAKE_TIMEOUT_SEC * 1000);
	snprintf(d->addr, sizeof d->addr, "%s", addr);
	HL_LIST_INSERT(t->dials, d);
	bufferevent_setcb(d->bev, NULL, NULL, dial_event_callback, d);
	bufferevent_set_timeouts(d->bev, &tv, &tv);
	bufferevent_enable(d->bev, EV_READ | EV_WRITE);
	if (bufferevent_socket_connect_hostname(d->bev,
	                                        t->svc->dns_base(t->self),
	                                        AF_UNSPEC, host, port) != 0) {
		/* Deferred callbacks: the error reaches dial_event_callback
		 * from the loop, never from here. If nothing was scheduled,
		 * time out through the handshake timer. */
	}
	return d;
fail:
	if (ssl != NULL)
		SSL_free(ssl);
	if (d != NULL && d->bev != NULL)
		bufferevent_free(d->bev);
	free(d);
	return NULL;
}

static void
tls_dial_cancel(void *state HL_UNUSED, struct hl_dial *d)
{
	dial_unlink_free(d);
}

/* ---- accepting ---- */

/* Forget a peer that has nothing in progress any more. */
static void
host_release(struct tls *x, struct host *h)
{
	if (h->nhandshakes != 0 || h->nparked != 0)
		return;
	hl_addr_rec_free(x->hosts, HOST_BUCKETS, &h->rec);
}

/* Listeners accept unless out of descriptors (paused) or at the
 * handshake cap (full): then the kernel's backlog holds new connections,
 * and their clients just wait. */
static void
listeners_update(struct tls *t)
{
	for (size_t i = 0; i < t->nlisteners; i++) {
		struct listener *l = &t->listeners[i];
		int want = !l->paused && !t->full && !t->stopping;

		if (want == l->enabled)
			continue;
		if (want)
			evconnlistener_enable(l->lev);
		else
			evconnlistener_disable(l->lev);
		l->enabled = want;
	}
}

static void slots_freed(struct tls *t);

static void
accepting_free(struct accepting *a)
{
	struct tls *t = a->tls;

	HL_LIST_REMOVE(a);
	t->naccepting--;
	a->host->nhandshakes--;
	host_release(t, a->host);
	hl_bufferevent_free(&a->bev);
	hl_event_free(&a->deadline);
	free(a);
	slots_freed(t);
}

static void
accept_deadline_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                         void *arg)
{
	struct accepting *a = arg;

	a->tls->svc->log(a->tls->self, HL_LOG_DEBUG,
	                 "handshake with %s took over %d s: closed", a->peer,
	                 HANDSHAKE_TIMEOUT_SEC);
	accepting_free(a);
}

static void
accept_event_callback(struct bufferevent *bev, short what, void *arg)
{
	struct accepting *a = arg;
	struct tls *t = a->tls;
	char err[400], keyhash[41];
	const char *sni;

	if (!(what & BEV_EVENT_CONNECTED)) {
		if (what & BEV_EVENT_TIMEOUT)
			snprintf(err, sizeof err, "handshake timed out");
		else
			ssl_error_text(bev, err, sizeof err);
		t->svc->log(t->self, HL_LOG_DEBUG,
		            "handshake with %s failed: %s", a->peer, err);
		accepting_free(a);
		return;
	}
	sni = SSL_get_servername(bufferevent_openssl_get_ssl(bev),
	                         TLSEXT_NAMETYPE_host_name);
	/* The SNI callback checked it. */
	if (sni == NULL || hl_keyhash_lower(sni, strlen(sni), keyhash) != 0) {
		accepting_free(a);
		return;
	}
	hl_bufferevent_handover(bev);
	a->bev = NULL;
	{
		char peer[PEER_MAX];
		snprintf(peer, sizeof peer, "%s", a->peer);
		accepting_free(a);
		t->svc->incoming(t->self, bev, keyhash, peer);
	}
}

/* Pick the service's certificate by SNI; anything else fails the
 * handshake (docs/protocol.md, "The tunnel", step 2). */
static int
sni_callback(SSL *ssl, int *alert, void *arg)
{
	struct tls *t = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	if (name != NULL)
		for (size_t i = 0; i < t->nservices; i++)
			if (strcasecmp(name, t->services[i].keyhash) == 0) {
				SSL_set_SSL_CTX(ssl, t->services[i].ctx);
				return SSL_TLSEXT_ERR_OK;
			}
	t->refused_sni++;
	*alert = SSL_AD_UNRECOGNIZED_NAME;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/*
 * Start the TLS handshake of an accepted socket, which must end within
 * ms (10 s from its accept). Takes the socket: on failure it is closed.
 */
static void
handshake_start(struct tls *t, evutil_socket_t fd, struct host *h,
                const char *peer, long long ms)
{
	struct accepting *a;
	SSL *ssl;
	struct timeval tv = {HANDSHAKE_TIMEOUT_SEC, 0};
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	a = calloc(1, sizeof *a);
	ssl = SSL_new(t->server_ctx);
	if (a == NULL || ssl == NULL) {
		free(a);
		if (ssl)
			SSL_free(ssl);
		evutil_closesocket(fd);
		return;
	}
	a->bev = bufferevent_openssl_socket_new(
	    t->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (a->bev == NULL) {
		SSL_free(ssl);
		evutil_closesocket(fd);
		free(a);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(a->bev, 1);
	a->tls = t;
	a->host = h;
	a->deadline =
	    hl_evtimer_start_ms(t->base, accept_deadline_callback, a, ms);
	snprintf(a->peer, sizeof a->peer, "%s", peer);
	HL_LIST_INSERT(t->accepting, a);
	t->naccepting++;
	h->nhandshakes++;
	bufferevent_setcb(a->bev, NULL, NULL, accept_event_callback, a);
	bufferevent_set_timeouts(a->bev, &tv, &tv);
	bufferevent_enable(a->bev, EV_READ | EV_WRITE);
	if (t->naccepting >= t->handshakes_max && !t->full) {
		t->full = 1;
		t->svc->log(t->self, t->full_count ? HL_LOG_DEBUG : HL_LOG_INFO,
		            "%zu TLS handshakes in progress: not accepting "
		            "until one ends (logged once)",
		            t->naccepting);
		t->full_count++;
		listeners_update(t);
	}
}

/* Take a parked socket out of the queue; the caller owns its fd. */
static void
unpark(struct tls *t, struct parked *p)
{
	if (p->prev)
		p->prev->next = p->next;
	else
		t->parked_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		t->parked_tail = p->prev;
	t->nparked--;
	p->host->nparked--;
}

static void
park_timer_arm(struct tls *t)
{
	long long left;

	if (t->parked_head == NULL || t->park_timer == NULL ||
	    evtimer_pending(t->park_timer, NULL))
		return;
	left = t->parked_head->accepted_ms + HANDSHAKE_TIMEOUT_SEC * 1000 -
	       hl_mono_ms();
	if (left < 0)
		left = 0;
	hl_evtimer_add_ms(t->park_timer, left);
}

/* Parked sockets share the handshake's deadline: 10 s from the accept.
 * The oldest is first, so the expired ones are at the head. */
static void
park_timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                    void *arg)
{
	struct tls *t = arg;
	long long now = hl_mono_ms();
	struct parked *p;

	while ((p = t->parked_head) != NULL &&
	       p->accepted_ms + HANDSHAKE_TIMEOUT_SEC * 1000 <= now) {
		unpark(t, p);
		evutil_closesocket(p->fd);
		t->parked_expired++;
		host_release(t, p->host);
		free(p);
	}
	park_timer_arm(t);
}

static void
park(struct tls *t, evutil_socket_t fd, struct host *h, const char *peer)
{
	struct parked *p = calloc(1, sizeof *p);

	if (p == NULL) {
		evutil_closesocket(fd);
		return;
	}
	p->fd = fd;
	p->host = h;
	p->accepted_ms = hl_mono_ms();
	snprintf(p->peer, sizeof p->peer, "%s", peer);
	p->prev = t->parked_tail;
	if (p->prev)
		p->prev->next = p;
	else
		t->parked_head = p;
	t->parked_tail = p;
	t->nparked++;
	t->parked_total++;
	h->nparked++;
	park_timer_arm(t);
}

/* Handshake slots are free: start parked sockets whose address has one,
 * oldest first; then accept again if below the cap. */
static void
slots_freed(struct tls *t)
{
	struct parked *p = t->parked_head, *next;
	long long now;

	if (t->stopping)
		return;
	now = p != NULL ? hl_mono_ms() : 0;
	for (; p != NULL && t->naccepting < t->handshakes_max; p = next) {
		struct host *h = p->host;
		long long left =
		    p->accepted_ms + HANDSHAKE_TIMEOUT_SEC * 1000 - now;

		next = p->next;
		if (h->nhandshakes >= t->handshakes_per_host)
			continue;
		unpark(t, p);
		if (left > 0)
			handshake_start(t, p->fd, h, p->peer, left);
		else {
			evutil_closesocket(p->fd);
			t->parked_expired++;
		}
		host_release(t, h);
		free(p);
	}
	if (t->full && t->naccepting < t->handshakes_max) {
		t->full = 0;
		listeners_update(t);
	}
}

static void
listener_accept_callback(struct evconnlistener *lev HL_UNUSED,
                         evutil_socket_t fd, struct sockaddr *sa,
                         int salen HL_UNUSED, void *arg)
{
	struct listener *l = arg;
	struct tls *t = l->tls;
	struct host *h;
	char peer[PEER_MAX];

	l->accepted = 1;
	hl_sockaddr_str(sa, peer, sizeof peer);
	h = hl_addr_rec_get(t->hosts, HOST_BUCKETS, sa, sizeof *h, 1);
	if (h == NULL) {
		evutil_closesocket(fd);
		return;
	}
	if (t->naccepting < t->handshakes_max &&
	    h->nhandshakes < t->handshakes_per_host)
		handshake_start(t, fd, h, peer,
		                (long long)HANDSHAKE_TIMEOUT_SEC * 1000);
	else if (t->nparked < t->parked_max && h->nparked < t->parked_per_host)
		park(t, fd, h, peer);
	else {
		/* A busy client waits in the queue above; only a flood
		 * gets here. */
		if (!h->refusal_logged)
			t->svc->log(t->self, HL_LOG_DEBUG,
			            "%s: %u handshakes and %u waiting from "
			            "this address: closing what comes over "
			            "that (logged once per address)",
			            peer, h->nhandshakes, h->nparked);
		h->refusal_logged = 1;
		t->refused_busy++;
		evutil_closesocket(fd);
	}
	host_release(t, h);
}

static void
listener_resume_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                         void *arg)
{
	struct listener *l = arg;

	l->paused = 0;
	l->accepted = 0;
	l->resumed_ms = hl_mono_ms();
	listeners_update(l->tls);
}

/*
 * accept() failed. Out of descriptors (or kernel memory), the connection
 * stays in the backlog and the listener would be called again at once:
 * stop it for a pause that grows from 50 ms to 2 s, back to 50 ms once a
 * pause ended with an accept and 2 s went by without running out.
 */
static void
listener_error_callback(struct evconnlistener *lev HL_UNUSED, void *arg)
{
	struct listener *l = arg;
	struct tls *t = l->tls;
	int err = EVUTIL_SOCKET_ERROR();
	long long now = hl_mono_ms();
	int ms;

	if (!hl_accept_out_of_descriptors(err)) {
		if (!l->other_logged)
			t->svc->log(t->self, HL_LOG_WARN,
			            "listener %s: accept failed: %s (logged "
			            "once)",
			            l->name, strerror(err));
		l->other_logged = 1;
		return;
	}
	if (l->accepted && now - l->resumed_ms >= PAUSE_MAX_MS)
		l->pause_ms = PAUSE_MIN_MS;
	ms = l->pause_ms;
	l->pause_ms = hl_pause_next(ms, PAUSE_MIN_MS, PAUSE_MAX_MS);
	l->errors++;
	t->pauses++;
	t->svc->log(t->self, HL_LOG_WARN,
	            "listener %s: out of descriptors (%lu so far): not "
	            "accepting for %d ms",
	            l->name, l->errors, ms);
	l->paused = 1;
	listeners_update(t);
	hl_evtimer_add_ms(l->resume, ms);
}

static int
open_listener(struct tls *t, const struct hl_conf *node, const char *addr)
{
	char host[ADDR_MAX];
	uint16_t port;
	int fd = -1, on = 1, off = 0;
	struct listener *l;
	struct sockaddr_storage ss;
	int sslen = sizeof ss;
	socklen_t len = sizeof ss;

	if (t->nlisteners == MAX_LISTENERS) {
		t->svc->conf_error(t->self, node, "at most %d listen addresses",
		                   MAX_LISTENERS);
		return -1;
	}
	if (hl_addr_split(addr, host, sizeof host, &port) != 0 ||
	    evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) !=
	        0) {
		t->svc->conf_error(
		    t->self, node,
		    "listen: \"%s\" is not an address like \"[::]:7008\" or "
		    "\"0.0.0.0:7008\"",
		    addr);
		return -1;
	}
	fd =
	    socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	/* "[::]:port" takes IPv4 too: one listener serves both, so that
	 * LAN, WAN and Yggdrasil addresses all reach it. */
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
	if (bind(fd, (struct sockaddr *)&ss, (socklen_t)sslen) != 0 ||
	    listen(fd, 512) != 0)
		goto fail;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		goto fail;
	l = &t->listeners[t->nlisteners];
	l->tls = t;
	l->pause_ms = PAUSE_MIN_MS;
	l->resume = evtimer_new(t->base, listener_resume_callback, l);
	if (l->resume == NULL)
		goto fail;
	l->lev = evconnlistener_new(
	    t->base, listener_accept_callback, l,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (l->lev == NULL) {
		event_free(l->resume);
		l->resume = NULL;
		goto fail;
	}
	evconnlistener_set_error_cb(l->lev, listener_error_callback);
	l->enabled = 1;
	l->addr = ss;
	l->len = len;
	hl_sockaddr_str((struct sockaddr *)&ss, l->name, sizeof l->name);
	t->nlisteners++;
	t->svc->listening(t->self, (struct sockaddr *)&ss, len, 1);
	return 0;
fail:
	t->svc->log(t->self, HL_LOG_ERROR, "cannot listen on %s: %s", addr,
	            strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static SSL_CTX *
service_ctx_new(struct tls *t, const struct hl_identity *id)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	BIO *b = NULL;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	b = BIO_new_mem_buf(id->cert_pem, -1);
	cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	b = BIO_new_mem_buf(id->key_pem, -1);
	key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (cert == NULL || key == NULL ||
	    SSL_CTX_use_certificate(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1) {
		t->svc->log(
		    t->self, HL_LOG_ERROR,
		    "service %s: its certificate or key cannot be used for "
		    "TLS",
		    id->name);
		SSL_CTX_free(ctx);
		ctx = NULL;
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return ctx;
}

static int
check_conf(const struct hl_services *svc, struct hl_plugin *self,
           const struct hl_conf *conf)
{
	static const char *const allowed[] = {"listen", "advertise", NULL};
	const struct hl_conf *n;
	int bad = svc->conf_check_keys(self, conf, allowed);
	char host[ADDR_MAX];
	uint16_t port;

	for (int k = 0; k < 2; k++) {
		const char *key = k ? "advertise" : "listen";
		n = svc->conf_get(conf, key);
		if (n == NULL)
			continue;
		if (svc->conf_type(n) == HL_CONF_SCALAR) {
			if (hl_addr_split(svc->conf_str(n), host, sizeof host,
			                  &port) != 0) {
				svc->conf_error(self, n,
				                "%s: \"%s\" is not host:port",
				                key, svc->conf_str(n));
				bad++;
			}
			continue;
		}
		if (svc->conf_type(n) != HL_CONF_LIST) {
			svc->conf_error(
			    self, n,
			    "%s: expected an address or a list of them", key);
			bad++;
			continue;
		}
		for (size_t i = 0; i < svc->conf_len(n); i++) {
			const struct hl_conf *it = svc->conf_item(n, i);
			const char *s = svc->conf_str(it);
			if (s == NULL ||
			    hl_addr_split(s, host, sizeof host, &port) != 0 ||
			    (k == 1 && port == 0)) {
				svc->conf_error(self, it,
				                "%s: expected \"host:port\"",
				                key);
				bad++;
			}
		}
	}
	return bad ? -1 : 0;
}

static size_t
clamp(unsigned long long v, size_t lo, size_t hi)
{
	return v < lo ? lo : v > hi ? hi : (size_t)v;
}

/* The caps follow the descriptor limit, read here: the core has raised
 * the soft limit to the hard one before plugins start. */
static void
size_caps(struct tls *t)
{
	struct rlimit rl;
	unsigned long long nofile = 1024;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
		nofile = rl.rlim_cur == RLIM_INFINITY
		             ? (unsigned long long)1 << 20
		             : (unsigned long long)rl.rlim_cur;
	t->handshakes_max = clamp(nofile / 8, HANDSHAKES_MIN, HANDSHAKES_MAX);
	t->handshakes_per_host =
	    clamp(t->handshakes_max / 2, 1, HANDSHAKES_PER_HOST);
	t->parked_max = clamp(nofile / 4, PARKED_MIN, PARKED_MAX);
	t->parked_per_host = clamp(t->parked_max / 2, 1, PARKED_PER_HOST);
	t->svc->log(t->self, HL_LOG_DEBUG,
	            "%llu descriptors: at most %zu handshakes at once (%zu "
	            "per address), %zu connections waiting for one (%zu per "
	            "address)",
	            nofile, t->handshakes_max, t->handshakes_per_host,
	            t->parked_max, t->parked_per_host);
}

static void tls_fini(void *state);

static int
tls_init(const struct hl_services *svc, struct hl_plugin *self,
         const struct hl_conf *conf, void **state)
{
	struct tls *t;
	const struct hl_conf *n;

	if (check_conf(svc, self, conf) != 0)
		return -1;
	HL_STATE_NEW(t, svc, self);
	if (t == NULL)
		return -1;
	size_caps(t);
	t->park_timer = evtimer_new(t->base, park_timer_callback, t);
	t->client_ctx = SSL_CTX_new(TLS_client_method());
	t->server_ctx = SSL_CTX_new(TLS_server_method());
	if (t->park_timer == NULL || t->client_ctx == NULL ||
	    t->server_ctx == NULL)
		goto fail;
	/* No CA: the core pins the certificate by its hash. */
	SSL_CTX_set_verify(t->client_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(t->client_ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(t->client_ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(t->client_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_min_proto_version(t->server_ctx, TLS1_2_VERSION);
	SSL_CTX_set_mode(t->server_ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(t->server_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(t->server_ctx, 0);
	/* AES-128-GCM first: as strong as a tunnel needs, and cheaper per
	 * byte than OpenSSL's default AES-256-GCM. The server's order wins,
	 * so Python clients (AES-256 first) get it too. */
	SSL_CTX_set_ciphersuites(t->client_ctx, TLS13_SUITES);
	SSL_CTX_set_ciphersuites(t->server_ctx, TLS13_SUITES);
	SSL_CTX_set_options(t->server_ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_tlsext_servername_callback(t->server_ctx, sni_callback);
	SSL_CTX_set_tlsext_servername_arg(t->server_ctx, t);

	t->nservices = svc->identity_count(self);
	t->services =
	    calloc(t->nservices ? t->nservices : 1, sizeof *t->services);
	if (t->services == NULL)
		goto fail;
	for (size_t i = 0; i < t->nservices; i++) {
		const struct hl_identity *id = svc->identity_at(self, i);
		snprintf(t->services[i].keyhash, sizeof t->services[i].keyhash,
		         "%s", id->keyhash);
		t->services[i].ctx = service_ctx_new(t, id);
		if (t->services[i].ctx == NULL)
			goto fail;
	}
	n = svc->conf_get(conf, "listen");
	if (n != NULL && svc->conf_type(n) == HL_CONF_SCALAR) {
		if (open_listener(t, n, svc->conf_str(n)) != 0)
			goto fail;
	} else if (n != NULL) {
		for (size_t i = 0; i < svc->conf_len(n); i++) {
			const struct hl_conf *it = svc->conf_item(n, i);
			if (open_listener(t, it, svc->conf_str(it)) != 0)
				goto fail;
		}
	}
	n = svc->conf_get(conf, "advertise");
	if (n != NULL && svc->conf_type(n) == HL_CONF_SCALAR) {
		svc->wanhost_add(self, svc->conf_str(n));
	} else if (n != NULL) {
		for (size_t i = 0; i < svc->conf_len(n); i++)
			svc->wanhost_add(self,
			                 svc->conf_str(svc->conf_item(n, i)));
	}
	*state = t;
	return 0;
fail:
	tls_fini(t);
	return -1;
}

static void
tls_fini(void *state)
{
	struct tls *t = state;
	int level;

	t->stopping = 1;
	for (size_t i = 0; i < t->nlisteners; i++) {
		struct listener *l = &t->listeners[i];
		t->svc->listening(t->self, (struct sockaddr *)&l->addr, l->len,
		                  0);
		evconnlistener_free(l->lev);
		event_free(l->resume);
	}
	while (t->accepting != NULL)
		accepting_free(t->accepting);
	while (t->parked_head != NULL) {
		struct parked *p = t->parked_head;
		unpark(t, p);
		evutil_closesocket(p->fd);
		host_release(t, p->host);
		free(p);
	}
	hl_event_free(&t->park_timer);
	/* The core is stopping: dials still running end silently. */
	while (t->dials != NULL)
		dial_unlink_free(t->dials);
	for (size_t i = 0; i < t->nservices; i++)
		SSL_CTX_free(t->services[i].ctx);
	free(t->services);
	SSL_CTX_free(t->client_ctx);
	SSL_CTX_free(t->server_ctx);
	level = t->refused_busy || t->parked_total || t->pauses || t->full_count
	            ? HL_LOG_INFO
	            : HL_LOG_DEBUG;
	t->svc->log(t->self, level,
	            "accepted connections: %lu parked for a handshake slot "
	            "(%lu of them expired waiting), %lu refused over the "
	            "per-address bounds, %lu times at the handshake cap, %lu "
	            "paused out of descriptors, %lu refused for an unknown "
	            "name",
	            t->parked_total, t->parked_expired, t->refused_busy,
	            t->full_count, t->pauses, t->refused_sni);
	free(t);
}

static int
tls_validate(const struct hl_services *svc, struct hl_plugin *self,
             const struct hl_conf *conf)
{
	return check_conf(svc, self, conf);
}

/* Read by 1.2 cores only; older ones give it bare addresses. */
static const char *const tls_schemes[] = {"", "tls", NULL};

static const struct hl_transport_ops tls_transport = {
    .size = sizeof(struct hl_transport_ops),
    .dial = tls_dial,
    .dial_cancel = tls_dial_cancel,
    .schemes = tls_schemes,
};

HL_PLUGIN(
    HL_KIND_TRANSPORT, .name = "transport-tls", .version = "0.1.0",
    .description = "TCP + TLS tunnels, wire-compatible with Python Hardline",
    .default_priority = 10, .init = tls_init, .fini = tls_fini,
    .validate = tls_validate, .transport = &tls_transport);
