/*
 * transport-udp: Hardline tunnels over QUIC (ngtcp2 0.12 with its GnuTLS
 * crypto helper), one UDP socket per listen address.
 *
 * The wire (docs/protocol.md, "QUIC tunnels"): QUIC v1, ALPN "hardline",
 * SNI = the bare keyhash; the server presents the certificate of the
 * service whose keyhash that is, and the client pins it by its hash in a
 * GnuTLS verify function (no CA). One QUIC connection per (peer node,
 * service) carries every tunnel to that service, one client-initiated
 * bidirectional stream each, whose bytes are exactly what a transport-tls
 * tunnel carries after its handshake (the OOB lines first), so the core's
 * service side is the same for both transports.
 *
 * Streams reach the core as one end of a bufferevent pair. Flow control
 * follows the core: received bytes are credited back to the peer
 * (MAX_STREAM_DATA / MAX_DATA) only once the core has taken them from the
 * pair, and bytes the core writes are taken from the pair only while the
 * stream has room for them, so neither node buffers more than a window per
 * stream whatever the reader's pace.
 *
 * Close and half-close, each direction on its own: a FIN from the peer
 * (or a RESET_STREAM) reaches the core as EOF on its end of the pair, once
 * every byte before it has; an EOF from the core (a BEV_FINISHED flush of
 * its end, the core's half-close) sends what it wrote and then a FIN, and
 * what the peer still sends goes on reaching the core. The core freeing
 * its end (an EOF with BEV_EVENT_WRITING, or a sweep within 250 ms) ends
 * the tunnel for good: a FIN if the peer's direction had ended, else a
 * RESET_STREAM once our bytes are acknowledged (stream_end_send), and
 * what the peer still sends is dropped until its own FIN. A RESET_STREAM
 * from the peer ends the tunnel for the core likewise (stream_peer_left).
 *
 * Config (plugins: transport-udp:):
 *   listen: "[::]:7008"      or a list (at most 4); none: dial only, from an
 *                            ephemeral port
 *   idle_timeout: 30         seconds without a packet before a connection
 *                            is dropped (keep-alive PINGs every third of
 *                            it while tunnels exist); 2 to 600
 *   advertise: ["198.51.100.7:7008"]  UDP ports forwarded by hand: told to
 *                            hlcore clients as "quic://..." endpoints
 *   hubs: ["hub.example.org:7777"]  rendezvous hubs (at most 8): every
 *                            service is registered with each, from the
 *                            QUIC socket; a dial looks services up there
 *                            and punches through both NATs (hubnode.c)
 *   turn: ["turn://user:pass@turn.example.org:3478"]  TURN relays (at
 *                            most 2; needs hubs:): an allocation on each,
 *                            its relayed address a candidate in the
 *                            registrations and lookups, tried last
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <netinet/in.h>
#include <linux/errqueue.h>
#include <netinet/udp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include "hubmsg.h" /* nat: candidates */
#include "hubnode.h" /* nat: hubs and punching (hubnode.c) */
#include "natcmd.h" /* nat: hlcore -c FILE nat (natcmd.c) */
#include "turn.h" /* nat: TURN relays, the last resort (turn.c) */

/* ABI 1.2: no OpenSSL object crosses the ABI (GnuTLS does the TLS), its
 * listeners are UDP (listening_proto), and its candidates are "quic://"
 * and bare host:port (schemes). */
#define HL_PLUGIN_ABI_MINOR 2
#define HL_PLUGIN_WITHOUT_OPENSSL
#include "hardline/evutil.h"
#include "hardline/plugin.h"
#include "hardline/util.h"
#include "punchcmd.h" /* punch: hlcore -c FILE punch (punchcmd.c) */
#include "punchctl.h" /* punch: its ALPN */
#include "punchsrv.h" /* punch: the serving side (punchsrv.c) */

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define ALPN "hardline"
#define MAX_SOCKS 4
#define MAX_RELAYS 2 /* nat: TURN servers */
#define ADDR_MAX 262
#define PEER_MAX 64
#define CIDLEN 16 /* every connection ID this node issues */
#define MAX_CIDS 8 /* per connection, in the demultiplexing table */
#define CID_BUCKETS 4096
#define HOST_BUCKETS 1024
#define SECRET_LEN 32
/* NEW_TOKEN: kept per server address (client), good for (server). */
#define TOKENS 64
#define TOKEN_MAX 128
#define TOKEN_VALID_SEC 3600

#define DIAL_TIMEOUT_SEC 10
#define IDLE_TIMEOUT_DEFAULT 30
/* Flow control: what one stream (and one connection) may have in flight
 * towards this node before the core has taken it. ngtcp2 may grow a
 * window up to the max when the core drains it fast. */
#define STREAM_WINDOW (256 * 1024)
#define STREAM_WINDOW_MAX (1024 * 1024)
#define CONN_WINDOW (8 * 1024 * 1024)
#define CONN_WINDOW_MAX (16 * 1024 * 1024)
#define MAX_STREAMS_BIDI                                                       \
	16384 /* open at once per connection: the core's                       \
	       * limits bound tunnels per peer */
/* What a stream takes from the core before ngtcp2 has acknowledged it. */
#define TX_HOLD (256 * 1024)
#define PAIR_READ_HIGH (64 * 1024)
/* Acknowledgements free a little room at a time: take more from the core
 * only once this much is free, not a few hundred bytes per ACK (each one
 * a round of pair callbacks); a full stream's pair is not read until then
 * (stream_pull). */
#define TX_PULL_ROOM (64 * 1024)
#define CHUNK_SIZE (16 * 1024)
/* How long this node may hold back an ACK (the default is 25 ms). With
 * packet loss, a stream whose hold is full waits on the acknowledgement of
 * one retransmitted packet, sent alone: the peer held that ACK for its
 * whole max_ack_delay (one packet is below its ACK threshold), and the
 * stream stood still meanwhile. 1 ms, the RFC 9002 timer granularity:
 * with 1% loss, 1.3-2x the bulk throughput of 25 ms (bench/quic). */
#define MAX_ACK_DELAY (1 * NGTCP2_MILLISECONDS)

/* Accepting: connections per peer address, handshakes in all. */
#define CONNS_PER_HOST 64
#define CONNS_MAX 4096
#define HANDSHAKES_MAX 1024
/* Stateless resets answered per second. */
#define RESETS_PER_SEC 100

/* Receiving: datagrams per recvmmsg, each buffer big enough for GRO. */
#define RX_BATCH 16
#define RX_BUF (64 * 1024)
/* Sending: packets coalesced into one GSO send. */
#define TX_SEGMENTS 64
#define TX_BUF (64 * 1024)

struct udp;
struct qconn;

struct sock {
	struct udp *u;
	int fd;
	struct event *ev;
	struct sockaddr_storage local;
	socklen_t locallen;
	int family;
	int listening;
	int gso; /* UDP_SEGMENT works here */
	int blocked; /* EAGAIN: waiting for POLLOUT */
	char name[PEER_MAX];
	/* The local address the datagram being dispatched came to (from
	 * IP_PKTINFO / IPV6_PKTINFO; else local): on a wildcard listener of
	 * a host with several addresses, answers leave from it. */
	struct sockaddr_storage rx_local;
	socklen_t rx_locallen;
	int punch; /* nat: a birthday socket of a hub:// dial (heap) */
	int closing; /* nat: its dial is over: closed with its last conn */
	/* nat: a TURN relay's socket (no fd): what it sends goes out
	 * through the relay, what comes to it came through it */
	struct relay *relay;
};

struct chunk {
	struct chunk *next;
	size_t len;
	uint8_t data[CHUNK_SIZE];
};

struct qstream {
	struct qconn *c;
	int64_t id;
	struct bufferevent *mine; /* NULL once closed on our side */
	/* Bytes taken from the core, from the oldest not yet acknowledged:
	 * head_off bytes of the first chunk are acknowledged already;
	 * tx_len bytes are held, tx_sent of them handed to ngtcp2. */
	struct chunk *head, *tail;
	size_t head_off, tx_len, tx_sent;
	uint64_t rx_uncredited; /* given to the core, not yet credited */
	uint64_t rx_total, tx_total; /* for the log */
	unsigned core_gone : 1; /* the core freed its end */
	unsigned core_shut : 1; /* the core's EOF: it writes no more */
	unsigned abort_pending : 1; /* RESET_STREAM once ours is acknowledged */
	unsigned reset_rx : 1; /* the peer reset its direction */
	unsigned fin_queued : 1; /* send a FIN after the held bytes */
	unsigned fin_sent : 1;
	unsigned eof_given : 1; /* the core got EOF */
	unsigned blocked : 1; /* stream flow control */
	unsigned write_shut : 1; /* STOP_SENDING or reset: write no more */
	unsigned announce : 1; /* server: to hand to the core */
	unsigned in_ready : 1;
	unsigned fin_rx : 1; /* the peer's FIN came: EOF once drained */
	unsigned ngclosed : 1; /* ngtcp2 is done with it */
	unsigned acked : 1; /* the peer acknowledged some of it */
	unsigned moved : 1; /* carried over to a new connection once */
	unsigned unopened : 1; /* moved, waiting for its new stream ID */
	unsigned full : 1; /* holds TX_HOLD: the pair's reading is off */
	struct qstream *next, **prevp; /* the connection's streams */
	struct qstream *rnext; /* the connection's ready list */
};

struct cident {
	ngtcp2_cid cid;
	struct qconn *c;
	struct cident *next;
};

struct host {
	struct hl_addr_rec rec; /* first: the table's part */
	unsigned nconns;
	int refusal_logged;
};

struct qconn {
	struct udp *u;
	struct sock *s;
	ngtcp2_conn *conn;
	gnutls_session_t tls;
	ngtcp2_crypto_conn_ref ref;
	int server;
	struct sockaddr_storage remote;
	socklen_t remotelen;
	/* The path's local end: the socket's address for a client, the
	 * address the client's first datagram came to for a server (so
	 * answers leave from the address the client dialled). */
	struct sockaddr_storage local;
	socklen_t locallen;
	char keyhash[41];
	char peer[PEER_MAX];
	struct host *host; /* server: the peer's address entry */
	ngtcp2_cid cids[MAX_CIDS];
	int ncids;
	struct event *timer;
	struct event *write_ev;
	struct qstream *streams;
	size_t nstreams;
	struct qstream *ready_head, *ready_tail;
	size_t nunopened; /* streams moved here, without an ID yet */
	struct hl_dial *waiting; /* client: dials for this connection */
	unsigned char *cert; /* client: the server's certificate (DER) */
	size_t certlen;
	int handshake_done;
	int relayed; /* nat: to the service's relayed address */
	int dead; /* to free at the end of the current entry point */
	int keepalive_on;
	char why[256]; /* why it failed, for dials and the log */
	ngtcp2_connection_close_error last_error;
	struct qconn *next, **prevp;
};

enum dial_state {
	DIAL_START,
	DIAL_RESOLVING,
	DIAL_RESOLVED,
	DIAL_WAITING,
	DIAL_DONE,
	DIAL_PUNCHING, /* nat: a hub:// dial between QUIC attempts */
};

struct hl_dial {
	struct udp *u;
	char keyhash[41];
	char addr[ADDR_MAX];
	char host[ADDR_MAX];
	uint16_t port;
	hl_dial_cb cb;
	void *arg;
	int state;
	struct evdns_getaddrinfo_request *req;
	struct sockaddr_storage ss; /* the lookup's answer */
	socklen_t sslen;
	char why[200];
	struct event *deadline;
	struct event *start;
	struct qconn *c; /* DIAL_WAITING: the connection it waits for */
	struct hl_dial *cnext, **cprevp; /* the connection's waiting list */
	int hub; /* nat: a "hub://" candidate */
	struct hubpunch *punch; /* nat: its lookup and probes */
	struct hl_dial *next, **prevp; /* every dial */
};

struct service {
	char keyhash[41];
	gnutls_certificate_credentials_t cred;
};

struct udp {
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct event_base *base;
	struct sock socks[MAX_SOCKS + 1]; /* the listeners, then ephemeral */
	size_t nsocks;
	struct sock *ephemeral;
	uint8_t secret[SECRET_LEN];
	struct service *services;
	size_t nservices;
	gnutls_certificate_credentials_t client_cred;
	gnutls_priority_t prio;
	struct qconn *conns;
	size_t nconns, nhandshakes;
	struct cident *cids[CID_BUCKETS];
	struct hl_addr_rec *hosts[HOST_BUCKETS];
	struct hl_dial *dials;
	struct event *sweep;
	ngtcp2_duration idle_timeout;
	int stopping;
	/* reset rate limit */
	time_t reset_sec;
	unsigned resets_this_sec;
	uint8_t *rxbuf; /* RX_BATCH * RX_BUF */
	uint8_t txbuf[TX_BUF];
	struct hubnode *hn; /* nat: hubs and punching */
	struct punchsrv *ps; /* punch: hardline-punch streams (punchsrv.c) */
	int punch_client; /* punch: `hlcore punch`'s own dial-only instance */
	/* NEW_TOKENs servers gave (RFC 9000 8.1.3), per server address: the
	 * next connection there skips the Retry round trip. */
	struct token {
		struct sockaddr_storage to;
		socklen_t tolen;
		uint8_t tok[TOKEN_MAX];
		size_t len;
		uint64_t used; /* a counter: the least recent goes first */
	} tokens[TOKENS];
	uint64_t token_clock;
	struct relay *relays[MAX_RELAYS]; /* nat: TURN */
	size_t nrelays;
	char nat_said[256], relays_said[256]; /* nat: status_set, last */
	/* nat: this node's quic:// endpoints with an IP address (a UDP port
	 * mapped by upnp, or forwarded by hand: advertise:), the "mapped"
	 * candidates of its registrations and lookups */
	struct sockaddr_storage mapped[4];
	size_t nmapped;
	/* counters, for the log at exit */
	unsigned long dropped, retries, tokens_ok, resets, refused_host,
	    refused_full, refused_sni, conns_in, conns_out, streams_in,
	    streams_out;
};

/* nat: a TURN relay ("TURN relays" below). */
struct relay {
	struct udp *u;
	struct turn_url url;
	char name[TURN_HOST_MAX + 8]; /* host:port, for the log */
	struct turn *t;
	struct sock vs;
	struct sock *under;
	struct sockaddr_storage server; /* in under's family */
	socklen_t serverlen;
	struct evdns_getaddrinfo_request *req;
	int resolving;
	struct event *timer;
	int told; /* its relayed candidate is out */
	unsigned retry_ms;
	int quick; /* 437 retries in a row */
};

static const char priority_str[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+AES-128-GCM:"
    "+CHACHA20-POLY1305:+AES-256-GCM:%DISABLE_TLS13_COMPAT_MODE";

struct relay;
static int relay_send(struct relay *r, const struct sockaddr *to,
                      socklen_t tolen, const uint8_t *buf, size_t n,
                      size_t segsize);
static void relay_settings(ngtcp2_settings *st, ngtcp2_transport_params *p);
static void *hub_io_listener_for(void *ctx, int family, uint16_t *port);
static void conn_schedule_write(struct qconn *c);
static void conn_fail(struct qconn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void conn_free(struct qconn *c);
static void hub_sock_release(struct udp *u, struct sock *s);
static void stream_free(struct qstream *st);
static void stream_pull(struct qstream *st);
static void stream_give_eof(struct qstream *st);
static void stream_peer_left(struct qstream *st);
static void dial_finish(struct hl_dial *d, struct bufferevent *bev,
                        const char *error);
static void conn_serve_waiting(struct qconn *c);
static struct qconn *conn_client_new(struct udp *u, struct sock *s,
                                     const struct sockaddr *remote,
                                     socklen_t remotelen, const char *keyhash);

/* Nanoseconds on clock id: CLOCK_MONOTONIC for ngtcp2's timestamps,
 * CLOCK_REALTIME where a time must survive a restart (Retry tokens). */
static ngtcp2_tstamp
clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (ngtcp2_tstamp)ts.tv_sec * NGTCP2_SECONDS +
	       (ngtcp2_tstamp)ts.tv_nsec;
}

static ngtcp2_tstamp
realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

static ngtcp2_tstamp
now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static void
rand_bytes(void *p, size_t n)
{
	(void)gnutls_rnd(GNUTLS_RND_RANDOM, p, n);
}

/* ---- the connection ID table ---- */

static struct cident **
cid_bucket(struct udp *u, const uint8_t *cid, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ cid[i]) * 16777619u;
	return &u->cids[h % CID_BUCKETS];
}

static struct qconn *
cid_find(struct udp *u, const uint8_t *cid, size_t len)
{
	for (struct cident *e = *cid_bucket(u, cid, len); e != NULL;
	     e = e->next)
		if (e->cid.datalen == len && memcmp(e->cid.data, cid, len) == 0)
			return e->c;
	return NULL;
}

static int
cid_add(struct qconn *c, const ngtcp2_cid *cid)
{
	struct udp *u = c->u;
	struct cident **b, *e;

	if (c->ncids == MAX_CIDS || cid_find(u, cid->data, cid->datalen))
		return -1;
	e = calloc(1, sizeof *e);
	if (e == NULL)
		return -1;
	e->cid = *cid;
	e->c = c;
	b = cid_bucket(u, cid->data, cid->datalen);
	e->next = *b;
	*b = e;
	c->cids[c->ncids++] = *cid;
	return 0;
}

static void
cid_remove(struct qconn *c, const ngtcp2_cid *cid)
{
	struct cident **pp = cid_bucket(c->u, cid->data, cid->datalen);

	for (; *pp != NULL; pp = &(*pp)->next) {
		struct cident *e = *pp;
		if (e->c == c && ngtcp2_cid_eq(&e->cid, cid)) {
			*pp = e->next;
			free(e);
			break;
		}
	}
	for (int i = 0; i < c->ncids; i++)
		if (ngtcp2_cid_eq(&c->cids[i], cid)) {
			c->cids[i] = c->cids[--c->ncids];
			break;
		}
}

/* ---- peer addresses (accepting) ---- */

/* Forget a peer that has nothing in progress any more. */
static void
host_release(struct udp *x, struct host *h)
{
	if (h->nconns != 0)
		return;
	hl_addr_rec_free(x->hosts, HOST_BUCKETS, &h->rec);
}

/* ---- sockets ---- */

static void sock_event_callback(evutil_socket_t fd, short what, void *arg);
static const struct sockaddr *specific_src(const struct sockaddr *src);

static void
sockaddr_to_sock_family(const struct sock *s, const struct sockaddr *sa,
                        socklen_t len, struct sockaddr_storage *out,
                        socklen_t *outlen)
{
	/* A dual-stack IPv6 socket reaches IPv4 peers as v4-mapped. */
	if (s->family == AF_INET6 && sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;
		memset(s6, 0, sizeof *s6);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = s4->sin_port;
		s6->sin6_addr.s6_addr[10] = 0xff;
		s6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&s6->sin6_addr.s6_addr[12], &s4->sin_addr, 4);
		*outlen = sizeof *s6;
		return;
	}
	memcpy(out, sa, len);
	*outlen = len;
}

