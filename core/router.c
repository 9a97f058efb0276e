/*
 * router.c: from a keyhash to a tunnel. Candidate addresses come from the
 * node itself, the `peers:` address book, the remembered WANHosts and the
 * discovery plugins; every (candidate, transport) pair is tried in
 * priority order, a new one starting every 250 ms while earlier ones are
 * still running (RFC 8305) and at once when one fails. The first tunnel
 * whose certificate hashes to the keyhash wins; the others are cancelled.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent.h>

#include "daemon.h"

#define STAGGER_MS 250
#define ROUTE_DEADLINE_SEC 15
#define ROUTE_MAX_ATTEMPTS 64
/* Addresses from the network (a DHT record, LAN answers) are hints: each
 * source gets this many in a route, so that no source can use up its
 * attempts. The config's peers: and this node's own are not bounded. */
#define ROUTE_MAX_PER_SOURCE 16

/* ---- how the last routes ended, for the admin panel ---- */
#define RECENT_MAX 32

static struct recent_route {
	time_t t;
	char keyhash[HL_KEYHASH_LEN + 1];
	char via[192];
	char *trace;
} recent[RECENT_MAX];
static size_t recent_next, recent_count;

static void
recent_add(const char *keyhash, const char *via, const char *trace)
{
	struct recent_route *r = &recent[recent_next];

	free(r->trace);
	r->t = time(NULL);
	snprintf(r->keyhash, sizeof r->keyhash, "%s", keyhash);
	snprintf(r->via, sizeof r->via, "%s", via ? via : "");
	r->trace = strdup(trace ? trace : "");
	recent_next = (recent_next + 1) % RECENT_MAX;
	if (recent_count < RECENT_MAX)
		recent_count++;
}

void
hl__router_recent(void (*fn)(void *arg, time_t t, const char *keyhash,
                             const char *via, const char *trace),
                  void *arg)
{
	for (size_t i = 0; i < recent_count; i++) {
		const struct recent_route *r =
		    &recent[(recent_next + RECENT_MAX - 1 - i) % RECENT_MAX];
		fn(arg, r->t, r->keyhash, r->via, r->trace ? r->trace : "");
	}
}

void
hl__router_free(void)
{
	for (size_t i = 0; i < RECENT_MAX; i++) {
		free(recent[i].trace);
		recent[i].trace = NULL;
	}
	recent_count = recent_next = 0;
}

enum attempt_state { PENDING, RUNNING, DONE };

struct attempt {
	struct hl__route *route;
	struct hl_plugin *transport;
	struct hl_dial *dial;
	char addr[HL_ADDR_MAX];
	char source[64];
	int seq;
	int relay; /* its scheme is one of the transport's relay_schemes */
	int state;
	char result[256];
	struct attempt *next;
};

struct hl_query {
	struct hl__route *route;
	struct hl_plugin *plugin;
	int done;
	int found;
	struct hl_query *next;
};

struct hl__route {
	struct hl__core *core;
	char keyhash[HL_KEYHASH_LEN + 1];
	hl__route_cb cb;
	void *arg;
	struct attempt *attempts; /* in the order they are to be tried */
	int nattempts;
	int ncandidates;
	struct hl_query *queries;
	struct event *stagger;
	struct event *deadline;
	int finished;
	int starting; /* in hl__route_start: no attempt starts yet */
	/* Candidates no loaded transport takes ("tls://x" without
	 * transport-tls), for the error page; the first few. */
	char untaken[4][HL_ADDR_MAX];
	int nuntaken;
	struct hl__route *next, **prevp; /* every route under way */
};

static struct hl__route *routes;

static void route_kick(struct hl__route *r);

static int
transport_count(void)
{
	int n = 0;

	for (struct hl_plugin *p = hl__plugins_first(); p != NULL; p = p->next)
		if (p->running && p->d.transport != NULL)
			n++;
	return n;
}

