/*
 * hubnode.c: registrations with hubs, INTROs, lookups and punch probes for
 * transport-udp (hubnode.h). The hub's messages are made and parsed by
 * plugins/hub's hubmsg.c and hubclient.c, compiled into the plugin.
 */
#define HL_PLUGIN_ABI_MINOR 2
#define HL_PLUGIN_WITHOUT_OPENSSL
#include "hubnode.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include "hardline/plugin.h"
#include "hardline/util.h"
#include "hubclient.h"
#include "hubmsg.h"
#include "punchmsg.h"

#define MAX_SERVICES 64 /* registered per hub (more are not registered) */
#define INTRO_MAX 32 /* INTROs being probed at once */
#define PUNCH_CANDS 12 /* candidates probed per punch */
#define PROBE_TICK_MS 50 /* one probe to each candidate per tick */
#define PROBE_ROUNDS 60 /* ticks: 3 s of probing */
/* Relays last: a relayed candidate is probed, and a path through a relay
 * taken, only after this many ticks without a direct path (2 s: the
 * birthday approach finds cone/symmetric paths within it). */
#define RELAY_AFTER 40
/* The birthday approach, for a symmetric NAT on the client's side: after
 * BDAY_AFTER ticks without an answer the client opens BDAY_SOCKS sockets,
 * each probing the service's observed address every BDAY_EVERY ticks (a
 * mapping each in its NAT, toward that address), and the service sends
 * BDAY_PER_TICK probes a tick to random ports of the client's observed
 * address: a hit on one of those mappings comes in, and is answered. */
#define BDAY_AFTER 10 /* 500 ms */
#define BDAY_SOCKS 256
#define BDAY_EVERY 4
#define BDAY_PER_TICK 30 /* 1500 in the 2.5 s left: 99.7% with 256 */
#define BDAY_SOCKS_MAX 512 /* a service's, for all its INTROs at once */
/* A service's spray toward clients' addresses, whatever the INTROs: a
 * spoofed LOOKUP makes the hub INTRO an address that is not the asker's,
 * so this bounds what such a lie makes the node send to it (about 48 KB,
 * then 10 KB/s, in 32-byte probes). */
#define SPRAY_BURST 1500
#define SPRAY_PER_SEC 300
#define LOOKUP_TRIES 4
#define LOOKUP_WAIT_MS 400
#define KEEPALIVE_TRIES 3
#define KEEPALIVE_WAIT_S 3
#define REFRESH_MIN 5
#define REFRESH_MAX 300
#define REFRESH_DEFAULT 25

enum reg_state {
	REG_RESOLVING, /* the hub's name */
	REG_CHALLENGE, /* CHALLENGE_REQ sent */
	REG_REGISTER, /* REGISTER sent */
	REG_OK, /* registered, waiting for the next keep-alive */
	REG_KEEPALIVE, /* KEEPALIVE sent */
	REG_REFUSED, /* the hub refused: try again later */
};

struct hub;

struct reg {
	struct hubnode *hn;
	struct hub *hub;
	const struct hl_identity *id;
	uint8_t keyhash[20];
	int state;
	uint8_t txid[HUBMSG_TXID_LEN];
	uint8_t token[HUBMSG_TOKEN_LEN];
	unsigned refresh;
	int tries;
	int ever; /* registered at least once */
	void *sock;
	struct hubmsg_addr observed;
	unsigned cands_gen; /* hn->cands_gen when its candidates went out */
	struct event *timer;
};

struct hub {
	struct hubnode *hn;
	char name[HUBMSG_HUBADDR_MAX + 1]; /* as configured */
	char host[HUBMSG_HUBADDR_MAX + 1];
	uint16_t port;
	struct sockaddr_storage ss;
	socklen_t sslen; /* 0: not resolved */
	struct hubmsg_addr addr;
	struct evdns_getaddrinfo_request *req;
	struct event *resolve_ev; /* (re)resolve, deferred or later */
	int endpoint_told;
	struct reg *regs;
	size_t nregs;
};

struct intro {
	int used;
	uint8_t txid[HUBMSG_TXID_LEN];
	uint8_t keyhash[20];
	void *sock;
	struct hubmsg_addr cands[HUBMSG_CANDS_MAX + 1];
	uint8_t relayed[HUBMSG_CANDS_MAX + 1]; /* the client's relay's */
	size_t n;
	int rounds; /* left */
	int answered; /* over a direct path (a relay's does not count) */
	int predicted; /* its first spray went to predicted ports */
	/* The birthday approach when this node's NAT is the symmetric one:
	 * sockets probing the client's observed address, on which its
	 * spray of probes (and then its QUIC Initial) may come in. */
	void **bsocks;
	int nbsocks;
};

struct hq {
	struct hubnode *hn;
	struct hl_query *q;
	struct event *ev;
	struct hq *next, **prevp;
};

struct hubnode {
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct event_base *base;
	struct hubnode_io io;
	struct hub hubs[HUBNODE_MAX_HUBS];
	size_t nhubs;
	struct intro intros[INTRO_MAX];
	struct event *intro_tick;
	struct hubpunch *punches;
	struct hq *queries;
	int started;
	/* counters, logged at exit */
	unsigned long malformed, unexpected, nintros, probes_in, probes_bad,
	    sprayed, bday_socks;
	int bday_open; /* the INTROs' birthday sockets open now */
	unsigned cands_gen; /* counts changes of this node's candidates */
	struct hl_rate spray_rate;
	unsigned long spray_limited;
};

struct pcand {
	struct hubmsg_addr a;
	uint8_t kind; /* hubmsg_cand_kind; 0: peer-reflexive (a probe's
	               * source) */
	unsigned probes;
	int proven;
	int taken;
	int relayed; /* found on this node's relay socket */
	void *sock; /* the socket its probe or ack came to */
	char why[160];
};

enum punch_state { P_LOOKUP, P_PROBING, P_DONE };

struct hubpunch {
	struct hubnode *hn;
	char keyhash_hex[41];
	uint8_t keyhash[20];
	char hubname[HUBMSG_HUBADDR_MAX + 1];
	struct sockaddr_storage hub_ss;
	socklen_t hub_sslen;
	struct hubmsg_addr hub_addr;
	void *sock;
	uint16_t port;
	int state;
	uint8_t txids[LOOKUP_TRIES][HUBMSG_TXID_LEN];
	int ntx;
	int rounds;
	struct pcand cands[PUNCH_CANDS];
	size_t ncands;
	char lookup_why[200];
	hubpunch_found_cb found;
	hubpunch_over_cb over;
	void *arg;
	int over_pending, over_told, found_pending;
	void *bsocks[BDAY_SOCKS]; /* the birthday sockets */
	int nbsocks;
	int predicted; /* its first spray went to predicted ports */
	struct event *timer;
	struct event *notify;
	struct hubpunch *next, **prevp;
};

