/*
 * daemon.h: the running daemon's parts, one section per file. hl.h holds
 * the parsers and helpers that unit tests and fuzz targets use on their
 * own. docs/architecture.md follows a request through these files.
 */
#ifndef HL_DAEMON_H
#define HL_DAEMON_H

#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "hl.h"
#include "hardline/evutil.h"

/*
 * The parts, in the order they build on each other: a file calls only
 * files above it in this list (hl.h's parsers and helpers are above all),
 * and hears from those below through callbacks it was given.
 *
 *   live.c stats.c limits.c        bookkeeping every part may use
 *   acceptor.c                     the fronts' listening sockets
 *   identities.c peercache.c       what the node knows
 *   loopcall.c choices.c plugins.c the plugins' lives (loader.c: dlopen)
 *   addresses.c seen.c             what plugins tell the core
 *   exchange.c splice.c            a tunnel's first line, then its bytes
 *   router.c                       from a keyhash to a tunnel
 *   server.c                       the service side of a tunnel
 *   outbound.c                     the client side every front shares
 *   forward.c socksd.c proxy.c     the fronts
 *   status.c                       reads them all, for the admin panel
 *   services.c                     struct hl_services: plugins' way in
 *   main.c                         wires them together, runs the loop
 */

/* ---- live.c: every object that owns a connection ----
 * (a proxy request, an OOB exchange, a service-side tunnel, a splice) is
 * on one list, so that a clean stop closes them all. abort frees the
 * object and whatever it owns at that moment, and calls no callback. */
struct hl__live {
	struct hl__live *next, **prevp;
	void (*abort)(struct hl__live *self);
};
void hl__live_add(struct hl__live *l, void (*abort)(struct hl__live *));
void hl__live_remove(struct hl__live *l);
void hl__live_abort_all(void);
/* Send data (len > 0) on bev, then free bev: once it has gone out, on an
 * error, or after timeout_sec. bev is the callee's from here (on the live
 * list meanwhile); out of memory it is freed at once. */
void hl__close_after_write(struct bufferevent *bev, const void *data,
                           size_t len, int timeout_sec);
/* Connections hl__close_after_write holds now. */
long hl__closing_count(void);

/* ---- stats.c: the node's counters ---- */
struct hl__stats {
	unsigned long tunnels_in, tunnels_out;
	unsigned long bad_password, bad_oob, backend_failed;
	unsigned long proxy_bad_request, proxy_no_route;
	unsigned long refused_busy; /* tunnels refused at a cap ("busy") */
	unsigned long hints_dropped; /* addresses over a source's share */
};
extern struct hl__stats hl__stats;

struct hl__forwards;
struct hl__acceptor;

/* What main.c builds and the fronts share: the loop and the config. */
struct hl__core {
	struct event_base *base;
	struct evdns_base *dns;
	struct hl__config *cfg;
	int proxy_port;
	struct hl__proxy *proxy;
	struct hl__forwards *forwards; /* forward.c */
	struct hl__acceptor *socks; /* socksd.c: socks_listen's, or NULL */
	struct event *sig_int, *sig_term;
	int stopping;
};

/* ---- limits.c: what one node holds ---- */
struct hl__limits {
	long nofile; /* the soft descriptor limit, once raised */
	long tunnels, per_peer, per_service; /* tunnels served */
	long auth, auth_per_peer, auth_per_service; /* of those, still
	                                              authenticating */
	long proxy_conns; /* browser connections the proxy holds */
	long routes; /* the proxy's routes in progress */
	long idle_timeout; /* seconds; 0: never */
};
extern struct hl__limits hl__limits;
/* Raise the soft descriptor limit to the hard one, size the caps from it
 * (or take the config's) and log both. */
void hl__limits_init(const struct hl__config *cfg);
/* The sweep that logs wrong-password counts and forgets idle sources. */
int hl__limits_start(struct event_base *base);
void hl__limits_stop(void);

