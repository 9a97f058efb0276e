/*
 * punchsrv.c: the serving side of `hlcore punch` (punchsrv.h).
 */
#define HL_PLUGIN_ABI_MINOR 2
#define HL_PLUGIN_WITHOUT_OPENSSL
#include "punchsrv.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "hardline/evutil.h"
#include "hardline/plugin.h"
#include "hardline/util.h"
#include "punchctl.h"
#include "punchsess.h"

#define SESSIONS_MAX 16
#define SESSIONS_PER_ADDR 4
#define CHILDREN_MAX 16
#define BDAY_BUDGET 512 /* birthday sockets for every session together */
#define HELLO_MS 10000
#define WRONG_PASSWORD_MS 1000
#define MAX_HUBS 8
#define ADDR_LEN 64

enum { W_HELLO, W_DELAY, W_SESSION };

struct psrv {
	struct punchsrv *ps;
	struct bufferevent *bev;
	char keyhash[41];
	char peer[ADDR_LEN];
	char service[64];
	int state;
	struct event *timer;
	struct punchsess *sess;
	int bday_reserved;
	struct psrv *next, **prevp;
};

struct pchild {
	struct punchsrv *ps;
	pid_t pid;
	int pidfd;
	struct event *ev;
	char service[64];
	char peer[ADDR_LEN];
	struct pchild *next, **prevp;
};

struct punchsrv {
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct event_base *base;
	char *hubs[MAX_HUBS];
	size_t nhubs;
	struct psrv *sessions;
	size_t nsessions;
	int bday_reserved;
	struct pchild *children;
	size_t nchildren;
	struct hl_rate spray;
	unsigned long refused_password, refused_forbidden, refused_busy, ran;
};

/* ---- the stream ---- */

/* Close the stream as the core closes a tunnel (plugin.h): an EOF after
 * the bytes written, then free. */
static void
close_bev(struct bufferevent *bev)
{
	if (bev == NULL)
		return;
	bufferevent_setcb(bev, NULL, NULL, NULL, NULL);
	if (bufferevent_pair_get_partner(bev) != NULL)
		bufferevent_flush(bev, EV_WRITE, BEV_FINISHED);
	bufferevent_free(bev);
}

static void
send_line(struct bufferevent *bev, const struct punchctl *m)
{
	char line[PUNCHCTL_LINE_MAX + 2];
	size_t n = punchctl_format(m, line, sizeof line);

	if (n > 0)
		bufferevent_write(bev, line, n);
}

static void
send_no(struct bufferevent *bev, const char *reason)
{
	struct punchctl m = {.type = PUNCHCTL_NO};

	snprintf(m.text, sizeof m.text, "%s", reason);
	send_line(bev, &m);
}

static void
psrv_free(struct psrv *w)
{
	struct punchsrv *ps = w->ps;

	punchsess_free(w->sess);
	close_bev(w->bev);
	if (w->timer != NULL)
		event_free(w->timer);
	ps->bday_reserved -= w->bday_reserved;
	HL_LIST_REMOVE(w);
	ps->nsessions--;
	free(w);
}

/* ---- commands ---- */

static void
child_free(struct pchild *ch)
{
	hl_event_free(&ch->ev);
	if (ch->pidfd >= 0)
		close(ch->pidfd);
	HL_LIST_REMOVE(ch);
	ch->ps->nchildren--;
	free(ch);
}

static void
child_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct pchild *ch = arg;
	struct punchsrv *ps = ch->ps;
	int st = 0;
	pid_t r = waitpid(ch->pid, &st, WNOHANG);

	if (r == 0) {
		if (ch->pidfd < 0) { /* no pidfd: polled */
			struct timeval tv = hl_timeval_ms(500);
			evtimer_add(ch->ev, &tv);
		} else {
			event_add(ch->ev, NULL);
		}
		return;
	}
	if (r < 0)
		ps->svc->log(ps->self, HL_LOG_WARN,
		             "punch: the command of service %s (pid %d): %s",
		             ch->service, (int)ch->pid, strerror(errno));
	else if (WIFEXITED(st))
		ps->svc->log(
		    ps->self, WEXITSTATUS(st) == 0 ? HL_LOG_INFO : HL_LOG_WARN,
		    "punch: the command of service %s for %s (pid %d) "
		    "exited with status %d",
		    ch->service, ch->peer, (int)ch->pid, WEXITSTATUS(st));
	else
		ps->svc->log(ps->self, HL_LOG_WARN,
		             "punch: the command of service %s for %s (pid %d) "
		             "was killed by signal %d",
		             ch->service, ch->peer, (int)ch->pid,
		             WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	child_free(ch);
}