/* The same address and port (both in the socket's family). */
static int
sa_same(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a,
		                         *y = (const void *)b;
		return x->sin_port == y->sin_port &&
		       x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a,
		                          *y = (const void *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return 0;
}

static int
sock_open(struct udp *u, struct sock *s, const struct sockaddr *sa,
          socklen_t salen, int listening)
{
	int fd, on = 1, off = 0, big = 8 * 1024 * 1024;
	socklen_t len = sizeof s->local;

	fd =
	    socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
	if (listening)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	/* Bigger buffers than the default 208 KiB: a burst of a window's
	 * worth of datagrams must not be dropped by the kernel. FORCE needs
	 * CAP_NET_ADMIN; without it the sysctl maximum applies. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) != 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) != 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	if (bind(fd, sa, salen) != 0 ||
	    getsockname(fd, (struct sockaddr *)&s->local, &len) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	/* GRO: the kernel may hand several datagrams of one flow in one
	 * read, with their size in a control message. */
	setsockopt(fd, IPPROTO_UDP, UDP_GRO, &on, sizeof on);
	/* ICMP errors (port unreachable) on the error queue, with the
	 * address they concern: a dial to a closed port fails at once
	 * instead of after the handshake timeout. */
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof on);
	setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
	/* The destination address of each datagram (IPv4 ones on a
	 * dual-stack socket come with IP_PKTINFO). */
	if (sa->sa_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof on);
	setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof on);
	s->u = u;
	s->fd = fd;
	s->locallen = len;
	s->rx_local = s->local;
	s->rx_locallen = len;
	s->family = sa->sa_family;
	s->listening = listening;
	s->gso = 1; /* until a send says otherwise */
	hl_sockaddr_str((struct sockaddr *)&s->local, s->name, sizeof s->name);
	s->ev = event_new(u->base, fd, EV_READ | EV_PERSIST,
	                  sock_event_callback, s);
	if (s->ev == NULL || event_add(s->ev, NULL) != 0) {
		if (s->ev != NULL)
			event_free(s->ev);
		close(fd);
		return -1;
	}
	return 0;
}

static void
sock_close(struct sock *s)
{
	hl_event_free(&s->ev);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* The socket a dial to sa goes out of: a listener of a fitting family
 * (so that the peer sees the port it may know us by), else the ephemeral
 * one, made on first use. */
static struct sock *
sock_for(struct udp *u, int family)
{
	for (size_t i = 0; i < u->nsocks; i++) {
		struct sock *s = &u->socks[i];
		/* Only a wildcard listener reaches any address (one bound
		 * to 127.0.0.1, say, reaches none beyond this host). */
		if (specific_src((struct sockaddr *)&s->local) == NULL &&
		    (s->family == family || s->family == AF_INET6))
			return s;
	}
	if (u->ephemeral == NULL) {
		struct sock *s = &u->socks[MAX_SOCKS];
		struct sockaddr_in6 any6 = {.sin6_family = AF_INET6};
		struct sockaddr_in any4 = {.sin_family = AF_INET};

		if (sock_open(u, s, (struct sockaddr *)&any6, sizeof any6, 0) !=
		        0 &&
		    sock_open(u, s, (struct sockaddr *)&any4, sizeof any4, 0) !=
		        0) {
			u->svc->log(u->self, HL_LOG_ERROR,
			            "cannot open a UDP socket: %s",
			            strerror(errno));
			return NULL;
		}
		u->ephemeral = s;
		u->svc->log(u->self, HL_LOG_DEBUG,
		            "dialling from the UDP socket %s", s->name);
	}
	if (u->ephemeral->family != family && u->ephemeral->family != AF_INET6)
		return NULL;
	return u->ephemeral;
}

/* The source address to set on a datagram: NULL for none (a socket
 * bound to one address, or a wildcard one that has no better idea). */
static const struct sockaddr *
specific_src(const struct sockaddr *src)
{
	if (src == NULL)
		return NULL;
	if (src->sa_family == AF_INET)
		return ((const struct sockaddr_in *)src)->sin_addr.s_addr ==
		               htonl(INADDR_ANY)
		           ? NULL
		           : src;
	if (src->sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(
		           &((const struct sockaddr_in6 *)src)->sin6_addr)
		           ? NULL
		           : src;
	return NULL;
}

#define CTL_SPACE                                                              \
	(CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(struct in6_pktinfo)))

/* The control messages of one send: the GSO segment size (seg, 0: none)
 * and the source address (src, NULL: the kernel's choice). */
static void
set_ctl(struct msghdr *mh, char *ctl, int family, const struct sockaddr *src,
        uint16_t seg)
{
	struct cmsghdr *c;
	size_t len = 0;

	memset(ctl, 0, CTL_SPACE);
	mh->msg_control = ctl;
	mh->msg_controllen = CTL_SPACE;
	c = CMSG_FIRSTHDR(mh);
	if (seg != 0) {
		c->cmsg_level = SOL_UDP;
		c->cmsg_type = UDP_SEGMENT;
		c->cmsg_len = CMSG_LEN(sizeof seg);
		memcpy(CMSG_DATA(c), &seg, sizeof seg);
		len += CMSG_SPACE(sizeof seg);
		c = CMSG_NXTHDR(mh, c);
	}
	if (src != NULL && family == AF_INET6 && src->sa_family == AF_INET6) {
		struct in6_pktinfo pi = {0};
		pi.ipi6_addr = ((const struct sockaddr_in6 *)src)->sin6_addr;
		c->cmsg_level = IPPROTO_IPV6;
		c->cmsg_type = IPV6_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof pi);
		memcpy(CMSG_DATA(c), &pi, sizeof pi);
		len += CMSG_SPACE(sizeof pi);
	} else if (src != NULL && family == AF_INET &&
	           src->sa_family == AF_INET) {
		struct in_pktinfo pi = {0};
		pi.ipi_spec_dst = ((const struct sockaddr_in *)src)->sin_addr;
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof pi);
		memcpy(CMSG_DATA(c), &pi, sizeof pi);
		len += CMSG_SPACE(sizeof pi);
	}
	mh->msg_controllen = len;
	if (len == 0)
		mh->msg_control = NULL;
}

/*
 * Send n bytes of packets to the peer, from src (NULL: the kernel's
 * choice): one datagram, or several of segsize bytes each (the last may be
 * shorter) with GSO where the kernel takes it, else one by one. Returns
 * 0, or -1 with EAGAIN when the socket is full (nothing of it was sent).
 */
static int
sock_send(struct sock *s, const struct sockaddr *src, const struct sockaddr *to,
          socklen_t tolen, const uint8_t *buf, size_t n, size_t segsize)
{
	struct iovec iov = {(void *)buf, n};
	struct msghdr mh = {0};
	char ctl[CTL_SPACE];
	ssize_t r;

	if (s->relay != NULL) /* nat: through a TURN relay */
		return relay_send(s->relay, to, tolen, buf, n, segsize);
	src = specific_src(src);
	mh.msg_name = (void *)to;
	mh.msg_namelen = tolen;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (s->gso && n > segsize) {
		set_ctl(&mh, ctl, s->family, src, (uint16_t)segsize);
		do
			r = sendmsg(s->fd, &mh, 0);
		while (r < 0 && errno == EINTR);
		if (r >= 0)
			return 0;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -1;
		if (errno == EIO || errno == EINVAL || errno == ENOPROTOOPT ||
		    errno == EOPNOTSUPP) {
			/* No GSO on this path (device or kernel): send the
			 * segments one by one from now on. */
			s->gso = 0;
			s->u->svc->log(s->u->self, HL_LOG_DEBUG,
			               "%s: no UDP GSO (%s); sending datagrams "
			               "one by one",
			               s->name, strerror(errno));
		} else
			return 0; /* unreachable and such: QUIC recovers */
	}
	if (n <= segsize) {
		set_ctl(&mh, ctl, s->family, src, 0);
		do
			r = sendmsg(s->fd, &mh, 0);
		while (r < 0 && errno == EINTR);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -1;
		return 0;
	}
	{
		struct mmsghdr mm[TX_SEGMENTS];
		struct iovec iv[TX_SEGMENTS];
		char ctls[TX_SEGMENTS][CTL_SPACE];
		unsigned k = 0;
		for (size_t off = 0; off < n && k < TX_SEGMENTS;
		     off += segsize, k++) {
			iv[k].iov_base = (void *)(buf + off);
			iv[k].iov_len = n - off < segsize ? n - off : segsize;
			memset(&mm[k], 0, sizeof mm[k]);
			mm[k].msg_hdr.msg_name = (void *)to;
			mm[k].msg_hdr.msg_namelen = tolen;
			mm[k].msg_hdr.msg_iov = &iv[k];
			mm[k].msg_hdr.msg_iovlen = 1;
			set_ctl(&mm[k].msg_hdr, ctls[k], s->family, src, 0);
		}
		do
			r = sendmmsg(s->fd, mm, k, 0);
		while (r < 0 && errno == EINTR);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return -1;
		/* A partial send: the rest counts as lost. */
	}
	return 0;
}

/* ---- GnuTLS ---- */

static ngtcp2_conn *
get_conn(ngtcp2_crypto_conn_ref *ref)
{
	return ((struct qconn *)ref->user_data)->conn;
}

/* Server: pick the service's certificate by SNI; fail any other name. */
static int
post_client_hello(gnutls_session_t session)
{
	ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(session);
	struct qconn *c = ref->user_data;
	struct udp *u = c->u;
	char name[256], kh[41];
	size_t len = sizeof name - 1;
	unsigned type;

#ifdef HL_QUIC_TEST_IMPOSTOR
	/* The test fixture answers every name with its first service's
	 * certificate, as an impostor would. */
	if (u->nservices > 0) {
		snprintf(c->keyhash, sizeof c->keyhash, "%s",
		         u->services[0].keyhash);
		return gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE,
		                              u->services[0].cred);
	}
#endif
	if (gnutls_server_name_get(session, name, &len, &type, 0) == 0 &&
	    type == GNUTLS_NAME_DNS &&
	    hl_keyhash_lower(name, strnlen(name, len), kh) == 0)
		for (size_t i = 0; i < u->nservices; i++)
			if (strcmp(kh, u->services[i].keyhash) == 0) {
				snprintf(c->keyhash, sizeof c->keyhash, "%s",
				         kh);
				return gnutls_credentials_set(
				    session, GNUTLS_CRD_CERTIFICATE,
				    u->services[i].cred);
			}
	u->refused_sni++;
	return GNUTLS_E_UNRECOGNIZED_NAME;
}

/* Client: pin the server's certificate by its keyhash. */
static int
verify_peer(gnutls_session_t session)
{
	ngtcp2_crypto_conn_ref *ref = gnutls_session_get_ptr(session);
	struct qconn *c = ref->user_data;
	unsigned n = 0;
	const gnutls_datum_t *certs = gnutls_certificate_get_peers(session, &n);
	char got[41];

	if (certs == NULL || n == 0 || certs[0].size == 0) {
		snprintf(c->why, sizeof c->why,
		         "the server sent no certificate");
		return -1;
	}
	c->u->svc->keyhash_of_cert(certs[0].data, certs[0].size, got);
	if (strcmp(got, c->keyhash) != 0) {
		snprintf(
		    c->why, sizeof c->why,
		    "answered with a certificate whose hash is %s, not the "
		    "one in the URL: an impostor or a different service",
		    got);
		return -1;
	}
	free(c->cert);
	c->cert = malloc(certs[0].size);
	if (c->cert == NULL)
		return -1;
	memcpy(c->cert, certs[0].data, certs[0].size);
	c->certlen = certs[0].size;
	return 0;
}

static int
tls_new(struct qconn *c)
{
	struct udp *u = c->u;
	/* punch: a server takes "hardline-punch" too (punchsrv.c); the
	 * client of `hlcore punch` offers only that. */
	gnutls_datum_t alpn[2] = {
	    {(unsigned char *)ALPN, sizeof ALPN - 1},
	    {(unsigned char *)PUNCHCTL_ALPN, sizeof PUNCHCTL_ALPN - 1}};
	int rv;

	rv = gnutls_init(&c->tls, c->server ? GNUTLS_SERVER : GNUTLS_CLIENT);
	if (rv != 0) {
		c->tls = NULL;
		return -1;
	}
	if ((c->server ? ngtcp2_crypto_gnutls_configure_server_session(c->tls)
	               : ngtcp2_crypto_gnutls_configure_client_session(
	                     c->tls)) != 0 ||
	    gnutls_priority_set(c->tls, u->prio) != 0 ||
	    gnutls_alpn_set_protocols(
	        c->tls, !c->server && u->punch_client ? alpn + 1 : alpn,
	        c->server ? 2 : 1, GNUTLS_ALPN_MANDATORY) != 0)
		return -1;
	c->ref.get_conn = get_conn;
	c->ref.user_data = c;
	gnutls_session_set_ptr(c->tls, &c->ref);
	if (c->server) {
		/* No session tickets: nothing to resume, as over TLS. */
		gnutls_handshake_set_post_client_hello_function(
		    c->tls, post_client_hello);
	} else {
		if (gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE,
		                           u->client_cred) != 0 ||
		    gnutls_server_name_set(c->tls, GNUTLS_NAME_DNS, c->keyhash,
		                           strlen(c->keyhash)) != 0)
			return -1;
		gnutls_session_set_verify_function(c->tls, verify_peer);
	}
	return 0;
}

/* ---- streams ---- */

static void
ready_push(struct qstream *st)
{
	struct qconn *c = st->c;

	if (st->in_ready || st->unopened)
		return;
	st->in_ready = 1;
	st->rnext = NULL;
	if (c->ready_tail != NULL)
		c->ready_tail->rnext = st;
	else
		c->ready_head = st;
	c->ready_tail = st;
}

static void
ready_drop(struct qconn *c, struct qstream *st)
{
	struct qstream **pp = &c->ready_head, *prev = NULL;

	if (!st->in_ready)
		return;
	for (; *pp != NULL; prev = *pp, pp = &(*pp)->rnext)
		if (*pp == st) {
			*pp = st->rnext;
			if (c->ready_tail == st)
				c->ready_tail = prev;
			break;
		}
	st->in_ready = 0;
}

/* The stream has something for ngtcp2: unsent bytes or a FIN. */
static int
stream_wants_write(const struct qstream *st)
{
	if (st->write_shut || st->fin_sent || st->blocked)
		return 0;
	return st->tx_len > st->tx_sent || st->fin_queued;
}

static void
stream_credit(struct qstream *st)
{
	struct qconn *c = st->c;
	size_t held;
	uint64_t n;

	if (st->mine == NULL)
		return;
	held = evbuffer_get_length(bufferevent_get_output(st->mine));
	if (held == 0 && st->fin_rx)
		stream_give_eof(st);
	if (st->rx_uncredited == 0 || held >= st->rx_uncredited)
		return;
	n = st->rx_uncredited - held;
	st->rx_uncredited = held;
	/* A closed stream's bytes still count in the connection's window. */
	if (!st->ngclosed)
		ngtcp2_conn_extend_max_stream_offset(c->conn, st->id, n);
	ngtcp2_conn_extend_max_offset(c->conn, n);
	conn_schedule_write(c);
}

/* Tell the core the stream ended (EOF on its end), once, and only when
 * every byte before it has moved to the core's end: a pair's
 * BEV_FINISHED flush moves no more than the core's read watermark (4 KiB
 * during the OOB exchange), so an early EOF would cut the stream. */
static void
stream_give_eof(struct qstream *st)
{
	if (st->eof_given || st->mine == NULL)
		return;
	st->fin_rx = 1;
	if (evbuffer_get_length(bufferevent_get_output(st->mine)) > 0)
		return; /* pair_write_callback comes back when it drained */
	st->eof_given = 1;
	if (bufferevent_pair_get_partner(st->mine) != NULL)
		bufferevent_flush(st->mine, EV_WRITE, BEV_FINISHED);
	if (st->reset_rx)
		stream_peer_left(st);
}

/* The peer reset its direction: its hlcore has left the tunnel (it resets
 * only when nobody reads there any more), so the tunnel ends as a whole,
 * not half: our end goes, and the core's end sees EOF with its partner
 * gone. What the core wrote and we did not take yet is dropped; our
 * direction ends with a FIN after what is held. */
static void
stream_peer_left(struct qstream *st)
{
	hl_bufferevent_free(&st->mine);
	st->core_gone = 1;
	st->eof_given = 1;
	st->abort_pending = 0;
	if (!st->fin_queued && !st->write_shut) {
		st->fin_queued = 1;
		if (stream_wants_write(st))
			ready_push(st);
		conn_schedule_write(st->c);
	}
}

/* Once every byte we sent is acknowledged: the RESET_STREAM that tells
 * the peer its tunnel has ended (stream_end_send). A reset gives up what
 * is not acknowledged yet, hence the wait. */
static void
stream_abort_when_acked(struct qstream *st)
{
	struct qconn *c = st->c;

	if (!st->abort_pending || st->tx_len > 0 || st->ngclosed ||
	    c->conn == NULL || c->dead)
		return;
	st->abort_pending = 0;
	st->write_shut = 1;
	ready_drop(c, st);
	ngtcp2_conn_shutdown_stream_write(c->conn, st->id, 0);
	conn_schedule_write(c);
}

/* The core is gone and every byte it wrote is held here: end our
 * direction. With a FIN when the peer's direction has ended too (a
 * normal close) or ours had (a half-close before); else the peer would
 * take a FIN for a half-close and go on sending to nobody: a
 * RESET_STREAM instead, which hlcore takes for the end of the tunnel.
 * (No STOP_SENDING: see stream_core_gone.) */
static void
stream_end_send(struct qstream *st)
{
	if (st->fin_queued || st->abort_pending || st->write_shut)
		return;
	if (!st->fin_rx) {
		st->abort_pending = 1;
		stream_abort_when_acked(st);
		return;
	}
	st->fin_queued = 1;
}

/* The core closed its end: send what it wrote, then a FIN; stop the
 * peer's direction. */
