/*
 * hl.h: the core's internal interfaces, shared between core files. Nothing
 * here is part of the plugin ABI (that is include/hardline/plugin.h).
 * Names: hl__ for symbols shared between core files, no prefix for statics.
 */
#ifndef HL_CORE_H
#define HL_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>

#include "hardline/plugin.h"
#include "hardline/util.h"

/* Free every element of a list linked through ->next, head first, with
 * fn (free, or a function taking the element); head ends NULL. */
#define HL__LIST_FREE(head, fn)                                                \
	while ((head) != NULL) {                                               \
		void *hl__elem = (head);                                       \
		(head) = (head)->next;                                         \
		fn(hl__elem);                                                  \
	}

#define HL_VERSION "0.1.0"
#define HL_KEYHASH_LEN 40
#define HL_PASSWORD_MAX 22
#define HL_OOB_MAX 4096 /* bound on an OOB line, newline included */
#define HL_OOB_TIMEOUT_SEC 10 /* bound on the wait for it */
#define HL_HTTP_HEAD_MAX 16384
#define HL_HTTP_HEAD_TIMEOUT_SEC 10
#define HL_WANHOSTS_MAX 16 /* addresses kept from one WANHosts value */
#define HL_ADDR_MAX 262 /* "[v6]:port" or a DNS name with a port */
/* A numeric socket address as text, "[v6]:port" at most: for the many
 * per-connection copies, where HL_ADDR_MAX would cost 200 bytes each. */
#define HL_PEER_MAX 48

/* ---- log.c ---- */
extern int hl__log_level;
void hl__log(int level, const char *who, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void hl__vlog(int level, const char *who, const char *fmt, va_list ap);
/* The same with the key of the call site given (fmt's pointer when NULL):
 * a site that repeats is counted instead of written (log.c). */
void hl__vlog_site(int level, const char *who, const void *site,
                   const char *fmt, va_list ap);
void hl__log_site(int level, const char *who, const void *site, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));
/* A line that comes formatted (libevent's), keyed by its text. */
void hl__log_text(int level, const char *who, const char *text);
/* Write "(N more like this: ...)" for the floods that have been quiet for
 * a while (every 60 s for those going on), or for all of them when all is
 * set (at exit). Any thread; the loop calls it every second. */
void hl__log_flush(int all);
const char *hl__log_level_name(int level);
/* Call fn for each of the last lines logged (at most 200), oldest first;
 * text is "<who>: <message>" or "<message>". */
void hl__log_recent(void (*fn)(void *arg, time_t t, int level,
                               const char *text),
                    void *arg);
#define hl__err(...) hl__log(HL_LOG_ERROR, NULL, __VA_ARGS__)
#define hl__warn(...) hl__log(HL_LOG_WARN, NULL, __VA_ARGS__)
#define hl__info(...) hl__log(HL_LOG_INFO, NULL, __VA_ARGS__)
#define hl__debug(...) hl__log(HL_LOG_DEBUG, NULL, __VA_ARGS__)

/* ---- config.c: the YAML config ---- */

/* One node of the config tree, with where it stood in the file. */
struct hl_conf {
	int type; /* enum hl_conf_type */
	char *str; /* HL_CONF_SCALAR: the text */
	char **keys; /* HL_CONF_MAP: n keys */
	struct hl_conf **items; /* LIST: n items; MAP: n values */
	size_t n;
	const char *file; /* shared, owned by the config */
	int line, col; /* 1-based */
};

enum hl__password_mode {
	HL_PW_AUTO = 0, /* random, generated once and kept in state_dir */
	HL_PW_NONE = 1,
	HL_PW_FIXED = 2,
};

struct hl__service_conf {
	char *name;
	char *target; /* "host:port" of the backend */
	char *title; /* defaults to name */
	int password_mode;
	char *password; /* HL_PW_FIXED: [a-z2-7]{1,22} */
	char *cert; /* optional: path of an existing Hardline cert */
	int lan_announce_password; /* 0 unless opted in */
	char *punch; /* NULL: punching refused; else a /bin/sh -c command */
	const struct hl_conf *node;
};

