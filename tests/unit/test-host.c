/*
 * test-host.c: finding the Host header in a browser's request head, and
 * the Hardline name in it (docs/protocol.md, "URL and Host").
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hl.h"

#define H "b1aa4003e8bf17d4403bebd468cf53a3b575366a"
#define H_UPPER "B1AA4003E8BF17D4403BEBD468CF53A3B575366A"

/* hl__http_find_host on a string; the Host value is copied to host. */
static int
find(const char *req, char *host, size_t hostlen)
{
	const char *h = NULL;
	size_t n = 0;
	int rc;

	size_t len = strlen(req);
	char *buf = check_exact(req, len);

	rc = hl__http_find_host(buf, len, &h, &n);
	host[0] = '\0';
	if (rc == 1) {
		if (n >= hostlen)
			n = hostlen - 1;
		memcpy(host, h, n);
		host[n] = '\0';
	}
	free(buf);
	return rc;
}

/* hl__host_parse on a string; returns its result. */
static int
parse(const char *host, char pw[HL_PASSWORD_MAX + 1],
      char kh[HL_KEYHASH_LEN + 1])
{
	size_t len = strlen(host);
	char *buf = check_exact(host, len);
	int rc = hl__host_parse(buf, len, pw, kh);

	free(buf);
	return rc;
}

static void
test_find_host(void)
{
	char host[512];

	CHECK_INT(find("GET / HTTP/1.1\r\nHost: pw-" H ".localhost:7009\r\n"
	               "Accept: */*\r\n\r\n",
	               host, sizeof host),
	          1);
	CHECK_STR(host, "pw-" H ".localhost:7009");

	/* Any case for the header name, any whitespace around the value. */
	CHECK_INT(find("GET / HTTP/1.1\r\nHOST:x.localhost\r\n\r\n", host,
	               sizeof host),
	          1);
	CHECK_STR(host, "x.localhost");
	CHECK_INT(find("GET / HTTP/1.1\r\nhOsT: \t x.localhost \t\r\n\r\n",
	               host, sizeof host),
	          1);
	CHECK_STR(host, "x.localhost");
	CHECK_INT(find("GET / HTTP/1.1\r\nUser-Agent: a\r\nhost : y\r\n\r\n",
	               host, sizeof host),
	          1);
	CHECK_STR(host, "y");

	/* Bare LF line ends; leading empty lines. */
	CHECK_INT(find("GET / HTTP/1.0\nHost: z\n\n", host, sizeof host), 1);
	CHECK_STR(host, "z");
	CHECK_INT(
	    find("\r\nGET / HTTP/1.1\r\nHost: z\r\n\r\n", host, sizeof host),
	    1);
	CHECK_STR(host, "z");

	/* Incomplete heads want more bytes. */
	CHECK_INT(find("", host, sizeof host), 0);
	CHECK_INT(find("GE", host, sizeof host), 0);
	CHECK_INT(find("GET / HTTP/1.1\r\n", host, sizeof host), 0);
	CHECK_INT(
	    find("GET / HTTP/1.1\r\nHost: a.localhost\r\n", host, sizeof host),
	    0);
	CHECK_INT(find("GET / HTTP/1.1\r\nHost: a.localhost\r\n\r", host,
	               sizeof host),
	          0);

	/* A complete head without a Host, or not HTTP at all. */
	CHECK_INT(
	    find("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", host, sizeof host),
	    -1);
	CHECK_INT(find("GET / HTTP/1.1\r\nX-Host: a\r\nHostname: b\r\n\r\n",
	               host, sizeof host),
	          -1);
	CHECK_INT(find("\x16\x03\x01\x02\x00\x01", host, sizeof host), -1);
	CHECK_INT(find(" GET / HTTP/1.1\r\n", host, sizeof host), -1);
	CHECK_INT(find("GET /\r\nHost: a\r\n\r\n", host, sizeof host), -1);
	CHECK_INT(find("SSH-2.0-OpenSSH_9.2\r\n", host, sizeof host), -1);
	CHECK_INT(find("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
	               host, sizeof host),
	          -1);

	/* Two Host headers, or a folded one, are ambiguous. */
	CHECK_INT(find("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", host,
	               sizeof host),
	          -1);
	CHECK_INT(
	    find("GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", host, sizeof host),
	    -1);
	/* A folded other header is harmless. */
	CHECK_INT(find("GET / HTTP/1.1\r\nX: a\r\n b\r\nHost: c\r\n\r\n", host,
	               sizeof host),
	          1);
	CHECK_STR(host, "c");

	/* Bytes after the head (a body) are not looked at. */
	CHECK_INT(find("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n"
	               "Host: x\r\n",
	               host, sizeof host),
	          -1);

	/* A head that never ends wants more bytes: the caller bounds it (and
	 * answers 431). */
	{
		size_t n = HL_HTTP_HEAD_MAX + 10, i;
		char *big = malloc(n + 1);
		const char *h;
		size_t hl;
		memcpy(big, "GET / HTTP/1.1\r\n", 16);
		for (i = 16; i < n; i++)
			big[i] = (i % 64 == 63) ? '\n' : 'a';
		big[n] = '\0';
		CHECK_INT(hl__http_find_host(big, 1000, &h, &hl), 0);
		CHECK_INT(hl__http_find_host(big, n, &h, &hl), 0);
		/* ... and once it ends, it is read whole. */
		memcpy(big + n - 13, "\nHost: x\r\n\r\n", 12);
		CHECK_INT(hl__http_find_host(big, n - 1, &h, &hl), 1);
		CHECK_INT(hl, 1);
		free(big);
	}
}

