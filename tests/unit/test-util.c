/*
 * test-util.c: the SDK's helpers (hardline/util.h), as plugins and the
 * core use them: hex, keyhashes, "host:port", comma lists, socket
 * addresses as text, loopback, intrusive lists, monotonic time and
 * pauses, and integer settings.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "check.h"
#include "hl.h"

static void
test_hex(void)
{
	static const char digits[] = "0123456789abcdefABCDEF";
	unsigned char raw[4], back[4] = {0x00, 0xff, 0x7f, 0xa0};
	char text[9], *p;

	for (int c = -1; c < 256; c++) {
		const char *d = c > 0 ? strchr(digits, c) : NULL;
		int i = d != NULL ? (int)(d - digits) : -1;
		int want = i < 16 ? i : i - 6;
		CHECK(hl_hexval(c) == want,
		      "hl_hexval(%d): expected %d, got %d", c, want,
		      hl_hexval(c));
	}
	CHECK_INT(hl_hexval((char)0xe0), -1);

	CHECK_INT(hl_hex_decode("00fF7fA0", 4, raw), 0);
	CHECK(memcmp(raw, back, 4) == 0, "hex_decode: 00 ff 7f a0");
	CHECK_INT(hl_hex_decode("00ff7fa0 and more", 4, raw), 0);
	CHECK_INT(hl_hex_decode("00fg7fa0", 4, raw), -1);
	CHECK_INT(hl_hex_decode("00f", 4, raw), -1); /* stops at the NUL */
	p = check_exact("0",
	                2); /* "0" and its NUL: ASan sees a read past them */
	CHECK_INT(hl_hex_decode(p, 4, raw), -1);
	free(p);
	CHECK_INT(hl_hex_decode("", 0, raw), 0);

	hl_hex_encode(back, 4, text);
	CHECK_STR(text, "00ff7fa0");
	hl_hex_encode(back, 0, text);
	CHECK_STR(text, "");
}

static void
test_keyhash(void)
{
	static const char mixed[] = "B1AA4003e8bf17d4403BEBD468CF53A3B575366A";
	char out[41], *p;

	CHECK_INT(hl_keyhash_lower(mixed, 40, out), 0);
	CHECK_STR(out, "b1aa4003e8bf17d4403bebd468cf53a3b575366a");
	p = check_exact(mixed, 40); /* no NUL: nothing past len is read */
	CHECK_INT(hl_keyhash_lower(p, 40, out), 0);
	free(p);
	CHECK_INT(hl_keyhash_lower(mixed, 39, out), -1);
	CHECK_INT(hl_keyhash_lower(mixed, 41, out), -1);
	CHECK_INT(hl_keyhash_lower("g1aa4003e8bf17d4403bebd468cf53a3b575366a",
	                           40, out),
	          -1);
	CHECK_INT(hl_keyhash_lower("", 0, out), -1);

	CHECK_INT(
	    hl_keyhash_is_lower("b1aa4003e8bf17d4403bebd468cf53a3b575366a"), 1);
	CHECK_INT(hl_keyhash_is_lower(mixed), 0);
	CHECK_INT(
	    hl_keyhash_is_lower("b1aa4003e8bf17d4403bebd468cf53a3b575366"), 0);
	CHECK_INT(
	    hl_keyhash_is_lower("b1aa4003e8bf17d4403bebd468cf53a3b575366aa"),
	    0);
	CHECK_INT(
	    hl_keyhash_is_lower("g1aa4003e8bf17d4403bebd468cf53a3b575366a"), 0);
	CHECK_INT(hl_keyhash_is_lower(""), 0);
}

