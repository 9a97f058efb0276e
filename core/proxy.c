/*
 * proxy.c: the browser-facing proxy. It reads a request head (at most
 * 16 KiB, within 10 s), takes the keyhash and password from its Host,
 * asks the router for a tunnel, exchanges the OOB lines and splices the
 * browser's connection to the tunnel, request head included, so that
 * keep-alive requests keep flowing. Every failure gets a page that says
 * what went wrong.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "daemon.h"

struct hl__proxy {
	struct hl__acceptor *acceptor;
	int full; /* held: hl__limits.proxy_conns connections held */
	time_t full_logged; /* a line a minute about it at most */
	unsigned long full_times;
};

struct proxy_conn {
	struct hl__live live; /* first: the list hands back this pointer */
	struct hl__core *core;
	struct bufferevent *browser;
	struct hl__outbound *out;
	char peer[HL_PEER_MAX];
	char keyhash[HL_KEYHASH_LEN + 1];
	char password[HL_PASSWORD_MAX + 1];
	char via[192];
	/* The request head must be complete 10 s after the connection, not
	 * 10 s after its last byte. */
	struct event *head_deadline;
	struct event *wait; /* lingering after an error page */
	int linger; /* read and drop the rest after the error page */
	size_t lingered;
};

/* A 400/431 page goes out, then the rest of the request is read and
 * dropped for this long, so that the browser sees the page, not a reset. */
#define LINGER_MS 2000
#define LINGER_MAX (256 * 1024)

static long nconns; /* proxy connections held, spliced ones included */

static void
listener_update(struct hl__core *c)
{
	struct hl__proxy *p = c->proxy;

	if (p == NULL)
		return;
	if (!p->full && nconns >= hl__limits.proxy_conns) {
		time_t now = time(NULL);
		p->full = 1;
		p->full_times++;
		hl__acceptor_hold(p->acceptor, 1);
		if (now - p->full_logged >= 60) {
			hl__warn(
			    "proxy: %ld connections held, the maximum "
			    "(%lu times in the last minute): new ones wait "
			    "in the kernel's queue",
			    nconns, p->full_times);
			p->full_logged = now;
			p->full_times = 0;
		}
	} else if (p->full && nconns < hl__limits.proxy_conns * 9 / 10) {
		p->full = 0;
		hl__acceptor_hold(p->acceptor, 0);
	}
}

/* The memory of a proxy connection, whoever holds it (the splice too). */
static void
conn_release(struct hl__core *c, struct proxy_conn *pc)
{
	hl_event_free(&pc->wait);
	free(pc);
	nconns--;
	listener_update(c);
}

static void
conn_free(struct proxy_conn *pc)
{
	hl__live_remove(&pc->live);
	hl_event_free(&pc->head_deadline);
	hl__outbound_cancel(pc->out);
	hl_bufferevent_free(&pc->browser);
	conn_release(pc->core, pc);
}

