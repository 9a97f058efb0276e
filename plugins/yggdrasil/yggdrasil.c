/*
 * yggdrasil: an address source. It finds this node's Yggdrasil mesh
 * address (200::/7) through the Yggdrasil admin socket (getSelf), or, when
 * the socket does not answer, among the interface addresses, and adds
 * "[addr]:port" to WANHosts for every listener that takes IPv6 on all
 * addresses ("[::]:port"), so that clients can reach this node over the
 * mesh. It checks again every `interval` seconds and follows changes (a
 * restarted Yggdrasil with a new key, Yggdrasil stopped).
 *
 * Everything runs on the loop thread without blocking: the admin socket is
 * a bufferevent, its answer bounded in size (64 KiB) and time (2 s), and
 * the interface scan is one getifaddrs() call.
 *
 * Config (plugins: yggdrasil:):
 *   admin: "unix:///var/run/yggdrasil/yggdrasil.sock"   or
 * "tcp://127.0.0.1:9001", or "none" (interfaces only); default: Debian's
 * socket, then the upstream default unix:///var/run/yggdrasil.sock interval: 10
 * seconds between checks
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <jansson.h>

/* Uses nothing newer than ABI 1.0, so 1.0 cores load it too. */
#define HL_PLUGIN_ABI_MINOR 0
#include "hardline/plugin.h"
#include "hardline/evutil.h"
#include "hardline/util.h"

#define ANSWER_MAX (64 * 1024)
#define ANSWER_TIMEOUT_SEC 2
#define MAX_LISTENERS 16
#define WANHOST_MAX 64

static const char *const default_admin[] = {
    "unix:///var/run/yggdrasil/yggdrasil.sock", /* Debian's */
    "unix:///var/run/yggdrasil.sock", /* upstream's */
    NULL,
};

struct listener {
	struct sockaddr_in6 sa; /* [::] or one address */
	char reported[WANHOST_MAX];
	struct listener *next;
};

struct ygg {
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct event_base *base;
	char admin[256]; /* configured endpoint; "" = the defaults */
	int admin_off;
	int interval;
	struct event *timer;
	struct bufferevent *bev; /* the admin query in flight */
	const char *bev_endpoint;
	struct listener *listeners;
	char addr[INET6_ADDRSTRLEN]; /* the address advertised now, or "" */
	char last_problem[512];
	int said_none; /* "no address found" was logged */
};

/* ---- small helpers ---- */

static int
is_ygg(const struct in6_addr *a)
{
	return (a->s6_addr[0] & 0xfe) == 0x02;
}

