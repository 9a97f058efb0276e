/*
 * admin-web: the web admin panel and its JSON API, served by libmicrohttpd
 * on the core's libevent loop (MHD's external epoll mode: its epoll fd is
 * one persistent read event, plus a timer from MHD_get_timeout; no
 * threads).
 *
 * Out of descriptors: when accept() fails with EMFILE while the panel has
 * connections, MHD stops accepting until one closes (and is run once more
 * after closing some, which puts the listening socket back in its epoll
 * set). With none of its own, MHD would retry at once, forever: the panel
 * then stops watching MHD for a pause that doubles from PAUSE_MIN_MS to
 * PAUSE_MAX_MS while it lasts, one log line per pause.
 *
 * Config (plugins: admin-web:):
 *   listen: "127.0.0.1:7010"   the default; anything beyond loopback is
 *                              logged as a warning
 *
 * Who may do what: /login and /static/ answer anyone; every other path
 * needs the admin token (Authorization: Bearer <token>) or a session
 * cookie from the login form, else 401 (pages redirect to /login). A
 * state-changing request with a session cookie also needs the session's
 * CSRF token (form field csrf, or header X-CSRF-Token) and must not come
 * from another site. README.md in this folder documents the API.
 *
 * The core's services of the last ABI 1.1 change (plugin_set_priority,
 * browse, HL_LOG_PRIVATE) are used when HL_HAS says the core has them;
 * on an older core their controls are hidden and their routes answer 501.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <microhttpd.h>
#include <sodium.h>

#include "admin-web.h"
#include "hardline/evutil.h"

#define DEFAULT_LISTEN "127.0.0.1:7010"
#define BODY_MAX 8192 /* the biggest request body taken */
#define CONN_MEMORY (32 * 1024) /* MHD's per-connection memory */
#define CONN_MAX 64 /* connections at once */
#define CONN_IDLE_SEC 15 /* a silent connection is closed */
#define PAUSE_MIN_MS 100 /* out of descriptors: the first pause */
#define PAUSE_MAX_MS 3200 /* and the longest */
#define SESSION_COOKIE "hl_session" /* the login session */
#define PRE_COOKIE "hl_pre" /* the login form's CSRF cookie */
#define BROWSE_GAP_MS 1000 /* LAN refreshes closer than this are one */

struct admin {
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct event_base *base;
	struct MHD_Daemon *mhd;
	struct event *ready_ev, *timer_ev;
	struct event *pause_ev; /* out of descriptors: resumes ready_ev */
	int accept_failed; /* MHD said accept() ran out of resources */
	int pause_ms; /* the current pause, 0 when not paused */
	unsigned long pauses; /* since the last accept that worked */
	char listen[128];
	char url[160];
	struct auth auth;
	struct caps caps;
	long long last_browse_ms; /* CLOCK_MONOTONIC, 0: never */
};

/* One request: its body, bounded by BODY_MAX. */
struct req {
	struct buf body;
};

struct hdr {
	const char *name, *value;
};

static const struct hdr security_headers[] = {
    {"Cache-Control", "no-store"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Referrer-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Content-Security-Policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; "
     "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
     "frame-ancestors 'none'; base-uri 'none'"},
};

/* ---- the listen address ---- */

static int
parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	uint16_t port;

	memset(ss, 0, sizeof *ss);
	if (hl_addr_split(s, host, sizeof host, &port) != 0)
		return -1;
	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof host, "127.0.0.1");
	if (s[0] == '[') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof *in6;
		return inet_pton(AF_INET6, host, &in6->sin6_addr) == 1 ? 0 : -1;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof *in;
		return inet_pton(AF_INET, host, &in->sin_addr) == 1 ? 0 : -1;
	}
}

/* The URL to open, for the log: a wildcard address becomes loopback. */
static void
panel_url(const struct sockaddr_storage *ss, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		if (in->sin_addr.s_addr == htonl(INADDR_ANY))
			snprintf(host, sizeof host, "127.0.0.1");
		else
			inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
		snprintf(out, len, "http://%s:%u/", host, ntohs(in->sin_port));
	} else {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
			snprintf(host, sizeof host, "::1");
		else
			inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
		snprintf(out, len, "http://[%s]:%u/", host,
		         ntohs(in6->sin6_port));
	}
}

