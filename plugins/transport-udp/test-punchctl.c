/*
 * test-punchctl: the punch control stream's lines (docs/protocol.md,
 * "Punch control stream") against the document's vectors, both ways, what
 * the parser refuses, labels and the constant-time compare.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "punchctl.h"

#define KH "4edde683894d49d6c60b396ebe3c05deb97d4ab3"

/* Parse line (no LF), format it again: the same line. */
static void
round_trip(const char *line, int type)
{
	struct punchctl m;
	char *exact = check_exact(line, strlen(line));
	char out[PUNCHCTL_LINE_MAX + 2];
	size_t n;

	CHECK(punchctl_parse(exact, strlen(line), &m) == 0, "parses: %s", line);
	free(exact);
	CHECK_INT(m.type, type);
	n = punchctl_format(&m, out, sizeof out);
	CHECK(n == strlen(line) + 1 && out[n - 1] == '\n' &&
	          memcmp(out, line, n - 1) == 0,
	      "formats back: %s, got %.*s", line, (int)n, out);
}

static void
refused(const char *line)
{
	struct punchctl m;
	char *exact = check_exact(line, strlen(line));

	CHECK(punchctl_parse(exact, strlen(line), &m) != 0, "refused: \"%s\"",
	      line);
	free(exact);
}

static void
test_vectors(void)
{
	struct punchctl m;
	char out[PUNCHCTL_LINE_MAX + 2];

	round_trip("HELLO 1 0001020304050607 hfhfdysvtziz6", PUNCHCTL_HELLO);
	round_trip("HELLO 1 0001020304050607 -", PUNCHCTL_HELLO);
	round_trip("OK", PUNCHCTL_OK);
	round_trip("NO password", PUNCHCTL_NO);
	round_trip("NO forbidden", PUNCHCTL_NO);
	round_trip("CANDS host 10.1.0.2:40000 srflx 11.0.0.2:40000",
	           PUNCHCTL_CANDS);
	round_trip("CANDS", PUNCHCTL_CANDS);
	round_trip("CANDS host [2001:db8::1]:7 srflx 1.2.3.4:65535",
	           PUNCHCTL_CANDS);
	round_trip("READY 11.0.0.3:5000", PUNCHCTL_READY);
	round_trip("FAIL no answer to 120 probes in 6.0 s", PUNCHCTL_FAIL);

	CHECK(punchctl_parse("HELLO 1 0001020304050607 abc234", 31, &m) == 0,
	      "HELLO");
	CHECK_STR(m.password, "abc234");
	CHECK(m.txid[0] == 0 && m.txid[7] == 7, "txid");
	CHECK(punchctl_parse("HELLO 1 00010203040506AB -", 26, &m) == 0 &&
	          m.password[0] == '\0' && m.txid[7] == 0xab,
	      "HELLO without a password, uppercase hex");
	CHECK(punchctl_parse("CANDS host 10.1.0.2:40000 srflx 11.0.0.2:9", 42,
	                     &m) == 0 &&
	          m.ncands == 2 && m.cands[0].kind == 1 &&
	          m.cands[1].kind == 2 && m.cands[1].addr.port == 9 &&
	          m.cands[1].addr.family == 4 && m.cands[1].addr.ip[0] == 11,
	      "CANDS fields");
	m.type = PUNCHCTL_NO;
	snprintf(m.text, sizeof m.text, "Busy");
	CHECK(punchctl_format(&m, out, sizeof out) == 0, "NO Busy not made");
	m.type = PUNCHCTL_FAIL;
	snprintf(m.text, sizeof m.text, "a\nb");
	CHECK(punchctl_format(&m, out, sizeof out) == 0, "FAIL with LF");
	m.type = PUNCHCTL_OK;
	CHECK(punchctl_format(&m, out, 4) == 3 && strcmp(out, "OK\n") == 0,
	      "OK in 4 bytes (with the NUL)");
	CHECK(punchctl_format(&m, out, 3) == 0, "OK in 3 bytes");
}