static void
test_addr_split(void)
{
	static const struct {
		const char *addr;
		const char *host; /* NULL: refused */
		unsigned port;
	} cases[] = {
	    {"127.0.0.1:7008", "127.0.0.1", 7008},
	    {"[::1]:80", "::1", 80},
	    {"[200:1::2]:7008", "200:1::2", 7008},
	    {"example.org:443", "example.org", 443},
	    {"host:0", "host", 0}, /* a listener's "any port" */
	    {"host:65535", "host", 65535},
	    {"host:007", "host", 7},
	    {"host:65536", NULL, 0},
	    {"host:", NULL, 0},
	    {":80", NULL, 0},
	    {"host", NULL, 0},
	    {"", NULL, 0},
	    {"::1:80", NULL, 0}, /* IPv6 needs brackets */
	    {"[::1]80", NULL, 0},
	    {"[::1]", NULL, 0},
	    {"[]:80", NULL, 0},
	    {"[::1:80", NULL, 0},
	    {"ho st:80", NULL, 0},
	    {"host: 80", NULL, 0},
	    {"host:+80", NULL, 0},
	    {"host:-0", NULL, 0},
	    {"host:80x", NULL, 0},
	    {"a/b:80", NULL, 0},
	    {"a]b:80", NULL, 0},
	    {"h\tst:80", NULL, 0},
	    {"h\x7fst:80", NULL, 0},
	    {"h\xc3\xa9st:80", NULL, 0},
	    {"host:99999999999999999999", NULL, 0},
	};
	char host[300];
	uint16_t port;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int rc;
		strcpy(host, "untouched");
		port = 1234;
		rc = hl_addr_split(cases[i].addr, host, sizeof host, &port);
		if (cases[i].host == NULL) {
			CHECK(rc == -1 && strcmp(host, "untouched") == 0 &&
			          port == 1234,
			      "\"%s\": expected refused, got %d (%s, %u)",
			      cases[i].addr, rc, host, port);
		} else {
			CHECK(rc == 0 && strcmp(host, cases[i].host) == 0 &&
			          port == cases[i].port,
			      "\"%s\": expected %s and %u, got %d (%s, %u)",
			      cases[i].addr, cases[i].host, cases[i].port, rc,
			      host, port);
		}
	}
	CHECK_INT(hl_addr_split(NULL, host, sizeof host, &port), -1);
	/* The host and its NUL must fit in hostlen. */
	CHECK_INT(hl_addr_split("abcd:1", host, 4, &port), -1);
	CHECK_INT(hl_addr_split("abcd:1", host, 5, &port), 0);
	CHECK_STR(host, "abcd");
	CHECK_INT(hl_addr_split("[abcd]:1", host, 4, &port), -1);
	/* The core wants a real port. */
	CHECK_INT(hl__addr_split("host:0", host, sizeof host, &port), -1);
	CHECK_INT(hl__addr_split("host:1", host, sizeof host, &port), 0);
}

static void
test_split_next(void)
{
	static const char list[] = " a:1, [v6]:2 ,,\tb:3,";
	static const char *const want[] = {"a:1", "[v6]:2", "", "b:3", ""};
	size_t len = sizeof list - 1, pos = 0, a, b, n = 0;
	char *s = check_exact(list, len);

	while (hl_split_next(s, len, &pos, &a, &b)) {
		CHECK(n < 5 && b - a == strlen(want[n]) &&
		          memcmp(s + a, want[n], b - a) == 0,
		      "item %zu: expected \"%s\", got \"%.*s\"", n,
		      n < 5 ? want[n] : "(none)", (int)(b - a), s + a);
		n++;
	}
	CHECK_INT(n, 5);
	CHECK_INT(pos, len + 1);
	free(s);

	pos = 0;
	CHECK_INT(hl_split_next("", 0, &pos, &a, &b), 1); /* one empty item */
	CHECK_INT(b - a, 0);
	CHECK_INT(hl_split_next("", 0, &pos, &a, &b), 0);
	pos = 0;
	CHECK_INT(hl_split_next("x:1,y:2", 3, &pos, &a, &b), 1); /* len */
	CHECK_INT(b - a, 3);
	CHECK_INT(hl_split_next("x:1,y:2", 3, &pos, &a, &b), 0);
}

