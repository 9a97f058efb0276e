/*
 * punchcmd.c: `hlcore -c FILE punch LABEL -- CMD [ARGS...]` (ABI 1.2
 * hl_command_ops; docs/protocol.md, "Punch control stream"):
 *
 *  1. a QUIC connection to the service with ALPN "hardline-punch",
 *     through each of `hubs:` in turn (a new one every 1.5 s while
 *     earlier ones still run, at once when one fails): the hub lookup
 *     and punch of any hub:// dial, the certificate pinned by keyhash;
 *  2. HELLO with the label's password on its stream (the password
 *     travels inside QUIC only); OK, or NO and why;
 *  3. a punch session (punchsess.c) from a fresh UDP socket;
 *  4. CMD runs with the socket as fd 3 and HL_PUNCH_* in its
 *     environment; the QUIC connection is closed; hlcore waits for CMD
 *     (SIGTERM and SIGHUP passed on to it) and exits with its status
 *     (128 + the signal when a signal ended it).
 *
 * Exit 1 when no path was found (what was tried and why on stderr), 2 on
 * bad usage or settings. Every wait is bounded, up to CMD's own run.
 */
#define HL_PLUGIN_ABI_MINOR 2
#define HL_PLUGIN_WITHOUT_OPENSSL
#include "punchcmd.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "hardline/util.h"
#include "punchctl.h"
#include "punchsess.h"

#define MAX_HUBS 8
#define STAGGER_MS 1500
#define CONNECT_MS 40000 /* the QUIC connection and the service's answer */
#define ANSWER_MS 10000 /* the service's OK or NO after the HELLO */

struct pdial {
	struct pc *pc;
	struct hl_dial *d;
	char addr[HUBMSG_HUBADDR_MAX + 8];
	char why[1100];
	int state; /* 0 not started, 1 running, 2 failed */
};

struct pc {
	const struct hl_services *svc;
	struct hl_plugin *self;
	const struct punch_udp_ops *udp;
	void *udp_state;
	struct event_base *base;
	char password[PUNCHCTL_PASSWORD_MAX + 1];
	char keyhash[41];
	uint8_t keyhash_raw[20];
	const char *hubs[MAX_HUBS];
	size_t nhubs;
	struct pdial dials[MAX_HUBS];
	size_t next; /* the next dial to start */
	struct event *stagger, *deadline;
	struct bufferevent *ctl;
	int answered; /* OK came */
	struct punchsess *sess;
	uint8_t txid[8];
	/* the end */
	int over;
	int rc;
	char why[2000];
	struct punch_path path;
	int have_path;
};

static void
over(struct pc *pc, int rc, const char *why)
{
	if (pc->over)
		return;
	pc->over = 1;
	pc->rc = rc;
	if (why != NULL)
		snprintf(pc->why, sizeof pc->why, "%s", why);
	event_base_loopbreak(pc->base);
}

static void
close_ctl(struct pc *pc)
{
	if (pc->ctl == NULL)
		return;
	bufferevent_setcb(pc->ctl, NULL, NULL, NULL, NULL);
	if (bufferevent_pair_get_partner(pc->ctl) != NULL)
		bufferevent_flush(pc->ctl, EV_WRITE, BEV_FINISHED);
	bufferevent_free(pc->ctl);
	pc->ctl = NULL;
}

/* ---- the punch ---- */

static void
session_done(void *arg, struct punch_path *path, const char *why)
{
	struct pc *pc = arg;

	if (path == NULL) {
		char w[2000];
		snprintf(w, sizeof w, "no UDP path to the service's node: %s",
		         why);
		over(pc, 1, w);
		return;
	}
	pc->path = *path;
	pc->have_path = 1;
	over(pc, 0, NULL);
}

static void
start_session(struct pc *pc)
{
	struct punchsess_conf c = {0};

	c.svc = pc->svc;
	c.self = pc->self;
	c.role = "client";
	c.hubs = pc->hubs;
	c.nhubs = pc->nhubs;
	memcpy(c.txid, pc->txid, 8);
	memcpy(c.keyhash, pc->keyhash_raw, 20);
	c.bday_max = PUNCHSESS_BDAY_SOCKS;
	c.quiet = 1;
	pc->sess = punchsess_start(&c, pc->ctl, session_done, pc);
	if (pc->sess == NULL) {
		char w[200];
		snprintf(w, sizeof w, "cannot open a UDP socket: %s",
		         strerror(errno));
		over(pc, 1, w);
	}
}

/* ---- the service's answer ---- */

