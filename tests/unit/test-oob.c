/*
 * test-oob.c: the out-of-band line of a tunnel (docs/protocol.md,
 * "Out-of-band lines" and "WANHosts"): parsing, formatting, and splitting
 * WANHosts.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hl.h"

/* hl__oob_parse on exactly strlen(s) heap bytes (ASan sees overreads). */
static int
parse(const char *s, struct hl__oob *o)
{
	size_t len = strlen(s);
	char *buf = check_exact(s, len);
	int rc = hl__oob_parse(buf, len, o);

	free(buf);
	return rc;
}

static void
test_parse(void)
{
	struct hl__oob o;

	CHECK_INT(parse("{}", &o), 0);
	CHECK_INT(o.has_password, 0);
	CHECK_STR(o.password, "");
	CHECK(o.wanhosts == NULL, "no WANHosts in {}");
	hl__oob_clear(&o);

	CHECK_INT(parse("{\"password\":\"abc\"}", &o), 0);
	CHECK_INT(o.has_password, 1);
	CHECK_STR(o.password, "abc");
	hl__oob_clear(&o);

	CHECK_INT(parse("{\"password\":\"\"}", &o), 0);
	CHECK_INT(o.has_password, 1);
	CHECK_STR(o.password, "");
	hl__oob_clear(&o);

	/* Python's json.dumps default separators, and a CR before the LF. */
	CHECK_INT(parse("{\"password\": \"hfhfdysvtziz6\"}\r", &o), 0);
	CHECK_STR(o.password, "hfhfdysvtziz6");
	hl__oob_clear(&o);

	CHECK_INT(parse("{\"WANHosts\":\"1.2.3.4:7008,[200:1::2]:7008\"}", &o),
	          0);
	CHECK_STR(o.wanhosts, "1.2.3.4:7008,[200:1::2]:7008");
	CHECK_INT(o.has_password, 0);
	hl__oob_clear(&o);
	CHECK(o.wanhosts == NULL, "clear resets wanhosts");
	hl__oob_clear(&o); /* twice is fine */

	/* Unknown fields are ignored, whatever their type. */
	CHECK_INT(parse("{\"x\":[1,{\"y\":null}],\"password\":\"pw\","
	                "\"WANHosts\":\"\",\"z\":1.5}",
	                &o),
	          0);
	CHECK_STR(o.password, "pw");
	CHECK_STR(o.wanhosts, "");
	hl__oob_clear(&o);

	/* The longest password. */
	CHECK_INT(parse("{\"password\":\"aaaaaaaaaaaaaaaaaaaaaa\"}", &o), 0);
	CHECK_INT(strlen(o.password), 22);
	hl__oob_clear(&o);

	/* Wrong types. */
	CHECK_INT(parse("{\"password\":1}", &o), -1);
	CHECK_INT(parse("{\"password\":null}", &o), -1);
	CHECK_INT(parse("{\"password\":[\"a\"]}", &o), -1);
	CHECK_INT(parse("{\"WANHosts\":[\"1.2.3.4:1\"]}", &o), -1);
	CHECK_INT(parse("{\"WANHosts\":false}", &o), -1);
	CHECK(o.wanhosts == NULL && o.has_password == 0,
	      "a refused line leaves nothing behind");
	CHECK_INT(parse("{\"WANHosts\":\"1.2.3.4:1\",\"password\":7}", &o), -1);
	CHECK(o.wanhosts == NULL, "no leak of WANHosts on a refused line");

	/* Malformed passwords. */
	CHECK_INT(parse("{\"password\":\"aaaaaaaaaaaaaaaaaaaaaaa\"}", &o), -1);
	CHECK_INT(parse("{\"password\":\"ABC\"}", &o), -1);
	CHECK_INT(parse("{\"password\":\"a1\"}", &o), -1);
	CHECK_INT(parse("{\"password\":\"a\\u0000b\"}", &o), -1);

	/* Not an object, not JSON, more than one value, duplicates. */
	CHECK_INT(parse("", &o), -1);
	CHECK_INT(parse("[]", &o), -1);
	CHECK_INT(parse("\"password\"", &o), -1);
	CHECK_INT(parse("null", &o), -1);
	CHECK_INT(parse("42", &o), -1);
	CHECK_INT(parse("{", &o), -1);
	CHECK_INT(parse("{}{}", &o), -1);
	CHECK_INT(parse("{} x", &o), -1);
	CHECK_INT(parse("{\"password\":\"a\",\"password\":\"b\"}", &o), -1);
	CHECK_INT(parse("{'password':'a'}", &o), -1);

	/* Exactly len bytes: what follows is not looked at. */
	{
		static const char s[] = "{\"password\":\"abc\"}\n{\"x\":1}";
		CHECK_INT(hl__oob_parse(s, 18, &o), 0);
		CHECK_STR(o.password, "abc");
		hl__oob_clear(&o);
		CHECK_INT(hl__oob_parse(s, 17, &o), -1);
	}
	/* An embedded NUL. */
	{
		static const char s[] = "{}\0";
		CHECK_INT(hl__oob_parse(s, 3, &o), -1);
	}
	/* Longer than the bound. */
	{
		size_t n = HL_OOB_MAX + 100;
		char *big = malloc(n);
		memset(big, ' ', n);
		big[0] = '{';
		big[n - 1] = '}';
		CHECK_INT(hl__oob_parse(big, n, &o), -1);
		CHECK_INT(hl__oob_parse(big + 100, HL_OOB_MAX, &o), -1);
		big[100] = '{';
		CHECK_INT(hl__oob_parse(big + 100, HL_OOB_MAX, &o), 0);
		free(big);
	}
}

