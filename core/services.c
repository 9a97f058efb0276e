/*
 * services.c: struct hl_services, the one table through which plugins
 * reach the core (plugin.h documents every member).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "daemon.h"

/* What the services need of the running daemon; set by main.c. */
static struct hl__core *core;

void
hl__services_bind(struct hl__core *c)
{
	core = c;
}

static void
svc_log(struct hl_plugin *self, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hl__vlog(level, self ? self->d.name : "plugin", fmt, ap);
	va_end(ap);
}

static struct event_base *
svc_event_base(struct hl_plugin *self HL_UNUSED)
{
	return core->base;
}

static struct evdns_base *
svc_dns_base(struct hl_plugin *self HL_UNUSED)
{
	return core->dns;
}

static int
svc_call_on_loop(struct hl_plugin *self, void (*fn)(void *), void *arg)
{
	return hl__loopcall_add(self, fn, arg);
}

static void
svc_conf_error(struct hl_plugin *self, const struct hl_conf *node,
               const char *fmt, ...)
{
	va_list ap;

	if (self != NULL)
		self->conf_errors++;
	va_start(ap, fmt);
	hl__conf_verror(stderr, node, fmt, ap);
	va_end(ap);
}

static int
svc_conf_check_keys(struct hl_plugin *self, const struct hl_conf *node,
                    const char *const *allowed)
{
	int bad = 0;

	if (node == NULL)
		return 0;
	if (node->type != HL_CONF_MAP) {
		svc_conf_error(self, node, "%s: expected a map of settings",
		               self ? self->d.name : "plugin");
		return 1;
	}
	for (size_t i = 0; i < node->n; i++) {
		const char *k = node->keys[i];
		int ok = strcmp(k, "priority") == 0;
		for (size_t j = 0; !ok && allowed && allowed[j]; j++)
			ok = strcmp(k, allowed[j]) == 0;
		if (!ok) {
			char list[512] = "priority";
			size_t len = strlen(list);
			struct hl_conf at = *node;
			for (size_t j = 0; allowed && allowed[j]; j++)
				len += (size_t)snprintf(
				    list + len,
				    len < sizeof list ? sizeof list - len : 0,
				    ", %s", allowed[j]);
			/* Point at the key itself, not its value. */
			hl__conf_key_pos(node, i, &at.line, &at.col);
			svc_conf_error(self, &at,
			               "unknown key \"%s\" for plugin %s "
			               "(allowed: %s)",
			               k, self ? self->d.name : "?", list);
			bad++;
		}
	}
	return bad;
}

static size_t
svc_identity_count(struct hl_plugin *self HL_UNUSED)
{
	return hl__identities_count();
}

static const struct hl_identity *
svc_identity_at(struct hl_plugin *self HL_UNUSED, size_t i)
{
	const struct hl__identity *id = hl__identities_at(i);

	return id ? &id->pub : NULL;
}

static const struct hl_identity *
svc_identity_find(struct hl_plugin *self HL_UNUSED, const char *keyhash)
{
	struct hl__identity *id;

	id = hl__identities_find(keyhash);
	return id ? &id->pub : NULL;
}

static void
svc_incoming(struct hl_plugin *self, struct bufferevent *bev,
             const char *keyhash, const char *peer)
{
	hl__server_incoming(core, bev, keyhash, peer,
	                    self ? self->d.name : NULL);
}

static const char *
svc_query_keyhash(const struct hl_query *q)
{
	return hl__query_keyhash(q);
}

static void
svc_query_candidate(struct hl_plugin *self HL_UNUSED, struct hl_query *q,
                    const char *addr)
{
	hl__query_candidate(q, addr);
}

static void
svc_query_done(struct hl_plugin *self HL_UNUSED, struct hl_query *q)
{
	hl__query_done(q);
}

static void
svc_candidate_learned(struct hl_plugin *self HL_UNUSED, const char *keyhash,
                      const char *addr)
{
	hl__peercache_hint(keyhash, addr);
}

static void
svc_wanhost_add(struct hl_plugin *self, const char *addr)
{
	int added = hl__wanhost_add(self, addr);

	if (added < 0)
		svc_log(self, HL_LOG_WARN, "ignoring malformed WANHost \"%s\"",
		        addr);
	else if (added > 0)
		hl__wanhosts_changed();
}

static void
svc_wanhost_remove(struct hl_plugin *self, const char *addr)
{
	hl__wanhost_remove(self, addr);
}

static const char *
svc_wanhosts(struct hl_plugin *self HL_UNUSED)
{
	return hl__wanhosts();
}

static void
svc_service_seen(struct hl_plugin *self, const char *title, const char *label,
                 const char *addr)
{
	if (label == NULL || addr == NULL)
		return;
	hl__seen_add(self ? self->d.name : "core", title, label, addr);
}

static char *
svc_status_json(struct hl_plugin *self HL_UNUSED)
{
	return core ? hl__status_json(core) : NULL;
}

static int
svc_plugin_set_enabled(struct hl_plugin *self, const char *name, int enabled,
                       char *err, size_t errlen)
{
	if (core == NULL || name == NULL) {
		snprintf(err, errlen, "hlcore is not running");
		return -1;
	}
	if (self != NULL && strcmp(self->d.name, name) == 0) {
		snprintf(err, errlen,
		         "%s cannot turn itself off or on; change it in the "
		         "config file",
		         name);
		return -1;
	}
	return hl__plugins_set_enabled(name, enabled, err, errlen);
}

