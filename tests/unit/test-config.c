/* test-config.c: the YAML config, its defaults and its error messages. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "hl.h"

/* The project's design example of a whole config, word for word: every
 * key planned, including those of plugins not written yet. */
static const char example[] =
    "state_dir: ./hardline-state        # identities (0600) and peer cache; "
    "created 0700\n"
    "log: { level: info }               # error | warn | info | debug\n"
    "proxy: { listen: \"127.0.0.1:7009\" }   # the browser-facing proxy; "
    "\"off\" disables it\n"
    "plugin_dir: /usr/lib/hardline/plugins  # optional: default finds the "
    "build tree, then the install dir\n"
    "plugins:                           # one key per plugin to load "
    "(\"admins enabling plugins\")\n"
    "  transport-tls: { priority: 10, listen: \"[::]:7008\", advertise: "
    "[\"198.51.100.7:7008\"] }\n"
    "                                   # no listen: dial only; advertise: "
    "ports forwarded by hand, added to WANHosts\n"
    "  discovery-lan: { priority: 20 }\n"
    "  upnp: {}\n"
    "  yggdrasil: { admin: \"unix:///var/run/yggdrasil.sock\" }\n"
    "  dht: { bootstrap: [\"bootstrap.jami.net:4222\"] }\n"
    "  admin-web: { listen: \"127.0.0.1:7010\" }\n"
    "services:                          # what this node serves\n"
    "  wiki:\n"
    "    target: \"127.0.0.1:8080\"\n"
    "    title: \"Home wiki\"\n"
    "    password: auto                 # auto (random, default) | none | "
    "fixed [a-z2-7]{1,22}\n"
    "    cert: ./old/foo.cert           # optional: reuse an existing "
    "Hardline cert (+ foo.cert.private)\n"
    "peers:                             # static address book: keyhash -> "
    "addresses\n"
    "  b1aa4003e8bf17d4403bebd468cf53a3b575366a: [\"198.51.100.7:7008\", "
    "\"[200:1::2]:7008\"]\n";

static char errbuf[65536];

/* Parse text as "t.yaml"; the error lines land in errbuf. */
static struct hl__config *
parse(const char *text, int *nerrors)
{
	FILE *f = fmemopen(errbuf, sizeof errbuf, "w");
	struct hl__config *cfg;

	memset(errbuf, 0, sizeof errbuf);
	setvbuf(f, NULL, _IONBF, 0);
	cfg = hl__config_parse("t.yaml", text, strlen(text), f, nerrors);
	fclose(f);
	return cfg;
}

static struct hl__config *
parse_ok(const char *text)
{
	int n = -1;
	struct hl__config *cfg = parse(text, &n);

	CHECK(cfg != NULL && n == 0,
	      "expected a good config, got %d errors:\n%s", n, errbuf);
	return cfg;
}

/*
 * The config must be refused with an error line that starts with where
 * ("t.yaml:4:3") and contains every further string given.
 */
static void
expect_error_(int srcline, const char *text, const char *where, ...)
{
	struct hl__config *cfg;
	char prefix[64];
	const char *line, *want;
	int n = -1, found = 0;
	va_list ap;

	cfg = parse(text, &n);
	CHECK(cfg == NULL, "line %d: config accepted, expected error at %s",
	      srcline, where);
	hl__config_free(cfg);
	CHECK(n >= 1, "line %d: expected errors, count is %d", srcline, n);
	snprintf(prefix, sizeof prefix, "%s: ", where);
	for (line = errbuf; *line != '\0';) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		if (strncmp(line, prefix, strlen(prefix)) == 0) {
			char one[2048];
			snprintf(one, sizeof one, "%.*s", (int)len, line);
			found = 1;
			va_start(ap, where);
			while ((want = va_arg(ap, const char *)) != NULL)
				if (strstr(one, want) == NULL)
					found = 0;
			va_end(ap);
			if (found)
				break;
		}
		line += len + (end != NULL);
	}
	CHECK(found,
	      "line %d: expected an error at %s with the given text; "
	      "got:\n%s",
	      srcline, where, errbuf);
}

#define expect_error(text, ...)                                                \
	expect_error_(__LINE__, text, __VA_ARGS__, (const char *)NULL)