/* hlcore's refusal at a cap: {"busy":"why","retry_ms":N}. */
static void
test_busy(void)
{
	struct hl__oob o;
	char *s;

	CHECK_INT(parse("{}", &o), 0);
	CHECK_INT(o.is_busy, 0);
	CHECK_INT(parse("{\"WANHosts\":\"1.2.3.4:1\",\"busy\":\"full\","
	                "\"retry_ms\":750}",
	                &o),
	          0);
	CHECK_INT(o.is_busy, 1);
	CHECK_STR(o.busy, "full");
	CHECK_INT(o.retry_ms, 750);
	CHECK_STR(o.wanhosts, "1.2.3.4:1");
	hl__oob_clear(&o);
	CHECK_INT(parse("{\"busy\":\"x\"}", &o), 0);
	CHECK_INT(o.retry_ms, 500); /* the default wait */
	CHECK_INT(parse("{\"busy\":7}", &o), -1);
	CHECK_INT(parse("{\"busy\":\"x\",\"retry_ms\":-1}", &o), -1);
	CHECK_INT(parse("{\"busy\":\"x\",\"retry_ms\":60001}", &o), -1);
	CHECK_INT(parse("{\"busy\":\"x\",\"retry_ms\":\"5\"}", &o), -1);
	{
		char big[400];
		snprintf(big, sizeof big, "{\"busy\":\"%0250d\"}", 0);
		CHECK_INT(parse(big, &o), -1); /* longer than we keep */
	}
	s = hl__oob_busy_line("1.2.3.4:1", "at \"cap\"", 250);
	CHECK_STR(s, "{\"WANHosts\":\"1.2.3.4:1\",\"busy\":\"at \\\"cap\\\"\","
	             "\"retry_ms\":250}\n");
	CHECK_INT(hl__oob_parse(s, strlen(s) - 1, &o), 0);
	CHECK_STR(o.busy, "at \"cap\"");
	hl__oob_clear(&o);
	free(s);
	s = hl__oob_busy_line("", "x", 0);
	CHECK_STR(s, "{\"busy\":\"x\",\"retry_ms\":0}\n");
	free(s);
}