static int
hex_to_raw(const char *hex, uint8_t out[20])
{
	for (int i = 0; i < 20; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void
raw_to_hex(const uint8_t raw[20], char out[41])
{
	for (int i = 0; i < 20; i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

static void
send_to(struct hubnode *hn, void *sock, const struct sockaddr *sa,
        socklen_t salen, const uint8_t *buf, size_t len)
{
	if (sock != NULL && len > 0)
		hn->io.send(hn->io.ctx, sock, sa, salen, buf, len);
}

static void
send_addr(struct hubnode *hn, void *sock, const struct hubmsg_addr *a,
          const uint8_t *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t l = hubmsg_addr_to_sa(a, &ss);

	if (l > 0)
		send_to(hn, sock, (struct sockaddr *)&ss, l, buf, len);
}

/* This node's candidates for a family: the relays' (relayed, and
 * server-reflexive as the TURN server saw us), the addresses hubs saw us
 * at (server-reflexive), then host ones on the socket's port, at most
 * max in all (host ones give way). */
static size_t
node_cands(struct hubnode *hn, int family, uint16_t port,
           struct hubmsg_cand *out, size_t max)
{
	struct hubmsg_cand extra[HUBMSG_CANDS_MAX];
	size_t ne = 0, n;

	if (hn->io.cands != NULL)
		ne = hn->io.cands(hn->io.ctx, family, extra, HUBMSG_CANDS_MAX);
	for (size_t i = 0; i < hn->nhubs; i++)
		for (size_t k = 0; k < hn->hubs[i].nregs; k++) {
			const struct reg *r = &hn->hubs[i].regs[k];
			int dup = 0;
			if (!r->ever ||
			    r->observed.family != (family == AF_INET6 ? 6 : 4))
				continue;
			for (size_t j = 0; j < ne; j++)
				dup |= hubmsg_addr_eq(&extra[j].addr,
				                      &r->observed);
			if (!dup && ne < HUBMSG_CANDS_MAX) {
				extra[ne].kind = HUBMSG_CAND_SRFLX;
				extra[ne++].addr = r->observed;
			}
		}
	if (ne > max)
		ne = max;
	/* First: a hub trims an answer from the end (no amplification). */
	memcpy(out, extra, ne * sizeof *extra);
	n = hubclient_host_candidates(family, port, out + ne, max - ne);
	return ne + n;
}

/* A peer's addresses may reach us through our relays. */
static void
permit_addrs(struct hubnode *hn, const struct hubmsg_addr *obs,
             const struct hubmsg_cand *cands, size_t n)
{
	struct sockaddr_storage ss;
	socklen_t l;

	if (hn->io.permit == NULL)
		return;
	if ((l = hubmsg_addr_to_sa(obs, &ss)) > 0)
		hn->io.permit(hn->io.ctx, (struct sockaddr *)&ss, l);
	for (size_t i = 0; i < n; i++)
		if (cands[i].kind != HUBMSG_CAND_HOST &&
		    (l = hubmsg_addr_to_sa(&cands[i].addr, &ss)) > 0)
			hn->io.permit(hn->io.ctx, (struct sockaddr *)&ss, l);
}

static int
is_relay(const struct hubnode *hn, void *sock)
{
	return hn->io.is_relay != NULL && hn->io.is_relay(hn->io.ctx, sock);
}

/* ---- registrations ---- */

static void reg_timer_callback(evutil_socket_t fd, short what, void *arg);

static void
reg_arm(struct reg *r, unsigned ms)
{
	struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};

	evtimer_add(r->timer, &tv);
}

static void
reg_challenge(struct reg *r)
{
	struct hubnode *hn = r->hn;
	uint8_t buf[128];
	size_t n;
	uint16_t port = 0;

	if (r->hub->sslen == 0) {
		r->state = REG_RESOLVING;
		return;
	}
	r->sock = hn->io.listener_for(hn->io.ctx, r->hub->ss.ss_family, &port);
	if (r->sock == NULL) {
		r->state = REG_REFUSED;
		reg_arm(r, 30000);
		return;
	}
	hl_random(r->txid, sizeof r->txid);
	n = hubclient_challenge_req(buf, sizeof buf, r->txid, r->keyhash);
	send_to(hn, r->sock, (struct sockaddr *)&r->hub->ss, r->hub->sslen, buf,
	        n);
	r->state = REG_CHALLENGE;
	/* 1, 2, 4, 8, then every 10 s */
	reg_arm(r, r->tries < 4 ? 1000u << r->tries : 10000);
	r->tries++;
}

static void
reg_keepalive(struct reg *r)
{
	struct hubnode *hn = r->hn;
	uint8_t buf[HUBMSG_MAX];
	struct hubmsg_cand cands[HUBMSG_CANDS_MAX];
	uint16_t port = 0;
	size_t n, nc;

	/* The candidates again: they replace the registered ones (a relay
	 * allocated since, another hub's view of our address). */
	hn->io.listener_for(hn->io.ctx, r->hub->ss.ss_family, &port);
	nc =
	    node_cands(hn, r->hub->ss.ss_family, port, cands, HUBMSG_CANDS_MAX);
	r->cands_gen = hn->cands_gen;
	hl_random(r->txid, sizeof r->txid);
	n = hubclient_keepalive(buf, sizeof buf, r->txid, r->keyhash, r->token,
	                        cands, nc);
	send_to(r->hn, r->sock, (struct sockaddr *)&r->hub->ss, r->hub->sslen,
	        buf, n);
	r->state = REG_KEEPALIVE;
	reg_arm(r, KEEPALIVE_WAIT_S * 1000);
}

static void
reg_timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                   void *arg)
{
	struct reg *r = arg;

	switch (r->state) {
	case REG_CHALLENGE:
	case REG_REGISTER:
	case REG_REFUSED:
		reg_challenge(r);
		break;
	case REG_OK:
		r->tries = 0;
		reg_keepalive(r);
		break;
	case REG_KEEPALIVE:
		if (++r->tries < KEEPALIVE_TRIES) {
			reg_keepalive(r);
			break;
		}
		r->hn->svc->log(r->hn->self, HL_LOG_INFO,
		                "hub %s: no answer to %d keep-alives for "
		                "service %s: registering again",
		                r->hub->name, KEEPALIVE_TRIES, r->id->name);
		r->tries = 0;
		reg_challenge(r);
		break;
	default:
		break;
	}
}

static void
reg_input(struct reg *r, const struct hubmsg *m)
{
	struct hubnode *hn = r->hn;
	char obs[64];

	if (memcmp(m->txid, r->txid, sizeof r->txid) != 0) {
		hn->unexpected++;
		return;
	}
	switch (m->type) {
	case HUBMSG_CHALLENGE: {
		uint8_t buf[HUBMSG_MAX];
		struct hubmsg_cand cands[HUBMSG_CANDS_MAX];
		uint16_t port = 0;
		size_t nc, n;

		if (r->state != REG_CHALLENGE)
			break;
		hn->io.listener_for(hn->io.ctx, r->hub->ss.ss_family, &port);
		nc = node_cands(hn, r->hub->ss.ss_family, port, cands,
		                HUBMSG_CANDS_MAX);
		r->cands_gen = hn->cands_gen;
		hl_random(r->txid, sizeof r->txid);
		n = hubclient_register(buf, sizeof buf, r->txid, r->keyhash,
		                       m->nonce, r->id->cert_der,
		                       r->id->cert_der_len, r->id->key_pem,
		                       r->hub->name, cands, nc);
		if (n == 0) {
			hn->svc->log(hn->self, HL_LOG_WARN,
			             "hub %s: cannot sign a registration for "
			             "service %s (its key or certificate)",
			             r->hub->name, r->id->name);
			r->state = REG_REFUSED;
			reg_arm(r, 300000);
			break;
		}
		send_to(hn, r->sock, (struct sockaddr *)&r->hub->ss,
		        r->hub->sslen, buf, n);
		r->state = REG_REGISTER;
		reg_arm(r, 2000);
		break;
	}
	case HUBMSG_REGISTERED:
		if (r->state != REG_REGISTER)
			break;
		memcpy(r->token, m->token, sizeof r->token);
		r->refresh = m->refresh < REFRESH_MIN   ? REFRESH_MIN
		             : m->refresh > REFRESH_MAX ? REFRESH_MAX
		                                        : m->refresh;
		r->observed = m->observed;
		r->state = REG_OK;
		r->tries = 0;
		hubmsg_addr_str(&m->observed, obs, sizeof obs);
		hn->svc->log(hn->self, r->ever ? HL_LOG_DEBUG : HL_LOG_INFO,
		             "hub %s: service %s registered (seen at %s; "
		             "keep-alive every %u s)",
		             r->hub->name, r->id->name, obs, r->refresh);
		r->ever = 1;
		if (!r->hub->endpoint_told && HL_HAS(hn->svc, endpoint_add)) {
			char ep[300];
			snprintf(ep, sizeof ep, "hub://%s", r->hub->name);
			hn->svc->endpoint_add(hn->self, ep);
			r->hub->endpoint_told = 1;
		}
		/* Candidates changed while registering: tell them now. */
		reg_arm(r,
		        r->cands_gen != hn->cands_gen ? 0 : r->refresh * 1000);
		break;
	case HUBMSG_KEEPALIVE_ACK:
		if (r->state != REG_KEEPALIVE)
			break;
		if (!hubmsg_addr_eq(&m->observed, &r->observed)) {
			hubmsg_addr_str(&m->observed, obs, sizeof obs);
			hn->svc->log(hn->self, HL_LOG_INFO,
			             "hub %s: service %s now seen at %s (the "
			             "NAT mapping changed)",
			             r->hub->name, r->id->name, obs);
			r->observed = m->observed;
		}
		r->state = REG_OK;
		r->tries = 0;
		reg_arm(r,
		        r->cands_gen != hn->cands_gen ? 0 : r->refresh * 1000);
		break;
	case HUBMSG_ERROR:
		if (m->error == HUBMSG_E_UNKNOWN && r->state == REG_KEEPALIVE) {
			/* A restarted hub, or our mapping changed. */
			hn->svc->log(hn->self, HL_LOG_INFO,
			             "hub %s: forgot service %s (restarted?): "
			             "registering again",
			             r->hub->name, r->id->name);
			r->tries = 0;
			reg_challenge(r);
			break;
		}
		if (r->state != REG_REGISTER && r->state != REG_CHALLENGE)
			break;
		hn->svc->log(hn->self, HL_LOG_WARN,
		             "hub %s: registration of service %s refused "
		             "(error %u: %s); trying again in 60 s",
		             r->hub->name, r->id->name, m->error,
		             m->error == HUBMSG_E_BAD_NONCE   ? "bad nonce"
		             : m->error == HUBMSG_E_BAD_PROOF ? "bad proof"
		             : m->error == HUBMSG_E_BAD_HUB
		                 ? "the hub does not answer to that name"
		             : m->error == HUBMSG_E_FULL ? "the hub is full"
		                                         : "other");
		r->state = REG_REFUSED;
		reg_arm(r, 60000);
		break;
	default:
		hn->unexpected++;
	}
}

/* ---- hubs: names ---- */

static void hub_resolved(int err, struct evutil_addrinfo *ai, void *arg);

static void
hub_set_addr(struct hub *h, const struct sockaddr *sa, socklen_t len)
{
	memcpy(&h->ss, sa, len);
	h->sslen = len;
	hubmsg_addr_from_sa(&h->addr, sa);
	for (size_t i = 0; i < h->nregs; i++)
		if (h->regs[i].state == REG_RESOLVING) {
			h->regs[i].tries = 0;
			reg_challenge(&h->regs[i]);
		}
}

static void
hub_resolve_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                     void *arg)
{
	struct hub *h = arg;
	struct hubnode *hn = h->hn;
	struct evutil_addrinfo hints = {0};
	struct evdns_getaddrinfo_request *r;
	char port[8];

	if (h->req != NULL)
		return;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	snprintf(port, sizeof port, "%u", h->port);
	h->req = (void *)1; /* answered inside: see hub_resolved */
	r = evdns_getaddrinfo(hn->svc->dns_base(hn->self), h->host, port,
	                      &hints, hub_resolved, h);
	if (h->req == (void *)1)
		h->req = r;
}

static void
hub_resolved(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct hub *h = arg;
	struct hubnode *hn = h->hn;

	h->req = NULL;
	if (err == EVUTIL_EAI_CANCEL) {
		if (ai != NULL)
			evutil_freeaddrinfo(ai);
		return;
	}
	if (err != 0 || ai == NULL) {
		struct timeval tv = {60, 0};
		hn->svc->log(hn->self, HL_LOG_WARN,
		             "hub %s: name lookup failed (%s); again in 60 s",
		             h->name,
		             err ? evutil_gai_strerror(err) : "no address");
		evtimer_add(h->resolve_ev, &tv);
	} else {
		hub_set_addr(h, ai->ai_addr, (socklen_t)ai->ai_addrlen);
	}
	if (ai != NULL)
		evutil_freeaddrinfo(ai);
}

static struct hub *
hub_by_addr(struct hubnode *hn, const struct hubmsg_addr *a)
{
	for (size_t i = 0; i < hn->nhubs; i++)
		if (hn->hubs[i].sslen > 0 &&
		    hubmsg_addr_eq(&hn->hubs[i].addr, a))
			return &hn->hubs[i];
	return NULL;
}

/* ---- INTRO: probing a client's candidates ---- */

/* Is a the client's relayed candidate? */
static int
intro_relayed(const struct intro *in, const struct hubmsg_addr *a)
{
	for (size_t i = 0; i < in->n; i++)
		if (in->relayed[i] && hubmsg_addr_eq(&in->cands[i], a))
			return 1;
	return 0;
}

static void
intro_probe_round(struct hubnode *hn, struct intro *in)
{
	struct punchmsg pm = {PUNCHMSG_PROBE, {0}, {0}};
	uint8_t buf[PUNCHMSG_LEN];

	memcpy(pm.txid, in->txid, sizeof pm.txid);
	memcpy(pm.keyhash, in->keyhash, sizeof pm.keyhash);
	punchmsg_format(&pm, buf);
	for (size_t i = 0; i < in->n; i++)
		send_addr(hn, in->sock, &in->cands[i], buf, sizeof buf);
}

/* The ports of one spray tick toward the observed address cands[0] of a
 * (maybe symmetric) NAT: the first tick's are predicted from the ports
 * it was seen to give (the other candidates on its IP address: the TURN
 * server's view, other hubs'), the others random. */
static void
spray_ports(const struct hubmsg_addr *cands, size_t n, const uint8_t *skip,
            int *predicted, uint16_t ports[BDAY_PER_TICK])
{
	uint16_t known[HUBMSG_CANDS_MAX + 1];
	size_t nk = 0;

	hl_random(ports, BDAY_PER_TICK * sizeof *ports);
	for (size_t i = 0; i < BDAY_PER_TICK; i++)
		ports[i] = (uint16_t)(1024 + ports[i] % (65536 - 1024));
	if (*predicted || n == 0)
		return;
	*predicted = 1;
	for (size_t i = 0; i < n && nk < HUBMSG_CANDS_MAX + 1; i++)
		if ((skip == NULL || !skip[i]) &&
		    cands[i].family == cands[0].family &&
		    memcmp(cands[i].ip, cands[0].ip, 16) == 0)
			known[nk++] = cands[i].port;
	punch_predict(known, nk, ports, BDAY_PER_TICK); /* the rest: random */
}

/* Probes to random ports of the client's observed address: the birthday
 * approach's side on a node whose NAT keeps one mapping (bounded: a
 * tick's worth, for the ticks left of the INTRO's probing). */
static void
intro_spray(struct hubnode *hn, struct intro *in)
{
	struct punchmsg pm = {PUNCHMSG_PROBE, {0}, {0}};
	uint8_t buf[PUNCHMSG_LEN];
	uint16_t ports[BDAY_PER_TICK];

	memcpy(pm.txid, in->txid, sizeof pm.txid);
	memcpy(pm.keyhash, in->keyhash, sizeof pm.keyhash);
	punchmsg_format(&pm, buf);
	spray_ports(in->cands, in->n, in->relayed, &in->predicted, ports);
	for (size_t i = 0; i < BDAY_PER_TICK; i++) {
		struct hubmsg_addr a = in->cands[0];
		if (!hl_rate_take(&hn->spray_rate, SPRAY_BURST, SPRAY_PER_SEC,
		                  hl_mono_ms())) {
			hn->spray_limited++;
			return;
		}
		a.port = ports[i];
		send_addr(hn, in->sock, &a, buf, sizeof buf);
		hn->sprayed++;
	}
}

static void
intro_close_socks(struct hubnode *hn, struct intro *in)
{
	for (int i = 0; i < in->nbsocks; i++)
		hn->io.close_sock(hn->io.ctx, in->bsocks[i]);
	hn->bday_open -= in->nbsocks;
	free(in->bsocks);
	in->bsocks = NULL;
	in->nbsocks = 0;
}

/* The service's own birthday sockets (its NAT may be the symmetric one):
 * opened once (within BDAY_SOCKS_MAX for all INTROs), each probing the
 * client's observed address every BDAY_EVERY ticks. Listening: the
 * client's QUIC Initial comes to the one its spray hit. */
static void
intro_birthday(struct hubnode *hn, struct intro *in)
{
	struct punchmsg pm = {PUNCHMSG_PROBE, {0}, {0}};
	uint8_t buf[PUNCHMSG_LEN];
	int first = in->bsocks == NULL;

	if (hn->io.open_sock == NULL)
		return;
	if (first) {
		int want = BDAY_SOCKS_MAX - hn->bday_open;
		if (want > BDAY_SOCKS)
			want = BDAY_SOCKS;
		in->bsocks =
		    calloc(want > 0 ? (size_t)want : 1, sizeof *in->bsocks);
		if (in->bsocks == NULL)
			return;
		while (in->nbsocks < want) {
			void *s = hn->io.open_sock(
			    hn->io.ctx,
			    in->cands[0].family == 6 ? AF_INET6 : AF_INET);
			if (s == NULL)
				break;
			in->bsocks[in->nbsocks++] = s;
			hn->bday_open++;
			hn->bday_socks++;
		}
	} else if ((PROBE_ROUNDS - in->rounds) % BDAY_EVERY != 0) {
		return;
	}
	memcpy(pm.txid, in->txid, sizeof pm.txid);
	memcpy(pm.keyhash, in->keyhash, sizeof pm.keyhash);
	punchmsg_format(&pm, buf);
	for (int i = 0; i < in->nbsocks; i++)
		send_addr(hn, in->bsocks[i], &in->cands[0], buf, sizeof buf);
}

static void
intro_tick_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                    void *arg)
{
	struct hubnode *hn = arg;
	int any = 0;
	struct timeval tv = {0, PROBE_TICK_MS * 1000};

	for (size_t i = 0; i < INTRO_MAX; i++) {
		struct intro *in = &hn->intros[i];
		if (!in->used)
			continue;
		if (in->rounds <= 0) {
			intro_close_socks(hn, in);
			in->used = 0;
			continue;
		}
		in->rounds--;
		/* Once the client's probe came, slow down: the client
		 * starts QUIC now; a few more keep our side open. */
		if (!in->answered || in->rounds % 10 == 0)
			intro_probe_round(hn, in);
		if (!in->answered && PROBE_ROUNDS - in->rounds > BDAY_AFTER) {
			intro_spray(hn, in);
			intro_birthday(hn, in);
		}
		any = 1;
	}
	if (any)
		evtimer_add(hn->intro_tick, &tv);
}

