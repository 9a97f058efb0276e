/*
 * punchsess.c: one side of an `hlcore punch` once the service said OK
 * (punchsess.h): a fresh socket, STUN, candidates over the control
 * stream, probes, the birthday approach, READY; and running the command
 * with the socket.
 */
#define HL_PLUGIN_ABI_MINOR 2
#define HL_PLUGIN_WITHOUT_OPENSSL
#include "punchsess.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "hardline/plugin.h"
#include "hardline/util.h"
#include "hubclient.h"
#include "punchctl.h"
#include "punchmsg.h"

extern char **environ;

#define MAX_HUBS 8
#define TICK_MS 50
#define STUN_TRIES 4
#define STUN_WAIT_MS 250
#define PROBE_ROUNDS 120 /* 6 s of probing */
#define READY_GRACE 40 /* 2 s more for the other side's READY */
#define BDAY_AFTER 10 /* 500 ms without an answer */
#define BDAY_EVERY 4 /* each birthday socket probes every 200 ms */
#define BDAY_PER_TICK 30 /* probes to random ports a round */
#define SPRAY_MAX 2000 /* of those, per session */
#define SPRAY_BURST 1500 /* the shared bound: as hubnode's */
#define SPRAY_PER_SEC 300
#define SESSION_MS 15000
#define RX_PER_WAKE 64
#define THEIR_MAX (PUNCHCTL_CANDS_MAX)

enum state { S_GATHER, S_PROBING, S_OVER };

struct psock {
	struct punchsess *s;
	int fd;
	struct event *ev;
	uint16_t port;
};

struct phub {
	char name[HUBMSG_HUBADDR_MAX + 1];
	struct sockaddr_storage ss;
	socklen_t sslen; /* 0: not resolved (yet) */
	struct evdns_getaddrinfo_request *req;
	int resolving;
	struct hubclient_stun st;
	int tries;
	int answered;
	struct hubmsg_addr mapped;
	char why[120];
};

struct tcand {
	struct hubmsg_cand c;
	unsigned probes;
};

struct punchsess {
	struct punchsess_conf conf;
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct event_base *base;
	struct bufferevent *ctl;
	punchsess_cb cb;
	void *arg;
	int state;
	struct psock main;
	struct psock *bday[PUNCHSESS_BDAY_SOCKS];
	int nbday, bday_made;
	struct phub hubs[MAX_HUBS];
	size_t nhubs;
	int stun_round;
	/* ours, as sent */
	struct hubmsg_cand mine[PUNCHCTL_CANDS_MAX];
	size_t nmine;
	int cands_sent;
	/* theirs */
	struct tcand theirs[THEIR_MAX];
	size_t ntheirs;
	int got_cands;
	int rounds; /* probing rounds done */
	unsigned sprayed;
	unsigned long rx_other; /* datagrams that were not our probes */
	/* the path */
	struct psock *proven;
	struct hubmsg_addr peer;
	int peer_ready;
	struct hubmsg_addr pub;
	char peer_fail[PUNCHCTL_TEXT_MAX + 1];
	struct event *tick, *deadline, *kick;
	int deliver; /* over: the result goes out from kick_callback */
	char why[1500];
};

static void finish(struct punchsess *s, const char *why);

static void slog(struct punchsess *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
slog(struct punchsess *s, int level, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	s->svc->log(s->self, level, "punch (%s): %s", s->conf.role, line);
}

/* ---- the control stream ---- */

static void
ctl_send(struct punchsess *s, const struct punchctl *m)
{
	char line[PUNCHCTL_LINE_MAX + 2];
	size_t n = punchctl_format(m, line, sizeof line);

	if (n > 0 && s->ctl != NULL)
		bufferevent_write(s->ctl, line, n);
}

static void
ctl_fail(struct punchsess *s, const char *why)
{
	struct punchctl m = {.type = PUNCHCTL_FAIL};
	size_t n = 0;

	/* printable, bounded: what the other side prints */
	for (const char *p = why; *p && n < PUNCHCTL_TEXT_MAX; p++)
		m.text[n++] = (*p >= 0x20 && *p <= 0x7e) ? *p : ' ';
	if (n == 0)
		return;
	ctl_send(s, &m);
}

/* ---- sockets ---- */

static void psock_callback(evutil_socket_t fd, short what, void *arg);

static void psock_close(struct psock *p);

static struct psock *
psock_open(struct punchsess *s, struct psock *into)
{
	struct psock *p = into ? into : calloc(1, sizeof *p);
	struct sockaddr_in any = {.sin_family = AF_INET};
	struct sockaddr_in got;
	socklen_t gl = sizeof got;
	int e;

	if (p == NULL)
		return NULL;
	p->s = s;
	p->ev = NULL;
	p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd >= 0 &&
	    bind(p->fd, (struct sockaddr *)&any, sizeof any) == 0 &&
	    getsockname(p->fd, (struct sockaddr *)&got, &gl) == 0) {
		p->port = ntohs(got.sin_port);
		p->ev = event_new(s->base, p->fd, EV_READ | EV_PERSIST,
		                  psock_callback, p);
		if (p->ev != NULL && event_add(p->ev, NULL) == 0)
			return p;
	}
	e = errno;
	psock_close(p);
	if (into == NULL)
		free(p);
	errno = e;
	return NULL;
}