static void
answer_read(struct bufferevent *bev, void *arg)
{
	struct pc *pc = arg;
	struct punchctl m;
	int rc;

	if (pc->answered || pc->over)
		return;
	rc = punchsess_next_line(bufferevent_get_input(bev), &m);
	if (rc == 0)
		return;
	if (rc == PUNCHSESS_LONG) {
		over(pc, 1, "the service's node sent a line too long");
		return;
	}
	if (rc < 0 || (m.type != PUNCHCTL_OK && m.type != PUNCHCTL_NO)) {
		over(pc, 1,
		     "the service's node answered something else than "
		     "OK or NO");
		return;
	}
	if (m.type == PUNCHCTL_NO) {
		char w[400];
		if (strcmp(m.text, "password") == 0)
			snprintf(w, sizeof w,
			         "the service refused: wrong password (the "
			         "label's part before the dash)");
		else if (strcmp(m.text, "forbidden") == 0)
			snprintf(w, sizeof w,
			         "the service does not allow punch (its node "
			         "needs services: NAME: punch: \"COMMAND\" in "
			         "its config)");
		else if (strcmp(m.text, "busy") == 0)
			snprintf(w, sizeof w,
			         "the service's node is busy (too many punches "
			         "at once): try again later");
		else
			snprintf(w, sizeof w, "the service refused (%s)",
			         m.text);
		over(pc, 1, w);
		return;
	}
	pc->answered = 1;
	evtimer_del(pc->deadline);
	start_session(pc);
}

static void
answer_event(struct bufferevent *bev, short what, void *arg)
{
	struct pc *pc = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	answer_read(bev, arg); /* a NO before the close */
	if (!pc->answered)
		over(pc, 1,
		     "the service's node closed the stream without an "
		     "answer (an hlcore too old for punch?)");
}

/* ---- the QUIC connection, through the hubs ---- */

static void start_next(struct pc *pc);

static void
dial_done(void *arg, struct bufferevent *bev, const unsigned char *cert,
          size_t certlen, const char *error)
{
	struct pdial *pd = arg;
	struct pc *pc = pd->pc;
	char kh[41];
	struct timeval tv = hl_timeval_ms(ANSWER_MS);

	pd->d = NULL;
	if (bev == NULL) {
		pd->state = 2;
		snprintf(pd->why, sizeof pd->why, "%s", error);
		if (strstr(error, "no_application_protocol") != NULL)
			snprintf(pd->why, sizeof pd->why,
			         "%s (the service's hlcore does not know "
			         "punch: too old?)",
			         error);
		start_next(pc);
		return;
	}
	/* transport-udp pins in the handshake already; the core's rule is
	 * to check again. */
	pc->svc->keyhash_of_cert(cert, certlen, kh);
	if (strcmp(kh, pc->keyhash) != 0) {
		bufferevent_free(bev);
		pd->state = 2;
		snprintf(pd->why, sizeof pd->why,
		         "answered with a certificate whose hash is %s", kh);
		start_next(pc);
		return;
	}
	pd->state = 3;
	/* The others are not needed any more. */
	for (size_t i = 0; i < pc->nhubs; i++)
		if (pc->dials[i].d != NULL) {
			pc->udp->dial_cancel(pc->udp_state, pc->dials[i].d);
			pc->dials[i].d = NULL;
			pc->dials[i].state = 2;
			snprintf(pc->dials[i].why, sizeof pc->dials[i].why,
			         "not needed");
		}
	evtimer_del(pc->stagger);
	pc->ctl = bev;
	pc->svc->log(pc->self, HL_LOG_DEBUG,
	             "punch: QUIC connection to %.8s through hub://%s: "
	             "HELLO",
	             pc->keyhash, pd->addr + 6);
	{
		struct punchctl m = {.type = PUNCHCTL_HELLO};
		char line[PUNCHCTL_LINE_MAX + 2];
		size_t n;
		memcpy(m.txid, pc->txid, 8);
		snprintf(m.password, sizeof m.password, "%s", pc->password);
		n = punchctl_format(&m, line, sizeof line);
		bufferevent_setwatermark(bev, EV_READ, 0, 4096);
		bufferevent_setcb(bev, answer_read, NULL, answer_event, pc);
		bufferevent_enable(bev, EV_READ | EV_WRITE);
		bufferevent_write(bev, line, n);
		memset(line, 0, sizeof line);
		memset(&m, 0, sizeof m);
	}
	evtimer_del(pc->deadline);
	evtimer_add(pc->deadline, &tv);
}