/* Order: direct before relayed (ABI 1.2 relay_schemes), then transport
 * priority, then the order candidates came in. */
static int
attempt_before(const struct attempt *a, const struct attempt *b)
{
	if (a->relay != b->relay)
		return b->relay;
	if (a->transport->priority != b->transport->priority)
		return a->transport->priority < b->transport->priority;
	return a->seq < b->seq;
}

/* How many other addresses source gave r (0 when addr is one of them). */
static int
from_source(const struct hl__route *r, const char *source, const char *addr)
{
	int n = 0;

	for (const struct attempt *a = r->attempts; a != NULL; a = a->next) {
		if (strcmp(a->source, source) != 0)
			continue;
		if (strcmp(a->addr, addr) == 0)
			return 0;
		/* Count each address once, whatever the transports. */
		const struct attempt *b = r->attempts;
		while (b != a && strcmp(b->addr, a->addr) != 0)
			b = b->next;
		if (b == a)
			n++;
	}
	return n;
}

/* The scheme of a candidate: "quic" for "quic://...", "" for a bare
 * host:port. */
static void
candidate_scheme(const char *addr, char *out, size_t outlen)
{
	const char *sep = strstr(addr, "://");
	size_t n = sep != NULL ? (size_t)(sep - addr) : 0;

	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, addr, n);
	out[n] = '\0';
}

static int
in_list(const char *const *list, const char *scheme)
{
	for (; list != NULL && *list != NULL; list++)
		if (strcmp(*list, scheme) == 0)
			return 1;
	return 0;
}

/* Does transport t take candidates of this scheme, and are they relayed?
 * A 1.1 transport (no schemes) takes bare host:port only. */
static int
transport_takes(const struct hl_plugin *t, const char *scheme, int *relay)
{
	const struct hl_transport_ops *o = t->d.transport;
	int has = HL_STRUCT_HAS(o, struct hl_transport_ops, schemes) &&
	          o->schemes != NULL;

	*relay = 0;
	if (!has)
		return scheme[0] == '\0';
	if (!in_list(o->schemes, scheme))
		return 0;
	*relay = HL_STRUCT_HAS(o, struct hl_transport_ops, relay_schemes) &&
	         in_list(o->relay_schemes, scheme);
	return 1;
}

/* What the route's callback is told of the winning transport. */
static unsigned
transport_route_flags(const struct hl_plugin *t)
{
	const struct hl_transport_ops *o = t->d.transport;

	return HL_STRUCT_HAS(o, struct hl_transport_ops, flags) &&
	               (o->flags & HL_TRANSPORT_HLCORE_ONLY)
	           ? HL__ROUTE_HLCORE_PEER
	           : 0;
}

