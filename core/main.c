/*
 * main.c: hlcore's command line.
 *   hlcore -c FILE                run in the foreground
 *   hlcore -c FILE url NAME       print a service's shareable URL
 *   hlcore -c FILE check          validate the config and every plugin
 *   hlcore -c FILE discover       list the services on the LAN
 *   hlcore -c FILE connect LABEL  join stdin/stdout to a service
 *   hlcore --plugin-info FILE.so  print a plugin's descriptor
 * Exit codes: 0 fine, 1 runtime failure, 2 bad usage or config.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/crypto.h>
#include <sodium.h>

#include "daemon.h"

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: hlcore -c FILE               run the daemon in the "
	    "foreground\n"
	    "       hlcore -c FILE url NAME      print the shareable URL of "
	    "service NAME\n"
	    "       hlcore -c FILE check         validate the config and "
	    "every plugin\n"
	    "       hlcore -c FILE discover      list the Hardline services "
	    "the discovery plugins find\n"
	    "       hlcore -c FILE connect LABEL join stdin/stdout to the "
	    "service <password>-<keyhash>\n"
	    "                                    (ssh -o ProxyCommand='hlcore "
	    "-c FILE connect %%h')\n"
	    "       hlcore -c FILE COMMAND ...   a command a plugin of the "
	    "config offers (hlcore\n"
	    "                                    -c FILE --help lists them "
	    "after this text)\n"
	    "       hlcore --plugin-info FILE.so print a plugin's descriptor\n"
	    "       hlcore --version | --help\n"
	    "Exit status: 0 fine, 1 runtime failure, 2 bad usage or "
	    "config.\n");
}

/* Every second: summaries of repeated log lines whose flood is over. */
static struct event *log_flush_ev;

static void
log_flush_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                   void *arg HL_UNUSED)
{
	hl__log_flush(0);
}

/* libevent's own warnings (e.g. accept() failing on EMFILE, once per
 * try) go through the same rate limit as every other line. */
static void
libevent_log_callback(int severity, const char *msg)
{
	int level = severity >= EVENT_LOG_ERR    ? HL_LOG_ERROR
	            : severity >= EVENT_LOG_WARN ? HL_LOG_WARN
	            : severity >= EVENT_LOG_MSG  ? HL_LOG_INFO
	                                         : HL_LOG_DEBUG;

	hl__log_text(level, "libevent", msg ? msg : "");
}

static void
signal_callback(evutil_socket_t sig, short what HL_UNUSED, void *arg)
{
	struct hl__core *c = arg;

	hl__info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
	event_base_loopexit(c->base, NULL);
}

/* ---- what the parts must hear of a plugin starting or stopping ---- */
static int stopping; /* the daemon is stopping: no more routes, no events */

static void
stop_now(void)
{
	stopping = 1;
	hl__loopcall_close();
}

/* Tell it what it would have heard had it always run. */
static void
plugin_started_hook(struct hl_plugin *p)
{
	hl__listeners_replay(p);
	hl__wanhosts_send(p);
}

/* End what the router holds of it while it can still cancel. */
static void
plugin_stopping_hook(struct hl_plugin *p)
{
	hl__router_plugin_stopping(p);
}

/* Addresses it told the core about are no longer this node's; routes
 * waiting for it move on. */
static void
plugin_stopped_hook(struct hl_plugin *p)
{
	int changed = hl__wanhosts_forget(p);

	if (stopping)
		return;
	if (changed)
		hl__wanhosts_changed();
	hl__router_plugin_stopped();
}

static const struct hl__plugin_hooks plugin_hooks = {
    .started = plugin_started_hook,
    .stopping = plugin_stopping_hook,
    .stopped = plugin_stopped_hook,
};