static void
test_example(void)
{
	struct hl__config *cfg = parse_ok(example);
	const struct hl_conf *tls, *adv;

	if (cfg == NULL)
		return;
	CHECK_STR(cfg->file, "t.yaml");
	CHECK_STR(cfg->state_dir, "./hardline-state");
	CHECK_INT(cfg->log_level, HL_LOG_INFO);
	CHECK_STR(cfg->proxy_listen, "127.0.0.1:7009");
	CHECK_STR(cfg->plugin_dir, "/usr/lib/hardline/plugins");
	CHECK_INT(cfg->strict_plugins, 0);

	if (CHECK_INT_OK(cfg->nplugins, 6)) {
		CHECK_STR(cfg->plugins[0].name, "transport-tls");
		CHECK_INT(cfg->plugins[0].has_priority, 1);
		CHECK_INT(cfg->plugins[0].priority, 10);
		CHECK_STR(cfg->plugins[1].name, "discovery-lan");
		CHECK_INT(cfg->plugins[1].priority, 20);
		CHECK_STR(cfg->plugins[2].name, "upnp");
		CHECK_INT(cfg->plugins[2].has_priority, 0);
		CHECK_INT(hl__conf_type(cfg->plugins[2].node), HL_CONF_MAP);
		CHECK_INT(hl__conf_len(cfg->plugins[2].node), 0);
		CHECK_STR(cfg->plugins[3].name, "yggdrasil");
		CHECK_STR(
		    hl__conf_str(hl__conf_get(cfg->plugins[3].node, "admin")),
		    "unix:///var/run/yggdrasil.sock");
		CHECK_STR(cfg->plugins[4].name, "dht");
		CHECK_STR(cfg->plugins[5].name, "admin-web");

		/* A plugin's subtree, as it reads it through the table. */
		tls = cfg->plugins[0].node;
		CHECK_INT(hl__conf_type(tls), HL_CONF_MAP);
		CHECK_INT(hl__conf_len(tls), 3);
		CHECK_STR(hl__conf_key(tls, 1), "listen");
		CHECK_STR(hl__conf_str(hl__conf_item(tls, 1)), "[::]:7008");
		CHECK_STR(hl__conf_str(hl__conf_get(tls, "listen")),
		          "[::]:7008");
		adv = hl__conf_get(tls, "advertise");
		CHECK_INT(hl__conf_type(adv), HL_CONF_LIST);
		CHECK_INT(hl__conf_len(adv), 1);
		CHECK_STR(hl__conf_str(hl__conf_item(adv, 0)),
		          "198.51.100.7:7008");
		CHECK(hl__conf_key(adv, 0) == NULL, "a list has no keys");
		CHECK(hl__conf_item(adv, 1) == NULL, "item past the end");
		/* Where the value stood: line 6, column 42 ("[::]:7008"). */
		CHECK_INT(hl__conf_get(tls, "listen")->line, 6);
		CHECK_INT(hl__conf_get(tls, "listen")->col, 42);
		CHECK_STR(hl__conf_get(tls, "listen")->file, "t.yaml");
	}

	if (CHECK_INT_OK(cfg->nservices, 1)) {
		struct hl__service_conf *s = &cfg->services[0];
		CHECK_STR(s->name, "wiki");
		CHECK_STR(s->target, "127.0.0.1:8080");
		CHECK_STR(s->title, "Home wiki");
		CHECK_INT(s->password_mode, HL_PW_AUTO);
		CHECK(s->password == NULL, "auto has no fixed password");
		CHECK_STR(s->cert, "./old/foo.cert");
		CHECK_INT(s->lan_announce_password, 0);
		CHECK_INT(s->node->line, 15);
		CHECK_INT(s->node->col, 5);
	}

	if (CHECK_INT_OK(cfg->npeers, 1)) {
		CHECK_STR(cfg->peers[0].keyhash,
		          "b1aa4003e8bf17d4403bebd468cf53a3b575366a");
		if (CHECK_INT_OK(cfg->peers[0].naddrs, 2)) {
			CHECK_STR(cfg->peers[0].addrs[0], "198.51.100.7:7008");
			CHECK_STR(cfg->peers[0].addrs[1], "[200:1::2]:7008");
		}
	}
	CHECK_INT(hl__conf_type(cfg->root), HL_CONF_MAP);
	CHECK_INT(hl__conf_len(cfg->root), 7);
	hl__config_free(cfg);
}

static void
test_defaults(void)
{
	struct hl__config *cfg =
	    parse_ok("services:\n  web:\n    target: localhost:80\n");

	if (cfg == NULL)
		return;
	CHECK_STR(cfg->state_dir, "./hardline-state");
	CHECK_INT(cfg->log_level, HL_LOG_INFO);
	CHECK_STR(cfg->proxy_listen, "127.0.0.1:7009");
	CHECK(cfg->plugin_dir == NULL, "plugin_dir defaults to NULL");
	CHECK_INT(cfg->strict_plugins, 0);
	CHECK_INT(cfg->nplugins, 0);
	CHECK_INT(cfg->npeers, 0);
	if (CHECK_INT_OK(cfg->nservices, 1)) {
		CHECK_STR(cfg->services[0].name, "web");
		CHECK_STR(cfg->services[0].title, "web");
		CHECK_INT(cfg->services[0].password_mode, HL_PW_AUTO);
		CHECK(cfg->services[0].cert == NULL, "no cert by default");
		CHECK_INT(cfg->services[0].lan_announce_password, 0);
	}
	hl__config_free(cfg);

	/* Sections left empty mean their defaults. */
	cfg = parse_ok("log:\nproxy:\nplugins:\nservices:\npeers:\n");
	if (cfg != NULL) {
		CHECK_STR(cfg->proxy_listen, "127.0.0.1:7009");
		CHECK_INT(cfg->nservices, 0);
	}
	hl__config_free(cfg);
}