static void
route_add_candidate(struct hl__route *r, const char *addr, const char *source)
{
	char host[HL_ADDR_MAX], scheme[16];
	uint16_t port;
	int taken = 0;

	if (r->finished)
		return;
	candidate_scheme(addr, scheme, sizeof scheme);
	if (scheme[0] != '\0'
	        ? hl__endpoint_check(addr, strlen(addr)) != 0
	        : hl__addr_split(addr, host, sizeof host, &port) != 0) {
		hl__debug("route %.8s: ignoring malformed address \"%s\" from "
		          "%s",
		          r->keyhash, addr, source);
		return;
	}
	if (strcmp(source, "peers:") != 0 && strcmp(source, "this node") != 0 &&
	    from_source(r, source, addr) >= ROUTE_MAX_PER_SOURCE) {
		hl__stats.hints_dropped++;
		hl__debug("route %.8s: %s gave more than %d addresses: "
		          "ignoring \"%s\"",
		          r->keyhash, source, ROUTE_MAX_PER_SOURCE, addr);
		return;
	}
	for (struct hl_plugin *t = hl__plugins_first(); t != NULL;
	     t = t->next) {
		struct attempt *a, **pp;
		int dup = 0, relay;

		if (!t->running || t->d.transport == NULL ||
		    !transport_takes(t, scheme, &relay))
			continue;
		taken = 1;
		for (a = r->attempts; a != NULL; a = a->next)
			if (a->transport == t && strcmp(a->addr, addr) == 0)
				dup = 1;
		if (dup || r->nattempts >= ROUTE_MAX_ATTEMPTS)
			continue;
		a = calloc(1, sizeof *a);
		if (a == NULL)
			return;
		a->route = r;
		a->transport = t;
		snprintf(a->addr, sizeof a->addr, "%s", addr);
		snprintf(a->source, sizeof a->source, "%s", source);
		a->seq = r->ncandidates;
		a->relay = relay;
		a->state = PENDING;
		/* Insert among the pending ones by priority; running and
		 * finished attempts keep their place at the front. */
		for (pp = &r->attempts; *pp != NULL; pp = &(*pp)->next)
			if ((*pp)->state == PENDING && attempt_before(a, *pp))
				break;
		a->next = *pp;
		*pp = a;
		r->nattempts++;
	}
	if (!taken && r->nuntaken < 4) {
		int known = 0;
		for (int i = 0; i < r->nuntaken; i++)
			known |= strcmp(r->untaken[i], addr) == 0;
		if (!known)
			snprintf(r->untaken[r->nuntaken++],
			         sizeof r->untaken[0], "%s", addr);
	}
	r->ncandidates++;
	route_kick(r);
}

static void
route_free(struct hl__route *r)
{
	struct attempt *a, *an;
	struct hl_query *q, *qn;

	if (r->prevp != NULL)
		HL_LIST_REMOVE(r);

	for (a = r->attempts; a != NULL; a = an) {
		an = a->next;
		if (a->state == RUNNING && a->dial != NULL)
			a->transport->d.transport->dial_cancel(
			    a->transport->state, a->dial);
		free(a);
	}
	for (q = r->queries; q != NULL; q = qn) {
		qn = q->next;
		if (!q->done && q->plugin->running)
			q->plugin->d.discovery->query_cancel(q->plugin->state,
			                                     q);
		free(q);
	}
	hl_event_free(&r->stagger);
	hl_event_free(&r->deadline);
	free(r);
}

static char *
route_trace(struct hl__route *r)
{
	size_t cap = 512 + (size_t)r->nattempts * 600, len = 0;
	char *t = malloc(cap);
	int n = 0;

	if (t == NULL)
		return NULL;
	t[0] = '\0';
#define ADD(...)                                                               \
	do {                                                                   \
		int w_ = snprintf(t + len, cap - len, __VA_ARGS__);            \
		if (w_ > 0)                                                    \
			len += (size_t)w_ < cap - len ? (size_t)w_             \
			                              : cap - len - 1;         \
	} while (0)
	if (transport_count() == 0)
		ADD("No transport plugin is loaded, so nothing can be dialled: "
		    "add transport-tls under plugins: in the config.\n");
	for (struct attempt *a = r->attempts; a != NULL; a = a->next) {
		n++;
		ADD("%s via %s (address from %s): %s\n", a->addr,
		    a->transport->d.name, a->source,
		    a->state == PENDING   ? "not tried before the deadline"
		    : a->state == RUNNING ? "still trying at the deadline"
		                          : a->result);
	}
	for (int i = 0; i < r->nuntaken; i++)
		ADD("%s (address from a candidate source): no transport "
		    "loaded here dials such an address\n",
		    r->untaken[i]);
	for (struct hl_query *q = r->queries; q != NULL; q = q->next)
		if (!q->found)
			ADD("discovery by %s: %s\n", q->plugin->d.name,
			    q->done ? "found no address"
			            : "no answer before the deadline");
	if (n == 0 && r->ncandidates == 0)
		ADD("No address is known for this service: no peers: entry "
		    "for it in the config, none remembered from an earlier "
		    "visit, and no discovery plugin found one.\n");
#undef ADD
	return t;
}