/* A problem: a warning the first time, debug while it stays the same. */
static void problem(struct ygg *y, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
problem(struct ygg *y, const char *fmt, ...)
{
	char text[sizeof y->last_problem];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	if (strcmp(text, y->last_problem) == 0) {
		y->svc->log(y->self, HL_LOG_DEBUG, "still: %s", text);
		return;
	}
	snprintf(y->last_problem, sizeof y->last_problem, "%s", text);
	y->svc->log(y->self, HL_LOG_WARN, "%s", text);
}

/*
 * The interface addresses in 200::/7: whether `want` (when not NULL) is
 * one of them, and in found the best one, the node's own address (02xx)
 * before a subnet address (03xx). Returns 1 when want is there, else 0.
 */
static int
scan_interfaces(const struct in6_addr *want, char *found, size_t foundlen,
                char *ifname, size_t iflen)
{
	struct ifaddrs *ifs, *i;
	int have_want = 0, best = 0;

	found[0] = '\0';
	if (getifaddrs(&ifs) != 0)
		return 0;
	for (i = ifs; i != NULL; i = i->ifa_next) {
		const struct sockaddr_in6 *s6;
		int rank;

		if (i->ifa_addr == NULL || i->ifa_addr->sa_family != AF_INET6 ||
		    !(i->ifa_flags & IFF_UP))
			continue;
		s6 = (const struct sockaddr_in6 *)i->ifa_addr;
		if (!is_ygg(&s6->sin6_addr))
			continue;
		if (want != NULL &&
		    memcmp(want, &s6->sin6_addr, sizeof *want) == 0)
			have_want = 1;
		rank = s6->sin6_addr.s6_addr[0] == 0x02 ? 2 : 1;
		if (rank > best) {
			best = rank;
			inet_ntop(AF_INET6, &s6->sin6_addr, found,
			          (socklen_t)foundlen);
			snprintf(ifname, iflen, "%s", i->ifa_name);
		}
	}
	freeifaddrs(ifs);
	return have_want;
}

/* ---- WANHosts ---- */

static void
listener_report(struct ygg *y, struct listener *l)
{
	char want[WANHOST_MAX] = "";
	struct in6_addr a;

	if (y->addr[0] != '\0' && inet_pton(AF_INET6, y->addr, &a) == 1 &&
	    (IN6_IS_ADDR_UNSPECIFIED(&l->sa.sin6_addr) ||
	     memcmp(&a, &l->sa.sin6_addr, sizeof a) == 0))
		snprintf(want, sizeof want, "[%s]:%u", y->addr,
		         ntohs(l->sa.sin6_port));
	if (strcmp(want, l->reported) == 0)
		return;
	if (l->reported[0] != '\0')
		y->svc->wanhost_remove(y->self, l->reported);
	snprintf(l->reported, sizeof l->reported, "%s", want);
	if (want[0] != '\0')
		y->svc->wanhost_add(y->self, want);
}

static void
set_address(struct ygg *y, const char *addr, const char *source)
{
	if (addr[0] == '\0' && y->addr[0] == '\0' && !y->said_none) {
		y->said_none = 1;
		y->svc->log(
		    y->self, HL_LOG_WARN,
		    "no Yggdrasil address found (%s, and no interface has a "
		    "200::/7 address): is Yggdrasil running? Checking again "
		    "every %d s",
		    source, y->interval);
	}
	if (strcmp(addr, y->addr) == 0)
		return;
	if (y->addr[0] == '\0')
		y->svc->log(y->self, HL_LOG_INFO, "mesh address %s (from %s)",
		            addr, source);
	else if (addr[0] != '\0')
		y->svc->log(y->self, HL_LOG_INFO,
		            "mesh address changed from %s to %s (from %s)",
		            y->addr, addr, source);
	else
		y->svc->log(
		    y->self, HL_LOG_WARN,
		    "no Yggdrasil address any more (was %s): is Yggdrasil "
		    "running?",
		    y->addr);
	snprintf(y->addr, sizeof y->addr, "%s", addr);
	for (struct listener *l = y->listeners; l != NULL; l = l->next)
		listener_report(y, l);
}

/*
 * The end of a check. admin_addr is what the admin socket said (NULL when
 * it did not answer; why says why, NULL when it is off or absent).
 */
static void
check_done(struct ygg *y, const char *admin_addr, const char *endpoint,
           const char *why)
{
	char found[INET6_ADDRSTRLEN], ifname[IF_NAMESIZE + 1] = "", source[160];
	struct in6_addr a;

	if (admin_addr != NULL) {
		if (inet_pton(AF_INET6, admin_addr, &a) != 1 || !is_ygg(&a)) {
			problem(y,
			        "the admin socket %s answered an address "
			        "that is not in 200::/7 (\"%.64s\"); "
			        "using interface addresses",
			        endpoint, admin_addr);
		} else if (!scan_interfaces(&a, found, sizeof found, ifname,
		                            sizeof ifname)) {
			problem(y,
			        "Yggdrasil (%s) says its address is %s, "
			        "but no interface here has it (IfName: "
			        "none? another network namespace?); using "
			        "interface addresses",
			        endpoint, admin_addr);
		} else {
			y->last_problem[0] = '\0';
			inet_ntop(AF_INET6, &a, found, sizeof found);
			set_address(y, found, "the admin socket");
			return;
		}
	} else if (why != NULL) {
		problem(y,
		        "the admin socket %s: %s; using interface "
		        "addresses",
		        endpoint, why);
	}
	scan_interfaces(NULL, found, sizeof found, ifname, sizeof ifname);
	if (found[0] != '\0')
		snprintf(source, sizeof source, "interface %s", ifname);
	else if (y->admin_off)
		snprintf(source, sizeof source, "admin socket off");
	else if (admin_addr == NULL && why == NULL)
		snprintf(source, sizeof source, "no admin socket at %s or %s",
		         default_admin[0] + 7, default_admin[1] + 7);
	else
		snprintf(source, sizeof source,
		         "the admin socket did not "
		         "help");
	set_address(y, found, source);
}

/* ---- the admin socket ---- */

static void
query_free(struct ygg *y)
{
	hl_bufferevent_free(&y->bev);
}

/*
 * Parse the admin socket's answer: 1 done (*addr set, or *why), 0 need
 * more bytes (only when !final).
 */
static int
parse_answer(struct evbuffer *in, int final, char *addr, size_t addrlen,
             char *why, size_t whylen)
{
	size_t len = evbuffer_get_length(in);
	const char *data = (const char *)evbuffer_pullup(in, -1);
	json_t *root, *v;
	json_error_t err;

	addr[0] = '\0';
	if (len == 0) {
		if (!final)
			return 0;
		snprintf(why, whylen, "closed without an answer");
		return 1;
	}
	root = json_loadb(data, len, 0, &err);
	if (root == NULL) {
		if (!final)
			return 0;
		snprintf(why, whylen, "the answer is not JSON (%s)", err.text);
		return 1;
	}
	v = json_object_get(root, "status");
	if (json_is_string(v) && strcmp(json_string_value(v), "success") != 0) {
		json_t *e = json_object_get(root, "error");
		snprintf(why, whylen, "getSelf failed: %.100s",
		         json_is_string(e) ? json_string_value(e)
		                           : json_string_value(v));
	} else {
		v = json_object_get(json_object_get(root, "response"),
		                    "address");
		if (json_is_string(v))
			snprintf(addr, addrlen, "%s", json_string_value(v));
		else
			snprintf(why, whylen,
			         "the answer has no response.address");
	}
	json_decref(root);
	return 1;
}

static void
query_finish(struct ygg *y, int final)
{
	char addr[128], why[256] = "";
	const char *endpoint = y->bev_endpoint;

	if (evbuffer_get_length(bufferevent_get_input(y->bev)) > ANSWER_MAX) {
		query_free(y);
		check_done(y, NULL, endpoint, "the answer is too long");
		return;
	}
	if (!parse_answer(bufferevent_get_input(y->bev), final, addr,
	                  sizeof addr, why, sizeof why))
		return;
	query_free(y);
	check_done(y, addr[0] ? addr : NULL, endpoint, addr[0] ? NULL : why);
}

static void
query_read_callback(struct bufferevent *bev HL_UNUSED, void *arg)
{
	query_finish(arg, 0);
}

static void
query_event_callback(struct bufferevent *bev HL_UNUSED, short what, void *arg)
{
	struct ygg *y = arg;
	const char *endpoint = y->bev_endpoint;
	char why[256];
	int e = EVUTIL_SOCKET_ERROR();

	if (what & BEV_EVENT_CONNECTED)
		return;
	if (what & BEV_EVENT_EOF) {
		query_finish(y, 1);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		snprintf(why, sizeof why, "no answer within %d s",
		         ANSWER_TIMEOUT_SEC);
	else
		snprintf(why, sizeof why, "%s",
		         evutil_socket_error_to_string(e));
	query_free(y);
	check_done(y, NULL, endpoint, why);
}

/* Parse an admin endpoint into sa; 0, or -1. */
static int
parse_endpoint(const char *ep, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof *ss);
	if (strncmp(ep, "unix://", 7) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		const char *path = ep + 7;
		if (path[0] != '/' || strlen(path) >= sizeof sun->sun_path)
			return -1;
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, path, strlen(path) + 1);
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
		                   strlen(path) + 1);
		return 0;
	}
	if (strncmp(ep, "tcp://", 6) == 0) {
		char buf[300];
		int sl = sizeof *ss;
		const char *hp = ep + 6;
		/* Yggdrasil's own default on some systems; no DNS here. */
		if (strncmp(hp, "localhost:", 10) == 0) {
			snprintf(buf, sizeof buf, "127.0.0.1:%s", hp + 10);
			hp = buf;
		}
		if (evutil_parse_sockaddr_port(hp, (struct sockaddr *)ss,
		                               &sl) != 0)
			return -1;
		if (((struct sockaddr_in *)ss)->sin_port == 0)
			return -1;
		*len = (socklen_t)sl;
		return 0;
	}
	return -1;
}