static int
child_watch(struct punchsrv *ps, pid_t pid, const char *service,
            const char *peer)
{
	struct pchild *ch = calloc(1, sizeof *ch);
	struct timeval tv = hl_timeval_ms(500);

	if (ch == NULL)
		return -1;
	ch->ps = ps;
	ch->pid = pid;
	snprintf(ch->service, sizeof ch->service, "%s", service);
	snprintf(ch->peer, sizeof ch->peer, "%s", peer);
#ifdef SYS_pidfd_open
	ch->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#else
	ch->pidfd = -1;
#endif
	/* A pidfd becomes readable when the child exits; without one (an
	 * old kernel) waitpid is polled twice a second. */
	if (ch->pidfd >= 0)
		ch->ev =
		    event_new(ps->base, ch->pidfd, EV_READ, child_callback, ch);
	else
		ch->ev = evtimer_new(ps->base, child_callback, ch);
	HL_LIST_INSERT(ps->children, ch);
	ps->nchildren++;
	if (ch->ev == NULL ||
	    (ch->pidfd >= 0 ? event_add(ch->ev, NULL)
	                    : evtimer_add(ch->ev, &tv)) != 0) {
		child_free(ch);
		return -1;
	}
	return 0;
}

/* ---- a session ---- */

static void
session_done(void *arg, struct punch_path *path, const char *why)
{
	struct psrv *w = arg;
	struct punchsrv *ps = w->ps;
	const struct hl_identity *id =
	    ps->svc->identity_find(ps->self, w->keyhash);

	if (path == NULL) {
		ps->svc->log(ps->self, HL_LOG_INFO,
		             "punch from %s for service %s: no path: %s",
		             w->peer, w->service, why);
	} else if (id == NULL ||
	           !HL_STRUCT_HAS(id, struct hl_identity, punch) ||
	           id->punch == NULL) {
		/* checked before OK: the service went away since */
		close(path->fd);
	} else {
		char *argv[] = {"/bin/sh", "-c", (char *)id->punch, NULL};
		char err[300];
		pid_t pid;

		if (punch_spawn(path, argv, "service", w->keyhash, w->service,
		                1, &pid, err, sizeof err) != 0) {
			ps->svc->log(ps->self, HL_LOG_WARN,
			             "punch from %s for service %s: %s",
			             w->peer, w->service, err);
		} else {
			ps->ran++;
			ps->svc->log(ps->self, HL_LOG_INFO,
			             "punch from %s for service %s: path open, "
			             "its command runs (pid %d)",
			             w->peer, w->service, (int)pid);
			if (child_watch(ps, pid, w->service, w->peer) != 0)
				ps->svc->log(
				    ps->self, HL_LOG_WARN,
				    "punch: cannot watch pid %d (out of "
				    "memory?): its exit goes unlogged",
				    (int)pid);
		}
		if (path->fd >= 0)
			close(path->fd);
	}
	psrv_free(w);
}