static void
stream_core_gone(struct qstream *st)
{
	struct qconn *c = st->c;

	if (st->core_gone)
		return;
	st->core_gone = 1;
	if (st->ngclosed || st->unopened) {
		/* Nothing more can go either way. */
		stream_free(st);
		return;
	}
	stream_pull(st);
	/* What the peer still sends is read and dropped (and credited) until
	 * its FIN, which comes once our FIN or RESET_STREAM (stream_end_send)
	 * has ended the tunnel on its side. No STOP_SENDING: the RESET_STREAM
	 * it draws from ngtcp2 0.12 can race with stream data in one packet
	 * (a FINAL_SIZE_ERROR that kills the whole connection). So a tunnel
	 * that half-closed our way before the core left is not told that
	 * nobody reads: the peer's side goes on until its own end closes. */
	st->eof_given = 1;
	if (st->rx_uncredited > 0 && !st->ngclosed) {
		ngtcp2_conn_extend_max_stream_offset(c->conn, st->id,
		                                     st->rx_uncredited);
		ngtcp2_conn_extend_max_offset(c->conn, st->rx_uncredited);
		st->rx_uncredited = 0;
	}
	if (st->mine != NULL &&
	    evbuffer_get_length(bufferevent_get_input(st->mine)) == 0) {
		bufferevent_free(st->mine);
		st->mine = NULL;
	}
	if (st->mine == NULL) {
		stream_end_send(st);
		if (stream_wants_write(st))
			ready_push(st);
	}
	conn_schedule_write(c);
}

/* Take what the core wrote, while the stream may hold more. */
static void
stream_pull(struct qstream *st)
{
	struct evbuffer *in;
	int added = 0;

	if (st->mine == NULL)
		return;
	in = bufferevent_get_input(st->mine);
	if (st->write_shut || st->ngclosed) {
		/* Nothing more goes out: what the core writes is dropped. */
		if (st->full) {
			st->full = 0;
			bufferevent_enable(st->mine, EV_READ);
		}
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	while (st->tx_len < TX_HOLD && evbuffer_get_length(in) > 0) {
		struct chunk *t = st->tail;
		size_t room;
		int n;

		if (t == NULL || t->len == CHUNK_SIZE) {
			t = malloc(sizeof *t);
			if (t == NULL)
				break;
			t->next = NULL;
			t->len = 0;
			if (st->tail != NULL)
				st->tail->next = t;
			else
				st->head = t;
			st->tail = t;
		}
		room = CHUNK_SIZE - t->len;
		if (room > TX_HOLD - st->tx_len)
			room = TX_HOLD - st->tx_len;
		n = evbuffer_remove(in, t->data + t->len, room);
		if (n <= 0)
			break;
		t->len += (size_t)n;
		st->tx_len += (size_t)n;
		st->tx_total += (size_t)n;
		added = 1;
	}
	if (st->tx_len >= TX_HOLD && !st->full) {
		/* Full: stop reading the pair until acknowledgements free
		 * TX_PULL_ROOM. Left on, libevent 2.1 runs this callback
		 * again and again while the pair's input stays at its high
		 * watermark (bufferevent_inbuf_wm_check): a busy loop that
		 * took most of the CPU of a bulk transfer. */
		st->full = 1;
		bufferevent_disable(st->mine, EV_READ);
	}
	if (st->core_gone && st->mine != NULL && evbuffer_get_length(in) == 0) {
		bufferevent_free(st->mine);
		st->mine = NULL;
		stream_end_send(st);
		added = 1;
	}
	if (st->core_shut && !st->fin_queued && st->mine != NULL &&
	    evbuffer_get_length(in) == 0) {
		st->fin_queued = 1; /* after every byte the core wrote */
		added = 1;
	}
	if (added && stream_wants_write(st)) {
		ready_push(st);
		conn_schedule_write(st->c);
	}
}

static void
pair_read_callback(struct bufferevent *bev HL_UNUSED, void *arg)
{
	stream_pull(arg);
}

static void
pair_write_callback(struct bufferevent *bev HL_UNUSED, void *arg)
{
	struct qstream *st = arg;

	stream_credit(st);
	/* ngtcp2 closed it while the core had bytes still to take. */
	if (st->ngclosed && st->eof_given)
		stream_free(st);
}

/* The core's EOF: a half-close (a flush of its writing side only: it
 * reads on), or the end of the tunnel (flushed both ways, with
 * BEV_EVENT_WRITING, before the core frees its end; or that end already
 * gone). */
static void
pair_event_callback(struct bufferevent *bev, short what, void *arg)
{
	struct qstream *st = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if ((what & (BEV_EVENT_ERROR | BEV_EVENT_WRITING)) ||
	    bufferevent_pair_get_partner(bev) == NULL) {
		stream_core_gone(st);
		return;
	}
	if (st->core_shut || st->core_gone)
		return;
	st->core_shut = 1;
	stream_pull(st); /* queues the FIN once the core's bytes are taken */
}

static struct qstream *
stream_new(struct qconn *c, int64_t id, struct bufferevent **theirs)
{
	struct qstream *st = calloc(1, sizeof *st);
	struct bufferevent *pair[2];

	if (st == NULL)
		return NULL;
	if (bufferevent_pair_new(c->u->base, BEV_OPT_DEFER_CALLBACKS, pair) !=
	    0) {
		free(st);
		return NULL;
	}
	st->c = c;
	st->id = id;
	st->mine = pair[0];
	*theirs = pair[1];
	bufferevent_setcb(st->mine, pair_read_callback, pair_write_callback,
	                  pair_event_callback, st);
	bufferevent_setwatermark(st->mine, EV_READ, 0, PAIR_READ_HIGH);
	bufferevent_enable(st->mine, EV_READ | EV_WRITE);
	HL_LIST_INSERT(c->streams, st);
	c->nstreams++;
	ngtcp2_conn_set_stream_user_data(c->conn, id, st);
	if (!c->keepalive_on) {
		ngtcp2_conn_set_keep_alive_timeout(c->conn,
		                                   c->u->idle_timeout / 3);
		c->keepalive_on = 1;
	}
	return st;
}

static void
stream_free(struct qstream *st)
{
	struct qconn *c = st->c;

	c->u->svc->log(
	    c->u->self, HL_LOG_DEBUG,
	    "stream %lld %s %s: %llu bytes in, %llu out%s%s%s%s",
	    (long long)st->id, c->server ? "from" : "to", c->peer,
	    (unsigned long long)st->rx_total, (unsigned long long)st->tx_total,
	    st->fin_rx ? ", FIN in" : "", st->fin_sent ? ", FIN out" : "",
	    st->core_gone ? ", closed by hlcore" : "",
	    st->mine && evbuffer_get_length(bufferevent_get_output(st->mine))
	        ? ", bytes lost"
	        : "");
	/* Bytes the core never took: the connection's window gets them
	 * back, or it would shrink with every such stream. */
	if (st->rx_uncredited > 0 && c->conn != NULL && !c->dead) {
		ngtcp2_conn_extend_max_offset(c->conn, st->rx_uncredited);
		conn_schedule_write(c);
	}
	ready_drop(c, st);
	HL_LIST_REMOVE(st);
	c->nstreams--;
	if (st->unopened)
		c->nunopened--;
	if (c->conn != NULL && !st->ngclosed && !st->unopened)
		ngtcp2_conn_set_stream_user_data(c->conn, st->id, NULL);
	if (st->mine != NULL) {
		/* The core may still hold its end: it sees EOF (and loses
		 * what it did not take: the connection is gone). */
		/* Not when hlcore stops: the EOF is a deferred callback that
		 * would hold the core's end (and leak it) with no loop left
		 * to run it; the core frees its ends itself. */
		if (!st->eof_given && !c->u->stopping &&
		    bufferevent_pair_get_partner(st->mine) != NULL) {
			st->eof_given = 1;
			bufferevent_flush(st->mine, EV_WRITE, BEV_FINISHED);
		}
		bufferevent_free(st->mine);
	}
	while (st->head != NULL) {
		struct chunk *n = st->head->next;
		free(st->head);
		st->head = n;
	}
	free(st);
	if (c->nstreams == 0 && c->keepalive_on && c->conn != NULL) {
		/* No tunnels: let the connection idle out. (0 turns it off
		 * in ngtcp2 0.12; UINT64_MAX would overflow its expiry into
		 * the past and send PINGs without end.) */
		ngtcp2_conn_set_keep_alive_timeout(c->conn, 0);
		c->keepalive_on = 0;
	}
}

/* ---- ngtcp2 callbacks ---- */

static void
rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx HL_UNUSED)
{
	rand_bytes(dest, len);
}

static int
get_new_connection_id(ngtcp2_conn *conn HL_UNUSED, ngtcp2_cid *cid,
                      uint8_t *token, size_t cidlen, void *user_data)
{
	struct qconn *c = user_data;

	cid->datalen = cidlen;
	do
		rand_bytes(cid->data, cidlen);
	while (cid_find(c->u, cid->data, cidlen) != NULL);
	if (ngtcp2_crypto_generate_stateless_reset_token(
	        token, c->u->secret, sizeof c->u->secret, cid) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	if (cid_add(c, cid) != 0)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	return 0;
}

static int
remove_connection_id(ngtcp2_conn *conn HL_UNUSED, const ngtcp2_cid *cid,
                     void *user_data)
{
	cid_remove(user_data, cid);
	return 0;
}

static int
handshake_completed(ngtcp2_conn *conn HL_UNUSED, void *user_data)
{
	struct qconn *c = user_data;

	c->handshake_done = 1;
	if (c->u->nhandshakes > 0 && c->server)
		c->u->nhandshakes--;
	if (c->server) {
		/* A token for this address: its next connection needs no
		 * Retry (accept_initial). */
		uint8_t tok[NGTCP2_CRYPTO_MAX_REGULAR_TOKENLEN];
		ngtcp2_ssize n = ngtcp2_crypto_generate_regular_token(
		    tok, c->u->secret, sizeof c->u->secret,
		    (struct sockaddr *)&c->remote, c->remotelen, realtime_ns());
		if (n > 0)
			ngtcp2_conn_submit_new_token(c->conn, tok, (size_t)n);
	}
	return 0;
}

/* Client: a server's NEW_TOKEN, kept for its address. */
static int
recv_new_token_cb(ngtcp2_conn *conn HL_UNUSED, const ngtcp2_vec *token,
                  void *user_data)
{
	struct qconn *c = user_data;
	struct udp *u = c->u;
	struct token *t = &u->tokens[0];

	if (token->len == 0 || token->len > TOKEN_MAX)
		return 0;
	for (size_t i = 0; i < TOKENS; i++) {
		struct token *x = &u->tokens[i];
		if (x->tolen == c->remotelen &&
		    memcmp(&x->to, &c->remote, c->remotelen) == 0) {
			t = x;
			break;
		}
		if (x->used < t->used)
			t = x;
	}
	memcpy(&t->to, &c->remote, c->remotelen);
	t->tolen = c->remotelen;
	memcpy(t->tok, token->base, token->len);
	t->len = token->len;
	t->used = ++u->token_clock;
	return 0;
}

static int
stream_open_cb(ngtcp2_conn *conn HL_UNUSED, int64_t id, void *user_data)
{
	struct qconn *c = user_data;
	struct bufferevent *theirs;
	struct qstream *st;

	if (!c->server || !ngtcp2_is_bidi_stream(id))
		return 0;
	st = stream_new(c, id, &theirs);
	if (st == NULL)
		return NGTCP2_ERR_CALLBACK_FAILURE;
	/* Handed to the core once this packet is processed: the core must
	 * not run inside ngtcp2. theirs is found again as the partner. */
	st->announce = 1;
	c->u->streams_in++;
	return 0;
}

static int
recv_stream_data(ngtcp2_conn *conn, uint32_t flags, int64_t id,
                 uint64_t offset HL_UNUSED, const uint8_t *data, size_t len,
                 void *user_data HL_UNUSED, void *stream_user_data)
{
	struct qstream *st = stream_user_data;

	if (st == NULL || st->mine == NULL || st->core_gone) {
		/* Nobody reads it: credit it at once. */
		ngtcp2_conn_extend_max_stream_offset(conn, id, len);
		ngtcp2_conn_extend_max_offset(conn, len);
		if (st != NULL && (flags & NGTCP2_STREAM_DATA_FLAG_FIN)) {
			/* The peer's direction ended: a FIN ends ours, no
			 * reset needed any more. */
			st->fin_rx = 1;
			if (st->abort_pending) {
				st->abort_pending = 0;
				stream_end_send(st);
				if (stream_wants_write(st))
					ready_push(st);
				conn_schedule_write(st->c);
			}
		}
		return 0;
	}
	if (len > 0) {
		st->rx_total += len;
		bufferevent_write(st->mine, data, len);
		st->rx_uncredited += len;
		stream_credit(st);
	}
	if (flags & NGTCP2_STREAM_DATA_FLAG_FIN)
		stream_give_eof(st);
	return 0;
}

static int
acked_stream_data_offset(ngtcp2_conn *conn HL_UNUSED, int64_t id HL_UNUSED,
                         uint64_t offset HL_UNUSED, uint64_t len,
                         void *user_data HL_UNUSED, void *stream_user_data)
{
	struct qstream *st = stream_user_data;

	if (st == NULL)
		return 0;
	if (len > 0)
		st->acked = 1;
	while (len > 0 && st->head != NULL) {
		struct chunk *h = st->head;
		size_t avail = h->len - st->head_off;
		size_t n = len < avail ? (size_t)len : avail;

		st->head_off += n;
		st->tx_len -= n;
		st->tx_sent -= n;
		len -= n;
		/* Fully acknowledged: freed, the tail too (an idle tunnel
		 * keeps no buffer). */
		if (st->head_off == h->len) {
			st->head = h->next;
			if (st->head == NULL)
				st->tail = NULL;
			free(h);
			st->head_off = 0;
		}
	}
	stream_abort_when_acked(st);
	/* Room again: take more from the core, in a useful amount. */
	if (st->tx_len + TX_PULL_ROOM <= TX_HOLD) {
		if (st->full && st->mine != NULL) {
			st->full = 0;
			bufferevent_enable(st->mine, EV_READ);
		}
		stream_pull(st);
	}
	return 0;
}

static int
stream_close_cb(ngtcp2_conn *conn, uint32_t flags HL_UNUSED, int64_t id,
                uint64_t app_error_code HL_UNUSED, void *user_data,
                void *stream_user_data)
{
	struct qconn *c = user_data;
	struct qstream *st = stream_user_data;

	if (c->server && ngtcp2_is_bidi_stream(id))
		ngtcp2_conn_extend_max_streams_bidi(conn, 1);
	if (st == NULL)
		return 0;
	st->ngclosed = 1;
	ready_drop(c, st);
	/* Bytes the core has not taken yet stay until it has (then EOF). */
	if (st->mine != NULL && !st->core_gone && !st->eof_given &&
	    bufferevent_pair_get_partner(st->mine) != NULL &&
	    evbuffer_get_length(bufferevent_get_output(st->mine)) > 0) {
		st->fin_rx = 1;
		stream_pull(st); /* drops what the core still writes */
		return 0;
	}
	stream_free(st);
	return 0;
}

static int
stream_reset_cb(ngtcp2_conn *conn HL_UNUSED, int64_t id HL_UNUSED,
                uint64_t final_size HL_UNUSED,
                uint64_t app_error_code HL_UNUSED, void *user_data HL_UNUSED,
                void *stream_user_data)
{
	struct qstream *st = stream_user_data;

	if (st != NULL) {
		st->reset_rx = 1;
		stream_give_eof(st);
	}
	return 0;
}

static int
stream_stop_sending_cb(ngtcp2_conn *conn, int64_t id,
                       uint64_t app_error_code HL_UNUSED,
                       void *user_data HL_UNUSED, void *stream_user_data)
{
	struct qstream *st = stream_user_data;

	if (st == NULL)
		return 0;
	/* The peer reads no more: nothing more goes its way. Its own
	 * direction may still bring bytes, so the core gets no EOF here:
	 * that comes with the peer's FIN. */
	st->write_shut = 1;
	ready_drop(st->c, st);
	ngtcp2_conn_shutdown_stream_write(conn, id, 0);
	stream_pull(st); /* drops what the core still writes */
	return 0;
}

static int
extend_max_stream_data_cb(ngtcp2_conn *conn HL_UNUSED, int64_t id HL_UNUSED,
                          uint64_t max_data HL_UNUSED,
                          void *user_data HL_UNUSED, void *stream_user_data)
{
	struct qstream *st = stream_user_data;

	if (st != NULL && st->blocked) {
		st->blocked = 0;
		if (stream_wants_write(st))
			ready_push(st);
	}
	return 0;
}

static int
extend_max_local_streams_bidi_cb(ngtcp2_conn *conn HL_UNUSED,
                                 uint64_t max_streams HL_UNUSED,
                                 void *user_data)
{
	struct qconn *c = user_data;

	/* Dials that found no stream free get theirs after this packet. */
	if (c->handshake_done)
		conn_schedule_write(c);
	return 0;
}

static int
recv_stateless_reset_cb(ngtcp2_conn *conn HL_UNUSED,
                        const ngtcp2_pkt_stateless_reset *sr HL_UNUSED,
                        void *user_data)
{
	struct qconn *c = user_data;

	snprintf(c->why, sizeof c->why,
	         "the peer no longer knows this QUIC connection (stateless "
	         "reset: it restarted?)");
	return 0;
}

/* The callbacks of either role: what ngtcp2's crypto helper does, and
 * the streams. */
#define COMMON_CALLBACKS                                                       \
	.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,                 \
	.handshake_completed = handshake_completed,                            \
	.encrypt = ngtcp2_crypto_encrypt_cb,                                   \
	.decrypt = ngtcp2_crypto_decrypt_cb,                                   \
	.hp_mask = ngtcp2_crypto_hp_mask_cb,                                   \
	.recv_stream_data = recv_stream_data,                                  \
	.acked_stream_data_offset = acked_stream_data_offset,                  \
	.stream_close = stream_close_cb,                                       \
	.recv_stateless_reset = recv_stateless_reset_cb, .rand = rand_cb,      \
	.get_new_connection_id = get_new_connection_id,                        \
	.remove_connection_id = remove_connection_id,                          \
	.update_key = ngtcp2_crypto_update_key_cb,                             \
	.stream_reset = stream_reset_cb,                                       \
	.extend_max_stream_data = extend_max_stream_data_cb,                   \
	.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,     \
	.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb, \
	.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,   \
	.stream_stop_sending = stream_stop_sending_cb,                         \
	.version_negotiation = ngtcp2_crypto_version_negotiation_cb

static const ngtcp2_callbacks client_callbacks = {
    COMMON_CALLBACKS,
    .client_initial = ngtcp2_crypto_client_initial_cb,
    .recv_new_token = recv_new_token_cb,
    .recv_retry = ngtcp2_crypto_recv_retry_cb,
    .extend_max_local_streams_bidi = extend_max_local_streams_bidi_cb,
};

static const ngtcp2_callbacks server_callbacks = {
    COMMON_CALLBACKS,
    .recv_client_initial = ngtcp2_crypto_recv_client_initial_cb,
    .stream_open = stream_open_cb,
};

/* ---- connections ---- */

static void conn_timer_callback(evutil_socket_t fd, short what, void *arg);
static void conn_write_callback(evutil_socket_t fd, short what, void *arg);

static void
conn_settings(struct udp *u, ngtcp2_settings *st, ngtcp2_transport_params *p,
              int server)
{
	ngtcp2_settings_default(st);
	st->initial_ts = now_ns();
	/* BBR, as Linux's TCP here: with 1% of the packets lost, Cubic
	 * shrank its window at every loss and carried 40-45 MiB/s where
	 * TCP carried 130-160; BBR carried 100-215 in the same lab (bench/
	 * quic, LOSS=1%), and no less than Cubic without loss. ngtcp2
	 * 0.12's BBR2 fell to 16 MiB/s with that loss. */
	st->cc_algo = NGTCP2_CC_ALGO_BBR;
	st->max_window = CONN_WINDOW_MAX;
	st->max_stream_window = STREAM_WINDOW_MAX;
	st->handshake_timeout = DIAL_TIMEOUT_SEC * NGTCP2_SECONDS;
	ngtcp2_transport_params_default(p);
	p->initial_max_data = CONN_WINDOW;
	p->initial_max_stream_data_bidi_local = STREAM_WINDOW;
	p->initial_max_stream_data_bidi_remote = STREAM_WINDOW;
	p->initial_max_stream_data_uni = 0;
	p->initial_max_streams_bidi = server ? MAX_STREAMS_BIDI : 0;
	p->initial_max_streams_uni = 0;
	p->max_idle_timeout = u->idle_timeout;
	p->active_connection_id_limit = 4;
	p->max_ack_delay = MAX_ACK_DELAY;
}

static struct qconn *
conn_alloc(struct udp *u, struct sock *s, const struct sockaddr *remote,
           socklen_t remotelen, int server)
{
	struct qconn *c = calloc(1, sizeof *c);

	if (c == NULL)
		return NULL;
	c->u = u;
	c->s = s;
	c->server = server;
	memcpy(&c->remote, remote, remotelen);
	c->remotelen = remotelen;
	c->local = server ? s->rx_local : s->local;
	c->locallen = server ? s->rx_locallen : s->locallen;
	hl_sockaddr_str(remote, c->peer, sizeof c->peer);
	ngtcp2_connection_close_error_default(&c->last_error);
	c->timer = evtimer_new(u->base, conn_timer_callback, c);
	c->write_ev = event_new(u->base, -1, 0, conn_write_callback, c);
	if (c->timer == NULL || c->write_ev == NULL) {
		hl_event_free(&c->timer);
		hl_event_free(&c->write_ev);
		free(c);
		return NULL;
	}
	HL_LIST_INSERT(u->conns, c);
	u->nconns++;
	return c;
}

/* A source connection ID of ours that no connection uses yet. */
static void
new_scid(struct udp *u, ngtcp2_cid *scid)
{
	scid->datalen = CIDLEN;
	do
		rand_bytes(scid->data, scid->datalen);
	while (cid_find(u, scid->data, scid->datalen) != NULL);
}

/* The GnuTLS session of a new connection, handed to ngtcp2. */
static int
tls_attach(struct qconn *c)
{
	if (tls_new(c) != 0)
		return -1;
	ngtcp2_conn_set_tls_native_handle(c->conn, c->tls);
	return 0;
}

/* What ngtcp2 needs to make a connection. */
struct conn_setup {
	ngtcp2_cid scid;
	ngtcp2_settings st;
	ngtcp2_transport_params p;
	ngtcp2_path path;
};

/* What a client and a server connection start with: allocated, its path
 * (the connection's own addresses), its settings (small packets on a
 * relay) and a source connection ID of ours. */
static struct qconn *
conn_begin(struct udp *u, struct sock *s, const struct sockaddr *remote,
           socklen_t remotelen, int server, struct conn_setup *cs)
{
	struct qconn *c = conn_alloc(u, s, remote, remotelen, server);

	if (c == NULL)
		return NULL;
	memset(&cs->path, 0, sizeof cs->path);
	cs->path.local.addr = (struct sockaddr *)&c->local;
	cs->path.local.addrlen = c->locallen;
	cs->path.remote.addr = (struct sockaddr *)&c->remote;
	cs->path.remote.addrlen = c->remotelen;
	conn_settings(u, &cs->st, &cs->p, server);
	if (s->relay != NULL)
		relay_settings(&cs->st, &cs->p);
	new_scid(u, &cs->scid);
	return c;
}

/* ... and end with: ngtcp2's answer rv (0: c->conn made), then the TLS
 * session. c, or NULL (freed). */
static struct qconn *
conn_end(struct qconn *c, int rv)
{
	if (rv != 0)
		c->conn = NULL;
	if (rv != 0 || tls_attach(c) != 0) {
		conn_free(c);
		return NULL;
	}
	return c;
}

static struct qconn *
conn_client_new(struct udp *u, struct sock *s, const struct sockaddr *remote,
                socklen_t remotelen, const char *keyhash)
{
	ngtcp2_cid dcid;
	struct conn_setup cs;
	struct qconn *c = conn_begin(u, s, remote, remotelen, 0, &cs);

	if (c == NULL)
		return NULL;
	snprintf(c->keyhash, sizeof c->keyhash, "%s", keyhash);
	for (size_t i = 0; i < TOKENS; i++) {
		struct token *t = &u->tokens[i];
		if (t->len > 0 && t->tolen == c->remotelen &&
		    memcmp(&t->to, &c->remote, c->remotelen) == 0) {
			cs.st.token.base = t->tok; /* ngtcp2 copies it */
			cs.st.token.len = t->len;
			t->used = ++u->token_clock;
			break;
		}
	}
	dcid.datalen = 18;
	rand_bytes(dcid.data, dcid.datalen);
	c = conn_end(c, cid_add(c, &cs.scid) != 0 ||
	                    ngtcp2_conn_client_new(
	                        &c->conn, &dcid, &cs.scid, &cs.path,
	                        NGTCP2_PROTO_VER_V1, &client_callbacks, &cs.st,
	                        &cs.p, NULL, c) != 0);
	if (c == NULL)
		return NULL;
	u->conns_out++;
	u->svc->log(u->self, HL_LOG_DEBUG, "QUIC connection to %s for %.8s",
	            c->peer, keyhash);
	return c;
}

/*
 * A client connection died (a stateless reset after the server
 * restarted, an idle timeout...). A tunnel that has heard nothing on it
 * yet, and whose bytes were never acknowledged, lost nothing: it moves to
 * a new connection to the same node and service (a new handshake, the
 * same pin), once, and sends its bytes again there. That is how the first
 * tunnel after a server restart works over a connection that looked warm.
 */
static void
streams_move(struct qconn *c)
{
	struct qconn *nc = NULL;

	if (c->server || c->u->stopping || c->cert == NULL)
		return;
	for (struct qstream *st = c->streams, *next; st != NULL; st = next) {
		next = st->next;
		if (st->moved || st->acked || st->rx_total > 0 ||
		    st->core_gone || st->mine == NULL || st->eof_given ||
		    bufferevent_pair_get_partner(st->mine) == NULL)
			continue;
		if (nc == NULL) {
			nc = conn_client_new(c->u, c->s,
			                     (struct sockaddr *)&c->remote,
			                     c->remotelen, c->keyhash);
			if (nc == NULL)
				return;
			c->u->svc->log(c->u->self, HL_LOG_DEBUG,
			               "QUIC connection to %s lost (%s): its "
			               "fresh tunnels move to a new one",
			               c->peer, c->why);
		}
		ready_drop(c, st);
		HL_LIST_REMOVE(st);
		c->nstreams--;
		st->c = nc;
		st->moved = 1;
		st->unopened = 1;
		st->tx_sent = 0;
		st->fin_sent = 0; /* a half-closed stream's FIN goes again */
		st->blocked = 0;
		st->ngclosed = 0;
		st->id = -1;
		HL_LIST_INSERT(nc->streams, st);
		nc->nstreams++;
		nc->nunopened++;
	}
	if (nc != NULL)
		conn_schedule_write(nc);
}

static void
conn_free(struct qconn *c)
{
	struct udp *u = c->u;

	while (c->waiting != NULL) {
		/* dial_finish takes it off c->waiting. */
		dial_finish(c->waiting, NULL,
		            c->why[0] ? c->why : "connection closed");
	}
	streams_move(c);
	while (c->streams != NULL)
		stream_free(c->streams);
	while (c->ncids > 0)
		cid_remove(c, &c->cids[0]);
	if (c->server && !c->handshake_done && u->nhandshakes > 0)
		u->nhandshakes--;
	if (c->host != NULL) {
		c->host->nconns--;
		host_release(u, c->host);
	}
	if (c->conn != NULL)
		ngtcp2_conn_del(c->conn);
	if (c->tls != NULL)
		gnutls_deinit(c->tls);
	event_free(c->timer);
	event_free(c->write_ev);
	free(c->cert);
	HL_LIST_REMOVE(c);
	u->nconns--;
	{
		struct sock *s = c->s;
		free(c);
		hub_sock_release(u, s); /* nat */
	}
}

/* The connection is over: say why, send CONNECTION_CLOSE unless the peer
 * already ended it, and free it at the end of the current entry point. */
static void
conn_fail(struct qconn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->dead)
		return;
	c->dead = 1;
	if (c->why[0] == '\0') {
		va_start(ap, fmt);
		vsnprintf(c->why, sizeof c->why, fmt, ap);
		va_end(ap);
	}
	c->u->svc->log(c->u->self, HL_LOG_DEBUG, "QUIC connection %s %s: %s",
	               c->server ? "from" : "to", c->peer, c->why);
	if (c->conn != NULL && !ngtcp2_conn_is_in_closing_period(c->conn) &&
	    !ngtcp2_conn_is_in_draining_period(c->conn)) {
		ngtcp2_path_storage ps;
		ngtcp2_pkt_info pi;
		ngtcp2_ssize n;

		ngtcp2_path_storage_zero(&ps);
		n = ngtcp2_conn_write_connection_close(
		    c->conn, &ps.path, &pi, c->u->txbuf, 1452, &c->last_error,
		    now_ns());
		if (n > 0)
			sock_send(c->s, (struct sockaddr *)&c->local,
			          (struct sockaddr *)&c->remote, c->remotelen,
			          c->u->txbuf, (size_t)n, (size_t)n);
	}
}

