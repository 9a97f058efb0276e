/*
 * test-lanpacket: the LAN discovery packets and the rolling code against
 * the examples of docs/protocol.md ("LAN discovery"): what is sent, byte
 * for byte, and what is taken or refused when heard.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "check.h"

#include "lanpacket.h"

#define H "b1aa4003e8bf17d4403bebd468cf53a3b575366a"

static int
parse(const char *s, struct lan_packet *p, const char **why)
{
	*why = "";
	return lan_parse((const unsigned char *)s, strlen(s), p, why);
}

static void
test_rolling_code(void)
{
	unsigned char raw[20];
	char out[41];

	/* The same vectors as the DHT key's (unit/test-dht-key): keyhash
	 * 000102...13, days 19000 and 19001. */
	for (int i = 0; i < 20; i++)
		raw[i] = (unsigned char)i;
	lan_rolling_code(raw, 19000, out);
	CHECK(strcmp(out, "3936c95c19f0b9f43a7cc45a6e2ca85429fc40f3") == 0,
	      "rolling code, day 19000: got %s", out);
	lan_rolling_code(raw, 19001, out);
	CHECK(strcmp(out, "26f55605ec3dfb7346b240fcd4c07d4bd51ab5ed") == 0,
	      "rolling code, day 19001: got %s", out);
	CHECK(lan_hex20("000102030405060708090A0B0C0D0E0F10111213", raw) == 0 &&
	          raw[19] == 0x13,
	      "hex in any case");
	CHECK(lan_hex20("0001", raw) == -1, "short hex refused");
}

static void
test_format(void)
{
	char out[512];
	size_t n;

	n = lan_format_search(out, sizeof out,
	                      "3936c95c19f0b9f43a7cc45a6e2ca85429fc40f3",
	                      "c00k1e");
	CHECK(n == strlen(out) &&
	          strcmp(out, "HARDLINE-SEARCH * HTTP/1.1\r\n"
	                      "Infohash: "
	                      "3936c95c19f0b9f43a7cc45a6e2ca85429fc40f3\r\n"
	                      "cookie: c00k1e\r\n"
	                      "\r\n\r\n") == 0,
	      "search: got \"%s\"", out);
	n = lan_format_search(out, sizeof out, "", "c00k1e");
	CHECK(n > 0 && strstr(out, "\r\nInfohash: \r\n") != NULL,
	      "search for every service: got \"%s\"", out);

	n = lan_format_service(out, sizeof out, 7008, "-" H, "c00k1e",
	                       "Home wiki");
	CHECK(n == strlen(out) && strcmp(out, "HARDLINE-SERVICE * HTTP/1.1\r\n"
	                                      "Port: 7008\r\n"
	                                      "Infohash: -" H "\r\n"
	                                      "cookie: c00k1e\r\n"
	                                      "title: Home wiki\r\n"
	                                      "\r\n\r\n") == 0,
	      "announce: got \"%s\"", out);
	/* A title cannot add a line. */
	n = lan_format_service(out, sizeof out, 7008, "-" H, "c", "a\r\nb");
	CHECK(n > 0 && strstr(out, "title: a  b\r\n") != NULL,
	      "control characters in a title become spaces: got \"%s\"", out);
	CHECK(lan_format_service(out, sizeof out, 0, "-" H, "c", "t") == 0,
	      "port 0 refused");
}

static void
test_parse(void)
{
	struct lan_packet p;
	const char *why;

	CHECK(parse("HARDLINE-SEARCH * HTTP/1.1\r\nInfohash: \r\n"
	            "cookie: x\r\n\r\n\r\n",
	            &p, &why) == 0 &&
	          p.kind == LAN_SEARCH && p.infohash[0] == '\0' &&
	          strcmp(p.cookie, "x") == 0,
	      "search for every service (%s)", why);
	CHECK(parse("HARDLINE-SERVICE * HTTP/1.1\r\nPort: 7008\r\n"
	            "Infohash: sesame-B1AA4003E8BF17D4403BEBD468CF53A3B575366A"
	            "\r\ncookie: x\r\ntitle: Wiki\r\nX-Other: y\r\n\r\n\r\n",
	            &p, &why) == 0 &&
	          p.kind == LAN_SERVICE && p.port == 7008 &&
	          strcmp(p.password, "sesame") == 0 &&
	          strcmp(p.keyhash, H) == 0 &&
	          strcmp(p.infohash, "sesame-" H) == 0 &&
	          strcmp(p.title, "Wiki") == 0,
	      "announce with a password, the hash in upper case (%s)", why);
	CHECK(parse("HARDLINE-SERVICE * HTTP/1.1\r\nport: 1\r\n"
	            "infohash: " H "\r\n\r\n",
	            &p, &why) == 0 &&
	          strcmp(p.infohash, "-" H) == 0,
	      "a bare hash is read as -<hash>; names in any case (%s)", why);

	/* Refused. */
	static const struct {
		const char *packet, *what;
	} refused[] = {
	    {"HARDLINE-SEARCH * HTTP/1.1\nInfohash: \n\n\n", "LF-only lines"},
	    {"HARDLINE-SEARCH * HTTP/1.0\r\nInfohash: \r\n\r\n",
	     "another first line"},
	    {"HARDLINE-SEARCH * HTTP/1.1\r\nInfohash: abc\r\n\r\n",
	     "a search for something that is not 40 hex"},
	    {"HARDLINE-SERVICE * HTTP/1.1\r\nPort: 7008\r\nPort: 7009"
	     "\r\nInfohash: -" H "\r\n\r\n",
	     "a field given twice"},
	    {"HARDLINE-SERVICE * HTTP/1.1\r\nInfohash: -" H "\r\n\r\n",
	     "an announce without a Port"},
	    {"HARDLINE-SERVICE * HTTP/1.1\r\nPort: 65536\r\n"
	     "Infohash: -" H "\r\n\r\n",
	     "Port 65536"},
	    {"HARDLINE-SERVICE * HTTP/1.1\r\nPort: 7008\r\n"
	     "Infohash: Sesame-" H "\r\n\r\n",
	     "a password with an upper-case letter"},
	    {"HARDLINE-SERVICE * HTTP/1.1\r\nPort: 7008\r\n"
	     "Infohash: -" H "\r\n",
	     "no blank line after the fields"},
	};

	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		CHECK(parse(refused[i].packet, &p, &why) == -1, "refused: %s",
		      refused[i].what);
}

int
main(void)
{
	check_setup(sodium_init() >= 0, "sodium_init");
	test_rolling_code();
	test_format();
	test_parse();
	return check_done();
}
