/*
 * status.c: the node's state as one JSON object, for control plugins (the
 * admin panel) through svc->status_json. The README documents the fields.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "daemon.h"

/* The length of the well-formed UTF-8 character at p (RFC 3629: no
 * overlong forms, no surrogates, nothing past U+10FFFF), or 0. */
static size_t
utf8_char_len(const unsigned char *p, size_t avail)
{
	size_t n;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return n;
}

static int
utf8_valid(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t k = utf8_char_len(p + i, len - i);
		if (k == 0)
			return 0;
		i += k;
	}
	return 1;
}

/* Text for JSON: json_string() refuses bytes that are not UTF-8 (a title
 * from a LAN announce, a log line cut in the middle of a character), and
 * the entry holding it would vanish from the status. Each such byte
 * becomes U+FFFD instead. Never NULL unless out of memory. */
static json_t *
text(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = strlen((const char *)p), n = 0;
	json_t *j;
	char *fixed;

	if (utf8_valid(p, len))
		return json_stringn((const char *)p, len);
	fixed = malloc(len * 3 + 1);
	if (fixed == NULL)
		return NULL;
	for (size_t i = 0; i < len;) {
		size_t k = utf8_char_len(p + i, len - i);
		if (k == 0) {
			memcpy(fixed + n, "\xef\xbf\xbd", 3);
			n += 3;
			i++;
		} else {
			memcpy(fixed + n, p + i, k);
			n += k;
			i += k;
		}
	}
	j = json_stringn(fixed, n);
	free(fixed);
	return j;
}

static json_t *
kinds_json(uint32_t kinds)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} names[] = {{HL_KIND_DISCOVERY, "discovery"},
	             {HL_KIND_TRAVERSAL, "traversal"},
	             {HL_KIND_TRANSPORT, "transport"},
	             {HL_KIND_CONTROL, "control"}};
	json_t *a = json_array();

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (kinds & names[i].bit)
			json_array_append_new(a, json_string(names[i].name));
	return a;
}

/* "relayed" or "direct": an incoming tunnel through a relay has its peer
 * marked so (svc->incoming_flags, which the per-address limits count
 * apart); an outgoing one was told by its transport (svc->tunnel_path,
 * HL__ROUTE_RELAYED from the router). */
static const char *
path_of(const struct hl__tunnel_info *info)
{
	if (info->outgoing)
		return info->relayed ? "relayed" : "direct";
	return strncmp(info->peer, "relayed ", 8) == 0 ? "relayed" : "direct";
}

static json_t *
plugin_status_json(const struct hl_plugin *p)
{
	json_t *o = json_object();

	for (size_t i = 0; o != NULL && i < p->nstatus; i++)
		json_object_set_new(o, p->status[i].key,
		                    text(p->status[i].value));
	return o;
}

static void
add_connection(void *arg, const struct hl__tunnel_info *info, size_t a_to_b,
               size_t b_to_a)
{
	json_t *a = arg;

	json_array_append_new(
	    a, json_pack("{s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:I, s:I, s:I}",
	                 "direction", info->outgoing ? "out" : "in", "path",
	                 path_of(info), "service", text(info->service),
	                 "keyhash", info->keyhash, "peer", text(info->peer),
	                 "via", text(info->via), "origin", text(info->origin),
	                 /* a is the browser (out) or the client node (in): what
	                  * it sent is "up". */
	                 "bytes_up", (json_int_t)a_to_b, "bytes_down",
	                 (json_int_t)b_to_a, "seconds",
	                 (json_int_t)(time(NULL) - info->started)));
}

static void
add_route(void *arg, time_t t, const char *keyhash, const char *via,
          const char *trace)
{
	json_t *a = arg;

	json_array_append_new(a, json_pack("{s:I, s:s, s:b, s:o, s:o}", "time",
	                                   (json_int_t)t, "keyhash", keyhash,
	                                   "ok", via[0] != '\0', "via",
	                                   text(via), "trace", text(trace)));
}

static void
add_log(void *arg, time_t t, int level, const char *line)
{
	json_t *a = arg;

	json_array_append_new(
	    a, json_pack("{s:I, s:s, s:o}", "time", (json_int_t)t, "level",
	                 hl__log_level_name(level), "text", text(line)));
}

static void
add_available(void *arg, const char *name, const char *path)
{
	json_t *a = arg;

	json_array_append_new(a,
	                      json_pack("{s:o, s:b, s:b, s:b, s:o}", "name",
	                                text(name), "loaded", 0, "enabled", 0,
	                                "running", 0, "path", text(path)));
}

