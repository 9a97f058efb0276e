/*
 * addresses.c: where this node can be reached. The listeners the
 * transports opened (svc->listening), told to every traversal plugin so
 * that upnp can map them, and the WANHosts (svc->wanhost_add, plus the
 * config's), joined into the one string that servers send clients in
 * their OOB line and that plugins with an events table are told of.
 */
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static struct hl__listener *listeners;
static struct hl__wanhost *wanhosts;
static char *wanhosts_str; /* "a,b,c" */
static char *endpoints_str; /* "quic://a:1,..." */

/* A 1.2 traversal plugin hears of every listener with its protocol; an
 * older one (port_event only) of TCP listeners, all it knew of. */
static void
tell_traversal(struct hl_plugin *p, const struct sockaddr *sa, socklen_t salen,
               int proto, int open)
{
	const struct hl_traversal_ops *t = p->d.traversal;

	if (!p->running || t == NULL)
		return;
	if (HL_STRUCT_HAS(t, struct hl_traversal_ops, port_event_proto) &&
	    t->port_event_proto != NULL)
		t->port_event_proto(p->state, sa, salen, proto, open);
	else if (proto == HL_PROTO_TCP)
		t->port_event(p->state, sa, salen, open);
}

void
hl__listener_event(struct hl_plugin *owner, const struct sockaddr *sa,
                   socklen_t salen, int proto, int open)
{
	char addr[HL_ADDR_MAX];

	if (salen > sizeof(struct sockaddr_storage) ||
	    (proto != HL_PROTO_TCP && proto != HL_PROTO_UDP))
		return;
	hl_sockaddr_str(sa, addr, sizeof addr);
	if (open) {
		struct hl__listener *l = calloc(1, sizeof *l), **pp;
		if (l == NULL)
			return;
		memcpy(&l->ss, sa, salen);
		l->len = salen;
		l->proto = proto;
		l->owner = owner;
		for (pp = &listeners; *pp != NULL; pp = &(*pp)->next)
			;
		*pp = l;
		hl__log(HL_LOG_INFO, owner ? owner->d.name : "core",
		        "listening on %s%s", addr,
		        proto == HL_PROTO_UDP ? " (UDP)" : "");
	} else {
		for (struct hl__listener **pp = &listeners; *pp != NULL;
		     pp = &(*pp)->next) {
			struct hl__listener *l = *pp;
			if (l->owner == owner && l->len == salen &&
			    l->proto == proto &&
			    memcmp(&l->ss, sa, salen) == 0) {
				*pp = l->next;
				free(l);
				break;
			}
		}
	}
	for (struct hl_plugin *p = hl__plugins_first(); p != NULL; p = p->next)
		if (p != owner)
			tell_traversal(p, sa, salen, proto, open);
}

void
hl__listeners_replay(struct hl_plugin *p)
{
	for (struct hl__listener *l = listeners; l != NULL; l = l->next)
		if (l->owner != p)
			tell_traversal(p, (struct sockaddr *)&l->ss, l->len,
			               l->proto, 1);
}

const struct hl__listener *
hl__listeners_first(void)
{
	return listeners;
}

void
hl__wanhosts_send(struct hl_plugin *p)
{
	struct hl_event ev = {sizeof ev, HL_EVENT_WANHOSTS, hl__wanhosts()};
	struct hl_event ep = {sizeof ep, HL_EVENT_ENDPOINTS, hl__endpoints()};

	/* A plugin whose init is running (an endpoint_add in it) hears the
	 * current values once it returned (the started hook). */
	if (!p->running || p->in_init || p->d.events == NULL)
		return;
	p->d.events->event(p->state, &ev);
	/* A 1.1 plugin knew of one event type and may not check it. */
	if (p->running && p->d.head.abi_minor >= 2)
		p->d.events->event(p->state, &ep);
}

void
hl__wanhosts_changed(void)
{
	size_t len = 1;
	char *s;

	char *e;

	for (struct hl__wanhost *w = wanhosts; w != NULL; w = w->next)
		len += strlen(w->addr) + 1;
	s = malloc(len);
	e = malloc(len);
	if (s == NULL || e == NULL) {
		free(s);
		free(e);
		return;
	}
	s[0] = e[0] = '\0';
	/* Typed endpoints never go into WANHosts, which Python peers read
	 * (and which the DHT record carries): only bare TCP host:port. */
	for (struct hl__wanhost *w = wanhosts; w != NULL; w = w->next) {
		char *to = w->typed ? e : s;
		if (to[0] != '\0')
			strcat(to, ",");
		strcat(to, w->addr);
	}
	free(wanhosts_str);
	wanhosts_str = s;
	free(endpoints_str);
	endpoints_str = e;
	hl__debug("WANHosts now \"%s\"; endpoints \"%s\"", s, e);
	for (struct hl_plugin *p = hl__plugins_first(); p != NULL; p = p->next)
		hl__wanhosts_send(p);
}

/* Append addr (typed: a typed endpoint) unless known; 1 added, 0 not. */
static int
address_append(struct hl_plugin *owner, const char *addr, int typed)
{
	struct hl__wanhost *w, **pp;

	for (w = wanhosts; w != NULL; w = w->next)
		if (strcmp(w->addr, addr) == 0)
			return 0;
	w = calloc(1, sizeof *w);
	if (w == NULL)
		return 0;
	snprintf(w->addr, sizeof w->addr, "%s", addr);
	w->typed = typed;
	w->owner = owner;
	for (pp = &wanhosts; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = w;
	if (owner != NULL)
		hl__log(HL_LOG_INFO, owner->d.name, "reachable at %s", addr);
	return 1;
}

int
hl__wanhost_add(struct hl_plugin *owner, const char *addr)
{
	char host[HL_ADDR_MAX];
	uint16_t port;

	if (hl__addr_split(addr, host, sizeof host, &port) != 0)
		return -1;
	return address_append(owner, addr, 0);
}

void
hl__wanhost_remove(struct hl_plugin *owner, const char *addr)
{
	for (struct hl__wanhost **pp = &wanhosts; *pp != NULL;
	     pp = &(*pp)->next) {
		struct hl__wanhost *w = *pp;
		if (w->owner == owner && strcmp(w->addr, addr) == 0) {
			*pp = w->next;
			free(w);
			hl__wanhosts_changed();
			return;
		}
	}
}

int
hl__wanhosts_forget(struct hl_plugin *owner)
{
	int changed = 0;

	for (struct hl__wanhost **wp = &wanhosts; *wp != NULL;) {
		struct hl__wanhost *w = *wp;
		if (w->owner == owner) {
			*wp = w->next;
			free(w);
			changed = 1;
		} else {
			wp = &w->next;
		}
	}
	return changed;
}

const char *
hl__wanhosts(void)
{
	return wanhosts_str ? wanhosts_str : "";
}

const char *
hl__endpoints(void)
{
	return endpoints_str ? endpoints_str : "";
}

int
hl__endpoint_add(struct hl_plugin *owner, const char *uri)
{
	if (uri == NULL || hl__endpoint_check(uri, strlen(uri)) != 0)
		return -1;
	return address_append(owner, uri, 1);
}

void
hl__endpoint_remove(struct hl_plugin *owner, const char *uri)
{
	hl__wanhost_remove(owner, uri);
}

const struct hl__wanhost *
hl__wanhosts_first(void)
{
	return wanhosts;
}

void
hl__addresses_free(void)
{
	HL__LIST_FREE(listeners, free);
	HL__LIST_FREE(wanhosts, free);
	free(wanhosts_str);
	wanhosts_str = NULL;
	free(endpoints_str);
	endpoints_str = NULL;
}