static void
route_fail(struct hl__route *r)
{
	char *trace = route_trace(r);

	r->finished = 1;
	hl__stats.proxy_no_route++;
	recent_add(r->keyhash, NULL, trace ? trace : "");
	r->cb(r->arg, NULL, NULL, 0, trace ? trace : "out of memory\n");
	free(trace);
	route_free(r);
}

/* Finished when nothing runs, nothing waits and no query may still
 * bring a candidate. */
static int
route_exhausted(struct hl__route *r)
{
	for (struct attempt *a = r->attempts; a != NULL; a = a->next)
		if (a->state != DONE)
			return 0;
	for (struct hl_query *q = r->queries; q != NULL; q = q->next)
		if (!q->done)
			return 0;
	return 1;
}

/* One slot: the transport calls tunnel_path right before the dial's cb
 * with the same bev, in the same turn. */
static struct {
	struct bufferevent *bev;
	unsigned flags;
	char text[80];
} path_note;

void
hl__router_tunnel_path(struct bufferevent *bev, unsigned flags,
                       const char *text)
{
	path_note.bev = bev;
	path_note.flags = flags;
	snprintf(path_note.text, sizeof path_note.text, "%s", text ? text : "");
}

static void
attempt_dial_callback(void *arg, struct bufferevent *bev,
                      const unsigned char *cert_der, size_t cert_der_len,
                      const char *error)
{
	struct attempt *a = arg;
	struct hl__route *r = a->route;
	char got[HL_KEYHASH_LEN + 1];

	a->state = DONE;
	a->dial = NULL;
	if (bev == NULL) {
		snprintf(a->result, sizeof a->result, "%s",
		         error ? error : "failed");
	} else {
		hl__keyhash(cert_der, cert_der_len, got);
		if (strcmp(got, r->keyhash) == 0) {
			char via[192];
			int n = snprintf(via, sizeof via, "%s %s",
			                 a->transport->d.name, a->addr);
			unsigned flags = transport_route_flags(a->transport);
			if (path_note.bev == bev &&
			    (path_note.flags & HL_INCOMING_RELAYED))
				flags |= HL__ROUTE_RELAYED;
			if (path_note.bev == bev && n > 0 &&
			    (size_t)n < sizeof via)
				snprintf(via + n, sizeof via - (size_t)n,
				         " [%s: %s]",
				         path_note.flags & HL_INCOMING_RELAYED
				             ? "relayed"
				             : "direct",
				         path_note.text);
			path_note.bev = NULL;
			r->finished = 1;
			hl__stats.tunnels_out++;
			hl__debug("route %.8s: won by %s", r->keyhash, via);
			{
				char *trace = route_trace(r);
				recent_add(r->keyhash, via, trace ? trace : "");
				free(trace);
			}
			r->cb(r->arg, bev, via, flags, NULL);
			route_free(r);
			return;
		}
		bufferevent_free(bev);
		snprintf(
		    a->result, sizeof a->result,
		    "answered with a certificate whose hash is %s, not the "
		    "one in the URL: an impostor or a different service",
		    got);
	}
	hl__debug("route %.8s: %s via %s failed: %s", r->keyhash, a->addr,
	          a->transport->d.name, a->result);
	if (route_exhausted(r))
		route_fail(r);
	else
		route_kick(r);
}

static int
route_start_next(struct hl__route *r)
{
	for (struct attempt *a = r->attempts; a != NULL; a = a->next) {
		const struct hl_transport_ops *ops;

		if (a->state != PENDING)
			continue;
		ops = a->transport->d.transport;
		a->state = RUNNING;
		hl__debug("route %.8s: trying %s via %s", r->keyhash, a->addr,
		          a->transport->d.name);
		a->dial = ops->dial(a->transport->state, r->keyhash, a->addr,
		                    attempt_dial_callback, a);
		if (a->dial == NULL) {
			a->state = DONE;
			snprintf(a->result, sizeof a->result,
			         "this transport cannot reach such an address");
			continue;
		}
		return 1;
	}
	return 0;
}

