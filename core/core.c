/*
 * core.c: the running daemon's state: plugins in priority order, the
 * services' identities, the listeners and the WANHosts.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

struct hl__core *hl__core;

static void plugin_send_events(struct hl__core *c, struct hl_plugin *p);

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
	for (struct hl_plugin *p = c->plugins; p != NULL; p = p->next)
		plugin_send_events(c, p);
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

static void
plugin_send_events(struct hl__core *c, struct hl_plugin *p)
{
	struct hl_event ev = {sizeof ev, HL_EVENT_WANHOSTS,
	                      c->wanhosts_str ? c->wanhosts_str : ""};

	if (p->running && p->d.events != NULL)
		p->d.events->event(p->state, &ev);
}

/* init, then tell the plugin what it would have heard had it always run:
 * the open listeners (traversal) and the WANHosts (events). */
static int
plugin_start(struct hl__core *c, struct hl_plugin *p)
{
	p->conf_errors = 0;
	p->error[0] = '\0';
	p->running = 1;
	if (p->d.init(&hl__services, p, p->conf, &p->state) != 0 ||
	    p->conf_errors > 0) {
		p->running = 0;
		snprintf(p->error, sizeof p->error,
		         "failed to start (see the log)");
		hl__err("plugin %s (%s) failed to start; hlcore goes on "
		        "without it",
		        p->d.name, p->path);
		return -1;
	}
	hl__info("plugin %s %s loaded from %s (priority %d)", p->d.name,
	         p->d.version ? p->d.version : "", p->path, p->priority);
	if (p->d.traversal != NULL)
		for (struct hl__listener *l = c->listeners; l != NULL;
		     l = l->next)
			if (l->owner != p)
				p->d.traversal->port_event(
				    p->state, (struct sockaddr *)&l->ss, l->len,
				    1);
	plugin_send_events(c, p);
	return 0;
}

static void
plugin_stop(struct hl__core *c, struct hl_plugin *p)
{
	struct hl__wanhost **wp;
	int wan_changed = 0;

	if (!p->running)
		return;
	/* End what the router holds of it while it can still cancel. */
	hl__router_plugin_stopping(p);
	if (p->d.fini != NULL)
		p->d.fini(p->state);
	p->running = 0;
	p->state = NULL;
	/* plugin.h: calls queued before fini returned run before it or
	 * never. Those still queued are this plugin's no more. */
	pthread_mutex_lock(&c->calls_lock);
	/* Both the queue and the batch being run, when a call in it is
	 * what stops p. */
	for (int q = 0; q < 2; q++) {
		struct hl__loop_call **pp = q ? &c->calls_running : &c->calls;
		while (*pp != NULL) {
			struct hl__loop_call *call = *pp;
			if (call->owner == p) {
				*pp = call->next;
				free(call);
			} else {
				pp = &call->next;
			}
		}
	}
	c->calls_tail = &c->calls;
	while (*c->calls_tail != NULL)
		c->calls_tail = &(*c->calls_tail)->next;
	pthread_mutex_unlock(&c->calls_lock);
	/* Addresses it told the core about are no longer this node's. */
	for (wp = &c->wanhosts; *wp != NULL;) {
		struct hl__wanhost *w = *wp;
		if (w->owner == p) {
			*wp = w->next;
			free(w);
			wan_changed = 1;
		} else {
			wp = &w->next;
		}
	}
	if (wan_changed && !c->stopping)
		hl__core_wanhosts_changed(c);
	hl__info("plugin %s stopped", p->d.name);
	if (!c->stopping)
		hl__router_plugin_stopped();
}

/* ---- what the admin chose in the panel: <state_dir>/plugins.state, lines
 * "<name> on|off|- [priority]" ("-": never turned on or off there). ---- */

struct choice {
	char name[64];
	int on; /* 1 on, 0 off, -1 no choice */
	int priority; /* -1: as the config says */
};

static size_t
read_choices(struct hl__core *c, struct choice *out, size_t max)
{
	char path[4096], *buf, *line, *save = NULL;
	size_t n = 0;

	snprintf(path, sizeof path, "%s/plugins.state", c->cfg->state_dir);
	buf = hl__read_file(path, 65536, NULL);
	if (buf == NULL)
		return 0;
	for (line = strtok_r(buf, "\n", &save); line != NULL && n < max;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[64], state[8];
		int prio = -1,
		    k = sscanf(line, "%63s %7s %d", name, state, &prio);
		if (k < 2)
			continue;
		snprintf(out[n].name, sizeof out[n].name, "%s", name);
		out[n].on = strcmp(state, "on") == 0    ? 1
		            : strcmp(state, "off") == 0 ? 0
		                                        : -1;
		out[n].priority =
		    k == 3 && prio >= 0 && prio <= 1000 ? prio : -1;
		n++;
	}
	free(buf);
	return n;
}