static char *
server_line(const char *wanhosts)
{
	return hl__oob_server_line(wanhosts, NULL);
}

static void
test_lines(void)
{
	static const struct {
		char *(*line)(const char *);
		const char *value, *want;
	} lines[] = {
	    {server_line, NULL, "{}\n"},
	    {server_line, "", "{}\n"},
	    {server_line, "1.2.3.4:7008,[200:1::2]:7008",
	     "{\"WANHosts\":\"1.2.3.4:7008,[200:1::2]:7008\"}\n"},
	    {hl__oob_client_line, NULL, "{}\n"},
	    {hl__oob_client_line, "", "{}\n"},
	    {hl__oob_client_line, "abc", "{\"password\":\"abc\"}\n"},
	};
	struct hl__oob o;
	char *s;

	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		s = lines[i].line(lines[i].value);
		CHECK_STR(s, lines[i].want);
		free(s);
	}

	/* Round trips. */
	s = hl__oob_client_line("hfhfdysvtziz6");
	CHECK_INT(hl__oob_parse(s, strlen(s) - 1, &o), 0);
	CHECK_STR(o.password, "hfhfdysvtziz6");
	CHECK_INT(o.has_password, 1);
	hl__oob_clear(&o);
	free(s);

	/* A value that needs escaping comes back as it was. */
	s = server_line("a\"b\\c:1");
	CHECK_STR(s, "{\"WANHosts\":\"a\\\"b\\\\c:1\"}\n");
	CHECK_INT(hl__oob_parse(s, strlen(s) - 1, &o), 0);
	CHECK_STR(o.wanhosts, "a\"b\\c:1");
	hl__oob_clear(&o);
	free(s);

	/* Only one '\n', at the end. */
	s = server_line("x:1\ny:2");
	CHECK(s != NULL && strchr(s, '\n') == s + strlen(s) - 1,
	      "one newline in \"%s\"", s ? s : "(null)");
	free(s);
}

static void
test_wanhosts(void)
{
	char out[HL_WANHOSTS_MAX][HL_ADDR_MAX];
	int bad = -1;
	size_t n;

	n = hl__wanhosts_split("1.2.3.4:7008,[200:1::2]:7008", out,
	                       HL_WANHOSTS_MAX, &bad);
	CHECK_INT(n, 2);
	CHECK_INT(bad, 0);
	CHECK_STR(out[0], "1.2.3.4:7008");
	CHECK_STR(out[1], "[200:1::2]:7008");

	/* Spaces trimmed, empty entries skipped, bad ones counted. */
	n = hl__wanhosts_split(" 1.2.3.4:1 ,, host.example:2,\t,nope,"
	                       "::1:5,[::1]:0,[::1]:65536,1.2.3.4:,:80, "
	                       "[::1]:9 ,",
	                       out, HL_WANHOSTS_MAX, &bad);
	CHECK_INT(n, 3);
	CHECK_INT(bad, 6);
	CHECK_STR(out[0], "1.2.3.4:1");
	CHECK_STR(out[1], "host.example:2");
	CHECK_STR(out[2], "[::1]:9");

	n = hl__wanhosts_split("", out, HL_WANHOSTS_MAX, &bad);
	CHECK_INT(n, 0);
	CHECK_INT(bad, 0);
	n = hl__wanhosts_split(NULL, out, HL_WANHOSTS_MAX, &bad);
	CHECK_INT(n, 0);
	CHECK_INT(bad, 0);
	n = hl__wanhosts_split(",,, ,", out, HL_WANHOSTS_MAX, NULL);
	CHECK_INT(n, 0);

	/* At most max kept. */
	n = hl__wanhosts_split("a:1,b:2,c:3,d:4", out, 2, &bad);
	CHECK_INT(n, 2);
	CHECK_STR(out[1], "b:2");
	n = hl__wanhosts_split("a:1", out, 0, &bad);
	CHECK_INT(n, 0);

	/* An entry too long for HL_ADDR_MAX is bad, not cut. */
	{
		char big[HL_ADDR_MAX + 64];
		memset(big, 'a', sizeof big);
		memcpy(big + HL_ADDR_MAX - 2, ":1,b:2", 7);
		n = hl__wanhosts_split(big, out, HL_WANHOSTS_MAX, &bad);
		CHECK_INT(n, 1);
		CHECK_INT(bad, 1);
		CHECK_STR(out[0], "b:2");
		/* The longest that fits (HL_ADDR_MAX - 1 characters). */
		memcpy(big + HL_ADDR_MAX - 3, ":1", 3);
		n = hl__wanhosts_split(big, out, HL_WANHOSTS_MAX, &bad);
		CHECK_INT(n, 1);
		CHECK_INT(bad, 0);
		CHECK_INT(strlen(out[0]), HL_ADDR_MAX - 1);
	}
}