static void
conn_reap(struct qconn *c)
{
	if (c->dead)
		conn_free(c);
}

static void
conn_schedule_write(struct qconn *c)
{
	if (!c->dead)
		event_active(c->write_ev, EV_TIMEOUT, 1);
}

static void
conn_arm_timer(struct qconn *c)
{
	ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(c->conn), now = now_ns();
	struct timeval tv = {0, 0};

	if (exp == UINT64_MAX) {
		evtimer_del(c->timer);
		return;
	}
	if (exp > now) {
		uint64_t us = (exp - now + 999) / 1000;
		tv.tv_sec = (time_t)(us / 1000000);
		tv.tv_usec = (suseconds_t)(us % 1000000);
	}
	evtimer_add(c->timer, &tv);
}

/* Why the peer or ngtcp2 ended it, in words for the error page. */
static void
conn_error_text(struct qconn *c, int rv)
{
	ngtcp2_connection_close_error ce;

	if (c->why[0] != '\0')
		return;
	if (rv == NGTCP2_ERR_DRAINING) {
		ngtcp2_conn_get_connection_close_error(c->conn, &ce);
		if (ce.type ==
		        NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT &&
		    ce.error_code == 0x100 + GNUTLS_A_UNRECOGNIZED_NAME)
			snprintf(c->why, sizeof c->why,
			         "the node there does not serve this keyhash "
			         "(TLS alert unrecognized_name)");
		else if (
		    ce.type ==
		        NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_TRANSPORT &&
		    ce.error_code >= 0x100 && ce.error_code < 0x200)
			snprintf(
			    c->why, sizeof c->why,
			    "QUIC handshake failed: the peer sent TLS alert "
			    "%u (%s)",
			    (unsigned)(ce.error_code - 0x100),
			    gnutls_alert_get_strname(
			        (gnutls_alert_description_t)(ce.error_code -
			                                     0x100)));
		else if (
		    ce.type ==
		        NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION &&
		    ce.error_code == 0)
			snprintf(c->why, sizeof c->why,
			         "the peer closed the QUIC connection (hlcore "
			         "stopping there)");
		else
			snprintf(c->why, sizeof c->why,
			         "the peer closed the QUIC connection (error "
			         "0x%llx)",
			         (unsigned long long)ce.error_code);
	} else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT)
		snprintf(c->why, sizeof c->why,
		         "no QUIC handshake within %d s (host down, port "
		         "closed or UDP blocked?)",
		         DIAL_TIMEOUT_SEC);
	else if (rv == NGTCP2_ERR_IDLE_CLOSE)
		snprintf(
		    c->why, sizeof c->why,
		    "nothing heard from the peer for %llu s",
		    (unsigned long long)(c->u->idle_timeout / NGTCP2_SECONDS));
	else if (rv == NGTCP2_ERR_CRYPTO)
		snprintf(
		    c->why, sizeof c->why, "QUIC handshake failed (TLS: %s)",
		    gnutls_alert_get_strname(
		        (gnutls_alert_description_t)ngtcp2_conn_get_tls_alert(
		            c->conn)));
	else
		snprintf(c->why, sizeof c->why, "QUIC: %s",
		         ngtcp2_strerror(rv));
}

/* Fill v with up to n pieces of the stream's unsent bytes. */
static size_t
stream_vec(struct qstream *st, ngtcp2_vec *v, size_t n)
{
	size_t skip = st->head_off + st->tx_sent, k = 0;

	for (struct chunk *ch = st->head; ch != NULL && k < n; ch = ch->next) {
		if (skip >= ch->len) {
			skip -= ch->len;
			continue;
		}
		v[k].base = ch->data + skip;
		v[k].len = ch->len - skip;
		skip = 0;
		k++;
	}
	return k;
}

/*
 * Write what ngtcp2 has to send (stream data from the ready list, ACKs,
 * control frames), at most a send quantum, coalescing full-size packets
 * into GSO sends.
 */
static void
conn_write(struct qconn *c)
{
	struct udp *u = c->u;
	ngtcp2_tstamp ts = now_ns();
	size_t maxpkt = ngtcp2_conn_get_max_tx_udp_payload_size(c->conn);
	size_t quantum = ngtcp2_conn_get_send_quantum(c->conn);
	size_t maxcnt = quantum / maxpkt, pktcnt = 0;
	size_t off = 0, seg = 0;
	ngtcp2_path_storage ps;
	int rounds = 0;

	if (c->dead || c->s->blocked)
		return;
	if (maxcnt == 0)
		maxcnt = 1;
	if (maxcnt > TX_SEGMENTS)
		maxcnt = TX_SEGMENTS;
	/* Dials (and moved streams) waiting for a stream. */
	if (c->handshake_done)
		conn_serve_waiting(c);
	ngtcp2_path_storage_zero(&ps);
	for (;;) {
		struct qstream *st = c->ready_head;
		ngtcp2_vec v[8];
		size_t nv = 0;
		int64_t sid = -1;
		uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
		ngtcp2_ssize ndata = -1, n;
		ngtcp2_pkt_info pi;

		if (++rounds > 10000)
			break; /* never spin: the timer comes back */
		if (st != NULL && !stream_wants_write(st)) {
			ready_drop(c, st);
			continue;
		}
		if (st != NULL) {
			sid = st->id;
			nv = stream_vec(st, v, 8);
			if (st->fin_queued) {
				size_t inv = 0;
				for (size_t i = 0; i < nv; i++)
					inv += v[i].len;
				if (inv == st->tx_len - st->tx_sent)
					flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
			}
		}
		if (off + maxpkt > TX_BUF) {
			/* batch full */
			if (sock_send(c->s, (struct sockaddr *)&c->local,
			              (struct sockaddr *)&c->remote,
			              c->remotelen, u->txbuf, off, seg) != 0)
				goto blocked;
			off = 0;
			seg = 0;
		}
		n = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi,
		                              u->txbuf + off, maxpkt, &ndata,
		                              flags, sid, v, nv, ts);
		if (n < 0) {
			if (n == NGTCP2_ERR_WRITE_MORE) {
				st->tx_sent += (size_t)ndata;
				if (flags & NGTCP2_WRITE_STREAM_FLAG_FIN &&
				    st->tx_sent == st->tx_len)
					st->fin_sent = 1;
				if (!stream_wants_write(st))
					ready_drop(c, st);
				else {
					/* next stream in turn */
					ready_drop(c, st);
					ready_push(st);
				}
				continue;
			}
			if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
				st->blocked = 1;
				ready_drop(c, st);
				continue;
			}
			if (n == NGTCP2_ERR_STREAM_SHUT_WR ||
			    n == NGTCP2_ERR_STREAM_NOT_FOUND) {
				st->write_shut = 1;
				ready_drop(c, st);
				stream_pull(st); /* drops the core's bytes */
				continue;
			}
			conn_error_text(c, (int)n);
			ngtcp2_connection_close_error_set_transport_error_liberr(
			    &c->last_error, (int)n, NULL, 0);
			conn_fail(c, "%s", c->why);
			return;
		}
		if (ndata >= 0 && st != NULL) {
			st->tx_sent += (size_t)ndata;
			if (flags & NGTCP2_WRITE_STREAM_FLAG_FIN &&
			    st->tx_sent == st->tx_len)
				st->fin_sent = 1;
			ready_drop(c, st);
			if (stream_wants_write(st))
				ready_push(st);
		}
		if (n == 0) {
			if (st != NULL && ndata < 0) {
				/* Congestion or pacing limited with data
				 * left: the timer comes back for it. */
			}
			break;
		}
		pktcnt++;
		if (seg != 0 && (size_t)n > seg) {
			/* Larger than the batch's segments (after a small
			 * ACK-only packet, say): GSO splits at the first
			 * segment's size, so the batch goes without it and it
			 * starts the next one. */
			if (sock_send(c->s, (struct sockaddr *)&c->local,
			              (struct sockaddr *)&c->remote,
			              c->remotelen, u->txbuf, off, seg) != 0)
				goto blocked;
			memmove(u->txbuf, u->txbuf + off, (size_t)n);
			off = 0;
			seg = 0;
		}
		if (seg == 0)
			seg = (size_t)n;
		off += (size_t)n;
		if ((size_t)n < seg) {
			/* A shorter packet ends a GSO batch (it may be its
			 * last segment). */
			if (sock_send(c->s, (struct sockaddr *)&c->local,
			              (struct sockaddr *)&c->remote,
			              c->remotelen, u->txbuf, off, seg) != 0)
				goto blocked;
			off = 0;
			seg = 0;
		}
		if (pktcnt >= maxcnt) {
			if (off > 0 &&
			    sock_send(c->s, (struct sockaddr *)&c->local,
			              (struct sockaddr *)&c->remote,
			              c->remotelen, u->txbuf, off, seg) != 0)
				goto blocked;
			off = 0;
			ngtcp2_conn_update_pkt_tx_time(c->conn, ts);
			/* More may be ready: carry on from the loop. */
			conn_schedule_write(c);
			conn_arm_timer(c);
			return;
		}
	}
	if (off > 0 && sock_send(c->s, (struct sockaddr *)&c->local,
	                         (struct sockaddr *)&c->remote, c->remotelen,
	                         u->txbuf, off, seg) != 0)
		goto blocked;
	ngtcp2_conn_update_pkt_tx_time(c->conn, ts);
	conn_arm_timer(c);
	return;