/* Keep a choice: on is 0 or 1, or -1 to keep; priority -1 keeps it. */
static int
write_choice(struct hl__core *c, const char *name, int on, int priority)
{
	struct choice ch[128];
	size_t n = read_choices(c, ch, 127), i, len = 0;
	char path[4096], buf[128 * 96];

	for (i = 0; i < n; i++)
		if (strcmp(ch[i].name, name) == 0)
			break;
	if (i == n) {
		snprintf(ch[n].name, sizeof ch[n].name, "%s", name);
		ch[n].on = -1;
		ch[n].priority = -1;
		n++;
	}
	if (on >= 0)
		ch[i].on = on;
	if (priority >= 0)
		ch[i].priority = priority;
	for (i = 0; i < n; i++) {
		len += (size_t)snprintf(buf + len, sizeof buf - len, "%s %s",
		                        ch[i].name,
		                        ch[i].on < 0 ? "-"
		                        : ch[i].on   ? "on"
		                                     : "off");
		if (ch[i].priority >= 0)
			len += (size_t)snprintf(buf + len, sizeof buf - len,
			                        " %d", ch[i].priority);
		len += (size_t)snprintf(buf + len, sizeof buf - len, "\n");
	}
	snprintf(path, sizeof path, "%s/plugins.state", c->cfg->state_dir);
	return hl__write_file_atomic(path, buf, len, 0600);
}

/* Open and check one plugin; NULL (reported) when refused. */
static struct hl_plugin *
plugin_open(struct hl__core *c, const char *name, const struct hl_conf *conf,
            int priority, int has_priority, char *err, size_t errlen)
{
	struct hl_plugin *p = calloc(1, sizeof *p);
	char *path;

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	path = hl__plugin_find(c->cfg->plugin_dir, name);
	if (path == NULL || hl__plugin_open(path, name, p, err, errlen) != 0) {
		if (path == NULL)
			snprintf(err, errlen, "out of memory");
		free(path);
		free(p);
		return NULL;
	}
	free(path);
	p->conf = conf;
	p->priority = has_priority ? priority : p->d.default_priority;
	return p;
}

int
hl__core_load_plugins(struct hl__core *c, int check_only, uint32_t kinds,
                      int *bad_settings)
{
	struct choice ch[128];
	size_t nch = check_only ? 0 : read_choices(c, ch, 128);
	size_t nopen = 0;
	struct hl_plugin *opened[256];
	int refused = 0, off[256];

	*bad_settings = 0;
	c->empty_conf.type = HL_CONF_MAP;
	c->empty_conf.file = c->cfg->file;
	/* First open and check every plugin and its settings, so that a
	 * mistake in the config stops hlcore before anything starts. */
	for (size_t i = 0; i < c->cfg->nplugins + nch && nopen < 256; i++) {
		const struct hl__plugin_conf *pcf =
		    i < c->cfg->nplugins ? &c->cfg->plugins[i] : NULL;
		const char *name =
		    pcf ? pcf->name : ch[i - c->cfg->nplugins].name;
		struct hl_plugin *p;
		char err[1024];

		if (pcf == NULL) {
			/* Enabled in the panel but not in the config: load
			 * it with no settings. */
			int dup = ch[i - c->cfg->nplugins].on != 1;
			for (size_t j = 0; j < c->cfg->nplugins && !dup; j++)
				dup =
				    strcmp(c->cfg->plugins[j].name, name) == 0;
			for (size_t j = 0; j < nopen && !dup; j++)
				dup = strcmp(opened[j]->d.name, name) == 0;
			if (dup)
				continue;
		}
		p = plugin_open(c, name, pcf ? pcf->node : &c->empty_conf,
		                pcf ? pcf->priority : 0,
		                pcf ? pcf->has_priority : 0, err, sizeof err);
		if (p == NULL) {
			/* A broken plugin is not a config mistake: it is
			 * reported and hlcore goes on without it. */
			hl__err("plugin %s refused: %s", name, err);
			refused++;
			continue;
		}
		p->conf_errors = 0;
		if (p->d.validate != NULL &&
		    (p->d.validate(&hl__services, p, p->conf) != 0 ||
		     p->conf_errors > 0)) {
			hl__err("plugin %s: its settings are not valid (see "
			        "above)",
			        name);
			(*bad_settings)++;
		}
		off[nopen] = 0;
		for (size_t j = 0; j < nch; j++) {
			if (strcmp(ch[j].name, name) != 0)
				continue;
			off[nopen] = ch[j].on == 0;
			if (ch[j].priority >= 0)
				p->priority = ch[j].priority;
		}
		opened[nopen++] = p;
	}
	if (check_only || *bad_settings > 0) {
		for (size_t i = 0; i < nopen; i++)
			plugin_free(opened[i]);
		return refused + *bad_settings;
	}
	for (size_t i = 0; i < nopen; i++) {
		struct hl_plugin *p = opened[i];

		/* In priority order before init, so that a plugin that opens
		 * a listener in init is told about the others' ports. */
		insert_by_priority(c, p);
		if (off[i]) {
			p->disabled = 1;
			snprintf(p->error, sizeof p->error,
			         "turned off in the admin panel");
			hl__info("plugin %s is turned off (admin panel)",
			         p->d.name);
			continue;
		}
		if (kinds != 0 && (p->d.head.kinds & kinds) == 0)
			continue;
		if (plugin_start(c, p) != 0)
			refused++;
	}
	return refused;
}