/* docs/protocol.md, "Endpoints": the vectors it states. */
static void
test_endpoints(void)
{
	char out[HL_WANHOSTS_MAX][HL_ADDR_MAX];
	struct hl__oob o;
	size_t n;
	int bad = -1;
	char *s;

	s = hl__oob_server_line("198.51.100.7:7008",
	                        "quic://198.51.100.7:7008");
	CHECK_STR(s, "{\"WANHosts\":\"198.51.100.7:7008\",\"Endpoints\":"
	             "\"quic://198.51.100.7:7008\"}\n");
	CHECK_INT(hl__oob_parse(s, strlen(s) - 1, &o), 0);
	CHECK_STR(o.wanhosts, "198.51.100.7:7008");
	CHECK_STR(o.endpoints, "quic://198.51.100.7:7008");
	hl__oob_clear(&o);
	free(s);
	s = hl__oob_server_line(NULL, "quic://[2001:db8::1]:7008");
	CHECK_STR(s, "{\"Endpoints\":\"quic://[2001:db8::1]:7008\"}\n");
	free(s);
	/* Not a string: the line is malformed, as for WANHosts. */
	CHECK_INT(hl__oob_parse("{\"Endpoints\":1}", 15, &o), -1);

	n = hl__endpoints_split(" quic://1.2.3.4:7008 ,,hub://hub.example:7777,"
	                        "1.2.3.4:7008,quic://1.2.3.4:0,QUIC://a:1,"
	                        "quic://host.example:9,quic://::1:5,x://,"
	                        "relay://turn.example:3478/abc",
	                        out, HL_WANHOSTS_MAX, 0, &bad);
	CHECK_INT((int)n, 4);
	CHECK_INT(bad, 5);
	CHECK_STR(out[0], "quic://1.2.3.4:7008");
	CHECK_STR(out[1], "hub://hub.example:7777");
	CHECK_STR(out[2], "quic://host.example:9");
	CHECK_STR(out[3], "relay://turn.example:3478/abc");
	/* The peer cache keeps bare addresses beside them. */
	n = hl__endpoints_split("1.2.3.4:7008,quic://1.2.3.4:7008,a/b:1", out,
	                        HL_WANHOSTS_MAX, 1, &bad);
	CHECK_INT((int)n, 2);
	CHECK_INT(bad, 1);
	CHECK_STR(out[0], "1.2.3.4:7008");
	CHECK_STR(out[1], "quic://1.2.3.4:7008");
	CHECK_INT(hl__endpoint_check("quic://1.2.3.4:7008", 19), 0);
	CHECK_INT(hl__endpoint_check("quic://1.2.3.4:7008 ", 20), -1);
	CHECK_INT(hl__endpoint_check("abcdefghijklmnop://x", 20), -1);
	CHECK_INT(hl__endpoint_check("abcdefghijklmno://x", 19), 0);
}

int
main(void)
{
	test_parse();
	test_lines();
	test_busy();
	test_wanhosts();
	test_endpoints();
	return check_done();
}
