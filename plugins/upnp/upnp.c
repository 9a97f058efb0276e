/*
 * upnp: maps this node's listening TCP ports, and (ABI 1.2) the UDP ports
 * of transport-udp, on the home router, through UPnP IGD (miniupnpc) or,
 * when no IGD answers, NAT-PMP (libnatpmp), and tells the core the
 * router's external address and port: a WANHost for TCP, a typed endpoint
 * "quic://ip:port" for UDP (never a WANHost, which Python peers read).
 * A UDP port asks for the same external port first, like a TCP one.
 *
 * Threads. miniupnpc and libnatpmp block, so one worker thread of this
 * plugin does every network call: discovery, mapping, renewal, deletion.
 * The loop thread only records listeners (port_event) and wakes the
 * worker. The worker hands its results (log lines, WANHosts to add or
 * remove) back as messages drained on the loop through svc->call_on_loop.
 * fini stops the worker, which deletes its mappings within a bounded
 * time, joins it and delivers the last messages itself.
 *
 * Config (plugins: upnp:):
 *   lease: 3600               seconds asked for each mapping (renewed at half)
 *   upnp: true                try UPnP IGD
 *   natpmp: true              try NAT-PMP when no IGD answers
 *   discover_timeout_ms: 2000 how long to wait for an IGD or NAT-PMP answer
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <miniupnpc/miniupnpc.h>
#include <miniupnpc/upnpcommands.h>
#include <miniupnpc/upnperrors.h>
#include <natpmp.h>

/* Needs nothing newer than ABI 1.0, so 1.0 cores load it too (they only
 * tell it of TCP listeners; 1.2 cores call port_event_proto). */
#define HL_PLUGIN_ABI_MINOR 0
#include "hardline/plugin.h"
#include "hardline/util.h"

#define MAX_MAPPINGS 16
#define NEXT_PORTS 10 /* after the same port, try this many more */
#define BACKOFF_MIN_SEC 10 /* first retry after a failure */
#define BACKOFF_MAX_SEC 600 /* retries slow down to this */
#define PERMANENT_RECHECK 1800 /* re-add a permanent (lease 0) mapping */
#define FINI_BUDGET_MS 5000 /* deleting mappings at exit */
#define DESC "hardline"
#define MSG_MAX 512

enum method { M_NONE, M_UPNP, M_NATPMP };

/* What upnpDiscover() looks for, searched all at once. */
static const char *const search_types[] = {
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1",
    "urn:schemas-upnp-org:service:WANIPConnection:1",
    "urn:schemas-upnp-org:service:WANPPPConnection:1",
    "upnp:rootdevice",
    NULL,
};

/*
 * One listener to map. The loop thread creates it (ss, len) and later sets
 * closed, both under the lock; everything else belongs to the worker,
 * which alone unlinks and frees it (or fini, after the join).
 */
struct mapping {
	struct sockaddr_storage ss;
	socklen_t len;
	int udp; /* a UDP listener (transport-udp's QUIC) */
	int closed;
	/* Worker-owned. */
	uint16_t inport;
	char inaddr[INET_ADDRSTRLEN]; /* a specific IPv4 address, or "" */
	int method; /* how it is mapped; M_NONE: not yet */
	int permanent; /* the IGD only grants lease 0 */
	uint16_t extport;
	char reported[64]; /* "<ext-ip>:<ext-port>" sent as a WANHost */
	time_t renew_at; /* monotonic seconds */
	time_t retry_at;
	int backoff;
	struct mapping *next;
};

enum msg_kind { MSG_LOG, MSG_ADD, MSG_REMOVE, MSG_ADD_EP, MSG_REMOVE_EP };

struct msg {
	int kind;
	int level;
	char text[MSG_MAX];
	struct msg *next;
};

struct upnp {
	const struct hl_services *svc;
	struct hl_plugin *self;
	int lease;
	int use_upnp, use_natpmp;
	int discover_ms;

	pthread_t thread;
	int thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* Under lock. */
	int stop;
	int kick;
	struct mapping *maps;
	struct msg *msgs, **msgs_tail;
	int drain_queued;

	/* Worker-owned: the gateway found last. */
	int gw;
	struct UPNPUrls urls;
	struct IGDdatas data;
	char lanaddr[64];
	char extip[INET_ADDRSTRLEN];
	time_t gw_retry_at;
	int gw_backoff;
	char last_problem[MSG_MAX]; /* logged once until it changes */
};

/* Seconds of CLOCK_MONOTONIC, the clock of every renew_at and retry_at. */
static time_t
mono_now(void)
{
	return (time_t)(hl_mono_ms() / 1000);
}

/* ---- messages from the worker to the loop ---- */