/* Close it (fd -1 when its descriptor was handed over already). */
static void
psock_close(struct psock *p)
{
	if (p->ev != NULL)
		event_free(p->ev);
	p->ev = NULL;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static void
psock_send(struct psock *p, const struct hubmsg_addr *to, const uint8_t *buf,
           size_t len)
{
	struct sockaddr_storage ss;
	socklen_t l;

	if (p == NULL || p->fd < 0 || to->family != 4)
		return;
	l = hubmsg_addr_to_sa(to, &ss);
	if (l > 0)
		(void)sendto(p->fd, buf, len, 0, (struct sockaddr *)&ss, l);
}

static void
bday_close_all_but(struct punchsess *s, struct psock *keep)
{
	for (int i = 0; i < s->nbday; i++)
		if (s->bday[i] != keep) {
			psock_close(s->bday[i]);
			free(s->bday[i]);
		}
	s->nbday = 0;
	if (keep != NULL && keep != &s->main) {
		s->bday[0] = keep;
		s->nbday = 1;
	}
}

/* ---- probes ---- */

static void
probe_buf(struct punchsess *s, uint8_t type, uint8_t out[PUNCHMSG_LEN])
{
	struct punchmsg m = {type, {0}, {0}};

	memcpy(m.txid, s->conf.txid, 8);
	memcpy(m.keyhash, s->conf.keyhash, 20);
	punchmsg_format(&m, out);
}

static void
send_ready(struct punchsess *s)
{
	struct punchctl m = {.type = PUNCHCTL_READY};

	m.addr = s->peer;
	ctl_send(s, &m);
}

static void
maybe_done(struct punchsess *s)
{
	if (s->proven != NULL && s->peer_ready && s->state != S_OVER)
		finish(s, NULL);
}

static void
probe_input(struct punchsess *s, struct psock *p, const struct punchmsg *pm,
            const struct sockaddr *from)
{
	struct hubmsg_addr src;
	char a[64];

	if (memcmp(pm->txid, s->conf.txid, 8) != 0 ||
	    memcmp(pm->keyhash, s->conf.keyhash, 20) != 0 ||
	    hubmsg_addr_from_sa(&src, from) != 0 || s->state == S_OVER) {
		s->rx_other++;
		return;
	}
	if (pm->type == PUNCHMSG_PROBE) {
		uint8_t ack[PUNCHMSG_LEN];
		probe_buf(s, PUNCHMSG_ACK, ack);
		psock_send(p, &src, ack, sizeof ack);
	}
	if (s->proven != NULL)
		return;
	s->proven = p;
	s->peer = src;
	hubmsg_addr_str(&src, a, sizeof a);
	slog(s, HL_LOG_DEBUG,
	     "a %s from %s came to %s socket (port %u) after %d rounds: the "
	     "path is open",
	     pm->type == PUNCHMSG_PROBE ? "probe" : "ack", a,
	     p == &s->main ? "the main" : "a birthday", p->port, s->rounds);
	/* The socket it came to stays; the others go. */
	bday_close_all_but(s, p);
	if (p != &s->main)
		psock_close(&s->main);
	send_ready(s);
	maybe_done(s);
}

static void
stun_input(struct punchsess *s, const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < s->nhubs; i++) {
		struct phub *h = &s->hubs[i];
		if (h->tries == 0 || h->answered)
			continue;
		if (hubclient_stun_answer(&h->st, buf, len, &h->mapped) == 0) {
			h->answered = 1;
			return;
		}
	}
	s->rx_other++;
}

