/*
 * daemon.h: the running daemon's parts (core.c, services.c, router.c,
 * proxy.c, tunnel.c, server.c, peercache.c). hl.h holds the parts that
 * unit tests and fuzz targets use on their own.
 */
#ifndef HL_DAEMON_H
#define HL_DAEMON_H

#include <pthread.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>

#include "hl.h"

/*
 * Every object that owns a connection (a proxy request, an OOB exchange,
 * a service-side tunnel, a splice) is on one list, so that a clean stop
 * closes them all. abort frees the object and whatever it owns at that
 * moment, and calls no callback.
 */
struct hl__live {
	struct hl__live *next, **prevp;
	void (*abort)(struct hl__live *self);
};
void hl__live_add(struct hl__live *l, void (*abort)(struct hl__live *));
void hl__live_remove(struct hl__live *l);
void hl__live_abort_all(void);

struct hl__listener {
	struct sockaddr_storage ss;
	socklen_t len;
	struct hl_plugin *owner;
	struct hl__listener *next;
};

struct hl__wanhost {
	char addr[HL_ADDR_MAX];
	struct hl_plugin *owner; /* NULL: from the core's own config */
	struct hl__wanhost *next;
};

struct hl__loop_call {
	void (*fn)(void *);
	void *arg;
	struct hl_plugin *owner; /* its calls are dropped when it stops */
	struct hl__loop_call *next;
};

/* A Hardline service seen on the network (service_seen). */
struct hl__seen {
	char title[128];
	char label[HL_PASSWORD_MAX + HL_KEYHASH_LEN + 2];
	char addr[HL_ADDR_MAX];
	char source[64];
	time_t last;
	struct hl__seen *next;
};

struct hl__stats {
	unsigned long tunnels_in, tunnels_out;
	unsigned long bad_password, bad_oob, backend_failed;
	unsigned long proxy_bad_request, proxy_no_route;
	unsigned long refused_busy; /* tunnels refused at a cap ("busy") */
	unsigned long hints_dropped; /* addresses over a source's share */
};

struct hl__forwards;
struct hl__socksd;