struct hl__plugin_conf {
	char *name;
	const struct hl_conf *node; /* its map (never NULL; may be empty) */
	int priority; /* valid when has_priority */
	int has_priority;
};

struct hl__peer_conf {
	char keyhash[HL_KEYHASH_LEN + 1]; /* lowercase */
	char **addrs;
	size_t naddrs;
	const struct hl_conf *node;
};

/* limits: what one node holds; -1: sized from the descriptor limit. */
#define HL_IDLE_TIMEOUT_DEFAULT (3L * 3600)
struct hl__limits_conf {
	long idle_timeout; /* seconds an established tunnel may be silent; 0:
	                      never */
	long tunnels; /* tunnels served at once, authenticating or not */
	long per_peer; /* of those, from one peer address */
	long per_service; /* of those, to one service */
	long routes; /* the proxy's routes in progress */
};

/* One entry of `forwards:`: a local port for a remote service. */
struct hl__forward_conf {
	char *listen; /* "ip:port", numeric */
	char *title; /* optional; NULL: none */
	char password[HL_PASSWORD_MAX + 1];
	char keyhash[HL_KEYHASH_LEN + 1]; /* lowercase */
	const struct hl_conf *node; /* the entry's map */
	const struct hl_conf *listen_node; /* for file:line:column */
};

struct hl__config {
	char *file;
	struct hl_conf *root;
	char *state_dir; /* default "./hardline-state" */
	int log_level; /* default HL_LOG_INFO */
	char *proxy_listen; /* NULL when "off"; default "127.0.0.1:7009" */
	char *plugin_dir; /* NULL: the default search */
	int strict_plugins; /* plugins_strict: true -> a refused plugin is fatal
	                     */
	struct hl__plugin_conf *plugins;
	size_t nplugins;
	struct hl__service_conf *services;
	size_t nservices;
	struct hl__peer_conf *peers;
	size_t npeers;
	struct hl__limits_conf limits;
	int proxy_socks; /* proxy.socks: SOCKS5 on proxy_listen too */
	char *socks_listen; /* proxy.socks_listen: a SOCKS5-only port */
	struct hl__forward_conf *forwards;
	size_t nforwards;
};

/*
 * Parse a config from memory. Every problem is written to errs (when not
 * NULL) as one line "file:line:column: message"; *nerrors counts them.
 * Returns the config, or NULL when there was any error.
 */
struct hl__config *hl__config_parse(const char *file, const char *buf,
                                    size_t len, FILE *errs, int *nerrors);
/* Read and parse a file; an unreadable file is one error "file: reason". */
struct hl__config *hl__config_load(const char *file, FILE *errs, int *nerrors);
void hl__config_free(struct hl__config *cfg);
/* Print "file:line:column: message\n" for node to errs. */
void hl__conf_verror(FILE *errs, const struct hl_conf *node, const char *fmt,
                     va_list ap);
/* Where the i-th key of a map node stood (the map's own place if
 * unknown). Only for nodes made by hl__config_parse. */
void hl__conf_key_pos(const struct hl_conf *map, size_t i, int *line, int *col);
/* Accessors behind the services table (plugin.h documents them). */
int hl__conf_type(const struct hl_conf *node);
const struct hl_conf *hl__conf_get(const struct hl_conf *node, const char *key);
const char *hl__conf_str(const struct hl_conf *node);
size_t hl__conf_len(const struct hl_conf *node);
const struct hl_conf *hl__conf_item(const struct hl_conf *node, size_t i);
const char *hl__conf_key(const struct hl_conf *node, size_t i);
/* A copy of map node `map` without the entry `key` (its children are
 * shared, not copied): what a plugin sees when the core wants it not to
 * listen (`hlcore connect`). Free with hl__conf_shell_free. */
struct hl_conf *hl__conf_map_without(const struct hl_conf *map,
                                     const char *key);
void hl__conf_shell_free(struct hl_conf *shell);