static void
deliver(struct upnp *u, struct msg *list)
{
	while (list != NULL) {
		struct msg *next = list->next;
		switch (list->kind) {
		case MSG_LOG:
			u->svc->log(u->self, list->level, "%s", list->text);
			break;
		case MSG_ADD:
			u->svc->wanhost_add(u->self, list->text);
			break;
		case MSG_REMOVE:
			u->svc->wanhost_remove(u->self, list->text);
			break;
		case MSG_ADD_EP:
			if (HL_HAS(u->svc, endpoint_add))
				u->svc->endpoint_add(u->self, list->text);
			break;
		case MSG_REMOVE_EP:
			if (HL_HAS(u->svc, endpoint_remove))
				u->svc->endpoint_remove(u->self, list->text);
			break;
		}
		free(list);
		list = next;
	}
}

static struct msg *
take_msgs(struct upnp *u)
{
	struct msg *list;

	pthread_mutex_lock(&u->lock);
	HL_QUEUE_TAKE_ALL(list, u->msgs, u->msgs_tail);
	u->drain_queued = 0;
	pthread_mutex_unlock(&u->lock);
	return list;
}

/* Runs on the loop thread (call_on_loop). */
static void
drain_on_loop(void *arg)
{
	struct upnp *u = arg;

	deliver(u, take_msgs(u));
}

