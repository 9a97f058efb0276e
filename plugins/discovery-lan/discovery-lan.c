/*
 * discovery-lan: the Hardline LAN search and announce (docs/protocol.md,
 * "LAN discovery") on 239.192.152.143:6771, wire-compatible with the original
 * Python Hardline, without announcing passwords unless a service opts in.
 *
 * Two sockets, both on the core's loop:
 *  - rx, bound to 0.0.0.0:<port> with SO_REUSEADDR and SO_REUSEPORT and
 *    joined to the group on every usable interface, so that several
 *    hlcore (and Python Hardline) processes on one host all hear the
 *    group;
 *  - tx, on an ephemeral port: every search, answer and announce leaves
 *    from it, so unicast answers to our searches come back to this
 *    process and not to whichever holds 6771.
 * Both ask for IP_PKTINFO, so each datagram is judged by the interface it
 * came in on: only a sender on a directly connected subnet of that
 * interface (or this host itself) is answered or believed.
 *
 * Config (plugins: discovery-lan:):
 *   interfaces: [eth0]        default: every multicast-capable IPv4 one
 *   port: 6771                any other value breaks compatibility
 *   announce_interval: 0      seconds between unsolicited announces; 0 off
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/util.h>
#include <sodium.h>

#include "hardline/plugin.h"
#include "hardline/evutil.h"
#include "hardline/util.h"
#include "lanpacket.h"

#define LAN_GROUP "239.192.152.143"
#define LAN_DEFAULT_PORT 6771

#define MAX_IFS 32
#define MAX_IF_ADDRS 8
#define MAX_WANT_IFS 16
#define MAX_LISTENERS 16
#define CACHE_MAX 256
#define CACHE_SEC 90
#define SEARCH_REPEAT_MS 250 /* a second search, for a lost datagram */
#define QUERY_WAIT_MS 1000 /* then the query is done */
#define QUERY_AFTER_ANSWER_MS 150 /* done this long after the first answer */
#define IF_REFRESH_SEC 10
#define IF_REFRESH_MIN_MS 1000 /* on demand, at most this often */
#define READS_PER_EVENT 64

/* Token buckets, in thousandths of a token: per source and overall. */
#define RATE_SOURCES 64
#define ANSWER_BURST 16
#define ANSWER_PER_SEC 8
#define ANSWER_ALL_BURST 64
#define ANSWER_ALL_PER_SEC 32
#define HEARD_BURST 64
#define HEARD_PER_SEC 32

struct lan_if {
	int index;
	char name[IFNAMSIZ];
	int usable; /* up, multicast, not loopback, wanted */
	int naddrs;
	struct in_addr addr[MAX_IF_ADDRS];
	struct in_addr mask[MAX_IF_ADDRS];
};

struct lan_listener {
	int family; /* AF_INET or AF_INET6 */
	int any; /* 0.0.0.0 or [::] (dual-stack) */
	struct in_addr addr; /* AF_INET (or v4-mapped), when not any */
	int port;
};

struct cache_entry {
	char keyhash[41];
	char addr[INET_ADDRSTRLEN + 8];
	uint64_t when_ms; /* 0: free */
};

struct bucket {
	struct in_addr src;
	struct hl_rate rate;
};

struct svc_codes {
	unsigned char raw[20];
	int ok;
	uint64_t day; /* the codes below are for day-1, day, day+1 */
	char code[3][41];
};

struct lan;

struct lan_query {
	struct lan *lan;
	struct hl_query *q;
	char keyhash[41];
	struct event *timer;
	int repeated;
	int answered;
	unsigned long last_report; /* the announce last reported to it */
	struct lan_query *next, **prevp;
};

struct lan {
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct event_base *base;

	int port;
	int announce_interval;
	char want[MAX_WANT_IFS][IFNAMSIZ];
	int nwant;
	int warned_missing;

	int rx, tx;
	struct event *rx_ev, *tx_ev, *refresh_ev, *announce_ev, *browse_ev;
	struct in_addr group;
	char cookie[33];

	struct lan_if ifs[MAX_IFS]; /* every interface with an IPv4 address */
	int nifs;
	int joined[MAX_IFS]; /* ifindexes joined to the group */
	int njoined;
	uint64_t ifs_ms;

	struct lan_listener listeners[MAX_LISTENERS];
	int nlisteners;
	int warned_no_port;

	struct svc_codes *codes;
	size_t ncodes;

	struct cache_entry cache[CACHE_MAX];
	struct bucket answer_src[RATE_SOURCES];
	struct bucket heard_src[RATE_SOURCES];
	struct hl_rate answer_all;

	struct lan_query *queries;
	unsigned long announce_seq;

	unsigned char buf[LAN_PACKET_MAX + 1];

	struct {
		unsigned long received, malformed, own, foreign, rate_limited;
		unsigned long searches_answered, announces_sent;
		unsigned long announces_heard, searches_sent, send_errors;
	} st;
};

