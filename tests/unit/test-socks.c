/*
 * test-socks.c: the SOCKS5 front's parser (RFC 1928) and hl__label_parse:
 * what is accepted (no authentication, CONNECT to a Hardline name), the
 * code every other request gets, and "more bytes needed" for every
 * prefix of a valid message.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hl.h"

#define H "b1aa4003e8bf17d4403bebd468cf53a3b575366a"

/* Exactly len bytes on the heap, so that ASan sees any read past them. */
static int
greeting(const char *msg, size_t len, size_t *used)
{
	unsigned char *b = check_exact(msg, len);
	int r = hl__socks_greeting(b, len, used);

	free(b);
	return r;
}

static int
request(const unsigned char *msg, size_t len, size_t *used,
        struct hl__socks_request *req)
{
	unsigned char *b = check_exact(msg, len);
	int r = hl__socks_request(b, len, used, req);

	free(b);
	return r;
}

/* A request: VER CMD RSV ATYP, then addr (with its length byte for a
 * name) and port 80. */
static size_t
build(unsigned char *out, int cmd, int atyp, const void *addr, size_t alen)
{
	size_t n = 0;

	out[n++] = 5;
	out[n++] = (unsigned char)cmd;
	out[n++] = 0;
	out[n++] = (unsigned char)atyp;
	if (atyp == 3)
		out[n++] = (unsigned char)alen;
	memcpy(out + n, addr, alen);
	n += alen;
	out[n++] = 0;
	out[n++] = 80;
	return n;
}

static void
test_greeting(void)
{
	size_t used = 99;

	CHECK_INT(greeting("", 0, &used), 0);
	CHECK_INT(greeting("\x05", 1, &used), 0);
	CHECK_INT(greeting("\x05\x01", 2, &used), 0);
	CHECK_INT(greeting("\x05\x01\x00", 3, &used), 1);
	CHECK_INT(used, 3);
	CHECK_INT(greeting("\x05\x03\x02\x01\x00", 5, &used), 1);
	CHECK_INT(used, 5);
	/* Only username/password or GSSAPI: complete, none acceptable. */
	CHECK_INT(greeting("\x05\x02\x02\x01", 4, &used), 2);
	CHECK_INT(used, 4);
	/* Bytes after the greeting (the request) are not part of it. */
	CHECK_INT(greeting("\x05\x01\x00\x05\x01", 5, &used), 1);
	CHECK_INT(used, 3);
	CHECK_INT(greeting("\x04\x01\x00\x50", 4, &used), -1); /* SOCKS4 */
	CHECK_INT(greeting("GET / HTTP/1.1\r\n", 16, &used), -1);
	CHECK_INT(greeting("\x05\x00", 2, &used), -1); /* no method */
	{
		/* 255 methods, none of them 0: bounded and complete. */
		char big[257];
		big[0] = 5;
		big[1] = (char)255;
		memset(big + 2, 0x80, 255);
		CHECK_INT(greeting(big, 256, &used), 0);
		CHECK_INT(greeting(big, 257, &used), 2);
		CHECK_INT(used, HL_SOCKS_GREETING_MAX);
	}
}

static void
test_connect(void)
{
	unsigned char msg[300];
	struct hl__socks_request req;
	const char *name = "pw2345-" H ".localhost";
	size_t used, n = build(msg, 1, 3, name, strlen(name));

	CHECK_INT(request(msg, n, &used, &req), 1);
	CHECK_INT(used, n);
	CHECK_INT(req.rep, HL_SOCKS_SUCCEEDED);
	CHECK_STR(req.password, "pw2345");
	CHECK_STR(req.keyhash, H);
	CHECK_STR(req.name, name);
	CHECK_INT(req.port, 80);
	/* Every prefix needs more bytes. */
	for (size_t i = 0; i < n; i++) {
		int r = request(msg, i, &used, &req);
		CHECK(r == 0, "a prefix of %zu bytes: expected 0, got %d", i,
		      r);
	}
	/* No password, uppercase, a subdomain, a trailing dot. */
	name = "www.-"
	       "B1AA4003E8BF17D4403BEBD468CF53A3B575366A"
	       ".LOCALHOST.";
	n = build(msg, 1, 3, name, strlen(name));
	CHECK_INT(request(msg, n, &used, &req), 1);
	CHECK_INT(req.rep, HL_SOCKS_SUCCEEDED);
	CHECK_STR(req.password, "");
	CHECK_STR(req.keyhash, H);
}