static void post(struct upnp *u, int kind, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
post(struct upnp *u, int kind, int level, const char *fmt, ...)
{
	struct msg *m = calloc(1, sizeof *m);
	va_list ap;
	int queue;

	if (m == NULL)
		return;
	m->kind = kind;
	m->level = level;
	va_start(ap, fmt);
	vsnprintf(m->text, sizeof m->text, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&u->lock);
	HL_QUEUE_PUSH(u->msgs, u->msgs_tail, m);
	queue = !u->drain_queued && !u->stop;
	if (queue)
		u->drain_queued = 1;
	pthread_mutex_unlock(&u->lock);
	/* When the core is stopping the call is refused; fini delivers
	 * what is left. */
	if (queue && u->svc->call_on_loop(u->self, drain_on_loop, u) != 0) {
		pthread_mutex_lock(&u->lock);
		u->drain_queued = 0;
		pthread_mutex_unlock(&u->lock);
	}
}

/* A problem: a warning the first time, debug while it stays the same. */
static void problem(struct upnp *u, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
problem(struct upnp *u, const char *fmt, ...)
{
	char text[MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (strcmp(text, u->last_problem) == 0) {
		post(u, MSG_LOG, HL_LOG_DEBUG, "still: %s", text);
		return;
	}
	snprintf(u->last_problem, sizeof u->last_problem, "%s", text);
	post(u, MSG_LOG, HL_LOG_WARN, "%s", text);
}

static void
problem_solved(struct upnp *u)
{
	if (u->last_problem[0] != '\0')
		post(u, MSG_LOG, HL_LOG_INFO, "recovered from: %s",
		     u->last_problem);
	u->last_problem[0] = '\0';
}

/* ---- the gateway ---- */

static const char *
upnp_error_text(int rc)
{
	const char *s = strupnperror(rc);

	return s ? s : "unknown error";
}

/* A printable, usable external IPv4 address from the router, or -1. */
static int
check_extip(const char *ip)
{
	struct in_addr a;

	if (inet_pton(AF_INET, ip, &a) != 1)
		return -1;
	if (a.s_addr == htonl(INADDR_ANY) || a.s_addr == htonl(INADDR_NONE))
		return -1;
	return 0;
}

static int
is_private_v4(const char *ip)
{
	struct in_addr a;
	uint32_t h;

	if (inet_pton(AF_INET, ip, &a) != 1)
		return 0;
	h = ntohl(a.s_addr);
	return (h >> 24) == 10 || (h >> 20) == (172 << 4 | 1) ||
	       (h >> 16) == (192 << 8 | 168) || (h >> 22) == (100 << 2 | 1);
}

static void
gw_forget(struct upnp *u)
{
	if (u->gw == M_UPNP)
		FreeUPNPUrls(&u->urls);
	u->gw = M_NONE;
	u->extip[0] = '\0';
}

/*
 * One NAT-PMP exchange with the default gateway: a public address request
 * (map == 0) or a TCP mapping request. Waits at most timeout_ms. Returns 0
 * with resp filled, or a NATPMP_ERR_* code (NATPMP_TRYAGAIN: no answer).
 */
static int
natpmp_exchange(int map, int udp, uint16_t priv, uint16_t pub,
                uint32_t lifetime, natpmpresp_t *resp, int timeout_ms)
{
	long long deadline = hl_mono_ms() + timeout_ms;
	natpmp_t n;
	int r;

	r = initnatpmp(&n, 0, 0);
	if (r < 0)
		return r;
	r = map ? sendnewportmappingrequest(
	              &n, udp ? NATPMP_PROTOCOL_UDP : NATPMP_PROTOCOL_TCP, priv,
	              pub, lifetime)
	        : sendpublicaddressrequest(&n);
	if (r < 0)
		goto out;
	do {
		struct timeval tv;
		struct pollfd pfd = {.fd = n.s, .events = POLLIN};
		long long left = deadline - hl_mono_ms(), wait;

		if (left <= 0) {
			r = NATPMP_TRYAGAIN;
			break;
		}
		if (getnatpmprequesttimeout(&n, &tv) < 0)
			tv.tv_sec = 0, tv.tv_usec = 250000;
		wait = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
		if (wait > left)
			wait = left;
		if (wait < 1)
			wait = 1;
		poll(&pfd, 1, (int)wait);
		r = readnatpmpresponseorretry(&n, resp);
	} while (r == NATPMP_TRYAGAIN);
out:
	closenatpmp(&n);
	return r;
}

static const char *
natpmp_error_text(int r)
{
	switch (r) {
	case NATPMP_TRYAGAIN:
		return "no answer";
	case NATPMP_ERR_CANNOTGETGATEWAY:
		return "no default gateway";
	case NATPMP_ERR_NOGATEWAYSUPPORT:
		return "the gateway does not support NAT-PMP";
	case NATPMP_ERR_NOTAUTHORIZED:
		return "not authorized";
	case NATPMP_ERR_NETWORKFAILURE:
		return "the gateway has no external connection";
	case NATPMP_ERR_OUTOFRESOURCES:
		return "the gateway is out of resources";
	case NATPMP_ERR_UNSUPPORTEDVERSION:
	case NATPMP_ERR_UNSUPPORTEDOPCODE:
	case NATPMP_ERR_UNDEFINEDERROR:
		return "the gateway sent an error";
	case NATPMP_ERR_RECVFROM:
		return "nothing listens on the gateway's NAT-PMP port";
	case NATPMP_ERR_WRONGPACKETSOURCE:
		return "an answer from another host than the gateway";
	default:
		return "a socket error";
	}
}

/* Find an IGD, else a NAT-PMP gateway. 0, or -1 (reported). */
static int
gw_discover(struct upnp *u)
{
	char why_upnp[200] = "UPnP is off", why_pmp[200] = "NAT-PMP is off";
	long long t0 = hl_mono_ms();

	gw_forget(u);
	if (u->use_upnp) {
		int err = 0, rc, ok, down;
		int quick = u->discover_ms > 500 ? 500 : u->discover_ms;
		/* Every search type at once (searchalltypes = 1), so that the
		 * wait is one delay, not one per type. miniupnpc waits the
		 * whole delay after the last answer: ask with a short one
		 * first, as a router on the LAN answers at once. */
		struct UPNPDev *devs =
		    upnpDiscoverDevices(search_types, quick, NULL, NULL,
		                        UPNP_LOCAL_PORT_ANY, 0, 2, &err, 1);

		if (devs == NULL && u->discover_ms > quick)
			devs = upnpDiscoverDevices(
			    search_types, u->discover_ms - quick, NULL, NULL,
			    UPNP_LOCAL_PORT_ANY, 0, 2, &err, 1);
		if (devs == NULL) {
			snprintf(why_upnp, sizeof why_upnp,
			         "no UPnP IGD answered within %d ms",
			         u->discover_ms);
		} else {
			memset(&u->urls, 0, sizeof u->urls);
			memset(&u->data, 0, sizeof u->data);
#if MINIUPNPC_API_VERSION >= 18
			/* 1 connected, 2 connected with a reserved address,
			 * 3 not connected, 4 not an IGD. */
			rc = UPNP_GetValidIGD(devs, &u->urls, &u->data,
			                      u->lanaddr, sizeof u->lanaddr,
			                      NULL, 0);
			ok = rc >= 1 && rc <= 3;
			down = rc == 3;
#else
			/* 1 connected, 2 not connected, 3 not an IGD. */
			rc = UPNP_GetValidIGD(devs, &u->urls, &u->data,
			                      u->lanaddr, sizeof u->lanaddr);
			ok = rc == 1 || rc == 2;
			down = rc == 2;
#endif
			freeUPNPDevlist(devs);
			if (ok) {
				u->gw = M_UPNP;
				if (down)
					post(u, MSG_LOG, HL_LOG_INFO,
					     "the IGD at %s does not look "
					     "connected; trying it anyway",
					     u->urls.controlURL);
				post(u, MSG_LOG, HL_LOG_INFO,
				     "UPnP IGD found in %lld ms: %s (our "
				     "address %s)",
				     hl_mono_ms() - t0, u->urls.controlURL,
				     u->lanaddr);
				return 0;
			}
			if (rc != 0)
				FreeUPNPUrls(&u->urls);
			snprintf(why_upnp, sizeof why_upnp,
			         "UPnP devices answered but none is a usable "
			         "IGD");
		}
	}
	if (u->use_natpmp) {
		natpmpresp_t resp;
		int r = natpmp_exchange(0, 0, 0, 0, 0, &resp, u->discover_ms);

		if (r == 0 && resp.type == NATPMP_RESPTYPE_PUBLICADDRESS) {
			inet_ntop(AF_INET, &resp.pnu.publicaddress.addr,
			          u->extip, sizeof u->extip);
			u->gw = M_NATPMP;
			post(u, MSG_LOG, HL_LOG_INFO,
			     "NAT-PMP gateway found in %lld ms (external "
			     "address %s)",
			     hl_mono_ms() - t0, u->extip);
			return 0;
		}
		snprintf(why_pmp, sizeof why_pmp, "NAT-PMP: %s",
		         r == 0 ? "a bad or unexpected answer"
		                : natpmp_error_text(r));
	}
	problem(u, "no router to map ports on (%s; %s); will retry", why_upnp,
	        why_pmp);
	return -1;
}

/* The external address, fresh from the gateway. 0, or -1 (reported). */
static int
gw_extip(struct upnp *u)
{
	char ip[64] = "";

	if (u->gw == M_UPNP) {
		int rc = UPNP_GetExternalIPAddress(
		    u->urls.controlURL, u->data.first.servicetype, ip);
		if (rc != UPNPCOMMAND_SUCCESS) {
			problem(u,
			        "the IGD did not tell its external address: "
			        "%s (%d)",
			        upnp_error_text(rc), rc);
			return -1;
		}
	} else {
		natpmpresp_t resp;
		int r = natpmp_exchange(0, 0, 0, 0, 0, &resp, u->discover_ms);
		if (r != 0 || resp.type != NATPMP_RESPTYPE_PUBLICADDRESS) {
			problem(u, "NAT-PMP: no external address: %s",
			        r ? natpmp_error_text(r) : "a bad answer");
			return -1;
		}
		inet_ntop(AF_INET, &resp.pnu.publicaddress.addr, ip, sizeof ip);
	}
	ip[sizeof ip - 1] = '\0';
	if (check_extip(ip) != 0) {
		problem(u,
		        "the router's external address is not usable "
		        "(\"%.40s\")",
		        ip);
		return -1;
	}
	if (is_private_v4(ip) && strcmp(ip, u->extip) != 0)
		post(u, MSG_LOG, HL_LOG_WARN,
		     "the router's external address %s is private (a NAT "
		     "behind another NAT?): only hosts on that network can "
		     "use it",
		     ip);
	snprintf(u->extip, sizeof u->extip, "%s", ip);
	return 0;
}

/* ---- one mapping ---- */

static void
report(struct upnp *u, struct mapping *m, const char *addr)
{
	char ep[80];

	if (strcmp(m->reported, addr) == 0)
		return;
	/* A UDP port is transport-udp's: a typed endpoint, so that neither
	 * a Python peer nor transport-tls tries it over TCP. */
	if (m->reported[0] != '\0') {
		snprintf(ep, sizeof ep, "quic://%s", m->reported);
		post(u, m->udp ? MSG_REMOVE_EP : MSG_REMOVE, 0, "%s",
		     m->udp ? ep : m->reported);
	}
	snprintf(m->reported, sizeof m->reported, "%s", addr);
	if (addr[0] != '\0') {
		snprintf(ep, sizeof ep, "quic://%s", addr);
		post(u, m->udp ? MSG_ADD_EP : MSG_ADD, 0, "%s",
		     m->udp ? ep : addr);
	}
}

static void
unmap(struct upnp *u, struct mapping *m)
{
	const char *what = NULL; /* the kind of mapping removed */
	char ext[8], why[MSG_MAX];
	int rc, ok = 0;

	if (m->method == M_UPNP && u->gw == M_UPNP) {
		snprintf(ext, sizeof ext, "%u", m->extport);
		rc = UPNP_DeletePortMapping(u->urls.controlURL,
		                            u->data.first.servicetype, ext,
		                            m->udp ? "UDP" : "TCP", NULL);
		ok = rc == UPNPCOMMAND_SUCCESS;
		what = "mapping";
		snprintf(why, sizeof why, "%s (%d)", upnp_error_text(rc), rc);
	} else if (m->method == M_NATPMP) {
		natpmpresp_t resp;
		rc = natpmp_exchange(1, m->udp, m->inport, 0, 0, &resp,
		                     u->discover_ms);
		ok = rc == 0;
		what = "NAT-PMP mapping";
		snprintf(why, sizeof why, "%s", natpmp_error_text(rc));
	}
	if (what != NULL && ok)
		post(u, MSG_LOG, HL_LOG_INFO,
		     "removed the %s of external port %u", what, m->extport);
	else if (what != NULL)
		post(u, MSG_LOG, HL_LOG_WARN,
		     "could not remove the %s of external port %u: %s", what,
		     m->extport, why);
	m->method = M_NONE;
	report(u, m, "");
}

/* Map m through UPnP; 0, or -1 (reported). Renewal tries only the port it
 * has; a first mapping tries the same port, then the next ones. */
static int
map_upnp(struct upnp *u, struct mapping *m)
{
	const char *client = m->inaddr[0] ? m->inaddr : u->lanaddr;
	unsigned first = m->method == M_UPNP ? m->extport : m->inport;
	unsigned last = m->method == M_UPNP ? first : first + NEXT_PORTS;
	char in[8], ext[8], lease[16];
	int rc = UPNPCOMMAND_UNKNOWN_ERROR;

	if (last > 65535)
		last = 65535;
	snprintf(in, sizeof in, "%u", m->inport);
	for (unsigned p = first; p <= last; p++) {
		snprintf(ext, sizeof ext, "%u", p);
		snprintf(lease, sizeof lease, "%d",
		         m->permanent ? 0 : u->lease);
		rc = UPNP_AddPortMapping(
		    u->urls.controlURL, u->data.first.servicetype, ext, in,
		    client, DESC, m->udp ? "UDP" : "TCP", NULL, lease);
		if (rc == 725 && !m->permanent) {
			/* OnlyPermanentLeasesSupported: ask again for lease 0
			 * (removed at exit, re-added now and then). */
			m->permanent = 1;
			snprintf(lease, sizeof lease, "0");
			rc = UPNP_AddPortMapping(
			    u->urls.controlURL, u->data.first.servicetype, ext,
			    in, client, DESC, m->udp ? "UDP" : "TCP", NULL,
			    lease);
		}
		if (rc == UPNPCOMMAND_SUCCESS) {
			int renewed = m->method == M_UPNP;
			m->method = M_UPNP;
			m->extport = (uint16_t)p;
			m->renew_at =
			    mono_now() +
			    (m->permanent ? PERMANENT_RECHECK : u->lease / 2);
			post(u, MSG_LOG, HL_LOG_INFO,
			     "%s external %s port %u -> %s:%u over UPnP "
			     "(lease %s s)",
			     renewed ? "renewed" : "mapped",
			     m->udp ? "UDP" : "TCP", p, client, m->inport,
			     lease);
			return 0;
		}
		if (rc != 718) /* ConflictInMappingEntry: try the next */
			break;
	}
	if (m->method == M_UPNP) {
		/* The port we had is gone (the router restarted and someone
		 * else took it?): start again from the same port. */
		m->method = M_NONE;
		report(u, m, "");
		if (rc == 718)
			return map_upnp(u, m);
	}
	if (rc == 718)
		problem(u, "UPnP: external ports %u-%u are all taken", first,
		        last);
	else
		problem(u, "UPnP: mapping port %u for %s failed: %s (%d)",
		        m->inport, client, upnp_error_text(rc), rc);
	if (rc < 0) /* no answer, or garbage: find the router again */
		gw_forget(u);
	return -1;
}

static int
map_natpmp(struct upnp *u, struct mapping *m)
{
	natpmpresp_t resp;
	uint16_t want = m->method == M_NATPMP ? m->extport : m->inport;
	int r = natpmp_exchange(1, m->udp, m->inport, want, (uint32_t)u->lease,
	                        &resp, u->discover_ms);
	uint32_t life;
	int renewed = m->method == M_NATPMP;

	if (r != 0 ||
	    resp.type != (m->udp ? NATPMP_RESPTYPE_UDPPORTMAPPING
	                         : NATPMP_RESPTYPE_TCPPORTMAPPING) ||
	    resp.pnu.newportmapping.privateport != m->inport ||
	    resp.pnu.newportmapping.mappedpublicport == 0) {
		problem(u, "NAT-PMP: mapping port %u failed: %s", m->inport,
		        r ? natpmp_error_text(r) : "a bad answer");
		if (r != NATPMP_ERR_NOTAUTHORIZED &&
		    r != NATPMP_ERR_OUTOFRESOURCES)
			gw_forget(u);
		return -1;
	}
	life = resp.pnu.newportmapping.lifetime;
	if (life < 60)
		life = 60;
	if (renewed && m->extport != resp.pnu.newportmapping.mappedpublicport)
		renewed = 0;
	m->method = M_NATPMP;
	m->extport = resp.pnu.newportmapping.mappedpublicport;
	m->renew_at = mono_now() + life / 2;
	post(u, MSG_LOG, HL_LOG_INFO,
	     "%s external %s port %u -> port %u over NAT-PMP (lease %u s)",
	     renewed ? "renewed" : "mapped", m->udp ? "UDP" : "TCP", m->extport,
	     m->inport, (unsigned)life);
	return 0;
}

static void
map_one(struct upnp *u, struct mapping *m)
{
	char addr[64];
	int rc;

	if (m->method != M_NONE && m->method != u->gw) {
		/* Mapped through a gateway we lost; map again. */
		m->method = M_NONE;
		report(u, m, "");
	}
	rc = u->gw == M_UPNP ? map_upnp(u, m) : map_natpmp(u, m);
	if (rc == 0)
		rc = gw_extip(u);
	if (rc != 0) {
		m->backoff = m->backoff ? m->backoff * 2 : BACKOFF_MIN_SEC;
		if (m->backoff > BACKOFF_MAX_SEC)
			m->backoff = BACKOFF_MAX_SEC;
		/* Mapped but no usable external address: ask again soon. */
		if (m->method != M_NONE)
			m->renew_at = mono_now() + m->backoff;
		else
			m->retry_at = mono_now() + m->backoff;
		return;
	}
	m->backoff = 0;
	problem_solved(u);
	snprintf(addr, sizeof addr, "%s:%u", u->extip, m->extport);
	report(u, m, addr);
}

/* ---- the worker ---- */

/* Remove closed mappings from the list; returns them, linked. */
static struct mapping *
take_closed(struct upnp *u)
{
	struct mapping *closed = NULL, **pp;

	pthread_mutex_lock(&u->lock);
	for (pp = &u->maps; *pp != NULL;) {
		struct mapping *m = *pp;
		if (m->closed) {
			*pp = m->next;
			m->next = closed;
			closed = m;
		} else {
			pp = &m->next;
		}
	}
	pthread_mutex_unlock(&u->lock);
	return closed;
}

/* One round of work; returns when the worker should next wake. */
static time_t
work(struct upnp *u)
{
	struct mapping *arr[MAX_MAPPINGS], *closed;
	size_t n = 0;
	time_t now, next;

	closed = take_closed(u);
	while (closed != NULL) {
		struct mapping *m = closed;
		closed = m->next;
		if (m->method != M_NONE)
			unmap(u, m);
		else
			report(u, m, "");
		free(m);
	}
	/* The loop only appends and sets closed; only this thread frees. */
	pthread_mutex_lock(&u->lock);
	for (struct mapping *m = u->maps; m != NULL && n < MAX_MAPPINGS;
	     m = m->next)
		if (!m->closed)
			arr[n++] = m;
	pthread_mutex_unlock(&u->lock);

	now = mono_now();
	next = now + 3600;
	for (size_t i = 0; i < n; i++) {
		struct mapping *m = arr[i];
		int due = m->method == M_NONE ? now >= m->retry_at
		                              : now >= m->renew_at;
		if (!due)
			continue;
		if (u->gw == M_NONE) {
			if (now < u->gw_retry_at)
				break;
			if (gw_discover(u) != 0) {
				u->gw_backoff = u->gw_backoff
				                    ? u->gw_backoff * 2
				                    : BACKOFF_MIN_SEC;
				if (u->gw_backoff > BACKOFF_MAX_SEC)
					u->gw_backoff = BACKOFF_MAX_SEC;
				u->gw_retry_at = mono_now() + u->gw_backoff;
				break;
			}
			u->gw_backoff = 0;
		}
		map_one(u, m);
		now = mono_now();
	}
	for (size_t i = 0; i < n; i++) {
		struct mapping *m = arr[i];
		time_t t = m->method == M_NONE ? m->retry_at : m->renew_at;
		if (u->gw == M_NONE && u->gw_retry_at > t)
			t = u->gw_retry_at;
		if (t < next)
			next = t;
	}
	/* Whatever was due has been tried: never spin. */
	return next > now ? next : now + 1;
}

/* At exit: delete every mapping, within FINI_BUDGET_MS in all. */
static void
teardown(struct upnp *u)
{
	long long deadline = hl_mono_ms() + FINI_BUDGET_MS;
	struct mapping *m;

	pthread_mutex_lock(&u->lock);
	m = u->maps;
	u->maps = NULL;
	pthread_mutex_unlock(&u->lock);
	while (m != NULL) {
		struct mapping *next = m->next;
		if (m->method != M_NONE && hl_mono_ms() < deadline)
			unmap(u, m);
		else if (m->method != M_NONE)
			post(u, MSG_LOG, HL_LOG_WARN,
			     "out of time: the mapping of external port %u is "
			     "left to expire",
			     m->extport);
		report(u, m, "");
		free(m);
		m = next;
	}
	gw_forget(u);
}

static void *
worker(void *arg)
{
	struct upnp *u = arg;

	pthread_mutex_lock(&u->lock);
	while (!u->stop) {
		time_t next;
		struct timespec ts;

		u->kick = 0;
		pthread_mutex_unlock(&u->lock);
		next = work(u);
		pthread_mutex_lock(&u->lock);
		if (u->stop || u->kick)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		if (next > ts.tv_sec) {
			ts.tv_sec = next;
			ts.tv_nsec = 0;
			pthread_cond_timedwait(&u->cond, &u->lock, &ts);
		}
	}
	pthread_mutex_unlock(&u->lock);
	teardown(u);
	return NULL;
}

static void
wake(struct upnp *u)
{
	pthread_mutex_lock(&u->lock);
	u->kick = 1;
	pthread_cond_signal(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

/* ---- the loop side ---- */

/*
 * The port and, for a listener on one IPv4 address, that address (the
 * internal client of the mapping). -1 for a listener that cannot be
 * mapped: not TCP over IPv4, or on one IPv6 address.
 */
static int
listener_target(const struct sockaddr *sa, uint16_t *port, char *inaddr,
                size_t inlen)
{
	inaddr[0] = '\0';
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;
		*port = ntohs(s4->sin_port);
		if (s4->sin_addr.s_addr != htonl(INADDR_ANY))
			inet_ntop(AF_INET, &s4->sin_addr, inaddr,
			          (socklen_t)inlen);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		*port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			return 0;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], inaddr,
			          (socklen_t)inlen);
			return 0;
		}
	}
	return -1;
}

static void
port_event(struct upnp *u, const struct sockaddr *sa, socklen_t salen, int udp,
           int open)
{
	struct mapping *m, **pp;
	char inaddr[INET_ADDRSTRLEN];
	uint16_t port;
	size_t n = 0;

	if (salen > sizeof(struct sockaddr_storage))
		return;
	if (!open) {
		pthread_mutex_lock(&u->lock);
		for (m = u->maps; m != NULL; m = m->next)
			if (!m->closed && m->len == salen && m->udp == udp &&
			    memcmp(&m->ss, sa, salen) == 0)
				m->closed = 1;
		pthread_mutex_unlock(&u->lock);
		wake(u);
		return;
	}
	if (hl_sockaddr_is_loopback(sa)) {
		u->svc->log(u->self, HL_LOG_DEBUG,
		            "not mapping a listener on a loopback address");
		return;
	}
	if (listener_target(sa, &port, inaddr, sizeof inaddr) != 0 ||
	    port == 0) {
		u->svc->log(
		    u->self, HL_LOG_DEBUG,
		    "not mapping a listener on one IPv6 address (IGD port "
		    "mappings are IPv4)");
		return;
	}
	pthread_mutex_lock(&u->lock);
	for (pp = &u->maps; *pp != NULL; pp = &(*pp)->next) {
		if (!(*pp)->closed && (*pp)->inport == port &&
		    (*pp)->udp == udp) {
			pthread_mutex_unlock(&u->lock);
			u->svc->log(u->self, HL_LOG_INFO,
			            "%s port %u is mapped already for another "
			            "listener",
			            udp ? "UDP" : "TCP", port);
			return;
		}
		n++;
	}
	if (n >= MAX_MAPPINGS || (m = calloc(1, sizeof *m)) == NULL) {
		pthread_mutex_unlock(&u->lock);
		u->svc->log(u->self, HL_LOG_WARN,
		            "not mapping port %u: too many listeners", port);
		return;
	}
	memcpy(&m->ss, sa, salen);
	m->len = salen;
	m->udp = udp;
	m->inport = port;
	snprintf(m->inaddr, sizeof m->inaddr, "%s", inaddr);
	*pp = m;
	pthread_mutex_unlock(&u->lock);
	wake(u);
}

/* A 1.0/1.1 core: TCP listeners only. */
static void
upnp_port_event(void *state, const struct sockaddr *sa, socklen_t salen,
                int open)
{
	port_event(state, sa, salen, 0, open);
}

/* A 1.2 core: every listener, with its protocol. */
static void
upnp_port_event_proto(void *state, const struct sockaddr *sa, socklen_t salen,
                      int proto, int open)
{
	if (proto == HL_PROTO_TCP || proto == HL_PROTO_UDP)
		port_event(state, sa, salen, proto == HL_PROTO_UDP, open);
}

/* ---- config ---- */

static int
conf_bool(const struct hl_services *svc, struct hl_plugin *self,
          const struct hl_conf *conf, const char *key, int *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};
	const struct hl_conf *n = svc->conf_get(conf, key);
	const char *s;

	if (n == NULL)
		return 0;
	s = svc->conf_str(n);
	for (size_t i = 0; s != NULL && i < 3; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	svc->conf_error(self, n, "%s: expected true or false", key);
	return -1;
}

static int
read_conf(const struct hl_services *svc, struct hl_plugin *self,
          const struct hl_conf *conf, struct upnp *u)
{
	static const char *const allowed[] = {"lease", "upnp", "natpmp",
	                                      "discover_timeout_ms", NULL};
	int bad = 0;

	u->lease = 3600;
	u->use_upnp = 1;
	u->use_natpmp = 1;
	u->discover_ms = 2000;
	if (conf == NULL)
		return 0;
	bad += svc->conf_check_keys(self, conf, allowed);
	if (svc->conf_type(conf) != HL_CONF_MAP)
		return -1;
	bad +=
	    hl_conf_int(svc, self, conf, "lease", 60, 604800, &u->lease) != 0;
	bad += conf_bool(svc, self, conf, "upnp", &u->use_upnp) != 0;
	bad += conf_bool(svc, self, conf, "natpmp", &u->use_natpmp) != 0;
	bad += hl_conf_int(svc, self, conf, "discover_timeout_ms", 100, 30000,
	                   &u->discover_ms) != 0;
	if (!bad && !u->use_upnp && !u->use_natpmp) {
		svc->conf_error(
		    self, conf,
		    "upnp and natpmp are both false: nothing to map with "
		    "(remove the plugin instead)");
		bad++;
	}
	return bad ? -1 : 0;
}

static int
upnp_validate(const struct hl_services *svc, struct hl_plugin *self,
              const struct hl_conf *conf)
{
	struct upnp u;

	memset(&u, 0, sizeof u);
	return read_conf(svc, self, conf, &u);
}

/* ---- init and fini ---- */

static void upnp_fini(void *state);

static int
upnp_init(const struct hl_services *svc, struct hl_plugin *self,
          const struct hl_conf *conf, void **state)
{
	struct upnp *u = calloc(1, sizeof *u);
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	if (u == NULL)
		return -1;
	u->svc = svc;
	u->self = self;
	HL_QUEUE_INIT(u->msgs, u->msgs_tail);
	if (read_conf(svc, self, conf, u) != 0) {
		free(u);
		return -1;
	}
	pthread_mutex_init(&u->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&u->cond, &ca);
	pthread_condattr_destroy(&ca);
	/* Signals go to the loop thread, never to the worker. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&u->thread, NULL, worker, u);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		svc->log(self, HL_LOG_ERROR, "cannot start a thread: %s",
		         strerror(rc));
		upnp_fini(u);
		return -1;
	}
	u->thread_started = 1;
	svc->log(self, HL_LOG_DEBUG,
	         "lease %d s, UPnP %s, NAT-PMP %s, discovery within %d ms",
	         u->lease, u->use_upnp ? "on" : "off",
	         u->use_natpmp ? "on" : "off", u->discover_ms);
	*state = u;
	return 0;
}

static void
upnp_fini(void *state)
{
	struct upnp *u = state;
	long long t0 = hl_mono_ms();

	if (u->thread_started) {
		pthread_mutex_lock(&u->lock);
		u->stop = 1;
		pthread_cond_signal(&u->cond);
		pthread_mutex_unlock(&u->lock);
		pthread_join(u->thread, NULL);
		u->svc->log(u->self, HL_LOG_DEBUG, "stopped in %lld ms",
		            hl_mono_ms() - t0);
	}
	/* The worker is gone: deliver what it left (logs, removals). */
	deliver(u, take_msgs(u));
	while (u->maps != NULL) {
		struct mapping *m = u->maps;
		u->maps = m->next;
		free(m);
	}
	pthread_cond_destroy(&u->cond);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

static const struct hl_traversal_ops upnp_traversal = {
    .size = sizeof(struct hl_traversal_ops),
    .port_event = upnp_port_event,
    .port_event_proto = upnp_port_event_proto,
};

HL_PLUGIN(HL_KIND_TRAVERSAL, .name = "upnp", .version = "0.1.0",
          .description =
              "maps listening ports on the router (UPnP IGD, NAT-PMP) "
              "and adds the external address to WANHosts",
          .default_priority = 50, .init = upnp_init, .fini = upnp_fini,
          .validate = upnp_validate, .traversal = &upnp_traversal);
