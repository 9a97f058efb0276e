/*
 * test-dht-key: the DHT key against docs/protocol.md's test vectors, the
 * midnight windows, and the record and proxy-line parsers.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "check.h"

#include "dht-key.h"
#include "dht-value.h"

static void
check_str(const char *got, const char *want, const char *what)
{
	CHECK(strcmp(got, want) == 0, "%s: expected %s, got %s", what, want,
	      got);
}

static void
test_vectors(void)
{
	static const struct {
		uint64_t day;
		const char *rolling, *key;
	} vectors[] = {
	    {19000, "3936c95c19f0b9f43a7cc45a6e2ca85429fc40f3",
	     "167a53807b43416fb4d1b9ea83d01a0451438c31"},
	    {19001, "26f55605ec3dfb7346b240fcd4c07d4bd51ab5ed",
	     "796a66cf0034b18d67a8e474ed3f09b9d4dd5f09"},
	};
	const char *kh = "000102030405060708090a0b0c0d0e0f10111213";
	char out[41], what[64];

	for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
		unsigned day = (unsigned)vectors[i].day;
		CHECK(dht_rolling_code(kh, vectors[i].day, out) == 0,
		      "rolling code %u", day);
		snprintf(what, sizeof what, "rolling code, day %u", day);
		check_str(out, vectors[i].rolling, what);
		CHECK(dht_key(kh, vectors[i].day, out) == 0, "key %u", day);
		snprintf(what, sizeof what, "key, day %u", day);
		check_str(out, vectors[i].key, what);
	}
	/* Any case in, the same key out. */
	CHECK(dht_key("000102030405060708090A0B0C0D0E0F10111213", 19000, out) ==
	          0,
	      "upper-case keyhash");
	check_str(out, "167a53807b43416fb4d1b9ea83d01a0451438c31",
	          "key of the upper-case keyhash");
	CHECK(dht_key("00010203", 19000, out) == -1, "short keyhash refused");
	CHECK(dht_key("g00102030405060708090a0b0c0d0e0f1011121", 19000, out) ==
	          -1,
	      "non-hex keyhash refused");
}

static void
test_days(void)
{
	uint64_t d[2];
	int64_t day = 19000LL * 86400;

	CHECK(dht_key_days(day + 43200, d) == 1 && d[0] == 19000,
	      "noon: today only");
	CHECK(dht_key_days(day + 10, d) == 2 && d[0] == 19000 && d[1] == 18999,
	      "just after midnight: today and yesterday");
	CHECK(dht_key_days(day + 3599, d) == 2, "59 min after midnight");
	CHECK(dht_key_days(day + 3600, d) == 1, "60 min after midnight");
	CHECK(dht_key_days(day + 86400 - 3600, d) == 2 && d[1] == 19001,
	      "an hour before midnight: today and tomorrow");
	CHECK(dht_key_days(day + 86399, d) == 2 && d[1] == 19001,
	      "a second before midnight");
	CHECK(dht_key_days_next_change(day + 43200) == 43200 - 3600,
	      "noon: next change at 23:00, got %lld",
	      (long long)dht_key_days_next_change(day + 43200));
	CHECK(dht_key_days_next_change(day + 86399) == 1,
	      "23:59:59: next change in 1 s");
	CHECK(dht_key_days_next_change(day) == 3600, "00:00: next in 1 h");
}

static size_t
parse(const char *s, char out[][DHT_ADDR_MAX], enum dht_value_result want)
{
	size_t n = 99;
	const char *why = NULL;
	enum dht_value_result r = dht_value_parse(s, strlen(s), out, &n, &why);

	CHECK(r == want, "parse \"%s\": expected %d, got %d (%s)", s, want, r,
	      why ? why : "");
	return n;
}

