/*
 * transport-example: a third-party transport built out of tree against the
 * installed SDK (find_package(Hardline) or pkg-config hardline-plugin).
 * It is a real, minimal TLS-over-TCP transport, speaking what
 * transport-tls speaks (docs/protocol.md, "The tunnel"):
 *
 *   dial: TCP to "host:port" / "[v6]:port", TLS with SNI = the bare
 *   keyhash, no certificate verification (the core pins the server's
 *   certificate by its hash), the handshaken bufferevent handed to the
 *   core through the dial callback.
 *   accept: with `listen: "host:port"` in its config, a TLS server whose
 *   certificate is the one of the service named by the client's SNI;
 *   handshaken tunnels go to svc->incoming().
 *
 * Config (plugins: transport-example:):
 *   listen: "[::]:7018"    optional; without it the plugin only dials
 *
 * Everything runs on the core's loop thread: no threads, no blocking.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <hardline/evutil.h>
#include <hardline/plugin.h>
#include <hardline/util.h>

#define TIMEOUT_SEC 10 /* bound on connect + handshake */
#define MAX_HANDSHAKES 64 /* accepted connections still handshaking */

struct example;

/* One dial in flight: the plugin's handle, owned until cb or cancel. */
struct hl_dial {
	struct example *ex;
	struct bufferevent *bev;
	hl_dial_cb cb;
	void *arg;
	struct hl_dial *next, **prevp;
};

/* One accepted connection still in its handshake. */
struct handshake {
	struct example *ex;
	struct bufferevent *bev;
	char peer[64];
	struct handshake *next, **prevp;
};

struct example {
	const struct hl_services *svc;
	struct hl_plugin *self;
	SSL_CTX *client_ctx;
	SSL_CTX *server_ctx; /* the handshake starts here; SNI switches */
	SSL_CTX **service_ctx; /* one per identity, same order */
	size_t nservices;
	struct evconnlistener *listener;
	struct sockaddr_storage listen_sa;
	socklen_t listen_len;
	struct hl_dial *dials;
	struct handshake *handshakes;
	size_t nhandshakes;
};

/*
 * Why a connection failed, in words for the core's error page. libevent
 * reports a socket that failed under TLS (refused, reset) as the OpenSSL
 * error SSL_ERROR_SYSCALL, by when errno is long gone.
 */
static void
why(struct bufferevent *bev, short what, char *buf, size_t len)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	int dns = bufferevent_socket_get_dns_error(bev);
	char reason[256];

	if (what & BEV_EVENT_TIMEOUT)
		snprintf(buf, len, "no TLS connection within %d s",
		         TIMEOUT_SEC);
	else if (dns != 0)
		snprintf(buf, len, "name lookup failed: %s",
		         evutil_gai_strerror(dns));
	else if (e == SSL_ERROR_SYSCALL)
		snprintf(buf, len, "TCP connection failed (refused or reset)");
	else if (e != 0) {
		ERR_error_string_n(e, reason, sizeof reason);
		snprintf(buf, len, "TLS handshake failed: %s", reason);
	} else
		snprintf(buf, len, "connection closed during the handshake");
}

/* ---- dialling ---- */

static void
dial_free(struct hl_dial *d)
{
	HL_LIST_REMOVE(d);
	hl_bufferevent_free(&d->bev);
	free(d);
}

static void
dial_event_callback(struct bufferevent *bev, short what, void *arg)
{
	struct hl_dial *d = arg;
	hl_dial_cb cb = d->cb;
	void *cbarg = d->arg;
	unsigned char *der = NULL;
	X509 *cert;
	char err[400];
	int len;

	if (!(what & BEV_EVENT_CONNECTED)) {
		why(bev, what, err, sizeof err);
		dial_free(d);
		cb(cbarg, NULL, NULL, 0, err);
		return;
	}
	cert = SSL_get_peer_certificate(bufferevent_openssl_get_ssl(bev));
	len = cert != NULL ? i2d_X509(cert, &der) : -1;
	X509_free(cert);
	if (len <= 0) {
		dial_free(d);
		cb(cbarg, NULL, NULL, 0, "the server sent no certificate");
		return;
	}
	/* Hand the stream over with no callbacks or timeouts left set; from
	 * the callback on, the core owns it. */
	hl_bufferevent_handover(bev);
	d->bev = NULL;
	dial_free(d);
	cb(cbarg, bev, der, (size_t)len, NULL);
	OPENSSL_free(der);
}