static void
test_sockaddr(void)
{
	static const struct {
		int family;
		const char *ip;
		unsigned port;
		const char *text;
		int loopback;
	} cases[] = {
	    {AF_INET, "192.0.2.1", 7008, "192.0.2.1:7008", 0},
	    {AF_INET, "127.1.2.3", 1, "127.1.2.3:1", 1},
	    {AF_INET6, "200:1::2", 443, "[200:1::2]:443", 0},
	    {AF_INET6, "::1", 443, "[::1]:443", 1},
	    {AF_INET6, "::2", 443, "[::2]:443", 0},
	    /* What a dual-stack listener reports for an IPv4 peer. */
	    {AF_INET6, "::ffff:127.0.0.9", 443, "127.0.0.9:443", 1},
	    {AF_INET6, "::ffff:10.0.0.1", 443, "10.0.0.1:443", 0},
	    /* The longest there is fits in HL_SOCKADDR_STRLEN. */
	    {AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535,
	     "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", 0},
	};
	struct sockaddr_un su = {.sun_family = AF_UNIX};
	char out[HL_SOCKADDR_STRLEN];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct sockaddr_storage ss;
		const struct sockaddr *sa = (const struct sockaddr *)&ss;
		unsigned char ip[16];
		socklen_t len;
		int lo;

		inet_pton(cases[i].family, cases[i].ip, ip);
		len = hl_sockaddr_make(&ss, cases[i].family, ip,
		                       (uint16_t)cases[i].port);
		CHECK_INT(len, cases[i].family == AF_INET
		                   ? sizeof(struct sockaddr_in)
		                   : sizeof(struct sockaddr_in6));
		hl_sockaddr_str(sa, out, sizeof out);
		CHECK(strcmp(out, cases[i].text) == 0,
		      "%s: expected \"%s\", got \"%s\"", cases[i].ip,
		      cases[i].text, out);
		lo = hl_sockaddr_is_loopback(sa);
		CHECK(lo == cases[i].loopback, "%s: loopback %d, expected %d",
		      cases[i].ip, lo, cases[i].loopback);
		if (i == 0) {
			hl_sockaddr_str(sa, out, 5);
			CHECK_STR(out, "192."); /* cut, and NUL-ended */
		}
	}
	{
		struct sockaddr_storage ss;
		CHECK_INT(hl_sockaddr_make(&ss, AF_UNIX, "x", 1), 0);
		CHECK_INT(ss.ss_family, 0);
	}
	hl_sockaddr_str((struct sockaddr *)&su, out, sizeof out);
	CHECK_STR(out, "(unknown address family 1)");
	CHECK_INT(hl_sockaddr_is_loopback((struct sockaddr *)&su), 0);
}

struct item {
	int v;
	struct item *next, **prevp;
};

static void
check_list(struct item *head, const char *want)
{
	char got[16] = "";
	size_t n = 0;

	for (struct item *i = head; i != NULL && n + 1 < sizeof got;
	     i = i->next) {
		got[n++] = (char)('0' + i->v);
		CHECK(*i->prevp == i, "item %d: prevp does not point to it",
		      i->v);
	}
	got[n] = '\0';
	CHECK_STR(got, want);
}

static void
test_list(void)
{
	struct item it[4] = {{.v = 0}, {.v = 1}, {.v = 2}, {.v = 3}};
	struct item *head = NULL;

	for (int i = 0; i < 4; i++)
		HL_LIST_INSERT(head, &it[i]);
	check_list(head, "3210");
	HL_LIST_REMOVE(&it[2]); /* the middle */
	check_list(head, "310");
	HL_LIST_REMOVE(&it[3]); /* the head */
	check_list(head, "10");
	HL_LIST_REMOVE(&it[0]); /* the tail */
	check_list(head, "1");
	HL_LIST_REMOVE(&it[1]);
	CHECK(head == NULL, "the list is empty again");
}

/* ---- hl_conf_int, through a services table over the core's config ---- */

static char conf_err[512];

static void
record_conf_error(struct hl_plugin *self, const struct hl_conf *node,
                  const char *fmt, ...)
{
	size_t used = strlen(conf_err);
	FILE *f = fmemopen(conf_err + used, sizeof conf_err - used, "w");
	va_list ap;

	(void)self;
	va_start(ap, fmt);
	hl__conf_verror(f, node, fmt, ap);
	va_end(ap);
	fclose(f);
}

static void
test_queue(void)
{
	struct item {
		int n;
		struct item *next;
	} items[3] = {{1, NULL}, {2, NULL}, {3, NULL}}, *head, **tail, *list;

	HL_QUEUE_INIT(head, tail);
	HL_QUEUE_TAKE_ALL(list, head, tail);
	CHECK(list == NULL && head == NULL && tail == &head, "empty");
	for (int i = 0; i < 3; i++)
		HL_QUEUE_PUSH(head, tail, &items[i]);
	HL_QUEUE_TAKE_ALL(list, head, tail);
	CHECK(head == NULL && tail == &head, "empty once taken");
	for (int i = 1; i <= 3; i++, list = list->next)
		CHECK(list != NULL && list->n == i, "item %d in order", i);
	CHECK(list == NULL, "and no more");
	HL_QUEUE_PUSH(head, tail, &items[1]);
	CHECK(head == &items[1] && items[1].next == NULL &&
	          tail == &items[1].next,
	      "a queue used again");
}

