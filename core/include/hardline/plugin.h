/*
 * hardline/plugin.h: the Hardline plugin ABI. This header is the whole
 * contract between hlcore and a plugin, and its comments are the plugin
 * author's manual.
 *
 * What a transport must speak on the wire to work with other Hardline
 * nodes (SNI = keyhash, pinning by the certificate's hash, the
 * out-of-band lines, WANHosts) is in the protocol document,
 * docs/protocol.md in hlcore's sources, installed with this header as
 * <prefix>/share/doc/hardline/protocol.md.
 *
 * A plugin is a shared object that exports exactly one data symbol,
 * `hardline_plugin`, a struct hl_plugin_desc built with HL_PLUGIN(). hlcore
 * loads it with dlopen(RTLD_NOW | RTLD_LOCAL), checks the descriptor's head
 * (magic, ABI major, minimum ABI minor, struct size), the libevent and
 * OpenSSL versions it was built against, that its name is unique and that
 * every mandatory op of its kinds is present, and only then calls init().
 * The core exports no symbols to plugins: everything a plugin may ask of
 * the core is in the struct hl_services table handed to init().
 *
 * Threads: unless a comment says otherwise, the core calls a plugin on its
 * loop thread (the thread that runs the event_base the plugin gets from
 * svc->event_base()), and a plugin calls the core on that thread too. The
 * exceptions are svc->call_on_loop() and svc->log(), which any thread may
 * call.
 *
 * Versioning. The ABI has a major and a minor number. A plugin states the
 * lowest minor it needs (HL_PLUGIN_ABI_MINOR, by default the minor of the
 * header it was built with). The core loads it when the majors are equal
 * and the core's minor is at least the plugin's. Within a major, every
 * struct here is append-only: new members go at the end, the minor goes
 * up, and the change is logged below. Every struct that may grow starts
 * with its own size, so the core reads only what an older plugin laid out
 * and a plugin checks with HL_HAS() that an older core has a service.
 *
 * Changelog:
 *   1.0  First version: descriptor, services table, discovery, traversal
 *        and transport facets.
 *   1.1  struct hl_identity: title, password, announce_password.
 *        struct hl_services: wanhosts, service_seen, status_json,
 *        plugin_set_enabled, free, state_dir, plugin_set_priority,
 *        browse. Log level flag HL_LOG_PRIVATE.
 *        struct hl_discovery_ops: browse (optional).
 *        struct hl_plugin_desc: events facet (was reserved[0]).
 *   1.2  enum hl_proto. struct hl_services: listening_proto,
 *        incoming_flags (HL_INCOMING_RELAYED), endpoint_add,
 *        endpoint_remove. struct hl_traversal_ops: port_event_proto
 *        (optional). struct hl_transport_ops: schemes, relay_schemes
 *        (optional). struct hl_plugin_desc: flags (HL_PLUGIN_NO_OPENSSL,
 *        set by defining HL_PLUGIN_WITHOUT_OPENSSL). The stream contract
 *        for tunnels that are bufferevent pairs ("Tunnels that are not
 *        sockets", below); 1.2 cores close such a tunnel with a
 *        BEV_FINISHED flush before freeing it. Appended later in 1.2:
 *        struct hl_plugin_desc: commands (struct hl_command_ops, a
 *        plugin's own `hlcore -c FILE <command>`; NULL in plugins built
 *        before it, which the loader zero-fills past head.size).
 *        struct hl_services: tunnel_path, status_set (HL_HAS: a core
 *        built before them has a shorter struct).
 *        enum hl_event_type: HL_EVENT_ENDPOINTS (sent only to plugins
 *        that need ABI 1.2 or later).
 *        struct hl_identity: punch (a service's `punch:` command; a
 *        plugin checks HL_STRUCT_HAS before reading it).
 *        struct hl_transport_ops: flags (HL_TRANSPORT_HLCORE_ONLY; the
 *        core reads it only from a struct long enough to hold it).
 *        The stream contract gains half-close: a pair end's EOF from
 *        the core while it keeps its end is a half-close ("Tunnels that
 *        are not sockets").
 */
