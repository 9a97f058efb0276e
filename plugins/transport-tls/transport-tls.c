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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
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
#include "hardline/util.h"

#define HANDSHAKE_TIMEOUT_SEC 10
#define MAX_LISTENERS 8
#define MAX_HANDSHAKES 1024 /* accepted connections still handshaking */
#define ADDR_MAX 262
#define TLS13_SUITES                                                           \
	"TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:"                 \
	"TLS_AES_256_GCM_SHA384"

struct service_ctx {
	char keyhash[41];
	SSL_CTX *ctx;
};

/* A handshake must end 10 s after it began: bufferevent timeouts alone
 * restart with every byte, so a peer trickling bytes could hold it open. */
struct accepting {
	struct tls *tls;
	struct bufferevent *bev;
	struct event *deadline;
	char peer[ADDR_MAX];
	struct accepting *next, **prevp;
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
	struct evconnlistener *listeners[MAX_LISTENERS];
	struct sockaddr_storage listen_addr[MAX_LISTENERS];
	socklen_t listen_len[MAX_LISTENERS];
	size_t nlisteners;
	struct accepting *accepting;
	size_t naccepting;
	struct hl_dial *dials;
	unsigned long refused_sni;
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
	if (d->bev != NULL)
		bufferevent_free(d->bev);
	if (d->deadline != NULL)
		event_free(d->deadline);
	free(d);
}

static void
dial_deadline_callback(evutil_socket_t fd, short what, void *arg)
{
	struct hl_dial *d = arg;
	char err[128];

	(void)fd;
	(void)what;
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
		bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
		bufferevent_set_timeouts(bev, NULL, NULL);
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
	d->deadline = evtimer_new(t->base, dial_deadline_callback, d);
	if (d->deadline != NULL)
		evtimer_add(d->deadline, &tv);
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
tls_dial_cancel(void *state, struct hl_dial *d)
{
	(void)state;
	dial_unlink_free(d);
}

/* ---- accepting ---- */

static void
accepting_free(struct accepting *a)
{
	HL_LIST_REMOVE(a);
	a->tls->naccepting--;
	if (a->bev != NULL)
		bufferevent_free(a->bev);
	if (a->deadline != NULL)
		event_free(a->deadline);
	free(a);
}

static void
accept_deadline_callback(evutil_socket_t fd, short what, void *arg)
{
	struct accepting *a = arg;

	(void)fd;
	(void)what;
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
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
	a->bev = NULL;
	{
		char peer[ADDR_MAX];
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

static void
listener_accept_callback(struct evconnlistener *l, evutil_socket_t fd,
                         struct sockaddr *sa, int salen, void *arg)
{
	struct tls *t = arg;
	struct accepting *a;
	SSL *ssl;
	struct timeval tv = {HANDSHAKE_TIMEOUT_SEC, 0};

	(void)l;
	(void)salen;
	if (t->naccepting >= MAX_HANDSHAKES) {
		evutil_closesocket(fd);
		return;
	}
	{
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
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
	a->deadline = evtimer_new(t->base, accept_deadline_callback, a);
	if (a->deadline != NULL)
		evtimer_add(a->deadline, &tv);
	/* A printable peer address for the logs. */
	hl_sockaddr_str(sa, a->peer, sizeof a->peer);
	HL_LIST_INSERT(t->accepting, a);
	t->naccepting++;
	bufferevent_setcb(a->bev, NULL, NULL, accept_event_callback, a);
	bufferevent_set_timeouts(a->bev, &tv, &tv);
	bufferevent_enable(a->bev, EV_READ | EV_WRITE);
}

static int
open_listener(struct tls *t, const struct hl_conf *node, const char *addr)
{
	char host[ADDR_MAX];
	uint16_t port;
	int fd = -1, on = 1, off = 0;
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
	t->listeners[t->nlisteners] = evconnlistener_new(
	    t->base, listener_accept_callback, t,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (t->listeners[t->nlisteners] == NULL)
		goto fail;
	t->listen_addr[t->nlisteners] = ss;
	t->listen_len[t->nlisteners] = len;
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

static void tls_fini(void *state);

static int
tls_init(const struct hl_services *svc, struct hl_plugin *self,
         const struct hl_conf *conf, void **state)
{
	struct tls *t;
	const struct hl_conf *n;

	if (check_conf(svc, self, conf) != 0)
		return -1;
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return -1;
	t->svc = svc;
	t->self = self;
	t->base = svc->event_base(self);
	t->client_ctx = SSL_CTX_new(TLS_client_method());
	t->server_ctx = SSL_CTX_new(TLS_server_method());
	if (t->client_ctx == NULL || t->server_ctx == NULL)
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

	for (size_t i = 0; i < t->nlisteners; i++) {
		t->svc->listening(t->self,
		                  (struct sockaddr *)&t->listen_addr[i],
		                  t->listen_len[i], 0);
		evconnlistener_free(t->listeners[i]);
	}
	while (t->accepting != NULL)
		accepting_free(t->accepting);
	/* The core is stopping: dials still running end silently. */
	while (t->dials != NULL)
		dial_unlink_free(t->dials);
	for (size_t i = 0; i < t->nservices; i++)
		SSL_CTX_free(t->services[i].ctx);
	free(t->services);
	SSL_CTX_free(t->client_ctx);
	SSL_CTX_free(t->server_ctx);
	free(t);
}

static int
tls_validate(const struct hl_services *svc, struct hl_plugin *self,
             const struct hl_conf *conf)
{
	return check_conf(svc, self, conf);
}

static const struct hl_transport_ops tls_transport = {
    .size = sizeof(struct hl_transport_ops),
    .dial = tls_dial,
    .dial_cancel = tls_dial_cancel,
};

HL_PLUGIN(
    HL_KIND_TRANSPORT, .name = "transport-tls", .version = "0.1.0",
    .description = "TCP + TLS tunnels, wire-compatible with Python Hardline",
    .default_priority = 10, .init = tls_init, .fini = tls_fini,
    .validate = tls_validate, .transport = &tls_transport);