static int
open_listener(struct admin *a, struct sockaddr_storage *ss, socklen_t len)
{
	int fd = socket(ss->ss_family,
	                SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, zero = 0;

	if (fd < 0) {
		a->svc->log(a->self, HL_LOG_ERROR, "socket: %s",
		            strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
	if (bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, 64) != 0) {
		a->svc->log(a->self, HL_LOG_ERROR, "cannot listen on %s: %s",
		            a->listen, strerror(errno));
		close(fd);
		return -1;
	}
	/* With port 0 the kernel picked one: say which. */
	getsockname(fd, (struct sockaddr *)ss, &len);
	return fd;
}

/* ---- responses ---- */

static enum MHD_Result
reply(struct MHD_Connection *c, unsigned int status, const char *ctype,
      void *body, size_t len, enum MHD_ResponseMemoryMode mode,
      const struct hdr *extra, size_t nextra)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, mode);
	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	for (size_t i = 0;
	     i < sizeof security_headers / sizeof security_headers[0]; i++)
		MHD_add_response_header(r, security_headers[i].name,
		                        security_headers[i].value);
	if (ctype != NULL)
		MHD_add_response_header(r, "Content-Type", ctype);
	for (size_t i = 0; i < nextra; i++)
		if (extra[i].name != NULL)
			MHD_add_response_header(r, extra[i].name,
			                        extra[i].value);
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
reply_buf(struct MHD_Connection *c, unsigned int status, const char *ctype,
          struct buf *b, const struct hdr *extra, size_t nextra)
{
	size_t len;
	char *p = buf_take(b, &len);

	if (p == NULL)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		             "text/plain; charset=utf-8", "out of memory\n", 14,
		             MHD_RESPMEM_PERSISTENT, NULL, 0);
	return reply(c, status, ctype, p, len, MHD_RESPMEM_MUST_FREE, extra,
	             nextra);
}

static enum MHD_Result
reply_html(struct MHD_Connection *c, unsigned int status, struct buf *b,
           const struct hdr *extra, size_t nextra)
{
	return reply_buf(c, status, "text/html; charset=utf-8", b, extra,
	                 nextra);
}

/* A JSON answer; takes o. */
static enum MHD_Result
reply_json(struct MHD_Connection *c, unsigned int status, json_t *o)
{
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	json_decref(o);
	if (text == NULL)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		             "application/json",
		             "{\"error\":\"out of memory\"}", 25,
		             MHD_RESPMEM_PERSISTENT, NULL, 0);
	return reply(c, status, "application/json", text, strlen(text),
	             MHD_RESPMEM_MUST_FREE, NULL, 0);
}

static enum MHD_Result
reply_error(struct MHD_Connection *c, unsigned int status, const char *text)
{
	return reply_json(c, status, json_pack("{s:s}", "error", text));
}

static enum MHD_Result
reply_401(struct MHD_Connection *c)
{
	static const struct hdr h[] = {
	    {"WWW-Authenticate", "Bearer realm=\"hardline-admin\""}};

	return reply(c, MHD_HTTP_UNAUTHORIZED, "application/json",
	             "{\"error\":\"unauthorized\"}", 24, MHD_RESPMEM_PERSISTENT,
	             h, 1);
}

static enum MHD_Result
redirect(struct MHD_Connection *c, const char *to, const struct hdr *extra,
         size_t nextra)
{
	struct hdr h[4] = {{"Location", to}};

	for (size_t i = 0; i < nextra && i + 1 < 4; i++)
		h[i + 1] = extra[i];
	return reply(c, MHD_HTTP_SEE_OTHER, NULL, "", 0, MHD_RESPMEM_PERSISTENT,
	             h, nextra + 1 < 4 ? nextra + 1 : 4);
}

static enum MHD_Result back_to_dashboard(struct MHD_Connection *c,
                                         struct session *s, const char *fmt,
                                         ...)
    __attribute__((format(printf, 3, 4)));

/* A form's answer: a sentence for the dashboard to show once (the
 * session's flash), and back to the dashboard. */
static enum MHD_Result
back_to_dashboard(struct MHD_Connection *c, struct session *s, const char *fmt,
                  ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->flash, sizeof s->flash, fmt, ap);
	va_end(ap);
	return redirect(c, "/", NULL, 0);
}

static enum MHD_Result
reply_message(struct MHD_Connection *c, unsigned int status, const char *title,
              const char *text)
{
	struct buf b = {0};

	page_message(&b, title, text);
	return reply_html(c, status, &b, NULL, 0);
}

/* ---- the core's status ---- */

/* The status object, or NULL. It holds no secret: the one line that gave
 * the token was logged with HL_LOG_PRIVATE, which the core does not keep
 * in the recent log. */
static json_t *
status_get(struct admin *a)
{
	char *text = a->svc->status_json(a->self);
	json_t *st;

	if (text == NULL)
		return NULL;
	st = json_loads(text, 0, NULL);
	a->svc->free(text);
	if (!json_is_object(st)) {
		json_decref(st);
		return NULL;
	}
	return st;
}

static json_t *
find_named(json_t *st, const char *list, const char *name)
{
	size_t i;
	json_t *o;

	json_array_foreach(json_object_get(st, list), i, o)
	{
		const char *n = json_string_value(json_object_get(o, "name"));
		if (n != NULL && strcmp(n, name) == 0)
			return o;
	}
	return NULL;
}

/* ---- who is asking ---- */

enum who { NOBODY, BEARER, SESSION, BAD_BEARER };

