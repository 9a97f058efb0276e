/*
 * splice.c: a tunnel joined to a local connection (the browser's, or the
 * backend's): bytes move both ways with backpressure. A side that closes
 * (EOF) half-closes the splice: the other side is shut for writing once
 * what it holds has gone (shutdown(SHUT_WR) for a socket, a TLS
 * close_notify, an EOF through a bufferevent pair for a QUIC stream) and
 * the bytes it still sends go on flowing back, until it closes too, as a
 * plain TCP connection would. An error on either side ends both. Every
 * open splice is listed for the admin panel, and one sweep closes those
 * idle for limits.idle_timeout.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "daemon.h"

/* Backpressure: stop reading a side while the other side holds this much
 * unsent, and start again once it has drained to half. */
#define SPLICE_HIGH (256 * 1024)
#define SPLICE_LOW (SPLICE_HIGH / 2)
/* libevent 2.1 reads a socket at most 4 KiB at a time (EVBUFFER_MAX_READ),
 * and every 4 KiB read from a plain socket became a 4 KiB TLS record and a
 * round through the loop. The splice reads on in pieces of this size, each
 * one full TLS record. */
#define SPLICE_READ (16 * 1024)

struct hl__splice {
	struct hl__live live; /* first: the list hands back this pointer */
	struct bufferevent *bev[2];
	size_t moved[2]; /* moved[0]: a to b; moved[1]: b to a */
	hl__splice_cb cb;
	void *arg;
	/* >= 0: the side is a plain socket, read and written directly too
	 * (see "the fast path" below); -1: only through its bufferevent. */
	evutil_socket_t fd[2];
	int closing[2]; /* this side is flushing its output and then goes */
	/* Half-close: eof[i], side i sent its last byte; shut[i], side i is
	 * shut for writing (shut_wait[i]: once its output has drained;
	 * tls_retry[i]: its close_notify did not fit the socket yet). */
	unsigned char eof[2], shut[2], shut_wait[2], tls_retry[2];
	/* What kind side i is, for half-close (hl__splice_new): its TLS
	 * connection, or one end of a bufferevent pair (a plugin's stream). */
	SSL *ssl[2];
	unsigned char pair[2];
	unsigned char end_on_eof[2]; /* hl__splice_end_on_eof */
	struct event *watch; /* while half-closed: splice_watch_callback */
	int ended;
	time_t last; /* when a byte last moved, for the idle timeout */
	struct hl__tunnel_info info;
	struct hl__splice *next, **prevp; /* all splices, for the panel */
};

static struct hl__splice *splices;

void
hl__splice_set_info(struct hl__splice *s, const struct hl__tunnel_info *info)
{
	s->info = *info;
	if (s->info.started == 0)
		s->info.started = time(NULL);
}

void
hl__splice_foreach(void (*fn)(void *arg, const struct hl__tunnel_info *info,
                              size_t a_to_b, size_t b_to_a),
                   void *arg)
{
	for (struct hl__splice *s = splices; s != NULL; s = s->next)
		if (!s->ended)
			fn(arg, &s->info, s->moved[0], s->moved[1]);
}

static void
splice_unlist(struct hl__splice *s)
{
	if (s->prevp == NULL)
		return;
	HL_LIST_REMOVE(s);
	s->prevp = NULL;
}

static void splice_read_callback(struct bufferevent *bev, void *arg);
static void splice_event_callback(struct bufferevent *bev, short what,
                                  void *arg);

static int
side_of(struct hl__splice *s, struct bufferevent *bev)
{
	return bev == s->bev[0] ? 0 : 1;
}

static void
splice_maybe_free(struct hl__splice *s)
{
	if (s->bev[0] == NULL && s->bev[1] == NULL) {
		hl__live_remove(&s->live);
		splice_unlist(s);
		hl_event_free(&s->watch);
		free(s);
	}
}

static void
splice_free_side(struct hl__splice *s, int i)
{
	if (s->bev[i] != NULL) {
		bufferevent_free(s->bev[i]);
		s->bev[i] = NULL;
	}
}

/* Close a side in the normal course (not at exit): a tunnel that is one
 * end of a bufferevent pair (a QUIC stream, a relayed stream) gets an EOF
 * first, the ABI 1.2 stream contract (hardline/plugin.h, "Tunnels that are
 * not sockets"): freeing a pair end alone tells the other end nothing.
 * Flushed both ways, the plugin sees BEV_EVENT_WRITING with the EOF: the
 * end for good, not the half-close of splice_shut. */
static void
splice_close_side(struct hl__splice *s, int i)
{
	if (s->bev[i] != NULL &&
	    bufferevent_pair_get_partner(s->bev[i]) != NULL)
		bufferevent_flush(s->bev[i], EV_READ | EV_WRITE, BEV_FINISHED);
	splice_free_side(s, i);
}