static int
prepare_state_dir(const char *dir)
{
	struct stat st;

	if (hl__mkdirs(dir, 0700) != 0) {
		hl__err("cannot create state_dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (stat(dir, &st) == 0 && (st.st_mode & 0077) != 0)
		hl__warn("state_dir %s is readable by others (mode %03o); it "
		         "holds private keys: chmod 700 %s",
		         dir, (unsigned)(st.st_mode & 0777), dir);
	return 0;
}

static int
proxy_port_of(const struct hl__config *cfg)
{
	char host[HL_ADDR_MAX];
	uint16_t port;

	if (cfg->proxy_listen != NULL &&
	    hl__addr_split(cfg->proxy_listen, host, sizeof host, &port) == 0)
		return port;
	return 7009;
}

static int
cmd_url(struct hl__core *c, const char *name)
{
	for (size_t i = 0; i < c->cfg->nservices; i++) {
		char url[256];
		if (strcmp(c->cfg->services[i].name, name) != 0)
			continue;
		if (prepare_state_dir(c->cfg->state_dir) != 0)
			return 1;
		if (hl__identities_load(c->cfg, i) != 0)
			return 1;
		hl__identity_url(hl__identities_at(0), proxy_port_of(c->cfg),
		                 url, sizeof url);
		printf("%s\n", url);
		return 0;
	}
	fprintf(stderr, "%s: no service named \"%s\"", c->cfg->file, name);
	if (c->cfg->nservices > 0) {
		fprintf(stderr, " (services:");
		for (size_t i = 0; i < c->cfg->nservices; i++)
			fprintf(stderr, " %s", c->cfg->services[i].name);
		fprintf(stderr, ")");
	}
	fprintf(stderr, "\n");
	return 2;
}

/*
 * A fixed password shorter than 8 characters ([a-z2-7]: 5 bits each) is
 * soon found by guessing, backoff or not: say so, naming where it stands,
 * at check (stderr) and at start (the log). Not an error: it works.
 */
static void
warn_short_passwords(const struct hl__config *cfg, int to_log)
{
	for (size_t i = 0; i < cfg->nservices; i++) {
		const struct hl__service_conf *sc = &cfg->services[i];
		const struct hl_conf *v =
		    sc->node ? hl__conf_get(sc->node, "password") : NULL;
		char where[600] = "";
		size_t n;

		if (sc->password_mode != HL_PW_FIXED || sc->password == NULL)
			continue;
		n = strlen(sc->password);
		if (n >= 8)
			continue;
		if (v != NULL)
			snprintf(where, sizeof where,
			         "%s:%d:%d: ", v->file ? v->file : cfg->file,
			         v->line, v->col);
		else
			snprintf(where, sizeof where, "%s: ", cfg->file);
		if (to_log)
			hl__warn("%swarning: password of service %s is %zu "
			         "character%s: anyone may guess it; use 8 or "
			         "more, or `auto`",
			         where, sc->name, n, n == 1 ? "" : "s");
		else
			fprintf(stderr,
			        "%swarning: password of service %s is %zu "
			        "character%s: anyone may guess it; use 8 or "
			        "more, or `auto`\n",
			        where, sc->name, n, n == 1 ? "" : "s");
	}
}

static int
cmd_check(struct hl__core *c)
{
	int bad, refused;

	warn_short_passwords(c->cfg, 0);
	refused = hl__plugins_load(1, 0, &bad);

	refused += hl__forwards_check(c->cfg, stderr);
	if (refused > 0) {
		fprintf(stderr, "%s: %d plugin problem%s (see above)\n",
		        c->cfg->file, refused, refused == 1 ? "" : "s");
		return 2;
	}
	printf("%s: OK (%zu service%s, %zu plugin%s)\n", c->cfg->file,
	       c->cfg->nservices, c->cfg->nservices == 1 ? "" : "s",
	       c->cfg->nplugins, c->cfg->nplugins == 1 ? "" : "s");
	return 0;
}

static int
cmd_run(struct hl__core *c)
{
	int refused, bad, rc = 0;

	warn_short_passwords(c->cfg, 1);
	if (prepare_state_dir(c->cfg->state_dir) != 0)
		return 1;
	if (hl__identities_load(c->cfg, (size_t)-1) != 0)
		return 1;
	/* Before any plugin starts: they size their own caps from it. */
	hl__limits_init(c->cfg);
	if (hl__limits_start(c->base) != 0 || hl__splice_start(c->base) != 0)
		return 1;
	if (hl__peercache_load(c->cfg->state_dir) != 0)
		hl__warn("cannot read %s/peers.cache: %s (starting with no "
		         "remembered addresses)",
		         c->cfg->state_dir, strerror(errno));
	if (hl__peercache_start(c->base) != 0)
		hl__warn("peers.cache will be written only at stop");
	c->proxy_port = proxy_port_of(c->cfg);
	hl__wanhosts_changed();
	/* Before any plugin starts: a forward's port in use is a mistake in
	 * the config, and nothing should run with it. */
	if (hl__forwards_start(c, stderr) != 0) {
		fprintf(stderr,
		        "%s: a forward cannot listen; nothing was "
		        "started\n",
		        c->cfg->file);
		hl__forwards_stop(c);
		return 2;
	}
	refused = hl__plugins_load(0, 0, &bad);
	if (bad > 0) {
		fprintf(stderr,
		        "%s: %d plugin%s with wrong settings; nothing "
		        "was started\n",
		        c->cfg->file, bad, bad == 1 ? "" : "s");
		rc = 2;
		goto out;
	}
	if (refused > 0 && c->cfg->strict_plugins) {
		hl__err("plugins_strict is set and %d plugin%s refused: "
		        "stopping",
		        refused, refused == 1 ? " was" : "s were");
		rc = 2;
		goto out;
	}
	if (c->cfg->proxy_listen != NULL &&
	    hl__proxy_start(c, c->cfg->proxy_listen) != 0) {
		rc = 1;
		goto out;
	}
	if (hl__socksd_start(c) != 0) {
		rc = 1;
		goto out;
	}
	for (size_t i = 0; i < hl__identities_count(); i++) {
		/* The password is a secret: the log names the service by its
		 * keyhash; `hlcore -c FILE url NAME` prints the whole URL. */
		const struct hl__identity *id = hl__identities_at(i);
		hl__info(
		    "serving %s (%s -> %s) at http://%s-%s.localhost:%d/%s",
		    id->pub.name, c->cfg->services[i].title,
		    c->cfg->services[i].target,
		    id->password[0] ? "<password>" : "", id->keyhash,
		    c->proxy_port,
		    id->password[0] ? " (hlcore url prints it whole)" : "");
	}
	if (hl__identities_count() > 0 && hl__listeners_first() == NULL)
		hl__warn("services are configured but no transport listens: "
		         "give transport-tls a listen: address");
	event_base_dispatch(c->base);
out:
	stop_now();
	hl__proxy_stop(c);
	hl__socksd_stop(c);
	/* Close every connection while the transports that dial for them
	 * are still loaded, then the plugins. */
	hl__live_abort_all();
	hl__outbound_stop();
	hl__forwards_stop(c);
	hl__plugins_unload();
	/* A bufferevent freed while one of its deferred callbacks was still
	 * queued (a pair end between a transport and a tunnel, at the stop)
	 * is finalised by that callback: one round of the loop runs it (its
	 * user callbacks are gone by now), or LeakSanitizer sees it leak. */
	event_base_loop(c->base, EVLOOP_NONBLOCK);
	hl__peercache_save();
	hl__peercache_free();
	hl__router_free();
	hl__splice_stop();
	hl__server_free();
	hl__limits_stop();
	return rc;
}

static void
discover_done_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                       void *arg)
{
	event_base_loopexit(arg, NULL);
}

/* hlcore -c FILE discover: ask the discovery plugins for every service
 * they can find within 2 s, and print them. */
static int
cmd_discover(struct hl__core *c)
{
	struct timeval tv = {2, 0};
	struct event *done;
	int browsers, bad;

	c->proxy_port = proxy_port_of(c->cfg);
	hl__plugins_load(0, HL_KIND_DISCOVERY, &bad);
	if (bad > 0)
		return 2;
	browsers = hl__plugins_browse();
	if (browsers == 0) {
		stop_now();
		fprintf(stderr,
		        "%s: no discovery plugin that can list services is "
		        "loaded: add discovery-lan under plugins:\n",
		        c->cfg->file);
		hl__live_abort_all();
		hl__outbound_stop();
		hl__plugins_unload();
		return 1;
	}
	done = evtimer_new(c->base, discover_done_callback, c->base);
	evtimer_add(done, &tv);
	event_base_dispatch(c->base);
	event_free(done);
	stop_now();
	if (hl__seen_first() == NULL)
		printf("No Hardline service answered within 2 s.\n");
	for (const struct hl__seen *s = hl__seen_first(); s != NULL;
	     s = s->next)
		printf("%-30s http://%s.localhost:%d/  %s\n", s->title,
		       s->label, c->proxy_port, s->addr);
	hl__live_abort_all();
	hl__outbound_stop();
	hl__plugins_unload();
	return 0;
}

/* ---- hlcore -c FILE connect LABEL ---- */

/* Backpressure between stdin/stdout and the splice, as in tunnel.c. */
#define STDIO_HIGH (256 * 1024)

/*
 * stdin and stdout are two descriptors (pipes, under ssh's ProxyCommand),
 * and a splice joins two bufferevents: the splice gets one end of a pair,
 * and the other end is bridged here to a bufferevent reading fd 0 and one
 * writing fd 1.
 */
struct stdio_link {
	struct hl__core *core;
	struct bufferevent *in, *out; /* fd 0 (read), fd 1 (write) */
	struct bufferevent *pair[2]; /* [0]: the splice's; [1]: ours */
	struct hl__outbound *ob;
	struct event *poll; /* after the splice ended: flush, then exit */
	char keyhash[HL_KEYHASH_LEN + 1];
	char password[HL_PASSWORD_MAX + 1];
	int ended; /* the splice ended */
	int out_eof; /* the service shut its side: stdout closes once drained */
	int rc;
	int flags[2]; /* fd 0 and 1 as they were */
};

static void
link_exit(struct stdio_link *k, int rc)
{
	k->rc = rc;
	event_base_loopexit(k->core->base, NULL);
}

static void
link_in_read_callback(struct bufferevent *bev, void *arg)
{
	struct stdio_link *k = arg;
	struct evbuffer *o = bufferevent_get_output(k->pair[1]);

	evbuffer_add_buffer(o, bufferevent_get_input(bev));
	if (evbuffer_get_length(o) >= STDIO_HIGH) {
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(k->pair[1], EV_WRITE, STDIO_HIGH / 2,
		                         0);
	}
}

static void
link_pair_write_callback(struct bufferevent *bev, void *arg)
{
	struct stdio_link *k = arg;

	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	if (!k->ended)
		bufferevent_enable(k->in, EV_READ);
}

static void
link_in_event_callback(struct bufferevent *bev, short what HL_UNUSED, void *arg)
{
	struct stdio_link *k = arg;

	/* stdin closed: the splice's end sees EOF once what was read before
	 * has gone to it. */
	bufferevent_disable(bev, EV_READ);
	if (k->pair[1] != NULL)
		bufferevent_flush(k->pair[1], EV_WRITE, BEV_FINISHED);
}

/* The service shut its sending side (a half-close) and stdout has taken
 * everything before it: close stdout, so that its reader sees EOF, while
 * stdin goes on being read and sent. fd 1 stays open, on /dev/null. */
static void
link_out_close(struct stdio_link *k)
{
	int fd;

	if (!k->out_eof || k->out == NULL ||
	    evbuffer_get_length(bufferevent_get_output(k->out)) > 0)
		return;
	hl_bufferevent_free(&k->out);
	fcntl(1, F_SETFL, k->flags[1]);
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 1);
		close(fd);
	}
}