static void
psock_callback(evutil_socket_t fd, short what HL_UNUSED, void *arg)
{
	struct psock *p = arg;
	struct punchsess *s = p->s;

	for (int i = 0; i < RX_PER_WAKE && p->fd >= 0 && s->state != S_OVER;
	     i++) {
		uint8_t buf[1500];
		struct sockaddr_storage from;
		socklen_t fl = sizeof from;
		struct punchmsg pm;
		ssize_t n = recvfrom(fd, buf, sizeof buf, 0,
		                     (struct sockaddr *)&from, &fl);

		if (n < 0)
			return; /* EAGAIN, or an ICMP error: nothing to do */
		if (punchmsg_parse(buf, (size_t)n, &pm) == 0)
			probe_input(s, p, &pm, (struct sockaddr *)&from);
		else if (p == &s->main && s->state == S_GATHER)
			stun_input(s, buf, (size_t)n);
		else
			s->rx_other++;
	}
}

/* ---- gathering: STUN to the hubs ---- */

static void send_cands(struct punchsess *s);

static int
gather_complete(const struct punchsess *s)
{
	for (size_t i = 0; i < s->nhubs; i++)
		if (!s->hubs[i].answered && s->hubs[i].why[0] == '\0')
			return 0;
	return 1;
}

static void
stun_send(struct punchsess *s, struct phub *h)
{
	if (h->sslen == 0 || h->answered)
		return;
	if (h->tries == 0 && hubclient_stun_request(&h->st) == 0)
		return;
	h->tries++;
	(void)sendto(s->main.fd, h->st.buf, h->st.len, 0,
	             (struct sockaddr *)&h->ss, h->sslen);
}

static void
hub_resolved(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct phub *h = arg;

	if (err == EVUTIL_EAI_CANCEL) {
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		return;
	}
	h->req = NULL;
	h->resolving = 0;
	if (err != 0 || ai == NULL) {
		snprintf(h->why, sizeof h->why, "name lookup failed: %s",
		         err ? evutil_gai_strerror(err) : "no address");
	} else if (ai->ai_addrlen <= sizeof h->ss) {
		memcpy(&h->ss, ai->ai_addr, ai->ai_addrlen);
		h->sslen = (socklen_t)ai->ai_addrlen;
	}
	if (ai != NULL)
		evutil_freeaddrinfo(ai);
	/* the next tick sends its STUN request */
}

static void
hub_resolve(struct punchsess *s, struct phub *h)
{
	char host[HUBMSG_HUBADDR_MAX + 1], port[8];
	uint16_t p;
	struct evutil_addrinfo hints = {0};
	int sl = sizeof h->ss;
	struct evdns_getaddrinfo_request *r;

	if (evutil_parse_sockaddr_port(h->name, (struct sockaddr *)&h->ss,
	                               &sl) == 0) {
		if (h->ss.ss_family == AF_INET)
			h->sslen = (socklen_t)sl;
		else
			snprintf(h->why, sizeof h->why,
			         "not an IPv4 address (punch uses IPv4)");
		return;
	}
	if (hl_addr_split(h->name, host, sizeof host, &p) != 0 || p == 0) {
		snprintf(h->why, sizeof h->why, "not a host:port");
		return;
	}
	snprintf(port, sizeof port, "%u", p);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	h->resolving = 1;
	r = evdns_getaddrinfo(s->svc->dns_base(s->self), host, port, &hints,
	                      hub_resolved, h);
	if (h->resolving)
		h->req = r; /* else it answered already */
}

/* Ours: server-reflexive first (what the other side sprays at), then
 * host; at most PUNCHCTL_CANDS_MAX. */