/* ---- identity.c: certificates, keyhashes, passwords ---- */

struct hl__identity {
	struct hl_identity pub; /* what plugins see */
	char name_buf[64];
	char keyhash[HL_KEYHASH_LEN + 1];
	char password[HL_PASSWORD_MAX + 1]; /* "" when none */
	char *cert_path;
	unsigned char *der;
	size_t der_len;
	char *cert_pem;
	char *key_pem;
};

/* keyhash per docs/protocol.md ("Identity"): first 20 bytes of
 * BLAKE2b-256(der), hex. */
void hl__keyhash(const unsigned char *der, size_t len, char out[41]);
/* A random password: base32 of 8 random bytes, lowercase, 13 chars. */
void hl__password_generate(char out[HL_PASSWORD_MAX + 1]);
/* 1 when s is a valid password ([a-z2-7]{0,22}), else 0. */
int hl__password_valid(const char *s);
/*
 * Load the service's identity, creating it on first use: the key (ECDSA
 * P-256) is written 0600 from the moment the file exists. The layout is
 * the original's: <cert>, <cert>.private and <cert>.hash ("pw-hash"), with
 * <cert> = sc->cert or <state_dir>/<name>.cert. Returns 0, or -1 with err.
 */
int hl__identity_load(const char *state_dir, const struct hl__service_conf *sc,
                      struct hl__identity *id, char *err, size_t errlen);
void hl__identity_clear(struct hl__identity *id);
/* "http://<pw>-<hash>.localhost:<port>/" into out. */
void hl__identity_url(const struct hl__identity *id, int proxy_port, char *out,
                      size_t outlen);

/* ---- host.c: the browser side's Host header ---- */

/*
 * Find the Host header in an HTTP request head (buf holds len bytes read
 * so far). Returns 1 and sets *host, *hostlen when the head is complete and
 * has a Host; 0 when more bytes are needed; -1 when the head is complete
 * without a Host or is not HTTP.
 */
int hl__http_find_host(const char *buf, size_t len, const char **host,
                       size_t *hostlen);
/*
 * Parse a Host value per docs/protocol.md ("URL and Host"): the label
 * just before "localhost", split at its last '-'. Returns 0 with password
 * and keyhash (lowercased) filled, or -1 when it is not a Hardline name.
 */
int hl__host_parse(const char *host, size_t len,
                   char password[HL_PASSWORD_MAX + 1],
                   char keyhash[HL_KEYHASH_LEN + 1]);
/*
 * Parse a service label as people write it outside a Host header:
 * "<password>-<keyhash>", also with a ".localhost" suffix (a forward's
 * `to:`, `hlcore connect LABEL`). No port, no spaces. Returns 0 with
 * password and keyhash (lowercased) filled, or -1.
 */
int hl__label_parse(const char *label, char password[HL_PASSWORD_MAX + 1],
                    char keyhash[HL_KEYHASH_LEN + 1]);

/* ---- socks.c: the SOCKS5 front's parser (RFC 1928), pure ---- */

#define HL_SOCKS_GREETING_MAX 257 /* VER NMETHODS METHODS[255] */
#define HL_SOCKS_REQUEST_MAX 262 /* VER CMD RSV ATYP LEN NAME[255] PORT */

/* SOCKS5 reply codes (RFC 1928, 6). */
enum hl__socks_rep {
	HL_SOCKS_SUCCEEDED = 0,
	HL_SOCKS_GENERAL_FAILURE = 1,
	HL_SOCKS_NOT_ALLOWED = 2, /* a name that is not a Hardline service */
	HL_SOCKS_HOST_UNREACHABLE = 4, /* no path to the service worked */
	HL_SOCKS_CONNECTION_REFUSED = 5, /* the service closed the tunnel */
	HL_SOCKS_COMMAND_NOT_SUPPORTED = 7, /* BIND, UDP ASSOCIATE */
	HL_SOCKS_ADDRESS_NOT_SUPPORTED = 8, /* IP addresses, unknown ATYP */
};