/* ---- rate limits ---- */

/* The source's bucket, taking over the longest-idle one when new. */
static struct bucket *
bucket_for(struct bucket *tab, struct in_addr src)
{
	struct bucket *oldest = &tab[0];

	for (int i = 0; i < RATE_SOURCES; i++) {
		if (tab[i].rate.last_ms != 0 && tab[i].src.s_addr == src.s_addr)
			return &tab[i];
		if (tab[i].rate.last_ms < oldest->rate.last_ms)
			oldest = &tab[i];
	}
	memset(oldest, 0, sizeof *oldest);
	oldest->src = src;
	return oldest;
}

/* ---- interfaces ---- */

static int
wanted(struct lan *l, const char *name)
{
	if (l->nwant == 0)
		return 1;
	for (int i = 0; i < l->nwant; i++)
		if (strcmp(l->want[i], name) == 0)
			return 1;
	return 0;
}

static void
join_group(struct lan *l, struct lan_if *ifp)
{
	struct ip_mreqn mr;

	for (int i = 0; i < l->njoined; i++)
		if (l->joined[i] == ifp->index)
			return;
	if (l->njoined == MAX_IFS)
		return;
	memset(&mr, 0, sizeof mr);
	mr.imr_multiaddr = l->group;
	mr.imr_ifindex = ifp->index;
	if (setsockopt(l->rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) !=
	        0 &&
	    errno != EADDRINUSE) {
		l->svc->log(l->self, HL_LOG_WARN, "cannot join %s on %s: %s",
		            LAN_GROUP, ifp->name, strerror(errno));
		return;
	}
	l->joined[l->njoined++] = ifp->index;
	l->svc->log(l->self, HL_LOG_DEBUG, "listening for %s:%d on %s",
	            LAN_GROUP, l->port, ifp->name);
}

/* Read the interfaces and their IPv4 subnets again (getifaddrs is a local
 * netlink dump, quick), and join the group on new usable ones. */
static void
refresh_ifs(struct lan *l)
{
	struct ifaddrs *ifa0, *ifa;
	struct lan_if ifs[MAX_IFS];
	int n = 0, nusable = 0, had = 0;

	for (int i = 0; i < l->nifs; i++)
		had += l->ifs[i].usable;
	l->ifs_ms = hl_mono_ms();
	if (getifaddrs(&ifa0) != 0) {
		l->svc->log(l->self, HL_LOG_WARN, "getifaddrs: %s",
		            strerror(errno));
		return;
	}
	memset(ifs, 0, sizeof ifs);
	for (ifa = ifa0; ifa != NULL; ifa = ifa->ifa_next) {
		struct lan_if *ifp = NULL;
		unsigned idx;

		if (ifa->ifa_addr == NULL ||
		    ifa->ifa_addr->sa_family != AF_INET ||
		    ifa->ifa_netmask == NULL)
			continue;
		idx = if_nametoindex(ifa->ifa_name);
		if (idx == 0)
			continue;
		for (int i = 0; i < n; i++)
			if (ifs[i].index == (int)idx)
				ifp = &ifs[i];
		if (ifp == NULL) {
			if (n == MAX_IFS)
				continue;
			ifp = &ifs[n++];
			ifp->index = (int)idx;
			snprintf(ifp->name, sizeof ifp->name, "%s",
			         ifa->ifa_name);
			ifp->usable = (ifa->ifa_flags & IFF_UP) &&
			              (ifa->ifa_flags & IFF_MULTICAST) &&
			              !(ifa->ifa_flags & IFF_LOOPBACK) &&
			              wanted(l, ifp->name);
		}
		if (ifp->naddrs < MAX_IF_ADDRS) {
			ifp->addr[ifp->naddrs] =
			    ((struct sockaddr_in *)ifa->ifa_addr)->sin_addr;
			ifp->mask[ifp->naddrs] =
			    ((struct sockaddr_in *)ifa->ifa_netmask)->sin_addr;
			ifp->naddrs++;
		}
	}
	freeifaddrs(ifa0);

	/* Interfaces that are gone took their membership with them. */
	for (int j = 0; j < l->njoined;) {
		int found = 0;
		for (int i = 0; i < n; i++)
			found |= ifs[i].index == l->joined[j];
		if (found)
			j++;
		else
			l->joined[j] = l->joined[--l->njoined];
	}
	memcpy(l->ifs, ifs, sizeof ifs);
	l->nifs = n;
	for (int i = 0; i < n; i++)
		if (l->ifs[i].usable) {
			join_group(l, &l->ifs[i]);
			nusable++;
		}
	if (nusable == 0 && had > 0)
		l->svc->log(l->self, HL_LOG_WARN,
		            "no usable multicast IPv4 interface left");
	if (!l->warned_missing)
		for (int w = 0; w < l->nwant; w++) {
			int found = 0;
			for (int i = 0; i < n; i++)
				found |=
				    strcmp(l->ifs[i].name, l->want[w]) == 0;
			if (!found) {
				l->svc->log(
				    l->self, HL_LOG_WARN,
				    "interface %s has no IPv4 address (yet): "
				    "not searching there",
				    l->want[w]);
				l->warned_missing = 1;
			}
		}
}