static void
test_time_and_pauses(void)
{
	static const int proxy[] = {50, 100, 200, 400, 800, 1600, 2000, 2000};
	long long a = hl_mono_ms(), b = hl_mono_ms();
	struct timeval tv = hl_timeval_ms(2345);
	int ms = 0;

	CHECK(a > 0 && b >= a, "hl_mono_ms went from %lld to %lld", a, b);
	CHECK_INT(tv.tv_sec, 2);
	CHECK_INT(tv.tv_usec, 345000);
	tv = hl_timeval_ms(0);
	CHECK_INT(tv.tv_sec, 0);
	CHECK_INT(tv.tv_usec, 0);

	CHECK_INT(hl_accept_out_of_descriptors(EMFILE), 1);
	CHECK_INT(hl_accept_out_of_descriptors(ENFILE), 1);
	CHECK_INT(hl_accept_out_of_descriptors(ENOBUFS), 1);
	CHECK_INT(hl_accept_out_of_descriptors(ENOMEM), 1);
	CHECK_INT(hl_accept_out_of_descriptors(ECONNABORTED), 0);
	CHECK_INT(hl_accept_out_of_descriptors(0), 0);

	/* The proxy's pauses: 50 ms doubling up to 2 s, and staying. */
	for (size_t i = 0; i < sizeof proxy / sizeof proxy[0]; i++) {
		ms = hl_pause_next(ms, 50, 2000);
		CHECK_INT(ms, proxy[i]);
	}
	CHECK_INT(hl_pause_next(-1, 100, 3200), 100);
	CHECK_INT(hl_pause_next(1600, 100, 3200), 3200);
	CHECK_INT(hl_pause_next(1601, 100, 3200), 3200);
	CHECK_INT(hl_pause_next(3200, 100, 3200), 3200);
	CHECK_INT(hl_pause_next(2, 1, 5), 4);
	CHECK_INT(hl_pause_next(3, 1, 5), 5);
}

static struct event_base *
fake_event_base(struct hl_plugin *self)
{
	return (struct event_base *)self; /* only compared */
}

static char logged[256];
static int logged_level;

static void
record_log(struct hl_plugin *self, int level, const char *fmt, ...)
{
	va_list ap;

	(void)self;
	logged_level = level;
	va_start(ap, fmt);
	vsnprintf(logged, sizeof logged, fmt, ap);
	va_end(ap);
}

static void
test_core_lacks(void)
{
	const struct hl_services svc = {.size = sizeof svc,
	                                .abi_major = 1,
	                                .abi_minor = 0,
	                                .log = record_log};

	CHECK_INT(hl_core_lacks(&svc, NULL, "svc->browse (ABI 1.1)"), -1);
	CHECK_STR(logged,
	          "this hlcore (ABI 1.0) lacks svc->browse (ABI 1.1): upgrade "
	          "hlcore");
	CHECK_INT(logged_level, HL_LOG_ERROR);
}

static void
test_state_new(void)
{
	const struct hl_services svc = {.size = sizeof svc,
	                                .event_base = fake_event_base};
	struct hl_plugin *self = (struct hl_plugin *)&svc;
	struct state {
		int before;
		const struct hl_services *svc;
		struct hl_plugin *self;
		struct event_base *base;
		int after;
	} * st;

	HL_STATE_NEW(st, &svc, self);
	CHECK(st != NULL, "HL_STATE_NEW allocated");
	if (st == NULL)
		return;
	CHECK(st->svc == &svc && st->self == self &&
	          st->base == (struct event_base *)self,
	      "svc, self and base set");
	CHECK(st->before == 0 && st->after == 0, "the rest zeroed");
	free(st);
}