static const char *
header(struct MHD_Connection *c, const char *name)
{
	return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

static enum who
who_asks(struct admin *a, struct MHD_Connection *c, struct session **sp)
{
	const char *h = header(c, MHD_HTTP_HEADER_AUTHORIZATION);

	*sp = NULL;
	if (h != NULL) {
		if (strncasecmp(h, "Bearer ", 7) != 0)
			return BAD_BEARER;
		h += 7;
		while (*h == ' ')
			h++;
		return auth_token_ok(&a->auth, h) ? BEARER : BAD_BEARER;
	}
	*sp = auth_session_find(
	    &a->auth,
	    MHD_lookup_connection_value(c, MHD_COOKIE_KIND, SESSION_COOKIE));
	return *sp ? SESSION : NOBODY;
}

/* A request that a browser sent on another site's behalf. */
static int
cross_site(struct MHD_Connection *c)
{
	const char *site = header(c, "Sec-Fetch-Site");
	const char *origin = header(c, "Origin"), *host = header(c, "Host");

	if (site != NULL && strcmp(site, "same-origin") != 0 &&
	    strcmp(site, "none") != 0)
		return 1;
	if (origin == NULL)
		return 0;
	if (host == NULL)
		return 1;
	if (strncmp(origin, "http://", 7) == 0)
		return strcmp(origin + 7, host) != 0;
	if (strncmp(origin, "https://", 8) == 0)
		return strcmp(origin + 8, host) != 0;
	return 1;
}

static void
client_addr(struct MHD_Connection *c, char *out, size_t len,
            const struct sockaddr **sap)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	*sap = sa;
	snprintf(out, len, "?");
	if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr,
		          out, (socklen_t)len);
	else if (sa != NULL && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6,
		          &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
		          (socklen_t)len);
}

/* ---- the pages ---- */