static char *
html_escape(const char *s)
{
	size_t n = 1;
	char *out, *o;

	for (const char *p = s; *p; p++)
		n += (*p == '<' || *p == '>' || *p == '&' || *p == '"') ? 6 : 1;
	out = o = malloc(n);
	if (out == NULL)
		return NULL;
	for (const char *p = s; *p; p++) {
		const char *rep = *p == '<'   ? "&lt;"
		                  : *p == '>' ? "&gt;"
		                  : *p == '&' ? "&amp;"
		                  : *p == '"' ? "&quot;"
		                              : NULL;
		if (rep != NULL) {
			memcpy(o, rep, strlen(rep));
			o += strlen(rep);
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	return out;
}

/* A complete HTTP response with a small HTML page; malloc'd. */
static char *
error_response(int status, const char *reason, const char *title,
               const char *text)
{
	char *et = html_escape(text), *resp = NULL;
	int n;

	if (et == NULL)
		return NULL;
	const char *fmt =
	    "<!doctype html><html><head><meta charset=\"utf-8\">"
	    "<title>%s</title></head><body><h1>%s</h1><pre>%s</pre>"
	    "<p><small>hlcore %s</small></p></body></html>\n";
	n = snprintf(NULL, 0, fmt, title, title, et, HL_VERSION);
	if (n > 0) {
		size_t bl = (size_t)n, hl = 256;
		resp = malloc(bl + hl);
		if (resp != NULL) {
			int h = snprintf(
			    resp, hl,
			    "HTTP/1.1 %d %s\r\nContent-Type: text/html; "
			    "charset=utf-8\r\nContent-Length: %zu\r\n"
			    "Cache-Control: no-store\r\nConnection: "
			    "close\r\n\r\n",
			    status, reason, bl);
			snprintf(resp + h, bl + 1, fmt, title, title, et,
			         HL_VERSION);
		}
	}
	free(et);
	return resp;
}

static void close_event_callback(struct bufferevent *bev, short what,
                                 void *arg);

static void
linger_read_callback(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *pc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);

	pc->lingered += evbuffer_get_length(in);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (pc->lingered > LINGER_MAX)
		conn_free(pc);
}

static void
linger_done_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                     void *arg)
{
	conn_free(arg);
}

static void
close_after_write_callback(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *pc = arg;
	struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	/* Closing with unread bytes would send a reset, and the browser
	 * could drop the page before showing it: say we are done writing,
	 * then read and drop what the browser still sends, for a while. */
	if (pc->linger && pc->wait == NULL)
		pc->wait =
		    evtimer_new(pc->core->base, linger_done_callback, pc);
	if (!pc->linger || pc->wait == NULL) {
		conn_free(pc);
		return;
	}
	shutdown(bufferevent_getfd(bev), SHUT_WR);
	evtimer_add(pc->wait, &tv);
	bufferevent_setwatermark(bev, EV_READ, 0, 0);
	bufferevent_setcb(bev, linger_read_callback, NULL, close_event_callback,
	                  pc);
	bufferevent_disable(bev, EV_WRITE);
	bufferevent_enable(bev, EV_READ);
}

static void
close_event_callback(struct bufferevent *bev HL_UNUSED, short what HL_UNUSED,
                     void *arg)
{
	conn_free(arg);
}

/* Answer with an error page and close once it has gone out. */
static void
conn_reply_error(struct proxy_conn *pc, int status, const char *reason,
                 const char *title, const char *text)
{
	char *resp = error_response(status, reason, title, text);
	struct timeval tv = {10, 0};

	if (pc->head_deadline != NULL) {
		event_free(pc->head_deadline);
		pc->head_deadline = NULL;
	}
	pc->linger = status == 400 || status == 431;
	if (resp == NULL) {
		conn_free(pc);
		return;
	}
	bufferevent_disable(pc->browser, EV_READ);
	bufferevent_set_timeouts(pc->browser, NULL, &tv);
	bufferevent_setcb(pc->browser, NULL, close_after_write_callback,
	                  close_event_callback, pc);
	bufferevent_write(pc->browser, resp, strlen(resp));
	bufferevent_enable(pc->browser, EV_WRITE);
	free(resp);
}

static char *
proxy_splice_callback(void *arg, int closed_side, size_t a_to_b, size_t b_to_a)
{
	struct proxy_conn *pc = arg;
	char *resp = NULL;

	if (closed_side >= 0)
		hl__debug("proxy: %.8s via %s closed by the %s (%zu bytes "
		          "up, %zu down)",
		          pc->keyhash, pc->via,
		          closed_side == 0 ? "browser" : "service", a_to_b,
		          b_to_a);
	if (closed_side == 1 && b_to_a == 0)
		resp = error_response(
		    502, "Bad Gateway",
		    "The service closed the tunnel without answering",
		    "The tunnel to the service's node was set up, but the "
		    "node closed it without sending anything back. Either "
		    "the password in the URL is wrong (or missing), or the "
		    "service's backend is not running.");
	conn_release(pc->core, pc);
	return resp;
}