static void
splice_drained_close_callback(struct bufferevent *bev, void *arg)
{
	struct hl__splice *s = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		splice_close_side(s, side_of(s, bev));
		splice_maybe_free(s);
	}
}

static void splice_shut(struct hl__splice *s, int i);

static void
splice_write_callback(struct bufferevent *bev, void *arg)
{
	struct hl__splice *s = arg;
	int i = side_of(s, bev), o = 1 - i;

	/* This side's output fell below the low watermark: read again from
	 * the side that feeds it, unless that side has closed. */
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (s->bev[o] != NULL && !s->closing[o] && !s->eof[o])
		bufferevent_enable(s->bev[o], EV_READ);
	if (s->shut_wait[i] &&
	    evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		splice_shut(s, i);
}

/* ---- the fast path: plain sockets, read and written directly ----
 * The browser's and the backend's connections are plain sockets of the
 * core's own; tunnels are not (TLS, a filter, a QUIC stream's pair).
 * Going around the bufferevent for plain sockets doubled bulk
 * throughput; everything else takes the bufferevent's path. */

/* The descriptor to use directly, or -1. */
static evutil_socket_t
direct_fd(struct bufferevent *bev)
{
	if (bufferevent_openssl_get_ssl(bev) != NULL ||
	    bufferevent_get_underlying(bev) != NULL)
		return -1;
	return bufferevent_getfd(bev);
}

/* Nothing queued for a plain socket: write at once, rather than arm its
 * write event, wait a loop round and disarm it (two epoll_ctl calls and
 * a round for every message). What is not taken stays in `in`. */
static void
direct_write(struct hl__splice *s, int to, struct evbuffer *in)
{
	if (s->fd[to] >= 0 &&
	    evbuffer_get_length(bufferevent_get_output(s->bev[to])) == 0)
		evbuffer_write(in, s->fd[to]);
}

/* libevent 2.1 reads a socket at most 4 KiB at a time; after a full
 * 4 KiB read from a plain socket, read on in SPLICE_READ pieces into
 * `out`, up to the high watermark. EOF and errors are left for the
 * bufferevent to see on its next read. */
static void
direct_read_more(struct hl__splice *s, int from, struct evbuffer *out)
{
	for (size_t left = SPLICE_HIGH;
	     s->fd[from] >= 0 && left >= SPLICE_READ &&
	     evbuffer_get_length(out) < SPLICE_HIGH;
	     left -= SPLICE_READ) {
		struct evbuffer_iovec v;
		ssize_t r;
		if (evbuffer_reserve_space(out, SPLICE_READ, &v, 1) != 1)
			break;
		r = recv(s->fd[from], v.iov_base, SPLICE_READ, 0);
		if (r <= 0)
			break;
		v.iov_len = (size_t)r;
		evbuffer_commit_space(out, &v, 1);
		s->moved[from] += (size_t)r;
		if ((size_t)r < SPLICE_READ)
			break;
	}
}

/* ---- moving bytes ---- */

static void
splice_move(struct hl__splice *s, int from)
{
	int to = 1 - from;
	struct evbuffer *in = bufferevent_get_input(s->bev[from]);
	struct evbuffer *out;
	size_t n = evbuffer_get_length(in);

	if (n == 0)
		return;
	if (s->bev[to] == NULL) {
		evbuffer_drain(in, n);
		return;
	}
	out = bufferevent_get_output(s->bev[to]);
	s->last = time(NULL);
	direct_write(s, to, in);
	evbuffer_add_buffer(out, in);
	s->moved[from] += n;
	if (n >= 4096)
		direct_read_more(s, from, out);
	if (evbuffer_get_length(out) >= SPLICE_HIGH) {
		bufferevent_disable(s->bev[from], EV_READ);
		bufferevent_setwatermark(s->bev[to], EV_WRITE, SPLICE_LOW, 0);
	}
}

static void
splice_read_callback(struct bufferevent *bev, void *arg)
{
	struct hl__splice *s = arg;

	splice_move(s, side_of(s, bev));
}

/* ---- half-close ---- */

/* Side i is a pair end whose other end (the plugin's) is gone: nothing
 * more can go either way. */
static int
side_gone(struct hl__splice *s, int i)
{
	return s->pair[i] && bufferevent_pair_get_partner(s->bev[i]) == NULL;
}

/* Can side i be shut for writing alone, and keep being read? */
static int
splice_can_shut(struct hl__splice *s, int i)
{
	return s->fd[i] >= 0 || s->ssl[i] != NULL ||
	       (s->pair[i] && !side_gone(s, i));
}

/* A TLS close_notify: the peer reads EOF, and may still answer (TLS 1.3
 * lets either side go on writing after the other's close_notify; OpenSSL
 * goes on reading after sending one). 1: try again, the socket was full. */
static int
tls_shut(SSL *ssl)
{
	int r = SSL_shutdown(ssl), e;

	if (r >= 0)
		return 0;
	e = SSL_get_error(ssl, r);
	return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ;
}

static void splice_watch_callback(evutil_socket_t fd, short what, void *arg);

/* Shut side i for writing; its output has drained. */
static void
splice_shut(struct hl__splice *s, int i)
{
	struct bufferevent *bev = s->bev[i];

	s->shut_wait[i] = 0;
	if (s->shut[i] || bev == NULL)
		return;
	s->shut[i] = 1;
	if (s->fd[i] >= 0)
		shutdown(s->fd[i], SHUT_WR);
	else if (s->ssl[i] != NULL)
		s->tls_retry[i] = (unsigned char)tls_shut(s->ssl[i]);
	else if (s->pair[i] && !side_gone(s, i))
		bufferevent_flush(bev, EV_WRITE, BEV_FINISHED);
}

/* Side i sent EOF and the other side o can be shut alone: read i no more,
 * shut o once its output has drained, and keep carrying o's bytes to i.
 * 0 when the splice must end instead. */
static int
splice_half_close(struct hl__splice *s, int i)
{
	int o = 1 - i;

	/* The service's side closing before it sent a byte is how a refusal
	 * looks (a wrong password, a backend that is down): that ends the
	 * tunnel, and the proxy answers its 502. */
	if (s->ended || s->eof[o] || s->bev[o] == NULL || s->end_on_eof[i] ||
	    (i == 1 && s->moved[1] == 0) || !splice_can_shut(s, o))
		return 0;
	/* How a peer says it has gone rather than half-closed: a pair end
	 * whose other end is gone (transport-udp frees it at a
	 * RESET_STREAM), a TLS connection closed without a close_notify. */
	if (side_gone(s, i) ||
	    (s->ssl[i] != NULL &&
	     !(SSL_get_shutdown(s->ssl[i]) & SSL_RECEIVED_SHUTDOWN)))
		return 0;
	s->eof[i] = 1;
	bufferevent_disable(s->bev[i], EV_READ);
	/* i is still written to. A TLS bufferevent stops writing at the
	 * peer's close_notify, and starts again on new output only if its
	 * output was empty: enabling it again starts it. */
	if (s->ssl[i] != NULL)
		bufferevent_enable(s->bev[i], EV_WRITE);
	if (s->watch == NULL)
		s->watch = hl__every(bufferevent_get_base(s->bev[o]), 250,
		                     splice_watch_callback, s);
	if (evbuffer_get_length(bufferevent_get_output(s->bev[o])) == 0)
		splice_shut(s, o);
	else
		s->shut_wait[o] = 1;
	return 1;
}

/*
 * While half-closed, every 250 ms: a TLS close_notify that did not fit the
 * socket is sent again, and a pair end (a plugin's stream) whose other
 * end was freed ends the splice: nothing more can go either way. A 1.2
 * plugin frees its end after an EOF (seen at once); one that takes the
 * core's EOF for the end of the tunnel (as a 1.1 core meant it) may just
 * free its end: the tunnel must end anyway.
 */
static void
splice_watch_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                      void *arg)
{
	struct hl__splice *s = arg;

	for (int i = 0; i < 2; i++) {
		struct bufferevent *bev = s->bev[i];
		if (bev == NULL || s->closing[i])
			continue;
		if (s->tls_retry[i])
			s->tls_retry[i] = (unsigned char)tls_shut(s->ssl[i]);
		if (side_gone(s, i)) {
			splice_event_callback(bev, BEV_EVENT_EOF, s);
			return; /* s may be gone */
		}
	}
}