static void
test_values(void)
{
	struct hl__config *cfg;
	static const char *const levels[] = {"error", "warn", "info", "DEBUG"};

	for (int i = 0; i < 4; i++) {
		char text[64];
		snprintf(text, sizeof text, "log:\n  level: %s\n", levels[i]);
		cfg = parse_ok(text);
		if (cfg != NULL)
			CHECK_INT(cfg->log_level, HL_LOG_ERROR + i);
		hl__config_free(cfg);
	}

	cfg = parse_ok("proxy: { listen: off }\n");
	if (cfg != NULL)
		CHECK(cfg->proxy_listen == NULL, "proxy off: got %s",
		      cfg->proxy_listen);
	hl__config_free(cfg);
	cfg = parse_ok("proxy: { listen: \"off\" }\n");
	if (cfg != NULL)
		CHECK(cfg->proxy_listen == NULL, "proxy \"off\"");
	hl__config_free(cfg);
	cfg = parse_ok("proxy: { listen: \"[::1]:8000\" }\n");
	if (cfg != NULL)
		CHECK_STR(cfg->proxy_listen, "[::1]:8000");
	hl__config_free(cfg);

	static const struct {
		const char *v;
		int want;
	} bools[] = {{"true", 1},  {"yes", 1}, {"On", 1},  {"TRUE", 1},
	             {"false", 0}, {"no", 0},  {"off", 0}, {"No", 0}};
	for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
		char text[64];
		snprintf(text, sizeof text, "plugins_strict: %s\n", bools[i].v);
		cfg = parse_ok(text);
		if (cfg != NULL)
			CHECK(cfg->strict_plugins == bools[i].want,
			      "plugins_strict: %s gave %d", bools[i].v,
			      cfg->strict_plugins);
		hl__config_free(cfg);
	}

	cfg = parse_ok("services:\n"
	               "  a: { target: \"h:1\", password: none, "
	               "lan_announce_password: yes }\n"
	               "  B_2.x-y: { target: \"h:2\", password: abc234xyz }\n"
	               "  c: { target: \"h:3\", password: AUTO, title: C }\n"
	               "  d: { target: \"h:4\", password: "
	               "abcdefghijklmnopqrstuv }\n");
	if (cfg != NULL && CHECK_INT_OK(cfg->nservices, 4)) {
		CHECK_INT(cfg->services[0].password_mode, HL_PW_NONE);
		CHECK_INT(cfg->services[0].lan_announce_password, 1);
		CHECK_STR(cfg->services[1].name, "B_2.x-y");
		CHECK_INT(cfg->services[1].password_mode, HL_PW_FIXED);
		CHECK_STR(cfg->services[1].password, "abc234xyz");
		CHECK_INT(cfg->services[2].password_mode, HL_PW_AUTO);
		CHECK_STR(cfg->services[2].title, "C");
		CHECK_STR(cfg->services[3].password, "abcdefghijklmnopqrstuv");
	}
	hl__config_free(cfg);

	/* Plugins: an empty value is an empty map, and the keys beyond
	 * priority are the plugin's own. */
	cfg = parse_ok("plugins:\n  upnp:\n  dht: ~\n"
	               "  x-1: { priority: 0, anything: [1, {a: b}] }\n"
	               "  y: { priority: \"1000\" }\n");
	if (cfg != NULL && CHECK_INT_OK(cfg->nplugins, 4)) {
		for (int i = 0; i < 2; i++) {
			CHECK(cfg->plugins[i].node != NULL, "node set");
			CHECK_INT(hl__conf_type(cfg->plugins[i].node),
			          HL_CONF_MAP);
			CHECK_INT(hl__conf_len(cfg->plugins[i].node), 0);
			CHECK(hl__conf_str(cfg->plugins[i].node) == NULL,
			      "an empty map has no text");
		}
		CHECK_INT(cfg->plugins[1].node->line, 3);
		CHECK_INT(cfg->plugins[2].priority, 0);
		CHECK_INT(cfg->plugins[2].has_priority, 1);
		CHECK_INT(cfg->plugins[3].priority, 1000);
	}
	hl__config_free(cfg);

	/* Peers: one address as a plain string; keyhashes lowercased. */
	cfg = parse_ok("peers:\n"
	               "  B1AA4003E8BF17D4403BEBD468CF53A3B575366A: "
	               "peer.example:7008\n");
	if (cfg != NULL && CHECK_INT_OK(cfg->npeers, 1)) {
		CHECK_STR(cfg->peers[0].keyhash,
		          "b1aa4003e8bf17d4403bebd468cf53a3b575366a");
		CHECK_INT(cfg->peers[0].naddrs, 1);
		CHECK_STR(cfg->peers[0].addrs[0], "peer.example:7008");
	}
	hl__config_free(cfg);
}