static void
intro_input(struct hubnode *hn, struct hub *h, void *sock,
            const struct hubmsg *m)
{
	struct intro *in = NULL;
	char kh[41];
	const struct hl_identity *id;
	struct timeval tv = {0, PROBE_TICK_MS * 1000};

	raw_to_hex(m->keyhash, kh);
	id = hn->svc->identity_find(hn->self, kh);
	if (id == NULL) {
		hn->unexpected++;
		return;
	}
	for (size_t i = 0; i < INTRO_MAX; i++) {
		struct intro *x = &hn->intros[i];
		if (x->used && memcmp(x->txid, m->txid, sizeof x->txid) == 0 &&
		    memcmp(x->keyhash, m->keyhash, 20) == 0)
			return; /* the same INTRO through another hub */
		if (in == NULL && !x->used)
			in = x;
	}
	if (in == NULL) {
		/* Full: the one with the fewest rounds left makes room. */
		in = &hn->intros[0];
		for (size_t i = 1; i < INTRO_MAX; i++)
			if (hn->intros[i].rounds < in->rounds)
				in = &hn->intros[i];
	}
	intro_close_socks(hn, in);
	memset(in, 0, sizeof *in);
	in->used = 1;
	memcpy(in->txid, m->txid, sizeof in->txid);
	memcpy(in->keyhash, m->keyhash, 20);
	in->sock = sock;
	in->rounds = PROBE_ROUNDS;
	in->cands[in->n++] = m->observed;
	for (size_t i = 0; i < m->ncands; i++) {
		int dup = 0;
		for (size_t j = 0; j < in->n; j++)
			dup |= hubmsg_addr_eq(&in->cands[j], &m->cands[i].addr);
		if (!dup && in->n < HUBMSG_CANDS_MAX + 1) {
			in->relayed[in->n] =
			    m->cands[i].kind == HUBMSG_CAND_RELAY;
			in->cands[in->n++] = m->cands[i].addr;
		}
	}
	hn->nintros++;
	/* The client may come through our relays (the relayed candidate we
	 * registered): its addresses may. */
	permit_addrs(hn, &m->observed, m->cands, m->ncands);
	{
		char obs[64];
		hubmsg_addr_str(&m->observed, obs, sizeof obs);
		hn->svc->log(hn->self, HL_LOG_DEBUG,
		             "hub %s: a client at %s wants service %s: probing "
		             "its %zu candidates",
		             h->name, obs, id->name, in->n);
	}
	intro_probe_round(hn, in);
	evtimer_add(hn->intro_tick, &tv);
}