static struct lan_if *
if_by_index(struct lan *l, int index)
{
	for (int i = 0; i < l->nifs; i++)
		if (l->ifs[i].index == index)
			return &l->ifs[i];
	if (hl_mono_ms() - l->ifs_ms >= IF_REFRESH_MIN_MS) {
		refresh_ifs(l);
		for (int i = 0; i < l->nifs; i++)
			if (l->ifs[i].index == index)
				return &l->ifs[i];
	}
	return NULL;
}

/* The interface a datagram from src came in on, if src is on one of its
 * directly connected subnets; or, for a datagram from another process on
 * this host (a unicast answer arrives over lo), the usable interface that
 * holds src. Else NULL: not from our LAN. */
static struct lan_if *
source_if(struct lan *l, struct in_addr src, int ifindex)
{
	struct lan_if *ifp = if_by_index(l, ifindex);

	if (ifp != NULL && ifp->usable)
		for (int j = 0; j < ifp->naddrs; j++)
			if ((src.s_addr & ifp->mask[j].s_addr) ==
			    (ifp->addr[j].s_addr & ifp->mask[j].s_addr))
				return ifp;
	for (int i = 0; i < l->nifs; i++)
		for (int j = 0; j < l->ifs[i].naddrs; j++)
			if (l->ifs[i].usable &&
			    l->ifs[i].addr[j].s_addr == src.s_addr)
				return &l->ifs[i];
	return NULL;
}

/* ---- sending ---- */

static int
usable_count(struct lan *l)
{
	int n = 0;

	for (int i = 0; i < l->nifs; i++)
		n += l->ifs[i].usable;
	return n;
}