static void
test_parse(void)
{
	char out[DHT_VALUE_ADDRS_MAX][DHT_ADDR_MAX], big[2048];
	size_t n;

	n = parse("198.51.100.7:7008", out, DHT_VALUE_OK);
	CHECK(n == 1 && strcmp(out[0], "198.51.100.7:7008") == 0, "one v4");
	n = parse("198.51.100.7:7008,[2001:db8::1]:7008, host.example:1", out,
	          DHT_VALUE_OK);
	CHECK(n == 3 && strcmp(out[1], "[2001:db8::1]:7008") == 0 &&
	          strcmp(out[2], "host.example:1") == 0,
	      "v4, v6 and a name");
	n = parse("1.2.3.4:5,1.2.3.4:5", out, DHT_VALUE_OK);
	CHECK(n == 1, "duplicates folded, got %zu", n);
	parse("", out, DHT_VALUE_EMPTY);
	parse("  ", out, DHT_VALUE_EMPTY);
	parse("1.2.3.4", out, DHT_VALUE_MALFORMED);
	parse("1.2.3.4:0", out, DHT_VALUE_MALFORMED);
	parse("1.2.3.4:65536", out, DHT_VALUE_MALFORMED);
	parse("1.2.3.4:07008", out, DHT_VALUE_MALFORMED);
	parse("1.2.3.4:+80", out, DHT_VALUE_MALFORMED);
	parse("1.2.3.256:80", out, DHT_VALUE_MALFORMED);
	parse("0.0.0.0:80", out, DHT_VALUE_MALFORMED);
	parse("[::]:80", out, DHT_VALUE_MALFORMED);
	parse("2001:db8::1:80", out, DHT_VALUE_MALFORMED);
	parse("[2001:db8::1]80", out, DHT_VALUE_MALFORMED);
	parse("[zz]:80", out, DHT_VALUE_MALFORMED);
	parse("-bad.example:80", out, DHT_VALUE_MALFORMED);
	parse("a..b:80", out, DHT_VALUE_MALFORMED);
	parse("a_b:80", out, DHT_VALUE_MALFORMED);
	parse("1.2.3.4:80,", out, DHT_VALUE_MALFORMED);
	parse("1.2.3.4:80,,5.6.7.8:9", out, DHT_VALUE_MALFORMED);
	parse("1.2.3.4:80\n", out, DHT_VALUE_MALFORMED);
	parse("good.example:80,http://x/", out, DHT_VALUE_MALFORMED);
	parse("1.2.3:80", out, DHT_VALUE_MALFORMED);
	/* 16 addresses pass, 17 do not. */
	big[0] = '\0';
	for (int i = 1; i <= 17; i++) {
		char a[32];
		snprintf(a, sizeof a, "%s10.0.0.%d:7008", i > 1 ? "," : "", i);
		strcat(big, a);
		if (i == 16)
			parse(big, out, DHT_VALUE_OK);
	}
	parse(big, out, DHT_VALUE_MALFORMED);
	/* 1 KiB passes, 1 KiB + 1 does not: 15 names of 58 letters and
	 * one of 59, each with ":7008", and 15 commas. */
	big[0] = '\0';
	for (int i = 0; i < 16; i++) {
		char a[80];
		int l = i < 15 ? 58 : 59;
		memset(a, 'a' + i, (size_t)l);
		memcpy(a + l, ":7008", 6);
		if (i > 0)
			strcat(big, ",");
		strcat(big, a);
	}
	CHECK(strlen(big) == 1024, "a 1 KiB record, got %zu", strlen(big));
	n = parse(big, out, DHT_VALUE_OK);
	CHECK(n == 16, "1 KiB record: 16 addresses, got %zu", n);
	memmove(big + 1, big, strlen(big) + 1);
	big[0] = 'a';
	{
		const char *why = NULL;
		CHECK(dht_value_parse(big, 1025, out, &n, &why) ==
		              DHT_VALUE_MALFORMED &&
		          strcmp(why, "longer than 1 KiB") == 0,
		      "1 KiB + 1: refused for its size (%s)", why);
	}
}

static void
test_make(void)
{
	char out[DHT_VALUE_MAX + 1];
	size_t dropped;

	CHECK(dht_value_make("1.2.3.4:5,[2001:db8::1]:6", out, sizeof out,
	                     &dropped) == 25 &&
	          dropped == 0,
	      "make: both kept (%s)", out);
	CHECK(dht_value_make("bad,1.2.3.4:5", out, sizeof out, &dropped) == 9 &&
	          dropped == 1 && strcmp(out, "1.2.3.4:5") == 0,
	      "make: bad one dropped (%s)", out);
	CHECK(dht_value_make("", out, sizeof out, &dropped) == 0 &&
	          out[0] == '\0',
	      "make: empty");
}

static void
test_proxy_line(void)
{
	unsigned char buf[DHT_VALUE_MAX];
	const char *l1 = "{\"data\":\"MTAuMC4wLjE6NzAwOA==\",\"id\":\"1\","
	                 "\"type\":0}";
	long n = dht_proxy_line(l1, strlen(l1), buf, sizeof buf);

	CHECK(n == 13 && memcmp(buf, "10.0.0.1:7008", 13) == 0,
	      "proxy line decodes, got %ld", n);
	CHECK(dht_proxy_line("{}", 2, buf, sizeof buf) == -1, "no data");
	CHECK(dht_proxy_line("{\"data\":\"!!\"}", 13, buf, sizeof buf) == -1,
	      "bad base64");
	CHECK(dht_proxy_line("[1]", 3, buf, sizeof buf) == -1, "not an object");
	CHECK(dht_proxy_line("{\"data\":\"\"}", 11, buf, sizeof buf) == 0,
	      "empty data");
	CHECK(dht_proxy_line("{\"data\":\"YWJj\"", 14, buf, sizeof buf) == -1,
	      "cut short");
	CHECK(dht_proxy_line("{\"data\":\"YWJjZA==\"}", 19, buf, 3) == -1,
	      "larger than the buffer");
}

int
main(void)
{
	check_setup(sodium_init() >= 0, "sodium_init");
	test_vectors();
	test_days();
	test_parse();
	test_make();
	test_proxy_line();
	return check_done();
}