static enum MHD_Result
login_form(struct admin *a HL_UNUSED, struct MHD_Connection *c,
           unsigned int status, const char *error, const char *pre)
{
	char fresh[SESSION_ID_LEN + 1], cookie[160];
	struct buf b = {0};
	struct hdr h[1];

	if (pre == NULL || strlen(pre) != SESSION_ID_LEN ||
	    strspn(pre, "0123456789abcdef") != SESSION_ID_LEN) {
		auth_random_hex(fresh, SESSION_ID_LEN / 2);
		pre = fresh;
	}
	snprintf(cookie, sizeof cookie,
	         PRE_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/", pre);
	h[0] = (struct hdr){"Set-Cookie", cookie};
	page_login(&b, pre, error);
	return reply_html(c, status, &b, h, 1);
}

static enum MHD_Result
login_post(struct admin *a, struct MHD_Connection *c, struct req *r)
{
	const char *pre =
	    MHD_lookup_connection_value(c, MHD_COOKIE_KIND, PRE_COOKIE);
	const struct sockaddr *sa;
	char from[INET6_ADDRSTRLEN], csrf[SESSION_ID_LEN + 1];
	char token[TOKEN_MAX + 2], cookie[160], retry[16];
	struct session *s;
	int wait;
	size_t n;

	client_addr(c, from, sizeof from, &sa);
	wait = auth_login_wait(&a->auth, sa);
	if (wait > 0) {
		struct buf b = {0};
		struct hdr h[1] = {{"Retry-After", retry}};
		snprintf(retry, sizeof retry, "%d", wait);
		page_message(
		    &b, "Too many attempts",
		    "Too many failed logins from this address: wait a minute "
		    "and try again.");
		return reply_html(c, MHD_HTTP_TOO_MANY_REQUESTS, &b, h, 1);
	}
	if (cross_site(c) || pre == NULL || strlen(pre) != SESSION_ID_LEN ||
	    form_get(r->body.p, r->body.len, "csrf", csrf, sizeof csrf) != 0 ||
	    strlen(csrf) != SESSION_ID_LEN ||
	    sodium_memcmp(csrf, pre, SESSION_ID_LEN) != 0)
		return login_form(a, c, MHD_HTTP_FORBIDDEN,
		                  "The login form had expired: log in again.",
		                  NULL);
	if (form_get(r->body.p, r->body.len, "token", token, sizeof token) != 0)
		token[0] = '\0';
	n = strlen(token);
	while (n > 0 && (token[n - 1] == ' ' || token[n - 1] == '\n' ||
	                 token[n - 1] == '\r' || token[n - 1] == '\t'))
		token[--n] = '\0';
	if (!auth_token_ok(&a->auth, token + strspn(token, " \t\r\n"))) {
		sodium_memzero(token, sizeof token);
		auth_login_failed(&a->auth, sa);
		a->svc->log(a->self, HL_LOG_WARN, "failed login from %s", from);
		return login_form(a, c, MHD_HTTP_UNAUTHORIZED, "Wrong token.",
		                  pre);
	}
	sodium_memzero(token, sizeof token);
	s = auth_session_new(&a->auth);
	a->svc->log(a->self, HL_LOG_INFO, "admin logged in from %s", from);
	snprintf(cookie, sizeof cookie,
	         SESSION_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/",
	         s->id);
	{
		struct hdr h[2] = {{"Set-Cookie", cookie},
		                   {"Set-Cookie",
		                    PRE_COOKIE "=; Max-Age=0; HttpOnly; "
		                               "SameSite=Strict; Path=/"}};
		return redirect(c, "/", h, 2);
	}
}

enum plugin_action { ACT_ENABLE, ACT_DISABLE, ACT_PRIORITY };

/* "/<prefix><name>/<enable|disable|priority>" -> name and the action. */
static int
parse_plugin_route(const char *url, const char *prefix, char *name, size_t len,
                   enum plugin_action *act)
{
	size_t pl = strlen(prefix);
	const char *slash;

	if (strncmp(url, prefix, pl) != 0)
		return -1;
	url += pl;
	slash = strchr(url, '/');
	if (slash == NULL || (size_t)(slash - url) >= len)
		return -1;
	memcpy(name, url, (size_t)(slash - url));
	name[slash - url] = '\0';
	if (strcmp(slash + 1, "enable") == 0)
		*act = ACT_ENABLE;
	else if (strcmp(slash + 1, "disable") == 0)
		*act = ACT_DISABLE;
	else if (strcmp(slash + 1, "priority") == 0)
		*act = ACT_PRIORITY;
	else
		return -1;
	return plugin_name_ok(name) ? 0 : -1;
}

/* Turn a plugin on or off. 0, or an HTTP status with a sentence in err. */
static unsigned int
toggle(struct admin *a, const char *name, int enable, const char *from,
       char *err, size_t errlen)
{
	json_t *st = status_get(a);
	int known = st != NULL && find_named(st, "plugins", name) != NULL;

	json_decref(st);
	if (!known) {
		snprintf(err, errlen, "There is no plugin named %s.", name);
		return MHD_HTTP_NOT_FOUND;
	}
	if (a->svc->plugin_set_enabled(a->self, name, enable, err, errlen) != 0)
		return MHD_HTTP_CONFLICT;
	a->svc->log(a->self, HL_LOG_INFO,
	            "plugin %s turned %s by the admin "
	            "(from %s)",
	            name, enable ? "on" : "off", from);
	return 0;
}

static enum MHD_Result
api_toggle(struct admin *a, struct MHD_Connection *c, const char *name,
           int enable)
{
	char err[512], from[INET6_ADDRSTRLEN];
	const struct sockaddr *sa;
	unsigned int status;
	json_t *st, *p;

	client_addr(c, from, sizeof from, &sa);
	status = toggle(a, name, enable, from, err, sizeof err);
	if (status != 0)
		return reply_error(c, status, err);
	st = status_get(a);
	p = st ? find_named(st, "plugins", name) : NULL;
	p = json_pack("{s:s, s:b, s:b}", "name", name, "enabled",
	              p ? json_is_true(json_object_get(p, "enabled")) : enable,
	              "running",
	              p ? json_is_true(json_object_get(p, "running")) : 0);
	json_decref(st);
	return reply_json(c, MHD_HTTP_OK, p);
}

static enum MHD_Result
form_toggle(struct admin *a, struct MHD_Connection *c, struct session *s,
            const char *name, int enable)
{
	char err[512], from[INET6_ADDRSTRLEN];
	const struct sockaddr *sa;

	client_addr(c, from, sizeof from, &sa);
	if (toggle(a, name, enable, from, err, sizeof err) != 0)
		return back_to_dashboard(c, s, "%s", err);
	return back_to_dashboard(c, s, "%s is now %s.", name,
	                         enable ? "on" : "off");
}

/* Set a plugin's priority. 0, or an HTTP status with a sentence in err. */
static unsigned int
set_priority(struct admin *a, const char *name, long long priority,
             const char *from, char *err, size_t errlen)
{
	json_t *st;
	int known;

	if (!a->caps.priority) {
		snprintf(err, errlen,
		         "This hlcore cannot change priorities at run time: "
		         "upgrade it, or set priority: in the config.");
		return MHD_HTTP_NOT_IMPLEMENTED;
	}
	st = status_get(a);
	known = st != NULL && find_named(st, "plugins", name) != NULL;
	json_decref(st);
	if (!known) {
		snprintf(err, errlen, "There is no plugin named %s.", name);
		return MHD_HTTP_NOT_FOUND;
	}
	if (priority < 0 || priority > 1000) {
		snprintf(err, errlen,
		         "A priority is a whole number from 0 to 1000 (lower "
		         "is tried first).");
		return MHD_HTTP_BAD_REQUEST;
	}
	if (a->svc->plugin_set_priority(a->self, name, (int)priority, err,
	                                errlen) != 0)
		return MHD_HTTP_CONFLICT;
	a->svc->log(a->self, HL_LOG_INFO,
	            "priority of plugin %s set to %lld by the admin (from %s)",
	            name, priority, from);
	return 0;
}

/* {"priority": N} -> N; -1 for any other body (N is checked later). */
static long long
body_priority(const struct buf *body)
{
	json_t *o, *p;
	long long v = -1;

	if (body->p == NULL || body->len == 0)
		return -1;
	o = json_loadb(body->p, body->len, JSON_REJECT_DUPLICATES, NULL);
	p = json_is_object(o) ? json_object_get(o, "priority") : NULL;
	if (json_is_integer(p) && json_integer_value(p) >= 0)
		v = (long long)json_integer_value(p);
	json_decref(o);
	return v;
}

static enum MHD_Result
api_priority(struct admin *a, struct MHD_Connection *c, const char *name,
             const struct buf *body)
{
	char err[512], from[INET6_ADDRSTRLEN];
	const struct sockaddr *sa;
	unsigned int status;
	long long priority = body_priority(body);
	json_t *st, *p;

	client_addr(c, from, sizeof from, &sa);
	status = set_priority(a, name, priority, from, err, sizeof err);
	if (status == MHD_HTTP_BAD_REQUEST)
		return reply_error(c, status,
		                   "the body must be {\"priority\": N}, N a "
		                   "whole number from 0 to 1000");
	if (status != 0)
		return reply_error(c, status, err);
	st = status_get(a);
	p = st ? find_named(st, "plugins", name) : NULL;
	p = json_pack("{s:s, s:I}", "name", name, "priority",
	              p ? json_integer_value(json_object_get(p, "priority"))
	                : (json_int_t)priority);
	json_decref(st);
	return reply_json(c, MHD_HTTP_OK, p);
}

static enum MHD_Result
form_priority(struct admin *a, struct MHD_Connection *c, struct session *s,
              const char *name, const struct buf *body)
{
	char err[512], from[INET6_ADDRSTRLEN], text[16], *end;
	const struct sockaddr *sa;
	long long priority = -1;

	client_addr(c, from, sizeof from, &sa);
	if (form_get(body->p, body->len, "priority", text, sizeof text) == 0 &&
	    text[0] >= '0' && text[0] <= '9') {
		errno = 0;
		priority = strtoll(text, &end, 10);
		if (*end != '\0' || errno != 0)
			priority = -1;
	}
	if (set_priority(a, name, priority, from, err, sizeof err) != 0)
		return back_to_dashboard(c, s, "%s", err);
	return back_to_dashboard(c, s, "The priority of %s is now %lld.", name,
	                         priority);
}

/* Ask the discovery plugins to look for every service now; what answers
 * comes into status_json's lan. 0, or -1 on an older core. */
static int
lan_refresh(struct admin *a, struct MHD_Connection *c)
{
	char from[INET6_ADDRSTRLEN];
	const struct sockaddr *sa;
	long long now;

	if (!a->caps.browse)
		return -1;
	now = hl_mono_ms();
	/* A double click, or a script in a loop, makes one search: the
	 * last one is still being answered. */
	if (a->last_browse_ms != 0 && now - a->last_browse_ms < BROWSE_GAP_MS)
		return 0;
	a->last_browse_ms = now;
	client_addr(c, from, sizeof from, &sa);
	a->svc->log(a->self, HL_LOG_DEBUG,
	            "LAN refresh asked by the admin (from %s)", from);
	a->svc->browse(a->self);
	return 0;
}

static enum MHD_Result
api_lan_refresh(struct admin *a, struct MHD_Connection *c)
{
	if (lan_refresh(a, c) != 0)
		return reply_error(
		    c, MHD_HTTP_NOT_IMPLEMENTED,
		    "this hlcore cannot ask its discovery plugins "
		    "to browse: upgrade it");
	return reply_json(c, MHD_HTTP_OK, json_pack("{s:b}", "ok", 1));
}

static enum MHD_Result
form_lan_refresh(struct admin *a, struct MHD_Connection *c, struct session *s)
{
	if (lan_refresh(a, c) != 0)
		return back_to_dashboard(c, s,
		                         "This hlcore cannot ask its discovery "
		                         "plugins to browse: upgrade it.");
	return back_to_dashboard(c, s,
	                         "Asked the discovery plugins to look for "
	                         "services on the LAN: reload in a moment to "
	                         "see what answered.");
}

static enum MHD_Result
dashboard(struct admin *a, struct MHD_Connection *c, struct session *s)
{
	json_t *st = status_get(a);
	struct buf b = {0};

	if (st == NULL)
		return reply_message(c, MHD_HTTP_SERVICE_UNAVAILABLE,
		                     "Not available", "hlcore gave no status.");
	page_dashboard(&b, st, s, "admin-web", &a->caps);
	s->flash[0] = '\0';
	json_decref(st);
	return reply_html(c, MHD_HTTP_OK, &b, NULL, 0);
}

static enum MHD_Result
qr(struct admin *a, struct MHD_Connection *c, const char *file)
{
	char name[128];
	size_t n = strlen(file);
	json_t *st, *svc;
	struct buf b = {0};
	int rc;

	if (n < 5 || n - 4 >= sizeof name || strcmp(file + n - 4, ".svg") != 0)
		return reply_error(c, MHD_HTTP_NOT_FOUND, "not found");
	memcpy(name, file, n - 4);
	name[n - 4] = '\0';
	st = status_get(a);
	svc = st ? find_named(st, "services", name) : NULL;
	if (svc == NULL) {
		json_decref(st);
		return reply_error(c, MHD_HTTP_NOT_FOUND, "no such service");
	}
	rc = qr_svg(&b, json_string_value(json_object_get(svc, "url"))
	                    ? json_string_value(json_object_get(svc, "url"))
	                    : "");
	json_decref(st);
	if (rc != 0) {
		buf_free(&b);
		return reply_error(
		    c, MHD_HTTP_NOT_IMPLEMENTED,
		    "this build has no QR encoder (libqrencode)");
	}
	return reply_buf(c, MHD_HTTP_OK, "image/svg+xml", &b, NULL, 0);
}

/* ---- routing ---- */

static enum MHD_Result
route(struct admin *a, struct MHD_Connection *c, const char *url,
      const char *method, struct req *r)
{
	int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	int post = strcmp(method, "POST") == 0;
	struct session *s;
	enum who w;
	char name[64];
	enum plugin_action act;

	/* What anyone may see: the static files and the login form. */
	if (get && strcmp(url, "/static/admin.css") == 0)
		return reply(c, MHD_HTTP_OK, "text/css; charset=utf-8",
		             (void *)asset_admin_css, asset_admin_css_len,
		             MHD_RESPMEM_PERSISTENT, NULL, 0);
	if (get && strcmp(url, "/static/admin.js") == 0)
		return reply(c, MHD_HTTP_OK, "text/javascript; charset=utf-8",
		             (void *)asset_admin_js, asset_admin_js_len,
		             MHD_RESPMEM_PERSISTENT, NULL, 0);
	if (!get && !post)
		return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		                   "method not allowed");
	w = who_asks(a, c, &s);
	if (strcmp(url, "/login") == 0) {
		if (post)
			return login_post(a, c, r);
		if (w == SESSION)
			return redirect(c, "/", NULL, 0);
		/* Keep the form's cookie: a second tab must not void the
		 * first one's form. */
		return login_form(a, c, MHD_HTTP_OK, NULL,
		                  MHD_lookup_connection_value(
		                      c, MHD_COOKIE_KIND, PRE_COOKIE));
	}

	/* Everything else needs credentials, and shows nothing without. */
	if (w == NOBODY && get && strncmp(url, "/api/", 5) != 0 &&
	    strncmp(url, "/qr/", 4) != 0)
		return redirect(c, "/login", NULL, 0);
	if (w == NOBODY || w == BAD_BEARER)
		return reply_401(c);

	if (strncmp(url, "/api/", 5) == 0) {
		if (get && strcmp(url, "/api/status") == 0)
			return reply_json(c, MHD_HTTP_OK, status_get(a));
		if (post && w == SESSION &&
		    (cross_site(c) ||
		     !auth_csrf_ok(s, header(c, "X-CSRF-Token"))))
			return reply_error(
			    c, MHD_HTTP_FORBIDDEN,
			    "a session needs the X-CSRF-Token header "
			    "(or use Authorization: Bearer)");
		if (post && parse_plugin_route(url, "/api/plugins/", name,
		                               sizeof name, &act) == 0)
			return act == ACT_PRIORITY
			           ? api_priority(a, c, name, &r->body)
			           : api_toggle(a, c, name, act == ACT_ENABLE);
		if (post && strcmp(url, "/api/lan/refresh") == 0)
			return api_lan_refresh(a, c);
		return reply_error(c, MHD_HTTP_NOT_FOUND, "no such API route");
	}
	if (get && strncmp(url, "/qr/", 4) == 0)
		return qr(a, c, url + 4);
	if (get && strcmp(url, "/") == 0) {
		if (w == SESSION)
			return dashboard(a, c, s);
		return reply_message(
		    c, MHD_HTTP_OK, "Hardline admin",
		    "The dashboard is for the browser: log in at /login. "
		    "Scripts use /api/status.");
	}
	if (post && w == SESSION) {
		char csrf[SESSION_ID_LEN + 1];
		if (cross_site(c) ||
		    form_get(r->body.p, r->body.len, "csrf", csrf,
		             sizeof csrf) != 0 ||
		    !auth_csrf_ok(s, csrf))
			return reply_message(
			    c, MHD_HTTP_FORBIDDEN, "Form refused",
			    "The form was stale or came from another site "
			    "(CSRF check): reload the dashboard and try "
			    "again.");
		if (strcmp(url, "/logout") == 0) {
			struct hdr h[1] = {{"Set-Cookie", SESSION_COOKIE
			                    "=; Max-Age=0; HttpOnly; "
			                    "SameSite=Strict; Path=/"}};
			auth_session_drop(s);
			return redirect(c, "/login", h, 1);
		}
		if (parse_plugin_route(url, "/plugins/", name, sizeof name,
		                       &act) == 0)
			return act == ACT_PRIORITY
			           ? form_priority(a, c, s, name, &r->body)
			           : form_toggle(a, c, s, name,
			                         act == ACT_ENABLE);
		if (strcmp(url, "/lan/refresh") == 0)
			return form_lan_refresh(a, c, s);
	}
	return reply_message(c, MHD_HTTP_NOT_FOUND, "Not found",
	                     "There is no such page.");
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url,
           const char *method, const char *version HL_UNUSED,
           const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct admin *a = cls;
	struct req *r = *con_cls;

	if (r == NULL) {
		/* The head has arrived; refuse a body too big before it
		 * comes. */
		const char *cl = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
		r = calloc(1, sizeof *r);
		if (r == NULL)
			return MHD_NO;
		*con_cls = r;
		if (cl != NULL && strtoull(cl, NULL, 10) > BODY_MAX)
			return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
			                   "the request body is too large");
		return MHD_YES;
	}
	if (*upload_size > 0) {
		/* A body without a length that grows too big: hang up. */
		if (r->body.len + *upload_size > BODY_MAX)
			return MHD_NO;
		buf_add(&r->body, upload_data, *upload_size);
		*upload_size = 0;
		return r->body.oom ? MHD_NO : MHD_YES;
	}
	return route(a, c, url, method, r);
}