static struct hl_dial *
example_dial(void *state, const char *keyhash, const char *addr, hl_dial_cb cb,
             void *arg)
{
	struct example *ex = state;
	struct timeval tv = {TIMEOUT_SEC, 0};
	struct hl_dial *d;
	char host[256];
	uint16_t port;
	SSL *ssl;

	/* Not an address this transport understands: NULL, and cb never
	 * runs. */
	if (hl_addr_split(addr, host, sizeof host, &port) != 0 || port == 0)
		return NULL;
	d = calloc(1, sizeof *d);
	if (d == NULL)
		return NULL;
	ssl = SSL_new(ex->client_ctx);
	/* SNI is the bare keyhash: the server picks its service by it. */
	if (ssl == NULL || SSL_set_tlsext_host_name(ssl, keyhash) != 1) {
		SSL_free(ssl);
		free(d);
		return NULL;
	}
	/* Deferred callbacks: even an immediate failure reaches
	 * dial_event_callback from the loop, never from inside dial(). */
	d->bev = bufferevent_openssl_socket_new(
	    ex->svc->event_base(ex->self), -1, ssl, BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (d->bev == NULL) {
		SSL_free(ssl);
		free(d);
		return NULL;
	}
	d->ex = ex;
	d->cb = cb;
	d->arg = arg;
	HL_LIST_INSERT(ex->dials, d);
	bufferevent_openssl_set_allow_dirty_shutdown(d->bev, 1);
	bufferevent_setcb(d->bev, NULL, NULL, dial_event_callback, d);
	bufferevent_set_timeouts(d->bev, &tv, &tv);
	bufferevent_enable(d->bev, EV_READ | EV_WRITE);
	/* Fails synchronously only on arguments checked above; then no
	 * callback is scheduled, so give up without one. */
	if (bufferevent_socket_connect_hostname(d->bev,
	                                        ex->svc->dns_base(ex->self),
	                                        AF_UNSPEC, host, port) != 0) {
		dial_free(d);
		return NULL;
	}
	return d;
}

static void
example_dial_cancel(void *state, struct hl_dial *d)
{
	(void)state;
	dial_free(d);
}

/* ---- accepting ---- */

static void
handshake_free(struct handshake *h)
{
	HL_LIST_REMOVE(h);
	h->ex->nhandshakes--;
	hl_bufferevent_free(&h->bev);
	free(h);
}

static void
handshake_event_callback(struct bufferevent *bev, short what, void *arg)
{
	struct handshake *h = arg;
	struct example *ex = h->ex;
	const struct hl_identity *id;
	char err[400], peer[sizeof h->peer];
	const char *sni;

	if (!(what & BEV_EVENT_CONNECTED)) {
		why(bev, what, err, sizeof err);
		ex->svc->log(ex->self, HL_LOG_DEBUG, "handshake with %s: %s",
		             h->peer, err);
		handshake_free(h);
		return;
	}
	sni = SSL_get_servername(bufferevent_openssl_get_ssl(bev),
	                         TLSEXT_NAMETYPE_host_name);
	id = sni != NULL ? ex->svc->identity_find(ex->self, sni) : NULL;
	if (id == NULL) { /* the SNI callback let no such handshake end */
		handshake_free(h);
		return;
	}
	hl_bufferevent_handover(bev);
	h->bev = NULL;
	memcpy(peer, h->peer, sizeof peer);
	handshake_free(h);
	ex->svc->incoming(ex->self, bev, id->keyhash, peer);
}

/* The certificate of the service named by SNI; no such service, no
 * handshake. */
static int
sni_callback(SSL *ssl, int *alert, void *arg)
{
	struct example *ex = arg;
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

	for (size_t i = 0; name != NULL && i < ex->nservices; i++) {
		const struct hl_identity *id =
		    ex->svc->identity_at(ex->self, i);
		if (strcasecmp(name, id->keyhash) == 0) {
			SSL_set_SSL_CTX(ssl, ex->service_ctx[i]);
			return SSL_TLSEXT_ERR_OK;
		}
	}
	*alert = SSL_AD_UNRECOGNIZED_NAME;
	return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void
listener_accept_callback(struct evconnlistener *l, evutil_socket_t fd,
                         struct sockaddr *sa, int salen, void *arg)
{
	struct example *ex = arg;
	struct timeval tv = {TIMEOUT_SEC, 0};
	struct handshake *h = NULL;
	SSL *ssl = NULL;

	(void)l;
	(void)salen;
	if (ex->nhandshakes >= MAX_HANDSHAKES ||
	    (h = calloc(1, sizeof *h)) == NULL ||
	    (ssl = SSL_new(ex->server_ctx)) == NULL)
		goto fail;
	h->bev = bufferevent_openssl_socket_new(
	    ex->svc->event_base(ex->self), fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (h->bev == NULL)
		goto fail;
	hl_sockaddr_str(sa, h->peer, sizeof h->peer);
	h->ex = ex;
	HL_LIST_INSERT(ex->handshakes, h);
	ex->nhandshakes++;
	bufferevent_openssl_set_allow_dirty_shutdown(h->bev, 1);
	bufferevent_setcb(h->bev, NULL, NULL, handshake_event_callback, h);
	bufferevent_set_timeouts(h->bev, &tv, &tv);
	bufferevent_enable(h->bev, EV_READ | EV_WRITE);
	return;
fail:
	SSL_free(ssl);
	free(h);
	evutil_closesocket(fd);
}

static int
listen_on(struct example *ex, const char *addr)
{
	struct sockaddr_storage ss;
	int len = sizeof ss;

	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	ex->listener = evconnlistener_new_bind(
	    ex->svc->event_base(ex->self), listener_accept_callback, ex,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
	    128, (struct sockaddr *)&ss, len);
	if (ex->listener == NULL) {
		ex->svc->log(ex->self, HL_LOG_ERROR, "cannot listen on %s: %s",
		             addr, strerror(errno));
		return -1;
	}
	ex->listen_len = sizeof ex->listen_sa;
	getsockname(evconnlistener_get_fd(ex->listener),
	            (struct sockaddr *)&ex->listen_sa, &ex->listen_len);
	/* Tell the core, which tells traversal plugins (UPnP). */
	ex->svc->listening(ex->self, (struct sockaddr *)&ex->listen_sa,
	                   ex->listen_len, 1);
	ex->svc->log(ex->self, HL_LOG_INFO, "listening on %s", addr);
	return 0;
}

/* A server context holding one service's certificate and key. */
static SSL_CTX *
service_ctx_new(const struct hl_identity *id)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	BIO *b;
	X509 *cert = NULL;
	EVP_PKEY *key = NULL;
	int ok = 0;

	if (ctx == NULL)
		return NULL;
	if ((b = BIO_new_mem_buf(id->cert_pem, -1)) != NULL) {
		cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	if ((b = BIO_new_mem_buf(id->key_pem, -1)) != NULL) {
		key = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
		BIO_free(b);
	}
	ok = cert != NULL && key != NULL &&
	     SSL_CTX_use_certificate(ctx, cert) == 1 &&
	     SSL_CTX_use_PrivateKey(ctx, key) == 1;
	X509_free(cert);
	EVP_PKEY_free(key);
	if (!ok) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	return ctx;
}

/* ---- init, fini, validate ---- */

static int
example_validate(const struct hl_services *svc, struct hl_plugin *self,
                 const struct hl_conf *conf)
{
	static const char *const allowed[] = {"listen", NULL};
	const struct hl_conf *listen = svc->conf_get(conf, "listen");
	const char *s = svc->conf_str(listen);
	char host[256];
	uint16_t port;
	int bad = svc->conf_check_keys(self, conf, allowed);

	if (listen != NULL &&
	    (s == NULL || hl_addr_split(s, host, sizeof host, &port) != 0 ||
	     port == 0)) {
		svc->conf_error(
		    self, listen,
		    "listen: expected one address like \"[::]:7018\"");
		bad++;
	}
	return bad ? -1 : 0;
}

static void
example_fini(void *state)
{
	struct example *ex = state;

	if (ex->listener != NULL) {
		ex->svc->listening(ex->self, (struct sockaddr *)&ex->listen_sa,
		                   ex->listen_len, 0);
		evconnlistener_free(ex->listener);
	}
	while (ex->handshakes != NULL)
		handshake_free(ex->handshakes);
	/* The core is stopping: dials still running end without a call. */
	while (ex->dials != NULL)
		dial_free(ex->dials);
	for (size_t i = 0; i < ex->nservices; i++)
		SSL_CTX_free(ex->service_ctx[i]);
	free(ex->service_ctx);
	SSL_CTX_free(ex->client_ctx);
	SSL_CTX_free(ex->server_ctx);
	free(ex);
}

static int
example_init(const struct hl_services *svc, struct hl_plugin *self,
             const struct hl_conf *conf, void **state)
{
	const struct hl_conf *listen;
	struct example *ex;

	if (example_validate(svc, self, conf) != 0)
		return -1;
	if ((ex = calloc(1, sizeof *ex)) == NULL)
		return -1;
	ex->svc = svc;
	ex->self = self;
	ex->client_ctx = SSL_CTX_new(TLS_client_method());
	ex->server_ctx = SSL_CTX_new(TLS_server_method());
	if (ex->client_ctx == NULL || ex->server_ctx == NULL)
		goto fail;
	/* No CA: the core pins the server's certificate by its keyhash. */
	SSL_CTX_set_verify(ex->client_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(ex->client_ctx, TLS1_2_VERSION);
	SSL_CTX_set_min_proto_version(ex->server_ctx, TLS1_2_VERSION);
	SSL_CTX_set_tlsext_servername_callback(ex->server_ctx, sni_callback);
	SSL_CTX_set_tlsext_servername_arg(ex->server_ctx, ex);

	ex->nservices = svc->identity_count(self);
	ex->service_ctx = calloc(ex->nservices + 1, sizeof *ex->service_ctx);
	if (ex->service_ctx == NULL)
		goto fail;
	for (size_t i = 0; i < ex->nservices; i++) {
		const struct hl_identity *id = svc->identity_at(self, i);
		if ((ex->service_ctx[i] = service_ctx_new(id)) == NULL) {
			svc->log(
			    self, HL_LOG_ERROR,
			    "service %s: its certificate or key is unusable",
			    id->name);
			goto fail;
		}
	}
	listen = svc->conf_get(conf, "listen");
	if (listen != NULL && listen_on(ex, svc->conf_str(listen)) != 0)
		goto fail;
	*state = ex;
	return 0;
fail:
	example_fini(ex);
	return -1;
}

static const struct hl_transport_ops example_transport = {
    .size = sizeof(struct hl_transport_ops),
    .dial = example_dial,
    .dial_cancel = example_dial_cancel,
};

HL_PLUGIN(HL_KIND_TRANSPORT, .name = "transport-example", .version = "0.1",
          .description = "an out-of-tree example: TLS over TCP, SNI = keyhash",
          .default_priority = 15, .init = example_init, .fini = example_fini,
          .validate = example_validate, .transport = &example_transport);