static void
send_to(struct lan *l, const char *pkt, size_t len,
        const struct sockaddr_in *to, const struct lan_if *via)
{
	if (via != NULL) {
		struct ip_mreqn mr;

		memset(&mr, 0, sizeof mr);
		mr.imr_ifindex = via->index;
		setsockopt(l->tx, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
	}
	if (sendto(l->tx, pkt, len, 0, (const struct sockaddr *)to,
	           sizeof *to) < 0) {
		char ip[INET_ADDRSTRLEN];
		l->st.send_errors++;
		inet_ntop(AF_INET, &to->sin_addr, ip, sizeof ip);
		l->svc->log(l->self, HL_LOG_DEBUG, "sending to %s:%d%s%s: %s",
		            ip, ntohs(to->sin_port), via ? " on " : "",
		            via ? via->name : "", strerror(errno));
	}
}

static void
send_group(struct lan *l, const char *pkt, size_t len, const struct lan_if *via)
{
	struct sockaddr_in to;

	memset(&to, 0, sizeof to);
	to.sin_family = AF_INET;
	to.sin_addr = l->group;
	to.sin_port = htons((uint16_t)l->port);
	send_to(l, pkt, len, &to, via);
}

/* A search for infohash ("" for every service) on every usable
 * interface. */
static void
send_search(struct lan *l, const char *infohash)
{
	char pkt[256];
	size_t len = lan_format_search(pkt, sizeof pkt, infohash, l->cookie);

	if (len == 0)
		return;
	for (int i = 0; i < l->nifs; i++)
		if (l->ifs[i].usable) {
			send_group(l, pkt, len, &l->ifs[i]);
			l->st.searches_sent++;
		}
}

/* The TLS port that a host on ifp's subnet can reach, or 0. */
static int
listener_port_for(struct lan *l, const struct lan_if *ifp)
{
	int any4 = 0, any6 = 0;

	for (int i = 0; i < l->nlisteners; i++) {
		const struct lan_listener *ls = &l->listeners[i];
		if (ls->any) {
			if (ls->family == AF_INET && any4 == 0)
				any4 = ls->port;
			else if (ls->family == AF_INET6 && any6 == 0)
				any6 = ls->port;
			continue;
		}
		for (int j = 0; j < ifp->naddrs; j++)
			if (ls->addr.s_addr == ifp->addr[j].s_addr)
				return ls->port;
	}
	return any4 ? any4 : any6;
}

static const struct svc_codes *
codes_of(struct lan *l, size_t i)
{
	struct svc_codes *c = &l->codes[i];
	uint64_t day = (uint64_t)time(NULL) / 86400;

	if (c->ok && c->day != day) {
		for (int k = 0; k < 3; k++)
			lan_rolling_code(c->raw, day - 1 + (uint64_t)k,
			                 c->code[k]);
		c->day = day;
	}
	return c;
}

/* An announce of service i ("<pw>-<hash>" only when its admin opted in),
 * into pkt; its length, or 0. */
static size_t
format_announce(struct lan *l, size_t i, int port, char *pkt, size_t cap)
{
	const struct hl_identity *id = l->svc->identity_at(l->self, i);
	char label[LAN_INFOHASH_MAX + 1];
	const char *pw = "";

	if (id == NULL)
		return 0;
	if (HL_STRUCT_HAS(id, struct hl_identity, announce_password) &&
	    id->announce_password && id->password != NULL)
		pw = id->password;
	snprintf(label, sizeof label, "%s-%s", pw, id->keyhash);
	return lan_format_service(
	    pkt, cap, port, label, l->cookie,
	    HL_STRUCT_HAS(id, struct hl_identity, title) && id->title
	        ? id->title
	        : id->name);
}

static int
port_or_warn(struct lan *l, const struct lan_if *ifp)
{
	int port = listener_port_for(l, ifp);

	if (port == 0 && !l->warned_no_port) {
		l->svc->log(
		    l->self, HL_LOG_WARN,
		    "a search on %s for a service of ours goes unanswered: no "
		    "transport listens on an address reachable there (give "
		    "transport-tls a listen: address such as \"[::]:7008\")",
		    ifp->name);
		l->warned_no_port = 1;
	}
	return port;
}

/* Unsolicited announces of every service on every usable interface. */
static void
announce_all(struct lan *l)
{
	size_t n = l->svc->identity_count(l->self);
	char pkt[512];

	for (int k = 0; k < l->nifs; k++) {
		struct lan_if *ifp = &l->ifs[k];
		int port;

		if (!ifp->usable || n == 0)
			continue;
		port = port_or_warn(l, ifp);
		if (port == 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			size_t len =
			    format_announce(l, i, port, pkt, sizeof pkt);
			if (len > 0) {
				send_group(l, pkt, len, ifp);
				l->st.announces_sent++;
			}
		}
	}
}

/* ---- receiving ---- */

static void
answer_search(struct lan *l, const struct lan_packet *p,
              const struct sockaddr_in *src, struct lan_if *ifp)
{
	size_t n = l->svc->identity_count(l->self);
	uint64_t now = hl_mono_ms();
	int port = 0, limited = 0;
	char pkt[512];

	for (size_t i = 0; i < n; i++) {
		const struct hl_identity *id = l->svc->identity_at(l->self, i);
		const struct svc_codes *c = codes_of(l, i);
		int match = p->infohash[0] == '\0';
		size_t len;

		if (id == NULL || !c->ok)
			continue;
		if (!match)
			match = strcmp(p->infohash, id->keyhash) == 0 ||
			        strcmp(p->infohash, c->code[0]) == 0 ||
			        strcmp(p->infohash, c->code[1]) == 0 ||
			        strcmp(p->infohash, c->code[2]) == 0;
		if (!match)
			continue;
		if (port == 0) {
			/* Once per search, whatever it matches. */
			if (!hl_rate_take(
			        &bucket_for(l->answer_src, src->sin_addr)->rate,
			        ANSWER_BURST, ANSWER_PER_SEC, now) ||
			    !hl_rate_take(&l->answer_all, ANSWER_ALL_BURST,
			                  ANSWER_ALL_PER_SEC, now)) {
				limited = 1;
				break;
			}
			port = port_or_warn(l, ifp);
			if (port == 0)
				return;
			l->st.searches_answered++;
		}
		len = format_announce(l, i, port, pkt, sizeof pkt);
		if (len == 0)
			continue;
		/* Unicast to the searcher's address and port, then the
		 * group, as the original does. */
		send_to(l, pkt, len, src, NULL);
		send_group(l, pkt, len, ifp);
		l->st.announces_sent += 2;
	}
	if (limited) {
		char ip[INET_ADDRSTRLEN];
		l->st.rate_limited++;
		inet_ntop(AF_INET, &src->sin_addr, ip, sizeof ip);
		l->svc->log(l->self, HL_LOG_DEBUG,
		            "not answering %s: too many searches", ip);
	}
}

static void query_finish(struct lan_query *lq);

static void
query_timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                     void *arg)
{
	struct lan_query *lq = arg;

	if (!lq->repeated && !lq->answered) {
		lq->repeated = 1;
		{
			char code[41];
			unsigned char raw[20];
			if (lan_hex20(lq->keyhash, raw) == 0) {
				lan_rolling_code(
				    raw, (uint64_t)time(NULL) / 86400, code);
				send_search(lq->lan, code);
			}
		}
		hl_evtimer_add_ms(lq->timer, QUERY_WAIT_MS - SEARCH_REPEAT_MS);
		return;
	}
	query_finish(lq);
}