static void
link_pair_event_callback(struct bufferevent *bev, short what, void *arg)
{
	struct stdio_link *k = arg;

	if (!(what & BEV_EVENT_EOF) || k->out == NULL)
		return;
	evbuffer_add_buffer(bufferevent_get_output(k->out),
	                    bufferevent_get_input(bev));
	k->out_eof = 1;
	link_out_close(k);
}

static void
link_pair_read_callback(struct bufferevent *bev, void *arg)
{
	struct stdio_link *k = arg;
	struct evbuffer *o;

	if (k->out == NULL) {
		evbuffer_drain(bufferevent_get_input(bev), (size_t)-1);
		return;
	}
	o = bufferevent_get_output(k->out);
	evbuffer_add_buffer(o, bufferevent_get_input(bev));
	if (evbuffer_get_length(o) >= STDIO_HIGH) {
		bufferevent_disable(bev, EV_READ);
		bufferevent_setwatermark(k->out, EV_WRITE, STDIO_HIGH / 2, 0);
	}
}

static void
link_out_write_callback(struct bufferevent *bev, void *arg)
{
	struct stdio_link *k = arg;

	bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
	bufferevent_enable(k->pair[1], EV_READ);
	link_out_close(k);
}

static void
link_out_event_callback(struct bufferevent *bev HL_UNUSED, short what HL_UNUSED,
                        void *arg)
{
	/* Whoever reads stdout went away: the other side closed. */
	link_exit(arg, 0);
}