static void
send_cands(struct punchsess *s)
{
	struct punchctl m = {.type = PUNCHCTL_CANDS};
	struct hubmsg_cand host[PUNCHCTL_CANDS_MAX];
	size_t nh;

	for (size_t i = 0; i < s->nhubs && s->nmine < PUNCHCTL_CANDS_MAX; i++) {
		int dup = 0;
		if (!s->hubs[i].answered || s->hubs[i].mapped.family != 4)
			continue;
		for (size_t k = 0; k < s->nmine; k++)
			dup |= hubmsg_addr_eq(&s->mine[k].addr,
			                      &s->hubs[i].mapped);
		if (dup)
			continue;
		s->mine[s->nmine].kind = HUBMSG_CAND_SRFLX;
		s->mine[s->nmine++].addr = s->hubs[i].mapped;
	}
	nh = hubclient_host_candidates(AF_INET, s->main.port, host,
	                               PUNCHCTL_CANDS_MAX);
	for (size_t i = 0; i < nh && s->nmine < PUNCHCTL_CANDS_MAX; i++) {
		int dup = 0;
		for (size_t k = 0; k < s->nmine; k++)
			dup |= hubmsg_addr_eq(&s->mine[k].addr, &host[i].addr);
		if (!dup)
			s->mine[s->nmine++] = host[i];
	}
	memcpy(m.cands, s->mine, s->nmine * sizeof s->mine[0]);
	m.ncands = s->nmine;
	ctl_send(s, &m);
	s->cands_sent = 1;
	{
		char line[PUNCHCTL_LINE_MAX + 2];
		if (punchctl_format(&m, line, sizeof line) > 0) {
			line[strcspn(line, "\n")] = '\0';
			slog(s, HL_LOG_DEBUG, "socket port %u; sent %s",
			     s->main.port, line);
		}
	}
}

/* ---- probing ---- */

static const struct hubmsg_addr *
their_srflx(const struct punchsess *s)
{
	for (size_t i = 0; i < s->ntheirs; i++)
		if (s->theirs[i].c.kind == HUBMSG_CAND_SRFLX &&
		    s->theirs[i].c.addr.family == 4)
			return &s->theirs[i].c.addr;
	return NULL;
}

static void
birthday(struct punchsess *s)
{
	const struct hubmsg_addr *to = their_srflx(s);
	uint8_t probe[PUNCHMSG_LEN];
	uint16_t ports[BDAY_PER_TICK];

	if (to == NULL)
		return;
	probe_buf(s, PUNCHMSG_PROBE, probe);
	if (!s->bday_made) {
		s->bday_made = 1;
		while (s->nbday < s->conf.bday_max &&
		       s->nbday < PUNCHSESS_BDAY_SOCKS) {
			struct psock *p = psock_open(s, NULL);
			if (p == NULL)
				break;
			s->bday[s->nbday++] = p;
		}
		slog(s, HL_LOG_DEBUG,
		     "no answer in %d ms: the birthday approach (%d sockets)",
		     s->rounds * TICK_MS, s->nbday);
	}
	if ((s->rounds - BDAY_AFTER) % BDAY_EVERY == 0)
		for (int i = 0; i < s->nbday; i++)
			psock_send(s->bday[i], to, probe, sizeof probe);
	/* A round later than the sockets' first probes. */
	if (s->rounds - BDAY_AFTER < 1)
		return;
	hl_random(ports, sizeof ports);
	for (int i = 0; i < BDAY_PER_TICK && s->sprayed < SPRAY_MAX; i++) {
		struct hubmsg_addr a = *to;
		if (s->conf.spray_rate != NULL &&
		    !hl_rate_take(s->conf.spray_rate, SPRAY_BURST,
		                  SPRAY_PER_SEC, (uint64_t)hl_mono_ms()))
			return;
		a.port = (uint16_t)(1024 + ports[i] % (65536 - 1024));
		psock_send(&s->main, &a, probe, sizeof probe);
		s->sprayed++;
	}
}

static void
report(struct punchsess *s, char *out, size_t cap)
{
	size_t n;

	if (s->ntheirs == 0) {
		snprintf(out, cap,
		         "the other side has no candidates (its hubs did not "
		         "answer STUN, and it has no address of its own)");
		return;
	}
	n = (size_t)snprintf(out, cap, "candidates probed:");
	for (size_t i = 0; i < s->ntheirs && n < cap; i++) {
		char a[64];
		hubmsg_addr_str(&s->theirs[i].c.addr, a, sizeof a);
		n += (size_t)snprintf(
		    out + n, cap - n, "%s %s (%s): %s %u probes", i ? ";" : "",
		    a, punchctl_kind_name(s->theirs[i].c.kind),
		    s->theirs[i].c.addr.family != 4 ? "not IPv4, not probed:"
		                                    : "no answer to",
		    s->theirs[i].probes);
	}
	if (n < cap && s->bday_made)
		n += (size_t)snprintf(
		    out + n, cap - n,
		    "; birthday approach: %d sockets, %u probes to random "
		    "ports: no hit (both NATs symmetric? that needs a relay)",
		    s->nbday, s->sprayed);
	if (n < cap)
		snprintf(out + n, cap - n, "; in %.1f s",
		         s->rounds * TICK_MS / 1000.0);
}

