/*
 * status.c: the node's state as one JSON object, for control plugins (the
 * admin panel) through svc->status_json. The README documents the fields.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "daemon.h"

#define ROUTES_MAX 32

static struct route_record {
	time_t t;
	char keyhash[HL_KEYHASH_LEN + 1];
	char via[160];
	char *trace;
} routes[ROUTES_MAX];
static size_t routes_next, routes_count;

void
hl__status_route(const char *keyhash, const char *via, const char *trace)
{
	struct route_record *r = &routes[routes_next];

	free(r->trace);
	r->t = time(NULL);
	snprintf(r->keyhash, sizeof r->keyhash, "%s", keyhash);
	snprintf(r->via, sizeof r->via, "%s", via ? via : "");
	r->trace = strdup(trace ? trace : "");
	routes_next = (routes_next + 1) % ROUTES_MAX;
	if (routes_count < ROUTES_MAX)
		routes_count++;
}

void
hl__status_free(void)
{
	for (size_t i = 0; i < ROUTES_MAX; i++) {
		free(routes[i].trace);
		routes[i].trace = NULL;
	}
	routes_count = routes_next = 0;
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

static void
add_connection(void *arg, const struct hl__tunnel_info *info, size_t a_to_b,
               size_t b_to_a)
{
	json_t *a = arg;

	json_array_append_new(
	    a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I}",
	                 "direction", info->outgoing ? "out" : "in", "service",
	                 info->service ? info->service : "", "keyhash",
	                 info->keyhash, "peer", info->peer, "via", info->via,
	                 "origin", info->origin,
	                 /* a is the browser (out) or the client node (in): what
	                  * it sent is "up". */
	                 "bytes_up", (json_int_t)a_to_b, "bytes_down",
	                 (json_int_t)b_to_a, "seconds",
	                 (json_int_t)(time(NULL) - info->started)));
}

static void
add_log(void *arg, time_t t, int level, const char *text)
{
	json_t *a = arg;

	json_array_append_new(
	    a, json_pack("{s:I, s:s, s:s}", "time", (json_int_t)t, "level",
	                 hl__log_level_name(level), "text", text));
}

static void
add_available(void *arg, const char *name, const char *path)
{
	json_t *a = arg;

	json_array_append_new(a, json_pack("{s:s, s:b, s:b, s:b, s:s}", "name",
	                                   name, "loaded", 0, "enabled", 0,
	                                   "running", 0, "path", path));
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
	for (struct hl__wanhost *w = c->wanhosts; w != NULL; w = w->next)
		json_array_append_new(a, json_string(w->addr));
	json_object_set_new(root, "wanhosts", a);

	a = json_array();
	for (size_t i = 0; i < c->nids; i++) {
		const struct hl__identity *id = &c->ids[i];
		const struct hl__service_conf *sc = &c->cfg->services[i];
		char url[256];
		hl__identity_url(id, c->proxy_port, url, sizeof url);
		json_array_append_new(
		    a,
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:b}", "name",
		              id->pub.name, "title", sc->title ? sc->title : "",
		              "keyhash", id->keyhash, "url", url, "target",
		              sc->target, "password", id->password[0] != '\0'));
	}
	json_object_set_new(root, "services", a);

	a = json_array();
	for (struct hl_plugin *p = c->plugins; p != NULL; p = p->next)
		json_array_append_new(
		    a,
		    json_pack("{s:s, s:s, s:s, s:o, s:i, s:b, s:b, s:b, s:s, "
		              "s:s}",
		              "name", p->d.name, "version",
		              p->d.version ? p->d.version : "", "description",
		              p->d.description ? p->d.description : "", "kind",
		              kinds_json(p->d.head.kinds), "priority",
		              p->priority, "loaded", 1, "enabled", !p->disabled,
		              "running", p->running, "path",
		              p->path ? p->path : "", "error", p->error));
	hl__core_available_plugins(c, add_available, a);
	json_object_set_new(root, "plugins", a);

	a = json_array();
	for (struct hl__seen *s = c->seen; s != NULL; s = s->next) {
		char url[256];
		snprintf(url, sizeof url, "http://%s.localhost:%d/", s->label,
		         c->proxy_port);
		json_array_append_new(
		    a, json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "title",
		                 s->title, "label", s->label, "url", url,
		                 "addr", s->addr, "source", s->source, "age",
		                 (json_int_t)(now - s->last)));
	}
	json_object_set_new(root, "lan", a);

	json_object_set_new(root, "forwards", hl__forwards_json(c));

	a = json_array();
	hl__splice_foreach(add_connection, a);
	json_object_set_new(root, "connections", a);

	a = json_array();
	for (size_t i = 0; i < routes_count; i++) {
		size_t k = (routes_next + ROUTES_MAX - 1 - i) % ROUTES_MAX;
		struct route_record *r = &routes[k];
		json_array_append_new(
		    a, json_pack("{s:I, s:s, s:b, s:s, s:s}", "time",
		                 (json_int_t)r->t, "keyhash", r->keyhash, "ok",
		                 r->via[0] != '\0', "via", r->via, "trace",
		                 r->trace ? r->trace : ""));
	}
	json_object_set_new(root, "routes", a);

	a = json_array();
	hl__log_recent(add_log, a);
	json_object_set_new(root, "log", a);

	json_object_set_new(
	    root, "stats",
	    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "tunnels_in",
	              (json_int_t)c->stats.tunnels_in, "tunnels_out",
	              (json_int_t)c->stats.tunnels_out, "bad_password",
	              (json_int_t)c->stats.bad_password, "bad_oob",
	              (json_int_t)c->stats.bad_oob, "backend_failed",
	              (json_int_t)c->stats.backend_failed, "proxy_bad_request",
	              (json_int_t)c->stats.proxy_bad_request, "proxy_no_route",
	              (json_int_t)c->stats.proxy_no_route, "refused_busy",
	              (json_int_t)c->stats.refused_busy));

	out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}