/* After the splice ended: once its end of the pair is gone and stdout
 * has taken everything, exit. */
static void
link_poll_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                   void *arg)
{
	struct stdio_link *k = arg;
	struct evbuffer *pin = bufferevent_get_input(k->pair[1]);

	if (bufferevent_pair_get_partner(k->pair[1]) != NULL)
		return;
	if (k->out == NULL) {
		event_base_loopexit(k->core->base, NULL);
		return;
	}
	if (evbuffer_get_length(pin) > 0)
		evbuffer_add_buffer(bufferevent_get_output(k->out), pin);
	if (evbuffer_get_length(bufferevent_get_output(k->out)) == 0)
		event_base_loopexit(k->core->base, NULL);
}

static char *
link_splice_callback(void *arg, int closed_side, size_t a_to_b, size_t b_to_a)
{
	struct stdio_link *k = arg;

	if (closed_side < 0)
		return NULL;
	hl__debug("connect: %.8s closed by the %s (%zu bytes up, %zu down)",
	          k->keyhash, closed_side == 0 ? "client" : "service", a_to_b,
	          b_to_a);
	k->ended = 1;
	k->rc = 0;
	if (closed_side == 1 && b_to_a == 0) {
		fprintf(stderr,
		        "hlcore connect: the service %s closed the tunnel "
		        "without sending anything: the password in the label "
		        "is wrong (or missing), or the service's backend is "
		        "not running\n",
		        k->keyhash);
		k->rc = 1;
	}
	bufferevent_disable(k->in, EV_READ);
	k->poll = hl__every(k->core->base, 20, link_poll_callback, k);
	if (k->poll == NULL)
		event_base_loopexit(k->core->base, NULL);
	return NULL;
}

