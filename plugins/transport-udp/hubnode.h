/*
 * hubnode.h: transport-udp's way through NATs with rendezvous hubs
 * (plugins/hub, docs/protocol.md "Hub messages" and "Punch probes").
 *
 * Everything goes out of transport-udp's own UDP sockets (through the send
 * function it gives), so that hubs see the very NAT mapping that the punch
 * and the QUIC connection then use:
 *
 *  - Serving: each service's keyhash is registered with each hub (proof of
 *    the key, hubclient_register()), kept alive every REFRESH s, and
 *    registered again when a hub answers error 5 (a restarted hub heals
 *    within one REFRESH period) or stops answering.
 *  - INTRO (a client looked the keyhash up): the service node probes the
 *    client's candidates (its address as the hub saw it first), paced and
 *    bounded, and answers the client's probes.
 *  - Dialing "hub://host:port": a hubpunch looks the keyhash up with this
 *    node's host candidates, probes the service's candidates (observed
 *    address first), and reports every candidate a probe or ack came back
 *    from (a path open both ways), for transport-udp to run QUIC over.
 *
 * Loop thread only; every table bounded; every wait bounded in time.
 */
#ifndef HL_HUBNODE_H
#define HL_HUBNODE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct hl_services;
struct hl_plugin;
struct hubmsg_cand;
struct hubnode;
struct hubpunch;

#define HUBNODE_MAX_HUBS 8

/* What transport-udp lends: its socket for a family (AF_INET, AF_INET6),
 * with that socket's local port, or NULL (no socket); and sending one
 * datagram from a socket it gave. */
struct hubnode_io {
	void *(*sock_for)(void *ctx, int family, uint16_t *port);
	/* The listener registrations go out of (the one clients' QUIC
	 * reaches), not on a loopback address; or NULL. */
	void *(*listener_for)(void *ctx, int family, uint16_t *port);
	void (*send)(void *ctx, void *sock, const struct sockaddr *to,
	             socklen_t tolen, const uint8_t *buf, size_t len);
	/* The birthday approach: a new socket of its own (an ephemeral
	 * port, read like the others), or NULL; and letting it go (closed
	 * once no QUIC connection uses it). */
	void *(*open_sock)(void *ctx, int family);
	void (*close_sock)(void *ctx, void *sock);
	void *ctx;
	/* TURN relays (each NULL when there are none). is_relay: is sock a
	 * relay's (what comes to it came through the relay, what goes out
	 * of it goes through it)? cands: this node's candidates beyond its
	 * host ones for a family (relayed, and server-reflexive as the
	 * TURN server saw it), at most max. permit: a peer's address may
	 * now reach this node through its relays. */
	int (*is_relay)(void *ctx, void *sock);
	size_t (*cands)(void *ctx, int family, struct hubmsg_cand *out,
	                size_t max);
	void (*permit)(void *ctx, const struct sockaddr *sa, socklen_t len);
};

/* This node's candidates changed (a relay was allocated or lost): the
 * registrations tell the hubs now, not at the next keep-alive. */
void hubnode_cands_changed(struct hubnode *hn);

/* A hubnode for the plugin: no hub yet. NULL when out of memory. */
struct hubnode *hubnode_new(const struct hl_services *svc,
                            struct hl_plugin *self,
                            const struct hubnode_io *io);
/* Add a hub "host:port" (a name or an address). 0, or -1 (bad, too
 * many). */
int hubnode_add_hub(struct hubnode *hn, const char *hostport);
size_t hubnode_hub_count(const struct hubnode *hn);
const char *hubnode_hub_name(const struct hubnode *hn, size_t i);
/* Start registering every service of the node with every hub (serve 0:
 * none: without a listener, clients could not reach them). */
void hubnode_start(struct hubnode *hn, int serve);
void hubnode_free(struct hubnode *hn);

/* A datagram that came to sock (from transport-udp's receive path): 1
 * when it was the hubnode's (a hub message, STUN, a punch probe: the first
 * byte is below 16), 0 for the caller (QUIC). */
int hubnode_input(struct hubnode *hn, void *sock, const struct sockaddr *from,
                  socklen_t fromlen, const uint8_t *buf, size_t len);

/* How hubs saw this node's socket sock: for each hub a registration from
 * it succeeded with, the hub's address (server) and the address it saw
 * (mapped), at most max; their number. */
size_t hubnode_mappings(const struct hubnode *hn, void *sock,
                        struct sockaddr_storage *server,
                        struct sockaddr_storage *mapped, size_t max);

/* Discovery: "hub://<hub>" for each hub, then done (from the loop). */
struct hl_query;
int hubnode_query_start(struct hubnode *hn, struct hl_query *q);
void hubnode_query_cancel(struct hubnode *hn, struct hl_query *q);

/* ---- dialing through a hub ---- */

/* A candidate was found: a probe or ack came back from it (a path open
 * both ways); take it with hubpunch_next(). Never from inside
 * hubpunch_start(). */
typedef void (*hubpunch_found_cb)(void *arg);
/* Nothing more will be found (lookup failed, or probing over without an
 * answer); why: hubpunch_report(). Never from inside hubpunch_start(). */
typedef void (*hubpunch_over_cb)(void *arg);

/* Look keyhash (40 hex) up at the hub at sa (named hubname, as dialed)
 * and punch. NULL when it cannot start (no socket for that family). */
struct hubpunch *hubpunch_start(struct hubnode *hn, const char *keyhash,
                                const char *hubname, const struct sockaddr *sa,
                                socklen_t salen, hubpunch_found_cb found,
                                hubpunch_over_cb over, void *arg);
/* A found candidate not yet taken, into ss, with the socket its probe
 * came to (*sock: the punch's own, one of its birthday sockets, or a
 * relay's) and whether the path goes through a TURN relay (*relayed: the
 * service's relayed candidate, or this node's relay): 0, or -1 (none
 * yet). Relayed paths come last: only once RELAY_AFTER_MS of probing
 * found no direct one (or probing is over). */
int hubpunch_next(struct hubpunch *p, struct sockaddr_storage *ss,
                  socklen_t *salen, void **sock, int *relayed);
/* A QUIC attempt over a found candidate failed: why, for the report. */
void hubpunch_failed(struct hubpunch *p, const struct sockaddr *sa,
                     socklen_t salen, const char *why);
/* Is the punch still probing (more candidates may be found)? */
int hubpunch_running(const struct hubpunch *p);
/* Every candidate probed and what came of it, for the 502 page. */
void hubpunch_report(const struct hubpunch *p, char *out, size_t outlen);
void hubpunch_cancel(struct hubpunch *p);

#endif /* HL_HUBNODE_H */