static void
test_empty(void)
{
	expect_error("", "t.yaml:1:1", "empty config");
	expect_error("# nothing but a comment\n\n", "t.yaml:1:1",
	             "empty config");
	expect_error("---\n", "t.yaml:1:1", "empty config");
	expect_error("~\n", "t.yaml:1:1", "empty config");
	expect_error("- a\n- b\n", "t.yaml:1:1", "the config must be a map",
	             "not a list");
	expect_error("hello\n", "t.yaml:1:1", "must be a map", "not \"hello\"");
}

static void
test_unknown_keys(void)
{
	expect_error("state_dir: /x\nlog:\n  level: info\nservice:\n",
	             "t.yaml:4:1", "unknown key \"service\"", "services",
	             "peers");
	expect_error("state_dir: /x\n"
	             "log:\n"
	             "  level: info\n"
	             "  file: /var/log/x\n",
	             "t.yaml:4:3", "unknown key \"file\" in log",
	             "allowed here: level");
	expect_error("proxy: { listen: off, port: 7009 }\n", "t.yaml:1:23",
	             "unknown key \"port\" in proxy", "listen");
	expect_error("services:\n"
	             "  wiki:\n"
	             "    target: \"127.0.0.1:8080\"\n"
	             "    passwd: none\n",
	             "t.yaml:4:5", "unknown key \"passwd\" in service \"wiki\"",
	             "password", "lan_announce_password");
}

static void
test_types(void)
{
	expect_error("services: [wiki]\n", "t.yaml:1:11",
	             "\"services\" must be a map", "not a list");
	expect_error("a: 1\n\nservices:\n  - x\n", "t.yaml:4:3",
	             "\"services\" must be a map", "not a list");
	expect_error("log: debug\n", "t.yaml:1:6", "\"log\" must be a map",
	             "{ level: info }", "not \"debug\"");
	expect_error("state_dir: [a]\n", "t.yaml:1:12",
	             "\"state_dir\" must be a directory path", "not a list");
	expect_error("state_dir:\n", "t.yaml:1:11", "\"state_dir\"",
	             "not empty");
	expect_error("plugin_dir: ~\n", "t.yaml:1:13", "\"plugin_dir\"",
	             "not empty");
	expect_error("plugins: { upnp: [] }\n", "t.yaml:1:18",
	             "plugin \"upnp\" must be a map", "not a list");
	expect_error("plugins:\n  upnp: yes\n", "t.yaml:2:9",
	             "plugin \"upnp\" must be a map", "not \"yes\"");
	expect_error("services:\n  w: hello\n", "t.yaml:2:6",
	             "service \"w\" must be a map", "not \"hello\"");
	expect_error("services:\n  w: { target: \"h:1\", title: }\n",
	             "t.yaml:2:30", "title of service \"w\"", "not empty");
	expect_error("services:\n  w: { target: \"h:1\", cert: {} }\n",
	             "t.yaml:2:29", "cert of service \"w\"", "not a map");
	expect_error("plugins_strict: maybe\n", "t.yaml:1:17",
	             "\"plugins_strict\" must be true or false",
	             "not \"maybe\"");
	expect_error("services:\n"
	             "  w: { target: \"h:1\", lan_announce_password: 1 }\n",
	             "t.yaml:2:46", "lan_announce_password of service \"w\"",
	             "true or false");
	expect_error(
	    "log: { level: loud }\n", "t.yaml:1:15",
	    "log level \"loud\" is not one of error, warn, info, debug");
	expect_error("log: { level: [info] }\n", "t.yaml:1:15",
	             "log level must be");
	expect_error("proxy: { listen: 7009 }\n", "t.yaml:1:18",
	             "proxy listen is \"7009\", not a \"host:port\" address",
	             "off");
	expect_error("proxy: { listen: \"::1:7009\" }\n", "t.yaml:1:18",
	             "not a \"host:port\" address", "brackets");
	expect_error("proxy: { listen: }\n", "t.yaml:1:18", "proxy listen",
	             "not empty");
}

