/*
 * turn.h: a TURN client (RFC 8656, UDP, long-term credentials) for
 * transport-udp's last resort: one allocation on one TURN server, with
 * permissions for the peer's addresses only, and the peer's datagrams
 * (QUIC packets) wrapped in Send indications and unwrapped from Data
 * indications.
 *
 * No sockets, no loop (like plugins/hub/hubclient.c): the caller owns the
 * UDP socket, gives the module what arrives from the TURN server, sends
 * what the module asks it to send (the send callback, always to the TURN
 * server's address), and passes the time in (monotonic milliseconds). The
 * STUN messages are made and checked by libnice's stun library
 * (stun_usage_turn_create/_create_refresh/_process for Allocate and
 * Refresh, stun_agent_validate for every answer and the long-term
 * MESSAGE-INTEGRITY). What its usages lack is built with its stunmessage
 * API, never byte by byte: CreatePermission (libnice 0.1.21 declares
 * stun_usage_turn_create_permission but does not export it) and the Send
 * indication (stun_agent_init_indication, stun_message_append_*); Data
 * indications are read with stun_message_find*.
 *
 * Bounded: one calloc'd struct of fixed size (turn_new), at most
 * TURN_MAX_PEERS permissions, every received message's length checked
 * before and by libnice, each request retransmitted at most `rc` times with
 * RFC 8489's timing (RTO 500 ms doubling, then 16 RTO: 39.5 s), at most 3
 * stale-nonce retries in a row for one request.
 *
 * Why Send/Data indications and not ChannelData: on a socket shared with
 * QUIC, RFC 7983/9443 demultiplexing by the first byte cannot tell a
 * ChannelData message (0x40-0x4F) from a QUIC short-header packet
 * (0x40-0x7F), while a STUN message (0x00-0x03) never collides with QUIC
 * (its fixed bit 0x40 is always set: transport-udp does not grease it).
 * Indications cost 36 bytes more a datagram (v4); the relay is the last
 * resort anyway.
 *
 * ## How transport-udp uses it (one UDP socket; "TURN relays" in
 * transport-udp.c, the recipe below)
 *
 *   struct turn_url u; char err[128];
 *   turn_parse_url("turn://user:pass@host:3478", &u, err, sizeof err);
 *   resolve u.host/u.port to `server` (a sockaddr: the caller resolves);
 *   t = turn_new(&u, NULL, send_cb, ctx);   send_cb: sendto(fd, server)
 *   turn_start(t, now_ms);
 *   on every datagram received on the socket:
 *     if it comes from `server` (address and port equal):
 *       struct turn_data d;
 *       switch (turn_input(t, buf, len, now_ms, &d)) {
 *       case TURN_IN_DATA:  feed d.data[0..d.len) to ngtcp2 as if it came
 *                           from d.peer (the peer's relayed-to address),
 *                           path local = the socket, remote = d.peer;
 *                           (a QUIC path "via TURN" is d.peer as seen by
 *                           the relay; keep a flag on the path)
 *       case TURN_IN_DONE:  consumed (a response), nothing to do
 *       case TURN_IN_NOT_TURN: not ours (give it to the hub/STUN demux)
 *       }
 *     else: as today (QUIC, hub, STUN by hubmsg_demux()).
 *   after turn_state() becomes TURN_READY: turn_relayed() is this host's
 *     relayed candidate (tell the peer through the hub); turn_permit(t,
 *     peer, peer_len, now) for each of the peer's candidate addresses (by
 *     IP: RFC 8656 permissions ignore the port; call it before TURN_READY
 *     too, it is sent once allocated), then the peer can send to the
 *     relayed address, and turn_permitted() says when ours may go out.
 *   QUIC packets for a path via TURN: turn_send(t, peer, peer_len, pkt,
 *     len) instead of sendto (the module calls send_cb with the Send
 *     indication); -1 is a lost packet to QUIC. The indication adds 36 to
 *     39 bytes (IPv4 peer) or 48 to 51 (IPv6): give ngtcp2 a max UDP
 *     payload 52 bytes smaller on relayed paths (1200 is always safe).
 *   timers: arm one timer at turn_next_timeout(t) (absolute ms; UINT64_MAX:
 *     none) after every call into the module; when it fires, turn_tick(t,
 *     now). On failure (turn_state() == TURN_FAILED) turn_error(t) is the
 *     sentence for the 502 page.
 *   shutdown: turn_close(t, now) (Refresh lifetime 0), keep feeding
 *     turn_input/turn_tick until TURN_CLOSED (or a deadline of your own,
 *     a second or so), then turn_free(t).
 *
 * Demux rule: a datagram whose source is the TURN server's address goes to
 * turn_input() and nowhere else unless it answers TURN_IN_NOT_TURN; a
 * TURN message always starts with a byte 0x00-0x03 and carries the magic
 * cookie 0x2112A442 at offset 4 (turn_is_stun()).
 *
 * Threads: none; one struct turn is used by one thread at a time. The
 * struct must not be moved (libnice keeps a pointer to the password).
 */
#ifndef HL_TURN_H
#define HL_TURN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TURN_MAX_PEERS 16
/* A peer neither permitted again (turn_permit) nor heard from for this
 * long (RFC 8656's permission lifetime) is let go: its permission is no
 * longer refreshed and its slot may be taken by a new peer. */