static int
route_running(struct hl__route *r)
{
	for (struct attempt *a = r->attempts; a != NULL; a = a->next)
		if (a->state == RUNNING)
			return 1;
	return 0;
}

/* Start the next attempt, and the one after it 250 ms later; when none
 * can start, none runs and no more can come, the route has failed. */
static void
route_start_now(struct hl__route *r)
{
	if (route_start_next(r))
		hl_evtimer_add_ms(r->stagger, STAGGER_MS);
	else if (!route_running(r) && route_exhausted(r))
		route_fail(r);
}

static void
route_stagger_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                       void *arg)
{
	struct hl__route *r = arg;

	if (!r->finished)
		route_start_now(r);
}

/* Start the next attempt now if none is running, else within 250 ms. */
static void
route_kick(struct hl__route *r)
{
	if (r->finished || r->starting)
		return;
	if (!route_running(r)) {
		evtimer_del(r->stagger);
		route_start_now(r);
	} else if (!evtimer_pending(r->stagger, NULL)) {
		hl_evtimer_add_ms(r->stagger, STAGGER_MS);
	}
}

static void
route_deadline_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                        void *arg)
{
	route_fail(arg);
}

static void
route_add_self(struct hl__route *r)
{
	if (hl__identities_find(r->keyhash) == NULL)
		return;
	/* One of ours: dial our own listeners over loopback, so the path is
	 * the same as from any other node. */
	for (const struct hl__listener *l = hl__listeners_first(); l;
	     l = l->next) {
		struct sockaddr_storage ss = l->ss;
		char addr[HL_ADDR_MAX], a[HL_ADDR_MAX];
		const char *prefix = "";

		/* A UDP listener is its transport's: "quic://" for
		 * transport-udp (its first scheme), not a bare address that
		 * transport-tls would try over TCP. */
		if (l->proto == HL_PROTO_UDP) {
			const struct hl_transport_ops *o =
			    l->owner ? l->owner->d.transport : NULL;
			if (o == NULL ||
			    !HL_STRUCT_HAS(o, struct hl_transport_ops,
			                   schemes) ||
			    o->schemes == NULL)
				continue;
			for (const char *const *sc = o->schemes; *sc; sc++)
				if ((*sc)[0] != '\0') {
					prefix = *sc;
					break;
				}
			if (prefix[0] == '\0')
				continue;
		}

		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			if (s4->sin_addr.s_addr == htonl(INADDR_ANY))
				s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr)) {
				char v4[64];
				snprintf(v4, sizeof v4, "%s%s127.0.0.1:%u",
				         prefix, prefix[0] ? "://" : "",
				         ntohs(s6->sin6_port));
				route_add_candidate(r, v4, "this node");
				s6->sin6_addr = in6addr_loopback;
			}
		}
		hl_sockaddr_str((struct sockaddr *)&ss, addr, sizeof addr);
		snprintf(a, sizeof a, "%s%s%s", prefix, prefix[0] ? "://" : "",
		         addr);
		route_add_candidate(r, a, "this node");
	}
}