static void
tick_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct punchsess *s = arg;
	struct timeval tv = hl_timeval_ms(TICK_MS);
	uint8_t probe[PUNCHMSG_LEN];

	if (s->state == S_GATHER) {
		/* a request to each hub every 250 ms, 4 at most; then the
		 * candidates go, whatever answered */
		s->stun_round++;
		for (size_t i = 0; i < s->nhubs; i++) {
			struct phub *h = &s->hubs[i];
			if (h->answered || h->why[0] != '\0' || h->resolving)
				continue;
			if (h->tries >= STUN_TRIES) {
				snprintf(h->why, sizeof h->why,
				         "no STUN answer to %d tries",
				         STUN_TRIES);
				continue;
			}
			if ((s->stun_round - 1) % (STUN_WAIT_MS / TICK_MS) == 0)
				stun_send(s, h);
		}
		if (gather_complete(s) ||
		    s->stun_round > STUN_TRIES * (STUN_WAIT_MS / TICK_MS) + 4) {
			for (size_t i = 0; i < s->nhubs; i++)
				if (!s->hubs[i].answered)
					slog(s, HL_LOG_INFO,
					     "hub %s: %s (no server-reflexive "
					     "candidate from it)",
					     s->hubs[i].name,
					     s->hubs[i].why[0]
					         ? s->hubs[i].why
					         : "no STUN answer");
			send_cands(s);
			s->state = S_PROBING;
		}
		evtimer_add(s->tick, &tv);
		return;
	}
	if (s->state != S_PROBING || !s->got_cands) {
		evtimer_add(s->tick, &tv);
		return;
	}
	s->rounds++;
	probe_buf(s, PUNCHMSG_PROBE, probe);
	if (s->proven != NULL) {
		/* Keep the other side's proof coming until its READY. */
		psock_send(s->proven, &s->peer, probe, sizeof probe);
		if (s->rounds > PROBE_ROUNDS + READY_GRACE) {
			finish(s, "a path was open this way, but the other "
			          "side did not confirm it (READY) in time");
			return;
		}
		evtimer_add(s->tick, &tv);
		return;
	}
	if (s->rounds > PROBE_ROUNDS) {
		char why[1500];
		report(s, why, sizeof why);
		finish(s, why);
		return;
	}
	for (size_t i = 0; i < s->ntheirs; i++) {
		if (s->theirs[i].c.addr.family != 4)
			continue;
		psock_send(&s->main, &s->theirs[i].c.addr, probe, sizeof probe);
		s->theirs[i].probes++;
	}
	if (s->rounds >= BDAY_AFTER && s->conf.bday_max > 0)
		birthday(s);
	evtimer_add(s->tick, &tv);
}

/* ---- control lines in ---- */

static void
ctl_line(struct punchsess *s, const struct punchctl *m)
{
	switch (m->type) {
	case PUNCHCTL_CANDS:
		if (s->got_cands)
			break;
		s->got_cands = 1;
		for (size_t i = 0; i < m->ncands && s->ntheirs < THEIR_MAX;
		     i++) {
			s->theirs[s->ntheirs].c = m->cands[i];
			s->theirs[s->ntheirs++].probes = 0;
		}
		break;
	case PUNCHCTL_READY:
		s->peer_ready = 1;
		s->pub = m->addr;
		maybe_done(s);
		break;
	case PUNCHCTL_FAIL: {
		/* What this side tried too: the other's view alone would
		 * not say it. */
		char why[sizeof s->why], mine[1200];
		snprintf(s->peer_fail, sizeof s->peer_fail, "%s", m->text);
		if (s->got_cands && s->proven == NULL) {
			report(s, mine, sizeof mine);
			snprintf(why, sizeof why,
			         "%s; the other side gave up: %s", mine,
			         m->text);
		} else {
			snprintf(why, sizeof why, "the other side gave up: %s",
			         m->text);
		}
		finish(s, why);
		break;
	}
	default:
		finish(s, "the other side sent a line out of place on the "
		          "control stream");
	}
}