int
hl__core_set_enabled(struct hl__core *c, const char *name, int enabled,
                     char *err, size_t errlen)
{
	struct hl_plugin *p;

	for (p = c->plugins; p != NULL; p = p->next)
		if (strcmp(p->d.name, name) == 0)
			break;
	if (p == NULL && enabled) {
		p = plugin_open(c, name, &c->empty_conf, 0, 0, err, errlen);
		if (p == NULL)
			return -1;
		insert_by_priority(c, p);
	} else if (p == NULL) {
		snprintf(err, errlen, "no plugin named %s is loaded", name);
		return -1;
	}
	if (write_choice(c, name, enabled, -1) != 0) {
		snprintf(err, errlen, "cannot save the choice in %s: %s",
		         c->cfg->state_dir, strerror(errno));
		return -1;
	}
	p->disabled = !enabled;
	if (!enabled) {
		plugin_stop(c, p);
		snprintf(p->error, sizeof p->error,
		         "turned off in the admin panel");
		return 0;
	}
	if (p->running)
		return 0;
	if (plugin_start(c, p) != 0) {
		snprintf(err, errlen, "%s failed to start: see the log", name);
		return -1;
	}
	return 0;
}

int
hl__core_set_priority(struct hl__core *c, const char *name, int priority,
                      char *err, size_t errlen)
{
	struct hl_plugin *p, **pp;

	if (priority < 0 || priority > 1000) {
		snprintf(err, errlen, "a priority is a number from 0 to 1000");
		return -1;
	}
	for (pp = &c->plugins; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->d.name, name) == 0)
			break;
	if (*pp == NULL) {
		snprintf(err, errlen, "no plugin named %s is loaded", name);
		return -1;
	}
	if (write_choice(c, name, -1, priority) != 0) {
		snprintf(err, errlen, "cannot save the choice in %s: %s",
		         c->cfg->state_dir, strerror(errno));
		return -1;
	}
	/* Take it out and put it back in its new place: routes started from
	 * now on try it in that order. */
	p = *pp;
	*pp = p->next;
	p->priority = priority;
	insert_by_priority(c, p);
	hl__info("plugin %s: priority %d (admin panel)", name, priority);
	return 0;
}

int
hl__core_browse(struct hl__core *c)
{
	int n = 0;

	for (struct hl_plugin *p = c->plugins; p != NULL; p = p->next)
		if (p->running && p->d.discovery != NULL &&
		    p->d.discovery->size >=
		        offsetof(struct hl_discovery_ops, browse) +
		            sizeof p->d.discovery->browse &&
		    p->d.discovery->browse != NULL) {
			p->d.discovery->browse(p->state);
			n++;
		}
	return n;
}