static void
test_services(void)
{
	expect_error("services:\n  wiki:\n    title: Wiki\n", "t.yaml:2:3",
	             "service \"wiki\" has no target");
	expect_error("services:\n  wiki:\n", "t.yaml:2:3",
	             "service \"wiki\" has no target");
	expect_error("services:\n  wiki: { target: \"127.0.0.1\" }\n",
	             "t.yaml:2:19", "target of service \"wiki\"",
	             "is \"127.0.0.1\", not a \"host:port\"");
	expect_error("services:\n  wiki: { target: \"h:70000\" }\n",
	             "t.yaml:2:19", "not a \"host:port\" address",
	             "1 to 65535");
	expect_error("services:\n  \"my wiki\": { target: \"h:1\" }\n",
	             "t.yaml:2:3", "service name \"my wiki\" is not valid");
	expect_error("services:\n"
	             "  a234567890123456789012345678901234567890123456789012"
	             "345678901234: { target: \"h:1\" }\n",
	             "t.yaml:2:3", "service name", "is not valid", "1 to 63");
}

/* services: NAME: punch: the command transport-udp runs for `punch`. */
static void
test_punch(void)
{
	struct hl__config *cfg;
	char big[4200 + 64];

	cfg =
	    parse_ok("services:\n"
	             "  a: { target: \"h:1\", punch: \"wg-up $HL_PUNCH_FD\" }\n"
	             "  b: { target: \"h:2\" }\n"
	             "  c:\n"
	             "    target: \"h:3\"\n"
	             "    punch: |\n"
	             "      echo one\n"
	             "      echo two\n");
	if (cfg != NULL && cfg->nservices == 3) {
		CHECK_STR(cfg->services[0].punch, "wg-up $HL_PUNCH_FD");
		CHECK(cfg->services[1].punch == NULL, "no punch: NULL");
		CHECK_STR(cfg->services[2].punch, "echo one\necho two\n");
	} else {
		CHECK(0, "three services expected");
	}
	hl__config_free(cfg);
	expect_error("services:\n  w: { target: \"h:1\", punch: }\n",
	             "t.yaml:2:30", "punch of service \"w\"", "shell command",
	             "not empty");
	expect_error("services:\n  w: { target: \"h:1\", punch: \" \" }\n",
	             "t.yaml:2:30", "punch of service \"w\" is empty");
	expect_error("services:\n  w: { target: \"h:1\", punch: [sh] }\n",
	             "t.yaml:2:30", "punch of service \"w\"", "not a list");
	snprintf(big, sizeof big, "services:\n  w: { target: \"h:1\", punch: ");
	{
		size_t at = strlen(big);
		memset(big + at, 'x', 4097);
		big[at + 4097] = '\0';
	}
	strcat(big, " }\n");
	expect_error(big, "t.yaml:2:30", "punch of service \"w\"",
	             "more than 4096");
}

static void
test_passwords(void)
{
	static const struct {
		const char *pw;
		const char *why;
	} bad[] = {
	    {"Hunter2", "uppercase"},
	    {"abc1", "the digit 1"},
	    {"abc8", "the digit 8"},
	    {"abc_d", "the character '_'"},
	    {"\"\"", "empty"},
	    {"\"a b\"", "a space"},
	    {"abcdefghijklmnopqrstuvw", "23 characters"},
	    {"[a]", "must be auto, none or a fixed password, not a list"},
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char text[256];
		snprintf(text, sizeof text,
		         "services:\n"
		         "  wiki:\n"
		         "    target: \"127.0.0.1:8080\"\n"
		         "    password: %s\n",
		         bad[i].pw);
		expect_error(text, "t.yaml:4:15",
		             "password of service \"wiki\"", bad[i].why);
		if (bad[i].pw[0] != '[')
			expect_error(
			    text, "t.yaml:4:15",
			    "use auto (a random one, the default), none, or a "
			    "fixed password of 1 to 22 characters from a-z "
			    "and 2-7");
	}
	/* The refused value is a secret: the message does not repeat it. */
	expect_error("services:\n w: { target: \"h:1\", password: Sekrit2 }\n",
	             "t.yaml:2:32", "uppercase");
	CHECK(strstr(errbuf, "Sekrit2") == NULL, "password echoed: %s", errbuf);
}