/* ---- punches (client side) ---- */

static void
punch_notify(struct hubpunch *p)
{
	event_active(p->notify, EV_TIMEOUT, 1);
}

/* The candidate a (found on this node's relay, or not: the same address
 * over the relay is another path), made if new. */
static struct pcand *
punch_cand_on(struct hubpunch *p, const struct hubmsg_addr *a, uint8_t kind,
              int relayed)
{
	for (size_t i = 0; i < p->ncands; i++)
		if (hubmsg_addr_eq(&p->cands[i].a, a) &&
		    p->cands[i].relayed == relayed)
			return &p->cands[i];
	if (p->ncands >= PUNCH_CANDS ||
	    a->family != (p->hub_addr.family == 6 ? 6 : 4))
		return NULL;
	memset(&p->cands[p->ncands], 0, sizeof p->cands[0]);
	p->cands[p->ncands].a = *a;
	p->cands[p->ncands].kind = kind;
	p->cands[p->ncands].relayed = relayed;
	return &p->cands[p->ncands++];
}

static struct pcand *
punch_cand(struct hubpunch *p, const struct hubmsg_addr *a, uint8_t kind)
{
	return punch_cand_on(p, a, kind, 0);
}

/* A path through a relay: the service's relayed candidate, or one found
 * on our own relay. */