static void
on_completed(void *cls HL_UNUSED, struct MHD_Connection *c HL_UNUSED,
             void **con_cls, enum MHD_RequestTerminationCode toe HL_UNUSED)
{
	struct req *r = *con_cls;

	if (r != NULL) {
		if (r->body.p != NULL)
			sodium_memzero(r->body.p, r->body.cap);
		buf_free(&r->body);
		free(r);
		*con_cls = NULL;
	}
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct admin *a = cls;
	char line[512];
	size_t n;

	vsnprintf(line, sizeof line, fmt, ap);
	/* MHD's words for accept() failing on EMFILE, ENFILE or ENOMEM. */
	if (strstr(line, "resource limit") != NULL)
		a->accept_failed = 1;
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	a->svc->log(a->self, HL_LOG_DEBUG, "libmicrohttpd: %s", line);
}

/* ---- on the core's loop ---- */

static void
mhd_schedule(struct admin *a)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(a->mhd, &ms) == MHD_YES) {
		struct timeval tv = {(time_t)(ms / 1000),
		                     (suseconds_t)(ms % 1000) * 1000};
		evtimer_add(a->timer_ev, &tv);
	} else {
		evtimer_del(a->timer_ev);
	}
}

static unsigned
mhd_connections(struct admin *a)
{
	const union MHD_DaemonInfo *info =
	    MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

	return info ? info->num_connections : 0;
}

