/*
 * plugins.c: the plugins' lives. Find, open and check every plugin the
 * config names or the admin turned on (loader.c does the dlopen and the
 * checks), validate their settings, start them in priority order, stop
 * them (at run time from the panel, and at exit) and close them. The list
 * is kept sorted by priority, lower first; the router tries transports in
 * that order.
 *
 * What other parts must hear of a plugin starting or stopping (its
 * listeners and WANHosts, the router's dials) reaches them through the
 * hooks main.c sets, so this file calls nothing above it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"

static struct hl_plugin *plugins;
static const struct hl_services *services;
static const struct hl__config *config;
static struct hl__plugin_hooks hooks;
static struct hl_conf empty_conf; /* for plugins enabled with no settings */

void
hl__plugins_init(const struct hl_services *svc, const struct hl__config *cfg,
                 const struct hl__plugin_hooks *h)
{
	services = svc;
	config = cfg;
	hooks = *h;
	empty_conf.type = HL_CONF_MAP;
	empty_conf.file = cfg->file;
}

struct hl_plugin *
hl__plugins_first(void)
{
	return plugins;
}

static void
insert_by_priority(struct hl_plugin *p)
{
	struct hl_plugin **pp;

	for (pp = &plugins; *pp != NULL; pp = &(*pp)->next)
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

/* init, then the started hook tells the plugin what it would have heard
 * had it always run: the open listeners (traversal) and the WANHosts
 * (events). */
static int
plugin_start(struct hl_plugin *p)
{
	int rc;

	p->conf_errors = 0;
	p->error[0] = '\0';
	p->running = 1;
	p->in_init = 1;
	rc = p->d.init(services, p, p->conf, &p->state);
	p->in_init = 0;
	if (rc != 0 || p->conf_errors > 0) {
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
	if (hooks.started != NULL)
		hooks.started(p);
	return 0;
}

static void
plugin_stop(struct hl_plugin *p)
{
	if (!p->running)
		return;
	if (hooks.stopping != NULL)
		hooks.stopping(p);
	if (p->d.fini != NULL)
		p->d.fini(p->state);
	p->running = 0;
	p->state = NULL;
	p->nstatus = 0; /* its state lines were its running self's */
	/* plugin.h: calls queued before fini returned run before it or
	 * never. Those still queued are this plugin's no more. */
	hl__loopcall_drop(p);
	hl__info("plugin %s stopped", p->d.name);
	if (hooks.stopped != NULL)
		hooks.stopped(p);
}

/* Open and check one plugin; NULL (reported) when refused. */
static struct hl_plugin *
plugin_open(const char *name, const struct hl_conf *conf, int priority,
            int has_priority, char *err, size_t errlen)
{
	struct hl_plugin *p = calloc(1, sizeof *p);
	char *path;

	if (p == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	path = hl__plugin_find(config->plugin_dir, name);
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

/* Run p's validate on its settings: 1 when they are valid (or it has no
 * validate), else 0 after saying so (its own errors came before). */
static int
plugin_settings_ok(struct hl_plugin *p)
{
	p->conf_errors = 0;
	if (p->d.validate == NULL ||
	    (p->d.validate(services, p, p->conf) == 0 && p->conf_errors == 0))
		return 1;
	hl__err("plugin %s: its settings are not valid (see above)", p->d.name);
	return 0;
}

int
hl__plugins_load(int check_only, uint32_t kinds, int *bad_settings)
{
	struct hl__choice ch[HL_CHOICES_MAX];
	size_t nch = check_only ? 0
	                        : hl__choices_read(config->state_dir, ch,
	                                           HL_CHOICES_MAX);
	size_t nopen = 0;
	struct hl_plugin *opened[256];
	int refused = 0, off[256];

	*bad_settings = 0;
	/* First open and check every plugin and its settings, so that a
	 * mistake in the config stops hlcore before anything starts. */
	for (size_t i = 0; i < config->nplugins + nch && nopen < 256; i++) {
		const struct hl__plugin_conf *pcf =
		    i < config->nplugins ? &config->plugins[i] : NULL;
		const char *name =
		    pcf ? pcf->name : ch[i - config->nplugins].name;
		struct hl_plugin *p;
		char err[1024];

		if (pcf == NULL) {
			/* Enabled in the panel but not in the config: load
			 * it with no settings. */
			int dup = ch[i - config->nplugins].on != 1;
			for (size_t j = 0; j < config->nplugins && !dup; j++)
				dup =
				    strcmp(config->plugins[j].name, name) == 0;
			for (size_t j = 0; j < nopen && !dup; j++)
				dup = strcmp(opened[j]->d.name, name) == 0;
			if (dup)
				continue;
		}
		p = plugin_open(name, pcf ? pcf->node : &empty_conf,
		                pcf ? pcf->priority : 0,
		                pcf ? pcf->has_priority : 0, err, sizeof err);
		if (p == NULL) {
			/* A broken plugin is not a config mistake: it is
			 * reported and hlcore goes on without it. */
			hl__err("plugin %s refused: %s", name, err);
			refused++;
			continue;
		}
		if (!plugin_settings_ok(p))
			(*bad_settings)++;
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
		insert_by_priority(p);
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
		if (plugin_start(p) != 0)
			refused++;
	}
	return refused;
}

int
hl__plugins_set_enabled(const char *name, int enabled, char *err, size_t errlen)
{
	struct hl_plugin *p;

	for (p = plugins; p != NULL; p = p->next)
		if (strcmp(p->d.name, name) == 0)
			break;
	if (p == NULL && enabled) {
		p = plugin_open(name, &empty_conf, 0, 0, err, errlen);
		if (p == NULL)
			return -1;
		insert_by_priority(p);
	} else if (p == NULL) {
		snprintf(err, errlen, "no plugin named %s is loaded", name);
		return -1;
	}
	if (hl__choice_write(config->state_dir, name, enabled, -1) != 0) {
		snprintf(err, errlen, "cannot save the choice in %s: %s",
		         config->state_dir, strerror(errno));
		return -1;
	}
	p->disabled = !enabled;
	if (!enabled) {
		plugin_stop(p);
		snprintf(p->error, sizeof p->error,
		         "turned off in the admin panel");
		return 0;
	}
	if (p->running)
		return 0;
	if (plugin_start(p) != 0) {
		snprintf(err, errlen, "%s failed to start: see the log", name);
		return -1;
	}
	return 0;
}

int
hl__plugins_set_priority(const char *name, int priority, char *err,
                         size_t errlen)
{
	struct hl_plugin *p, **pp;

	if (priority < 0 || priority > 1000) {
		snprintf(err, errlen, "a priority is a number from 0 to 1000");
		return -1;
	}
	for (pp = &plugins; *pp != NULL; pp = &(*pp)->next)
		if (strcmp((*pp)->d.name, name) == 0)
			break;
	if (*pp == NULL) {
		snprintf(err, errlen, "no plugin named %s is loaded", name);
		return -1;
	}
	if (hl__choice_write(config->state_dir, name, -1, priority) != 0) {
		snprintf(err, errlen, "cannot save the choice in %s: %s",
		         config->state_dir, strerror(errno));
		return -1;
	}
	/* Take it out and put it back in its new place: routes started from
	 * now on try it in that order. */
	p = *pp;
	*pp = p->next;
	p->priority = priority;
	insert_by_priority(p);
	hl__info("plugin %s: priority %d (admin panel)", name, priority);
	return 0;
}

/* The commands a plugin offers (ABI 1.2 hl_command_ops), or NULL. */
static const struct hl_command_ops *
plugin_commands(const struct hl_plugin *p)
{
	const struct hl_command_ops *o = p->d.commands;

	if (o == NULL || !HL_STRUCT_HAS(o, struct hl_command_ops, run) ||
	    o->names == NULL || o->run == NULL)
		return NULL;
	return o;
}

int
hl__plugins_command(int argc, char *const *argv, int *found)
{
	*found = 0;
	for (size_t i = 0; i < config->nplugins; i++) {
		const struct hl__plugin_conf *pcf = &config->plugins[i];
		const struct hl_command_ops *o;
		struct hl_plugin *p;
		char err[1024];
		int rc;

		p = plugin_open(pcf->name, pcf->node, pcf->priority,
		                pcf->has_priority, err, sizeof err);
		if (p == NULL)
			continue; /* a broken plugin offers nothing */
		o = plugin_commands(p);
		for (size_t k = 0; o != NULL && o->names[k] != NULL; k++) {
			if (strcmp(o->names[k], argv[0]) != 0)
				continue;
			*found = 1;
			if (!plugin_settings_ok(p)) {
				plugin_free(p);
				return 2;
			}
			rc = o->run(services, p, p->conf, argc, argv);
			plugin_free(p);
			return rc;
		}
		plugin_free(p);
	}
	return 2;
}

void
hl__plugins_command_help(FILE *f)
{
	for (size_t i = 0; config != NULL && i < config->nplugins; i++) {
		const struct hl__plugin_conf *pcf = &config->plugins[i];
		const struct hl_command_ops *o;
		struct hl_plugin *p;
		char err[1024];

		p = plugin_open(pcf->name, pcf->node, pcf->priority,
		                pcf->has_priority, err, sizeof err);
		if (p == NULL)
			continue;
		o = plugin_commands(p);
		for (size_t k = 0; o != NULL && o->names[k] != NULL; k++)
			fprintf(f, "       hlcore -c FILE %s (%s)\n",
			        o->help != NULL && o->help[k] != NULL
			            ? o->help[k]
			            : o->names[k],
			        pcf->name);
		plugin_free(p);
	}
}

int
hl__plugins_browse(void)
{
	int n = 0;

	for (struct hl_plugin *p = plugins; p != NULL; p = p->next)
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
scan_dir(const char *dir,
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
		for (struct hl_plugin *p = plugins; p && !dup; p = p->next)
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
hl__plugins_available(void (*fn)(void *arg, const char *name, const char *path),
                      void *arg)
{
	char seen[64][64];
	size_t nseen = 0;
	/* Where hl__plugin_find looks: find the folder of any one name. */
	char *probe = hl__plugin_find(config->plugin_dir, "transport-tls");

	if (probe != NULL) {
		char *slash = strrchr(probe, '/');
		if (slash != NULL) {
			*slash = '\0';
			scan_dir(probe, fn, arg, seen, &nseen, 64);
		}
		free(probe);
	}
}

void
hl__plugins_unload(void)
{
	/* Transports go last, so that traversal plugins remove their port
	 * mappings while the ports are still open; within each group, in
	 * reverse priority order. */
	for (int pass = 0; pass < 2; pass++) {
		size_t n = 0, i = 0;
		struct hl_plugin **arr;

		for (struct hl_plugin *p = plugins; p != NULL; p = p->next)
			n++;
		arr = calloc(n ? n : 1, sizeof *arr);
		if (arr == NULL)
			break;
		for (struct hl_plugin *p = plugins; p != NULL; p = p->next)
			arr[i++] = p;
		while (n-- > 0) {
			struct hl_plugin *p = arr[n];
			if ((p->d.transport != NULL) != pass || !p->running)
				continue;
			plugin_stop(p);
		}
		free(arr);
	}
	/* The records and their shared objects stay until
	 * hl__plugins_close(), after the event base is gone. */
}

void
hl__plugins_close(void)
{
	/* Only now that the event base is freed: a bufferevent freed by a
	 * plugin (or for one, by the core) is finalized by the base later,
	 * through an ops table in the plugin's code or in a library only
	 * the plugin pulled in (libevent_openssl for transport-tls, when
	 * hlcore itself is linked --as-needed). Unmapping that before the
	 * base runs its finalizers crashed hlcore on SIGTERM with tunnels
	 * or dials still open. */
	HL__LIST_FREE(plugins, plugin_free);
}