static void
link_outbound_callback(void *arg, int result, struct bufferevent *tunnel,
                       const char *via, unsigned flags, const char *text)
{
	struct stdio_link *k = arg;
	struct bufferevent *p0 = k->pair[0];

	k->ob = NULL;
	if (result == HL_OUT_NO_ROUTE) {
		fprintf(stderr,
		        "hlcore connect: no path to the service %s worked. "
		        "What was tried:\n%s",
		        k->keyhash, text);
		link_exit(k, 1);
		return;
	}
	if (result != HL_OUT_OK) {
		fprintf(stderr,
		        "hlcore connect: the tunnel to %s via %s was set up, "
		        "but the Hardline handshake failed: %s\n",
		        k->keyhash, via ? via : "-", text);
		link_exit(k, 1);
		return;
	}
	hl__debug("connect: %.8s via %s", k->keyhash, via);
	k->pair[0] = NULL; /* the splice's from here */
	if (hl__outbound_splice(p0, tunnel, k->keyhash, "stdio", via, flags,
	                        "connect", link_splice_callback, k) == NULL) {
		link_exit(k, 1);
		return;
	}
	bufferevent_enable(k->in, EV_READ);
}

static int
link_prepare_fd(int fd, int *flags)
{
	*flags = fcntl(fd, F_GETFL);
	if (*flags < 0)
		return -1;
	return fcntl(fd, F_SETFL, *flags | O_NONBLOCK);
}

/*
 * hlcore -c FILE connect LABEL: the router and plugins of the daemon
 * (discovery and transports only, none of them listening), one tunnel,
 * stdin/stdout spliced to it: for ssh's ProxyCommand.
 */