static void
proxy_outbound_callback(void *arg, int result, struct bufferevent *tunnel,
                        const char *via, unsigned flags, const char *why)
{
	struct proxy_conn *pc = arg;
	struct bufferevent *browser;
	struct hl__splice *sp;
	char text[16384];

	pc->out = NULL;
	if (result == HL_OUT_NO_ROUTE) {
		snprintf(
		    text, sizeof text,
		    "No path to the service %s worked. What was tried:\n\n%s",
		    pc->keyhash, why);
		conn_reply_error(pc, 502, "Bad Gateway",
		                 "No path to the service", text);
		return;
	}
	if (result == HL_OUT_BUSY) {
		snprintf(text, sizeof text,
		         "The service %s is busy: %s. Reload in a moment.",
		         pc->keyhash, why);
		conn_reply_error(pc, 503, "Service Unavailable",
		                 "The service is busy", text);
		return;
	}
	if (result != HL_OUT_OK) {
		snprintf(text, sizeof text,
		         "The tunnel via %s was set up, but the Hardline "
		         "handshake failed: %s.",
		         via ? via : "no transport", why);
		conn_reply_error(
		    pc, 502, "Bad Gateway",
		    "The service's node did not complete the handshake", text);
		return;
	}
	snprintf(pc->via, sizeof pc->via, "%s", via);
	browser = pc->browser;
	pc->browser = NULL;
	/* The splice owns pc from here; it frees it when it ends. */
	hl__live_remove(&pc->live);
	sp = hl__outbound_splice(browser, tunnel, pc->keyhash, pc->peer, via,
	                         flags, "proxy", proxy_splice_callback, pc);
	if (sp == NULL)
		conn_release(pc->core, pc);
	else
		/* A browser never half-closes: its EOF means it has gone. */
		hl__splice_end_on_eof(sp, 0);
}

static void
head_read_callback(struct bufferevent *bev, void *arg)
{
	struct proxy_conn *pc = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	const char *host;
	size_t hostlen;
	int r;

	/* With proxy.socks, a first byte of 4 or 5 is SOCKS, never HTTP. */
	if (pc->core->cfg->proxy_socks && len > 0 &&
	    (*evbuffer_pullup(in, 1) == 4 || *evbuffer_pullup(in, 1) == 5)) {
		pc->browser = NULL;
		hl__socksd_take(pc->core, bev, pc->peer);
		conn_free(pc);
		return;
	}
	/* Look at the head without taking it out: it goes down the tunnel
	 * as it came. */
	r = hl__http_find_host((const char *)evbuffer_pullup(in, -1), len,
	                       &host, &hostlen);
	if (r == 0) {
		if (len >= HL_HTTP_HEAD_MAX) {
			hl__stats.proxy_bad_request++;
			conn_reply_error(
			    pc, 431, "Request Header Fields Too Large",
			    "Request head too large",
			    "This proxy reads at most 16 KiB of request head.");
		}
		return;
	}
	if (r < 0) {
		hl__stats.proxy_bad_request++;
		conn_reply_error(
		    pc, 400, "Bad Request", "Not a Hardline request",
		    "This is the Hardline proxy. It needs an HTTP request "
		    "with a Host header naming a service, like "
		    "http://<password>-<keyhash>.localhost:7009/");
		return;
	}
	if (hl__host_parse(host, hostlen, pc->password, pc->keyhash) != 0) {
		char text[600];
		hl__stats.proxy_bad_request++;
		snprintf(
		    text, sizeof text,
		    "\"%.*s\" is not a Hardline service name. A Hardline URL "
		    "looks like http://<password>-<keyhash>.localhost:7009/ "
		    "where <keyhash> is 40 hexadecimal characters and the "
		    "password (maybe empty) uses a-z and 2-7.",
		    (int)(hostlen > 300 ? 300 : hostlen), host);
		conn_reply_error(pc, 400, "Bad Request",
		                 "Not a Hardline address", text);
		return;
	}
	/* The head is complete: hold the browser while the route is found. */
	bufferevent_disable(bev, EV_READ);
	bufferevent_set_timeouts(bev, NULL, NULL);
	event_free(pc->head_deadline);
	pc->head_deadline = NULL;
	hl__debug("proxy: %s asks for %.8s", pc->peer, pc->keyhash);
	pc->out = hl__outbound_start(pc->core, pc->keyhash, pc->password,
	                             proxy_outbound_callback, pc);
	if (pc->out == NULL)
		conn_free(pc);
	else
		hl__outbound_early(pc->out, in);
}