static void
all_failed(struct pc *pc)
{
	char w[2000];
	size_t n =
	    (size_t)snprintf(w, sizeof w, "no QUIC connection to the service:");

	for (size_t i = 0; i < pc->nhubs && n < sizeof w; i++)
		n += (size_t)snprintf(w + n, sizeof w - n, "%s %s: %s",
		                      i ? ";" : "", pc->dials[i].addr,
		                      pc->dials[i].why);
	over(pc, 1, w);
}

static void
start_next(struct pc *pc)
{
	struct timeval tv = hl_timeval_ms(STAGGER_MS);
	int running = 0;

	if (pc->over || pc->ctl != NULL)
		return;
	while (pc->next < pc->nhubs) {
		struct pdial *pd = &pc->dials[pc->next++];
		pd->state = 1;
		pd->d = pc->udp->dial(pc->udp_state, pc->keyhash, pd->addr,
		                      dial_done, pd);
		if (pd->d != NULL)
			break;
		pd->state = 2;
		snprintf(pd->why, sizeof pd->why, "cannot dial it");
	}
	for (size_t i = 0; i < pc->nhubs; i++)
		running |= pc->dials[i].state == 1;
	if (!running) {
		all_failed(pc);
		return;
	}
	if (pc->next < pc->nhubs) {
		evtimer_del(pc->stagger);
		evtimer_add(pc->stagger, &tv);
	}
}

static void
stagger_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	start_next(arg);
}

static void
deadline_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct pc *pc = arg;

	if (pc->ctl != NULL)
		over(pc, 1,
		     "the service's node did not answer the HELLO in "
		     "time");
	else
		all_failed(pc);
}

/* ---- waiting for CMD ---- */

struct waitc {
	pid_t pid;
	int done;
	int status;
	struct event *ev;
	int pidfd;
};

static void
child_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct waitc *w = arg;
	pid_t r;

	do
		r = waitpid(w->pid, &w->status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == w->pid || r < 0) {
		w->done = 1;
		if (r < 0)
			w->status = 1 << 8;
		return;
	}
	if (w->pidfd >= 0) {
		event_add(w->ev, NULL);
	} else {
		struct timeval tv = hl_timeval_ms(100);
		evtimer_add(w->ev, &tv);
	}
}

static void
forward_signal(evutil_socket_t sig, short what HL_UNUSED, void *arg)
{
	struct waitc *w = arg;

	if (!w->done)
		kill(w->pid, (int)sig);
}

/* Wait for pid on the loop (pidfd, or a poll without one), passing
 * SIGTERM and SIGHUP on; its exit status as a shell gives it. */
static int
wait_child(struct event_base *base, pid_t pid)
{
	struct waitc w = {pid, 0, 0, NULL, -1};
	struct event *sterm, *shup;
	struct timeval tv = hl_timeval_ms(100);

#ifdef SYS_pidfd_open
	w.pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
	w.ev = w.pidfd >= 0
	           ? event_new(base, w.pidfd, EV_READ, child_callback, &w)
	           : evtimer_new(base, child_callback, &w);
	sterm = evsignal_new(base, SIGTERM, forward_signal, &w);
	shup = evsignal_new(base, SIGHUP, forward_signal, &w);
	if (sterm != NULL)
		evsignal_add(sterm, NULL);
	if (shup != NULL)
		evsignal_add(shup, NULL);
	if (w.ev != NULL)
		w.pidfd >= 0 ? event_add(w.ev, NULL) : evtimer_add(w.ev, &tv);
	while (!w.done) {
		if (w.ev == NULL) { /* out of memory: block */
			if (waitpid(pid, &w.status, 0) == pid || errno != EINTR)
				break;
			continue;
		}
		event_base_loop(base, EVLOOP_ONCE);
	}
	if (w.ev != NULL)
		event_free(w.ev);
	if (sterm != NULL)
		event_free(sterm);
	if (shup != NULL)
		event_free(shup);
	if (w.pidfd >= 0)
		close(w.pidfd);
	if (WIFEXITED(w.status))
		return WEXITSTATUS(w.status);
	if (WIFSIGNALED(w.status))
		return 128 + WTERMSIG(w.status);
	return 1;
}

/* ---- the command ---- */

static const char usage[] =
    "usage: hlcore -c FILE punch <password>-<keyhash> -- CMD [ARGS...]\n";

