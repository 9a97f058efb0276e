/*
 * pages.c: the server-rendered pages. Every value goes through buf_html:
 * titles and labels come from the network. The dashboard works without
 * JavaScript; admin.js then redraws the same parts from /api/status.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_QRENCODE
#include <qrencode.h>
#endif

#include "admin-web.h"

#define LOG_LINES 100

static const char *
jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static long long
jint(json_t *o, const char *key)
{
	return (long long)json_integer_value(json_object_get(o, key));
}

static int
jbool(json_t *o, const char *key)
{
	return json_is_true(json_object_get(o, key));
}

static void
head(struct buf *b, const char *title, const char *csrf)
{
	buf_puts(b, "<!doctype html>\n<html lang=\"en\"><head>"
	            "<meta charset=\"utf-8\">"
	            "<meta name=\"viewport\" content=\"width=device-width, "
	            "initial-scale=1\">"
	            "<meta name=\"referrer\" content=\"same-origin\">");
	if (csrf != NULL) {
		buf_puts(b, "<meta name=\"hl-csrf\" content=\"");
		buf_html(b, csrf);
		buf_puts(b, "\">");
	}
	buf_puts(b, "<title>");
	buf_html(b, title);
	buf_puts(b, "</title><link rel=\"icon\" href=\"data:,\">"
	            "<link rel=\"stylesheet\" href=\"/static/admin.css\">");
	if (csrf != NULL)
		buf_puts(b, "<script src=\"/static/admin.js\" defer></script>");
	buf_puts(b, "</head>\n");
}

static void
csrf_field(struct buf *b, const char *csrf)
{
	buf_puts(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
	buf_html(b, csrf);
	buf_puts(b, "\">");
}

void
page_login(struct buf *b, const char *csrf, const char *error)
{
	head(b, "Hardline admin: log in", NULL);
	buf_puts(b, "<body class=\"login\"><main class=\"login-box\">"
	            "<h1>Hardline <span class=\"muted\">admin</span></h1>");
	if (error != NULL) {
		buf_puts(b, "<p class=\"flash bad\" role=\"alert\">");
		buf_html(b, error);
		buf_puts(b, "</p>");
	}
	buf_puts(b, "<form method=\"post\" action=\"/login\">");
	csrf_field(b, csrf);
	buf_puts(
	    b, "<label for=\"token\">Admin token</label>"
	       "<input id=\"token\" name=\"token\" type=\"password\" "
	       "autocomplete=\"current-password\" required autofocus "
	       "spellcheck=\"false\">"
	       "<button type=\"submit\" class=\"btn primary\">Log in</button>"
	       "</form><p class=\"muted small\">hlcore printed the token when "
	       "it first started; it is also in <code>admin.token</code> in "
	       "the state directory.</p></main></body></html>\n");
}

void
page_message(struct buf *b, const char *title, const char *text)
{
	head(b, title, NULL);
	buf_puts(b, "<body class=\"login\"><main class=\"login-box\"><h1>");
	buf_html(b, title);
	buf_puts(b, "</h1><p>");
	buf_html(b, text);
	buf_puts(b, "</p><p><a href=\"/\">Back to the dashboard</a></p>"
	            "</main></body></html>\n");
}

static void
fmt_time(char *out, size_t len, time_t t)
{
	struct tm tm;

	if (localtime_r(&t, &tm) == NULL ||
	    strftime(out, len, "%H:%M:%S", &tm) == 0)
		snprintf(out, len, "?");
}

static void
fmt_bytes(char *out, size_t len, long long n)
{
	static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(out, len, "%lld B", n);
	else
		snprintf(out, len, "%.1f %s", v, units[u]);
}

static void
fmt_duration(char *out, size_t len, long long s)
{
	if (s < 0)
		s = 0;
	if (s < 60)
		snprintf(out, len, "%lld s", s);
	else if (s < 3600)
		snprintf(out, len, "%lld min %lld s", s / 60, s % 60);
	else
		snprintf(out, len, "%lld h %lld min", s / 3600, s / 60 % 60);
}

/* A path segment: everything but unreserved characters as %XX. */
static void
buf_path(struct buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		    c == '.' || c == '~')
			buf_add(b, s, 1);
		else
			buf_printf(b, "%%%02X", c);
	}
}

static void
section(struct buf *b, const char *id, const char *title, size_t count)
{
	buf_printf(b,
	           "<section id=\"%s\"><h2>%s <span class=\"count\" "
	           "id=\"%s-count\">%zu</span></h2>",
	           id, title, id, count);
}