static void
test_peers(void)
{
	expect_error("peers:\n  b1aa4003: [\"h:1\"]\n", "t.yaml:2:3",
	             "peer \"b1aa4003\" is not a keyhash", "40 hex", "has 8");
	expect_error("peers:\n"
	             "  g1aa4003e8bf17d4403bebd468cf53a3b575366a: [\"h:1\"]\n",
	             "t.yaml:2:3", "is not a keyhash");
	expect_error("peers:\n"
	             "  b1aa4003e8bf17d4403bebd468cf53a3b575366a0: [\"h:1\"]\n",
	             "t.yaml:2:3", "is not a keyhash", "has 41");
	expect_error("peers:\n"
	             "  b1aa4003e8bf17d4403bebd468cf53a3b575366a: [\"h:1\", "
	             "nope]\n",
	             "t.yaml:2:53", "address of peer b1aa4003e8bf",
	             "is \"nope\", not a \"host:port\"");
	expect_error("peers:\n"
	             "  b1aa4003e8bf17d4403bebd468cf53a3b575366a: []\n",
	             "t.yaml:2:45", "needs a \"host:port\" address",
	             "an empty list");
	expect_error("peers:\n"
	             "  b1aa4003e8bf17d4403bebd468cf53a3b575366a:\n",
	             "t.yaml:2:44", "needs a \"host:port\" address",
	             "not empty");
	expect_error("peers:\n"
	             "  b1aa4003e8bf17d4403bebd468cf53a3b575366a: h:1\n"
	             "  B1AA4003E8BF17D4403BEBD468CF53A3B575366A: h:2\n",
	             "t.yaml:3:45", "listed twice", "line 2, column 45");
	expect_error("peers: [a]\n", "t.yaml:1:8", "\"peers\" must be a map");
}

static void
test_plugins(void)
{
	expect_error("plugins:\n  Transport_TLS: {}\n", "t.yaml:2:3",
	             "plugin name \"Transport_TLS\" is not valid", "lowercase");
	expect_error("plugins:\n  upnp: { priority: 1001 }\n", "t.yaml:2:21",
	             "priority of plugin \"upnp\"", "0 to 1000",
	             "not \"1001\"");
	expect_error("plugins:\n  upnp: { priority: -1 }\n", "t.yaml:2:21",
	             "0 to 1000");
	expect_error("plugins:\n  upnp: { priority: high }\n", "t.yaml:2:21",
	             "not \"high\"");
	expect_error("plugins:\n  upnp: { priority: 1.5 }\n", "t.yaml:2:21",
	             "whole number");
	expect_error("plugins:\n  upnp: { priority: }\n", "t.yaml:2:21",
	             "priority of plugin \"upnp\"", "not empty");
	expect_error("plugins: [upnp]\n", "t.yaml:1:10",
	             "\"plugins\" must be a map");
}

static void
test_syntax(void)
{
	expect_error("a: b: c\n", "t.yaml:1:5",
	             "mapping values are not allowed");
	expect_error("services:\n  wiki: { target: \"h:1\"\n", "t.yaml:3:1",
	             "did not find expected ',' or '}'",
	             "while parsing a flow mapping at line 2, column 9");
	expect_error("log:\n\tlevel: info\n", "t.yaml:2:1", "tab", "spaces");
	expect_error("a: \"\xc3\xa9\"\nlog:\n\tlevel: info\n", "t.yaml:3:1",
	             "tab");
	expect_error("state_dir: \"/x\n", "t.yaml:2:1",
	             "found unexpected end of stream");
	expect_error("state_dir: /x\nlog: {level: info}\n---\npeers: {}\n",
	             "t.yaml:3:1", "a second YAML document");
	expect_error("state_dir: \"a\xff\"\n", "t.yaml:1:14", "UTF-8");
}

static void
test_duplicates(void)
{
	expect_error("state_dir: /a\nlog: {}\nstate_dir: /b\n", "t.yaml:3:1",
	             "duplicate key \"state_dir\"",
	             "first at line 1, column 1");
	expect_error("services:\n"
	             "  wiki:\n"
	             "    target: \"h:1\"\n"
	             "    target: \"h:2\"\n",
	             "t.yaml:4:5", "duplicate key \"target\"",
	             "line 3, column 5");
	expect_error("plugins: { upnp: {}, dht: {}, upnp: {} }\n",
	             "t.yaml:1:31", "duplicate key \"upnp\"",
	             "line 1, column 12");

	/* Each repeat reported once, and the first value kept. */
	int n = 0;
	struct hl__config *cfg = parse("a: 1\nb: 2\na: 3\na: 4\nb: 5\n", &n);
	CHECK(cfg == NULL, "duplicates refused");
	/* a, b unknown (2) + 3 duplicates */
	CHECK_INT(n, 5);
}

/* A plugin x whose key y holds 1 inside `lists` nested lists: a config
 * lists + 3 levels deep (the root, plugins and x). In a static buffer. */
static const char *
nested_lists(int lists)
{
	static char deep[256];

	memset(deep, 0, sizeof deep);
	strcpy(deep, "plugins: { x: { y: ");
	for (int i = 0; i < lists; i++)
		strcat(deep, "[");
	strcat(deep, "1");
	for (int i = 0; i < lists; i++)
		strcat(deep, "]");
	strcat(deep, " } }\n");
	return deep;
}

