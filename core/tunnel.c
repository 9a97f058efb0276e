/*
 * tunnel.c: what happens on a tunnel once a transport has handed it over:
 * the OOB line exchange, then the splice that moves bytes both ways with
 * backpressure.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <sys/socket.h>

#include "daemon.h"

/* ---- OOB exchange ---- */

struct oob_exchange {
	struct hl__live live; /* first: the list hands back this pointer */
	struct bufferevent *bev;
	hl__oob_cb cb;
	void *arg;
	int flushed; /* our line has left the output buffer */
	int received; /* the peer's line is in oob */
	struct hl__oob oob;
	/* 10 s in all, however slowly the peer trickles bytes (bufferevent
	 * timeouts restart with every byte read). */
	struct event *deadline;
};

static void
oob_finish(struct oob_exchange *x, const char *error)
{
	struct bufferevent *bev = x->bev;
	hl__oob_cb cb = x->cb;
	void *arg = x->arg;
	struct hl__oob oob = x->oob;

	hl__live_remove(&x->live);
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	bufferevent_set_timeouts(bev, NULL, NULL);
	if (x->deadline != NULL)
		event_free(x->deadline);
	free(x);
	if (error != NULL) {
		hl__oob_clear(&oob);
		cb(arg, bev, NULL, error);
		return;
	}
	cb(arg, bev, &oob, NULL);
	hl__oob_clear(&oob);
}

static void
oob_read_callback(struct bufferevent *bev, void *arg)
{
	struct oob_exchange *x = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr nl;
	size_t len = evbuffer_get_length(in);
	char line[HL_OOB_MAX];

	if (x->received)
		return;
	nl = evbuffer_search(in, "\n", 1, NULL);
	if (nl.pos < 0) {
		if (len >= HL_OOB_MAX)
			oob_finish(x,
			           "the peer's OOB line is longer than 4 KiB");
		return;
	}
	if ((size_t)nl.pos >= HL_OOB_MAX) {
		oob_finish(x, "the peer's OOB line is longer than 4 KiB");
		return;
	}
	evbuffer_remove(in, line, (size_t)nl.pos);
	evbuffer_drain(in, 1);
	if (hl__oob_parse(line, (size_t)nl.pos, &x->oob) != 0) {
		hl__core->stats.bad_oob++;
		oob_finish(x, "the peer's OOB line is not a valid JSON object");
		return;
	}
	x->received = 1;
	/* Stop reading until whoever gets the tunnel next is ready: what
	 * follows the line stays in the input buffer. */
	bufferevent_disable(bev, EV_READ);
	if (x->flushed)
		oob_finish(x, NULL);
}

static void
oob_write_callback(struct bufferevent *bev, void *arg)
{
	struct oob_exchange *x = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return;
	x->flushed = 1;
	if (x->received)
		oob_finish(x, NULL);
}

static void
oob_event_callback(struct bufferevent *bev, short what, void *arg)
{
	struct oob_exchange *x = arg;

	(void)bev;
	if (what & BEV_EVENT_TIMEOUT)
		oob_finish(x, "no OOB line from the peer within 10 s");
	else if (what & BEV_EVENT_EOF)
		oob_finish(x, "the peer closed the tunnel before its OOB line");
	else if (what & BEV_EVENT_ERROR)
		oob_finish(x, "the tunnel failed during the OOB exchange");
}

static void
oob_abort(struct hl__live *l)
{
	struct oob_exchange *x = (struct oob_exchange *)l;

	bufferevent_free(x->bev);
	hl__oob_clear(&x->oob);
	if (x->deadline != NULL)
		event_free(x->deadline);
	free(x);
}

static void
oob_deadline_callback(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	oob_finish(arg, "no OOB line from the peer within 10 s");
}

void
hl__oob_exchange(struct bufferevent *bev, const char *line, hl__oob_cb cb,
                 void *arg)
{
	struct oob_exchange *x = calloc(1, sizeof *x);
	struct timeval tv = {HL_OOB_TIMEOUT_SEC, 0};

	if (x == NULL) {
		cb(arg, bev, NULL, "out of memory");
		return;
	}
	x->bev = bev;
	x->cb = cb;
	x->arg = arg;
	hl__live_add(&x->live, oob_abort);
	x->deadline =
	    evtimer_new(bufferevent_get_base(bev), oob_deadline_callback, x);
	if (x->deadline != NULL)
		evtimer_add(x->deadline, &tv);
	/* The line goes out in a write (and so a TLS record) of its own: no
	 * other byte is queued until the write callback says it has left. */
	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_setwatermark(bev, EV_READ, 0, HL_OOB_MAX);
	bufferevent_setcb(bev, oob_read_callback, oob_write_callback,
	                  oob_event_callback, x);
	bufferevent_set_timeouts(bev, &tv, &tv);
	bufferevent_write(bev, line, strlen(line));
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	/* A peer line may already be buffered (the transport read it with
	 * the handshake). */
	if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		oob_read_callback(bev, x);
}