static int
svc_plugin_set_priority(struct hl_plugin *self HL_UNUSED, const char *name,
                        int priority, char *err, size_t errlen)
{
	if (core == NULL || name == NULL) {
		snprintf(err, errlen, "hlcore is not running");
		return -1;
	}
	return hl__plugins_set_priority(name, priority, err, errlen);
}

static void
svc_browse(struct hl_plugin *self HL_UNUSED)
{
	hl__plugins_browse();
}

static void
svc_free(void *p)
{
	free(p);
}

static const char *
svc_state_dir(struct hl_plugin *self HL_UNUSED)
{
	return core ? core->cfg->state_dir : NULL;
}

static void
svc_listening(struct hl_plugin *self, const struct sockaddr *sa,
              socklen_t salen, int open)
{
	hl__listener_event(self, sa, salen, HL_PROTO_TCP, open);
}

static void
svc_listening_proto(struct hl_plugin *self, const struct sockaddr *sa,
                    socklen_t salen, int proto, int open)
{
	if (proto != HL_PROTO_TCP && proto != HL_PROTO_UDP) {
		svc_log(self, HL_LOG_WARN,
		        "listening_proto: unknown protocol %d (ignored)",
		        proto);
		return;
	}
	hl__listener_event(self, sa, salen, proto, open);
}

/* A relayed tunnel is counted on its own for the per-address limits: its
 * peer string, whole and marked, is the source (not the relay's IP). */
static void
svc_incoming_flags(struct hl_plugin *self, struct bufferevent *bev,
                   const char *keyhash, const char *peer, unsigned flags)
{
	char p[HL_PEER_MAX];

	if (flags & HL_INCOMING_RELAYED) {
		snprintf(p, sizeof p, "relayed %s", peer ? peer : "?");
		peer = p;
	}
	hl__server_incoming(core, bev, keyhash, peer,
	                    self ? self->d.name : NULL);
}

static void
svc_endpoint_add(struct hl_plugin *self, const char *uri)
{
	int added = hl__endpoint_add(self, uri);

	if (added < 0)
		svc_log(self, HL_LOG_WARN,
		        "ignoring malformed endpoint \"%s\" (expected "
		        "scheme://...)",
		        uri ? uri : "(null)");
	else if (added > 0)
		hl__wanhosts_changed();
}

static void
svc_endpoint_remove(struct hl_plugin *self, const char *uri)
{
	if (uri != NULL)
		hl__endpoint_remove(self, uri);
}

/* The path of the tunnel the transport hands over next (router.c takes
 * it in the dial's callback, in the same turn). */
static void
svc_tunnel_path(struct hl_plugin *self HL_UNUSED, struct bufferevent *bev,
                unsigned flags, const char *text)
{
	hl__router_tunnel_path(bev, flags, text);
}

static void
svc_status_set(struct hl_plugin *self, const char *key, const char *value)
{
	size_t i;

	if (self == NULL || key == NULL || key[0] == '\0')
		return;
	for (i = 0; i < self->nstatus; i++)
		if (strncmp(self->status[i].key, key,
		            sizeof self->status[i].key - 1) == 0)
			break;
	if (value == NULL) {
		if (i < self->nstatus) {
			self->status[i] = self->status[self->nstatus - 1];
			self->nstatus--;
		}
		return;
	}
	if (i == self->nstatus) {
		if (self->nstatus ==
		    sizeof self->status / sizeof self->status[0]) {
			if (!self->status_full_logged)
				svc_log(self, HL_LOG_WARN,
				        "status_set: at most %zu keys; \"%s\" "
				        "dropped",
				        self->nstatus, key);
			self->status_full_logged = 1;
			return;
		}
		self->nstatus++;
		snprintf(self->status[i].key, sizeof self->status[i].key, "%s",
		         key);
	}
	snprintf(self->status[i].value, sizeof self->status[i].value, "%s",
	         value);
}

const struct hl_services hl__services = {
    .size = sizeof(struct hl_services),
    .abi_major = HL_ABI_MAJOR,
    .abi_minor = HL_ABI_MINOR,
    .core_version = HL_VERSION,
    .log = svc_log,
    .event_base = svc_event_base,
    .dns_base = svc_dns_base,
    .call_on_loop = svc_call_on_loop,
    .conf_type = hl__conf_type,
    .conf_get = hl__conf_get,
    .conf_str = hl__conf_str,
    .conf_len = hl__conf_len,
    .conf_item = hl__conf_item,
    .conf_key = hl__conf_key,
    .conf_error = svc_conf_error,
    .conf_check_keys = svc_conf_check_keys,
    .identity_count = svc_identity_count,
    .identity_at = svc_identity_at,
    .identity_find = svc_identity_find,
    .keyhash_of_cert = hl__keyhash,
    .incoming = svc_incoming,
    .listening = svc_listening,
    .query_keyhash = svc_query_keyhash,
    .query_candidate = svc_query_candidate,
    .query_done = svc_query_done,
    .candidate_learned = svc_candidate_learned,
    .wanhost_add = svc_wanhost_add,
    .wanhost_remove = svc_wanhost_remove,
    .wanhosts = svc_wanhosts,
    .service_seen = svc_service_seen,
    .status_json = svc_status_json,
    .plugin_set_enabled = svc_plugin_set_enabled,
    .free = svc_free,
    .state_dir = svc_state_dir,
    .plugin_set_priority = svc_plugin_set_priority,
    .browse = svc_browse,
    .listening_proto = svc_listening_proto,
    .incoming_flags = svc_incoming_flags,
    .endpoint_add = svc_endpoint_add,
    .endpoint_remove = svc_endpoint_remove,
    .tunnel_path = svc_tunnel_path,
    .status_set = svc_status_set,
};