/* A section whose title has a button on its right (a form that posts
 * to action with the CSRF token). */
static void
section_with_button(struct buf *b, const char *id, const char *title,
                    size_t count, const char *action, const char *label,
                    const char *csrf)
{
	buf_printf(b,
	           "<section id=\"%s\"><div class=\"section-head\"><h2>%s "
	           "<span class=\"count\" id=\"%s-count\">%zu</span></h2>"
	           "<form method=\"post\" action=\"%s\" "
	           "class=\"section-tool\">",
	           id, title, id, count, action);
	csrf_field(b, csrf);
	buf_printf(b,
	           "<button type=\"submit\" class=\"btn\">%s</button>"
	           "</form></div>",
	           label);
}

/* The start of a section's body: open (a table's head, a div), then
 * empty, the line that says so, when list has no item. */
static void
body_open(struct buf *b, json_t *list, const char *open, const char *empty)
{
	buf_puts(b, open);
	if (json_array_size(list) == 0)
		buf_puts(b, empty);
}

static void
services(struct buf *b, json_t *list)
{
	size_t i;
	json_t *s;

	section(b, "services", "Services", json_array_size(list));
	body_open(b, list, "<div id=\"services-body\" class=\"cards\">",
	          "<p class=\"empty\">This node serves nothing: add "
	          "a service under <code>services:</code> in the "
	          "config.</p>");
	json_array_foreach(list, i, s)
	{
		const char *name = jstr(s, "name"), *title = jstr(s, "title");
		const char *url = jstr(s, "url");
		buf_puts(b, "<article class=\"card service\"><h3>");
		buf_html(b, title[0] ? title : name);
		buf_puts(b, "</h3><p class=\"muted small\">");
		buf_html(b, name);
		buf_puts(b, " &middot; backend ");
		buf_html(b, jstr(s, "target"));
		buf_puts(b, jbool(s, "password") ? " &middot; password in URL"
		                                 : " &middot; no password");
		buf_puts(b, "</p><div class=\"url-row\"><input class=\"url\" "
		            "readonly value=\"");
		buf_html(b, url);
		buf_puts(b, "\" aria-label=\"URL of ");
		buf_html(b, name);
		buf_puts(b, "\"><a class=\"btn\" href=\"");
		buf_html(b, url);
		buf_puts(b, "\" target=\"_blank\" rel=\"noopener noreferrer\">"
		            "Open</a><button type=\"button\" class=\"btn "
		            "copy\" hidden data-url=\"");
		buf_html(b, url);
		buf_puts(b, "\">Copy</button></div>"
		            "<details class=\"qr\"><summary>QR code for a "
		            "phone</summary><img src=\"/qr/");
		buf_path(b, name);
		buf_puts(b, ".svg\" alt=\"QR code of the URL\" width=\"180\" "
		            "height=\"180\" loading=\"lazy\"></details>"
		            "</article>");
	}
	buf_puts(b, "</div></section>\n");
}

/* The priority cell: a small form when the core can change it. */
static void
priority_cell(struct buf *b, const char *name, long long priority,
              const char *csrf, int can_set)
{
	if (!can_set) {
		buf_printf(b, "%lld", priority);
		return;
	}
	buf_printf(b,
	           "<form method=\"post\" action=\"/plugins/%s/priority\" "
	           "class=\"prio\">",
	           name);
	csrf_field(b, csrf);
	buf_printf(b,
	           "<input type=\"number\" name=\"priority\" min=\"0\" "
	           "max=\"1000\" step=\"1\" required value=\"%lld\" "
	           "aria-label=\"Priority of %s (0 to 1000, lower is tried "
	           "first)\"><button type=\"submit\" class=\"btn "
	           "small\">Set</button></form>",
	           priority, name);
}