#define TURN_PEER_IDLE_MS (300 * 1000)
#define TURN_CRED_MAX 128 /* user and password, with the NUL */
#define TURN_HOST_MAX 256
/* The largest payload turn_send() wraps: a QUIC packet fits with room. */
#define TURN_MAX_DATA 1500
/* The largest datagram turn_input() looks at. */
#define TURN_MAX_DATAGRAM 2048

/* turn://user:pass@host:port (port 3478 when left out; host a name, an
 * IPv4 address or [IPv6]; user and password %-decoded, each non-empty). */
struct turn_url {
	char user[TURN_CRED_MAX];
	char pass[TURN_CRED_MAX];
	char host[TURN_HOST_MAX];
	uint16_t port;
};

/* 0, or -1 with a sentence in err ("turn URL: ..."). */
int turn_parse_url(const char *url, struct turn_url *out, char *err,
                   size_t errlen);

/* Timing and lifetimes; zeros take the defaults given. */
struct turn_config {
	uint32_t rto_ms; /* first retransmission timeout: 500 (max 60000) */
	unsigned rc; /* requests sent at most (RFC 8489 Rc): 7 (max 12) */
	uint32_t lifetime_s; /* allocation lifetime asked for: server's */
	uint32_t perm_refresh_s; /* permissions refreshed every: 240 */
	int no_refresh; /* tests only: never refresh the allocation */
};

/* The module asks the caller to send buf[0..len) to the TURN server. */
typedef void (*turn_send_fn)(void *arg, const uint8_t *buf, size_t len);

struct turn;

/* A new client (calloc, fixed size), nothing sent yet; NULL when out of
 * memory. u and cfg are copied (cfg may be NULL). */
struct turn *turn_new(const struct turn_url *u, const struct turn_config *cfg,
                      turn_send_fn send, void *arg);
void turn_free(struct turn *t);

enum turn_state {
	TURN_IDLE = 0, /* turn_start not called */
	TURN_ALLOCATING = 1, /* Allocate sent, no success yet */
	TURN_READY = 2, /* allocated: turn_relayed() holds */
	TURN_FAILED = 3, /* turn_error() says why; nothing more is sent */
	TURN_CLOSED = 4, /* closed: nothing more is sent */
	TURN_CLOSING = 5, /* turn_close() sent Refresh lifetime 0 */
};

/* Sends the first Allocate. 0, or -1 (not TURN_IDLE). */
int turn_start(struct turn *t, uint64_t now);

enum turn_input_result {
	TURN_IN_NOT_TURN = 0, /* not a message for this client */
	TURN_IN_DONE = 1, /* consumed (a response, a dropped indication) */
	TURN_IN_DATA = 2, /* a Data indication: *out filled */
};

struct turn_data {
	struct sockaddr_storage peer; /* who sent it to the relayed address */
	socklen_t peer_len;
	const uint8_t *data; /* points into the buffer given to turn_input */
	size_t len;
};

/* A datagram buf[0..len) received from the TURN server's address. */
int turn_input(struct turn *t, const uint8_t *buf, size_t len, uint64_t now,
               struct turn_data *out);

/* Absolute time (ms) at which turn_tick is due; UINT64_MAX: never. */
uint64_t turn_next_timeout(const struct turn *t);
void turn_tick(struct turn *t, uint64_t now);

/* Install (and keep refreshed) a permission for the peer's IP address
 * (its port is ignored, as the relay does). Before TURN_READY it is
 * remembered and sent once allocated. 0, or -1 (table full, not an
 * IPv4/IPv6 address, failed or closed). A full table makes room by
 * forgetting the peer idle the longest, if idle TURN_PEER_IDLE_MS. Calling
 * it again for a peer keeps it from going idle. */
int turn_permit(struct turn *t, const struct sockaddr *peer, socklen_t len,
                uint64_t now);
/* 1 when the server confirmed a permission for peer's IP, else 0. peer
 * must be a whole sockaddr_in or sockaddr_in6. */
int turn_permitted(const struct turn *t, const struct sockaddr *peer);

/* data[0..len) to peer through the relay (a Send indication). 0, or -1
 * (not TURN_READY, no confirmed permission for peer, len > TURN_MAX_DATA).
 */
int turn_send(struct turn *t, const struct sockaddr *peer, socklen_t peer_len,
              const uint8_t *data, size_t len);

/* Sends Refresh with lifetime 0 and goes TURN_CLOSING: turn_input and
 * turn_tick still see it through (a 438 stale nonce answered with the new
 * nonce, retransmissions) until TURN_CLOSED, which its answer, an error or
 * no answer bring. The caller may also turn_free() at once: the server
 * frees the allocation at its lifetime's end anyway. Before TURN_READY:
 * TURN_CLOSED at once. */
void turn_close(struct turn *t, uint64_t now);

enum turn_state turn_state(const struct turn *t);
/* Why TURN_FAILED (or a permission failed), "" otherwise. */
const char *turn_error(const struct turn *t);
/* The relayed address (what the peer sends to) and this host's address
 * as the server saw it. 0, or -1 when not TURN_READY. Either may be NULL.
 */
int turn_relayed(const struct turn *t, struct sockaddr_storage *relayed,
                 struct sockaddr_storage *mapped);
/* The lifetime the server granted (s) and the number of refreshes done. */
uint32_t turn_lifetime(const struct turn *t);
unsigned turn_refreshes(const struct turn *t);

/* 1 when buf looks like a STUN message (RFC 7983: first byte 0-3, the
 * magic cookie, a length that fits), else 0. */
int turn_is_stun(const uint8_t *buf, size_t len);

#endif /* HL_TURN_H */