/* One peer address (the IP, without the port) as the limits see it. */
struct hl__source {
	char host[HL_PEER_MAX];
	long auth; /* tunnels served to it, still authenticating */
	long tunnels; /* tunnels served to it, established */
	int pw_fails; /* wrong passwords in a row */
	long long pw_next; /* in backoff: no check before (monotonic ms) */
	time_t pw_last; /* the last wrong password */
	unsigned long pw_unlogged; /* wrong passwords not yet logged */
	time_t pw_logged;
	struct hl__source *next;
};
/* The record of the address of peer ("ip:port", "[v6]:port"), created
 * when new; NULL when the table is full. */
struct hl__source *hl__source_get(const char *peer);
/* Forget s if nothing refers to it any more. */
void hl__source_put(struct hl__source *s);
/* Milliseconds the next password check from s must wait (0: now);
 * reserves that turn, so that checks in backoff go one at a time. */
long hl__source_pw_wait(struct hl__source *s);
/* Seconds until the checks already waiting from s are done (0: none). */
long hl__source_pw_backlog(const struct hl__source *s);
/* A password check from s came out ok (1) or wrong (0). Returns 1 when
 * the caller logs this wrong password itself (the first of a minute);
 * the others are counted in one line per source per minute. */
int hl__source_pw_result(struct hl__source *s, int ok);

/* ---- acceptor.c: the fronts' listening sockets ---- */
struct hl__acceptor;
typedef void (*hl__accept_cb)(void *arg, evutil_socket_t fd,
                              struct sockaddr *sa, socklen_t salen);
#define HL_LISTEN_V6ONLY 1 /* an IPv6 address takes no IPv4 */
#define HL_LISTEN_BIND_ONLY 2 /* bind, do not listen (`check`) */
/* A non-blocking, close-on-exec TCP socket bound to addr ("host:port")
 * and listening (backlog 512); -1 with errno set (EINVAL: not an
 * address). */
int hl__listen_socket(const char *addr, int flags, struct sockaddr_storage *ss);
/* Accept on listening socket fd (taken over, closed on failure), calling
 * cb for each connection; who names it in the log. */
struct hl__acceptor *hl__acceptor_new(struct event_base *base, const char *who,
                                      int fd, hl__accept_cb cb, void *arg);
/* hl__listen_socket + hl__acceptor_new, logging why on failure. */
struct hl__acceptor *hl__acceptor_listen(struct event_base *base,
                                         const char *who, const char *addr,
                                         hl__accept_cb cb, void *arg,
                                         struct sockaddr_storage *ss);
/* Hold (1: stop accepting, connections wait in the kernel's queue) or
 * release (0). */
void hl__acceptor_hold(struct hl__acceptor *a, int hold);
void hl__acceptor_free(struct hl__acceptor *a);

/* ---- identities.c: this node's services ---- */
/* Load (or make) the identity of every service, or of service `only`
 * ((size_t)-1: all); logs why and returns -1 on failure. */
int hl__identities_load(const struct hl__config *cfg, size_t only);
size_t hl__identities_count(void);
struct hl__identity *hl__identities_at(size_t i);
/* The identity whose keyhash this is (any case), or NULL. */
struct hl__identity *hl__identities_find(const char *keyhash);
void hl__identities_free(void);

/* ---- loopcall.c: svc->call_on_loop ---- */
int hl__loopcall_init(struct event_base *base);
/* From any thread; -1 when closed (stopping) or out of memory. */
int hl__loopcall_add(struct hl_plugin *owner, void (*fn)(void *), void *arg);
/* Drop owner's calls not yet run (it stopped). */
void hl__loopcall_drop(struct hl_plugin *owner);
/* Refuse new calls from now on (the daemon is stopping). */
void hl__loopcall_close(void);
void hl__loopcall_free(void);

/* ---- choices.c: <state_dir>/plugins.state ---- */
#define HL_CHOICES_MAX 128
struct hl__choice {
	char name[64];
	int on; /* 1 on, 0 off, -1 no choice */
	int priority; /* -1: as the config says */
};
size_t hl__choices_read(const char *state_dir, struct hl__choice *out,
                        size_t max);
/* Keep a choice: on is 0 or 1, or -1 to keep; priority -1 keeps it. */
int hl__choice_write(const char *state_dir, const char *name, int on,
                     int priority);

