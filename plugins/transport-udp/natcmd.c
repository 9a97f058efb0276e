/*
 * natcmd.c: `hlcore -c FILE nat` (transport-udp's command, ABI 1.2
 * hl_command_ops): this node's NAT behaviour and its candidates, from STUN
 * binding requests to the hubs of its config (every hub answers STUN on
 * its port), sent from one UDP socket on the listen address when it is
 * free (else an ephemeral port: the daemon holds it).
 *
 * Output, one result a line:
 *   socket 0.0.0.0:7008
 *   host 10.1.0.2:7008                      (each host candidate)
 *   mapped 11.0.0.1:7777 11.0.0.2:7008      (what each hub saw)
 *   srflx 11.0.0.2:7008                     (each server-reflexive one)
 *   nat cone (endpoint-independent mapping) (from two answers)
 * Bounded: 3 tries of 1 s per hub, at most 8 hubs. Exit 0 when a hub
 * answered, 1 when none did, 2 on bad usage or settings.
 *
 *   filtering address and port-dependent (...) (RFC 5780's tests)
 * The mapping needs two hubs at different IP addresses (a mapping per
 * destination address is what "symmetric" means). Filtering: a STUN
 * request with CHANGE-REQUEST to a hub that tells its OTHER-ADDRESS (a hub
 * on a wildcard address of a host with two addresses): its answer from
 * another address and port comes in (endpoint-independent), or only its
 * answer from another port (address-dependent), or neither.
 */
#define HL_PLUGIN_ABI_MINOR 2
#define HL_PLUGIN_WITHOUT_OPENSSL
#include "natcmd.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/util.h>

#include "hardline/plugin.h"
#include "hardline/util.h"
#include "hubclient.h"
#include "hubmsg.h"
#include "hubnode.h"

#define TRIES 3
#define WAIT_MS 1000

