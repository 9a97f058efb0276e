/*
 * forward.c: `forwards:`, a local port for a remote service, for any TCP
 * protocol (SSH, a database, a game server). Each connection to the port
 * takes the same path as a proxy request (outbound.c) to the service
 * named by `to:` and is spliced to it as it is: nothing is read or
 * waited for first, so protocols where the server speaks first work.
 * When no path works, the local connection is closed at once (the
 * reason goes to the log and the admin panel's routing trace) and the
 * next connection tries again.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <jansson.h>

#include "daemon.h"

/* Bytes a local client may send before its tunnel is up. */
#define EARLY_MAX (64 * 1024)

struct forward {
	const struct hl__forward_conf *fc;
	struct hl__core *core;
	struct hl__acceptor *acceptor;
	char origin[64]; /* "forward <listen>" */
	unsigned long accepted, failed, open;
	char last_error[256];
	time_t last_error_at;
};

struct hl__forwards {
	struct forward *f;
	size_t n;
};

struct fwd_conn {
	struct hl__live live; /* first: the list hands back this pointer */
	struct forward *f;
	struct bufferevent *local;
	struct hl__outbound *out;
	char peer[HL_PEER_MAX];
};

/* What a splice of a forward remembers. */
struct fwd_splice {
	struct forward *f;
	char keyhash[HL_KEYHASH_LEN + 1];
};

static void
fwd_conn_free(struct fwd_conn *fcn)
{
	hl__live_remove(&fcn->live);
	hl__outbound_cancel(fcn->out);
	hl_bufferevent_free(&fcn->local);
	free(fcn);
}

HL__FRONT_ABORT(fwd_conn_abort, struct fwd_conn, fwd_conn_free)

static void forward_failed(struct forward *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
forward_failed(struct forward *f, const char *fmt, ...)
{
	va_list ap;

	f->failed++;
	f->last_error_at = time(NULL);
	va_start(ap, fmt);
	vsnprintf(f->last_error, sizeof f->last_error, fmt, ap);
	va_end(ap);
	hl__warn("%s: %s", f->origin, f->last_error);
}

static char *
fwd_splice_callback(void *arg, int closed_side, size_t a_to_b, size_t b_to_a)
{
	struct fwd_splice *fs = arg;

	if (closed_side >= 0) {
		fs->f->open--;
		if (closed_side == 1 && b_to_a == 0)
			forward_failed(
			    fs->f,
			    "the service %.8s closed the tunnel without "
			    "sending anything: a wrong or missing password in "
			    "to:, or its backend is down",
			    fs->keyhash);
		else
			hl__debug("%s: closed by the %s (%zu bytes up, %zu "
			          "down)",
			          fs->f->origin,
			          closed_side == 0 ? "client" : "service",
			          a_to_b, b_to_a);
	}
	free(fs);
	return NULL;
}

static void
fwd_outbound_callback(void *arg, int result, struct bufferevent *tunnel,
                      const char *via, unsigned flags, const char *why)
{
	struct fwd_conn *fcn = arg;
	struct forward *f = fcn->f;
	struct bufferevent *local;
	struct fwd_splice *fs;

	fcn->out = NULL;
	if (result != HL_OUT_OK) {
		if (result == HL_OUT_NO_ROUTE) {
			/* The trace's first line says the most; the whole of
			 * it is in the panel's routing trace. */
			size_t n = strcspn(why, "\n");
			forward_failed(f,
			               "no path to the service %.8s worked, "
			               "connection from %s closed: %.*s",
			               f->fc->keyhash, fcn->peer,
			               (int)(n > 180 ? 180 : n), why);
		} else {
			forward_failed(f,
			               "the tunnel to %.8s via %s failed, "
			               "connection from %s closed: %s",
			               f->fc->keyhash, via ? via : "-",
			               fcn->peer, why);
		}
		fwd_conn_free(fcn);
		return;
	}
	fs = calloc(1, sizeof *fs);
	if (fs == NULL) {
		bufferevent_free(tunnel);
		fwd_conn_free(fcn);
		return;
	}
	fs->f = f;
	snprintf(fs->keyhash, sizeof fs->keyhash, "%s", f->fc->keyhash);
	local = fcn->local;
	fcn->local = NULL;
	f->open++;
	if (hl__outbound_splice(local, tunnel, f->fc->keyhash, fcn->peer, via,
	                        flags, f->origin, fwd_splice_callback,
	                        fs) == NULL) {
		f->open--;
		free(fs);
	}
	fwd_conn_free(fcn);
}

static void
local_event_callback(struct bufferevent *bev, short what, void *arg)
{
	struct fwd_conn *fcn = arg;

	/* A half-close (`nc -N`: send, then shut the sending side) before
	 * the tunnel was up: what it sent goes down the tunnel once it is,
	 * and the splice sees the EOF again (reading resumes there). */
	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
		bufferevent_disable(bev, EV_READ);
		return;
	}
	/* The local client went away while the tunnel was being set up. */
	hl__debug("%s: %s left before the tunnel was up", fcn->f->origin,
	          fcn->peer);
	fwd_conn_free(fcn);
}