int
punchsess_next_line(struct evbuffer *in, struct punchctl *m)
{
	size_t n;
	char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
	int rc;

	if (line == NULL)
		return evbuffer_get_length(in) > PUNCHCTL_LINE_MAX
		           ? PUNCHSESS_LONG
		           : 0;
	rc = punchctl_parse(line, n, m) == 0 ? 1 : PUNCHSESS_BAD;
	memset(line, 0, n);
	free(line);
	return rc;
}

static void
ctl_read(struct punchsess *s)
{
	struct evbuffer *in = bufferevent_get_input(s->ctl);

	while (s->state != S_OVER) {
		struct punchctl m;
		int rc = punchsess_next_line(in, &m);

		if (rc == 0)
			return;
		if (rc < 0) {
			finish(s, rc == PUNCHSESS_LONG
			              ? "the other side sent a line too long "
			                "on the control stream"
			              : "the other side sent a malformed line "
			                "on the control stream");
			return;
		}
		ctl_line(s, &m);
	}
}

static void
ctl_read_callback(struct bufferevent *bev HL_UNUSED, void *arg)
{
	ctl_read(arg);
}

static void
ctl_event_callback(struct bufferevent *bev HL_UNUSED, short what, void *arg)
{
	struct punchsess *s = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	ctl_read(s); /* the lines before the end first */
	if (s->state != S_OVER)
		finish(s, "the control stream closed (the other side went "
		          "away)");
}

static void deliver(struct punchsess *s);

static void
kick_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct punchsess *s = arg;

	if (s->state != S_OVER)
		ctl_read(s); /* lines that came with the OK */
	if (s->deliver)
		deliver(s);
}

static void
deadline_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct punchsess *s = arg;
	char why[1500];

	if (!s->got_cands)
		snprintf(why, sizeof why,
		         "the other side sent no candidates within %d s",
		         SESSION_MS / 1000);
	else
		report(s, why, sizeof why);
	finish(s, why);
}

/* ---- the end ---- */

static void
local_toward(int fd, const struct hubmsg_addr *peer,
             struct sockaddr_storage *out)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof *out, pl = hubmsg_addr_to_sa(peer, &ss);
	struct sockaddr_in *o = (struct sockaddr_in *)out;
	int t;

	memset(out, 0, sizeof *out);
	getsockname(fd, (struct sockaddr *)out, &l);
	/* The source address the kernel picks toward the peer (a UDP
	 * connect only looks the route up). */
	t = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (t >= 0 && pl > 0 && connect(t, (struct sockaddr *)&ss, pl) == 0) {
		struct sockaddr_in src;
		socklen_t sl = sizeof src;
		if (getsockname(t, (struct sockaddr *)&src, &sl) == 0)
			o->sin_addr = src.sin_addr;
	}
	if (t >= 0)
		close(t);
}

/* The end: stop, tell the other side why (unless it told us), and
 * deliver from the loop (kick_callback), so that no caller is left
 * holding a session its callback freed. */
static void
finish(struct punchsess *s, const char *why)
{
	if (s->state == S_OVER)
		return;
	s->state = S_OVER;
	evtimer_del(s->tick);
	evtimer_del(s->deadline);
	if (why != NULL) {
		snprintf(s->why, sizeof s->why, "%s", why);
		if (s->peer_fail[0] == '\0')
			ctl_fail(s, why);
	}
	s->deliver = 1;
	event_active(s->kick, EV_TIMEOUT, 1);
}