static void
cache_put(struct lan *l, const char *keyhash, const char *addr, uint64_t now)
{
	struct cache_entry *slot = NULL;

	for (int i = 0; i < CACHE_MAX; i++) {
		struct cache_entry *e = &l->cache[i];
		if (e->when_ms != 0 && strcmp(e->keyhash, keyhash) == 0 &&
		    strcmp(e->addr, addr) == 0) {
			slot = e;
			break;
		}
		if (slot == NULL || e->when_ms < slot->when_ms)
			slot = e;
	}
	snprintf(slot->keyhash, sizeof slot->keyhash, "%s", keyhash);
	snprintf(slot->addr, sizeof slot->addr, "%s", addr);
	slot->when_ms = now;
}

static void
heard_announce(struct lan *l, const struct lan_packet *p,
               const struct sockaddr_in *src)
{
	char ip[INET_ADDRSTRLEN], addr[INET_ADDRSTRLEN + 8];
	uint64_t now = hl_mono_ms();
	unsigned long seq;
	struct lan_query *lq;

	if (!hl_rate_take(&bucket_for(l->heard_src, src->sin_addr)->rate,
	                  HEARD_BURST, HEARD_PER_SEC, now)) {
		l->st.rate_limited++;
		return;
	}
	l->st.announces_heard++;
	inet_ntop(AF_INET, &src->sin_addr, ip, sizeof ip);
	snprintf(addr, sizeof addr, "%s:%d", ip, p->port);
	l->svc->log(l->self, HL_LOG_DEBUG, "heard -%s \"%s\" at %s", p->keyhash,
	            p->title, addr);
	if (HL_HAS(l->svc, service_seen))
		l->svc->service_seen(l->self, p->title, p->infohash, addr);
	cache_put(l, p->keyhash, addr, now);
	l->svc->candidate_learned(l->self, p->keyhash, addr);

	/* Every query for this hash hears of it. Scan again from the start
	 * after each call, so that whatever the core does meanwhile (even
	 * cancelling a query) leaves no dangling pointer here. */
	seq = ++l->announce_seq;
	for (;;) {
		for (lq = l->queries; lq != NULL; lq = lq->next)
			if (lq->last_report != seq &&
			    strcmp(lq->keyhash, p->keyhash) == 0)
				break;
		if (lq == NULL)
			break;
		lq->last_report = seq;
		if (!lq->answered) {
			lq->answered = 1;
			hl_evtimer_add_ms(lq->timer, QUERY_AFTER_ANSWER_MS);
		}
		l->svc->query_candidate(l->self, lq->q, addr);
	}
}

static void
handle_packet(struct lan *l, const unsigned char *buf, size_t len,
              const struct sockaddr_in *src, int ifindex)
{
	struct lan_packet p;
	const char *why = NULL;
	char ip[INET_ADDRSTRLEN];
	struct lan_if *ifp;

	l->st.received++;
	inet_ntop(AF_INET, &src->sin_addr, ip, sizeof ip);
	if (lan_parse(buf, len, &p, &why) != 0) {
		l->st.malformed++;
		l->svc->log(l->self, HL_LOG_DEBUG,
		            "dropped a malformed packet from %s:%d: %s", ip,
		            ntohs(src->sin_port), why);
		return;
	}
	if (strcmp(p.cookie, l->cookie) == 0) {
		l->st.own++;
		return;
	}
	ifp = source_if(l, src->sin_addr, ifindex);
	if (ifp == NULL || src->sin_port == 0) {
		l->st.foreign++;
		l->svc->log(
		    l->self, HL_LOG_DEBUG,
		    "ignored a packet from %s:%d: not on a directly connected "
		    "subnet of a LAN interface",
		    ip, ntohs(src->sin_port));
		return;
	}
	if (p.kind == LAN_SEARCH)
		answer_search(l, &p, src, ifp);
	else
		heard_announce(l, &p, src);
}

static void
socket_read_callback(evutil_socket_t fd, short what HL_UNUSED, void *arg)
{
	struct lan *l = arg;

	for (int k = 0; k < READS_PER_EVENT; k++) {
		struct sockaddr_in src;
		struct iovec iov = {l->buf, sizeof l->buf};
		union {
			char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
			struct cmsghdr align;
		} cbuf;
		struct msghdr mh;
		struct cmsghdr *cm;
		int ifindex = 0;
		ssize_t n;

		memset(&mh, 0, sizeof mh);
		mh.msg_name = &src;
		mh.msg_namelen = sizeof src;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = sizeof cbuf.buf;
		n = recvmsg(fd, &mh, MSG_DONTWAIT);
		if (n < 0)
			break; /* EAGAIN, or an ICMP error: nothing to do */
		if (mh.msg_namelen < sizeof src || src.sin_family != AF_INET)
			continue;
		for (cm = CMSG_FIRSTHDR(&mh); cm != NULL;
		     cm = CMSG_NXTHDR(&mh, cm))
			if (cm->cmsg_level == IPPROTO_IP &&
			    cm->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;
				memcpy(&pi, CMSG_DATA(cm), sizeof pi);
				ifindex = pi.ipi_ifindex;
			}
		if ((size_t)n > LAN_PACKET_MAX || (mh.msg_flags & MSG_TRUNC)) {
			l->st.received++;
			l->st.malformed++;
			l->svc->log(l->self, HL_LOG_DEBUG,
			            "dropped a packet over %d bytes",
			            LAN_PACKET_MAX);
			continue;
		}
		handle_packet(l, l->buf, (size_t)n, &src, ifindex);
	}
}