static int
pcand_relayed(const struct pcand *c)
{
	return c->relayed || c->kind == HUBMSG_CAND_RELAY;
}

/* Relays last: may a relayed path be probed or taken yet? */
static int
punch_relay_time(const struct hubpunch *p)
{
	return p->state == P_DONE || PROBE_ROUNDS - p->rounds >= RELAY_AFTER;
}

static void
punch_lookup(struct hubpunch *p)
{
	struct hubmsg_cand cands[HUBMSG_CANDS_MAX];
	uint8_t buf[256];
	size_t nc, n;
	struct timeval tv = {0, LOOKUP_WAIT_MS * 1000};

	hl_random(p->txids[p->ntx], HUBMSG_TXID_LEN);
	nc = node_cands(p->hn, p->hub_ss.ss_family, p->port, cands,
	                HUBMSG_CANDS_MAX);
	n = hubclient_lookup(buf, sizeof buf, p->txids[p->ntx], p->keyhash,
	                     cands, nc);
	p->ntx++;
	send_to(p->hn, p->sock, (struct sockaddr *)&p->hub_ss, p->hub_sslen,
	        buf, n);
	evtimer_add(p->timer, &tv);
}

static void
punch_probe_round(struct hubpunch *p)
{
	struct punchmsg pm = {PUNCHMSG_PROBE, {0}, {0}};
	uint8_t buf[PUNCHMSG_LEN];

	/* The txid of the lookup the hub answered (the one its INTRO
	 * carried). */
	memcpy(pm.txid, p->txids[p->ntx - 1], sizeof pm.txid);
	memcpy(pm.keyhash, p->keyhash, sizeof pm.keyhash);
	punchmsg_format(&pm, buf);
	for (size_t i = 0; i < p->ncands; i++) {
		if (p->cands[i].kind == 0)
			continue; /* peer-reflexive: it found us */
		if (pcand_relayed(&p->cands[i]) && !punch_relay_time(p))
			continue;
		send_addr(p->hn, p->sock, &p->cands[i].a, buf, sizeof buf);
		p->cands[i].probes++;
	}
}

static int punch_any_proven(const struct hubpunch *p);

/* The birthday approach's side on a node whose NAT may give a new
 * mapping per destination: BDAY_SOCKS sockets, each probing the service's
 * observed address (the first candidate) every BDAY_EVERY ticks. */
static void
punch_birthday(struct hubpunch *p)
{
	struct hubnode *hn = p->hn;
	struct punchmsg pm = {PUNCHMSG_PROBE, {0}, {0}};
	uint8_t buf[PUNCHMSG_LEN];
	int first = p->nbsocks == 0;

	if (p->ncands == 0 || hn->io.open_sock == NULL)
		return;
	while (first && p->nbsocks < BDAY_SOCKS) {
		void *s = hn->io.open_sock(hn->io.ctx, p->hub_ss.ss_family);
		if (s == NULL)
			break;
		p->bsocks[p->nbsocks++] = s;
		hn->bday_socks++;
	}
	if (!first && (PROBE_ROUNDS - p->rounds) % BDAY_EVERY != 0)
		return;
	memcpy(pm.txid, p->txids[p->ntx - 1], sizeof pm.txid);
	memcpy(pm.keyhash, p->keyhash, sizeof pm.keyhash);
	punchmsg_format(&pm, buf);
	for (int i = 0; i < p->nbsocks; i++)
		send_addr(hn, p->bsocks[i], &p->cands[0].a, buf, sizeof buf);
}

/* The other half, for a symmetric NAT on the service's side: probes to
 * random ports of its observed address, from the punch's socket. */
static void
punch_spray(struct hubpunch *p)
{
	struct punchmsg pm = {PUNCHMSG_PROBE, {0}, {0}};
	uint8_t buf[PUNCHMSG_LEN];
	uint16_t ports[BDAY_PER_TICK];

	if (p->ncands == 0)
		return;
	memcpy(pm.txid, p->txids[p->ntx - 1], sizeof pm.txid);
	memcpy(pm.keyhash, p->keyhash, sizeof pm.keyhash);
	punchmsg_format(&pm, buf);
	{
		struct hubmsg_addr seen[PUNCH_CANDS];
		size_t ns = 0;
		for (size_t i = 0; i < p->ncands; i++)
			if (!pcand_relayed(&p->cands[i]) &&
			    p->cands[i].kind != 0)
				seen[ns++] = p->cands[i].a;
		spray_ports(seen, ns, NULL, &p->predicted, ports);
	}
	for (size_t i = 0; i < BDAY_PER_TICK; i++) {
		struct hubmsg_addr a = p->cands[0].a;
		a.port = ports[i];
		send_addr(p->hn, p->sock, &a, buf, sizeof buf);
	}
	p->hn->sprayed += BDAY_PER_TICK;
}

static int
punch_is_ours(const struct hubpunch *p, void *sock)
{
	if (p->sock == sock || is_relay(p->hn, sock))
		return 1;
	for (int i = 0; i < p->nbsocks; i++)
		if (p->bsocks[i] == sock)
			return 1;
	return 0;
}

/* A direct path was found (relayed ones do not stop the search for
 * one). */
static int
punch_any_proven(const struct hubpunch *p)
{
	for (size_t i = 0; i < p->ncands; i++)
		if (p->cands[i].proven && !pcand_relayed(&p->cands[i]))
			return 1;
	return 0;
}

/* A path was found that can be taken now or at relay time. */
static int
punch_any_found(const struct hubpunch *p)
{
	for (size_t i = 0; i < p->ncands; i++)
		if (p->cands[i].proven)
			return 1;
	return 0;
}

static void
punch_timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                     void *arg)
{
	struct hubpunch *p = arg;
	struct timeval tv = {0, PROBE_TICK_MS * 1000};

	if (p->state == P_LOOKUP) {
		if (p->ntx < LOOKUP_TRIES) {
			punch_lookup(p);
			return;
		}
		snprintf(p->lookup_why, sizeof p->lookup_why,
		         "hub %s did not answer %d lookups in %.1f s (UDP to "
		         "it blocked on this network, or the hub is down)",
		         p->hubname, LOOKUP_TRIES,
		         LOOKUP_TRIES * LOOKUP_WAIT_MS / 1000.0);
		p->state = P_DONE;
		p->over_pending = 1;
		punch_notify(p);
		return;
	}
	if (p->state != P_PROBING)
		return;
	if (p->rounds-- > 0) {
		/* Relay time: a path through a relay found meanwhile may
		 * be taken now. */
		if (PROBE_ROUNDS - p->rounds == RELAY_AFTER &&
		    !punch_any_proven(p) && punch_any_found(p)) {
			p->found_pending = 1;
			punch_notify(p);
		}
		/* Once a path is found, the QUIC handshake is its probe:
		 * probe the others at a quarter of the pace. */
		if (!punch_any_proven(p) || p->rounds % 4 == 0)
			punch_probe_round(p);
		if (!punch_any_proven(p) &&
		    PROBE_ROUNDS - p->rounds > BDAY_AFTER) {
			punch_birthday(p);
			/* a tick later: the service's sockets probe first */
			if (PROBE_ROUNDS - p->rounds > BDAY_AFTER + 1)
				punch_spray(p);
		}
		evtimer_add(p->timer, &tv);
		return;
	}
	p->state = P_DONE;
	for (size_t i = 0; i < p->ncands; i++)
		if (!p->cands[i].proven && p->cands[i].why[0] == '\0')
			snprintf(p->cands[i].why, sizeof p->cands[i].why,
			         "no answer to %u probes in %.1f s",
			         p->cands[i].probes,
			         PROBE_ROUNDS * PROBE_TICK_MS / 1000.0);
	if (!punch_any_found(p)) {
		p->over_pending = 1;
		punch_notify(p);
	}
}