blocked:
	/* The socket's buffer is full: what was built is lost (QUIC sends
	 * it again), and the connections on it wait until it drains. */
	c->s->blocked = 1;
	event_del(c->s->ev);
	event_assign(c->s->ev, u->base, c->s->fd, EV_READ | EV_WRITE,
	             sock_event_callback, c->s);
	event_add(c->s->ev, NULL);
	ngtcp2_conn_update_pkt_tx_time(c->conn, ts);
	conn_arm_timer(c);
}

static void
conn_write_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                    void *arg)
{
	struct qconn *c = arg;

	conn_write(c);
	conn_reap(c);
}

static void
conn_timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                    void *arg)
{
	struct qconn *c = arg;
	int rv;

	if (c->dead) {
		conn_reap(c);
		return;
	}
	rv = ngtcp2_conn_handle_expiry(c->conn, now_ns());
	if (rv != 0) {
		conn_error_text(c, rv);
		if (rv == NGTCP2_ERR_IDLE_CLOSE ||
		    rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
			/* Silent close: nothing to tell a peer that is
			 * gone. */
			c->dead = 1;
			c->u->svc->log(c->u->self, HL_LOG_DEBUG,
			               "QUIC connection %s %s: %s",
			               c->server ? "from" : "to", c->peer,
			               c->why);
		} else {
			ngtcp2_connection_close_error_set_transport_error_liberr(
			    &c->last_error, rv, NULL, 0);
			conn_fail(c, "%s", c->why);
		}
		conn_reap(c);
		return;
	}
	conn_write(c);
	conn_reap(c);
}

/* ---- dials ---- */

/* Report the dial's result and free it. bev NULL: failed. */
static void
dial_finish(struct hl_dial *d, struct bufferevent *bev, const char *error)
{
	hl_dial_cb cb = d->cb;
	void *arg = d->arg;
	struct qconn *c = d->c;
	unsigned char *cert = NULL;
	size_t certlen = 0;

	if (bev != NULL && c != NULL) {
		struct udp *u = d->u;
		cert = c->cert;
		certlen = c->certlen;
		/* nat: the path, for the admin (status_json) */
		if (HL_HAS(u->svc, tunnel_path)) {
			char path[160];
			if (c->s->relay != NULL)
				snprintf(path, sizeof path,
				         "QUIC to %s by our TURN relay %s",
				         c->peer, c->s->relay->name);
			else
				snprintf(path, sizeof path, "QUIC %s %s",
				         c->relayed ? "to the service's TURN "
				                      "relay at"
				                    : "to",
				         c->peer);
			u->svc->tunnel_path(u->self, bev,
			                    c->s->relay != NULL || c->relayed
			                        ? HL_INCOMING_RELAYED
			                        : 0,
			                    path);
		}
	}
	/* nat: a QUIC attempt of a hub:// dial failed: note why, and let
	 * the start event try the next candidate found (or end it). */
	if (bev == NULL && d->punch != NULL && c != NULL && !d->u->stopping) {
		hubpunch_failed(d->punch, (struct sockaddr *)&c->remote,
		                c->remotelen, error);
		if (d->cnext != NULL)
			d->cnext->cprevp = d->cprevp;
		*d->cprevp = d->cnext;
		d->c = NULL;
		d->state = DIAL_PUNCHING;
		event_active(d->start, EV_TIMEOUT, 1);
		return;
	}
	if (d->punch != NULL) {
		hubpunch_cancel(d->punch);
		d->punch = NULL;
	}
	if (d->c != NULL) {
		/* in c->waiting: cnext/cprevp */
		if (d->cnext != NULL)
			d->cnext->cprevp = d->cprevp;
		*d->cprevp = d->cnext;
		d->c = NULL;
	}
	d->state = DIAL_DONE;
	if (d->req != NULL) {
		evdns_getaddrinfo_cancel(d->req);
		d->req = NULL;
	}
	HL_LIST_REMOVE(d);
	if (d->deadline != NULL)
		event_free(d->deadline);
	if (d->start != NULL)
		event_free(d->start);
	free(d);
	cb(arg, bev, cert, certlen, bev != NULL ? NULL : error);
}

/* A ready connection: give each waiting dial a stream. */
static void
conn_serve_waiting(struct qconn *c)
{
	/* Streams moved here from a lost connection first. */
	for (struct qstream *st = c->streams;
	     st != NULL && !c->dead && c->nunopened > 0; st = st->next) {
		int64_t id;

		if (!st->unopened)
			continue;
		if (ngtcp2_conn_open_bidi_stream(c->conn, &id, st) != 0)
			return; /* blocked: extend_max_local_streams_bidi */
		st->id = id;
		st->unopened = 0;
		c->nunopened--;
		if (!c->keepalive_on) {
			ngtcp2_conn_set_keep_alive_timeout(
			    c->conn, c->u->idle_timeout / 3);
			c->keepalive_on = 1;
		}
		if (stream_wants_write(st))
			ready_push(st);
	}
	while (c->waiting != NULL && !c->dead) {
		struct hl_dial *d = c->waiting;
		struct bufferevent *theirs;
		struct qstream *st;
		int64_t id;
		int rv = ngtcp2_conn_open_bidi_stream(c->conn, &id, NULL);

		if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
			return; /* extend_max_local_streams_bidi */
		if (rv != 0) {
			dial_finish(d, NULL, "cannot open a QUIC stream");
			continue;
		}
		st = stream_new(c, id, &theirs);
		if (st == NULL) {
			ngtcp2_conn_shutdown_stream(c->conn, id, 0);
			dial_finish(d, NULL, "out of memory");
			continue;
		}
		c->u->streams_out++;
		dial_finish(d, theirs, NULL);
	}
}

static void
conn_wait(struct qconn *c, struct hl_dial *d)
{
	d->state = DIAL_WAITING;
	d->c = c;
	d->cnext = c->waiting;
	if (d->cnext != NULL)
		d->cnext->cprevp = &d->cnext;
	d->cprevp = &c->waiting;
	c->waiting = d;
	if (c->handshake_done)
		conn_schedule_write(c);
}

static void
dial_to_on(struct hl_dial *d, const struct sockaddr *sa, socklen_t salen,
           struct sock *s)
{
	struct udp *u = d->u;
	struct sockaddr_storage ss;
	socklen_t sslen;
	struct qconn *c;

	if (s == NULL) {
		dial_finish(d, NULL, "no UDP socket for this address family");
		return;
	}
	sockaddr_to_sock_family(s, sa, salen, &ss, &sslen);
	/* A live connection to that node for that service carries the new
	 * tunnel: no handshake. */
	for (c = u->conns; c != NULL; c = c->next)
		if (!c->server && !c->dead && c->s == s &&
		    c->remotelen == sslen &&
		    memcmp(&c->remote, &ss, sslen) == 0 &&
		    strcmp(c->keyhash, d->keyhash) == 0 &&
		    !ngtcp2_conn_is_in_closing_period(c->conn) &&
		    !ngtcp2_conn_is_in_draining_period(c->conn))
			break;
	if (c == NULL) {
		c = conn_client_new(u, s, (struct sockaddr *)&ss, sslen,
		                    d->keyhash);
		if (c == NULL) {
			dial_finish(d, NULL,
			            "cannot start a QUIC connection (out of "
			            "memory?)");
			return;
		}
		conn_wait(c, d);
		conn_write(c);
		conn_reap(c);
		return;
	}
	conn_wait(c, d);
}

static void
dial_to(struct hl_dial *d, const struct sockaddr *sa, socklen_t salen)
{
	dial_to_on(d, sa, salen, sock_for(d->u, sa->sa_family));
}

/* ---- nat: dialing "hub://host:port" (hubnode.c does the hub and the
 * probes; QUIC runs over the first candidate that answered them) ---- */

static void
hub_dial_next(struct hl_dial *d)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	void *sock;
	int relayed = 0;
	struct udp *u = d->u;
	char why[1024];

	/* From the socket the probe came to: a birthday socket is the one
	 * mapping through a symmetric NAT that the peer reached. */
	if (hubpunch_next(d->punch, &ss, &sslen, &sock, &relayed) == 0) {
		u->svc->log(u->self, HL_LOG_DEBUG,
		            "hub dial for %.8s: QUIC over a %s path",
		            d->keyhash, relayed ? "relayed" : "direct");
		dial_to_on(d, (struct sockaddr *)&ss, sslen, sock);
		if (relayed && d->c != NULL && d->c->s->relay == NULL)
			d->c->relayed = 1; /* the service's relayed address */
		return;
	}
	if (hubpunch_running(d->punch))
		return; /* hub_dial_found or hub_dial_over comes */
	hubpunch_report(d->punch, why, sizeof why);
	dial_finish(d, NULL, why);
}

static void
hub_dial_found(void *arg)
{
	struct hl_dial *d = arg;

	if (d->state == DIAL_PUNCHING)
		hub_dial_next(d);
}

static void
hub_dial_over(void *arg)
{
	struct hl_dial *d = arg;

	if (d->state == DIAL_PUNCHING)
		hub_dial_next(d);
}

static void
hub_dial_begin(struct hl_dial *d, const struct sockaddr *sa, socklen_t salen)
{
	struct udp *u = d->u;

	/* A live connection to that service carries the new tunnel: no
	 * lookup (and none needed when the hub is gone). */
	for (struct qconn *c = u->conns; c != NULL; c = c->next)
		if (!c->server && !c->dead && c->handshake_done &&
		    strcmp(c->keyhash, d->keyhash) == 0 &&
		    !ngtcp2_conn_is_in_closing_period(c->conn) &&
		    !ngtcp2_conn_is_in_draining_period(c->conn)) {
			conn_wait(c, d);
			return;
		}
	d->punch = hubpunch_start(u->hn, d->keyhash, d->addr, sa, salen,
	                          hub_dial_found, hub_dial_over, d);
	if (d->punch == NULL) {
		dial_finish(d, NULL,
		            "no UDP socket for the hub's address family");
		return;
	}
	d->state = DIAL_PUNCHING;
}

/* The lookup's answer, kept for the start event: evdns may answer from
 * inside evdns_getaddrinfo(), where the dial must not end yet. */
static void
dial_resolved(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct hl_dial *d = arg;

	d->req = NULL;
	if (err == EVUTIL_EAI_CANCEL)
		return;
	if (err != 0 || ai == NULL) {
		snprintf(d->why, sizeof d->why, "name lookup failed: %s",
		         err ? evutil_gai_strerror(err) : "no address");
	} else {
		memcpy(&d->ss, ai->ai_addr, ai->ai_addrlen);
		d->sslen = (socklen_t)ai->ai_addrlen;
	}
	if (ai != NULL)
		evutil_freeaddrinfo(ai);
	d->state = DIAL_RESOLVED;
	event_active(d->start, EV_TIMEOUT, 1);
}

static void
dial_start_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                    void *arg)
{
	struct hl_dial *d = arg;
	struct sockaddr_storage ss;
	int sslen = sizeof ss;
	struct evutil_addrinfo hints = {0};
	struct evdns_getaddrinfo_request *r;
	char port[8];

	if (d->state == DIAL_PUNCHING) { /* nat */
		hub_dial_next(d);
		return;
	}
	if (d->state == DIAL_RESOLVED) {
		if (d->sslen == 0)
			dial_finish(d, NULL, d->why);
		else if (d->hub)
			hub_dial_begin(d, (struct sockaddr *)&d->ss, d->sslen);
		else
			dial_to(d, (struct sockaddr *)&d->ss, d->sslen);
		return;
	}
	if (evutil_parse_sockaddr_port(d->addr, (struct sockaddr *)&ss,
	                               &sslen) == 0) {
		if (d->hub)
			hub_dial_begin(d, (struct sockaddr *)&ss,
			               (socklen_t)sslen);
		else
			dial_to(d, (struct sockaddr *)&ss, (socklen_t)sslen);
		return;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	snprintf(port, sizeof port, "%u", d->port);
	d->state = DIAL_RESOLVING;
	r = evdns_getaddrinfo(d->u->svc->dns_base(d->u->self), d->host, port,
	                      &hints, dial_resolved, d);
	if (d->state == DIAL_RESOLVING)
		d->req = r; /* else it answered already (r is NULL) */
}

static void
dial_deadline_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                       void *arg)
{
	struct hl_dial *d = arg;
	char why[1024];

	snprintf(why, sizeof why,
	         "no QUIC connection within %d s (host down, port closed or "
	         "UDP blocked?)",
	         DIAL_TIMEOUT_SEC);
	if (d->punch != NULL) /* nat: what each candidate did */
		hubpunch_report(d->punch, why, sizeof why);
	if (d->c != NULL && d->punch != NULL) {
		/* not a QUIC failure to note: end the dial itself */
		hubpunch_cancel(d->punch);
		d->punch = NULL;
	}
	dial_finish(d, NULL, why);
}

/*
 * "quic://host:port" is this transport's; a bare "host:port" any
 * transport may try (over UDP here, the same port number as TCP by
 * convention). Any other scheme is not ours: NULL.
 */
static const char *
addr_for_us(const char *addr)
{
	const char *sep = strstr(addr, "://");

	if (sep == NULL)
		return addr;
	if (sep - addr == 4 && strncasecmp(addr, "quic", 4) == 0)
		return sep + 3;
	if (sep - addr == 3 && strncasecmp(addr, "hub", 3) == 0)
		return sep + 3; /* nat: udp_dial marks it */
	return NULL;
}

static struct hl_dial *
udp_dial(void *state, const char *keyhash, const char *addr, hl_dial_cb cb,
         void *arg)
{
	struct udp *u = state;
	struct hl_dial *d;
	const char *a = addr_for_us(addr);
	struct timeval tv = {DIAL_TIMEOUT_SEC, 0};
	char host[ADDR_MAX];
	uint16_t port;

	if (u->stopping || a == NULL ||
	    hl_addr_split(a, host, sizeof host, &port) != 0 || port == 0 ||
	    strlen(keyhash) != 40)
		return NULL;
	d = calloc(1, sizeof *d);
	if (d == NULL)
		return NULL;
	d->u = u;
	snprintf(d->keyhash, sizeof d->keyhash, "%s", keyhash);
	snprintf(d->addr, sizeof d->addr, "%s", a);
	snprintf(d->host, sizeof d->host, "%s", host);
	d->port = port;
	d->cb = cb;
	d->arg = arg;
	d->hub = strncasecmp(addr, "hub://", 6) == 0; /* nat */
	d->deadline = evtimer_new(u->base, dial_deadline_callback, d);
	d->start = evtimer_new(u->base, dial_start_callback, d);
	if (d->deadline == NULL || d->start == NULL) {
		hl_event_free(&d->deadline);
		hl_event_free(&d->start);
		free(d);
		return NULL;
	}
	HL_LIST_INSERT(u->dials, d);
	evtimer_add(d->deadline, &tv);
	/* The result never comes from inside dial(): start from the loop. */
	event_active(d->start, EV_TIMEOUT, 1);
	return d;
}

static void
udp_dial_cancel(void *state HL_UNUSED, struct hl_dial *d)
{
	hubpunch_cancel(d->punch); /* nat */
	if (d->c != NULL) {
		if (d->cnext != NULL)
			d->cnext->cprevp = d->cprevp;
		*d->cprevp = d->cnext;
		d->c = NULL;
	}
	if (d->req != NULL) {
		struct evdns_getaddrinfo_request *r = d->req;
		d->req = NULL;
		/* evdns calls dial_resolved with EVUTIL_EAI_CANCEL before
		 * this returns, while d is still there. */
		evdns_getaddrinfo_cancel(r);
	}
	event_free(d->deadline);
	event_free(d->start);
	HL_LIST_REMOVE(d);
	free(d);
}

/* ---- receiving ---- */

static void
send_small(struct sock *s, const struct sockaddr *to, socklen_t tolen,
           const uint8_t *buf, ngtcp2_ssize n)
{
	if (n > 0)
		sock_send(s, (struct sockaddr *)&s->rx_local, to, tolen, buf,
		          (size_t)n, (size_t)n);
}

/* punch: a connection whose ALPN is "hardline-punch" (hlcore punch):
 * its streams are punchsrv.c's, not the core's. */
static int
punch_alpn(struct qconn *c)
{
	gnutls_datum_t p;

	return gnutls_alpn_get_selected_protocol(c->tls, &p) == 0 &&
	       p.size == sizeof PUNCHCTL_ALPN - 1 &&
	       memcmp(p.data, PUNCHCTL_ALPN, p.size) == 0;
}

/* Hand the streams the peer opened in this packet to the core. */
static void
conn_announce(struct qconn *c)
{
	struct udp *u = c->u;

	for (struct qstream *st = c->streams; st != NULL; st = st->next) {
		struct bufferevent *theirs;

		if (!st->announce)
			continue;
		st->announce = 0;
		theirs =
		    st->mine ? bufferevent_pair_get_partner(st->mine) : NULL;
		if (theirs == NULL)
			continue;
		if (punch_alpn(c)) { /* punch: punchsrv.c's, not the core's */
			punchsrv_stream(u->ps, theirs, c->keyhash, c->peer);
			continue;
		}
		/* nat: through our TURN relay, the peer string is the
		 * client as the relay saw it, marked (counted on its own
		 * for the per-address limits, shown as relayed). */
		if (c->s->relay != NULL && HL_HAS(u->svc, incoming_flags))
			u->svc->incoming_flags(u->self, theirs, c->keyhash,
			                       c->peer, HL_INCOMING_RELAYED);
		else
			u->svc->incoming(u->self, theirs, c->keyhash, c->peer);
	}
}