/*
 * The client's greeting (VER NMETHODS METHODS) at buf[0..len). Returns 0
 * when more bytes are needed; -1 when it is not a SOCKS5 greeting (the
 * caller closes); 1 when complete and "no authentication" (0x00) is
 * offered; 2 when complete without it (the caller answers 05 FF and
 * closes). *used is set to the greeting's length when complete.
 */
int hl__socks_greeting(const unsigned char *buf, size_t len, size_t *used);

struct hl__socks_request {
	int cmd; /* 1 CONNECT, 2 BIND, 3 UDP ASSOCIATE, ... */
	int atyp; /* 1 IPv4, 3 domain name, 4 IPv6 */
	char name[256]; /* atyp 3: the name, NUL-ended ("" otherwise) */
	uint16_t port;
	int rep; /* HL_SOCKS_SUCCEEDED: go on; else the refusal to send */
	char password[HL_PASSWORD_MAX + 1]; /* when rep is 0 */
	char keyhash[HL_KEYHASH_LEN + 1]; /* when rep is 0 */
};

/*
 * The request (VER CMD RSV ATYP DST.ADDR DST.PORT) at buf[0..len). Returns
 * 0 when more bytes are needed; -1 when it is malformed (wrong version or
 * reserved byte: the caller answers a general failure and closes); 1 when
 * complete, with req filled and req->rep saying whether it may go on: only
 * a CONNECT to a domain name that is a Hardline name
 * ("<password>-<keyhash>.localhost") gets HL_SOCKS_SUCCEEDED. An unknown
 * address type completes at once with HL_SOCKS_ADDRESS_NOT_SUPPORTED.
 */
int hl__socks_request(const unsigned char *buf, size_t len, size_t *used,
                      struct hl__socks_request *req);
/* The 10-byte reply with code rep (BND.ADDR 0.0.0.0:0). */
void hl__socks_reply(unsigned char out[10], int rep);
/* What a SOCKS4 client gets: 8 bytes, "request rejected" (0x5B). */
void hl__socks4_refusal(unsigned char out[8]);

/* ---- oob.c: the out-of-band line ---- */

struct hl__oob {
	char password[HL_PASSWORD_MAX + 1]; /* "" when absent */
	int has_password;
	char *wanhosts; /* NULL when absent; malloc'd */
	char *endpoints; /* "Endpoints" (hlcore only); NULL when absent */
	/* hlcore's refusal at a cap ("busy"): why, and when to try again. */
	int is_busy;
	char busy[200];
	int retry_ms;
};

/* Parse one OOB line (without its '\n'): a JSON object; unknown fields
 * are ignored. Returns 0, or -1 when it is not a JSON object or a known
 * field has the wrong type. */
int hl__oob_parse(const char *line, size_t len, struct hl__oob *out);
void hl__oob_clear(struct hl__oob *oob);
/* The lines to send, each ending in '\n'; malloc'd. */
/* WANHosts, and (hlcore's own field, which Python peers ignore) the
 * typed endpoints; a NULL or "" value is left out. */
char *hl__oob_server_line(const char *wanhosts, const char *endpoints);
char *hl__oob_client_line(const char *password); /* NULL/"" -> "{}\n" */
/* The server's line when it refuses a tunnel at a cap: WANHosts as usual
 * (when any), "busy" saying why and "retry_ms" when to try again; the
 * server closes the tunnel once it has gone out. */
char *hl__oob_busy_line(const char *wanhosts, const char *why, int retry_ms);
/*
 * Split a WANHosts value ("a:1,[v6]:2") into at most max well-formed
 * addresses, each copied into out[i] (HL_ADDR_MAX bytes). Returns the
 * count; malformed entries are skipped and counted in *bad.
 */
size_t hl__wanhosts_split(const char *s, char out[][HL_ADDR_MAX], size_t max,
                          int *bad);