static void
punch_notify_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                      void *arg)
{
	struct hubpunch *p = arg;

	/* Each callback may free p: one call, then return. */
	if (p->found_pending) {
		p->found_pending = 0;
		if (p->over_pending)
			punch_notify(p);
		p->found(p->arg);
		return;
	}
	if (p->over_pending && !p->over_told) {
		p->over_pending = 0;
		p->over_told = 1;
		p->over(p->arg);
	}
}

static void
punch_answer(struct hubpunch *p, const struct hubmsg *m)
{
	struct timeval tv = {0, 0};

	if (p->state != P_LOOKUP)
		return;
	if (m->type == HUBMSG_ERROR) {
		snprintf(p->lookup_why, sizeof p->lookup_why, "hub %s: %s",
		         p->hubname,
		         m->error == HUBMSG_E_NOT_FOUND
		             ? "the service is not registered there (its "
		               "node is down, or cannot reach the hub over "
		               "UDP)"
		             : "the lookup was refused");
		evtimer_del(p->timer);
		p->state = P_DONE;
		p->over_pending = 1;
		punch_notify(p);
		return;
	}
	if (m->type != HUBMSG_LOOKUP_ANSWER ||
	    memcmp(m->keyhash, p->keyhash, 20) != 0)
		return;
	/* The address the hub saw the service at first: behind a cone NAT
	 * it is the one that works. */
	punch_cand(p, &m->observed, HUBMSG_CAND_SRFLX);
	for (size_t i = 0; i < m->ncands; i++)
		punch_cand(p, &m->cands[i].addr, m->cands[i].kind);
	/* The service may come through our relays: its addresses may. */
	permit_addrs(p->hn, &m->observed, m->cands, m->ncands);
	/* Probe with the txid this answer carries (it is also the
	 * INTRO's): put it last. */
	for (int i = 0; i < p->ntx; i++)
		if (memcmp(p->txids[i], m->txid, HUBMSG_TXID_LEN) == 0 &&
		    i != p->ntx - 1) {
			uint8_t t[HUBMSG_TXID_LEN];
			memcpy(t, p->txids[i], sizeof t);
			memcpy(p->txids[i], p->txids[p->ntx - 1], sizeof t);
			memcpy(p->txids[p->ntx - 1], t, sizeof t);
		}
	p->state = P_PROBING;
	p->rounds = PROBE_ROUNDS;
	evtimer_del(p->timer);
	evtimer_add(p->timer, &tv);
}

static struct hubpunch *
punch_for_txid(struct hubnode *hn, const uint8_t *txid)
{
	for (struct hubpunch *p = hn->punches; p != NULL; p = p->next)
		for (int i = 0; i < p->ntx; i++)
			if (memcmp(p->txids[i], txid, HUBMSG_TXID_LEN) == 0)
				return p;
	return NULL;
}

/* A probe is answered with an ACK of the same txid, from the socket it
 * came to (an ACK is not answered). */
static void
ack_probe(struct hubnode *hn, void *sock, const struct sockaddr *from,
          socklen_t fromlen, const struct punchmsg *pm)
{
	struct punchmsg ack = *pm;
	uint8_t buf[PUNCHMSG_LEN];

	if (pm->type != PUNCHMSG_PROBE)
		return;
	ack.type = PUNCHMSG_ACK;
	punchmsg_format(&ack, buf);
	send_to(hn, sock, from, fromlen, buf, sizeof buf);
}

/* ---- probes in ---- */

static void
probe_input(struct hubnode *hn, void *sock, const struct sockaddr *from,
            socklen_t fromlen, const struct punchmsg *pm)
{
	struct hubmsg_addr src;
	struct hubpunch *p;

	if (hubmsg_addr_from_sa(&src, from) != 0) {
		hn->probes_bad++;
		return;
	}
	/* A client's punch: the probe or ack of its service. */
	p = punch_for_txid(hn, pm->txid);
	/* Even before the LOOKUP_ANSWER (lost, or slower than the service's
	 * probe): the txid is the lookup's, which only the hub's INTRO told
	 * the service. */
	if (p != NULL && memcmp(p->keyhash, pm->keyhash, 20) == 0 &&
	    punch_is_ours(p, sock)) {
		struct pcand *c = punch_cand_on(p, &src, 0, is_relay(hn, sock));
		hn->probes_in++;
		ack_probe(hn, sock, from, fromlen, pm);
		if (c != NULL && !c->proven) {
			c->proven = 1;
			c->sock = sock;
			c->why[0] = '\0';
			/* A relayed path waits for relay time. */
			if (!pcand_relayed(c) || punch_relay_time(p)) {
				p->found_pending = 1;
				punch_notify(p);
			}
		}
		return;
	}
	/* A service's side: a probe for an INTRO we hold. */
	for (size_t i = 0; i < INTRO_MAX; i++) {
		struct intro *in = &hn->intros[i];
		int mine = in->sock == sock || is_relay(hn, sock), hit = -1;
		for (int k = 0; !mine && k < in->nbsocks; k++)
			if (in->bsocks[k] == sock) {
				mine = 1;
				hit = k;
			}
		if (!in->used || memcmp(in->txid, pm->txid, 8) != 0 ||
		    memcmp(in->keyhash, pm->keyhash, 20) != 0 || !mine)
			continue;
		if (hit >= 0 && in->nbsocks > 1) {
			/* The birthday socket the client reached stays (its
			 * QUIC comes there); the others go at once. */
			for (int k = 0; k < in->nbsocks; k++)
				if (k != hit)
					hn->io.close_sock(hn->io.ctx,
					                  in->bsocks[k]);
			hn->bday_open -= in->nbsocks - 1;
			in->bsocks[0] = sock;
			in->nbsocks = 1;
		}
		hn->probes_in++;
		ack_probe(hn, sock, from, fromlen, pm);
		/* Through a relay (ours, or the client's relayed candidate):
		 * the search for a direct path goes on (relays last). */
		if (!is_relay(hn, sock) && !intro_relayed(in, &src))
			in->answered = 1;
		return;
	}
	hn->probes_bad++;
}

/* ---- input ---- */