static void
check_start(struct ygg *y)
{
	static const char request[] = "{\"request\":\"getSelf\"}\n";
	struct timeval tv = {ANSWER_TIMEOUT_SEC, 0};
	const char *ep = NULL;
	struct sockaddr_storage ss;
	socklen_t len;

	if (y->bev != NULL)
		return; /* the last one is still running (bounded by 2 s) */
	if (y->admin_off) {
		check_done(y, NULL, "", NULL);
		return;
	}
	if (y->admin[0] != '\0') {
		ep = y->admin;
	} else {
		/* The defaults: the first socket that exists. */
		struct stat st;
		for (size_t i = 0; default_admin[i] != NULL && ep == NULL; i++)
			if (stat(default_admin[i] + 7, &st) == 0)
				ep = default_admin[i];
		if (ep == NULL) {
			check_done(y, NULL, "", NULL);
			return;
		}
	}
	if (parse_endpoint(ep, &ss, &len) != 0) {
		check_done(y, NULL, ep, "not an endpoint");
		return;
	}
	y->bev_endpoint = ep;
	y->bev = bufferevent_socket_new(
	    y->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (y->bev == NULL) {
		check_done(y, NULL, ep, "out of memory");
		return;
	}
	bufferevent_setcb(y->bev, query_read_callback, NULL,
	                  query_event_callback, y);
	bufferevent_setwatermark(y->bev, EV_READ, 0, ANSWER_MAX + 1);
	bufferevent_set_timeouts(y->bev, &tv, &tv);
	if (bufferevent_socket_connect(y->bev, (struct sockaddr *)&ss,
	                               (int)len) != 0) {
		char why[256];
		snprintf(why, sizeof why, "%s",
		         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		query_free(y);
		check_done(y, NULL, ep, why);
		return;
	}
	bufferevent_write(y->bev, request, sizeof request - 1);
	bufferevent_enable(y->bev, EV_READ | EV_WRITE);
}

static void
timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	check_start(arg);
}

/* ---- listeners ---- */

static void
ygg_port_event(void *state, const struct sockaddr *sa, socklen_t salen,
               int open)
{
	struct ygg *y = state;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	struct listener *l, **pp;
	size_t n = 0;

	/* Only IPv6 listeners can take mesh connections: "[::]:port" (all
	 * addresses) or the mesh address itself. */
	if (sa->sa_family == AF_INET && open) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
		if (s4->sin_addr.s_addr == htonl(INADDR_ANY))
			y->svc->log(
			    y->self, HL_LOG_INFO,
			    "the listener on 0.0.0.0:%u takes no IPv6: listen "
			    "on \"[::]:%u\" to be reachable over the mesh",
			    ntohs(s4->sin_port), ntohs(s4->sin_port));
		return;
	}
	if (sa->sa_family != AF_INET6 || salen < sizeof *s6 ||
	    !(IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ||
	      is_ygg(&s6->sin6_addr)))
		return;
	for (pp = &y->listeners; *pp != NULL; pp = &(*pp)->next, n++) {
		l = *pp;
		if (l->sa.sin6_port == s6->sin6_port &&
		    memcmp(&l->sa.sin6_addr, &s6->sin6_addr,
		           sizeof l->sa.sin6_addr) == 0)
			break;
	}
	if (!open) {
		if ((l = *pp) == NULL)
			return;
		if (l->reported[0] != '\0')
			y->svc->wanhost_remove(y->self, l->reported);
		*pp = l->next;
		free(l);
		return;
	}
	if (*pp != NULL || n >= MAX_LISTENERS ||
	    (l = calloc(1, sizeof *l)) == NULL)
		return;
	memcpy(&l->sa, s6, sizeof l->sa);
	*pp = l;
	listener_report(y, l);
}