/* ---- plugins.c: the plugins' lives ---- */
/* What the parts above must hear of a plugin (main.c wires them). */
struct hl__plugin_hooks {
	void (*started)(struct hl_plugin *p); /* after its init */
	void (*stopping)(struct hl_plugin *p); /* before its fini */
	void (*stopped)(struct hl_plugin *p); /* after its fini */
};
void hl__plugins_init(const struct hl_services *svc,
                      const struct hl__config *cfg,
                      const struct hl__plugin_hooks *hooks);
/* The plugins, in priority order (lower first), through ->next. */
struct hl_plugin *hl__plugins_first(void);
/*
 * Load every plugin the config names (and those enabled in the admin
 * panel), check them and their settings (validate), and start them unless
 * check_only or some settings are wrong (*bad_settings counts those). With
 * kinds set, only plugins of those kinds start (`discover`). Returns the
 * number of plugins refused, failed or with bad settings.
 */
int hl__plugins_load(int check_only, uint32_t kinds, int *bad_settings);
/* Stop every plugin (fini); the records stay, still loaded. */
void hl__plugins_unload(void);
/* Free the records and dlclose: only after event_base_free(). */
void hl__plugins_close(void);
int hl__plugins_set_priority(const char *name, int priority, char *err,
                             size_t errlen);
int hl__plugins_set_enabled(const char *name, int enabled, char *err,
                            size_t errlen);
/* Ask every discovery plugin that can to look for every service now;
 * returns how many were asked (0: none can list services). */
int hl__plugins_browse(void);
/* hlcore -c FILE <command> ARGS: the plugin of the config that offers
 * argv[0] (ABI 1.2 hl_command_ops) runs it instead of starting; its exit
 * status. *found 0 (and 2 returned) when no plugin offers it. */
int hl__plugins_command(int argc, char *const *argv, int *found);
/* One usage line per command the config's plugins offer. */
void hl__plugins_command_help(FILE *f);
/* The plugin files found in the plugin directories, for the panel:
 * calls fn for each name not already loaded. */
void hl__plugins_available(void (*fn)(void *arg, const char *name,
                                      const char *path),
                           void *arg);

/* ---- addresses.c: the node's listeners and WANHosts ---- */
struct hl__listener {
	struct sockaddr_storage ss;
	socklen_t len;
	int proto; /* enum hl_proto */
	struct hl_plugin *owner;
	struct hl__listener *next;
};
struct hl__wanhost {
	char addr[HL_ADDR_MAX];
	int typed; /* a typed endpoint ("quic://..."), never in WANHosts */
	struct hl_plugin *owner; /* NULL: from the core's own config */
	struct hl__wanhost *next;
};
/* A transport opened (open 1) or closed a listener: record it and tell
 * every other traversal plugin. */
void hl__listener_event(struct hl_plugin *owner, const struct sockaddr *sa,
                        socklen_t salen, int proto, int open);
/* Tell traversal plugin p of every listener open now (not its own). */
void hl__listeners_replay(struct hl_plugin *p);
const struct hl__listener *hl__listeners_first(void);
/* 1: added (call hl__wanhosts_changed), 0: known already, -1: not an
 * address. */
int hl__wanhost_add(struct hl_plugin *owner, const char *addr);
void hl__wanhost_remove(struct hl_plugin *owner, const char *addr);
/* Forget owner's WANHosts; 1 when there were any. */
int hl__wanhosts_forget(struct hl_plugin *owner);
/* Rebuild the WANHosts string and tell every plugin. */
void hl__wanhosts_changed(void);
/* Tell plugin p the WANHosts (an events table's HL_EVENT_WANHOSTS). */
void hl__wanhosts_send(struct hl_plugin *p);
/* "a,b,c": what servers tell clients; "" when none. */
const char *hl__wanhosts(void);
/* Typed endpoints (svc->endpoint_add): 1 added, 0 known, -1 malformed. */
int hl__endpoint_add(struct hl_plugin *owner, const char *uri);
void hl__endpoint_remove(struct hl_plugin *owner, const char *uri);
/* "quic://a:1,quic://b:2": the OOB field Endpoints; "" when none. */
const char *hl__endpoints(void);
const struct hl__wanhost *hl__wanhosts_first(void);
void hl__addresses_free(void);