/* The splice has ended: side k gets what it holds, then goes. */
static void
splice_drain_then_close(struct hl__splice *s, int k)
{
	struct bufferevent *b = s->bev[k];

	/* (A pair end whose other end is gone never drains.) */
	if (evbuffer_get_length(bufferevent_get_output(b)) == 0 ||
	    side_gone(s, k)) {
		splice_close_side(s, k);
		return;
	}
	s->closing[k] = 1;
	bufferevent_setwatermark(b, EV_WRITE, 0, 0);
	bufferevent_setcb(b, NULL, splice_drained_close_callback,
	                  splice_event_callback, s);
	bufferevent_disable(b, EV_READ);
	bufferevent_enable(b, EV_WRITE);
}

static void
splice_event_callback(struct bufferevent *bev, short what, void *arg)
{
	struct hl__splice *s = arg;
	int i = side_of(s, bev), o = 1 - i;
	char *last = NULL;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)))
		return;
	/* Whatever this side delivered before closing still goes across. */
	if (what & BEV_EVENT_EOF)
		splice_move(s, i);
	if ((what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) == 0 &&
	    splice_half_close(s, i))
		return;
	if (!s->ended) {
		s->ended = 1;
		if (s->cb != NULL)
			last = s->cb(s->arg, i, s->moved[0], s->moved[1]);
	}
	/* Side i closed too: it goes now, unless it closed after the other
	 * side half-closed and still has that side's last bytes to take. */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    s->shut_wait[i])
		splice_drain_then_close(s, i);
	else
		splice_close_side(s, i);
	if (s->bev[o] != NULL && last != NULL && o == 0)
		bufferevent_write(s->bev[o], last, strlen(last));
	free(last);
	if (s->bev[o] != NULL)
		splice_drain_then_close(s, o);
	splice_maybe_free(s);
}