static void
start_session(struct psrv *w, const struct punchctl *hello)
{
	struct punchsrv *ps = w->ps;
	struct punchsess_conf c = {0};

	c.svc = ps->svc;
	c.self = ps->self;
	c.role = "service";
	c.hubs = (const char *const *)ps->hubs;
	c.nhubs = ps->nhubs;
	memcpy(c.txid, hello->txid, 8);
	hl_hex_decode(w->keyhash, 20, c.keyhash); /* the core's: valid */
	w->bday_reserved = BDAY_BUDGET - ps->bday_reserved;
	if (w->bday_reserved > PUNCHSESS_BDAY_SOCKS)
		w->bday_reserved = PUNCHSESS_BDAY_SOCKS;
	if (w->bday_reserved < 0)
		w->bday_reserved = 0;
	ps->bday_reserved += w->bday_reserved;
	c.bday_max = w->bday_reserved;
	c.spray_rate = &ps->spray;
	{
		struct punchctl ok = {.type = PUNCHCTL_OK};
		send_line(w->bev, &ok);
	}
	w->sess = punchsess_start(&c, w->bev, session_done, w);
	if (w->sess == NULL) {
		ps->svc->log(ps->self, HL_LOG_WARN,
		             "punch from %s for service %s: cannot open a UDP "
		             "socket: %s",
		             w->peer, w->service, strerror(errno));
		psrv_free(w);
		return;
	}
	w->state = W_SESSION;
}

static void
hello(struct psrv *w, const struct punchctl *m)
{
	struct punchsrv *ps = w->ps;
	const struct hl_identity *id =
	    ps->svc->identity_find(ps->self, w->keyhash);
	const char *pw;

	if (id == NULL) {
		psrv_free(w);
		return;
	}
	snprintf(w->service, sizeof w->service, "%s", id->name);
	pw = HL_STRUCT_HAS(id, struct hl_identity, password) &&
	             id->password != NULL
	         ? id->password
	         : "";
	if (!hl_ct_streq(m->password, pw)) {
		struct timeval tv = hl_timeval_ms(WRONG_PASSWORD_MS);
		ps->refused_password++;
		ps->svc->log(ps->self, HL_LOG_INFO,
		             "punch from %s for service %s: wrong password",
		             w->peer, w->service);
		/* Answered later: guessing stays slow. */
		w->state = W_DELAY;
		bufferevent_disable(w->bev, EV_READ);
		evtimer_add(w->timer, &tv);
		return;
	}
	if (!HL_STRUCT_HAS(id, struct hl_identity, punch) ||
	    id->punch == NULL) {
		ps->refused_forbidden++;
		ps->svc->log(ps->self, HL_LOG_INFO,
		             "punch from %s for service %s: refused (the "
		             "service has no punch: command)",
		             w->peer, w->service);
		send_no(w->bev, "forbidden");
		psrv_free(w);
		return;
	}
	if (ps->nchildren >= CHILDREN_MAX) {
		ps->refused_busy++;
		ps->svc->log(ps->self, HL_LOG_WARN,
		             "punch from %s for service %s: %d punch commands "
		             "still run (at most %d): refused",
		             w->peer, w->service, (int)ps->nchildren,
		             CHILDREN_MAX);
		send_no(w->bev, "busy");
		psrv_free(w);
		return;
	}
	evtimer_del(w->timer);
	start_session(w, m);
}

static void
read_callback(struct bufferevent *bev, void *arg)
{
	struct psrv *w = arg;
	struct punchctl m;
	int rc;

	if (w->state != W_HELLO)
		return;
	rc = punchsess_next_line(bufferevent_get_input(bev), &m);
	if (rc == 0)
		return;
	if (rc == PUNCHSESS_LONG) {
		psrv_free(w);
		return;
	}
	if (rc < 0 || m.type != PUNCHCTL_HELLO) {
		w->ps->svc->log(w->ps->self, HL_LOG_DEBUG,
		                "punch from %s: not a HELLO: closed", w->peer);
		psrv_free(w);
		return;
	}
	hello(w, &m);
	memset(&m, 0, sizeof m);
}

static void
event_callback(struct bufferevent *bev HL_UNUSED, short what, void *arg)
{
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		psrv_free(arg);
}

static void
timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct psrv *w = arg;

	if (w->state == W_DELAY)
		send_no(w->bev, "password");
	psrv_free(w);
}