/* ---- seen.c: services seen on the network (svc->service_seen) ---- */
struct hl__seen {
	char title[128];
	char label[HL_PASSWORD_MAX + HL_KEYHASH_LEN + 2];
	char addr[HL_ADDR_MAX];
	char source[64];
	time_t last;
	struct hl__seen *next;
};
void hl__seen_add(const char *source, const char *title, const char *label,
                  const char *addr);
const struct hl__seen *hl__seen_first(void);
void hl__seen_free(void);

/* ---- exchange.c: the OOB lines on a fresh tunnel ---- */

/*
 * Exchange OOB lines over a fresh tunnel: send `line`, read the peer's
 * (bounded by HL_OOB_MAX and HL_OOB_TIMEOUT_SEC). cb runs once, when our
 * line has left in a write of its own and the peer's has arrived (oob
 * filled, error NULL) or on failure (error says why; the caller frees
 * bev). Bytes after the peer's line stay in bev's input buffer. early, if
 * not NULL, is copied right behind our line: the tunnel's first payload,
 * sent without waiting for the peer's line (only to hlcore peers).
 */
typedef void (*hl__oob_cb)(void *arg, struct bufferevent *bev,
                           struct hl__oob *oob, const char *error);
void hl__oob_exchange(struct bufferevent *bev, const char *line,
                      struct evbuffer *early, hl__oob_cb cb, void *arg);

/* ---- splice.c: a tunnel joined to a local connection ---- */
struct hl__splice;
/*
 * Why a splice ended. A side's EOF half-closes the splice (the other side
 * is shut for writing and read on; see splice.c). hl__splice_cb runs once
 * when it ends: the second side closed, or a side failed, or b closed
 * before sending a byte (closed_side: that side, 0 or 1); a_to_b and
 * b_to_a count the bytes moved. The splice then flushes what it holds to
 * the other side and frees both bufferevents. If the callback returns a buffer
 * (malloc'd text), that text is sent to a before it is closed (the proxy's 502
 * when the tunnel said nothing). On a stop (hl__live_abort_all) it runs with
 * closed_side -1: free arg, return NULL.
 */
typedef char *(*hl__splice_cb)(void *arg, int closed_side, size_t a_to_b,
                               size_t b_to_a);
struct hl__splice *hl__splice_new(struct bufferevent *a, struct bufferevent *b,
                                  hl__splice_cb cb, void *arg);
/* An EOF from `side` ends the splice at once instead of half-closing it:
 * for the HTTP proxy's browser, which never half-closes (its EOF means it
 * has gone; what the service still sends would be thrown away, and a
 * long poll would hold the tunnel until the idle timeout). */
void hl__splice_end_on_eof(struct hl__splice *s, int side);
/* The idle timeout's sweep (hl__limits.idle_timeout): a splice that
 * moved nothing for that long ends as if side a had closed. */
int hl__splice_start(struct event_base *base);
void hl__splice_stop(void);

/* What a splice carries, for the admin panel. */
struct hl__tunnel_info {
	int outgoing; /* 1: browser -> a remote service; 0: served here */
	const char *service; /* the service's name (its identity's), or "" */
	char keyhash[HL_KEYHASH_LEN + 1];
	char peer[HL_PEER_MAX]; /* the browser, or the client node */
	char via[192]; /* the plugin and address that won, and the path */
	int relayed; /* outgoing, through a relay (HL__ROUTE_RELAYED) */
	time_t started;
	/* Outgoing: the front it came from ("proxy", "socks", "forward
	 * 127.0.0.1:2222", "connect"); "" for incoming. */
	char origin[64];
};
void hl__splice_set_info(struct hl__splice *s,
                         const struct hl__tunnel_info *info);
/* Call fn for each open splice; a_to_b and b_to_a count bytes. */
void hl__splice_foreach(void (*fn)(void *arg,
                                   const struct hl__tunnel_info *info,
                                   size_t a_to_b, size_t b_to_a),
                        void *arg);

