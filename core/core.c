/*
 * core.c: the running daemon's state: plugins in priority order, the
 * services' identities, the listeners and the WANHosts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

struct hl__core *hl__core;

static struct hl__live *live_list;

void
hl__live_add(struct hl__live *l, void (*abort)(struct hl__live *))
{
	l->abort = abort;
	l->next = live_list;
	if (l->next != NULL)
		l->next->prevp = &l->next;
	l->prevp = &live_list;
	live_list = l;
}

void
hl__live_remove(struct hl__live *l)
{
	if (l->prevp == NULL)
		return;
	if (l->next != NULL)
		l->next->prevp = l->prevp;
	*l->prevp = l->next;
	l->next = NULL;
	l->prevp = NULL;
}

void
hl__live_abort_all(void)
{
	while (live_list != NULL) {
		struct hl__live *l = live_list;
		hl__live_remove(l);
		l->abort(l);
	}
}

struct hl__identity *
hl__core_identity(struct hl__core *c, const char *keyhash)
{
	char lower[HL_KEYHASH_LEN + 1];
	size_t i;

	for (i = 0; i < HL_KEYHASH_LEN && keyhash[i]; i++)
		lower[i] = (keyhash[i] >= 'A' && keyhash[i] <= 'F')
			       ? (char)(keyhash[i] - 'A' + 'a')
			       : keyhash[i];
	lower[i] = '\0';
	if (i != HL_KEYHASH_LEN || keyhash[i] != '\0')
		return NULL;
	for (i = 0; i < c->nids; i++)
		if (strcmp(c->ids[i].keyhash, lower) == 0)
			return &c->ids[i];
	return NULL;
}

void
hl__core_wanhosts_changed(struct hl__core *c)
{
	size_t len = 1;
	char *s;

	for (struct hl__wanhost *w = c->wanhosts; w != NULL; w = w->next)
		len += strlen(w->addr) + 1;
	s = malloc(len);
	if (s == NULL)
		return;
	s[0] = '\0';
	for (struct hl__wanhost *w = c->wanhosts; w != NULL; w = w->next) {
		if (s[0] != '\0')
			strcat(s, ",");
		strcat(s, w->addr);
	}
	free(c->wanhosts_str);
	c->wanhosts_str = s;
	hl__debug("WANHosts now \"%s\"", s);
}

static void
insert_by_priority(struct hl__core *c, struct hl_plugin *p)
{
	struct hl_plugin **pp;

	for (pp = &c->plugins; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->priority > p->priority)
			break;
	p->next = *pp;
	*pp = p;
}

static void
plugin_free(struct hl_plugin *p)
{
	hl__plugin_close(p);
	free(p);
}

/*
 * Load every plugin named in the config: find, check, then (unless
 * check_only) init. A refused plugin is reported and left out; with
 * plugins_strict it is fatal. Returns the number of refusals.
 */
int
hl__core_load_plugins(struct hl__core *c, int check_only)
{
	int refused = 0;

	for (size_t i = 0; i < c->cfg->nplugins; i++) {
		const struct hl__plugin_conf *pcf = &c->cfg->plugins[i];
		struct hl_plugin *p = calloc(1, sizeof *p);
		char *path, err[1024];
		int rc;

		if (p == NULL)
			return refused + 1;
		path = hl__plugin_find(c->cfg->plugin_dir, pcf->name);
		if (path == NULL) {
			free(p);
			return refused + 1;
		}
		rc = hl__plugin_open(path, pcf->name, p, err, sizeof err);
		free(path);
		if (rc != 0) {
			hl__err("plugin %s refused: %s", pcf->name, err);
			free(p);
			refused++;
			continue;
		}
		p->conf = pcf->node;
		p->priority = pcf->has_priority ? pcf->priority
						: p->d.default_priority;
		p->conf_errors = 0;
		if (check_only) {
			if (p->d.validate != NULL &&
			    (p->d.validate(&hl__services, p, p->conf) != 0 ||
				p->conf_errors > 0)) {
				hl__err("plugin %s: its settings are not "
					"valid (see above)",
				    pcf->name);
				refused++;
			}
			plugin_free(p);
			continue;
		}
		/* In priority order before init, so that a plugin that opens
		 * a listener in init is told about the others' ports. */
		insert_by_priority(c, p);
		p->running = 1;
		if (p->d.init(&hl__services, p, p->conf, &p->state) != 0 ||
		    p->conf_errors > 0) {
			hl__err("plugin %s (%s) failed to start; hlcore goes on "
				"without it",
			    pcf->name, p->path);
			p->running = 0;
			refused++;
			continue;
		}
		hl__info("plugin %s %s loaded from %s (priority %d)", p->d.name,
		    p->d.version ? p->d.version : "", p->path, p->priority);
		/* Tell a traversal plugin about listeners opened before it. */
		if (p->d.traversal != NULL)
			for (struct hl__listener *l = c->listeners; l != NULL;
			     l = l->next)
				if (l->owner != p)
					p->d.traversal->port_event(p->state,
					    (struct sockaddr *)&l->ss, l->len,
					    1);
	}
	return refused;
}

void
hl__core_unload_plugins(struct hl__core *c)
{
	/* Transports go last, so that traversal plugins remove their port
	 * mappings while the ports are still open; within each group, in
	 * reverse priority order. */
	for (int pass = 0; pass < 2; pass++) {
		size_t n = 0, i = 0;
		struct hl_plugin **arr;

		for (struct hl_plugin *p = c->plugins; p != NULL; p = p->next)
			n++;
		arr = calloc(n ? n : 1, sizeof *arr);
		if (arr == NULL)
			break;
		for (struct hl_plugin *p = c->plugins; p != NULL; p = p->next)
			arr[i++] = p;
		while (n-- > 0) {
			struct hl_plugin *p = arr[n];
			if ((p->d.transport != NULL) != pass || !p->running)
				continue;
			if (p->d.fini != NULL)
				p->d.fini(p->state);
			p->running = 0;
		}
		free(arr);
	}
	while (c->plugins != NULL) {
		struct hl_plugin *p = c->plugins;
		c->plugins = p->next;
		plugin_free(p);
	}
}