/* ---- timers ---- */

static void
refresh_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	refresh_ifs(arg);
}

static void
announce_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	announce_all(arg);
}

static void
browse_repeat_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                       void *arg)
{
	send_search(arg, "");
}

/* ---- the discovery facet ---- */

static void
query_unlink(struct lan_query *lq)
{
	HL_LIST_REMOVE(lq);
	event_free(lq->timer);
}

static void
query_finish(struct lan_query *lq)
{
	struct lan *l = lq->lan;
	struct hl_query *q = lq->q;

	/* Forget it first: query_done may start or end other queries. */
	query_unlink(lq);
	free(lq);
	l->svc->query_done(l->self, q);
}

static int
lan_query_start(void *state, struct hl_query *q)
{
	struct lan *l = state;
	const char *kh = l->svc->query_keyhash(q);
	struct lan_query *lq;
	unsigned char raw[20];
	char code[41];
	uint64_t now = hl_mono_ms();

	if (kh == NULL || lan_hex20(kh, raw) != 0 ||
	    l->svc->identity_find(l->self, kh) != NULL)
		return -1; /* not a hash, or one of ours: the core dials it */
	if (usable_count(l) == 0)
		return -1;
	lq = calloc(1, sizeof *lq);
	if (lq == NULL)
		return -1;
	lq->timer = evtimer_new(l->base, query_timer_callback, lq);
	if (lq->timer == NULL) {
		free(lq);
		return -1;
	}
	lq->lan = l;
	lq->q = q;
	hl_keyhash_lower(kh, 40, lq->keyhash); /* lan_hex20 checked it */
	HL_LIST_INSERT(l->queries, lq);

	lan_rolling_code(raw, (uint64_t)time(NULL) / 86400, code);
	send_search(l, code);
	hl_evtimer_add_ms(lq->timer, SEARCH_REPEAT_MS);

	/* What was heard lately goes first: no need to wait for it. */
	for (int i = 0; i < CACHE_MAX; i++) {
		struct cache_entry *e = &l->cache[i];
		if (e->when_ms != 0 && now - e->when_ms <= CACHE_SEC * 1000 &&
		    strcmp(e->keyhash, lq->keyhash) == 0)
			l->svc->query_candidate(l->self, q, e->addr);
	}
	return 0;
}

static void
lan_query_cancel(void *state, struct hl_query *q)
{
	struct lan *l = state;

	for (struct lan_query *lq = l->queries; lq != NULL; lq = lq->next)
		if (lq->q == q) {
			query_unlink(lq);
			free(lq);
			return;
		}
}

static void
lan_browse(void *state)
{
	struct lan *l = state;

	send_search(l, "");
	hl_evtimer_add_ms(l->browse_ev, SEARCH_REPEAT_MS);
}

/* ---- the traversal facet: which ports our services listen on ---- */

static void
lan_port_event(void *state, const struct sockaddr *sa, socklen_t salen,
               int open)
{
	struct lan *l = state;
	struct lan_listener ls;

	memset(&ls, 0, sizeof ls);
	if (sa->sa_family == AF_INET && salen >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		ls.family = AF_INET;
		ls.addr = s4->sin_addr;
		ls.any = s4->sin_addr.s_addr == htonl(INADDR_ANY);
		ls.port = ntohs(s4->sin_port);
	} else if (sa->sa_family == AF_INET6 &&
	           salen >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		ls.family = AF_INET6;
		ls.port = ntohs(s6->sin6_port);
		if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
			ls.any = 1;
		else if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			memcpy(&ls.addr, &s6->sin6_addr.s6_addr[12], 4);
		else
			return; /* an IPv6 address: not reachable over LAN v4 */
	} else {
		return;
	}
	for (int i = 0; i < l->nlisteners; i++) {
		struct lan_listener *o = &l->listeners[i];
		if (o->family == ls.family && o->any == ls.any &&
		    o->addr.s_addr == ls.addr.s_addr && o->port == ls.port) {
			if (!open)
				*o = l->listeners[--l->nlisteners];
			return;
		}
	}
	if (open && l->nlisteners < MAX_LISTENERS)
		l->listeners[l->nlisteners++] = ls;
}

/* ---- config, init, fini ---- */