/* ---- router.c: candidates and racing ---- */
struct hl__route;
/*
 * Find a path to keyhash. cb runs once (unless cancelled): with bev, a
 * tunnel whose certificate hashes to keyhash, owned by the caller, the
 * name of the winning plugin and HL__ROUTE_* flags; or with bev NULL and
 * trace, a text listing every attempt and why it failed.
 */
/* The winning transport reaches only hlcore nodes
 * (HL_TRANSPORT_HLCORE_ONLY): payload may follow the OOB line at once. */
#define HL__ROUTE_HLCORE_PEER 1u
/* The winning tunnel goes through a relay (the transport's word, from
 * svc->tunnel_path; its text is in via). */
#define HL__ROUTE_RELAYED 2u
typedef void (*hl__route_cb)(void *arg, struct bufferevent *bev,
                             const char *via, unsigned flags,
                             const char *trace);
struct hl__route *hl__route_start(struct hl__core *c, const char *keyhash,
                                  hl__route_cb cb, void *arg);
void hl__route_cancel(struct hl__route *r);
/* A transport's word on the path of the tunnel bev it hands over next
 * (svc->tunnel_path): the route that wins with bev names it in its via,
 * "<plugin> <address> [relayed: <text>]" or "[direct: <text>]". */
void hl__router_tunnel_path(struct bufferevent *bev, unsigned flags,
                            const char *text);
/* Around stopping plugin p at run time: before its fini, end its dials
 * and queries (they fail as "turned off"); after, move routes on. */
void hl__router_plugin_stopping(struct hl_plugin *p);
void hl__router_plugin_stopped(void);
/* How the last 32 routes ended, newest first (via "" when none worked;
 * trace lists the attempts), for the admin panel. */
void hl__router_recent(void (*fn)(void *arg, time_t t, const char *keyhash,
                                  const char *via, const char *trace),
                       void *arg);
void hl__router_free(void);
/* Discovery plugins' results (services.c forwards here). */
const char *hl__query_keyhash(const struct hl_query *q);
void hl__query_candidate(struct hl_query *q, const char *addr);
void hl__query_done(struct hl_query *q);

/* ---- peercache.c: remembered WANHosts ---- */
int hl__peercache_load(const char *state_dir);
/* Arm the timer that writes the cache after a change (at most once every
 * 5 s) on base; before the loop runs. hl__peercache_free() disarms it. */
int hl__peercache_start(struct event_base *base);
/* Write the file now (at stop). */
void hl__peercache_save(void);
/* Remember addrs (a WANHosts value) for keyhash; the file is written by
 * the timer, not here. */
void hl__peercache_learn(const char *keyhash, const char *wanhosts);
/* Remember one address heard for keyhash (LAN announce): memory only. */
void hl__peercache_hint(const char *keyhash, const char *addr);
/* Up to max remembered addresses for keyhash; returns the count. */
size_t hl__peercache_get(const char *keyhash, char out[][HL_ADDR_MAX],
                         size_t max);
void hl__peercache_free(void);

/* ---- server.c: the service side of a tunnel ---- */
void hl__server_incoming(struct hl__core *c, struct bufferevent *bev,
                         const char *keyhash, const char *peer,
                         const char *via);
void hl__server_free(void);

/* ---- outbound.c: from (password, keyhash) to a tunnel ready to splice ----
 * The one path every front takes (the HTTP proxy, SOCKS, forwards,
 * `hlcore connect`): the router finds a tunnel, the OOB lines are
 * exchanged with the password, the server's WANHosts are remembered. */

enum hl__outbound_result {
	HL_OUT_OK = 0,
	HL_OUT_NO_ROUTE = 1, /* no path worked: text is the router's trace */
	HL_OUT_HANDSHAKE = 2, /* the OOB exchange failed: text says why */
	HL_OUT_BUSY = 3, /* waited 15 s for a slot (limits routes) or for a
	                    busy service's node: text says which */
};
struct hl__outbound;
/*
 * Runs once, unless cancelled first, never from inside
 * hl__outbound_start. On HL_OUT_OK, tunnel is owned by the callee (what
 * came after the server's OOB line is in its input, reading disabled),
 * via names the winning transport and address and flags are the route's
 * (HL__ROUTE_*); else tunnel is NULL, flags 0 and text says why.
 */