static void
test_anchors_and_depth(void)
{
	int n = 0;

	expect_error("log: &l { level: info }\nproxy: *l\n", "t.yaml:1:6",
	             "anchors (&l) are not supported");
	expect_error("log: &l { level: info }\nproxy: *l\n", "t.yaml:2:8",
	             "aliases (*name) are not supported");

	/* 32 levels of maps and lists are fine (the root, plugins, x and
	 * 29 lists)... */
	hl__config_free(parse_ok(nested_lists(29)));
	/* ...one more is refused, at the 33rd. */
	expect_error(nested_lists(30), "t.yaml:1:49",
	             "nested more than 32 deep");

	/* A big flood of brackets stops at the limit, not at the end. */
	{
		size_t len = 1000000;
		char *big = malloc(len + 1);
		memset(big, '[', len);
		big[len] = '\0';
		struct hl__config *cfg =
		    hl__config_parse("big", big, len, NULL, &n);
		CHECK(cfg == NULL && n == 1, "deep flood: %d errors", n);
		free(big);
	}
	/* More than 1 MiB is refused before parsing. */
	{
		size_t len = 1024 * 1024 + 1;
		char *big = malloc(len + 1);
		memset(big, '#', len);
		big[len] = '\0';
		FILE *f = fmemopen(errbuf, sizeof errbuf, "w");
		struct hl__config *cfg =
		    hl__config_parse("big", big, len, f, &n);
		fclose(f);
		CHECK(cfg == NULL && n == 1, "too big: %d errors", n);
		CHECK(strncmp(errbuf, "big:1:1: the config is 1048577 bytes",
		              36) == 0,
		      "too big: %s", errbuf);
		free(big);
	}
}

static void
test_misc(void)
{
	struct hl__config *cfg;
	int n = 0;

	/* All errors are reported, not just the first. */
	cfg = parse("state_dir: [x]\nlog: { level: loud }\nfoo: 1\n"
	            "services: { w: { target: nope } }\n",
	            &n);
	CHECK(cfg == NULL, "refused");
	CHECK_INT(n, 4);

	/* A NUL inside a quoted value. */
	expect_error("state_dir: \"a\\0b\"\n", "t.yaml:1:12", "NUL");

	/* No error stream: still counted, nothing crashes. */
	n = 0;
	cfg = hl__config_parse("x", "foo: 1\nbar: [\n", 14, NULL, &n);
	CHECK(cfg == NULL && n == 1, "NULL errs: %d", n);
	cfg = hl__config_parse("x", "log: {}\n", 8, NULL, NULL);
	CHECK(cfg != NULL, "NULL nerrors");
	hl__config_free(cfg);
	hl__config_free(NULL);

	/* Accessors are safe on NULL and on the wrong kinds of node. */
	CHECK_INT(hl__conf_type(NULL), HL_CONF_NONE);
	CHECK(hl__conf_get(NULL, "a") == NULL, "get NULL");
	CHECK(hl__conf_str(NULL) == NULL, "str NULL");
	CHECK_INT(hl__conf_len(NULL), 0);
	CHECK(hl__conf_item(NULL, 0) == NULL, "item NULL");
	CHECK(hl__conf_key(NULL, 0) == NULL, "key NULL");
	cfg = parse_ok("plugins: { p: { s: text, n: ~ } }\n");
	if (cfg != NULL) {
		const struct hl_conf *p = cfg->plugins[0].node;
		const struct hl_conf *s = hl__conf_get(p, "s");
		CHECK(hl__conf_get(s, "x") == NULL, "get on a scalar");
		CHECK_INT(hl__conf_len(s), 0);
		CHECK(hl__conf_item(s, 0) == NULL, "item on a scalar");
		CHECK(hl__conf_str(p) == NULL, "str on a map");
		CHECK(hl__conf_get(p, "missing") == NULL, "missing key");
		CHECK_INT(hl__conf_type(hl__conf_get(p, "n")), HL_CONF_SCALAR);
		CHECK_STR(hl__conf_str(hl__conf_get(p, "n")), "~");
		CHECK(hl__conf_key(p, 2) == NULL, "key past the end");
	}
	hl__config_free(cfg);
}

static void
verror(FILE *f, const struct hl_conf *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	hl__conf_verror(f, node, fmt, ap);
	va_end(ap);
}