static void
deliver(struct punchsess *s)
{
	struct punch_path path;
	char a[64], b[64];

	s->deliver = 0;
	if (s->why[0] != '\0' || s->proven == NULL) {
		/* The client prints it itself. */
		slog(s, s->conf.quiet ? HL_LOG_DEBUG : HL_LOG_INFO,
		     "failed: %s", s->why);
		bday_close_all_but(s, NULL);
		psock_close(&s->main);
		s->cb(s->arg, NULL, s->why); /* may free s */
		return;
	}
	memset(&path, 0, sizeof path);
	path.fd = s->proven->fd;
	event_free(s->proven->ev);
	s->proven->ev = NULL;
	s->proven->fd = -1; /* handed over */
	path.peer = s->peer;
	path.pub = s->pub;
	local_toward(path.fd, &s->peer, &path.local);
	bday_close_all_but(s, NULL);
	psock_close(&s->main);
	hubmsg_addr_str(&path.peer, a, sizeof a);
	hubmsg_addr_str(&path.pub, b, sizeof b);
	slog(s, s->conf.quiet ? HL_LOG_DEBUG : HL_LOG_INFO,
	     "a path to %s is open (seen from there at %s) after %.2f s of "
	     "probing",
	     a, b, s->rounds * TICK_MS / 1000.0);
	s->cb(s->arg, &path, NULL); /* may free s */
}

/* ---- life ---- */

struct punchsess *
punchsess_start(const struct punchsess_conf *conf, struct bufferevent *ctl,
                punchsess_cb cb, void *arg)
{
	struct punchsess *s = calloc(1, sizeof *s);
	struct timeval zero = {0, 0}, dl = hl_timeval_ms(SESSION_MS);

	if (s == NULL)
		return NULL;
	s->conf = *conf;
	s->svc = conf->svc;
	s->self = conf->self;
	s->base = conf->svc->event_base(conf->self);
	s->ctl = ctl;
	s->cb = cb;
	s->arg = arg;
	s->main.fd = -1;
	if (psock_open(s, &s->main) == NULL) {
		int e = errno;
		free(s);
		errno = e;
		return NULL;
	}
	s->tick = evtimer_new(s->base, tick_callback, s);
	s->deadline = evtimer_new(s->base, deadline_callback, s);
	s->kick = evtimer_new(s->base, kick_callback, s);
	if (s->tick == NULL || s->deadline == NULL || s->kick == NULL) {
		punchsess_free(s);
		errno = ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < conf->nhubs && s->nhubs < MAX_HUBS; i++) {
		struct phub *h = &s->hubs[s->nhubs++];
		snprintf(h->name, sizeof h->name, "%s", conf->hubs[i]);
	}
	for (size_t i = 0; i < s->nhubs; i++)
		hub_resolve(s, &s->hubs[i]);
	bufferevent_setcb(ctl, ctl_read_callback, NULL, ctl_event_callback, s);
	bufferevent_enable(ctl, EV_READ | EV_WRITE);
	evtimer_add(s->tick, &zero);
	evtimer_add(s->deadline, &dl);
	/* Lines that came with the OK, from the loop. */
	event_active(s->kick, EV_TIMEOUT, 1);
	return s;
}

int
punchsess_bday_open(const struct punchsess *s)
{
	return s->nbday;
}

void
punchsess_free(struct punchsess *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nhubs; i++)
		if (s->hubs[i].req != NULL) {
			struct evdns_getaddrinfo_request *r = s->hubs[i].req;
			s->hubs[i].req = NULL;
			evdns_getaddrinfo_cancel(r);
		}
	if (s->ctl != NULL)
		bufferevent_setcb(s->ctl, NULL, NULL, NULL, NULL);
	bday_close_all_but(s, NULL);
	psock_close(&s->main);
	if (s->tick)
		event_free(s->tick);
	if (s->deadline)
		event_free(s->deadline);
	if (s->kick)
		event_free(s->kick);
	free(s);
}

/* ---- running the command ---- */

static int
env_add(char **env, size_t *n, size_t cap, const char *name, const char *val)
{
	size_t len = strlen(name) + strlen(val) + 2;
	char *e;

	if (*n >= cap || (e = malloc(len)) == NULL)
		return -1;
	snprintf(e, len, "%s=%s", name, val);
	env[(*n)++] = e;
	return 0;
}

static void
addr_parts(const struct hubmsg_addr *a, char *ip, size_t iplen, char *port,
           size_t portlen)
{
	char s[64];
	char *colon;

	hubmsg_addr_str(a, s, sizeof s);
	colon = strrchr(s, ':');
	if (colon == NULL) {
		snprintf(ip, iplen, "%s", s);
		snprintf(port, portlen, "0");
		return;
	}
	*colon = '\0';
	snprintf(port, portlen, "%s", colon + 1);
	if (s[0] == '[') {
		s[strlen(s) - 1] = '\0';
		snprintf(ip, iplen, "%s", s + 1);
	} else {
		snprintf(ip, iplen, "%s", s);
	}
}