int
punch_command(const struct hl_services *svc, struct hl_plugin *self,
              const struct hl_conf *conf, int argc, char *const *argv,
              const struct punch_udp_ops *udp)
{
	const struct hl_conf *hn = svc->conf_get(conf, "hubs");
	struct pc *pc;
	struct timeval tv = hl_timeval_ms(CONNECT_MS);
	size_t nh;
	int rc;
	pid_t pid = -1;

	if (argc < 4 || strcmp(argv[2], "--") != 0 || argv[3][0] == '\0') {
		fputs(usage, stderr);
		return 2;
	}
	pc = calloc(1, sizeof *pc);
	if (pc == NULL)
		return 1;
	if (punchctl_label(argv[1], pc->password, pc->keyhash) != 0) {
		fprintf(stderr,
		        "hlcore punch: \"%.80s\" is not a Hardline service "
		        "name: give <password>-<keyhash> (as in its URL "
		        "http://<password>-<keyhash>.localhost:7009/), with or "
		        "without .localhost\n%s",
		        argv[1], usage);
		free(pc);
		return 2;
	}
	nh = hl_conf_count(svc, hn);
	if (nh == 0) {
		fprintf(stderr,
		        "hlcore punch: no hubs: under plugins: transport-udp: "
		        "(the service is looked up there, and they tell each "
		        "side its public address)\n");
		memset(pc->password, 0, sizeof pc->password);
		free(pc);
		return 2;
	}
	pc->svc = svc;
	pc->self = self;
	pc->udp = udp;
	pc->base = svc->event_base(self);
	hl_hex_decode(pc->keyhash, 20, pc->keyhash_raw); /* checked above */
	while (getrandom(pc->txid, sizeof pc->txid, 0) != sizeof pc->txid)
		;
	for (size_t i = 0; i < nh && pc->nhubs < MAX_HUBS; i++) {
		const char *h = svc->conf_str(hl_conf_at(svc, hn, i));
		if (h == NULL)
			continue;
		pc->hubs[pc->nhubs] = h;
		pc->dials[pc->nhubs].pc = pc;
		snprintf(pc->dials[pc->nhubs].addr,
		         sizeof pc->dials[pc->nhubs].addr, "hub://%s", h);
		pc->nhubs++;
	}
	if (udp->init(svc, self, conf, &pc->udp_state) != 0) {
		fprintf(stderr, "hlcore punch: transport-udp cannot start "
		                "(see above)\n");
		memset(pc->password, 0, sizeof pc->password);
		free(pc);
		return 1;
	}
	pc->stagger = evtimer_new(pc->base, stagger_callback, pc);
	pc->deadline = evtimer_new(pc->base, deadline_callback, pc);
	if (pc->stagger == NULL || pc->deadline == NULL) {
		over(pc, 1, "out of memory");
	} else {
		evtimer_add(pc->deadline, &tv);
		start_next(pc);
		if (!pc->over)
			event_base_dispatch(pc->base);
		if (!pc->over)
			over(pc, 1, "interrupted");
	}
	memset(pc->password, 0, sizeof pc->password);
	if (pc->have_path) {
		char err[300];
		char a[64], b[64], c[64];
		hubmsg_addr_str(&pc->path.peer, a, sizeof a);
		hubmsg_addr_str(&pc->path.pub, b, sizeof b);
		{
			struct hubmsg_addr l;
			hubmsg_addr_from_sa(&l,
			                    (struct sockaddr *)&pc->path.local);
			hubmsg_addr_str(&l, c, sizeof c);
		}
		if (punch_spawn(&pc->path, (char *const *)argv + 3, "client",
		                pc->keyhash, NULL, 0, &pid, err,
		                sizeof err) != 0) {
			fprintf(stderr, "hlcore punch: %s\n", err);
			pc->rc = 127;
		} else {
			svc->log(self, HL_LOG_INFO,
			         "punch: path open: local %s, public %s, peer "
			         "%s; %s runs (pid %d)",
			         c, b, a, argv[3], (int)pid);
		}
		close(pc->path.fd);
	} else if (pc->why[0] != '\0') {
		fprintf(stderr, "hlcore punch: %s\n", pc->why);
	}
	/* The QUIC connection has done its work: closed now, not when CMD
	 * ends. */
	punchsess_free(pc->sess);
	close_ctl(pc);
	for (size_t i = 0; i < pc->nhubs; i++)
		if (pc->dials[i].d != NULL)
			udp->dial_cancel(pc->udp_state, pc->dials[i].d);
	if (pc->stagger != NULL)
		event_free(pc->stagger);
	if (pc->deadline != NULL)
		event_free(pc->deadline);
	udp->fini(pc->udp_state);
	/* Callbacks deferred by what was just freed run now, so that
	 * nothing is left behind. */
	event_base_loop(pc->base, EVLOOP_NONBLOCK);
	rc = pc->rc;
	free(pc);
	if (pid > 0)
		rc = wait_child(svc->event_base(self), pid);
	return rc;
}