int
hubnode_input(struct hubnode *hn, void *sock, const struct sockaddr *from,
              socklen_t fromlen, const uint8_t *buf, size_t len)
{
	struct hubmsg m;
	struct hubmsg_addr src;
	struct hub *h;
	const char *why;

	/* ngtcp2 greases the QUIC bit (RFC 9287: it always offers it, and
	 * a peer may then clear the bit), so a short-header QUIC packet may
	 * start with any byte below 64: a datagram is ours only when it
	 * parses as ours; anything else goes on to QUIC, which drops what
	 * is not its own. */
	if (len == 0 || buf[0] >= 16)
		return 0;
	if (buf[0] == PUNCHMSG_MARK) {
		struct punchmsg pm;
		if (punchmsg_parse(buf, len, &pm) != 0)
			return 0;
		probe_input(hn, sock, from, fromlen, &pm);
		return 1;
	}
	if (hubmsg_demux(buf, len) == 2) {
		/* STUN (its magic cookie, RFC 8489): answers to nobody here
		 * (hlcore nat reads its own) */
		if (len < 20 || buf[4] != 0x21 || buf[5] != 0x12 ||
		    buf[6] != 0xa4 || buf[7] != 0x42)
			return 0;
		hn->unexpected++;
		return 1;
	}
	if (hubmsg_demux(buf, len) != 1 ||
	    hubmsg_parse(buf, len, &m, &why) != 0)
		return 0;
	if (hubmsg_addr_from_sa(&src, from) != 0 ||
	    (h = hub_by_addr(hn, &src)) == NULL) {
		/* Not from one of our hubs; a punch's hub (named by the
		 * dialed candidate, not our config) is matched by txid. */
		struct hubpunch *p = punch_for_txid(hn, m.txid);
		if (p != NULL && hubmsg_addr_eq(&p->hub_addr, &src) &&
		    (m.type == HUBMSG_LOOKUP_ANSWER || m.type == HUBMSG_ERROR))
			punch_answer(p, &m);
		else
			hn->unexpected++;
		return 1;
	}
	if (m.type == HUBMSG_INTRO) {
		intro_input(hn, h, sock, &m);
		return 1;
	}
	if (m.type == HUBMSG_LOOKUP_ANSWER ||
	    (m.type == HUBMSG_ERROR && punch_for_txid(hn, m.txid) != NULL)) {
		struct hubpunch *p = punch_for_txid(hn, m.txid);
		if (p != NULL && hubmsg_addr_eq(&p->hub_addr, &src))
			punch_answer(p, &m);
		else
			hn->unexpected++;
		return 1;
	}
	for (size_t i = 0; i < h->nregs; i++) {
		struct reg *r = &h->regs[i];
		if (memcmp(r->txid, m.txid, HUBMSG_TXID_LEN) == 0 &&
		    r->sock == sock) {
			reg_input(r, &m);
			return 1;
		}
	}
	hn->unexpected++;
	return 1;
}

size_t
hubnode_mappings(const struct hubnode *hn, void *sock,
                 struct sockaddr_storage *server,
                 struct sockaddr_storage *mapped, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < hn->nhubs && n < max; i++)
		for (size_t k = 0; k < hn->hubs[i].nregs; k++) {
			const struct reg *r = &hn->hubs[i].regs[k];
			if (!r->ever || r->sock != sock ||
			    hubmsg_addr_to_sa(&r->observed, &mapped[n]) == 0)
				continue;
			memcpy(&server[n], &hn->hubs[i].ss, hn->hubs[i].sslen);
			n++;
			break;
		}
	return n;
}

void
hubnode_cands_changed(struct hubnode *hn)
{
	/* Those registering now send them once registered (cands_gen). */
	hn->cands_gen++;
	for (size_t i = 0; i < hn->nhubs; i++)
		for (size_t k = 0; k < hn->hubs[i].nregs; k++) {
			struct reg *r = &hn->hubs[i].regs[k];
			if (r->state == REG_OK) {
				r->tries = 0;
				reg_keepalive(r);
			}
		}
}

/* ---- punch API ---- */

struct hubpunch *
hubpunch_start(struct hubnode *hn, const char *keyhash, const char *hubname,
               const struct sockaddr *sa, socklen_t salen,
               hubpunch_found_cb found, hubpunch_over_cb over, void *arg)
{
	struct hubpunch *p;
	struct timeval now = {0, 0};
	uint16_t port = 0;
	void *sock = hn->io.sock_for(hn->io.ctx, sa->sa_family, &port);

	if (sock == NULL || strlen(keyhash) != 40 || salen > sizeof p->hub_ss)
		return NULL;
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return NULL;
	p->hn = hn;
	snprintf(p->keyhash_hex, sizeof p->keyhash_hex, "%s", keyhash);
	snprintf(p->hubname, sizeof p->hubname, "%s", hubname);
	memcpy(&p->hub_ss, sa, salen);
	p->hub_sslen = salen;
	if (hex_to_raw(keyhash, p->keyhash) != 0 ||
	    hubmsg_addr_from_sa(&p->hub_addr, sa) != 0) {
		free(p);
		return NULL;
	}
	p->sock = sock;
	p->port = port;
	p->found = found;
	p->over = over;
	p->arg = arg;
	p->timer = evtimer_new(hn->base, punch_timer_callback, p);
	p->notify = evtimer_new(hn->base, punch_notify_callback, p);
	if (p->timer == NULL || p->notify == NULL) {
		if (p->timer)
			event_free(p->timer);
		if (p->notify)
			event_free(p->notify);
		free(p);
		return NULL;
	}
	HL_LIST_INSERT(hn->punches, p);
	/* The first lookup from the loop, as every later one. */
	evtimer_add(p->timer, &now);
	return p;
}

int
hubpunch_next(struct hubpunch *p, struct sockaddr_storage *ss, socklen_t *salen,
              void **sock, int *relayed)
{
	/* Proven candidates in the order the service gave them (observed
	 * first), then peer-reflexive ones; direct paths, then (at relay
	 * time) relayed ones. */
	for (int pass = 0; pass < 4; pass++)
		for (size_t i = 0; i < p->ncands; i++) {
			struct pcand *c = &p->cands[i];
			if (!c->proven || c->taken ||
			    (pass % 2 == 0) != (c->kind != 0) ||
			    (pass >= 2) != pcand_relayed(c) ||
			    (pcand_relayed(c) && !punch_relay_time(p)))
				continue;
			c->taken = 1;
			*sock = c->sock != NULL ? c->sock : p->sock;
			*relayed = pcand_relayed(c);
			*salen = hubmsg_addr_to_sa(&c->a, ss);
			if (*salen > 0)
				return 0;
		}
	return -1;
}

void
hubpunch_failed(struct hubpunch *p, const struct sockaddr *sa,
                socklen_t salen HL_UNUSED, const char *why)
{
	struct hubmsg_addr a;

	if (hubmsg_addr_from_sa(&a, sa) != 0)
		return;
	for (size_t i = 0; i < p->ncands; i++)
		if (hubmsg_addr_eq(&p->cands[i].a, &a))
			snprintf(p->cands[i].why, sizeof p->cands[i].why,
			         "answered probes, but QUIC failed: %s", why);
}

int
hubpunch_running(const struct hubpunch *p)
{
	return p->state != P_DONE;
}

static const char *
kind_name(uint8_t kind)
{
	switch (kind) {
	case HUBMSG_CAND_HOST:
		return "host";
	case HUBMSG_CAND_SRFLX:
		return "server-reflexive";
	case HUBMSG_CAND_MAPPED:
		return "mapped";
	case HUBMSG_CAND_RELAY:
		return "relayed";
	default:
		return "peer-reflexive";
	}
}