int
punch_spawn(const struct punch_path *path, char *const argv[], const char *role,
            const char *keyhash, const char *service, int own_group, pid_t *pid,
            char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, dflt;
	size_t nenv = 0, cap, n = 0;
	char **env;
	struct hubmsg_addr local;
	char ip[64], port[8];
	int fd = path->fd, tmp = -1, rc, flags;

	for (char **e = environ; *e != NULL; e++)
		nenv++;
	cap = nenv + 12;
	env = calloc(cap + 1, sizeof *env);
	if (env == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (char **e = environ; *e != NULL; e++)
		if (strncmp(*e, "HL_PUNCH_", 9) != 0)
			env[n++] = *e;
	{
		size_t base = n;
		int bad = 0;
		hubmsg_addr_from_sa(&local,
		                    (const struct sockaddr *)&path->local);
		bad |= env_add(env, &n, cap, "HL_PUNCH_FD", "3");
		addr_parts(&local, ip, sizeof ip, port, sizeof port);
		bad |= env_add(env, &n, cap, "HL_PUNCH_LOCAL_ADDR", ip);
		bad |= env_add(env, &n, cap, "HL_PUNCH_LOCAL_PORT", port);
		addr_parts(&path->pub, ip, sizeof ip, port, sizeof port);
		bad |= env_add(env, &n, cap, "HL_PUNCH_PUBLIC_ADDR", ip);
		bad |= env_add(env, &n, cap, "HL_PUNCH_PUBLIC_PORT", port);
		addr_parts(&path->peer, ip, sizeof ip, port, sizeof port);
		bad |= env_add(env, &n, cap, "HL_PUNCH_PEER_ADDR", ip);
		bad |= env_add(env, &n, cap, "HL_PUNCH_PEER_PORT", port);
		bad |= env_add(env, &n, cap, "HL_PUNCH_ROLE", role);
		bad |= env_add(env, &n, cap, "HL_PUNCH_KEYHASH", keyhash);
		if (service != NULL)
			bad |=
			    env_add(env, &n, cap, "HL_PUNCH_SERVICE", service);
		env[n] = NULL;
		if (bad) {
			for (size_t i = base; i < n; i++)
				free(env[i]);
			free(env);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		/* The command gets a blocking socket, as programs expect
		 * of a descriptor they did not open themselves. */
		flags = fcntl(fd, F_GETFL);
		if (flags >= 0)
			fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
		/* dup2(3, 3) would leave close-on-exec set. */
		if (fd == 3) {
			tmp = fcntl(fd, F_DUPFD_CLOEXEC, 10);
			fd = tmp;
		}
		posix_spawn_file_actions_init(&fa);
		posix_spawnattr_init(&at);
		sigemptyset(&none);
		sigemptyset(&dflt);
		sigaddset(&dflt, SIGPIPE);
		sigaddset(&dflt, SIGINT);
		sigaddset(&dflt, SIGTERM);
		sigaddset(&dflt, SIGHUP);
		sigaddset(&dflt, SIGCHLD);
		posix_spawnattr_setsigmask(&at, &none);
		posix_spawnattr_setsigdefault(&at, &dflt);
		flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
		if (own_group) {
			posix_spawnattr_setpgroup(&at, 0);
			flags |= POSIX_SPAWN_SETPGROUP;
			posix_spawn_file_actions_addopen(&fa, 0, "/dev/null",
			                                 O_RDONLY, 0);
		}
		posix_spawnattr_setflags(&at, (short)flags);
		rc = fd < 0 ? errno : 0;
		if (rc == 0)
			rc = posix_spawn_file_actions_adddup2(&fa, fd, 3);
		if (rc == 0)
			rc = posix_spawn_file_actions_addclosefrom_np(&fa, 4);
		if (rc == 0)
			rc = posix_spawnp(pid, argv[0], &fa, &at, argv, env);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&at);
		if (tmp >= 0)
			close(tmp);
		for (size_t i = base; i < n; i++)
			free(env[i]);
		free(env);
	}
	if (rc != 0) {
		snprintf(err, errlen, "cannot run %s: %s", argv[0],
		         strerror(rc));
		return -1;
	}
	return 0;
}