static size_t
same_addr(struct punchsrv *ps, const char *peer)
{
	const char *c = strrchr(peer, ':');
	size_t len = c ? (size_t)(c - peer) : strlen(peer), n = 0;

	for (struct psrv *w = ps->sessions; w != NULL; w = w->next)
		if (strncmp(w->peer, peer, len) == 0 &&
		    (w->peer[len] == ':' || w->peer[len] == '\0'))
			n++;
	return n;
}

void
punchsrv_stream(struct punchsrv *ps, struct bufferevent *bev,
                const char *keyhash, const char *peer)
{
	struct psrv *w;
	struct timeval tv = hl_timeval_ms(HELLO_MS);

	if (ps == NULL) {
		bufferevent_free(bev);
		return;
	}
	if (ps->nsessions >= SESSIONS_MAX ||
	    same_addr(ps, peer) >= SESSIONS_PER_ADDR ||
	    (w = calloc(1, sizeof *w)) == NULL) {
		ps->refused_busy++;
		send_no(bev, "busy");
		close_bev(bev);
		return;
	}
	w->ps = ps;
	w->bev = bev;
	snprintf(w->keyhash, sizeof w->keyhash, "%s", keyhash);
	snprintf(w->peer, sizeof w->peer, "%s", peer);
	snprintf(w->service, sizeof w->service, "%.12s", keyhash);
	w->state = W_HELLO;
	w->timer = evtimer_new(ps->base, timer_callback, w);
	HL_LIST_INSERT(ps->sessions, w);
	ps->nsessions++;
	if (w->timer == NULL) {
		psrv_free(w);
		return;
	}
	evtimer_add(w->timer, &tv);
	/* Lines are short: bound what waits unread. */
	bufferevent_setwatermark(bev, EV_READ, 0, 4096);
	bufferevent_setcb(bev, read_callback, NULL, event_callback, w);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

struct punchsrv *
punchsrv_new(const struct hl_services *svc, struct hl_plugin *self,
             const struct hl_conf *conf)
{
	struct punchsrv *ps = calloc(1, sizeof *ps);
	const struct hl_conf *n = svc->conf_get(conf, "hubs");
	size_t cnt = hl_conf_count(svc, n);

	if (ps == NULL)
		return NULL;
	ps->svc = svc;
	ps->self = self;
	ps->base = svc->event_base(self);
	for (size_t i = 0; i < cnt && ps->nhubs < MAX_HUBS; i++) {
		const char *h = svc->conf_str(hl_conf_at(svc, n, i));
		if (h != NULL && (ps->hubs[ps->nhubs] = strdup(h)) != NULL)
			ps->nhubs++;
	}
	return ps;
}

void
punchsrv_free(struct punchsrv *ps)
{
	if (ps == NULL)
		return;
	while (ps->sessions != NULL) {
		struct psrv *w = ps->sessions;
		/* hlcore stops: no EOF queued (no loop round is left) */
		punchsess_free(w->sess);
		w->sess = NULL;
		if (w->bev != NULL) {
			bufferevent_setcb(w->bev, NULL, NULL, NULL, NULL);
			bufferevent_free(w->bev);
			w->bev = NULL;
		}
		psrv_free(w);
	}
	while (ps->children != NULL) {
		struct pchild *ch = ps->children;
		int st;
		kill(-ch->pid, SIGTERM);
		(void)waitpid(ch->pid, &st, WNOHANG);
		ps->svc->log(ps->self, HL_LOG_INFO,
		             "punch: SIGTERM to the command of service %s "
		             "(pid %d)",
		             ch->service, (int)ch->pid);
		child_free(ch);
	}
	if (ps->ran + ps->refused_password + ps->refused_forbidden +
	        ps->refused_busy >
	    0)
		ps->svc->log(ps->self, HL_LOG_DEBUG,
		             "punch: %lu commands run; refused: %lu wrong "
		             "passwords, %lu not allowed, %lu busy",
		             ps->ran, ps->refused_password,
		             ps->refused_forbidden, ps->refused_busy);
	for (size_t i = 0; i < ps->nhubs; i++)
		free(ps->hubs[i]);
	free(ps);
}