/* ---- splice ---- */

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
	int plain[2]; /* a plain TCP socket: read and written directly too */
	int closing[2]; /* this side is flushing its output and then goes */
	int ended;
	time_t last; /* when a byte last moved, for the idle timeout */
	struct hl__tunnel_info info;
	struct hl__splice *snext, **sprevp; /* all splices, for the panel */
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
	for (struct hl__splice *s = splices; s != NULL; s = s->snext)
		if (!s->ended)
			fn(arg, &s->info, s->moved[0], s->moved[1]);
}

static void
splice_unlist(struct hl__splice *s)
{
	if (s->sprevp == NULL)
		return;
	if (s->snext != NULL)
		s->snext->sprevp = s->sprevp;
	*s->sprevp = s->snext;
	s->sprevp = NULL;
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

static void
splice_drained_close_callback(struct bufferevent *bev, void *arg)
{
	struct hl__splice *s = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
		splice_free_side(s, side_of(s, bev));
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

static void
splice_move(struct hl__splice *s, int from)
{
	int to = 1 - from;
	struct evbuffer *in = bufferevent_get_input(s->bev[from]);
	struct evbuffer *out;
	size_t n = evbuffer_get_length(in), left;

	if (n == 0)
		return;
	if (s->bev[to] == NULL) {
		evbuffer_drain(in, n);
		return;
	}
	out = bufferevent_get_output(s->bev[to]);
	s->last = time(NULL);
	/* Nothing queued for a plain socket: write at once, rather than
	 * arm its write event, wait a loop round and disarm it (two
	 * epoll_ctl calls and a round for every message). */
	if (s->plain[to] && evbuffer_get_length(out) == 0)
		evbuffer_write(in, bufferevent_getfd(s->bev[to]));
	evbuffer_add_buffer(out, in);
	s->moved[from] += n;
	/* A full 4 KiB read from a plain socket: read on in SPLICE_READ
	 * pieces, up to the high watermark. EOF and errors are left for the
	 * bufferevent to see on its next read. */
	for (left = SPLICE_HIGH;
	     s->plain[from] && n >= 4096 && left >= SPLICE_READ &&
	     evbuffer_get_length(out) < SPLICE_HIGH;
	     left -= (size_t)n) {
		struct evbuffer_iovec v;
		ssize_t r;
		if (evbuffer_reserve_space(out, SPLICE_READ, &v, 1) != 1)
			break;
		r = recv(bufferevent_getfd(s->bev[from]), v.iov_base,
		         SPLICE_READ, 0);
		if (r <= 0)
			break;
		v.iov_len = (size_t)r;
		evbuffer_commit_space(out, &v, 1);
		s->moved[from] += (size_t)r;
		n = (size_t)r < SPLICE_READ ? 0 : (size_t)r;
		if (n == 0)
			break;
	}
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
	splice_free_side(s, i);
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
			splice_free_side(s, o);
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
idle_sweep_callback(evutil_socket_t fd, short what, void *arg)
{
	time_t now = time(NULL);
	struct hl__splice *s, *next;

	(void)fd;
	(void)what;
	(void)arg;
	for (s = splices; s != NULL; s = next) {
		next = s->snext;
		if (s->ended || now - s->last < hl__limits.idle_timeout)
			continue;
		hl__debug("tunnel %.8s from %s carried nothing for %ld s: "
		          "closed (limits idle_timeout)",
		          s->info.keyhash, s->info.peer, (long)(now - s->last));
		s->ended = 1;
		if (s->cb != NULL)
			free(s->cb(s->arg, 0, s->moved[0], s->moved[1]));
		splice_free_side(s, 0);
		splice_free_side(s, 1);
		splice_maybe_free(s);
	}
}

int
hl__splice_start(struct event_base *base)
{
	long idle = hl__limits.idle_timeout;
	struct timeval tv = {idle / 8 < 1    ? 1
	                     : idle / 8 > 60 ? 60
	                                     : idle / 8,
	                     0};

	if (idle <= 0)
		return 0;
	idle_ev = event_new(base, -1, EV_PERSIST, idle_sweep_callback, NULL);
	if (idle_ev == NULL)
		return -1;
	event_add(idle_ev, &tv);
	return 0;
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
	s->snext = splices;
	if (s->snext != NULL)
		s->snext->sprevp = &s->snext;
	s->sprevp = &splices;
	splices = s;
	for (int i = 0; i < 2; i++) {
		/* A socket bufferevent of the core's own (browser, backend):
		 * not TLS, not a filter over another bufferevent (whose fd is
		 * the one underneath), not a pair. */
		s->plain[i] = bufferevent_openssl_get_ssl(s->bev[i]) == NULL &&
		              bufferevent_get_underlying(s->bev[i]) == NULL &&
		              bufferevent_getfd(s->bev[i]) >= 0;
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