static int
check_conf(const struct hl_services *svc, struct hl_plugin *self,
           const struct hl_conf *conf, struct lan *l)
{
	static const char *const allowed[] = {"interfaces", "port",
	                                      "announce_interval", NULL};
	const struct hl_conf *n;
	int bad = svc->conf_check_keys(self, conf, allowed);
	int port = LAN_DEFAULT_PORT, interval = 0;

	if (hl_conf_int(svc, self, conf, "port", 1, 65535, &port) != 0)
		bad++;
	if (hl_conf_int(svc, self, conf, "announce_interval", 0, 86400,
	                &interval) != 0)
		bad++;
	else if (interval > 0 && interval < 5) {
		svc->conf_error(
		    self, svc->conf_get(conf, "announce_interval"),
		    "announce_interval: 0 (off) or at least 5 seconds");
		bad++;
	}
	n = svc->conf_get(conf, "interfaces");
	if (n != NULL) {
		size_t cnt =
		    svc->conf_type(n) == HL_CONF_LIST ? svc->conf_len(n) : 1;
		if (svc->conf_type(n) != HL_CONF_LIST &&
		    svc->conf_type(n) != HL_CONF_SCALAR) {
			svc->conf_error(
			    self, n,
			    "interfaces: expected a list of interface names, "
			    "e.g. [eth0]");
			bad++;
			cnt = 0;
		} else if (cnt > MAX_WANT_IFS) {
			svc->conf_error(self, n, "interfaces: at most %d",
			                MAX_WANT_IFS);
			bad++;
			cnt = 0;
		}
		for (size_t i = 0; i < cnt; i++) {
			const struct hl_conf *it =
			    svc->conf_type(n) == HL_CONF_LIST
			        ? svc->conf_item(n, i)
			        : n;
			const char *s = svc->conf_str(it);
			if (s == NULL || *s == '\0' || strlen(s) >= IFNAMSIZ ||
			    strchr(s, '/') != NULL) {
				svc->conf_error(
				    self, it,
				    "interfaces: expected an interface name "
				    "such as eth0");
				bad++;
			} else if (l != NULL) {
				snprintf(l->want[l->nwant++], IFNAMSIZ, "%s",
				         s);
			}
		}
	}
	if (l != NULL) {
		l->port = port;
		l->announce_interval = interval;
	}
	return bad ? -1 : 0;
}

static int
open_sockets(struct lan *l)
{
	struct sockaddr_in sin;
	int on = 1, ttl = 1;
	unsigned char loop = 1;

	l->rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	l->tx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->rx < 0 || l->tx < 0) {
		l->svc->log(l->self, HL_LOG_ERROR, "socket: %s",
		            strerror(errno));
		return -1;
	}
	/* Several hlcore (and Python Hardline) processes on one host share
	 * the port; every one of them gets each group datagram. */
	if (setsockopt(l->rx, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
	    setsockopt(l->rx, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 ||
	    setsockopt(l->rx, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) != 0 ||
	    setsockopt(l->tx, IPPROTO_IP, IP_PKTINFO, &on, sizeof on) != 0 ||
	    setsockopt(l->tx, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) !=
	        0 ||
	    setsockopt(l->tx, IPPROTO_IP, IP_MULTICAST_LOOP, &loop,
	               sizeof loop) != 0) {
		l->svc->log(l->self, HL_LOG_ERROR, "setsockopt: %s",
		            strerror(errno));
		return -1;
	}
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)l->port);
	if (bind(l->rx, (struct sockaddr *)&sin, sizeof sin) != 0) {
		l->svc->log(
		    l->self, HL_LOG_ERROR,
		    "cannot bind UDP port %d: %s (another program holds it "
		    "without SO_REUSEPORT?)",
		    l->port, strerror(errno));
		return -1;
	}
	sin.sin_port = 0;
	if (bind(l->tx, (struct sockaddr *)&sin, sizeof sin) != 0) {
		l->svc->log(l->self, HL_LOG_ERROR, "bind: %s", strerror(errno));
		return -1;
	}
	l->rx_ev = event_new(l->base, l->rx, EV_READ | EV_PERSIST,
	                     socket_read_callback, l);
	l->tx_ev = event_new(l->base, l->tx, EV_READ | EV_PERSIST,
	                     socket_read_callback, l);
	if (l->rx_ev == NULL || l->tx_ev == NULL)
		return -1;
	event_add(l->rx_ev, NULL);
	event_add(l->tx_ev, NULL);
	return 0;
}

static void lan_fini(void *state);