static void
conn_read(struct qconn *c, struct sock *s, const struct sockaddr *from,
          socklen_t fromlen, const uint8_t *data, size_t len)
{
	ngtcp2_path path = {
	    {(struct sockaddr *)&c->local, c->locallen},
	    {(struct sockaddr *)from, fromlen},
	    NULL,
	};
	ngtcp2_pkt_info pi = {0};
	int rv;

	(void)s; /* the path's local end is the connection's own */
	if (c->dead || ngtcp2_conn_is_in_draining_period(c->conn))
		return;
	rv = ngtcp2_conn_read_pkt(c->conn, &path, &pi, data, len, now_ns());
	if (rv != 0) {
		switch (rv) {
		case NGTCP2_ERR_DRAINING:
		case NGTCP2_ERR_DROP_CONN:
		case NGTCP2_ERR_RETRY:
			/* Closed by the peer (or a stateless reset): nothing
			 * to send back. */
			conn_error_text(c, rv);
			c->dead = 1;
			c->u->svc->log(c->u->self, HL_LOG_DEBUG,
			               "QUIC connection %s %s: %s",
			               c->server ? "from" : "to", c->peer,
			               c->why);
			return;
		case NGTCP2_ERR_CRYPTO:
			conn_error_text(c, rv);
			ngtcp2_connection_close_error_set_transport_error_tls_alert(
			    &c->last_error, ngtcp2_conn_get_tls_alert(c->conn),
			    NULL, 0);
			conn_fail(c, "%s", c->why);
			return;
		default:
			conn_error_text(c, rv);
			ngtcp2_connection_close_error_set_transport_error_liberr(
			    &c->last_error, rv, NULL, 0);
			conn_fail(c, "%s", c->why);
			return;
		}
	}
	if (c->server)
		conn_announce(c);
	conn_schedule_write(c);
}

static void
send_retry(struct sock *s, const struct sockaddr *from, socklen_t fromlen,
           const ngtcp2_pkt_hd *hd)
{
	struct udp *u = s->u;
	uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN];
	uint8_t buf[256];
	ngtcp2_cid scid;
	ngtcp2_ssize tlen, n;

	scid.datalen = CIDLEN;
	rand_bytes(scid.data, scid.datalen);
	tlen = ngtcp2_crypto_generate_retry_token(
	    token, u->secret, sizeof u->secret, hd->version, from, fromlen,
	    &scid, &hd->dcid, realtime_ns());
	if (tlen < 0)
		return;
	n = ngtcp2_crypto_write_retry(buf, sizeof buf, hd->version, &hd->scid,
	                              &scid, &hd->dcid, token, (size_t)tlen);
	u->retries++;
	send_small(s, from, fromlen, buf, n);
}

static struct qconn *
conn_server_new(struct sock *s, const struct sockaddr *from, socklen_t fromlen,
                const ngtcp2_pkt_hd *hd, const ngtcp2_cid *odcid, int retried,
                struct host *h)
{
	struct udp *u = s->u;
	struct conn_setup cs;
	struct qconn *c = conn_begin(u, s, from, fromlen, 1, &cs);

	if (c == NULL)
		return NULL;
	c->host = h;
	h->nconns++;
	u->nhandshakes++;
	cs.st.token = hd->token;
	cs.p.original_dcid = *odcid;
	cs.p.retry_scid = hd->dcid;
	cs.p.retry_scid_present = retried;
	cs.p.stateless_reset_token_present = 1;
	c = conn_end(
	    c, ngtcp2_crypto_generate_stateless_reset_token(
	           cs.p.stateless_reset_token, u->secret, sizeof u->secret,
	           &cs.scid) != 0 ||
	           cid_add(c, &hd->dcid) != 0 || cid_add(c, &cs.scid) != 0 ||
	           ngtcp2_conn_server_new(
	               &c->conn, &hd->scid, &cs.scid, &cs.path, hd->version,
	               &server_callbacks, &cs.st, &cs.p, NULL, c) != 0);
	if (c == NULL)
		return NULL;
	u->conns_in++;
	return c;
}

/* A packet for no connection of ours on a listener: a client's Initial.
 * Its address is validated with a Retry first (no amplification), and
 * bounded per address and in all before any state is kept. */
static void
accept_initial(struct sock *s, const struct sockaddr *from, socklen_t fromlen,
               const uint8_t *data, size_t len)
{
	struct udp *u = s->u;
	ngtcp2_pkt_hd hd;
	ngtcp2_cid odcid;
	struct host *h;
	struct qconn *c;
	int retried = 1;

	if (ngtcp2_accept(&hd, data, len) != 0) {
		u->dropped++;
		return;
	}
	if (hd.token.len > 0 &&
	    hd.token.base[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_REGULAR) {
		/* A NEW_TOKEN of ours for this address: validated, no
		 * Retry. One that does not verify (old, another address)
		 * is as none. */
		if (ngtcp2_crypto_verify_regular_token(
		        hd.token.base, hd.token.len, u->secret,
		        sizeof u->secret, from, fromlen,
		        TOKEN_VALID_SEC * NGTCP2_SECONDS, realtime_ns()) != 0) {
			send_retry(s, from, fromlen, &hd);
			return;
		}
		odcid = hd.dcid;
		retried = 0;
		u->tokens_ok++;
		{
			char a[PEER_MAX];
			hl_sockaddr_str(from, a, sizeof a);
			u->svc->log(
			    u->self, HL_LOG_DEBUG,
			    "QUIC connection from %s: address validated "
			    "by its NEW_TOKEN (no Retry)",
			    a);
		}
	} else if (hd.token.len == 0 ||
	           hd.token.base[0] != NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY) {
		send_retry(s, from, fromlen, &hd);
		return;
	} else if (ngtcp2_crypto_verify_retry_token(
	               &odcid, hd.token.base, hd.token.len, u->secret,
	               sizeof u->secret, hd.version, from, fromlen, &hd.dcid,
	               10 * NGTCP2_SECONDS, realtime_ns()) != 0) {
		uint8_t buf[256];
		send_small(s, from, fromlen, buf,
		           ngtcp2_crypto_write_connection_close(
		               buf, sizeof buf, hd.version, &hd.scid, &hd.dcid,
		               NGTCP2_INVALID_TOKEN, NULL, 0));
		u->dropped++;
		return;
	}
	h = hl_addr_rec_get(u->hosts, HOST_BUCKETS, from, sizeof *h, 1);
	if (h == NULL)
		return;
	if (h->nconns >= CONNS_PER_HOST || u->nconns >= CONNS_MAX ||
	    u->nhandshakes >= HANDSHAKES_MAX) {
		if (!h->refusal_logged)
			u->svc->log(
			    u->self, HL_LOG_INFO,
			    "%s: %u QUIC connections from this address "
			    "(at most %d), %zu in all (at most %d), %zu "
			    "handshaking (at most %d): refusing new ones "
			    "(logged once per address)",
			    s->name, h->nconns, CONNS_PER_HOST, u->nconns,
			    CONNS_MAX, u->nhandshakes, HANDSHAKES_MAX);
		h->refusal_logged = 1;
		if (h->nconns >= CONNS_PER_HOST)
			u->refused_host++;
		else
			u->refused_full++;
		host_release(u, h);
		return;
	}
	c = conn_server_new(s, from, fromlen, &hd, &odcid, retried, h);
	if (c == NULL) {
		host_release(u, h);
		return;
	}
	conn_read(c, s, from, fromlen, data, len);
	conn_reap(c);
}

/* At most RESETS_PER_SEC stateless resets sent, and as many unknown
 * packets checked for one, a second. */
static int
reset_budget(struct udp *u)
{
	time_t now = time(NULL);

	if (now != u->reset_sec) {
		u->reset_sec = now;
		u->resets_this_sec = 0;
	}
	return u->resets_this_sec++ < 2 * RESETS_PER_SEC;
}

/* A short-header packet for no connection: this node forgot it (a
 * restart). A stateless reset, derived from the persistent secret, tells
 * the peer at once; smaller than what came, and rate-limited. */
static void
send_reset(struct sock *s, const struct sockaddr *from, socklen_t fromlen,
           const uint8_t *dcid, size_t dcidlen, size_t len)
{
	struct udp *u = s->u;
	uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[64], buf[64];
	ngtcp2_cid cid;
	size_t out = len - 1 < 43 ? len - 1 : 43;

	if (len <= 1 + NGTCP2_MIN_STATELESS_RESET_RANDLEN +
	               NGTCP2_STATELESS_RESET_TOKENLEN ||
	    !reset_budget(u))
		return;
	ngtcp2_cid_init(&cid, dcid, dcidlen);
	if (ngtcp2_crypto_generate_stateless_reset_token(
	        token, u->secret, sizeof u->secret, &cid) != 0)
		return;
	rand_bytes(rnd, sizeof rnd);
	u->resets++;
	send_small(s, from, fromlen, buf,
	           ngtcp2_pkt_write_stateless_reset(
	               buf, sizeof buf, token, rnd,
	               out - 1 - NGTCP2_STATELESS_RESET_TOKENLEN));
}

static int relay_input_from(struct relay *r, struct sock *s,
                            const struct sockaddr *from, const uint8_t *data,
                            size_t len);

static void
dispatch(struct sock *s, const struct sockaddr *from, socklen_t fromlen,
         const uint8_t *data, size_t len)
{
	struct udp *u = s->u;
	ngtcp2_version_cid vc;
	struct qconn *c;
	int rv;

	if (len == 0)
		return;
	/* nat: what a TURN server sends (a relayed datagram comes back
	 * here on the relay's socket) */
	for (size_t i = 0; i < u->nrelays && s->relay == NULL; i++)
		if (relay_input_from(u->relays[i], s, from, data, len))
			return;
	/* nat: first bytes 0..15 are STUN, hub messages and punch probes */
	if (u->hn != NULL && hubnode_input(u->hn, s, from, fromlen, data, len))
		return;
	rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, CIDLEN);
	if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
		uint8_t buf[128];
		uint32_t sv[2] = {0x1a2a3a4au, NGTCP2_PROTO_VER_V1};
		uint8_t r;
		if (!s->listening || len < NGTCP2_MAX_UDP_PAYLOAD_SIZE)
			return;
		rand_bytes(&r, 1);
		send_small(s, from, fromlen, buf,
		           ngtcp2_pkt_write_version_negotiation(
		               buf, sizeof buf, r, vc.scid, vc.scidlen, vc.dcid,
		               vc.dcidlen, sv, 2));
		return;
	}
	if (rv != 0) {
		u->dropped++;
		return;
	}
	c = cid_find(u, vc.dcid, vc.dcidlen);
	if (c != NULL) {
		conn_read(c, s, from, fromlen, data, len);
		conn_reap(c);
		return;
	}
	if (data[0] & 0x80) {
		if (s->listening && !u->stopping)
			accept_initial(s, from, fromlen, data, len);
		else
			u->dropped++;
		return;
	}
	/* Maybe a stateless reset for one of our connections: its first
	 * bytes are random, so it names no connection ID of ours; ngtcp2
	 * recognises the token at its end. Tried on the connections with
	 * that peer (bounded per second like the resets we send). */
	if (len >= 21 && reset_budget(u)) {
		struct sockaddr_storage ss;
		socklen_t sslen;
		sockaddr_to_sock_family(s, from, fromlen, &ss, &sslen);
		for (c = u->conns; c != NULL; c = c->next) {
			if (c->dead || c->s != s || c->remotelen != sslen ||
			    memcmp(&c->remote, &ss, sslen) != 0)
				continue;
			conn_read(c, s, from, fromlen, data, len);
			if (c->dead) {
				conn_reap(c);
				return;
			}
		}
	}
	send_reset(s, from, fromlen, vc.dcid, vc.dcidlen, len);
}

/*
 * ICMP errors from the error queue: a handshake to an address that
 * answered "port unreachable" (or host/net unreachable) fails now.
 * Established connections ignore them (ICMP is easy to forge; a live
 * peer keeps answering).
 */
static void
sock_read_errors(struct sock *s)
{
	struct udp *u = s->u;

	for (int i = 0; i < 16; i++) {
		struct sockaddr_storage to;
		char ctl[512], dummy[64];
		struct iovec iov = {dummy, sizeof dummy};
		struct msghdr mh = {0};
		struct sockaddr_storage ss;
		socklen_t sslen;
		int err = 0;

		mh.msg_name = &to;
		mh.msg_namelen = sizeof to;
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		mh.msg_control = ctl;
		mh.msg_controllen = sizeof ctl;
		if (recvmsg(s->fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
			return;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c != NULL;
		     c = CMSG_NXTHDR(&mh, c)) {
			struct sock_extended_err ee;
			if (!((c->cmsg_level == IPPROTO_IP &&
			       c->cmsg_type == IP_RECVERR) ||
			      (c->cmsg_level == IPPROTO_IPV6 &&
			       c->cmsg_type == IPV6_RECVERR)))
				continue;
			memcpy(&ee, CMSG_DATA(c), sizeof ee);
			if (ee.ee_origin == SO_EE_ORIGIN_ICMP ||
			    ee.ee_origin == SO_EE_ORIGIN_ICMP6)
				err = (int)ee.ee_errno;
		}
		if (err == 0 || mh.msg_namelen == 0)
			continue;
		sockaddr_to_sock_family(s, (struct sockaddr *)&to,
		                        mh.msg_namelen, &ss, &sslen);
		for (struct qconn *c = u->conns, *next; c != NULL; c = next) {
			next = c->next;
			if (c->server || c->dead || c->handshake_done ||
			    c->s != s || c->remotelen != sslen ||
			    memcmp(&c->remote, &ss, sslen) != 0)
				continue;
			snprintf(c->why, sizeof c->why,
			         "%s (ICMP): nothing listens on that UDP port, "
			         "or the host cannot be reached",
			         strerror(err));
			c->dead = 1;
			u->svc->log(u->self, HL_LOG_DEBUG,
			            "QUIC connection to %s: %s", c->peer,
			            c->why);
			conn_reap(c);
		}
	}
}

/* The datagram's local address from its IP_PKTINFO / IPV6_PKTINFO, in
 * the socket's family, with the socket's port. */
static void
rx_local_from(struct sock *s, struct cmsghdr *c)
{
	if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
	    s->family == AF_INET6) {
		struct in6_pktinfo pi;
		struct sockaddr_in6 *l = (struct sockaddr_in6 *)&s->rx_local;
		memcpy(&pi, CMSG_DATA(c), sizeof pi);
		l->sin6_addr = pi.ipi6_addr;
	} else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
		struct in_pktinfo pi;
		memcpy(&pi, CMSG_DATA(c), sizeof pi);
		if (s->family == AF_INET) {
			((struct sockaddr_in *)&s->rx_local)->sin_addr =
			    pi.ipi_addr;
		} else {
			struct sockaddr_in6 *l =
			    (struct sockaddr_in6 *)&s->rx_local;
			memset(&l->sin6_addr, 0, sizeof l->sin6_addr);
			l->sin6_addr.s6_addr[10] = 0xff;
			l->sin6_addr.s6_addr[11] = 0xff;
			memcpy(&l->sin6_addr.s6_addr[12], &pi.ipi_addr, 4);
		}
	}
}

static void
sock_read(struct sock *s)
{
	struct udp *u = s->u;
	struct mmsghdr mm[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct sockaddr_storage from[RX_BATCH];
	union {
		char buf[128]; /* GRO size and the packet's local address */
		struct cmsghdr align;
	} cm[RX_BATCH];

	/* Bounded work per wake-up: the loop serves the rest next round. */
	for (int round = 0; round < 8; round++) {
		int n;

		for (int i = 0; i < RX_BATCH; i++) {
			iov[i].iov_base = u->rxbuf + (size_t)i * RX_BUF;
			iov[i].iov_len = RX_BUF;
			memset(&mm[i], 0, sizeof mm[i]);
			mm[i].msg_hdr.msg_name = &from[i];
			mm[i].msg_hdr.msg_namelen = sizeof from[i];
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_control = cm[i].buf;
			mm[i].msg_hdr.msg_controllen = sizeof cm[i].buf;
		}
		n = recvmmsg(s->fd, mm, RX_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
		    errno != EINTR) {
			/* A pending ICMP error (ECONNREFUSED and such): the
			 * details are on the error queue. */
			sock_read_errors(s);
			continue;
		}
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++) {
			size_t len = mm[i].msg_len, seg = len;
			struct cmsghdr *c;

			s->rx_local = s->local;
			s->rx_locallen = s->locallen;
			for (c = CMSG_FIRSTHDR(&mm[i].msg_hdr); c != NULL;
			     c = CMSG_NXTHDR(&mm[i].msg_hdr, c))
				if (c->cmsg_level == SOL_UDP &&
				    c->cmsg_type == UDP_GRO) {
					int g;
					memcpy(&g, CMSG_DATA(c), sizeof g);
					if (g > 0)
						seg = (size_t)g;
				} else
					rx_local_from(s, c);
			/* GRO: several datagrams of seg bytes each. */
			for (size_t off = 0; off < len; off += seg)
				dispatch(s, (struct sockaddr *)&from[i],
				         mm[i].msg_hdr.msg_namelen,
				         u->rxbuf + (size_t)i * RX_BUF + off,
				         len - off < seg ? len - off : seg);
		}
		if (n < RX_BATCH)
			return;
	}
}

static void
sock_event_callback(evutil_socket_t fd HL_UNUSED, short what, void *arg)
{
	struct sock *s = arg;
	struct udp *u = s->u;

	if ((what & EV_WRITE) && s->blocked) {
		s->blocked = 0;
		event_del(s->ev);
		event_assign(s->ev, u->base, s->fd, EV_READ | EV_PERSIST,
		             sock_event_callback, s);
		event_add(s->ev, NULL);
		for (struct qconn *c = u->conns; c != NULL; c = c->next)
			if (c->s == s)
				conn_schedule_write(c);
	} else if (s->blocked && !(what & EV_READ)) {
		event_add(s->ev, NULL);
	}
	if (what & EV_READ) {
		sock_read_errors(s);
		sock_read(s);
		if (s->blocked)
			event_add(s->ev, NULL); /* not persistent meanwhile */
	}
}

/* ---- the sweep: streams whose core end was freed without an EOF ---- */

/* nat: what the admin sees (status_json's plugins[].status): "nat", this
 * node's mapping as the hubs and TURN servers saw its socket (two at
 * different addresses tell cone from symmetric), and "relays". Set only
 * when the text changes. */