static int
cmd_connect(struct hl__core *c, const char *label)
{
	struct stdio_link k;
	struct hl_conf **shells = NULL;
	const struct hl_conf **orig = NULL;
	int bad, fdok[2] = {0, 0};

	memset(&k, 0, sizeof k);
	k.core = c;
	k.rc = 1;
	if (hl__label_parse(label, k.password, k.keyhash) != 0) {
		fprintf(stderr,
		        "hlcore connect: \"%.80s\" is not a Hardline service "
		        "name: give <password>-<keyhash> (as in its URL "
		        "http://<password>-<keyhash>.localhost:7009/), with "
		        "or without .localhost\n",
		        label);
		return 2;
	}
	/* ssh shows what a ProxyCommand writes to stderr: only what went
	 * wrong, unless the config asks for debug. */
	if (hl__log_level == HL_LOG_INFO)
		hl__log_level = HL_LOG_WARN;
	if (hl__peercache_load(c->cfg->state_dir) != 0 && errno != ENOENT)
		hl__warn("cannot read %s/peers.cache: %s", c->cfg->state_dir,
		         strerror(errno));
	/* No plugin listens: the daemon with this config may be running
	 * and holds those ports. A transport without `listen` only dials. */
	shells =
	    calloc(c->cfg->nplugins ? c->cfg->nplugins : 1, sizeof *shells);
	orig = calloc(c->cfg->nplugins ? c->cfg->nplugins : 1, sizeof *orig);
	if (shells == NULL || orig == NULL) {
		free(shells);
		free(orig);
		return 1;
	}
	for (size_t i = 0; i < c->cfg->nplugins; i++) {
		orig[i] = c->cfg->plugins[i].node;
		shells[i] = hl__conf_map_without(orig[i], "listen");
		if (shells[i] != NULL)
			c->cfg->plugins[i].node = shells[i];
	}
	hl__plugins_load(0, HL_KIND_DISCOVERY | HL_KIND_TRANSPORT, &bad);
	if (bad > 0) {
		k.rc = 2;
		goto out;
	}
	fdok[0] = link_prepare_fd(0, &k.flags[0]) == 0;
	fdok[1] = link_prepare_fd(1, &k.flags[1]) == 0;
	if (!fdok[0] || !fdok[1]) {
		fprintf(stderr,
		        "hlcore connect: stdin or stdout is not open\n");
		goto out;
	}
	k.in = bufferevent_socket_new(c->base, 0, 0);
	k.out = bufferevent_socket_new(c->base, 1, 0);
	if (k.in == NULL || k.out == NULL ||
	    bufferevent_pair_new(c->base, BEV_OPT_DEFER_CALLBACKS, k.pair) !=
	        0) {
		fprintf(stderr, "hlcore connect: cannot watch stdin and "
		                "stdout (a regular file or a terminal is not "
		                "enough: use a pipe)\n");
		goto out;
	}
	bufferevent_setcb(k.in, link_in_read_callback, NULL,
	                  link_in_event_callback, &k);
	bufferevent_setcb(k.out, NULL, link_out_write_callback,
	                  link_out_event_callback, &k);
	bufferevent_setcb(k.pair[1], link_pair_read_callback,
	                  link_pair_write_callback, link_pair_event_callback,
	                  &k);
	bufferevent_enable(k.out, EV_WRITE);
	bufferevent_enable(k.pair[1], EV_READ | EV_WRITE);
	/* stdin is read once the tunnel stands: until then what the client
	 * sends waits in the pipe. */
	k.ob = hl__outbound_start(c, k.keyhash, k.password,
	                          link_outbound_callback, &k);
	if (k.ob == NULL)
		goto out;
	event_base_dispatch(c->base);
out:
	stop_now();
	hl__live_abort_all(); /* the splice or the outbound, if any */
	hl__outbound_stop();
	hl_event_free(&k.poll);
	hl_bufferevent_free(&k.in);
	if (k.out != NULL) {
		/* What is left for stdout goes out before exit, blocking. */
		struct evbuffer *o = bufferevent_get_output(k.out);
		if (fdok[1])
			fcntl(1, F_SETFL, k.flags[1]);
		while (evbuffer_get_length(o) > 0 && evbuffer_write(o, 1) > 0)
			;
		bufferevent_free(k.out);
	}
	for (int i = 0; i < 2; i++)
		hl_bufferevent_free(&k.pair[i]);
	for (int i = 0; i < 2; i++)
		if (fdok[i])
			fcntl(i, F_SETFL, k.flags[i]);
	hl__plugins_unload();
	hl__peercache_save();
	hl__peercache_free();
	hl__router_free();
	for (size_t i = 0; i < c->cfg->nplugins; i++) {
		c->cfg->plugins[i].node = orig[i];
		hl__conf_shell_free(shells[i]);
	}
	free(shells);
	free(orig);
	memset(k.password, 0, sizeof k.password);
	return k.rc;
}

static void
core_free(struct hl__core *c)
{
	hl__seen_free();
	hl__addresses_free();
	hl__identities_free();
	hl__loopcall_free();
	hl_event_free(&log_flush_ev);
	log_flush_ev = NULL;
	hl_event_free(&c->sig_int);
	hl_event_free(&c->sig_term);
	if (c->dns)
		evdns_base_free(c->dns, 0);
	if (c->base)
		event_base_free(c->base);
	hl__plugins_close(); /* after the base: see plugins.c */
	hl__config_free(c->cfg);
	free(c);
}