static void
scan_dir(struct hl__core *c, const char *dir,
         void (*fn)(void *arg, const char *name, const char *path), void *arg,
         char seen[][64], size_t *nseen, size_t maxseen)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		size_t len = strlen(de->d_name);
		char name[64], path[4096];
		int dup = 0;

		if (len < 4 || len - 3 >= sizeof name ||
		    strcmp(de->d_name + len - 3, ".so") != 0)
			continue;
		memcpy(name, de->d_name, len - 3);
		name[len - 3] = '\0';
		for (struct hl_plugin *p = c->plugins; p && !dup; p = p->next)
			dup = strcmp(p->d.name, name) == 0;
		for (size_t i = 0; i < *nseen && !dup; i++)
			dup = strcmp(seen[i], name) == 0;
		if (dup || *nseen == maxseen)
			continue;
		snprintf(seen[(*nseen)++], 64, "%s", name);
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		fn(arg, name, path);
	}
	closedir(d);
}

void
hl__core_available_plugins(struct hl__core *c,
                           void (*fn)(void *arg, const char *name,
                                      const char *path),
                           void *arg)
{
	char seen[64][64];
	size_t nseen = 0;
	/* Where hl__plugin_find looks: find the folder of any one name. */
	char *probe = hl__plugin_find(c->cfg->plugin_dir, "transport-tls");

	if (probe != NULL) {
		char *slash = strrchr(probe, '/');
		if (slash != NULL) {
			*slash = '\0';
			scan_dir(c, probe, fn, arg, seen, &nseen, 64);
		}
		free(probe);
	}
}

#define SEEN_MAX 256
#define SEEN_PER_HOST 16

/* Whether two "host:port" addresses have the same host. */
static int
same_host(const char *a, const char *b)
{
	char ha[HL_ADDR_MAX], hb[HL_ADDR_MAX];
	uint16_t pa, pb;

	return hl_addr_split(a, ha, sizeof ha, &pa) == 0 &&
	       hl_addr_split(b, hb, sizeof hb, &pb) == 0 && strcmp(ha, hb) == 0;
}

void
hl__core_service_seen(struct hl__core *c, struct hl_plugin *from,
                      const char *title, const char *label, const char *addr)
{
	struct hl__seen *s, **pp;
	time_t now = time(NULL);

	/* Forget what has not been heard of for 10 minutes. */
	for (pp = &c->seen; *pp != NULL;) {
		if (now - (*pp)->last > 600) {
			s = *pp;
			*pp = s->next;
			free(s);
			c->nseen--;
		} else {
			pp = &(*pp)->next;
		}
	}
	for (s = c->seen; s != NULL; s = s->next)
		if (strcmp(s->label, label) == 0 && strcmp(s->addr, addr) == 0)
			break;
	if (s == NULL) {
		/* Announces are hints from the network: one host gets a
		 * share of the table, and a full table forgets its oldest
		 * entry rather than everything new. */
		struct hl__seen **oldest = NULL;
		size_t from_host = 0;
		for (pp = &c->seen; *pp != NULL; pp = &(*pp)->next) {
			if (same_host((*pp)->addr, addr))
				from_host++;
			if (oldest == NULL || (*pp)->last <= (*oldest)->last)
				oldest = pp;
		}
		if (from_host >= SEEN_PER_HOST) {
			c->stats.hints_dropped++;
			return;
		}
		if (c->nseen >= SEEN_MAX && oldest != NULL) {
			s = *oldest;
			*oldest = s->next;
			free(s);
			c->nseen--;
		}
		s = calloc(1, sizeof *s);
		if (s == NULL)
			return;
		s->next = c->seen;
		c->seen = s;
		c->nseen++;
	}
	snprintf(s->title, sizeof s->title, "%s", title ? title : "");
	snprintf(s->label, sizeof s->label, "%s", label);
	snprintf(s->addr, sizeof s->addr, "%s", addr);
	snprintf(s->source, sizeof s->source, "%s",
	         from ? from->d.name : "core");
	s->last = now;
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
			plugin_stop(c, p);
		}
		free(arr);
	}
	/* The records and their shared objects stay until
	 * hl__core_close_plugins(), after the event base is gone. */
}

void
hl__core_close_plugins(struct hl__core *c)
{
	/* Only now that the event base is freed: a bufferevent freed by a
	 * plugin (or for one, by the core) is finalized by the base later,
	 * through an ops table in the plugin's code or in a library only
	 * the plugin pulled in (libevent_openssl for transport-tls, when
	 * hlcore itself is linked --as-needed). Unmapping that before the
	 * base runs its finalizers crashed hlcore on SIGTERM with tunnels
	 * or dials still open. */
	while (c->plugins != NULL) {
		struct hl_plugin *p = c->plugins;
		c->plugins = p->next;
		plugin_free(p);
	}
}