struct hl__core {
	struct event_base *base;
	struct evdns_base *dns;
	struct hl__config *cfg;
	struct hl__identity *ids;
	size_t nids;
	struct hl_plugin *plugins; /* sorted by priority, lower first */
	struct hl__listener *listeners;
	struct hl__wanhost *wanhosts;
	char *wanhosts_str; /* "a,b,c": what servers tell clients */
	int proxy_port;
	struct hl__proxy *proxy;
	struct hl__forwards *forwards; /* forward.c */
	struct hl__socksd *socksd; /* socksd.c */
	struct event *sig_int, *sig_term;
	/* call_on_loop */
	pthread_mutex_t calls_lock;
	struct hl__loop_call *calls, **calls_tail;
	/* The batch calls_callback is running: a call in it may stop a
	 * plugin, whose calls still in it are then dropped (plugin_stop). */
	struct hl__loop_call *calls_running;
	struct event *calls_ev;
	int stopping;
	struct hl__stats stats;
	struct hl__seen *seen;
	size_t nseen;
	struct hl_conf empty_conf; /* for plugins enabled with no settings */
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

/* ---- core.c ---- */
/*
 * Load every plugin the config names (and those enabled in the admin
 * panel), check them and their settings (validate), and start them unless
 * check_only or some settings are wrong (*bad_settings counts those). With
 * kinds set, only plugins of those kinds start (`discover`). Returns the
 * number of plugins refused, failed or with bad settings.
 */
int hl__core_load_plugins(struct hl__core *c, int check_only, uint32_t kinds,
                          int *bad_settings);
/* Stop every plugin (fini); the records stay, still loaded. */
void hl__core_unload_plugins(struct hl__core *c);
/* Free the records and dlclose: only after event_base_free(). */
void hl__core_close_plugins(struct hl__core *c);
int hl__core_set_priority(struct hl__core *c, const char *name, int priority,
                          char *err, size_t errlen);
/* Ask every discovery plugin that can to look for every service now;
 * returns how many were asked (0: none can list services). */
int hl__core_browse(struct hl__core *c);
int hl__core_set_enabled(struct hl__core *c, const char *name, int enabled,
                         char *err, size_t errlen);
/* The plugin files found in the plugin directories, for the panel:
 * calls fn for each name not already loaded. */
void hl__core_available_plugins(struct hl__core *c,
                                void (*fn)(void *arg, const char *name,
                                           const char *path),
                                void *arg);
void hl__core_service_seen(struct hl__core *c, struct hl_plugin *from,
                           const char *title, const char *label,
                           const char *addr);
struct hl__identity *hl__core_identity(struct hl__core *c, const char *keyhash);
void hl__core_wanhosts_changed(struct hl__core *c);

/* ---- services.c: struct hl_services for plugins ---- */
void hl__services_listening(struct hl_plugin *self, const struct sockaddr *sa,
                            socklen_t salen, int open);

/* ---- tunnel.c: the OOB exchange and the splice ---- */

/*
 * Exchange OOB lines over a fresh tunnel: send `line`, read the peer's
 * (bounded by HL_OOB_MAX and HL_OOB_TIMEOUT_SEC). cb runs once, when our
 * line has left in a write of its own and the peer's has arrived (oob
 * filled, error NULL) or on failure (error says why; the caller frees
 * bev). Bytes after the peer's line stay in bev's input buffer.
 */
typedef void (*hl__oob_cb)(void *arg, struct bufferevent *bev,
                           struct hl__oob *oob, const char *error);
void hl__oob_exchange(struct bufferevent *bev, const char *line, hl__oob_cb cb,
                      void *arg);

struct hl__splice;
/*
 * Why a splice ended. hl__splice_cb runs once when either side closed or
 * failed (closed_side 0 or 1); a_to_b and b_to_a count the bytes moved.
 * The splice then flushes what it holds to the other side and frees both
 * bufferevents. If the callback returns a buffer (malloc'd text), that
 * text is sent to a before it is closed (the proxy's 502 when the tunnel
 * said nothing). On a stop (hl__live_abort_all) it runs with closed_side
 * -1: free arg, return NULL.
 */
typedef char *(*hl__splice_cb)(void *arg, int closed_side, size_t a_to_b,
                               size_t b_to_a);
struct hl__splice *hl__splice_new(struct bufferevent *a, struct bufferevent *b,
                                  hl__splice_cb cb, void *arg);
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
	char via[96]; /* the plugin and address that won */
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
 * tunnel whose certificate hashes to keyhash, owned by the caller, and the
 * name of the winning plugin; or with bev NULL and trace, a text listing
 * every attempt and why it failed.
 */
typedef void (*hl__route_cb)(void *arg, struct bufferevent *bev,
                             const char *via, const char *trace);
struct hl__route *hl__route_start(struct hl__core *c, const char *keyhash,
                                  hl__route_cb cb, void *arg);
void hl__route_cancel(struct hl__route *r);
/* Around stopping plugin p at run time: before its fini, end its dials
 * and queries (they fail as "turned off"); after, move routes on. */
void hl__router_plugin_stopping(struct hl_plugin *p);
void hl__router_plugin_stopped(void);
/* Discovery plugins' results (services.c forwards here). */
const char *hl__query_keyhash(const struct hl_query *q);
void hl__query_candidate(struct hl_query *q, const char *addr);
void hl__query_done(struct hl_query *q);

/* ---- status.c: what the admin panel shows ---- */
/* Remember how a route ended (the last 32 are kept). */
void hl__status_route(const char *keyhash, const char *via, const char *trace);
/* The node's state as a JSON object; malloc'd. */
char *hl__status_json(struct hl__core *c);
void hl__status_free(void);

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
 * came after the server's OOB line is in its input, reading disabled) and
 * via names the winning transport and address; else tunnel is NULL and
 * text says why.
 */
typedef void (*hl__outbound_cb)(void *arg, int result,
                                struct bufferevent *tunnel, const char *via,
                                const char *text);
/* NULL when out of memory (cb never runs). */
struct hl__outbound *hl__outbound_start(struct hl__core *c, const char *keyhash,
                                        const char *password,
                                        hl__outbound_cb cb, void *arg);
/* Before cb ran: cb never runs, what it holds is freed. */
void hl__outbound_cancel(struct hl__outbound *o);
/* At exit, after hl__live_abort_all. */
void hl__outbound_stop(void);
/* Splice local to a tunnel from hl__outbound and describe it for the
 * panel; on failure both are freed and NULL returned (cb never runs). */
struct hl__splice *hl__outbound_splice(struct bufferevent *local,
                                       struct bufferevent *tunnel,
                                       const char *keyhash, const char *peer,
                                       const char *via, const char *origin,
                                       hl__splice_cb cb, void *arg);

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

#endif /* HL_DAEMON_H */