/* The loop, with timers to the microsecond (a timerfd) rather than
 * epoll_wait's milliseconds: QUIC's pacing and acknowledgement timers are
 * often a fraction of a millisecond, and rounding each up to a whole one
 * added about a millisecond to a new tunnel's first byte. */
static struct event_base *
base_new(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *b;

	if (cfg == NULL)
		return event_base_new();
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	b = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return b != NULL ? b : event_base_new();
}

int
main(int argc, char **argv)
{
	const char *cfgfile = NULL;
	struct hl__core *c;
	int i, rc, nerr = 0, help = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			/* After -c FILE: the commands of its plugins too. */
			if (cfgfile != NULL && i + 1 == argc) {
				help = 1;
				i++;
				break;
			}
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf(
			    "hlcore %s (plugin ABI %d.%d, %s, libevent %s)\n",
			    HL_VERSION, HL_ABI_MAJOR, HL_ABI_MINOR,
			    OpenSSL_version(OPENSSL_VERSION),
			    event_get_version());
			return 0;
		} else if (strcmp(argv[i], "--plugin-info") == 0) {
			if (i + 1 >= argc) {
				usage(stderr);
				return 2;
			}
			return hl__plugin_info(argv[i + 1], stdout);
		} else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			cfgfile = argv[++i];
		} else {
			break;
		}
	}
	if (cfgfile == NULL) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0) {
		hl__err("libsodium failed to initialise");
		return 1;
	}
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return 1;
	hl__services_bind(c);
	c->cfg = hl__config_load(cfgfile, stderr, &nerr);
	if (c->cfg == NULL) {
		fprintf(stderr, "%s: %d error%s; nothing was started\n",
		        cfgfile, nerr, nerr == 1 ? "" : "s");
		core_free(c);
		return 2;
	}
	hl__log_level = c->cfg->log_level;
	/* Keep up to 4 MiB of freed heap instead of giving it back at once:
	 * a bulk tunnel fills and drains 256 KiB buffers all the time, and with
	 * glibc's default (128 KiB) every page of them was faulted in anew
	 * (one minor fault per 4 KiB carried, 30% of the serving side's CPU).
	 */
	mallopt(M_TRIM_THRESHOLD, 4 << 20);
	signal(SIGPIPE, SIG_IGN);
	evthread_use_pthreads();
	event_set_log_callback(libevent_log_callback);
	c->base = base_new();
	if (c->base == NULL) {
		core_free(c);
		return 1;
	}
	c->dns = evdns_base_new(c->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
	                                     EVDNS_BASE_DISABLE_WHEN_INACTIVE);
	if (c->dns == NULL)
		c->dns = evdns_base_new(c->base, 0); /* no resolv.conf */
	hl__loopcall_init(c->base);
	hl__plugins_init(&hl__services, c->cfg, &plugin_hooks);
	c->sig_int = evsignal_new(c->base, SIGINT, signal_callback, c);
	c->sig_term = evsignal_new(c->base, SIGTERM, signal_callback, c);
	evsignal_add(c->sig_int, NULL);
	evsignal_add(c->sig_term, NULL);
	log_flush_ev = hl__every(c->base, 1000, log_flush_callback, NULL);

	if (help) {
		usage(stdout);
		hl__plugins_command_help(stdout);
		rc = 0;
	} else if (i < argc && strcmp(argv[i], "url") == 0 && i + 2 == argc) {
		rc = cmd_url(c, argv[i + 1]);
	} else if (i < argc && strcmp(argv[i], "check") == 0 && i + 1 == argc) {
		rc = cmd_check(c);
	} else if (i < argc && strcmp(argv[i], "discover") == 0 &&
	           i + 1 == argc) {
		rc = cmd_discover(c);
	} else if (i < argc && strcmp(argv[i], "connect") == 0 &&
	           i + 2 == argc) {
		rc = cmd_connect(c, argv[i + 1]);
	} else if (i == argc) {
		rc = cmd_run(c);
	} else {
		/* A command a plugin of the config offers (ABI 1.2). */
		int found;
		rc = hl__plugins_command(argc - i, argv + i, &found);
		if (!found) {
			usage(stderr);
			hl__plugins_command_help(stderr);
		}
	}
	core_free(c);
	hl__services_bind(NULL);
	hl__log_flush(1); /* the counts of floods still going on */
	return rc;
}