static void
test_refused(void)
{
	static const char *const bad[] = {
	    "",
	    "ok",
	    "OK ",
	    " OK",
	    "OK x",
	    "HELLO 2 0001020304050607 -",
	    "HELLO 1 000102030405060 -",
	    "HELLO 1 00010203040506070 -",
	    "HELLO 1 000102030405060g -",
	    "HELLO 1 0001020304050607",
	    "HELLO 1 0001020304050607 ",
	    "HELLO 1 0001020304050607 Abc",
	    "HELLO 1 0001020304050607 abc1",
	    "HELLO 1 0001020304050607 abcdefghijklmnopqrstuvw",
	    "HELLO 1 0001020304050607 a b",
	    "HELLO  1 0001020304050607 -",
	    "NO",
	    "NO Password",
	    "NO pass word",
	    "NO abcdefghijklmnopqrstuvwxyzabcdefg",
	    "CANDS host",
	    "CANDS host 1.2.3.4",
	    "CANDS host 1.2.3.4:0",
	    "CANDS host 1.2.3.4:65536",
	    "CANDS host 1.2.3.4:080",
	    "CANDS host 1.2.3.4:+80",
	    "CANDS peer 1.2.3.4:80",
	    "CANDS host 1.2.3:80",
	    "CANDS host ::1:80",
	    "CANDS host [1.2.3.4]:80",
	    "CANDS host 1.2.3.4:80 ",
	    "CANDS host 1.1.1.1:1 host 1.1.1.1:2 host 1.1.1.1:3 host "
	    "1.1.1.1:4 host 1.1.1.1:5 host 1.1.1.1:6 host 1.1.1.1:7 host "
	    "1.1.1.1:8 host 1.1.1.1:9",
	    "READY",
	    "READY 1.2.3.4:5 x",
	    "READY name.example:5",
	    "FAIL",
	    "FAIL ",
	    "FAIL\tx",
	    "BYE",
	};

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		refused(bad[i]);
	{
		char big[PUNCHCTL_LINE_MAX + 2];
		struct punchctl m;
		memset(big, 'x', sizeof big);
		memcpy(big, "FAIL ", 5);
		CHECK(punchctl_parse(big, PUNCHCTL_LINE_MAX + 1, &m) != 0,
		      "a line over the maximum");
		big[5 + PUNCHCTL_TEXT_MAX + 1] = '\0';
		CHECK(punchctl_parse(big, strlen(big), &m) != 0,
		      "FAIL text over %d", PUNCHCTL_TEXT_MAX);
		big[5 + PUNCHCTL_TEXT_MAX] = '\0';
		CHECK(punchctl_parse(big, strlen(big), &m) == 0,
		      "FAIL text of %d", PUNCHCTL_TEXT_MAX);
	}
	{
		char nul[] = "OK";
		struct punchctl m;
		nul[1] = '\0';
		CHECK(punchctl_parse(nul, 2, &m) != 0, "a NUL in the line");
	}
}

static void
test_labels(void)
{
	char pw[PUNCHCTL_PASSWORD_MAX + 1], kh[41];

	CHECK(punchctl_label("hfhfdysvtziz6-" KH, pw, kh) == 0, "label");
	CHECK_STR(pw, "hfhfdysvtziz6");
	CHECK_STR(kh, KH);
	CHECK(punchctl_label("-4EDDE683894D49D6C60B396EBE3C05DEB97D4AB3."
	                     "localhost.",
	                     pw, kh) == 0,
	      "label without a password, .localhost., uppercase");
	CHECK_STR(pw, "");
	CHECK_STR(kh, KH);
	CHECK(punchctl_label("abc-" KH ".LOCALHOST", pw, kh) == 0,
	      ".LOCALHOST");
	CHECK(punchctl_label(KH, pw, kh) != 0, "no dash");
	CHECK(punchctl_label("ab1-" KH, pw, kh) != 0, "bad password");
	CHECK(punchctl_label("abcdefghijklmnopqrstuvw-" KH, pw, kh) != 0,
	      "password of 23");
	CHECK(punchctl_label("abc-" KH "0", pw, kh) != 0, "41 hex");
	CHECK(punchctl_label("abc-4edde683894d49d6c60b396ebe3c05deb97d4abz", pw,
	                     kh) != 0,
	      "not hex");
	CHECK(punchctl_label("abc-" KH ".example", pw, kh) != 0,
	      "another domain");
}

int
main(void)
{
	test_vectors();
	test_refused();
	test_labels();
	return check_done();
}