typedef void (*hl__outbound_cb)(void *arg, int result,
                                struct bufferevent *tunnel, const char *via,
                                unsigned flags, const char *text);
/* NULL when out of memory (cb never runs). */
struct hl__outbound *hl__outbound_start(struct hl__core *c, const char *keyhash,
                                        const char *password,
                                        hl__outbound_cb cb, void *arg);
/* src holds the tunnel's first bytes (the proxy's request head, what a
 * forward's client sent so far). When
 * the winning transport reaches only hlcore nodes (HL__ROUTE_HLCORE_PEER),
 * o moves them out of src and sends them right behind its OOB line, a
 * round trip sooner; else they stay in src. src must stay valid until cb
 * runs or o is cancelled. */
void hl__outbound_early(struct hl__outbound *o, struct evbuffer *src);
/* Before cb ran: cb never runs, what it holds is freed. NULL: nothing. */
void hl__outbound_cancel(struct hl__outbound *o);
/* At exit, after hl__live_abort_all. */
void hl__outbound_stop(void);
/* Splice local to a tunnel from hl__outbound and describe it for the
 * panel (via and flags as the callback had them); on failure both are
 * freed and NULL returned (cb never runs). */
struct hl__splice *hl__outbound_splice(struct bufferevent *local,
                                       struct bufferevent *tunnel,
                                       const char *keyhash, const char *peer,
                                       const char *via, unsigned flags,
                                       const char *origin, hl__splice_cb cb,
                                       void *arg);
/*
 * Defines `static void name(struct hl__live *)`, the live list's abort
 * for a front's connection: a `type` with its struct hl__live first and
 * `out`, the outbound it waits for (or NULL), which free_fn frees. On a
 * stop that outbound is on the list too and aborted on its own, so it is
 * forgotten here, not cancelled. Every front (proxy.c, socksd.c,
 * forward.c) aborts its connections this way.
 */
#define HL__FRONT_ABORT(name, type, free_fn)                                   \
	static void name(struct hl__live *l)                                   \
	{                                                                      \
		type *conn_ = (type *)l;                                       \
                                                                               \
		conn_->out = NULL;                                             \
		free_fn(conn_);                                                \
	}

/* ---- forward.c: `forwards:`, a local port for a remote service ---- */
/* Try to bind every forward's port and close it again (`check`); each
 * failure is printed as file:line:column. Returns the failures. */
int hl__forwards_check(const struct hl__config *cfg, FILE *errs);
/* Open every forward's listener; on a failure print file:line:column to
 * errs and return -1 (nothing stays open). */
int hl__forwards_start(struct hl__core *c, FILE *errs);
void hl__forwards_stop(struct hl__core *c);
/* The forwards as a JSON array (json_t *), for status.c. */
void *hl__forwards_json(struct hl__core *c);

/* ---- socksd.c: the SOCKS5 front ---- */
/* Open proxy.socks_listen's SOCKS-only listener (when configured). */
int hl__socksd_start(struct hl__core *c);
void hl__socksd_stop(struct hl__core *c);
/* A connection whose first byte said SOCKS (4 or 5) on the proxy's
 * port: socksd.c owns bev from here (what was read is in its input). */
void hl__socksd_take(struct hl__core *c, struct bufferevent *bev,
                     const char *peer);

/* ---- proxy.c: the browser-facing proxy ---- */
int hl__proxy_start(struct hl__core *c, const char *listen);
void hl__proxy_stop(struct hl__core *c);

/* ---- status.c: what the admin panel shows ---- */
/* The node's state as a JSON object; malloc'd. */
char *hl__status_json(struct hl__core *c);

/* ---- services.c: struct hl_services (hl.h), plugins' way in ---- */
/* The daemon the services serve (NULL: none, at exit). */
void hl__services_bind(struct hl__core *c);

#endif /* HL_DAEMON_H */