static int
resolve(const char *hostport, int family, struct sockaddr_storage *ss,
        socklen_t *len)
{
	char host[256], port[8];
	uint16_t p;
	struct addrinfo hints = {0}, *ai = NULL;

	if (hl_addr_split(hostport, host, sizeof host, &p) != 0 || p == 0)
		return -1;
	snprintf(port, sizeof port, "%u", p);
	hints.ai_family = family;
	hints.ai_socktype = SOCK_DGRAM;
	if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = (socklen_t)ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static long
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 +
	       (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* One STUN binding transaction with to (change: a CHANGE-REQUEST, the
 * answer then comes from elsewhere): 0 with *mapped (and *other, the
 * server's OTHER-ADDRESS), or -1. */
static int
stun_ask(int fd, const struct sockaddr_storage *to, socklen_t tolen,
         uint32_t change, struct hubmsg_addr *mapped, struct hubmsg_addr *other)
{
	struct hubclient_stun st;

	for (int t = 0; t < TRIES; t++) {
		struct timespec t0;

		if ((change ? hubclient_stun_request_change(&st, change)
		            : hubclient_stun_request(&st)) == 0)
			return -1;
		if (sendto(fd, st.buf, st.len, 0, (const struct sockaddr *)to,
		           tolen) < 0)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			long left = WAIT_MS - ms_since(&t0);
			struct pollfd pfd = {fd, POLLIN, 0};
			uint8_t buf[2048];
			ssize_t n;

			if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
				break;
			n = recv(fd, buf, sizeof buf, 0);
			if (n > 0 &&
			    hubclient_stun_answer_other(&st, buf, (size_t)n,
			                                mapped, other) == 0)
				return 0;
		}
	}
	return -1;
}

/* RFC 5780's filtering tests with one hub: does an answer from another
 * address and port (the hub told its OTHER-ADDRESS: has_other), or from
 * another port only, get in through the mapping? */
static void
print_filtering(int fd, const struct sockaddr_storage *to, socklen_t tolen,
                const char *hub, int has_other)
{
	struct hubmsg_addr m, o;

	if (has_other &&
	    stun_ask(fd, to, tolen, HUBCLIENT_CHANGE_IP | HUBCLIENT_CHANGE_PORT,
	             &m, &o) == 0) {
		printf("filtering endpoint-independent (hub %s's answer from "
		       "another address and port came in)\n",
		       hub);
		return;
	}
	if (stun_ask(fd, to, tolen, HUBCLIENT_CHANGE_PORT, &m, &o) == 0) {
		printf(has_other ? "filtering address-dependent (hub %s's "
		                   "answer from another port came in, not from "
		                   "another address)\n"
		                 : "filtering address-dependent or "
		                   "endpoint-independent (hub %s's answer from "
		                   "another port came in; it has no other "
		                   "address to tell which)\n",
		       hub);
		return;
	}
	printf("filtering address and port-dependent (hub %s's answers "
	       "from another %s did not come in)\n",
	       hub, has_other ? "address or port" : "port");
}

int
udp_nat_command(const struct hl_services *svc, struct hl_plugin *self HL_UNUSED,
                const struct hl_conf *conf, int argc, char *const *argv)
{
	const struct hl_conf *hubs = svc->conf_get(conf, "hubs");
	const struct hl_conf *listen = svc->conf_get(conf, "listen");
	size_t nhubs = hl_conf_count(svc, hubs);
	struct sockaddr_storage ls;
	int lslen = sizeof ls;
	struct sockaddr_storage local;
	socklen_t locallen = sizeof local;
	struct hubmsg_addr mapped[HUBNODE_MAX_HUBS], hubip[HUBNODE_MAX_HUBS],
	    other[HUBNODE_MAX_HUBS];
	struct hubmsg_addr first[2];
	struct sockaddr_storage filter_to;
	socklen_t filter_tolen = 0;
	int filter_hub = -1; /* the hub for the filtering tests */
	size_t pick = 0;
	struct hubmsg_cand hc[16];
	char a[64], b[64];
	int fd, answered = 0, nfirst = 0, ephemeral = 0;
	uint16_t port;
	size_t nh;

	if (argc != 1) {
		fprintf(stderr, "usage: hlcore -c FILE %s (no arguments)\n",
		        argv[0]);
		return 2;
	}
	if (nhubs == 0) {
		fprintf(stderr,
		        "%s: no hubs: under plugins: transport-udp: it asks "
		        "them (STUN) how its NAT maps this node's UDP port\n",
		        argv[0]);
		return 2;
	}
	if (nhubs > HUBNODE_MAX_HUBS)
		nhubs = HUBNODE_MAX_HUBS;
	memset(&ls, 0, sizeof ls);
	if (hl_conf_count(svc, listen) > 0 &&
	    evutil_parse_sockaddr_port(
	        svc->conf_str(hl_conf_at(svc, listen, 0)),
	        (struct sockaddr *)&ls, &lslen) == 0) {
		/* dual-stack sockets are not needed here: IPv4 hubs */
		if (ls.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ls;
			struct sockaddr_in s4 = {.sin_family = AF_INET,
			                         .sin_port = s6->sin6_port};
			if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr)) {
				memcpy(&ls, &s4, sizeof s4);
				lslen = sizeof s4;
			}
		}
	} else {
		struct sockaddr_in s4 = {.sin_family = AF_INET};
		memcpy(&ls, &s4, sizeof s4);
		lslen = sizeof s4;
	}
	fd = socket(ls.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "%s: cannot open a UDP socket: %s\n", argv[0],
		        strerror(errno));
		return 1;
	}
	if (bind(fd, (struct sockaddr *)&ls, (socklen_t)lslen) != 0) {
		if (errno != EADDRINUSE) {
			fprintf(stderr, "%s: cannot bind UDP %s: %s\n", argv[0],
			        svc->conf_str(hl_conf_at(svc, listen, 0)),
			        strerror(errno));
			close(fd);
			return 1;
		}
		/* The daemon holds it: an ephemeral port of the same
		 * address. */
		ephemeral = 1;
		if (ls.ss_family == AF_INET)
			((struct sockaddr_in *)&ls)->sin_port = 0;
		else
			((struct sockaddr_in6 *)&ls)->sin6_port = 0;
		if (bind(fd, (struct sockaddr *)&ls, (socklen_t)lslen) != 0) {
			fprintf(stderr, "%s: cannot bind a UDP socket: %s\n",
			        argv[0], strerror(errno));
			close(fd);
			return 1;
		}
	}
	getsockname(fd, (struct sockaddr *)&local, &locallen);
	hl_sockaddr_str((struct sockaddr *)&local, a, sizeof a);
	port = ntohs(local.ss_family == AF_INET6
	                 ? ((struct sockaddr_in6 *)&local)->sin6_port
	                 : ((struct sockaddr_in *)&local)->sin_port);
	printf("socket %s%s\n", a,
	       ephemeral ? " (the listen port is in use, hlcore runs: an "
	                   "ephemeral port)"
	                 : "");
	nh = hubclient_host_candidates(local.ss_family, port, hc, 16);
	for (size_t i = 0; i < nh; i++) {
		hubmsg_addr_str(&hc[i].addr, b, sizeof b);
		printf("host %s\n", b);
	}
	memset(mapped, 0, sizeof mapped);
	memset(other, 0, sizeof other);
	memset(hubip, 0, sizeof hubip);
	memset(first, 0, sizeof first);
	for (size_t i = 0; i < nhubs; i++) {
		const char *h = svc->conf_str(hl_conf_at(svc, hubs, i));
		struct sockaddr_storage to;
		socklen_t tolen;

		if (h == NULL ||
		    resolve(h, local.ss_family, &to, &tolen) != 0) {
			printf("mapped %s no address (name lookup failed)\n",
			       h ? h : "?");
			continue;
		}
		if (stun_ask(fd, &to, tolen, 0, &mapped[i], &other[i]) != 0) {
			printf("mapped %s no answer in %d s\n", h,
			       TRIES * WAIT_MS / 1000);
			continue;
		}
		answered++;
		if (filter_hub < 0 ||
		    (other[i].family != 0 && other[filter_hub].family == 0)) {
			filter_hub = (int)i;
			filter_to = to;
			filter_tolen = tolen;
		}
		hubmsg_addr_from_sa(&hubip[i], (struct sockaddr *)&to);
		hubmsg_addr_str(&mapped[i], b, sizeof b);
		printf("mapped %s %s\n", h, b);
	}
	/* Two answers from hubs at different IP addresses. */
	for (size_t i = 0; i < nhubs && nfirst < 2; i++) {
		if (mapped[i].family == 0)
			continue;
		if (nfirst == 1 && memcmp(hubip[i].ip, hubip[pick].ip, 16) == 0)
			continue;
		if (nfirst == 0)
			pick = i;
		first[nfirst++] = mapped[i];
	}
	for (size_t i = 0; i < nhubs; i++) {
		int dup = 0;
		if (mapped[i].family == 0)
			continue;
		for (size_t k = 0; k < i; k++)
			dup |= hubmsg_addr_eq(&mapped[i], &mapped[k]);
		if (!dup) {
			hubmsg_addr_str(&mapped[i], b, sizeof b);
			printf("srflx %s\n", b);
		}
	}
	if (nfirst == 2) {
		struct hubmsg_addr loc = {0};
		/* No NAT: a hub saw one of our own addresses and port. */
		for (size_t i = 0; i < nh; i++)
			if (hubmsg_addr_eq(&hc[i].addr, &first[0]))
				loc = hc[i].addr;
		printf("nat %s\n", hubclient_nat_name(hubclient_nat_kind(
		                       &loc, &first[0], &first[1])));
	} else {
		printf("nat unknown (%s)\n",
		       answered == 0 ? "no hub answered: is UDP blocked?"
		                     : "needs answers from two hubs at "
		                       "different IP addresses");
	}
	if (filter_hub >= 0)
		print_filtering(
		    fd, &filter_to, filter_tolen,
		    svc->conf_str(hl_conf_at(svc, hubs, (size_t)filter_hub)),
		    other[filter_hub].family != 0);
	else
		printf("filtering unknown (no hub answered)\n");
	close(fd);
	return answered > 0 ? 0 : 1;
}