/* ---- config ---- */

static int
read_conf(const struct hl_services *svc, struct hl_plugin *self,
          const struct hl_conf *conf, struct ygg *y)
{
	static const char *const allowed[] = {"admin", "interval", NULL};
	const struct hl_conf *n;
	int bad = 0;

	y->interval = 10;
	if (conf == NULL)
		return 0;
	bad += svc->conf_check_keys(self, conf, allowed);
	if (svc->conf_type(conf) != HL_CONF_MAP)
		return -1;
	n = svc->conf_get(conf, "admin");
	if (n != NULL) {
		const char *s = svc->conf_str(n);
		struct sockaddr_storage ss;
		socklen_t len;

		if (s != NULL && strcmp(s, "none") == 0) {
			y->admin_off = 1;
		} else if (s == NULL || strlen(s) >= sizeof y->admin ||
		           parse_endpoint(s, &ss, &len) != 0) {
			svc->conf_error(
			    self, n,
			    "admin: expected \"unix:///path/to/socket\", "
			    "\"tcp://127.0.0.1:9001\" or \"none\"");
			bad++;
		} else {
			snprintf(y->admin, sizeof y->admin, "%s", s);
		}
	}
	/* Seconds between two looks for the address. */
	if (hl_conf_int(svc, self, conf, "interval", 1, 3600, &y->interval) !=
	    0)
		bad++;
	return bad ? -1 : 0;
}