static void
nat_status(struct udp *u)
{
	struct sockaddr_storage srv[HUBNODE_MAX_HUBS + MAX_RELAYS],
	    map[HUBNODE_MAX_HUBS + MAX_RELAYS];
	char nat[256] = "", relays[256] = "";
	size_t n = 0, len = 0;
	uint16_t port;
	void *sock = hub_io_listener_for(u, AF_INET, &port);
	int symmetric = 0, servers = 0;

	if (!HL_HAS(u->svc, status_set))
		return;
	if (u->hn != NULL && sock != NULL)
		n = hubnode_mappings(u->hn, sock, srv, map, HUBNODE_MAX_HUBS);
	for (size_t i = 0; i < u->nrelays; i++) {
		struct relay *r = u->relays[i];
		int k = snprintf(relays + len, sizeof relays - len, "%s%s: %s",
		                 len ? "; " : "", r->name,
		                 r->told        ? r->vs.name
		                 : r->t != NULL ? "allocating"
		                                : "failed, trying again");
		if (k > 0 && (size_t)k < sizeof relays - len)
			len += (size_t)k;
		if (r->told && r->under == sock &&
		    turn_relayed(r->t, NULL, &map[n]) == 0 &&
		    map[n].ss_family != 0) {
			memcpy(&srv[n], &r->server, r->serverlen);
			n++;
		}
	}
	/* Two servers (address and port) that saw different mappings: the
	 * mapping depends on the destination. */
	for (size_t i = 0; i < n; i++) {
		int first = 1;
		for (size_t j = 0; j < i; j++) {
			if (sa_same((struct sockaddr *)&srv[i],
			            (struct sockaddr *)&srv[j]))
				first = 0;
			else if (!sa_same((struct sockaddr *)&map[i],
			                  (struct sockaddr *)&map[j]))
				symmetric = 1;
		}
		servers += first;
	}
	if (n > 0) {
		char m0[ADDR_MAX];
		hl_sockaddr_str((struct sockaddr *)&map[0], m0, sizeof m0);
		if (symmetric)
			snprintf(nat, sizeof nat,
			         "symmetric (a mapping per destination: %d "
			         "servers saw this node at different ports)",
			         servers);
		else if (servers >= 2)
			snprintf(nat, sizeof nat,
			         "cone (endpoint-independent mapping: %d "
			         "servers saw this node at %s)",
			         servers, m0);
		else
			snprintf(nat, sizeof nat,
			         "seen at %s (a second hub or a TURN server at "
			         "another address tells cone from symmetric)",
			         m0);
	}
	if (strcmp(nat, u->nat_said) != 0) {
		u->svc->status_set(u->self, "nat", nat[0] ? nat : NULL);
		snprintf(u->nat_said, sizeof u->nat_said, "%s", nat);
	}
	if (strcmp(relays, u->relays_said) != 0) {
		u->svc->status_set(u->self, "relays",
		                   relays[0] ? relays : NULL);
		snprintf(u->relays_said, sizeof u->relays_said, "%s", relays);
	}
}

static void
sweep_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	struct udp *u = arg;
	struct qconn *c, *next;

	for (c = u->conns; c != NULL; c = next) {
		next = c->next;
		for (struct qstream *st = c->streams, *sn; st != NULL;
		     st = sn) {
			sn = st->next; /* stream_core_gone may free st */
			if (st->mine != NULL && !st->core_gone &&
			    !st->announce &&
			    bufferevent_pair_get_partner(st->mine) == NULL)
				stream_core_gone(st);
		}
		conn_reap(c);
	}
	nat_status(u);
}

/* ---- the secret (stateless resets, Retry tokens) ---- */

/* Kept in state_dir so that after a restart this node's stateless resets
 * still match the tokens its old connections gave out: peers learn at
 * once that those connections are gone. */
static int
secret_load(struct udp *u)
{
	const char *dir =
	    HL_HAS(u->svc, state_dir) ? u->svc->state_dir(u->self) : NULL;
	char path[4096], tmp[4200];
	int fd;

	if (dir == NULL) {
		rand_bytes(u->secret, sizeof u->secret);
		return 0;
	}
	snprintf(path, sizeof path, "%s/transport-udp.secret", dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r = read(fd, u->secret, sizeof u->secret);
		close(fd);
		if (r == (ssize_t)sizeof u->secret)
			return 0;
	}
	rand_bytes(u->secret, sizeof u->secret);
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 ||
	    write(fd, u->secret, sizeof u->secret) !=
	        (ssize_t)sizeof u->secret ||
	    fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
		u->svc->log(u->self, HL_LOG_WARN,
		            "cannot keep the stateless reset secret in %s: %s "
		            "(peers notice a restart only by timeout)",
		            path, strerror(errno));
		if (fd >= 0)
			close(fd);
		unlink(tmp);
	}
	return 0;
}

/* ---- nat: TURN relays, the last resort (turn.c does the protocol) ----
 *
 * A relay is an allocation on a TURN server, made from one of our real
 * sockets (`under`, the listener where there is one). Its relayed address
 * is a candidate in the registrations and lookups (hubnode.c), tried
 * last. `vs` stands for it where a socket is expected: QUIC connections
 * and probes on it send through the relay (Send indications) and
 * datagrams the relay passes on (Data indications) are dispatched on it,
 * from the peer as the relay saw it. QUIC stays end to end: the relay sees
 * ciphertext. */

#define RELAY_RETRY_MS 30000 /* after a failure; doubling to 8 min */
#define RELAY_PAYLOAD 1200 /* QUIC's minimum: fits with the indication */

static uint64_t
relay_now(void)
{
	return hl_mono_ms();
}

static void
relay_to_server(void *arg, const uint8_t *buf, size_t len)
{
	struct relay *r = arg;

	if (r->under != NULL)
		sock_send(r->under, NULL, (struct sockaddr *)&r->server,
		          r->serverlen, buf, len, len);
}

/* Datagrams through the relay, one Send indication each; what the relay
 * cannot take yet (no permission confirmed) is lost, as QUIC expects. */
static int
relay_send(struct relay *r, const struct sockaddr *to, socklen_t tolen,
           const uint8_t *buf, size_t n, size_t segsize)
{
	if (r->t == NULL || !r->told)
		return 0; /* the allocation is gone (being made again) */
	if (segsize == 0)
		segsize = n;
	for (size_t off = 0; off < n; off += segsize)
		turn_send(r->t, to, tolen, buf + off,
		          n - off < segsize ? n - off : segsize);
	return 0;
}

/* Small packets on relayed paths: an indication adds up to 52 bytes. */
static void
relay_settings(ngtcp2_settings *st, ngtcp2_transport_params *p)
{
	st->max_tx_udp_payload_size = RELAY_PAYLOAD;
	st->no_pmtud = 1;
	p->max_udp_payload_size = RELAY_PAYLOAD;
}

static void relay_restart(struct relay *r);

static void
relay_arm(struct relay *r)
{
	uint64_t at = turn_next_timeout(r->t), now = relay_now();

	if (at == UINT64_MAX) {
		evtimer_del(r->timer);
		return;
	}
	hl_evtimer_add_ms(r->timer, at > now ? at - now : 0);
}

/* After every call into the module: tell what changed. */
static void
relay_after(struct relay *r)
{
	struct udp *u = r->u;
	enum turn_state st = turn_state(r->t);

	if (st == TURN_READY && !r->told) {
		struct sockaddr_storage relayed;
		turn_relayed(r->t, &relayed, NULL);
		r->vs.family = relayed.ss_family;
		r->vs.locallen = relayed.ss_family == AF_INET6
		                     ? sizeof(struct sockaddr_in6)
		                     : sizeof(struct sockaddr_in);
		memcpy(&r->vs.local, &relayed, r->vs.locallen);
		r->vs.rx_local = r->vs.local;
		r->vs.rx_locallen = r->vs.locallen;
		hl_sockaddr_str((struct sockaddr *)&relayed, r->vs.name,
		                sizeof r->vs.name);
		r->told = 1;
		r->retry_ms = RELAY_RETRY_MS;
		r->quick = 0;
		u->svc->log(u->self, HL_LOG_INFO,
		            "TURN relay %s: allocated %s (lifetime %u s)",
		            r->name, r->vs.name, turn_lifetime(r->t));
		if (u->hn != NULL)
			hubnode_cands_changed(u->hn);
	} else if (st == TURN_FAILED || st == TURN_CLOSED) {
		/* 437: our 5-tuple's allocation of a moment ago (a restart)
		 * is still being torn down on the server (coturn: about 2 s
		 * after its Refresh 0): soon, not in 30 s. */
		int soon =
		    strstr(turn_error(r->t), ": 437 ") != NULL && r->quick < 3;
		u->svc->log(u->self, soon ? HL_LOG_INFO : HL_LOG_WARN,
		            "TURN relay %s: %s; trying again in %u s", r->name,
		            turn_error(r->t)[0] ? turn_error(r->t)
		                                : "the allocation ended",
		            soon ? 2 : r->retry_ms / 1000);
		if (r->told && u->hn != NULL) {
			r->told = 0;
			hubnode_cands_changed(u->hn);
		}
		r->told = 0;
		turn_free(r->t);
		r->t = NULL;
		if (soon) {
			r->quick++;
			hl_evtimer_add_ms(r->timer, 2000);
			return;
		}
		hl_evtimer_add_ms(r->timer, r->retry_ms);
		if (r->retry_ms < 16 * RELAY_RETRY_MS)
			r->retry_ms *= 2;
		return;
	}
	relay_arm(r);
}

static void
relay_begin(struct relay *r, const struct sockaddr *sa, socklen_t salen)
{
	struct udp *u = r->u;

	r->under = sock_for(u, sa->sa_family);
	if (r->under == NULL) {
		u->svc->log(u->self, HL_LOG_WARN,
		            "TURN relay %s: no UDP socket for its address "
		            "family; trying again in %u s",
		            r->name, r->retry_ms / 1000);
		hl_evtimer_add_ms(r->timer, r->retry_ms);
		return;
	}
	sockaddr_to_sock_family(r->under, sa, salen, &r->server, &r->serverlen);
	r->t = turn_new(&r->url, NULL, relay_to_server, r);
	if (r->t == NULL) {
		hl_evtimer_add_ms(r->timer, r->retry_ms);
		return;
	}
	turn_start(r->t, relay_now());
	relay_after(r);
}

static void
relay_resolved(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct relay *r = arg;

	r->req = NULL;
	r->resolving = 0;
	if (err == EVUTIL_EAI_CANCEL)
		return;
	if (err != 0 || ai == NULL) {
		r->u->svc->log(r->u->self, HL_LOG_WARN,
		               "TURN relay %s: name lookup failed (%s); "
		               "trying again in %u s",
		               r->name,
		               err ? evutil_gai_strerror(err) : "no address",
		               r->retry_ms / 1000);
		hl_evtimer_add_ms(r->timer, r->retry_ms);
	} else {
		relay_begin(r, ai->ai_addr, (socklen_t)ai->ai_addrlen);
	}
	if (ai != NULL)
		evutil_freeaddrinfo(ai);
}

/* (Again:) resolve the server's name, then allocate. */
static void
relay_restart(struct relay *r)
{
	struct evutil_addrinfo hints = {0};
	struct evdns_getaddrinfo_request *q;
	char port[8];

	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
	snprintf(port, sizeof port, "%u", r->url.port);
	r->resolving = 1;
	q = evdns_getaddrinfo(r->u->svc->dns_base(r->u->self), r->url.host,
	                      port, &hints, relay_resolved, r);
	if (r->resolving)
		r->req = q; /* else it answered already */
}

static void
relay_timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                     void *arg)
{
	struct relay *r = arg;

	if (r->t == NULL) {
		r->under = NULL;
		relay_restart(r);
		return;
	}
	turn_tick(r->t, relay_now());
	relay_after(r);
}

/* A datagram that came to s from the relay's server: 1 when it was the
 * relay's (a response, or a peer's datagram, dispatched on vs). */
static int
relay_input_from(struct relay *r, struct sock *s, const struct sockaddr *from,
                 const uint8_t *data, size_t len)
{
	struct turn_data d;
	int rv;

	if (r->t == NULL || r->under != s ||
	    !sa_same(from, (struct sockaddr *)&r->server) ||
	    !turn_is_stun(data, len))
		return 0;
	rv = turn_input(r->t, data, len, relay_now(), &d);
	if (rv == TURN_IN_NOT_TURN)
		return 0;
	if (rv == TURN_IN_DATA && r->told)
		dispatch(&r->vs, (struct sockaddr *)&d.peer, d.peer_len, d.data,
		         d.len);
	if (r->t != NULL)
		relay_after(r);
	return 1;
}

static struct relay *
relay_new(struct udp *u, const struct turn_url *url)
{
	struct relay *r = calloc(1, sizeof *r);

	if (r == NULL)
		return NULL;
	r->u = u;
	r->url = *url;
	snprintf(r->name, sizeof r->name, "%s:%u", url->host, url->port);
	r->vs.u = u;
	r->vs.fd = -1;
	r->vs.family = AF_INET;
	r->vs.listening = 1; /* takes the Initials that come through it */
	r->vs.relay = r;
	snprintf(r->vs.name, sizeof r->vs.name, "TURN %s", r->name);
	r->retry_ms = RELAY_RETRY_MS;
	r->timer = evtimer_new(u->base, relay_timer_callback, r);
	if (r->timer == NULL) {
		free(r);
		return NULL;
	}
	relay_restart(r);
	return r;
}

/* Stopping: let the allocation go (Refresh with lifetime 0), waiting at
 * most 500 ms for the server's answer (a 438 on the way is answered with
 * the new nonce), reading the socket directly: the loop is stopping.
 * Otherwise the server keeps it to its lifetime's end, and a node that
 * starts again at once meets a 437 (turn.c clears it then). */
static void
relay_drain(struct relay *r)
{
	uint64_t end = relay_now() + 500;

	turn_close(r->t, relay_now());
	while (turn_state(r->t) == TURN_CLOSING && r->under != NULL &&
	       r->under->fd >= 0) {
		uint64_t now = relay_now(), next = turn_next_timeout(r->t);
		struct pollfd pfd = {r->under->fd, POLLIN, 0};
		uint8_t buf[TURN_MAX_DATAGRAM];
		struct sockaddr_storage from;
		socklen_t fl = sizeof from;
		struct turn_data d;
		ssize_t n;

		if (now >= end)
			break;
		if (next > end)
			next = end;
		if (poll(&pfd, 1, next > now ? (int)(next - now) : 0) <= 0) {
			turn_tick(r->t, relay_now());
			continue;
		}
		n = recvfrom(r->under->fd, buf, sizeof buf, MSG_DONTWAIT,
		             (struct sockaddr *)&from, &fl);
		if (n > 0 && sa_same((struct sockaddr *)&from,
		                     (struct sockaddr *)&r->server))
			turn_input(r->t, buf, (size_t)n, relay_now(), &d);
	}
}

/* Its connections are gone already (udp_fini). */
static void
relay_free(struct relay *r)
{
	if (r->req != NULL) {
		struct evdns_getaddrinfo_request *q = r->req;
		r->req = NULL;
		evdns_getaddrinfo_cancel(q);
	}
	if (r->t != NULL) {
		if (turn_state(r->t) == TURN_READY)
			relay_drain(r);
		turn_free(r->t);
	}
	event_free(r->timer);
	free(r);
}

static int
hub_io_is_relay(void *ctx, void *sock)
{
	struct udp *u = ctx;

	for (size_t i = 0; i < u->nrelays; i++)
		if (&u->relays[i]->vs == sock)
			return u->relays[i]->told;
	return 0;
}

static size_t
hub_io_cands(void *ctx, int family, struct hubmsg_cand *out, size_t max)
{
	struct udp *u = ctx;
	size_t n = 0;

	for (size_t i = 0; i < u->nmapped && n < max; i++)
		if (u->mapped[i].ss_family == family &&
		    hubmsg_addr_from_sa(&out[n].addr,
		                        (struct sockaddr *)&u->mapped[i]) == 0)
			out[n++].kind = HUBMSG_CAND_MAPPED;
	for (size_t i = 0; i < u->nrelays; i++) {
		struct relay *r = u->relays[i];
		struct sockaddr_storage relayed, mapped;

		if (!r->told || turn_relayed(r->t, &relayed, &mapped) != 0)
			continue;
		if (n < max && relayed.ss_family == family &&
		    hubmsg_addr_from_sa(&out[n].addr,
		                        (struct sockaddr *)&relayed) == 0)
			out[n++].kind = HUBMSG_CAND_RELAY;
		if (n < max && mapped.ss_family == family &&
		    hubmsg_addr_from_sa(&out[n].addr,
		                        (struct sockaddr *)&mapped) == 0)
			out[n++].kind = HUBMSG_CAND_SRFLX;
	}
	return n;
}

static void
hub_io_permit(void *ctx, const struct sockaddr *sa, socklen_t len)
{
	struct udp *u = ctx;

	for (size_t i = 0; i < u->nrelays; i++) {
		struct relay *r = u->relays[i];
		if (r->t == NULL)
			continue;
		turn_permit(r->t, sa, len, relay_now());
		relay_arm(r);
	}
}

/* ---- config, init, fini ---- */

/* Is one value of a list key wrong? NULL, or why (the whole message, in
 * why). */
typedef const char *(*item_wrong_fn)(const char *s, char *why, size_t len);

/* host:port of at most max characters, a port not 0. */
static const char *
wrong_hostport(const char *s, size_t max)
{
	char host[ADDR_MAX];
	uint16_t port;

	return hl_addr_split(s, host, sizeof host, &port) != 0 || port == 0 ||
	               strlen(s) > max
	           ? "bad"
	           : NULL;
}

static const char *
wrong_advertise(const char *s, char *why, size_t len)
{
	if (wrong_hostport(s, 200) == NULL)
		return NULL;
	snprintf(why, len,
	         "advertise: expected \"host:port\" (the UDP port "
	         "forwarded to this node)");
	return why;
}

static const char *
wrong_hub(const char *s, char *why, size_t len)
{
	if (wrong_hostport(s, 255) == NULL)
		return NULL;
	snprintf(why, len,
	         "hubs: expected \"host:port\" (a hub's UDP address)");
	return why;
}

static const char *
wrong_turn(const char *s, char *why, size_t len)
{
	struct turn_url url;
	char err[128];

	if (turn_parse_url(s, &url, err, sizeof err) == 0)
		return NULL;
	snprintf(why, len, "%s (expected \"turn://user:pass@host:port\")", err);
	return why;
}

static const char *
wrong_listen(const char *s, char *why, size_t len)
{
	struct sockaddr_storage ss;
	int sslen = sizeof ss;

	if (wrong_hostport(s, ADDR_MAX - 1) == NULL &&
	    evutil_parse_sockaddr_port(s, (struct sockaddr *)&ss, &sslen) == 0)
		return NULL;
	snprintf(why, len,
	         "listen: \"%s\" is not an address like \"[::]:7008\" or "
	         "\"0.0.0.0:7008\"",
	         s);
	return why;
}

/* A key that takes one value (what) or a list of at most max: each value
 * checked by wrong. The number of errors (each said at file:line:column).
 */
static int
check_list(const struct hl_services *svc, struct hl_plugin *self,
           const struct hl_conf *conf, const char *key, const char *what,
           size_t max, item_wrong_fn wrong)
{
	const struct hl_conf *n = svc->conf_get(conf, key);
	size_t cnt = hl_conf_count(svc, n);
	int bad = 0;

	if (n == NULL)
		return 0;
	if (cnt == 0 || cnt > max) {
		svc->conf_error(self, n,
		                "%s: expected %s or a list of at most %zu", key,
		                what, max);
		return 1;
	}
	for (size_t i = 0; i < cnt; i++) {
		const struct hl_conf *it = hl_conf_at(svc, n, i);
		const char *s = svc->conf_str(it);
		char why[400];
		const char *w = wrong(s ? s : "", why, sizeof why);
		if (w != NULL) {
			svc->conf_error(self, it, "%s", w);
			bad++;
		}
	}
	return bad;
}