struct hl__route *
hl__route_start(struct hl__core *c, const char *keyhash, hl__route_cb cb,
                void *arg)
{
	struct hl__route *r = calloc(1, sizeof *r);
	struct timeval dl = {ROUTE_DEADLINE_SEC, 0};
	char cached[HL_WANHOSTS_MAX * 2][HL_ADDR_MAX];
	size_t n;

	if (r == NULL)
		return NULL;
	r->core = c;
	HL_LIST_INSERT(routes, r);
	snprintf(r->keyhash, sizeof r->keyhash, "%s", keyhash);
	r->cb = cb;
	r->arg = arg;
	r->stagger = evtimer_new(c->base, route_stagger_callback, r);
	r->deadline = evtimer_new(c->base, route_deadline_callback, r);
	if (r->stagger == NULL || r->deadline == NULL) {
		route_free(r);
		return NULL;
	}
	evtimer_add(r->deadline, &dl);
	/* Attempts start from the loop, once every source below has had its
	 * say, so that cb never runs before this function returns. */
	r->starting = 1;

	/* The discovery plugins first, as they may take a while. */
	for (struct hl_plugin *p = hl__plugins_first(); p != NULL;
	     p = p->next) {
		struct hl_query *q;

		if (!p->running || p->d.discovery == NULL)
			continue;
		q = calloc(1, sizeof *q);
		if (q == NULL)
			break;
		q->route = r;
		q->plugin = p;
		q->next = r->queries;
		r->queries = q;
		if (p->d.discovery->query_start(p->state, q) != 0) {
			r->queries = q->next;
			free(q);
		}
	}
	route_add_self(r);
	for (size_t i = 0; i < c->cfg->npeers; i++) {
		const struct hl__peer_conf *pc = &c->cfg->peers[i];
		if (strcmp(pc->keyhash, r->keyhash) != 0)
			continue;
		for (size_t j = 0; j < pc->naddrs; j++)
			route_add_candidate(r, pc->addrs[j], "peers:");
	}
	n = hl__peercache_get(r->keyhash, cached,
	                      sizeof cached / sizeof cached[0]);
	for (size_t i = 0; i < n; i++)
		route_add_candidate(r, cached[i], "remembered");
	r->starting = 0;
	event_active(r->stagger, EV_TIMEOUT, 0);
	return r;
}

void
hl__route_cancel(struct hl__route *r)
{
	if (r == NULL || r->finished)
		return;
	r->finished = 1;
	route_free(r);
}

const char *
hl__query_keyhash(const struct hl_query *q)
{
	return q->route->keyhash;
}

void
hl__query_candidate(struct hl_query *q, const char *addr)
{
	if (q->done)
		return;
	q->found = 1;
	route_add_candidate(q->route, addr, q->plugin->d.name);
}

void
hl__query_done(struct hl_query *q)
{
	struct hl__route *r = q->route;

	if (q->done)
		return;
	q->done = 1;
	if (!r->finished && !r->starting && route_exhausted(r))
		route_fail(r);
}

/*
 * A plugin is about to stop (turned off at run time): its dials and
 * queries end now, while it can still cancel them, and count as failed
 * attempts ("turned off"); routes left with nothing to wait for fail.
 */
void
hl__router_plugin_stopping(struct hl_plugin *p)
{
	struct hl__route *r;

	for (r = routes; r != NULL; r = r->next) {
		for (struct attempt *a = r->attempts; a != NULL; a = a->next) {
			if (a->transport != p || a->state == DONE)
				continue;
			if (a->state == RUNNING && a->dial != NULL)
				p->d.transport->dial_cancel(p->state, a->dial);
			a->dial = NULL;
			a->state = DONE;
			snprintf(a->result, sizeof a->result,
			         "%s was turned off", p->d.name);
		}
		for (struct hl_query *q = r->queries; q != NULL; q = q->next) {
			if (q->plugin != p || q->done)
				continue;
			p->d.discovery->query_cancel(p->state, q);
			q->done = 1;
		}
	}
}

/* After the plugin stopped: move every route on or end it. */
void
hl__router_plugin_stopped(void)
{
	struct hl__route *r;

again:
	for (r = routes; r != NULL; r = r->next) {
		if (r->finished || r->starting)
			continue;
		if (!route_running(r) && route_exhausted(r)) {
			route_fail(r); /* frees r: start over */
			goto again;
		}
	}
	/* The others try their next attempt from the loop. */
	for (r = routes; r != NULL; r = r->next) {
		if (r->finished || r->starting || route_running(r))
			continue;
		evtimer_del(r->stagger);
		event_active(r->stagger, EV_TIMEOUT, 0);
	}
}