#ifndef HARDLINE_PLUGIN_H
#define HARDLINE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/event.h>
/* A plugin that hands no OpenSSL object across the ABI (its TLS is
 * GnuTLS, or none) defines HL_PLUGIN_WITHOUT_OPENSSL before including this
 * header: it then needs no OpenSSL headers, and a 1.2 core does not hold
 * it to the OpenSSL version the core was built with. Such a plugin needs
 * ABI 1.2 (HL_PLUGIN_ABI_MINOR 2 or more). */
#ifndef HL_PLUGIN_WITHOUT_OPENSSL
#include <openssl/opensslv.h>
#define HL_PLUGIN_OPENSSL_VERSION_ OPENSSL_VERSION_NUMBER
#define HL_PLUGIN_FLAGS_ 0u
#else
#define HL_PLUGIN_OPENSSL_VERSION_ 0ul
#define HL_PLUGIN_FLAGS_ HL_PLUGIN_NO_OPENSSL
#endif

#ifdef __cplusplus
extern "C" {
#endif

#define HL_ABI_MAGIC 0x484c504eu /* "HLPN" */
#define HL_ABI_MAJOR 1
#define HL_ABI_MINOR 2

/* The lowest ABI minor this plugin needs; define it before including this
 * header to load into older 1.x cores when you use no newer member. */
#ifndef HL_PLUGIN_ABI_MINOR
#define HL_PLUGIN_ABI_MINOR HL_ABI_MINOR
#endif

/* The name of the one symbol a plugin exports. */
#define HL_PLUGIN_SYMBOL "hardline_plugin"

/* What a plugin does; a plugin may be of several kinds. */
enum hl_kind {
	HL_KIND_DISCOVERY = 1u << 0, /* finds addresses for a keyhash */
	HL_KIND_TRAVERSAL = 1u << 1, /* maps listening ports, adds WANHosts */
	HL_KIND_TRANSPORT = 1u << 2, /* dials and accepts tunnels */
	HL_KIND_CONTROL = 1u << 3, /* drives the daemon (an admin panel) */
};

enum hl_log_level {
	HL_LOG_ERROR = 0,
	HL_LOG_WARN = 1,
	HL_LOG_INFO = 2,
	HL_LOG_DEBUG = 3,
	/* 1.1: or'ed with a level, the line goes to the log output only and
	 * is not kept for the admin panel (a secret shown once to the
	 * admin, like admin-web's token at its creation). A core older than
	 * 1.1 drops such a line; a core that has svc->browse knows it. */
	HL_LOG_PRIVATE = 0x100,
};

/* Kinds of config node, from svc->conf_type(). */
enum hl_conf_type {
	HL_CONF_NONE = 0, /* absent (a NULL node) */
	HL_CONF_SCALAR = 1,
	HL_CONF_LIST = 2,
	HL_CONF_MAP = 3,
};

/* Opaque handles owned by the core. */
struct hl_plugin; /* the core's record of one loaded plugin: "self" */
struct hl_conf; /* one node of the YAML config, valid until fini */
struct hl_query; /* one running lookup of a keyhash */

/* A plugin's own handle for one running dial; the core only passes it back. */
struct hl_dial;

struct bufferevent;
struct evdns_base;

/*
 * A service this node serves, as a transport needs it to accept tunnels.
 * Owned by the core; valid from init until fini. Strings are NUL-ended.
 */
struct hl_identity {
	size_t size;
	const char *name; /* the service's name in the config */
	const char *keyhash; /* 40 lowercase hex characters */
	const unsigned char *cert_der;
	size_t cert_der_len;
	const char *cert_pem; /* the certificate, PEM */
	const char *key_pem; /* its private key, PEM: never log it */
	/* 1.1 */
	const char *title; /* for people browsing services */
	const char *password; /* "" when none: never log it */
	int announce_password; /* the admin opted in to announcing it */
	/* 1.2, appended: the service's `punch:` command (run with /bin/sh
	 * -c when a client punches a UDP path to it: transport-udp's
	 * `hlcore punch`), or NULL: punching to it is refused. Check with
	 * HL_STRUCT_HAS(id, struct hl_identity, punch). */
	const char *punch;
};

/* True when a struct that starts with its size has `member`. */
#define HL_STRUCT_HAS(ptr, type, member)                                       \
	((ptr)->size >= offsetof(type, member) + sizeof((ptr)->member))

/*
 * The result of a dial. Called on the loop thread exactly once for every
 * dial that returned non-NULL, unless dial_cancel() was called first; never
 * from inside dial() itself.
 *
 * On success, bev is a connected, handshaken byte stream on the core's
 * event base with no callbacks set; the core owns it from this call on and
 * the plugin must not touch it again. cert_der is the peer's leaf
 * certificate (DER), valid only during the call: the core hashes it and
 * refuses the tunnel unless it matches the wanted keyhash. error is NULL.
 *
 * On failure, bev is NULL and error says why in a few words a person can
 * read on an error page ("connection refused", "TLS handshake failed:
 * ..."); it is valid only during the call.
 */
typedef void (*hl_dial_cb)(void *arg, struct bufferevent *bev,
                           const unsigned char *cert_der, size_t cert_der_len,
                           const char *error);

/*
 * The table of services the core gives a plugin. Owned by the core, valid
 * from init until fini returns. Every function is called on the loop thread
 * unless its comment says otherwise. `self` is the handle init received.
 */
struct hl_services {
	size_t size; /* sizeof(struct hl_services) in the core */
	uint16_t abi_major;
	uint16_t abi_minor;
	const char *core_version;

	/* Logging: one line, no newline needed; the core adds the plugin's
	 * name. Any thread may call it. Never log secrets (keys,
	 * passwords). */
	void (*log)(struct hl_plugin *self, int level, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

	/* The core's loop and its DNS resolver; do not free them. */
	struct event_base *(*event_base)(struct hl_plugin *self);
	struct evdns_base *(*dns_base)(struct hl_plugin *self);

	/* Run fn(arg) soon on the loop thread. Any thread may call this; it
	 * is how a plugin's own threads hand results to the core. Returns 0,
	 * or -1 when the core is stopping (fn will not run). Calls still
	 * queued when the core stops are dropped without running, so arg
	 * must not be the only reference to memory: keep what you hand over
	 * reachable from your state and free it in fini. */
	int (*call_on_loop)(struct hl_plugin *self, void (*fn)(void *arg),
	                    void *arg);

	/* The config: the node given to init is the plugin's own subtree
	 * (its key under `plugins:`). Nodes stay valid until fini. */
	int (*conf_type)(const struct hl_conf *node);
	/* The value under key of a map node, or NULL. */
	const struct hl_conf *(*conf_get)(const struct hl_conf *node,
	                                  const char *key);
	/* A scalar's text, or NULL for a node that is not a scalar. */
	const char *(*conf_str)(const struct hl_conf *node);
	/* Items of a list, or entries of a map (their values); and keys. */
	size_t (*conf_len)(const struct hl_conf *node);
	const struct hl_conf *(*conf_item)(const struct hl_conf *node,
	                                   size_t i);
	const char *(*conf_key)(const struct hl_conf *node, size_t i);
	/* Report a config error at the node's file:line:column. The core
	 * prints it, and the plugin's init or validate then fails. */
	void (*conf_error)(struct hl_plugin *self, const struct hl_conf *node,
	                   const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));
	/* Reject every key of a map node that is not in the NULL-ended list
	 * `allowed` (the core itself handles `priority`). Returns the number
	 * of bad keys; each is reported with conf_error. */
	int (*conf_check_keys)(struct hl_plugin *self,
	                       const struct hl_conf *node,
	                       const char *const *allowed);

	/* The services this node serves. */
	size_t (*identity_count)(struct hl_plugin *self);
	const struct hl_identity *(*identity_at)(struct hl_plugin *self,
	                                         size_t i);
	/* The service whose keyhash is `keyhash` (40 hex, any case), or
	 * NULL. */
	const struct hl_identity *(*identity_find)(struct hl_plugin *self,
	                                           const char *keyhash);
	/* keyhash of a DER certificate, per docs/protocol.md ("Identity"):
	 * 40 hex + NUL. */
	void (*keyhash_of_cert)(const unsigned char *der, size_t len,
	                        char out[41]);

	/* Transports: a tunnel for the service `keyhash` was accepted and
	 * handshaken. The core owns bev from this call on (no callbacks may
	 * be left set); peer is a printable address for logs. */
	void (*incoming)(struct hl_plugin *self, struct bufferevent *bev,
	                 const char *keyhash, const char *peer);
	/* Transports: a listener is open (or closed) on this socket address.
	 * The core tells traversal plugins, which may map the port. */
	void (*listening)(struct hl_plugin *self, const struct sockaddr *sa,
	                  socklen_t salen, int open);

	/* Discovery: the keyhash a query looks for (40 lowercase hex). */
	const char *(*query_keyhash)(const struct hl_query *q);
	/* Discovery: a candidate address ("host:port", "[v6]:port") for
	 * q. May be called any number of times until query_done. */
	void (*query_candidate)(struct hl_plugin *self, struct hl_query *q,
	                        const char *addr);
	/* Discovery: no more candidates will come for q. Exactly once per
	 * started query, unless the core cancelled it first. */
	void (*query_done)(struct hl_plugin *self, struct hl_query *q);
	/* Discovery: an address heard for a keyhash outside any query (an
	 * unsolicited announce); the core remembers it for a while. */
	void (*candidate_learned)(struct hl_plugin *self, const char *keyhash,
	                          const char *addr);

	/* Traversal and address plugins: an address ("ip:port", "[v6]:port")
	 * where this node's services can be reached from outside, or one
	 * that no longer works. The core tells clients (WANHosts). */
	void (*wanhost_add)(struct hl_plugin *self, const char *addr);
	void (*wanhost_remove)(struct hl_plugin *self, const char *addr);

	/* ---- 1.1 ---- */

	/* This node's WANHosts as servers send them ("a:1,[v6]:2", "" when
	 * none). Valid until control returns to the loop. */
	const char *(*wanhosts)(struct hl_plugin *self);
	/* Discovery: a Hardline service seen on the network, for `hlcore
	 * discover` and the admin panel. label is "<password>-<keyhash>" or
	 * "-<keyhash>"; addr is where its transport listens. */
	void (*service_seen)(struct hl_plugin *self, const char *title,
	                     const char *label, const char *addr);
	/* Control: the node's state as a JSON object (services, plugins,
	 * lan, connections, routes, log; the README documents it). Returns
	 * a string to release with svc->free, or NULL. */
	char *(*status_json)(struct hl_plugin *self);
	/* Control: start (enabled = 1) or stop (0) the plugin `name` now;
	 * the choice is kept in state_dir and applies at the next start.
	 * Returns 0, or -1 with a sentence in err. A plugin cannot stop
	 * itself this way. */
	int (*plugin_set_enabled)(struct hl_plugin *self, const char *name,
	                          int enabled, char *err, size_t errlen);
	/* Release what the core allocated for the plugin (status_json). */
	void (*free)(void *p);
	/* The state directory (0700), for a plugin's own files (0600). */
	const char *(*state_dir)(struct hl_plugin *self);
	/* Control: set the priority (0..1000, lower first) of plugin `name`
	 * now; kept in state_dir like plugin_set_enabled. 0, or -1 with a
	 * sentence in err. */
	int (*plugin_set_priority)(struct hl_plugin *self, const char *name,
	                           int priority, char *err, size_t errlen);
	/* Control: ask every discovery plugin to look for every service now
	 * (their answers come as service_seen, i.e. in status_json's lan). */
	void (*browse)(struct hl_plugin *self);

	/* ---- 1.2 ---- */

	/* Transports: as listening(), for a listener of protocol proto
	 * (enum hl_proto). listening() means HL_PROTO_TCP. Traversal plugins
	 * hear of it through port_event_proto (port_event only for TCP). */
	void (*listening_proto)(struct hl_plugin *self,
	                        const struct sockaddr *sa, socklen_t salen,
	                        int proto, int open);
	/* Transports: as incoming(), with flags (enum hl_incoming_flag).
	 * HL_INCOMING_RELAYED: the tunnel came through a relay, so peer is
	 * not one machine's address; the core then counts it on its own
	 * (peer must then name the relayed client, e.g. "relay:<id>"),
	 * rather than lumping every relayed client into the relay's
	 * address for the per-address limits. */
	void (*incoming_flags)(struct hl_plugin *self, struct bufferevent *bev,
	                       const char *keyhash, const char *peer,
	                       unsigned flags);
	/* Transports and traversal: a typed endpoint where this node's
	 * services can be reached ("quic://198.51.100.7:7008"; later
	 * "hub://...", "relay://..."), or one that no longer works. The
	 * core tells hlcore clients (the OOB field "Endpoints", which Python
	 * peers ignore); it never goes into WANHosts. At most 261 chars:
	 * <scheme>://<rest>, the scheme [a-z][a-z0-9+.-]* (at most 15), the
	 * rest printable ASCII without blanks or commas. */
	void (*endpoint_add)(struct hl_plugin *self, const char *uri);
	void (*endpoint_remove)(struct hl_plugin *self, const char *uri);

	/* ---- appended later in 1.2 (check with HL_HAS) ---- */

	/* Transports: the path of the tunnel bev that this plugin is about
	 * to hand the core as a dial's result: call it right before the
	 * dial's cb, in the same turn. flags: HL_INCOMING_RELAYED when it
	 * goes through a relay (which sees ciphertext only); text, short,
	 * for the admin: "direct 198.51.100.7:7008", "relayed by TURN
	 * 203.0.113.5:3478". status_json shows it per tunnel
	 * (connections[].path, routes[].via). Incoming tunnels say it with
	 * incoming_flags. */
	void (*tunnel_path)(struct hl_plugin *self, struct bufferevent *bev,
	                    unsigned flags, const char *text);
	/* Any plugin: a line of its own state for the admin, status_json's
	 * plugins[].status.<key> = value ("nat": "symmetric ..."). key at
	 * most 31 characters, value at most 255 (longer is cut); value NULL
	 * removes the key; at most 8 keys per plugin (more are dropped and
	 * logged once). Loop thread only; cleared when the plugin stops. */
	void (*status_set)(struct hl_plugin *self, const char *key,
	                   const char *value);
};

/* 1.2: the protocol of a listener (IP protocol numbers). */
enum hl_proto {
	HL_PROTO_TCP = 6,
	HL_PROTO_UDP = 17,
};

/* 1.2: flags of incoming_flags(). */
enum hl_incoming_flag {
	HL_INCOMING_RELAYED = 1u << 0,
};

/*
 * Tunnels that are not sockets (1.2 states what 1.0 did implicitly).
 * A transport whose tunnels are not TCP/TLS sockets (a QUIC stream, a
 * relayed stream) hands the core one end of a pair made with
 * bufferevent_pair_new(svc->event_base(self), BEV_OPT_DEFER_CALLBACKS, p)
 * and keeps the other end. Then:
 *  - Close and half-close go one direction at a time, as over TCP.
 *  - The peer closed its direction (FIN): the plugin calls
 *    bufferevent_flush(its end, EV_WRITE, BEV_FINISHED) once every byte
 *    before the close has moved to the core's end (its output is empty):
 *    a FINISHED flush moves no more than the core's read high watermark,
 *    and the core stops reading at the EOF. The core then shuts the other
 *    side of the tunnel for writing and goes on writing what that side
 *    still sends into the pair, until that side closes too.
 *  - The core shut its direction (half-close): it calls
 *    bufferevent_flush(its end, EV_WRITE, BEV_FINISHED) and keeps its end.
 *    The plugin's event callback sees BEV_EVENT_EOF | BEV_EVENT_READING
 *    after the bytes the core wrote: send those bytes, then a FIN, and go
 *    on delivering what the peer sends, until the peer's FIN.
 *  - The tunnel ended: the core calls bufferevent_flush(its end, EV_READ
 *    | EV_WRITE, BEV_FINISHED) and then frees its end (when both
 *    directions have closed, on an error, at the idle timeout), so the
 *    event callback sees BEV_EVENT_EOF with BEV_EVENT_WRITING set too:
 *    send what the core wrote, then end your direction, and drop what
 *    the peer still sends. If the peer's direction is still open, tell
 *    the peer the tunnel is over, not half-closed (transport-udp: a
 *    RESET_STREAM once its bytes are acknowledged); a peer that resets
 *    its direction has left: free your end (after what came before), so
 *    that the core ends the tunnel as a whole rather than half-closing
 *    it. A pair end freed without that (on a refusal before the tunnel
 *    is spliced, or when hlcore stops) tells the other end nothing: watch
 *    for bufferevent_pair_get_partner(your end) becoming NULL as well (a
 *    sweep every fraction of a second is cheap). At a stop, queue no EOF
 *    of your own in fini: no loop round may be left to deliver it.
 *  - A plugin that takes every EOF from the core for the end of the
 *    tunnel (and frees its end) still works: while a tunnel is
 *    half-closed, the core checks every 250 ms whether the plugin's end is
 *    still there, and ends the tunnel when it is not.
 *  - Backpressure: bytes the plugin writes wait in its end's output until
 *    the core reads them; credit the peer (flow control) only as that
 *    output drains, and set a read high watermark on your end so that
 *    what the core writes waits in the core's end.
 */

/* True when the core's services table has `member` (and it is set). */
#define HL_HAS(svc, member)                                                    \
	((svc)->size >=                                                        \
	     offsetof(struct hl_services, member) + sizeof((svc)->member) &&   \
	 (svc)->member != NULL)

/*
 * Discovery facet: mandatory ops query_start and query_cancel.
 * query_start: begin looking for svc->query_keyhash(q). Return 0 when
 * started (the plugin then calls svc->query_done(q) exactly once, from a
 * later loop iteration, unless cancelled), or -1 when it cannot help.
 * query_cancel: the core no longer wants q; the plugin forgets it at once
 * and must not call the core about it again.
 * browse (1.1, optional): look for every service now (`hlcore discover`,
 * the admin panel's refresh); report each with svc->service_seen.
 */
struct hl_discovery_ops {
	size_t size;
	int (*query_start)(void *state, struct hl_query *q);
	void (*query_cancel)(void *state, struct hl_query *q);
	/* 1.1 */
	void (*browse)(void *state);
};

/* Events (1.1) that any plugin may want to follow. A plugin ignores the
 * types it does not know: later minors may add some. */
enum hl_event_type {
	HL_EVENT_WANHOSTS = 1, /* ev->text: this node's new WANHosts */
	/* 1.2: ev->text: this node's typed endpoints, comma-separated
	 * ("quic://198.51.100.7:7008,hub://hub.example.org:7777", "" when
	 * none; see endpoint_add). Sent after HL_EVENT_WANHOSTS whenever
	 * either changes, and only to plugins whose head.abi_minor is 2 or
	 * more (a 1.1 plugin may not check the type). */
	HL_EVENT_ENDPOINTS = 2,
};

struct hl_event {
	size_t size;
	int type; /* enum hl_event_type */
	const char *text; /* valid during the call */
};

/*
 * Events facet (1.1), for a plugin of any kind: event is called on the
 * loop thread for each event, and once right after init with the current
 * value of each (so a plugin needs no special case at start).
 */
struct hl_events_ops {
	size_t size;
	void (*event)(void *state, const struct hl_event *ev);
};

/*
 * Traversal facet: mandatory op port_event. Called on the loop thread for
 * every listener a transport opens (open = 1) or closes (open = 0),
 * including those opened before this plugin was loaded. The plugin may map
 * the port and report external addresses with svc->wanhost_add(); it must
 * not block the loop (run blocking calls on a thread of its own and come
 * back with svc->call_on_loop()).
 */
struct hl_traversal_ops {
	size_t size;
	void (*port_event)(void *state, const struct sockaddr *sa,
	                   socklen_t salen, int open);
	/* 1.2 (optional): when set, the core calls this instead of
	 * port_event for every listener, with its protocol (enum hl_proto);
	 * without it, port_event hears of TCP listeners only. */
	void (*port_event_proto)(void *state, const struct sockaddr *sa,
	                         socklen_t salen, int proto, int open);
};

/*
 * Transport facet: mandatory ops dial and dial_cancel.
 * dial: connect to `addr` and authenticate as a client for `keyhash`
 * (the transport presents keyhash to the server, e.g. as TLS SNI). Returns
 * the plugin's handle, or NULL when this transport cannot reach that kind
 * of address (then cb is never called). The result comes through cb.
 * dial_cancel: abandon a dial whose cb has not yet been called; the plugin
 * frees everything it holds for it and never calls cb.
 * Accepting is the plugin's own business (usually listeners opened in
 * init from its config); accepted tunnels go to svc->incoming().
 * What goes over the wire: docs/protocol.md, "The tunnel".
 */
struct hl_transport_ops {
	size_t size;
	struct hl_dial *(*dial)(void *state, const char *keyhash,
	                        const char *addr, hl_dial_cb cb, void *arg);
	void (*dial_cancel)(void *state, struct hl_dial *d);
	/* 1.2 (optional): the candidates this transport is given, a
	 * NULL-ended list of schemes ("quic" for "quic://host:port"), ""
	 * standing for a bare "host:port". dial() then gets the candidate
	 * as written, scheme included. NULL (or a 1.1 plugin): bare
	 * addresses only. */
	const char *const *schemes;
	/* 1.2 (optional): those of its schemes whose candidates go through
	 * a relay: the router tries them after every direct candidate. */
	const char *const *relay_schemes;
	/* 1.2 (appended later, optional): HL_TRANSPORT_* flags. */
	unsigned flags;
};
/* Every peer this transport reaches is an hlcore node (it speaks nothing
 * the Python original speaks, as QUIC): the core sends a new tunnel's
 * first bytes (the proxy's request head) right behind its OOB line,
 * without waiting for the service node's line, which saves a round trip.
 * Python servers need the wait ("Out-of-band lines" in docs/protocol.md);
 * hlcore's do not. */
#define HL_TRANSPORT_HLCORE_ONLY 1u

/*
 * Commands (1.2, optional): `hlcore -c FILE <name> [ARGS...]` runs a
 * command a plugin offers (transport-udp: `nat`), for a person at a
 * terminal, not in the daemon. The core loads the plugins of the config
 * (their validate() first, as `hlcore check` does), finds the one whose
 * names hold <name>, and calls run() INSTEAD of init: the plugin is not
 * started (no listener, no timer), no event loop runs, and run may block
 * for a bounded time (a few seconds: its own sockets with timeouts,
 * getaddrinfo). conf is the plugin's config subtree; argv[0] is name and
 * argv[1..argc-1] the arguments after it. run prints its results on
 * stdout and problems on stderr, and returns the exit status (0 fine, 1
 * runtime failure, 2 bad usage). Nothing it allocated may outlive it.
 */
struct hl_command_ops {
	size_t size;
	/* NULL-ended: the commands' names, and for each a line for
	 * `hlcore --help` ("nat   print this node's NAT behaviour"). */
	const char *const *names;
	const char *const *help;
	int (*run)(const struct hl_services *svc, struct hl_plugin *self,
	           const struct hl_conf *conf, int argc, char *const *argv);
};

/* The frozen head of every descriptor, for every major version. */
struct hl_plugin_head {
	uint32_t magic; /* HL_ABI_MAGIC */
	uint16_t abi_major; /* HL_ABI_MAJOR of the header built against */
	uint16_t abi_minor; /* the lowest core minor the plugin needs */
	uint32_t size; /* sizeof(struct hl_plugin_desc) it was built with */
	uint32_t kinds; /* enum hl_kind bits */
};

/*
 * The descriptor. Build it with HL_PLUGIN(); the core reads nothing of it
 * beyond head until head has passed its checks.
 *
 * init: called once, on the loop thread, after every check passed. conf
 * is the plugin's config subtree (may be an empty map). Set *state to the
 * plugin's own pointer, passed back to every op and to fini. Return 0, or
 * -1 after logging why (the core then unloads the plugin without fini).
 * fini: undo everything init did (close listeners, join threads, cancel
 * timers); called once, on the loop thread.
 * validate (optional): check conf without starting anything (used by
 * `hlcore check`); report each problem with svc->conf_error and return -1,
 * or return 0.
 */
struct hl_plugin_desc {
	struct hl_plugin_head head;
	const char *name; /* folder = YAML key = <name>.so */
	const char *version; /* the plugin's own version */
	const char *description; /* one line */
	int default_priority; /* lower is tried first */
	unsigned long libevent_version; /* LIBEVENT_VERSION_NUMBER */
	unsigned long openssl_version; /* OPENSSL_VERSION_NUMBER */
	int (*init)(const struct hl_services *svc, struct hl_plugin *self,
	            const struct hl_conf *conf, void **state);
	void (*fini)(void *state);
	int (*validate)(const struct hl_services *svc, struct hl_plugin *self,
	                const struct hl_conf *conf);
	const struct hl_discovery_ops *discovery;
	const struct hl_traversal_ops *traversal;
	const struct hl_transport_ops *transport;
	/* 1.1: was reserved[0] (NULL in a 1.0 plugin). */
	const struct hl_events_ops *events;
	const void *reserved[3]; /* must be NULL; later facets go here */
	/* 1.2: enum hl_plugin_flag bits (0 in older plugins). */
	uint32_t flags;
	/* 1.2, appended (optional): command-line commands (above). */
	const struct hl_command_ops *commands;
};

/* 1.2: descriptor flags. */
enum hl_plugin_flag {
	/* The plugin passes no OpenSSL object across the ABI: the loader
	 * does not compare its OpenSSL version (HL_PLUGIN_WITHOUT_OPENSSL
	 * sets it). */
	HL_PLUGIN_NO_OPENSSL = 1u << 0,
};

#if defined(__GNUC__)
#define HL_EXPORT __attribute__((visibility("default")))
#else
#define HL_EXPORT
#endif

/*
 * Define the plugin's descriptor:
 *
 *   HL_PLUGIN(HL_KIND_TRANSPORT,
 *       .name = "transport-foo", .version = "0.1",
 *       .description = "tunnels over foo", .default_priority = 30,
 *       .init = foo_init, .fini = foo_fini, .transport = &foo_ops);
 */
#define HL_PLUGIN(kind_bits, ...)                                              \
	HL_EXPORT extern const struct hl_plugin_desc hardline_plugin;          \
	HL_EXPORT const struct hl_plugin_desc hardline_plugin = {              \
	    .head = {HL_ABI_MAGIC, HL_ABI_MAJOR, HL_PLUGIN_ABI_MINOR,          \
	             (uint32_t)sizeof(struct hl_plugin_desc), (kind_bits)},    \
	    .libevent_version = LIBEVENT_VERSION_NUMBER,                       \
	    .openssl_version = HL_PLUGIN_OPENSSL_VERSION_,                     \
	    .flags = HL_PLUGIN_FLAGS_,                                         \
	    __VA_ARGS__}

#ifdef __cplusplus
}
#endif

#endif /* HARDLINE_PLUGIN_H */