static int
lan_init(const struct hl_services *svc, struct hl_plugin *self,
         const struct hl_conf *conf, void **state)
{
	struct lan *l;
	unsigned char rnd[16];

	if (sodium_init() < 0) {
		svc->log(self, HL_LOG_ERROR, "libsodium failed to start");
		return -1;
	}
	HL_STATE_NEW(l, svc, self);
	if (l == NULL)
		return -1;
	l->rx = l->tx = -1;
	if (check_conf(svc, self, conf, l) != 0) {
		free(l);
		return -1;
	}
	inet_pton(AF_INET, LAN_GROUP, &l->group);
	randombytes_buf(rnd, sizeof rnd);
	for (int i = 0; i < 16; i++)
		snprintf(l->cookie + 2 * i, 3, "%02x", rnd[i]);

	l->ncodes = svc->identity_count(self);
	l->codes = calloc(l->ncodes ? l->ncodes : 1, sizeof *l->codes);
	if (l->codes == NULL)
		goto fail;
	for (size_t i = 0; i < l->ncodes; i++) {
		const struct hl_identity *id = svc->identity_at(self, i);
		l->codes[i].ok =
		    id != NULL && lan_hex20(id->keyhash, l->codes[i].raw) == 0;
		l->codes[i].day = UINT64_MAX; /* computed when first needed */
	}
	if (open_sockets(l) != 0)
		goto fail;
	l->refresh_ev = event_new(l->base, -1, EV_PERSIST, refresh_callback, l);
	l->browse_ev = evtimer_new(l->base, browse_repeat_callback, l);
	if (l->refresh_ev == NULL || l->browse_ev == NULL)
		goto fail;
	hl_evtimer_add_ms(l->refresh_ev, IF_REFRESH_SEC * 1000);
	refresh_ifs(l);
	if (usable_count(l) == 0)
		svc->log(self, HL_LOG_WARN,
		         "no multicast-capable IPv4 interface%s: LAN discovery "
		         "waits for one",
		         l->nwant ? " among interfaces:" : "");
	if (l->announce_interval > 0) {
		l->announce_ev =
		    event_new(l->base, -1, EV_PERSIST, announce_callback, l);
		if (l->announce_ev == NULL)
			goto fail;
		hl_evtimer_add_ms(l->announce_ev, l->announce_interval * 1000);
		/* Once soon, from the loop: the core tells us its listeners
		 * right after init. */
		event_active(l->announce_ev, EV_TIMEOUT, 0);
	}
	svc->log(self, HL_LOG_INFO,
	         "searching and answering on %s:%d (%d interface%s)%s",
	         LAN_GROUP, l->port, usable_count(l),
	         usable_count(l) == 1 ? "" : "s",
	         l->port != LAN_DEFAULT_PORT
	             ? ": not the standard port 6771, so other Hardline nodes "
	               "will not hear this one"
	             : "");
	*state = l;
	return 0;
fail:
	lan_fini(l);
	return -1;
}

static void
lan_fini(void *state)
{
	struct lan *l = state;

	/* The core is stopping: running queries end silently. */
	while (l->queries != NULL) {
		struct lan_query *lq = l->queries;
		query_unlink(lq);
		free(lq);
	}
	if (l->st.received > 0 || l->st.searches_sent > 0)
		l->svc->log(
		    l->self, HL_LOG_INFO,
		    "%lu packets received: %lu malformed (dropped), %lu from "
		    "outside the LAN subnets, %lu rate-limited, %lu searches "
		    "answered, %lu announces heard; %lu searches and %lu "
		    "announces sent, %lu send errors",
		    l->st.received, l->st.malformed, l->st.foreign,
		    l->st.rate_limited, l->st.searches_answered,
		    l->st.announces_heard, l->st.searches_sent,
		    l->st.announces_sent, l->st.send_errors);
	hl_event_free(&l->rx_ev);
	hl_event_free(&l->tx_ev);
	hl_event_free(&l->refresh_ev);
	hl_event_free(&l->announce_ev);
	hl_event_free(&l->browse_ev);
	if (l->rx >= 0)
		close(l->rx);
	if (l->tx >= 0)
		close(l->tx);
	free(l->codes);
	free(l);
}

static int
lan_validate(const struct hl_services *svc, struct hl_plugin *self,
             const struct hl_conf *conf)
{
	return check_conf(svc, self, conf, NULL);
}

static const struct hl_discovery_ops lan_discovery = {
    .size = sizeof(struct hl_discovery_ops),
    .query_start = lan_query_start,
    .query_cancel = lan_query_cancel,
    .browse = lan_browse,
};

static const struct hl_traversal_ops lan_traversal = {
    .size = sizeof(struct hl_traversal_ops),
    .port_event = lan_port_event,
};

HL_PLUGIN(HL_KIND_DISCOVERY | HL_KIND_TRAVERSAL, .name = "discovery-lan",
          .version = "0.1.0",
          .description = "Hardline LAN search and announce on "
                         "239.192.152.143:6771, without leaking passwords",
          .default_priority = 20, .init = lan_init, .fini = lan_fini,
          .validate = lan_validate, .discovery = &lan_discovery,
          .traversal = &lan_traversal);