void
hl__splice_end_on_eof(struct hl__splice *s, int side)
{
	s->end_on_eof[side] = 1;
}

static void
splice_abort(struct hl__live *l)
{
	struct hl__splice *s = (struct hl__splice *)l;

	if (!s->ended && s->cb != NULL)
		free(s->cb(s->arg, -1, s->moved[0], s->moved[1]));
	splice_free_side(s, 0);
	splice_free_side(s, 1);
	splice_unlist(s);
	hl_event_free(&s->watch);
	free(s);
}

/* ---- the idle timeout: one sweep over every splice, not a timer each ---- */

static struct event *idle_ev;

static void
idle_sweep_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                    void *arg HL_UNUSED)
{
	time_t now = time(NULL);
	struct hl__splice *s, *next;

	for (s = splices; s != NULL; s = next) {
		next = s->next;
		if (s->ended || now - s->last < hl__limits.idle_timeout)
			continue;
		hl__debug("tunnel %.8s from %s carried nothing for %ld s: "
		          "closed (limits idle_timeout)",
		          s->info.keyhash, s->info.peer, (long)(now - s->last));
		s->ended = 1;
		if (s->cb != NULL)
			free(s->cb(s->arg, 0, s->moved[0], s->moved[1]));
		splice_close_side(s, 0);
		splice_close_side(s, 1);
		splice_maybe_free(s);
	}
}

int
hl__splice_start(struct event_base *base)
{
	long idle = hl__limits.idle_timeout;
	long every = idle / 8 < 1 ? 1 : idle / 8 > 60 ? 60 : idle / 8;

	if (idle <= 0)
		return 0;
	idle_ev = hl__every(base, every * 1000, idle_sweep_callback, NULL);
	return idle_ev != NULL ? 0 : -1;
}

void
hl__splice_stop(void)
{
	if (idle_ev != NULL) {
		event_free(idle_ev);
		idle_ev = NULL;
	}
}

/*
 * Take every timeout off an enabled bufferevent for good. Setting NULL
 * timeouts alone is not enough: libevent keeps a persistent event's last
 * timeout inside the event across event_del() and re-arms it on the
 * event's next activity (event_add with no timeout keeps it), so the 10 s
 * timeouts of the TLS handshake, the OOB line or the request head came
 * back during the splice and cut any tunnel that was quiet one way for
 * 10 s (a long download, a paused reader). Adding the pending events with
 * a timeout and then removing it clears what the events remember.
 */
static void
clear_timeouts(struct bufferevent *bev)
{
	struct timeval day = {86400, 0};

	bufferevent_set_timeouts(bev, &day, &day);
	bufferevent_set_timeouts(bev, NULL, NULL);
}

struct hl__splice *
hl__splice_new(struct bufferevent *a, struct bufferevent *b, hl__splice_cb cb,
               void *arg)
{
	struct hl__splice *s = calloc(1, sizeof *s);

	if (s == NULL)
		return NULL;
	s->bev[0] = a;
	s->bev[1] = b;
	s->cb = cb;
	s->arg = arg;
	hl__live_add(&s->live, splice_abort);
	s->info.started = s->last = time(NULL);
	HL_LIST_INSERT(splices, s);
	for (int i = 0; i < 2; i++) {
		s->fd[i] = direct_fd(s->bev[i]);
		s->ssl[i] = bufferevent_openssl_get_ssl(s->bev[i]);
		s->pair[i] = bufferevent_pair_get_partner(s->bev[i]) != NULL;
		bufferevent_set_timeouts(s->bev[i], NULL, NULL);
		bufferevent_setwatermark(s->bev[i], EV_READ, 0, 0);
		bufferevent_setwatermark(s->bev[i], EV_WRITE, 0, 0);
		bufferevent_setcb(s->bev[i], splice_read_callback,
		                  splice_write_callback, splice_event_callback,
		                  s);
		bufferevent_enable(s->bev[i], EV_READ | EV_WRITE);
		clear_timeouts(s->bev[i]);
	}
	/* Bytes that arrived with the request head or after the OOB line. */
	splice_move(s, 0);
	splice_move(s, 1);
	return s;
}