static void
test_host_parse(void)
{
	char pw[HL_PASSWORD_MAX + 1], kh[HL_KEYHASH_LEN + 1];

	CHECK_INT(parse("pw-" H ".localhost:7009", pw, kh), 0);
	CHECK_STR(pw, "pw");
	CHECK_STR(kh, H);

	/* The label just before "localhost". */
	CHECK_INT(parse("www.pw-" H ".localhost:7009", pw, kh), 0);
	CHECK_STR(pw, "pw");
	CHECK_STR(kh, H);
	CHECK_INT(parse("a.b.c.hfhfdysvtziz6-" H ".localhost", pw, kh), 0);
	CHECK_STR(pw, "hfhfdysvtziz6");

	/* No password: the dash stays. */
	CHECK_INT(parse("-" H ".localhost:7009", pw, kh), 0);
	CHECK_STR(pw, "");
	CHECK_STR(kh, H);

	/* Any case for the hash (out in lowercase), the name, the password. */
	CHECK_INT(parse("pw-" H_UPPER ".LocalHost:7009", pw, kh), 0);
	CHECK_STR(kh, H);
	CHECK_INT(parse("PW-" H ".localhost", pw, kh), 0);
	CHECK_STR(pw, "pw");

	/* Without a port, with a trailing dot, with whitespace. */
	CHECK_INT(parse("pw-" H ".localhost", pw, kh), 0);
	CHECK_INT(parse("pw-" H ".localhost.", pw, kh), 0);
	CHECK_INT(parse("pw-" H ".localhost.:80", pw, kh), 0);
	CHECK_INT(parse(" pw-" H ".localhost:7009 ", pw, kh), 0);
	CHECK_STR(kh, H);

	/* Split at the last '-'; the password part must still be valid. */
	CHECK_INT(parse("a-b-" H ".localhost", pw, kh), -1);

	/* Not Hardline names. */
	CHECK_INT(parse("localhost:7009", pw, kh), -1);
	CHECK_INT(parse(".localhost", pw, kh), -1);
	CHECK_INT(parse("example.com", pw, kh), -1);
	CHECK_INT(parse("pw-" H ".example.com", pw, kh), -1);
	CHECK_INT(parse("pw-" H "localhost", pw, kh), -1);
	CHECK_INT(parse("pw-" H ".localhost.com", pw, kh), -1);
	CHECK_INT(parse("pw-" H ".notlocalhost", pw, kh), -1);
	CHECK_INT(parse(H ".localhost", pw, kh), -1); /* no dash */
	CHECK_INT(parse("pw-" H "0.localhost", pw, kh), -1); /* 41 hex */
	CHECK_INT(parse("pw-b1aa4003e8bf17d4403bebd468cf53a3b575366.localhost",
	                pw, kh),
	          -1); /* 39 hex */
	CHECK_INT(parse("pw-g1aa4003e8bf17d4403bebd468cf53a3b575366a.localhost",
	                pw, kh),
	          -1); /* not hex */
	CHECK_INT(parse("p1-" H ".localhost", pw, kh), -1); /* '1' */
	CHECK_INT(parse("p_w-" H ".localhost", pw, kh), -1); /* '_' */
	CHECK_INT(parse("aaaaaaaaaaaaaaaaaaaaaaa-" H ".localhost", pw, kh),
	          -1); /* 23 characters */
	CHECK_INT(parse("aaaaaaaaaaaaaaaaaaaaaa-" H ".localhost", pw, kh), 0);
	CHECK_INT(parse("pw-" H ".localhost:", pw, kh), -1);
	CHECK_INT(parse("pw-" H ".localhost:70a9", pw, kh), -1);
	CHECK_INT(parse("pw-" H ".localhost:123456", pw, kh), -1);
	CHECK_INT(parse("[::1]:7009", pw, kh), -1);
	CHECK_INT(parse("", pw, kh), -1);
	CHECK_INT(parse("pw-" H "..localhost", pw, kh), -1);

	/* An embedded NUL is not a shorter password. */
	{
		static const char nul[] = "p\0-" H ".localhost";
		CHECK_INT(hl__host_parse(nul, sizeof nul - 1, pw, kh), -1);
	}
	/* Only len bytes count. */
	{
		static const char s[] = "pw-" H ".localhost:7009garbage";
		CHECK_INT(hl__host_parse(s, sizeof s - 1 - 7, pw, kh), 0);
		CHECK_STR(kh, H);
	}
}

static void
test_together(void)
{
	static const char req[] =
	    "GET /wiki/Main HTTP/1.1\r\n"
	    "host: www.sesame-" H_UPPER ".localhost:7009\r\n"
	    "Connection: keep-alive\r\n\r\n";
	char pw[HL_PASSWORD_MAX + 1], kh[HL_KEYHASH_LEN + 1];
	const char *h;
	size_t n;

	CHECK_INT(hl__http_find_host(req, sizeof req - 1, &h, &n), 1);
	CHECK_INT(hl__host_parse(h, n, pw, kh), 0);
	CHECK_STR(pw, "sesame");
	CHECK_STR(kh, H);
}

int
main(void)
{
	test_find_host();
	test_host_parse();
	test_together();
	return check_done();
}