static void
test_refusals(void)
{
	unsigned char msg[300], v4[4] = {127, 0, 0, 1}, v6[16] = {0};
	struct hl__socks_request req;
	const char *name = "pw-" H ".localhost";
	size_t used, n;
	static const struct {
		const char *what, *name;
	} bad_names[] = {
	    {"another name", "example.com"},
	    {"a port in the name", "pw-" H ".localhost:80"},
	    {"a NUL in the name", "pw-" H ".localhost\0x"},
	    {"a space", "pw -" H ".localhost"},
	    {"a short hash", "pw-b1aa4003.localhost"},
	    {"uppercase is fine but 0 and 1 are not passwords",
	     "pw01-" H ".localhost"},
	    {"localhost alone", "localhost"},
	};

	n = build(msg, 2, 3, name, strlen(name));
	CHECK_INT(request(msg, n, &used, &req), 1);
	CHECK_INT(req.rep, HL_SOCKS_COMMAND_NOT_SUPPORTED); /* BIND */
	n = build(msg, 3, 3, name, strlen(name));
	CHECK_INT(request(msg, n, &used, &req), 1);
	CHECK_INT(req.rep, HL_SOCKS_COMMAND_NOT_SUPPORTED); /* UDP */
	CHECK_STR(req.keyhash, "");
	n = build(msg, 1, 1, v4, sizeof v4);
	CHECK_INT(request(msg, n, &used, &req), 1);
	CHECK_INT(used, 10);
	CHECK_INT(req.rep, HL_SOCKS_ADDRESS_NOT_SUPPORTED);
	n = build(msg, 1, 4, v6, sizeof v6);
	CHECK_INT(request(msg, n, &used, &req), 1);
	CHECK_INT(used, 22);
	CHECK_INT(req.rep, HL_SOCKS_ADDRESS_NOT_SUPPORTED);
	/* An unknown address type: refused as soon as it shows. */
	CHECK_INT(
	    request((const unsigned char *)"\x05\x01\x00\x09", 4, &used, &req),
	    1);
	CHECK_INT(used, 4);
	CHECK_INT(req.rep, HL_SOCKS_ADDRESS_NOT_SUPPORTED);
	for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
		size_t len = strlen(bad_names[i].name);
		if (strstr(bad_names[i].what, "NUL") != NULL)
			len += 2;
		n = build(msg, 1, 3, bad_names[i].name, len);
		CHECK_INT(request(msg, n, &used, &req), 1);
		CHECK(req.rep == HL_SOCKS_NOT_ALLOWED,
		      "%s: expected code 2, got %d", bad_names[i].what,
		      req.rep);
		CHECK_STR(req.keyhash, "");
	}
	/* An empty name. */
	n = build(msg, 1, 3, "", 0);
	CHECK_INT(request(msg, n, &used, &req), 1);
	CHECK_INT(req.rep, HL_SOCKS_NOT_ALLOWED);
	/* Malformed: wrong version, reserved byte set. */
	n = build(msg, 1, 3, name, strlen(name));
	msg[0] = 4;
	CHECK_INT(request(msg, n, &used, &req), -1);
	msg[0] = 5;
	msg[2] = 1;
	CHECK_INT(request(msg, n, &used, &req), -1);
	CHECK_INT(request((const unsigned char *)"\x04", 1, &used, &req), -1);
}

static void
test_replies(void)
{
	unsigned char r[10], r4[8];

	hl__socks_reply(r, HL_SOCKS_HOST_UNREACHABLE);
	CHECK(memcmp(r, "\x05\x04\x00\x01\x00\x00\x00\x00\x00\x00", 10) == 0,
	      "the reply: 05 04 00 01 and a zero address and port");
	hl__socks4_refusal(r4);
	CHECK(memcmp(r4, "\x00\x5b\x00\x00\x00\x00\x00\x00", 8) == 0,
	      "the SOCKS4 refusal: 00 5B and zeros");
}

static void
test_label(void)
{
	char pw[HL_PASSWORD_MAX + 1], kh[HL_KEYHASH_LEN + 1];

	CHECK_INT(hl__label_parse("pw2345-" H, pw, kh), 0);
	CHECK_STR(pw, "pw2345");
	CHECK_STR(kh, H);
	CHECK_INT(hl__label_parse("-" H ".localhost", pw, kh), 0);
	CHECK_STR(pw, "");
	CHECK_INT(hl__label_parse("pw-" H ".localhost.", pw, kh), 0);
	CHECK_INT(hl__label_parse("PW-" H, pw, kh), 0);
	CHECK_STR(pw, "pw");
	CHECK_INT(hl__label_parse(H, pw, kh), -1); /* no '-' */
	CHECK_INT(hl__label_parse("pw-" H ".localhost:22", pw, kh), -1);
	CHECK_INT(hl__label_parse("www.pw-" H, pw, kh), -1);
	CHECK_INT(hl__label_parse("pw-" H ".example.com", pw, kh), -1);
	CHECK_INT(hl__label_parse("pw -" H, pw, kh), -1);
	CHECK_INT(hl__label_parse("", pw, kh), -1);
	CHECK_INT(hl__label_parse("pw1-" H, pw, kh), -1);
}

int
main(void)
{
	test_greeting();
	test_connect();
	test_refusals();
	test_replies();
	test_label();
	return check_done();
}
