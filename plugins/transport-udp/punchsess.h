/*
 * punchsess.h: one side of an `hlcore punch` (docs/protocol.md, "Punch
 * control stream"), the same for the client (punchcmd.c) and the service
 * (punchsrv.c), once the service said OK on the control stream:
 *
 *  1. a FRESH UDP socket (IPv4, an ephemeral port), not transport-udp's:
 *     it goes to the command in the end;
 *  2. its server-reflexive address from STUN to each hub (4 tries, 250 ms
 *     apart), then CANDS (srflx first, then host) on the control stream;
 *  3. with the other side's CANDS: a PROBE to each of its candidates
 *     every 50 ms, at most 120 rounds (6 s); a PROBE is answered with an
 *     ACK from the socket it came to. No answer after 500 ms: the
 *     birthday approach (hubnode.c's, with sockets of this session): up
 *     to 256 more sockets, each probing the other's first srflx every
 *     200 ms, and 30 probes a round to random ports of its IP (2000 at
 *     most, and within the shared rate when one is given);
 *  4. the first PROBE or ACK that comes in proves a path: READY <where
 *     the other side was seen> on the control stream; the socket it came
 *     to is kept, every other one closed;
 *  5. proven here and the other side's READY received: the path (the
 *     socket, its local, public and peer addresses) goes to the callback.
 *
 * Every wait is bounded (the whole session: 15 s); a failure says which
 * candidates were probed and what came of each, and sends FAIL to the
 * other side. Loop thread only.
 */
#ifndef HL_PUNCHSESS_H
#define HL_PUNCHSESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "hubmsg.h"

struct bufferevent;
struct hl_services;
struct hl_plugin;
struct hl_rate;
struct punchsess;

#define PUNCHSESS_BDAY_SOCKS 256

/* What a punch hands over: a UDP socket with a path open both ways. */
struct punch_path {
	int fd; /* the receiver's from now on (non-blocking, close-on-exec) */
	struct sockaddr_storage local; /* its address toward the peer */
	struct hubmsg_addr pub; /* where the peer saw this side */
	struct hubmsg_addr peer; /* where this side saw the peer */
};

/* The end: path (the receiver owns path->fd) or NULL, and why (a line
 * for a person: which candidates were probed and what came of each).
 * Called once, from the loop, never from inside punchsess_start(); the
 * session may be freed inside it. */
typedef void (*punchsess_cb)(void *arg, struct punch_path *path,
                             const char *why);

struct punchsess_conf {
	const struct hl_services *svc;
	struct hl_plugin *self;
	const char *role; /* "client" or "service", for the log */
	const char *const *hubs; /* "host:port" each, for STUN */
	size_t nhubs;
	uint8_t txid[8]; /* the HELLO's */
	uint8_t keyhash[20];
	int bday_max; /* birthday sockets it may open (0: none) */
	struct hl_rate *spray_rate; /* a bound shared by sessions, or NULL */
	int quiet; /* its end logged at debug (the caller says it) */
};

/* Start on the control stream ctl (already past HELLO/OK: the session
 * reads CANDS, READY and FAIL from it and writes its own). The session
 * does not own ctl: the caller frees it after punchsess_free(). NULL
 * when it cannot start (no UDP socket: errno). */
struct punchsess *punchsess_start(const struct punchsess_conf *conf,
                                  struct bufferevent *ctl, punchsess_cb cb,
                                  void *arg);
/* Birthday sockets it holds now (for a budget shared by sessions). */
int punchsess_bday_open(const struct punchsess *s);
void punchsess_free(struct punchsess *s);

/*
 * Run argv (execvp: argv[0] looked up in PATH) with the path's socket as
 * file descriptor 3 (blocking), no other descriptor above 2, signals at
 * their defaults, and the environment plus HL_PUNCH_FD=3,
 * HL_PUNCH_LOCAL_ADDR/_PORT, HL_PUNCH_PUBLIC_ADDR/_PORT,
 * HL_PUNCH_PEER_ADDR/_PORT, HL_PUNCH_ROLE, HL_PUNCH_KEYHASH and
 * HL_PUNCH_SERVICE (when service is not NULL). own_group: in a process
 * group of its own with stdin from /dev/null (a daemon's command);
 * else it keeps the caller's terminal and stdin. 0 with *pid, or -1
 * with err. The caller still owns path->fd (and closes it).
 */
int punch_spawn(const struct punch_path *path, char *const argv[],
                const char *role, const char *keyhash, const char *service,
                int own_group, pid_t *pid, char *err, size_t errlen);

/* The next line of a control stream in `in`, parsed into *m: 1; 0 when
 * no whole line is there yet; PUNCHSESS_LONG when over PUNCHCTL_LINE_MAX
 * bytes came without one; PUNCHSESS_BAD when the line does not parse.
 * The line's bytes are wiped (a HELLO holds the password). */
#define PUNCHSESS_LONG (-1)
#define PUNCHSESS_BAD (-2)
struct evbuffer;
struct punchctl;
int punchsess_next_line(struct evbuffer *in, struct punchctl *m);

#endif /* HL_PUNCHSESS_H */