static void
forward_accept_callback(void *arg, evutil_socket_t fd, struct sockaddr *sa,
                        socklen_t salen HL_UNUSED)
{
	struct forward *f = arg;
	struct hl__core *c = f->core;
	struct fwd_conn *fcn = calloc(1, sizeof *fcn);

	if (fcn == NULL) {
		evutil_closesocket(fd);
		return;
	}
	f->accepted++;
	fcn->f = f;
	hl__live_add(&fcn->live, fwd_conn_abort);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){1}, sizeof(int));
	hl_sockaddr_str(sa, fcn->peer, sizeof fcn->peer);
	fcn->local = bufferevent_socket_new(c->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (fcn->local == NULL) {
		evutil_closesocket(fd);
		fwd_conn_free(fcn);
		return;
	}
	/* What the client sends first waits in the input buffer (bounded)
	 * and goes down the tunnel once it stands. */
	bufferevent_setwatermark(fcn->local, EV_READ, 0, EARLY_MAX);
	bufferevent_setcb(fcn->local, NULL, NULL, local_event_callback, fcn);
	bufferevent_enable(fcn->local, EV_READ);
	hl__debug("%s: %s connected, asking for %.8s", f->origin, fcn->peer,
	          f->fc->keyhash);
	fcn->out = hl__outbound_start(c, f->fc->keyhash, f->fc->password,
	                              fwd_outbound_callback, fcn);
	if (fcn->out == NULL)
		fwd_conn_free(fcn);
	else /* what the client sent by then may go behind the OOB line */
		hl__outbound_early(fcn->out, bufferevent_get_input(fcn->local));
}

static void
report_bind(FILE *errs, const struct hl__forward_conf *fc, size_t i, int e)
{
	const struct hl_conf *at = fc->listen_node ? fc->listen_node : fc->node;

	fprintf(errs, "%s:%d:%d: forward %zu cannot listen on %s: %s%s\n",
	        at->file ? at->file : "(config)", at->line, at->col, i + 1,
	        fc->listen, strerror(e),
	        e == EADDRINUSE ? " (another program, or a running hlcore, "
	                          "holds that port: pick a free one)"
	                        : "");
}

int
hl__forwards_check(const struct hl__config *cfg, FILE *errs)
{
	struct sockaddr_storage ss;
	int bad = 0;

	for (size_t i = 0; i < cfg->nforwards; i++) {
		int fd = hl__listen_socket(
		    cfg->forwards[i].listen,
		    HL_LISTEN_V6ONLY | HL_LISTEN_BIND_ONLY, &ss);
		if (fd < 0) {
			report_bind(errs, &cfg->forwards[i], i, errno);
			bad++;
		} else {
			close(fd);
		}
	}
	return bad;
}

int
hl__forwards_start(struct hl__core *c, FILE *errs)
{
	const struct hl__config *cfg = c->cfg;
	struct sockaddr_storage ss;
	struct hl__forwards *fw;

	if (cfg->nforwards == 0)
		return 0;
	fw = calloc(1, sizeof *fw);
	if (fw == NULL)
		return -1;
	fw->f = calloc(cfg->nforwards, sizeof *fw->f);
	if (fw->f == NULL) {
		free(fw);
		return -1;
	}
	c->forwards = fw;
	for (size_t i = 0; i < cfg->nforwards; i++) {
		struct forward *f = &fw->f[i];
		int fd;

		f->fc = &cfg->forwards[i];
		f->core = c;
		snprintf(f->origin, sizeof f->origin, "forward %s",
		         f->fc->listen);
		fw->n++;
		fd = hl__listen_socket(f->fc->listen, HL_LISTEN_V6ONLY, &ss);
		if (fd < 0) {
			report_bind(errs, f->fc, i, errno);
			return -1;
		}
		f->acceptor = hl__acceptor_new(c->base, f->origin, fd,
		                               forward_accept_callback, f);
		if (f->acceptor == NULL)
			return -1;
		if (!hl_sockaddr_is_loopback((struct sockaddr *)&ss))
			hl__warn("%s: listening beyond this machine: anyone "
			         "who reaches it reaches the service %.8s "
			         "(its password is in the config)",
			         f->origin, f->fc->keyhash);
		hl__info("%s -> %.8s%s%s%s", f->origin, f->fc->keyhash,
		         f->fc->title ? " (" : "",
		         f->fc->title ? f->fc->title : "",
		         f->fc->title ? ")" : "");
	}
	return 0;
}

/* Stop accepting; the connections are the live list's to close. */
void
hl__forwards_stop(struct hl__core *c)
{
	struct hl__forwards *fw = c->forwards;

	if (fw == NULL)
		return;
	for (size_t i = 0; i < fw->n; i++) {
		hl__acceptor_free(fw->f[i].acceptor);
	}
	free(fw->f);
	free(fw);
	c->forwards = NULL;
}

void *
hl__forwards_json(struct hl__core *c)
{
	json_t *a = json_array();
	struct hl__forwards *fw = c->forwards;

	for (size_t i = 0; fw != NULL && i < fw->n; i++) {
		const struct forward *f = &fw->f[i];
		/* Never the password: only whether there is one. */
		json_array_append_new(
		    a, json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:s, "
		                 "s:I}",
		                 "listen", f->fc->listen, "title",
		                 f->fc->title ? f->fc->title : "", "keyhash",
		                 f->fc->keyhash, "password",
		                 f->fc->password[0] != '\0', "open",
		                 (json_int_t)f->open, "accepted",
		                 (json_int_t)f->accepted, "failed",
		                 (json_int_t)f->failed, "last_error",
		                 f->last_error, "last_error_time",
		                 (json_int_t)f->last_error_at));
	}
	return a;
}