static void
mhd_ready_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                   void *arg)
{
	struct admin *a = arg;
	unsigned before, after;

	a->accept_failed = 0;
	before = mhd_connections(a);
	MHD_run(a->mhd);
	after = mhd_connections(a);
	/* MHD puts its listening socket back in its epoll set (taken out at
	 * the connection limit or on EMFILE) only at the start of a run:
	 * when the last connections have just closed, no event would ever
	 * call that run. */
	for (int i = 0; i < 4 && after < before && !a->accept_failed; i++) {
		before = after;
		MHD_run(a->mhd);
		after = mhd_connections(a);
	}
	if (a->accept_failed && after == 0) {
		/* No connection of its own to wait for: MHD would try
		 * accept() again at once, forever. */
		a->pause_ms =
		    hl_pause_next(a->pause_ms, PAUSE_MIN_MS, PAUSE_MAX_MS);
		a->pauses++;
		event_del(a->ready_ev);
		evtimer_del(a->timer_ev);
		hl_evtimer_add_ms(a->pause_ev, a->pause_ms);
		a->svc->log(a->self, HL_LOG_WARN,
		            "out of descriptors: accepting no connection for "
		            "%d ms (pause %lu)",
		            a->pause_ms, a->pauses);
		return;
	}
	if (!a->accept_failed && a->pauses > 0 && after > 0) {
		a->svc->log(a->self, HL_LOG_INFO,
		            "accepting connections again after %lu pause%s "
		            "for descriptors",
		            a->pauses, a->pauses == 1 ? "" : "s");
		a->pauses = 0;
		a->pause_ms = 0;
	}
	mhd_schedule(a);
}