char *
hl__status_json(struct hl__core *c)
{
	json_t *root = json_object(), *a;
	char *out;
	time_t now = time(NULL);

	if (root == NULL)
		return NULL;
	json_object_set_new(root, "version", json_string(HL_VERSION));
	json_object_set_new(root, "abi",
	                    json_sprintf("%d.%d", HL_ABI_MAJOR, HL_ABI_MINOR));
	json_object_set_new(root, "proxy_port", json_integer(c->proxy_port));

	a = json_array();
	for (const struct hl__wanhost *w = hl__wanhosts_first(); w != NULL;
	     w = w->next)
		json_array_append_new(a, text(w->addr));
	json_object_set_new(root, "wanhosts", a);

	a = json_array();
	for (size_t i = 0; i < hl__identities_count(); i++) {
		const struct hl__identity *id = hl__identities_at(i);
		const struct hl__service_conf *sc = &c->cfg->services[i];
		char url[256];
		hl__identity_url(id, c->proxy_port, url, sizeof url);
		json_array_append_new(
		    a, json_pack("{s:o, s:o, s:s, s:o, s:o, s:b}", "name",
		                 text(id->pub.name), "title", text(sc->title),
		                 "keyhash", id->keyhash, "url", text(url),
		                 "target", text(sc->target), "password",
		                 id->password[0] != '\0'));
	}
	json_object_set_new(root, "services", a);

	a = json_array();
	for (struct hl_plugin *p = hl__plugins_first(); p != NULL; p = p->next)
		json_array_append_new(
		    a,
		    json_pack(
		        "{s:o, s:o, s:o, s:o, s:i, s:b, s:b, s:b, s:o, "
		        "s:o, s:o}",
		        "name", text(p->d.name), "version", text(p->d.version),
		        "description", text(p->d.description), "kind",
		        kinds_json(p->d.head.kinds), "priority", p->priority,
		        "loaded", 1, "enabled", !p->disabled, "running",
		        p->running, "path", text(p->path), "error",
		        text(p->error), "status", plugin_status_json(p)));
	hl__plugins_available(add_available, a);
	json_object_set_new(root, "plugins", a);

	a = json_array();
	for (const struct hl__seen *s = hl__seen_first(); s != NULL;
	     s = s->next) {
		char url[256];
		snprintf(url, sizeof url, "http://%s.localhost:%d/", s->label,
		         c->proxy_port);
		json_array_append_new(
		    a, json_pack("{s:o, s:o, s:o, s:o, s:o, s:I}", "title",
		                 text(s->title), "label", text(s->label), "url",
		                 text(url), "addr", text(s->addr), "source",
		                 text(s->source), "age",
		                 (json_int_t)(now - s->last)));
	}
	json_object_set_new(root, "lan", a);

	json_object_set_new(root, "forwards", hl__forwards_json(c));

	a = json_array();
	hl__splice_foreach(add_connection, a);
	json_object_set_new(root, "connections", a);

	a = json_array();
	hl__router_recent(add_route, a);
	json_object_set_new(root, "routes", a);

	a = json_array();
	hl__log_recent(add_log, a);
	json_object_set_new(root, "log", a);

	json_object_set_new(
	    root, "stats",
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
	              "tunnels_in", (json_int_t)hl__stats.tunnels_in,
	              "tunnels_out", (json_int_t)hl__stats.tunnels_out,
	              "bad_password", (json_int_t)hl__stats.bad_password,
	              "bad_oob", (json_int_t)hl__stats.bad_oob,
	              "backend_failed", (json_int_t)hl__stats.backend_failed,
	              "proxy_bad_request",
	              (json_int_t)hl__stats.proxy_bad_request, "proxy_no_route",
	              (json_int_t)hl__stats.proxy_no_route, "refused_busy",
	              (json_int_t)hl__stats.refused_busy, "hints_dropped",
	              (json_int_t)hl__stats.hints_dropped));
	json_object_set_new(
	    root, "limits",
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "descriptors",
	              (json_int_t)hl__limits.nofile, "tunnels",
	              (json_int_t)hl__limits.tunnels, "tunnels_per_peer",
	              (json_int_t)hl__limits.per_peer, "tunnels_per_service",
	              (json_int_t)hl__limits.per_service, "routes",
	              (json_int_t)hl__limits.routes, "proxy_connections",
	              (json_int_t)hl__limits.proxy_conns, "idle_timeout",
	              (json_int_t)hl__limits.idle_timeout));

	out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}