static void
head_deadline_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                       void *arg)
{
	conn_reply_error(arg, 408, "Request Timeout", "Request timeout",
	                 "No complete request head came within 10 s.");
}

static void
head_event_callback(struct bufferevent *bev HL_UNUSED, short what, void *arg)
{
	struct proxy_conn *pc = arg;

	if (what & BEV_EVENT_TIMEOUT) {
		conn_reply_error(pc, 408, "Request Timeout", "Request timeout",
		                 "No complete request head came within 10 s.");
		return;
	}
	/* The browser went away, maybe while a route was being found. */
	conn_free(pc);
}

HL__FRONT_ABORT(conn_abort, struct proxy_conn, conn_free)

static void
proxy_accept_callback(void *arg, evutil_socket_t fd, struct sockaddr *sa,
                      socklen_t salen HL_UNUSED)
{
	struct hl__core *c = arg;
	struct proxy_conn *pc = calloc(1, sizeof *pc);
	struct timeval tv = {HL_HTTP_HEAD_TIMEOUT_SEC, 0};

	if (pc == NULL) {
		evutil_closesocket(fd);
		return;
	}
	nconns++;
	pc->core = c;
	listener_update(c);
	hl__live_add(&pc->live, conn_abort);
	/* Answers go back to the browser as they come, not after a
	 * delayed ACK. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	hl_sockaddr_str(sa, pc->peer, sizeof pc->peer);
	pc->browser =
	    bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (pc->browser == NULL) {
		evutil_closesocket(fd);
		conn_free(pc); /* it is on the live list already */
		return;
	}
	bufferevent_setwatermark(pc->browser, EV_READ, 0, HL_HTTP_HEAD_MAX);
	bufferevent_setcb(pc->browser, head_read_callback, NULL,
	                  head_event_callback, pc);
	bufferevent_set_timeouts(pc->browser, &tv, &tv);
	pc->head_deadline = evtimer_new(c->base, head_deadline_callback, pc);
	if (pc->head_deadline == NULL) {
		conn_free(pc);
		return;
	}
	evtimer_add(pc->head_deadline, &tv);
	bufferevent_enable(pc->browser, EV_READ | EV_WRITE);
}

int
hl__proxy_start(struct hl__core *c, const char *listen)
{
	struct sockaddr_storage ss;

	c->proxy = calloc(1, sizeof *c->proxy);
	if (c->proxy == NULL)
		return -1;
	c->proxy->acceptor = hl__acceptor_listen(c->base, "proxy", listen,
	                                         proxy_accept_callback, c, &ss);
	if (c->proxy->acceptor == NULL) {
		free(c->proxy);
		c->proxy = NULL;
		return -1;
	}
	c->proxy_port = ntohs(ss.ss_family == AF_INET6
	                          ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                          : ((struct sockaddr_in *)&ss)->sin_port);
	hl__info("proxy listening on %s", listen);
	return 0;
}

void
hl__proxy_stop(struct hl__core *c)
{
	if (c->proxy == NULL)
		return;
	hl__acceptor_free(c->proxy->acceptor);
	free(c->proxy);
	c->proxy = NULL;
}