static int
ygg_validate(const struct hl_services *svc, struct hl_plugin *self,
             const struct hl_conf *conf)
{
	struct ygg y;

	memset(&y, 0, sizeof y);
	return read_conf(svc, self, conf, &y);
}

/* ---- init and fini ---- */

static int
ygg_init(const struct hl_services *svc, struct hl_plugin *self,
         const struct hl_conf *conf, void **state)
{
	struct ygg *y;
	struct timeval tv;

	HL_STATE_NEW(y, svc, self);
	if (y == NULL)
		return -1;
	if (read_conf(svc, self, conf, y) != 0) {
		free(y);
		return -1;
	}
	y->timer = event_new(y->base, -1, EV_PERSIST, timer_callback, y);
	if (y->timer == NULL) {
		free(y);
		return -1;
	}
	tv.tv_sec = y->interval;
	tv.tv_usec = 0;
	evtimer_add(y->timer, &tv);
	/* The first check at once, from the loop. */
	event_active(y->timer, EV_TIMEOUT, 0);
	*state = y;
	return 0;
}

static void
ygg_fini(void *state)
{
	struct ygg *y = state;

	query_free(y);
	event_free(y->timer);
	while (y->listeners != NULL) {
		struct listener *l = y->listeners;
		y->listeners = l->next;
		if (l->reported[0] != '\0')
			y->svc->wanhost_remove(y->self, l->reported);
		free(l);
	}
	free(y);
}

static const struct hl_traversal_ops ygg_traversal = {
    .size = sizeof(struct hl_traversal_ops),
    .port_event = ygg_port_event,
};

HL_PLUGIN(HL_KIND_TRAVERSAL, .name = "yggdrasil", .version = "0.1.0",
          .description = "adds this node's Yggdrasil mesh address to WANHosts",
          .default_priority = 60, .init = ygg_init, .fini = ygg_fini,
          .validate = ygg_validate, .traversal = &ygg_traversal);