static void
test_conf_int(void)
{
	static const char yaml[] = "plugins:\n"
	                           "  p: { a: 42, b: x, c: 99999, d: -3, "
	                           "e: \"\", f: [1], g: \" 7\" }\n";
	const struct hl_services svc = {
	    .size = sizeof svc,
	    .conf_get = hl__conf_get,
	    .conf_str = hl__conf_str,
	    .conf_error = record_conf_error,
	};
	struct hl__config *cfg;
	const struct hl_conf *p;
	int n = 0, v;

	cfg = hl__config_parse("t.yaml", yaml, sizeof yaml - 1, NULL, &n);
	CHECK(cfg != NULL && n == 0, "the test config parses");
	if (cfg == NULL)
		return;
	p = cfg->plugins[0].node;

	v = 5;
	CHECK_INT(hl_conf_int(&svc, NULL, p, "a", 0, 100, &v), 0);
	CHECK_INT(v, 42);
	v = 5; /* absent: the default stays */
	CHECK_INT(hl_conf_int(&svc, NULL, p, "missing", 0, 100, &v), 0);
	CHECK_INT(v, 5);
	CHECK_INT(hl_conf_int(&svc, NULL, p, "d", -3, -3, &v), 0);
	CHECK_INT(v, -3);
	CHECK_INT(hl_conf_int(&svc, NULL, p, "g", 0, 100, &v), 0); /* strtol */
	CHECK_INT(v, 7);
	CHECK_STR(conf_err, "");

	static const struct {
		const char *key, *err;
	} bad[] = {
	    {"b", "t.yaml:2:18: b: expected a number from 0 to 100\n"},
	    {"c", "t.yaml:2:24: c: expected a number from 0 to 100\n"},
	    {"d", "t.yaml:2:34: d: expected a number from 0 to 100\n"},
	    {"e", "t.yaml:2:41: e: expected a number\n"},
	    {"f", "t.yaml:2:48: f: expected a number\n"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		conf_err[0] = '\0';
		v = 5;
		CHECK_INT(hl_conf_int(&svc, NULL, p, bad[i].key, 0, 100, &v),
		          -1);
		CHECK_INT(v, 5);
		CHECK_STR(conf_err, bad[i].err);
	}
	hl__config_free(cfg);
}

/* A token bucket: the burst at once, then per_sec a second, never more
 * than the burst however long it stayed unused. */
static void
test_rate(void)
{
	struct hl_rate b = {0, 0};
	int ok = 0;

	for (int i = 0; i < 5; i++)
		ok += hl_rate_take(&b, 3, 2, 1000);
	CHECK_INT(ok, 3);
	CHECK_INT(hl_rate_take(&b, 3, 2, 1400), 0); /* 0.8 of a token */
	CHECK_INT(hl_rate_take(&b, 3, 2, 1500), 1); /* one after 0.5 s */
	ok = 0;
	for (int i = 0; i < 5; i++)
		ok += hl_rate_take(&b, 3, 2, 100000); /* idle: full, no more */
	CHECK_INT(ok, 3);
}

/* Records per address: the port left out, IPv4-mapped IPv6 the same as
 * IPv4, made only when asked, freed one by one or all at once. */
static void
test_addr_records(void)
{
	struct rec {
		struct hl_addr_rec rec;
		int count;
	} * a, *b;
	struct hl_addr_rec *tab[8] = {0};
	struct sockaddr_in v4 = {.sin_family = AF_INET, .sin_port = htons(1)};
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6,
	                          .sin6_port = htons(2)};
	struct sockaddr un = {.sa_family = AF_UNIX};

	inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr);
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &v6.sin6_addr);
	CHECK(hl_addr_rec_get(tab, 8, (struct sockaddr *)&v4, sizeof *a, 0) ==
	          NULL,
	      "no record made without create");
	a = hl_addr_rec_get(tab, 8, (struct sockaddr *)&v4, sizeof *a, 1);
	CHECK(a != NULL && a->count == 0, "a new record, zeroed");
	a->count = 5;
	b = hl_addr_rec_get(tab, 8, (struct sockaddr *)&v6, sizeof *b, 1);
	CHECK(b == a, "the IPv4-mapped address, another port: the same");
	CHECK(hl_addr_rec_get(tab, 8, &un, sizeof *a, 1) == NULL,
	      "another family: none");
	inet_pton(AF_INET, "192.0.2.8", &v4.sin_addr);
	b = hl_addr_rec_get(tab, 8, (struct sockaddr *)&v4, sizeof *b, 1);
	CHECK(b != NULL && b != a && b->count == 0, "another address: its own");
	hl_addr_rec_free(tab, 8, &b->rec);
	CHECK(hl_addr_rec_get(tab, 8, (struct sockaddr *)&v4, sizeof *b, 0) ==
	          NULL,
	      "freed: gone");
	hl_addr_table_free(tab, 8);
	for (int i = 0; i < 8; i++)
		CHECK(tab[i] == NULL, "the table is empty after freeing");
}

int
main(void)
{
	test_hex();
	test_keyhash();
	test_addr_split();
	test_split_next();
	test_sockaddr();
	test_list();
	test_queue();
	test_time_and_pauses();
	test_state_new();
	test_core_lacks();
	test_conf_int();
	test_rate();
	test_addr_records();
	return check_done();
}