void
hubpunch_report(const struct hubpunch *p, char *out, size_t outlen)
{
	size_t n = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	if (p->lookup_why[0] != '\0') {
		snprintf(out, outlen, "%s", p->lookup_why);
		return;
	}
	if (p->ncands == 0) {
		snprintf(out, outlen, "hub %s: no candidates for the service",
		         p->hubname);
		return;
	}
	n = (size_t)snprintf(out, outlen,
	                     "via hub %s, candidates probed:", p->hubname);
	for (size_t i = 0; i < p->ncands && n < outlen; i++) {
		char a[64];
		const struct pcand *c = &p->cands[i];
		hubmsg_addr_str(&c->a, a, sizeof a);
		n += (size_t)snprintf(out + n, outlen - n, "%s %s (%s%s): %s",
		                      i ? ";" : "", a, kind_name(c->kind),
		                      c->relayed ? ", through our relay" : "",
		                      c->why[0]   ? c->why
		                      : c->proven ? "answered"
		                                  : "probing");
	}
}

void
hubpunch_cancel(struct hubpunch *p)
{
	if (p == NULL)
		return;
	HL_LIST_REMOVE(p);
	event_free(p->timer);
	event_free(p->notify);
	/* The one a QUIC connection uses stays until that ends. */
	for (int i = 0; i < p->nbsocks; i++)
		p->hn->io.close_sock(p->hn->io.ctx, p->bsocks[i]);
	free(p);
}

/* ---- discovery: the configured hubs as candidates ---- */

static void
hq_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct hq *x = arg;
	struct hubnode *hn = x->hn;
	struct hl_query *q = x->q;

	for (size_t i = 0; i < hn->nhubs; i++) {
		char ep[300];
		snprintf(ep, sizeof ep, "hub://%s", hn->hubs[i].name);
		hn->svc->query_candidate(hn->self, q, ep);
	}
	HL_LIST_REMOVE(x);
	event_free(x->ev);
	free(x);
	hn->svc->query_done(hn->self, q);
}

int
hubnode_query_start(struct hubnode *hn, struct hl_query *q)
{
	struct hq *x;

	if (hn->nhubs == 0)
		return -1;
	x = calloc(1, sizeof *x);
	if (x == NULL)
		return -1;
	x->hn = hn;
	x->q = q;
	x->ev = evtimer_new(hn->base, hq_callback, x);
	if (x->ev == NULL) {
		free(x);
		return -1;
	}
	HL_LIST_INSERT(hn->queries, x);
	event_active(x->ev, EV_TIMEOUT, 1);
	return 0;
}

void
hubnode_query_cancel(struct hubnode *hn, struct hl_query *q)
{
	for (struct hq *x = hn->queries; x != NULL; x = x->next)
		if (x->q == q) {
			HL_LIST_REMOVE(x);
			event_free(x->ev);
			free(x);
			return;
		}
}

/* ---- life ---- */

struct hubnode *
hubnode_new(const struct hl_services *svc, struct hl_plugin *self,
            const struct hubnode_io *io)
{
	struct hubnode *hn = calloc(1, sizeof *hn);

	if (hn == NULL)
		return NULL;
	hn->svc = svc;
	hn->self = self;
	hn->base = svc->event_base(self);
	hn->io = *io;
	hn->intro_tick = evtimer_new(hn->base, intro_tick_callback, hn);
	if (hn->intro_tick == NULL) {
		free(hn);
		return NULL;
	}
	return hn;
}

int
hubnode_add_hub(struct hubnode *hn, const char *hostport)
{
	struct hub *h;

	if (hn->nhubs >= HUBNODE_MAX_HUBS || strlen(hostport) == 0 ||
	    strlen(hostport) > HUBMSG_HUBADDR_MAX)
		return -1;
	h = &hn->hubs[hn->nhubs];
	memset(h, 0, sizeof *h);
	if (hl_addr_split(hostport, h->host, sizeof h->host, &h->port) != 0 ||
	    h->port == 0)
		return -1;
	snprintf(h->name, sizeof h->name, "%s", hostport);
	h->hn = hn;
	h->resolve_ev = evtimer_new(hn->base, hub_resolve_callback, h);
	if (h->resolve_ev == NULL)
		return -1;
	hn->nhubs++;
	return 0;
}

size_t
hubnode_hub_count(const struct hubnode *hn)
{
	return hn->nhubs;
}

const char *
hubnode_hub_name(const struct hubnode *hn, size_t i)
{
	return i < hn->nhubs ? hn->hubs[i].name : NULL;
}

void
hubnode_start(struct hubnode *hn, int serve)
{
	size_t nids = serve ? hn->svc->identity_count(hn->self) : 0;

	if (nids > MAX_SERVICES) {
		hn->svc->log(hn->self, HL_LOG_WARN,
		             "%zu services: only the first %d are registered "
		             "with hubs",
		             nids, MAX_SERVICES);
		nids = MAX_SERVICES;
	}
	hn->started = 1;
	for (size_t i = 0; i < hn->nhubs; i++) {
		struct hub *h = &hn->hubs[i];
		struct sockaddr_storage ss;
		int sslen = sizeof ss;

		h->regs = calloc(nids ? nids : 1, sizeof *h->regs);
		if (h->regs == NULL)
			continue;
		for (size_t k = 0; k < nids; k++) {
			struct reg *r = &h->regs[h->nregs];
			r->hn = hn;
			r->hub = h;
			r->id = hn->svc->identity_at(hn->self, k);
			r->state = REG_RESOLVING;
			r->timer = evtimer_new(hn->base, reg_timer_callback, r);
			if (r->id == NULL || r->timer == NULL ||
			    hex_to_raw(r->id->keyhash, r->keyhash) != 0) {
				if (r->timer)
					event_free(r->timer);
				continue;
			}
			h->nregs++;
		}
		if (evutil_parse_sockaddr_port(h->name, (struct sockaddr *)&ss,
		                               &sslen) == 0)
			hub_set_addr(h, (struct sockaddr *)&ss,
			             (socklen_t)sslen);
		else
			event_active(h->resolve_ev, EV_TIMEOUT, 1);
	}
}

void
hubnode_free(struct hubnode *hn)
{
	if (hn == NULL)
		return;
	while (hn->punches != NULL)
		hubpunch_cancel(hn->punches);
	while (hn->queries != NULL) {
		struct hq *x = hn->queries;
		HL_LIST_REMOVE(x);
		event_free(x->ev);
		free(x);
	}
	for (size_t i = 0; i < hn->nhubs; i++) {
		struct hub *h = &hn->hubs[i];
		if (h->req != NULL) {
			struct evdns_getaddrinfo_request *r = h->req;
			h->req = NULL;
			evdns_getaddrinfo_cancel(r);
		}
		event_free(h->resolve_ev);
		for (size_t k = 0; k < h->nregs; k++)
			event_free(h->regs[k].timer);
		free(h->regs);
	}
	if (hn->sprayed > 0 || hn->bday_socks > 0)
		hn->svc->log(hn->self, HL_LOG_DEBUG,
		             "hubs: birthday approach: %lu probes to random "
		             "ports sent (%lu more held back by the rate "
		             "bound), %lu sockets opened",
		             hn->sprayed, hn->spray_limited, hn->bday_socks);
	if (hn->nintros > 0 || hn->malformed > 0 || hn->probes_bad > 0)
		hn->svc->log(hn->self, HL_LOG_DEBUG,
		             "hubs: %lu INTROs, %lu probes in, %lu probes "
		             "dropped, %lu malformed hub messages, %lu "
		             "unexpected",
		             hn->nintros, hn->probes_in, hn->probes_bad,
		             hn->malformed, hn->unexpected);
	for (size_t i = 0; i < INTRO_MAX; i++)
		intro_close_socks(hn, &hn->intros[i]);
	event_free(hn->intro_tick);
	free(hn);
}
