/*
 * splice.c: a tunnel joined to a local connection (the browser's, or the
 * backend's): bytes move both ways with backpressure until either side
 * closes, then the rest is flushed. Every open splice is listed for the
 * admin panel, and one sweep closes those idle for limits.idle_timeout.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
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
 * not sockets"): freeing a pair end alone tells the other end nothing. */
static void
splice_close_side(struct hl__splice *s, int i)
{
	if (s->bev[i] != NULL &&
	    bufferevent_pair_get_partner(s->bev[i]) != NULL)
		bufferevent_flush(s->bev[i], EV_WRITE, BEV_FINISHED);
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

static void
splice_write_callback(struct bufferevent *bev, void *arg)
{
	struct hl__splice *s = arg;
	int i = side_of(s, bev), o = 1 - i;

	/* This side's output fell below the low watermark: read again from
	 * the side that feeds it. */
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (s->bev[o] != NULL && !s->closing[o])
		bufferevent_enable(s->bev[o], EV_READ);
}

/* ---- the fast path: plain sockets, read and written directly ----
 * The only place that knows what kind of bufferevent a side is. The
 * browser's and the backend's connections are plain sockets of the
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
	if (!s->ended) {
		s->ended = 1;
		if (s->cb != NULL)
			last = s->cb(s->arg, i, s->moved[0], s->moved[1]);
	}
	splice_close_side(s, i);
	if (s->bev[o] != NULL) {
		struct bufferevent *ob = s->bev[o];
		if (last != NULL && o == 0)
			bufferevent_write(ob, last, strlen(last));
		free(last);
		if (evbuffer_get_length(bufferevent_get_output(ob)) > 0) {
			s->closing[o] = 1;
			bufferevent_setwatermark(ob, EV_WRITE, 0, 0);
			bufferevent_setcb(ob, NULL,
			                  splice_drained_close_callback,
			                  splice_event_callback, s);
			bufferevent_disable(ob, EV_READ);
			bufferevent_enable(ob, EV_WRITE);
		} else {
			splice_close_side(s, o);
		}
	} else {
		free(last);
	}
	splice_maybe_free(s);
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