static void
plugins(struct buf *b, json_t *list, const char *csrf, const char *self,
        int can_priority)
{
	size_t i, k;
	json_t *p, *kind;

	section(b, "plugins", "Plugins", json_array_size(list));
	buf_printf(b,
	           "<table><thead><tr><th>Plugin</th><th>Kind</th>"
	           "<th>Priority</th><th>State</th><th>On/off</th></tr>"
	           "</thead><tbody id=\"plugins-body\"%s>",
	           can_priority ? " data-can-priority=\"1\"" : "");
	json_array_foreach(list, i, p)
	{
		const char *name = jstr(p, "name"), *err = jstr(p, "error");
		int loaded = jbool(p, "loaded"), enabled = jbool(p, "enabled");
		int running = jbool(p, "running");
		const char *state, *cls;

		if (!loaded) {
			state = "not loaded";
			cls = "idle";
		} else if (!enabled) {
			state = "off";
			cls = "off";
		} else if (running) {
			state = "running";
			cls = "on";
		} else {
			state = "failed";
			cls = "bad";
		}
		buf_puts(b, "<tr data-plugin=\"");
		buf_html(b, name);
		buf_puts(b, "\"><td><strong>");
		buf_html(b, name);
		buf_puts(b, "</strong> <span class=\"muted small\">");
		buf_html(b, jstr(p, "version"));
		buf_puts(b, "</span><div class=\"muted small\">");
		buf_html(b, jstr(p, "description"));
		buf_puts(b, "</div></td><td>");
		json_array_foreach(json_object_get(p, "kind"), k, kind)
		{
			buf_puts(b, k ? ", " : "");
			buf_html(b, json_string_value(kind)
			                ? json_string_value(kind)
			                : "");
		}
		buf_puts(b, "</td><td>");
		if (loaded)
			priority_cell(b, name, jint(p, "priority"), csrf,
			              can_priority && plugin_name_ok(name));
		buf_printf(b, "</td><td><span class=\"state %s\">%s</span>",
		           cls, state);
		if (err[0] != '\0' && !(loaded && running)) {
			buf_puts(b, "<div class=\"muted small\">");
			buf_html(b, err);
			buf_puts(b, "</div>");
		}
		buf_puts(b, "</td><td>");
		if (strcmp(name, self) == 0) {
			buf_puts(b, "<span class=\"muted small\">this "
			            "panel</span>");
		} else if (plugin_name_ok(name)) {
			int on = loaded && enabled;
			buf_printf(b,
			           "<form method=\"post\" "
			           "action=\"/plugins/%s/%s\">",
			           name, on ? "disable" : "enable");
			csrf_field(b, csrf);
			buf_printf(
			    b,
			    "<button type=\"submit\" class=\"switch %s\" "
			    "aria-pressed=\"%s\" aria-label=\"Turn %s %s\">"
			    "<span class=\"knob\"></span><span "
			    "class=\"label\">%s</span></button></form>",
			    on ? "on" : "off", on ? "true" : "false", name,
			    on ? "off" : "on", on ? "On" : "Off");
		}
		buf_puts(b, "</td></tr>");
	}
	buf_puts(b, "</tbody></table></section>\n");
}

static void
lan(struct buf *b, json_t *list, const char *csrf, int can_browse)
{
	size_t i;
	json_t *s;
	char age[64];

	if (can_browse)
		section_with_button(b, "lan", "On the LAN",
		                    json_array_size(list), "/lan/refresh",
		                    "Refresh", csrf);
	else
		section(b, "lan", "On the LAN", json_array_size(list));
	body_open(b, list,
	          "<table><thead><tr><th>Service</th><th>Address</th>"
	          "<th>Heard via</th><th>Last heard</th></tr></thead>"
	          "<tbody id=\"lan-body\">",
	          "<tr><td colspan=\"4\" class=\"empty\">No Hardline "
	          "service seen yet (a discovery plugin such as "
	          "discovery-lan finds them).</td></tr>");
	json_array_foreach(list, i, s)
	{
		const char *title = jstr(s, "title"), *url = jstr(s, "url");
		fmt_duration(age, sizeof age, jint(s, "age"));
		buf_puts(b, "<tr><td>");
		if (strncmp(url, "http://", 7) == 0) {
			buf_puts(b, "<a href=\"");
			buf_html(b, url);
			buf_puts(b, "\" target=\"_blank\" rel=\"noopener "
			            "noreferrer\">");
			buf_html(b, title[0] ? title : jstr(s, "label"));
			buf_puts(b, "</a>");
		} else {
			buf_html(b, title);
		}
		buf_puts(b, "</td><td><code>");
		buf_html(b, jstr(s, "addr"));
		buf_puts(b, "</code></td><td>");
		buf_html(b, jstr(s, "source"));
		buf_printf(b, "</td><td>%s ago</td></tr>", age);
	}
	buf_puts(b, "</tbody></table></section>\n");
}