static void
mhd_resume_callback(evutil_socket_t fd, short what, void *arg)
{
	struct admin *a = arg;

	event_add(a->ready_ev, NULL);
	mhd_ready_callback(fd, what, a);
}

/* The connection limit: CONN_MAX, or a quarter of the descriptors this
 * process may open when that is less, so that the panel alone never
 * takes them all. */
static unsigned
conn_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur / 4 < CONN_MAX)
		return rl.rlim_cur / 4 > 4 ? (unsigned)(rl.rlim_cur / 4) : 4;
	return CONN_MAX;
}

static void
admin_free(struct admin *a)
{
	hl_event_free(&a->ready_ev);
	hl_event_free(&a->timer_ev);
	hl_event_free(&a->pause_ev);
	if (a->mhd != NULL)
		MHD_stop_daemon(a->mhd); /* closes the listening socket */
	auth_clear(&a->auth);
	free(a);
}

static int
read_conf(const struct hl_services *svc, struct hl_plugin *self,
          const struct hl_conf *conf, char *listen, size_t len,
          struct sockaddr_storage *ss, socklen_t *sslen)
{
	static const char *const keys[] = {"listen", NULL};
	const struct hl_conf *node;
	const char *s = DEFAULT_LISTEN;

	if (svc->conf_check_keys(self, conf, keys) != 0)
		return -1;
	node = svc->conf_get(conf, "listen");
	if (node != NULL) {
		s = svc->conf_str(node);
		if (s == NULL || parse_listen(s, ss, sslen) != 0) {
			svc->conf_error(
			    self, node,
			    "listen must be \"ip:port\" or \"[ipv6]:port\", "
			    "e.g. \"127.0.0.1:7010\"");
			return -1;
		}
	} else {
		parse_listen(s, ss, sslen);
	}
	snprintf(listen, len, "%s", s);
	return 0;
}