/*
 * A typed endpoint, s[0..len) (docs/protocol.md, "Endpoints"):
 * <scheme>://<rest>, the scheme [a-z][a-z0-9+.-]* of at most 15 chars,
 * the rest 1 or more printable ASCII chars without blanks, commas or
 * quotes, at most HL_ADDR_MAX - 1 in all; for the schemes whose rest is an
 * address (quic, tls) a host:port with a port from 1. 0, or -1.
 */
int hl__endpoint_check(const char *s, size_t len);
/* The Endpoints field split like WANHosts (at most max, bad ones skipped
 * and counted); with any_bare, bare host:port entries are kept too (the
 * peer cache holds both). */
size_t hl__endpoints_split(const char *s, char out[][HL_ADDR_MAX], size_t max,
                           int any_bare, int *bad);

/* ---- util.c ---- */

/* Split "host:port" / "[v6]:port" into host (no brackets) and port, as
 * hl_addr_split does, but the core wants a real port: 0 is malformed too.
 * Returns 0, or -1 when malformed. */
static inline int
hl__addr_split(const char *addr, char *host, size_t hostlen, uint16_t *port)
{
	if (hl_addr_split(addr, host, hostlen, port) != 0 || *port == 0)
		return -1;
	return 0;
}
/* Write data to path atomically (tmp, fsync, rename) with mode: the temp
 * file "<path>.tmp<pid>" is created with O_EXCL|O_NOFOLLOW and mode
 * before any byte is written (a stale one is unlinked, once). */
int hl__write_file_atomic(const char *path, const void *data, size_t len,
                          int mode);
/* Read a whole file (at most max bytes) into a malloc'd NUL-ended buffer. */
char *hl__read_file(const char *path, size_t max, size_t *lenp);
/* mkdir -p with mode for the last component. */
int hl__mkdirs(const char *path, int mode);
/* A timer that calls fn(arg) every ms milliseconds from now until freed
 * (event_free); NULL when out of memory. */
struct event *hl__every(struct event_base *base, long ms,
                        void (*fn)(evutil_socket_t, short, void *), void *arg);

/* ---- loader.c: dlopen and the checks before any plugin code runs ---- */

/* The core's record of one plugin; plugins see it as an opaque handle. */
struct hl_plugin {
	char *path;
	void *dl;
	const struct hl_plugin_desc *desc; /* in the plugin's memory */
	struct hl_plugin_desc d; /* *desc copied, zero past head.size */
	void *state;
	int priority;
	int running; /* init succeeded and fini not yet called */
	int in_init; /* in its init: no events yet (its state is not set) */
	int disabled; /* turned off by the admin (kept in state_dir) */
	int conf_errors; /* conf_error calls since the last init/validate */
	char error[512]; /* why it is not running, for the admin panel */
	const struct hl_conf *conf;
	/* Its own state lines for the admin (svc->status_set). */
	struct hl_plugin_status {
		char key[32];
		char value[256];
	} status[8];
	size_t nstatus;
	int status_full_logged;
	struct hl_plugin *next;
};

/*
 * Open the shared object at path and check its descriptor without running
 * any of its code beyond the dynamic loader's. want_name, when not NULL,
 * must equal the descriptor's name. On refusal returns -1 and writes to
 * err one sentence naming the file, the value found, the value wanted and
 * the fix. On success fills p (path, dl, desc, d) and returns 0.
 */
int hl__plugin_open(const char *path, const char *want_name,
                    struct hl_plugin *p, char *err, size_t errlen);
void hl__plugin_close(struct hl_plugin *p);
/* hlcore --plugin-info: print the descriptor; 0, or 2 when refused. */
int hl__plugin_info(const char *path, FILE *out);
/*
 * Where the plugin `name` is: <plugin_dir>/<name>.so when plugin_dir is
 * set; else the build tree's plugins/ beside the hlcore binary, then the
 * install dir. Returns a malloc'd path (that may not exist when nothing
 * was found: the last place looked).
 */
char *hl__plugin_find(const char *plugin_dir, const char *name);

/* ---- core.c: the running daemon ---- */

struct hl__core;
extern struct hl__core *hl__core;
extern const struct hl_services hl__services;

#endif /* HL_CORE_H */