static void
connections(struct buf *b, json_t *list)
{
	size_t i;
	json_t *c;
	char up[32], down[32], dur[64];

	section(b, "connections", "Live tunnels", json_array_size(list));
	body_open(b, list,
	          "<table><thead><tr><th>Direction</th><th>Service</th>"
	          "<th>From</th><th>Peer</th><th>Path</th><th>Sent</th>"
	          "<th>Received</th><th>For</th></tr></thead>"
	          "<tbody id=\"connections-body\">",
	          "<tr><td colspan=\"8\" class=\"empty\">No tunnel "
	          "open.</td></tr>");
	json_array_foreach(list, i, c)
	{
		int out = strcmp(jstr(c, "direction"), "out") == 0;
		const char *svc = jstr(c, "service");
		fmt_bytes(up, sizeof up, jint(c, "bytes_up"));
		fmt_bytes(down, sizeof down, jint(c, "bytes_down"));
		fmt_duration(dur, sizeof dur, jint(c, "seconds"));
		buf_printf(b, "<tr><td>%s</td><td>",
		           out ? "out (browser here)" : "in (served here)");
		if (svc[0] != '\0') {
			buf_html(b, svc);
		} else {
			buf_puts(b, "<code>");
			buf_html(b, jstr(c, "keyhash"));
			buf_puts(b, "</code>");
		}
		/* Which front it came from: proxy, socks, forward <port>. */
		buf_puts(b, "</td><td>");
		buf_html(b, jstr(c, "origin"));
		buf_puts(b, "</td><td><code>");
		buf_html(b, jstr(c, "peer"));
		buf_puts(b, "</code></td><td>");
		buf_html(b, jstr(c, "via"));
		buf_printf(b,
		           "</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
		           "<td class=\"n\">%s</td></tr>",
		           up, down, dur);
	}
	buf_puts(b, "</tbody></table></section>\n");
}

/* `forwards:`: local ports for remote services (never their passwords). */
static void
forwards(struct buf *b, json_t *list)
{
	size_t i;
	json_t *f;

	section(b, "forwards", "Forwards", json_array_size(list));
	body_open(b, list,
	          "<table><thead><tr><th>Local port</th><th>Service</th>"
	          "<th>Open</th><th>Connections</th><th>Failed</th>"
	          "<th>Last failure</th></tr></thead>"
	          "<tbody id=\"forwards-body\">",
	          "<tr><td colspan=\"6\" class=\"empty\">No forward: "
	          "list some under <code>forwards:</code> to reach any "
	          "TCP service (SSH, a database) at a local "
	          "port.</td></tr>");
	json_array_foreach(list, i, f)
	{
		const char *title = jstr(f, "title");
		buf_puts(b, "<tr><td><code>");
		buf_html(b, jstr(f, "listen"));
		buf_puts(b, "</code></td><td>");
		if (title[0] != '\0') {
			buf_html(b, title);
			buf_puts(b, " ");
		}
		buf_puts(b, "<code class=\"small\">");
		buf_html(b, jstr(f, "keyhash"));
		buf_printf(b,
		           "</code></td><td class=\"n\">%lld</td><td "
		           "class=\"n\">%lld</td><td class=\"n\">%lld</td><td "
		           "class=\"muted small\">",
		           jint(f, "open"), jint(f, "accepted"),
		           jint(f, "failed"));
		buf_html(b, jstr(f, "last_error"));
		buf_puts(b, "</td></tr>");
	}
	buf_puts(b, "</tbody></table></section>\n");
}

static void
routes(struct buf *b, json_t *list)
{
	size_t i;
	json_t *r;
	char t[32];

	section(b, "routes", "Recent routing", json_array_size(list));
	body_open(b, list, "<div id=\"routes-body\">",
	          "<p class=\"empty\">No connection routed yet.</p>");
	json_array_foreach(list, i, r)
	{
		int ok = jbool(r, "ok");
		const char *trace = jstr(r, "trace");
		fmt_time(t, sizeof t, (time_t)jint(r, "time"));
		buf_printf(b,
		           "<details class=\"route\"><summary><span "
		           "class=\"time\">%s</span> <code>",
		           t);
		buf_html(b, jstr(r, "keyhash"));
		buf_printf(b, "</code> <span class=\"state %s\">%s</span> ",
		           ok ? "on" : "bad", ok ? "connected" : "failed");
		buf_html(b, jstr(r, "via"));
		buf_puts(b, "</summary><pre>");
		buf_html(b, trace[0] ? trace : "(no trace)");
		buf_puts(b, "</pre></details>");
	}
	buf_puts(b, "</div></section>\n");
}