static void
test_verror(void)
{
	struct hl__config *cfg = parse_ok("plugins:\n  dht: { port: 99999 }\n");
	char out[256];
	FILE *f;

	if (cfg == NULL)
		return;
	memset(out, 0, sizeof out);
	f = fmemopen(out, sizeof out, "w");
	verror(f, hl__conf_get(cfg->plugins[0].node, "port"),
	       "port %d is too big", 99999);
	fclose(f);
	CHECK_STR(out, "t.yaml:2:16: port 99999 is too big\n");
	verror(NULL, cfg->root, "nothing happens");
	hl__config_free(cfg);
}

static void
test_load(void)
{
	char path[] = "/tmp/test-config-XXXXXX";
	int fd = mkstemp(path), n = 0;
	struct hl__config *cfg;
	FILE *f;

	CHECK(fd >= 0, "mkstemp: %s", strerror(errno));
	if (fd < 0)
		return;
	CHECK_INT(write(fd, example, strlen(example)), (long)strlen(example));
	close(fd);
	cfg = hl__config_load(path, stderr, &n);
	CHECK(cfg != NULL && n == 0, "load: %d errors", n);
	if (cfg != NULL) {
		CHECK_STR(cfg->file, path);
		CHECK_STR(cfg->services[0].target, "127.0.0.1:8080");
		CHECK_STR(cfg->root->file, path);
	}
	hl__config_free(cfg);
	unlink(path);

	memset(errbuf, 0, sizeof errbuf);
	f = fmemopen(errbuf, sizeof errbuf, "w");
	cfg = hl__config_load("/nonexistent/hardline.yaml", f, &n);
	fclose(f);
	CHECK(cfg == NULL && n == 1, "missing file: %d errors", n);
	CHECK_STR(errbuf,
	          "/nonexistent/hardline.yaml: No such file or directory\n");
}

/* forwards:, proxy.socks, and the copy without `listen` that
 * `hlcore connect` hands plugins. */
static void
test_forwards(void)
{
	int n;
	struct hl__config *cfg =
	    parse("proxy: { socks: true, socks_listen: \"127.0.0.1:1080\" }\n"
	          "plugins:\n"
	          "  transport-tls: { priority: 5, listen: \"[::]:7008\", "
	          "advertise: [\"198.51.100.7:7008\"] }\n"
	          "forwards:\n"
	          "  - { listen: \"127.0.0.1:2222\", to: "
	          "\"pw-B1AA4003E8BF17D4403BEBD468CF53A3B575366A.localhost\", "
	          "title: ssh }\n"
	          "  - listen: \"[::1]:3306\"\n"
	          "    to: \"-b1aa4003e8bf17d4403bebd468cf53a3b575366a\"\n",
	          &n);
	struct hl_conf *shell;

	CHECK(cfg != NULL && n == 0, "forwards: %d errors: %s", n, errbuf);
	if (cfg == NULL)
		return;
	CHECK_INT(cfg->proxy_socks, 1);
	CHECK_STR(cfg->socks_listen, "127.0.0.1:1080");
	CHECK_INT(cfg->nforwards, 2);
	CHECK_STR(cfg->forwards[0].listen, "127.0.0.1:2222");
	CHECK_STR(cfg->forwards[0].password, "pw");
	CHECK_STR(cfg->forwards[0].keyhash,
	          "b1aa4003e8bf17d4403bebd468cf53a3b575366a");
	CHECK_STR(cfg->forwards[0].title, "ssh");
	CHECK_INT(cfg->forwards[0].listen_node->line, 5);
	CHECK_STR(cfg->forwards[1].listen, "[::1]:3306");
	CHECK_STR(cfg->forwards[1].password, "");
	CHECK(cfg->forwards[1].title == NULL, "no title");

	shell = hl__conf_map_without(cfg->plugins[0].node, "listen");
	CHECK(shell != NULL, "a copy without listen");
	if (shell != NULL) {
		int line, col;
		CHECK_INT(hl__conf_len(shell), 2);
		CHECK(hl__conf_get(shell, "listen") == NULL, "listen is gone");
		CHECK(hl__conf_get(shell, "advertise") ==
		          hl__conf_get(cfg->plugins[0].node, "advertise"),
		      "the other values are shared");
		CHECK_STR(hl__conf_key(shell, 1), "advertise");
		hl__conf_key_pos(shell, 1, &line, &col);
		CHECK(line == 3 && col == 54, "advertise at 3:54, got %d:%d",
		      line, col);
		hl__conf_shell_free(shell);
	}
	CHECK_INT(hl__conf_len(cfg->plugins[0].node), 3);
	hl__config_free(cfg);
}

int
main(void)
{
	test_example();
	test_forwards();
	test_defaults();
	test_values();
	test_empty();
	test_unknown_keys();
	test_types();
	test_services();
	test_punch();
	test_passwords();
	test_peers();
	test_plugins();
	test_syntax();
	test_duplicates();
	test_anchors_and_depth();
	test_misc();
	test_verror();
	test_load();
	return check_done();
}