static int
admin_validate(const struct hl_services *svc, struct hl_plugin *self,
               const struct hl_conf *conf)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char listen[128];

	return read_conf(svc, self, conf, listen, sizeof listen, &ss, &len);
}

/*
 * Whether svc->log takes HL_LOG_PRIVATE. No HL_HAS can tell of a flag,
 * but it came in the same 1.1 change as browse and plugin_set_priority:
 * a table that reaches browse has it. An older core would drop a line
 * with the flag (its level looks higher than any), so there the line
 * says where the token is instead.
 */
static int
private_log(const struct hl_services *svc)
{
	return svc->size >=
	       offsetof(struct hl_services, browse) + sizeof svc->browse;
}

static int
admin_init(const struct hl_services *svc, struct hl_plugin *self,
           const struct hl_conf *conf, void **state)
{
	struct admin *a;
	struct sockaddr_storage ss;
	socklen_t sslen;
	const union MHD_DaemonInfo *info;
	const char *state_dir;
	int fd, created;

	if (!HL_HAS(svc, status_json) || !HL_HAS(svc, plugin_set_enabled) ||
	    !HL_HAS(svc, free) || !HL_HAS(svc, state_dir)) {
		return hl_core_lacks(svc, self,
		                     "the control services of ABI 1.1");
	}
	HL_STATE_NEW(a, svc, self);
	if (a == NULL)
		return -1;
	a->caps.priority = HL_HAS(svc, plugin_set_priority);
	a->caps.browse = HL_HAS(svc, browse);
	if (read_conf(svc, self, conf, a->listen, sizeof a->listen, &ss,
	              &sslen) != 0)
		goto fail;
	state_dir = svc->state_dir(self);
	if (state_dir == NULL ||
	    auth_load_token(&a->auth, svc, self, state_dir, &created) != 0)
		goto fail;
	fd = open_listener(a, &ss, sslen);
	if (fd < 0)
		goto fail;
	/* No internal-thread flag: MHD runs only when the loop calls
	 * MHD_run, on the loop thread. */
	a->mhd = MHD_start_daemon(
	    MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, a,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, a, MHD_OPTION_LISTEN_SOCKET,
	    (MHD_socket)fd, MHD_OPTION_CONNECTION_LIMIT, conn_limit(),
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)CONN_IDLE_SEC,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_END);
	if (a->mhd == NULL) {
		svc->log(self, HL_LOG_ERROR,
		         "libmicrohttpd would not start on %s", a->listen);
		close(fd);
		goto fail;
	}
	info = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL || info->epoll_fd < 0) {
		svc->log(self, HL_LOG_ERROR,
		         "libmicrohttpd gave no epoll descriptor");
		goto fail;
	}
	a->ready_ev = event_new(a->base, info->epoll_fd, EV_READ | EV_PERSIST,
	                        mhd_ready_callback, a);
	a->timer_ev = evtimer_new(a->base, mhd_ready_callback, a);
	a->pause_ev = evtimer_new(a->base, mhd_resume_callback, a);
	if (a->ready_ev == NULL || a->timer_ev == NULL || a->pause_ev == NULL ||
	    event_add(a->ready_ev, NULL) != 0)
		goto fail;
	mhd_schedule(a);

	panel_url(&ss, a->url, sizeof a->url);
	if (!hl_sockaddr_is_loopback((const struct sockaddr *)&ss))
		svc->log(
		    self, HL_LOG_WARN,
		    "listening on %s, beyond this machine: anyone who reaches "
		    "it can try to log in, over plain HTTP; use "
		    "127.0.0.1:7010 (and an SSH tunnel) unless you mean it",
		    a->listen);
	if (created && private_log(svc))
		/* The one secret ever logged: once, when it is born, so
		 * that the admin can log in; to the log output only, not
		 * to the recent log that status_json (every page) shows. */
		svc->log(
		    self, HL_LOG_INFO | HL_LOG_PRIVATE,
		    "first start: open %s and log in with the admin token %s "
		    "(kept in %s/admin.token, mode 0600)",
		    a->url, a->auth.token, state_dir);
	else if (created)
		svc->log(self, HL_LOG_INFO,
		         "first start: open %s and log in with the admin token "
		         "in %s/admin.token (mode 0600)",
		         a->url, state_dir);
	else
		svc->log(self, HL_LOG_INFO,
		         "admin panel at %s (log in with the token in "
		         "%s/admin.token)",
		         a->url, state_dir);
	*state = a;
	return 0;
fail:
	admin_free(a);
	return -1;
}

static void
admin_fini(void *state)
{
	admin_free(state);
}

HL_PLUGIN(HL_KIND_CONTROL, .name = "admin-web", .version = "0.1.0",
          .description = "the web admin panel and its JSON API",
          .default_priority = 100, .init = admin_init, .fini = admin_fini,
          .validate = admin_validate);