static void
logs(struct buf *b, json_t *list)
{
	size_t n = json_array_size(list),
	       from = n > LOG_LINES ? n - LOG_LINES : 0;
	char t[32];

	section(b, "log", "Recent log", n - from);
	buf_puts(b, "<div id=\"log-body\" class=\"log\">");
	/* Newest first. */
	for (size_t i = n; i-- > from;) {
		json_t *l = json_array_get(list, i);
		const char *level = jstr(l, "level");
		fmt_time(t, sizeof t, (time_t)jint(l, "time"));
		buf_printf(b,
		           "<div class=\"line %s\"><span class=\"time\">%s"
		           "</span> <span class=\"level\">",
		           strcmp(level, "error") == 0  ? "error"
		           : strcmp(level, "warn") == 0 ? "warn"
		                                        : "",
		           t);
		buf_html(b, level);
		buf_puts(b, "</span> ");
		buf_html(b, jstr(l, "text"));
		buf_puts(b, "</div>");
	}
	buf_puts(b, "</div></section>\n");
}

void
page_dashboard(struct buf *b, json_t *st, const struct session *s,
               const char *self_name, const struct caps *caps)
{
	json_t *stats = json_object_get(st, "stats"), *wan;
	size_t i;

	head(b, "Hardline admin", s->csrf);
	buf_puts(b, "<body><header class=\"top\"><div class=\"brand\">"
	            "Hardline <span class=\"muted\">admin</span></div>"
	            "<div class=\"node muted small\" id=\"node\">hlcore ");
	buf_html(b, jstr(st, "version"));
	buf_puts(b, " &middot; ABI ");
	buf_html(b, jstr(st, "abi"));
	buf_printf(b, " &middot; proxy port %lld &middot; WANHosts: ",
	           jint(st, "proxy_port"));
	if (json_array_size(json_object_get(st, "wanhosts")) == 0)
		buf_puts(b, "none");
	json_array_foreach(json_object_get(st, "wanhosts"), i, wan)
	{
		buf_puts(b, i ? ", " : "");
		buf_html(b,
		         json_string_value(wan) ? json_string_value(wan) : "");
	}
	buf_puts(b, "</div><form method=\"post\" action=\"/logout\" "
	            "class=\"logout\">");
	csrf_field(b, s->csrf);
	buf_puts(b, "<button type=\"submit\" class=\"btn\">Log out</button>"
	            "</form></header><main>"
	            "<noscript><p class=\"flash\">JavaScript is off: this "
	            "page does not refresh by itself; reload it to see what "
	            "changed.</p></noscript>");
	if (s->flash[0] != '\0') {
		buf_puts(b, "<p class=\"flash\" role=\"status\" "
		            "id=\"flash\">");
		buf_html(b, s->flash);
		buf_puts(b, "</p>");
	}
	services(b, json_object_get(st, "services"));
	plugins(b, json_object_get(st, "plugins"), s->csrf, self_name,
	        caps->priority);
	connections(b, json_object_get(st, "connections"));
	forwards(b, json_object_get(st, "forwards"));
	lan(b, json_object_get(st, "lan"), s->csrf, caps->browse);
	routes(b, json_object_get(st, "routes"));
	logs(b, json_object_get(st, "log"));
	buf_printf(b,
	           "</main><footer class=\"muted small\" id=\"stats\">Tunnels "
	           "in %lld, out %lld &middot; refused: bad password %lld, bad "
	           "OOB %lld &middot; backend failed %lld &middot; proxy: bad "
	           "request %lld, no route %lld</footer></body></html>\n",
	           jint(stats, "tunnels_in"), jint(stats, "tunnels_out"),
	           jint(stats, "bad_password"), jint(stats, "bad_oob"),
	           jint(stats, "backend_failed"),
	           jint(stats, "proxy_bad_request"),
	           jint(stats, "proxy_no_route"));
}

int
qr_svg(struct buf *b, const char *text)
{
#ifdef HAVE_QRENCODE
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	int w, quiet = 4;

	if (q == NULL)
		return -1;
	w = q->width;
	buf_printf(
	    b,
	    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" "
	    "width=\"%d\" height=\"%d\" shape-rendering=\"crispEdges\">"
	    "<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path "
	    "fill=\"#000\" d=\"",
	    w + 2 * quiet, w + 2 * quiet, (w + 2 * quiet) * 4,
	    (w + 2 * quiet) * 4, w + 2 * quiet, w + 2 * quiet);
	for (int y = 0; y < w; y++)
		for (int x = 0; x < w; x++)
			if (q->data[y * w + x] & 1)
				buf_printf(b, "M%d %dh1v1h-1z", x + quiet,
				           y + quiet);
	buf_puts(b, "\"/></svg>\n");
	QRcode_free(q);
	return b->oom ? -1 : 0;
#else
	(void)b;
	(void)text;
	return -1;
#endif
}