static int
check_conf(const struct hl_services *svc, struct hl_plugin *self,
           const struct hl_conf *conf)
{
	static const char *const allowed[] = {
	    "listen", "idle_timeout", "advertise", "hubs", "turn", NULL};
	int bad = svc->conf_check_keys(self, conf, allowed), v = 0;

	if (hl_conf_int(svc, self, conf, "idle_timeout", 2, 600, &v) != 0)
		bad++;
	bad += check_list(svc, self, conf, "advertise", "\"host:port\"", 8,
	                  wrong_advertise);
	bad += check_list(svc, self, conf, "hubs", "\"host:port\"",
	                  HUBNODE_MAX_HUBS, wrong_hub); /* nat */
	bad += check_list(svc, self, conf, "turn",
	                  "\"turn://user:pass@host:port\"", MAX_RELAYS,
	                  wrong_turn); /* nat */
	if (svc->conf_get(conf, "turn") != NULL &&
	    svc->conf_get(conf, "hubs") == NULL) {
		svc->conf_error(self, svc->conf_get(conf, "turn"),
		                "turn: a relayed candidate reaches peers "
		                "through hubs: add hubs: too");
		bad++;
	}
	bad += check_list(svc, self, conf, "listen",
	                  "an address like "
	                  "\"[::]:7008\"",
	                  MAX_SOCKS, wrong_listen);
	return bad ? -1 : 0;
}

static int
open_listener(struct udp *u, const char *addr)
{
	struct sockaddr_storage ss;
	int sslen = sizeof ss;
	struct sock *s = &u->socks[u->nsocks];

	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)&ss, &sslen) !=
	        0 ||
	    sock_open(u, s, (struct sockaddr *)&ss, (socklen_t)sslen, 1) != 0) {
		u->svc->log(u->self, HL_LOG_ERROR,
		            "cannot listen on UDP %s: %s", addr,
		            strerror(errno));
		return -1;
	}
	u->nsocks++;
	u->svc->log(u->self, HL_LOG_INFO, "QUIC on UDP %s", s->name);
	/* The core records it as UDP, so that upnp maps it as UDP. */
	if (HL_HAS(u->svc, listening_proto))
		u->svc->listening_proto(u->self, (struct sockaddr *)&s->local,
		                        s->locallen, HL_PROTO_UDP, 1);
	return 0;
}

static int
service_cred(struct udp *u, struct service *sv, const struct hl_identity *id)
{
	gnutls_datum_t cert = {(unsigned char *)id->cert_pem,
	                       (unsigned)strlen(id->cert_pem)};
	gnutls_datum_t key = {(unsigned char *)id->key_pem,
	                      (unsigned)strlen(id->key_pem)};

	snprintf(sv->keyhash, sizeof sv->keyhash, "%s", id->keyhash);
	if (gnutls_certificate_allocate_credentials(&sv->cred) != 0) {
		sv->cred = NULL;
		return -1;
	}
	if (gnutls_certificate_set_x509_key_mem2(
	        sv->cred, &cert, &key, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
		u->svc->log(u->self, HL_LOG_ERROR,
		            "service %s: GnuTLS cannot use its certificate or "
		            "key",
		            id->name);
		return -1;
	}
	return 0;
}

static void udp_fini(void *state);

/* ---- nat: what hubnode.c borrows ---- */

static void *
hub_io_sock_for(void *ctx, int family, uint16_t *port)
{
	struct sock *s = sock_for(ctx, family);

	if (s == NULL)
		return NULL;
	*port = ntohs(s->local.ss_family == AF_INET6
	                  ? ((struct sockaddr_in6 *)&s->local)->sin6_port
	                  : ((struct sockaddr_in *)&s->local)->sin_port);
	return s;
}

static void *
hub_io_listener_for(void *ctx, int family, uint16_t *port)
{
	struct udp *u = ctx;

	for (size_t i = 0; i < u->nsocks; i++) {
		struct sock *s = &u->socks[i];
		const struct sockaddr_in *s4 = (struct sockaddr_in *)&s->local;
		const struct sockaddr_in6 *s6 =
		    (struct sockaddr_in6 *)&s->local;

		if (s->family != family && s->family != AF_INET6)
			continue;
		if ((s->family == AF_INET &&
		     (ntohl(s4->sin_addr.s_addr) >> 24) == 127) ||
		    (s->family == AF_INET6 &&
		     IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr)))
			continue;
		*port =
		    ntohs(s->family == AF_INET6 ? s6->sin6_port : s4->sin_port);
		return s;
	}
	return NULL;
}

static void
hub_io_send(void *ctx HL_UNUSED, void *sock, const struct sockaddr *to,
            socklen_t tolen, const uint8_t *buf, size_t len)
{
	struct sock *s = sock;
	struct sockaddr_storage ss;
	socklen_t sslen;

	if (s->family == AF_INET && to->sa_family != AF_INET)
		return;
	sockaddr_to_sock_family(s, to, tolen, &ss, &sslen);
	sock_send(s, NULL, (struct sockaddr *)&ss, sslen, buf, len, len);
}

/* The birthday approach's sockets: an ephemeral port each, read like the
 * listeners; closed when the dial is over and no connection uses them. */
static void *
hub_io_open_sock(void *ctx, int family)
{
	struct udp *u = ctx;
	struct sock *s = calloc(1, sizeof *s);
	struct sockaddr_in6 any6 = {.sin6_family = AF_INET6};
	struct sockaddr_in any4 = {.sin_family = AF_INET};

	if (s == NULL)
		return NULL;
	s->fd = -1;
	if ((family == AF_INET6
	         ? sock_open(u, s, (struct sockaddr *)&any6, sizeof any6, 0)
	         : sock_open(u, s, (struct sockaddr *)&any4, sizeof any4, 0)) !=
	    0) {
		free(s);
		return NULL;
	}
	s->punch = 1;
	/* A service's birthday socket takes the client's QUIC Initial
	 * (never chosen for dials: not among the listeners). */
	s->listening = 1;
	return s;
}

static void
hub_sock_release(struct udp *u, struct sock *s)
{
	if (s == NULL || !s->punch || !s->closing)
		return;
	for (struct qconn *c = u->conns; c != NULL; c = c->next)
		if (c->s == s)
			return;
	sock_close(s);
	free(s);
}

static void
hub_io_close_sock(void *ctx, void *sock)
{
	struct sock *s = sock;

	s->closing = 1;
	hub_sock_release(ctx, s);
}

static int
hub_setup(struct udp *u, const struct hl_conf *conf)
{
	const struct hubnode_io io = {
	    .sock_for = hub_io_sock_for,
	    .listener_for = hub_io_listener_for,
	    .send = hub_io_send,
	    .open_sock = hub_io_open_sock,
	    .close_sock = hub_io_close_sock,
	    .ctx = u,
	    .is_relay = hub_io_is_relay,
	    .cands = hub_io_cands,
	    .permit = hub_io_permit,
	};
	const struct hl_conf *n = u->svc->conf_get(conf, "hubs");

	u->hn = hubnode_new(u->svc, u->self, &io);
	if (u->hn == NULL)
		return -1;
	for (size_t i = 0; i < hl_conf_count(u->svc, n); i++)
		if (hubnode_add_hub(
		        u->hn, u->svc->conf_str(hl_conf_at(u->svc, n, i))) != 0)
			return -1;
	{
		uint16_t port;
		int serve = hub_io_listener_for(u, AF_INET, &port) != NULL ||
		            hub_io_listener_for(u, AF_INET6, &port) != NULL;
		if (!serve && hubnode_hub_count(u->hn) > 0 &&
		    u->svc->identity_count(u->self) > 0)
			u->svc->log(
			    u->self, HL_LOG_WARN,
			    "hubs: the services are not registered: "
			    "this node has no listen: address (other "
			    "than loopback) to accept their clients on");
		hubnode_start(u->hn, serve);
	}
	return 0;
}

/* nat: the node's typed endpoints changed (HL_EVENT_ENDPOINTS): its
 * quic://IP:port ones are mapped candidates. */
static void
udp_event(void *state, const struct hl_event *ev)
{
	struct udp *u = state;
	struct sockaddr_storage m[4];
	size_t n = 0;
	const char *p;

	if (ev->type != HL_EVENT_ENDPOINTS || ev->text == NULL)
		return;
	for (p = ev->text; *p != '\0' && n < 4;) {
		size_t len = strcspn(p, ",");
		char ep[ADDR_MAX];
		int sl = sizeof m[n];

		if (len > 7 && len < sizeof ep &&
		    strncmp(p, "quic://", 7) == 0) {
			memcpy(ep, p + 7, len - 7);
			ep[len - 7] = '\0';
			memset(&m[n], 0, sizeof m[n]);
			if (evutil_parse_sockaddr_port(
			        ep, (struct sockaddr *)&m[n], &sl) == 0)
				n++;
		}
		p += len;
		if (*p == ',')
			p++;
	}
	if (n == u->nmapped && memcmp(m, u->mapped, n * sizeof m[0]) == 0)
		return;
	memcpy(u->mapped, m, n * sizeof m[0]);
	u->nmapped = n;
	if (u->hn != NULL)
		hubnode_cands_changed(u->hn);
}

static const struct hl_events_ops udp_events = {
    .size = sizeof(struct hl_events_ops),
    .event = udp_event,
};

static int
udp_query_start(void *state, struct hl_query *q)
{
	struct udp *u = state;

	return u->hn != NULL ? hubnode_query_start(u->hn, q) : -1;
}

static void
udp_query_cancel(void *state, struct hl_query *q)
{
	struct udp *u = state;

	if (u->hn != NULL)
		hubnode_query_cancel(u->hn, q);
}

/* punch_client: `hlcore punch`'s instance (no listener, no
 * registration, ALPN hardline-punch, no state written). */
static int
udp_start(const struct hl_services *svc, struct hl_plugin *self,
          const struct hl_conf *conf, void **state, int punch_client)
{
	struct udp *u;
	const struct hl_conf *n;
	int idle = IDLE_TIMEOUT_DEFAULT;
	struct timeval sweep = {0, 250000};

	if (check_conf(svc, self, conf) != 0)
		return -1;
	hl_conf_int(svc, self, conf, "idle_timeout", 2, 600, &idle);
	u = calloc(1, sizeof *u);
	if (u == NULL)
		return -1;
	for (size_t i = 0; i <= MAX_SOCKS; i++)
		u->socks[i].fd = -1;
	u->svc = svc;
	u->self = self;
	u->punch_client = punch_client;
	u->base = svc->event_base(self);
	u->idle_timeout = (ngtcp2_duration)idle * NGTCP2_SECONDS;
	u->rxbuf = malloc((size_t)RX_BATCH * RX_BUF);
	u->sweep = event_new(u->base, -1, EV_PERSIST, sweep_callback, u);
	if (u->rxbuf == NULL || u->sweep == NULL ||
	    gnutls_priority_init(&u->prio, priority_str, NULL) != 0 ||
	    gnutls_certificate_allocate_credentials(&u->client_cred) != 0)
		goto fail;
	event_add(u->sweep, &sweep);
	if (punch_client)
		rand_bytes(u->secret, sizeof u->secret);
	else
		secret_load(u);
	u->nservices = svc->identity_count(self);
	u->services =
	    calloc(u->nservices ? u->nservices : 1, sizeof *u->services);
	if (u->services == NULL)
		goto fail;
	for (size_t i = 0; i < u->nservices; i++)
		if (service_cred(u, &u->services[i],
		                 svc->identity_at(self, i)) != 0)
			goto fail;
	n = punch_client ? NULL : svc->conf_get(conf, "listen");
	for (size_t i = 0; i < hl_conf_count(svc, n); i++)
		if (open_listener(u, svc->conf_str(hl_conf_at(svc, n, i))) != 0)
			goto fail;
	n = punch_client ? NULL : svc->conf_get(conf, "advertise");
	for (size_t i = 0;
	     HL_HAS(svc, endpoint_add) && i < hl_conf_count(svc, n); i++) {
		char ep[256];
		snprintf(ep, sizeof ep, "quic://%s",
		         svc->conf_str(hl_conf_at(svc, n, i)));
		svc->endpoint_add(self, ep);
	}
	if (hub_setup(u, conf) != 0) /* nat */
		goto fail;
	n = svc->conf_get(conf, "turn"); /* nat */
	for (size_t i = 0; i < hl_conf_count(svc, n); i++) {
		struct turn_url url;
		char err[128];
		if (turn_parse_url(svc->conf_str(hl_conf_at(svc, n, i)), &url,
		                   err, sizeof err) != 0 ||
		    (u->relays[u->nrelays] = relay_new(u, &url)) == NULL)
			goto fail;
		u->nrelays++;
	}
	if (!punch_client && (u->ps = punchsrv_new(svc, self, conf)) == NULL)
		goto fail; /* punch */
	*state = u;
	return 0;
fail:
	udp_fini(u);
	return -1;
}

static void
udp_fini(void *state)
{
	struct udp *u = state;

	u->stopping = 1;
	punchsrv_free(u->ps); /* punch */
	u->ps = NULL;
	/* The core is stopping: dials still running end silently. */
	while (u->dials != NULL) {
		struct hl_dial *d = u->dials;
		udp_dial_cancel(u, d);
	}
	hubnode_free(u->hn); /* nat */
	u->hn = NULL;
	while (u->conns != NULL) {
		struct qconn *c = u->conns;
		snprintf(c->why, sizeof c->why, "hlcore is stopping");
		ngtcp2_connection_close_error_set_application_error(
		    &c->last_error, 0, NULL, 0);
		if (c->conn != NULL)
			conn_fail(c, "stopping");
		conn_free(c);
	}
	for (size_t i = 0; i < u->nrelays; i++) /* nat: over under */
		relay_free(u->relays[i]);
	for (size_t i = 0; i <= MAX_SOCKS; i++) {
		struct sock *s = &u->socks[i];
		if (s->fd < 0)
			continue;
		if (s->listening && HL_HAS(u->svc, listening_proto))
			u->svc->listening_proto(u->self,
			                        (struct sockaddr *)&s->local,
			                        s->locallen, HL_PROTO_UDP, 0);
		sock_close(s);
	}
	for (size_t i = 0; i < u->nservices; i++)
		if (u->services[i].cred != NULL)
			gnutls_certificate_free_credentials(
			    u->services[i].cred);
	free(u->services);
	hl_addr_table_free(u->hosts, HOST_BUCKETS);
	if (u->client_cred != NULL)
		gnutls_certificate_free_credentials(u->client_cred);
	if (u->prio != NULL)
		gnutls_priority_deinit(u->prio);
	if (u->sweep != NULL)
		event_free(u->sweep);
	u->svc->log(u->self, HL_LOG_DEBUG,
	            "QUIC: %lu connections accepted, %lu dialled; %lu "
	            "streams accepted, %lu opened; %lu Retry sent, %lu "
	            "addresses validated by a NEW_TOKEN, %lu "
	            "stateless resets, %lu datagrams dropped, %lu refused "
	            "over the per-address bound, %lu at the caps, %lu for an "
	            "unknown name",
	            u->conns_in, u->conns_out, u->streams_in, u->streams_out,
	            u->retries, u->tokens_ok, u->resets, u->dropped,
	            u->refused_host, u->refused_full, u->refused_sni);
	free(u->rxbuf);
	free(u);
}

static int
udp_init(const struct hl_services *svc, struct hl_plugin *self,
         const struct hl_conf *conf, void **state)
{
	return udp_start(svc, self, conf, state, 0);
}

static int
udp_validate(const struct hl_services *svc, struct hl_plugin *self,
             const struct hl_conf *conf)
{
	return check_conf(svc, self, conf);
}

/* Bare host:port (the same port number as TCP, by convention) and
 * "quic://host:port". */
static const char *const udp_schemes[] = {"", "quic", "hub", NULL};

static const struct hl_transport_ops udp_transport = {
    .size = sizeof(struct hl_transport_ops),
    .dial = udp_dial,
    .dial_cancel = udp_dial_cancel,
    .schemes = udp_schemes,
    /* Python Hardline has no QUIC: a request goes right behind the OOB
     * line, a round trip sooner. */
    .flags = HL_TRANSPORT_HLCORE_ONLY,
};

/* punch: what `hlcore punch` borrows (punchcmd.c). */
static int
udp_init_punch_client(const struct hl_services *svc, struct hl_plugin *self,
                      const struct hl_conf *conf, void **state)
{
	return udp_start(svc, self, conf, state, 1);
}

static int
udp_command(const struct hl_services *svc, struct hl_plugin *self,
            const struct hl_conf *conf, int argc, char *const *argv)
{
	static const struct punch_udp_ops punch_udp = {
	    udp_init_punch_client, udp_fini, udp_dial, udp_dial_cancel};

	if (strcmp(argv[0], "punch") == 0)
		return punch_command(svc, self, conf, argc, argv, &punch_udp);
	return udp_nat_command(svc, self, conf, argc, argv);
}

/* nat: `hlcore -c FILE nat` (natcmd.c); punch: `hlcore -c FILE punch`
 * (punchcmd.c). */
static const char *const udp_command_names[] = {"nat", "punch", NULL};
static const char *const udp_command_help[] = {
    "nat             print this node's NAT behaviour and candidates "
    "(STUN via its hubs)",
    "punch LABEL -- CMD [ARGS...]  punch a UDP path to the node serving "
    "LABEL (via its hubs) and run CMD with it",
    NULL};
static const struct hl_command_ops udp_commands = {
    .size = sizeof(struct hl_command_ops),
    .names = udp_command_names,
    .help = udp_command_help,
    .run = udp_command,
};

/* nat: the configured hubs as "hub://" candidates for every lookup. */
static const struct hl_discovery_ops udp_discovery = {
    .size = sizeof(struct hl_discovery_ops),
    .query_start = udp_query_start,
    .query_cancel = udp_query_cancel,
};

#ifdef HL_QUIC_TEST_IMPOSTOR
#define PLUGIN_NAME "transport-udp-impostor"
#else
#define PLUGIN_NAME "transport-udp"
#endif

HL_PLUGIN(HL_KIND_TRANSPORT | HL_KIND_DISCOVERY, .name = PLUGIN_NAME,
          .version = "0.1.0", .discovery = &udp_discovery,
          .commands = &udp_commands, .events = &udp_events,
          .description = "QUIC tunnels over UDP (ngtcp2 + GnuTLS)",
          .default_priority = 20, .init = udp_init, .fini = udp_fini,
          .validate = udp_validate, .transport = &udp_transport);
