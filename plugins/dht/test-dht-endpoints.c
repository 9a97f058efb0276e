/*
 * test-dht-endpoints: hlcore's endpoints record in the DHT against the
 * test vectors of docs/protocol.md ("The endpoints record"): its keys,
 * the bytes it signs, the record tests/vectors/dht-endpoints.hex (made
 * by the independent Python code in tests/lib/netlab.py), and what the
 * parser refuses: forged, replayed, oversized and malformed records.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "hardline/util.h"

#include "dht-endpoints.h"
#include "dht-key.h"

#define KH "4edde683894d49d6c60b396ebe3c05deb97d4ab3"
#define KH0 "000102030405060708090a0b0c0d0e0f10111213"
#define TEXT "quic://198.51.100.7:7008,hub://hub.example.org:7777"
#define DAY 19000
#define SIGNED_HEX                                                             \
	"686172646c696e652d6468742d656e64706f696e74732d763100"                 \
	"484c455001000000000000004a38" KH "0033"                               \
	"717569633a2f2f3139382e35312e3130302e373a373030382c"                   \
	"6875623a2f2f6875622e6578616d706c652e6f72673a37373737"

static unsigned char vec[DHT_EP_MAX + 16];
static size_t vec_len;
static char key_pem[8192];
static const unsigned char *cert;
static size_t cert_len;

static enum dht_ep_result
open_rec(const unsigned char *rec, size_t len, const char *kh, uint64_t day,
         struct dht_ep_record *r)
{
	const char *why = NULL;
	enum dht_ep_result res = dht_ep_open(rec, len, kh, day, r, &why);

	CHECK(res == DHT_EP_OK || why != NULL, "a refusal says why");
	CHECK(res == DHT_EP_OK || r->n == 0, "a refusal hands out nothing");
	return res;
}

static void
test_keys(void)
{
	char out[41], wan[41];

	CHECK(dht_ep_key(KH0, 19000, out) == 0, "key, day 19000");
	CHECK_STR(out, "abc6be6cc4ded33a64f48ec815599362ba6517cc");
	CHECK(dht_ep_key(KH0, 19001, out) == 0, "key, day 19001");
	CHECK_STR(out, "f7483b008e254c82b6496a919d9d03beba013dca");
	CHECK(dht_ep_key(KH, DAY, out) == 0, "key of the vector");
	CHECK_STR(out, "dd38310926bcf46c3f9e4f08f7d36007847ee68e");
	CHECK(dht_ep_key("4EDDE683894D49D6C60B396EBE3C05DEB97D4AB3", DAY,
	                 out) == 0,
	      "upper-case keyhash");
	CHECK_STR(out, "dd38310926bcf46c3f9e4f08f7d36007847ee68e");
	/* Not the key Python Hardline reads. */
	CHECK(dht_key(KH0, 19000, wan) == 0 && strcmp(wan, out) != 0,
	      "the WANHosts key differs");
	CHECK(dht_ep_key("00010203", DAY, out) == -1, "short keyhash refused");
}

static void
test_vector(void)
{
	unsigned char tbs[256], made[DHT_EP_MAX];
	char hex[2 * sizeof tbs + 1];
	struct dht_ep_record r;
	const char *why = NULL;
	size_t n, m;

	CHECK(vec_len == 553, "dht-endpoints.hex: %zu bytes", vec_len);
	CHECK(dht_ep_parse(vec, vec_len, &r, &why) == DHT_EP_OK,
	      "the vector parses: %s", why ? why : "");
	CHECK(r.day == DAY && r.n == 2 && r.cert_len == 390 &&
	          r.signed_len == 87,
	      "the vector's fields");
	n = dht_ep_signed_data(vec, r.signed_len, tbs, sizeof tbs);
	hl_hex_encode(tbs, n, hex);
	CHECK(n == 113 && strcmp(hex, SIGNED_HEX) == 0, "signed data %s", hex);
	CHECK(open_rec(vec, vec_len, KH, DAY, &r) == DHT_EP_OK,
	      "the vector's signature verifies");
	CHECK(r.n == 2, "two endpoints");
	CHECK_STR(r.eps[0], "quic://198.51.100.7:7008");
	CHECK_STR(r.eps[1], "hub://hub.example.org:7777");
	cert = r.cert;
	cert_len = r.cert_len;

	/* Made here: the same bytes up to the signature (ECDSA signatures
	 * are randomised, so the rest is checked by verifying). */
	m = dht_ep_make(KH, DAY, TEXT, cert, cert_len, key_pem, made,
	                sizeof made, &why);
	CHECK(m > 0, "made: %s", why ? why : "");
	CHECK(m > 479 && memcmp(made, vec, 479) == 0,
	      "made: the vector's bytes up to the signature");
	CHECK(open_rec(made, m, KH, DAY, &r) == DHT_EP_OK, "made: opens");
}

static void
test_forged(void)
{
	unsigned char buf[DHT_EP_MAX + 16];
	struct dht_ep_record r;
	const char *why;
	size_t m;

	CHECK(open_rec(vec, vec_len, KH, DAY + 1, &r) == DHT_EP_FORGED,
	      "replayed under the next day's key");
	CHECK(open_rec(vec, vec_len, KH0, DAY, &r) == DHT_EP_FORGED,
	      "read for another service");
	memcpy(buf, vec, vec_len);
	buf[36 + 23] = '9'; /* quic://198.51.100.7:7009 */
	CHECK(open_rec(buf, vec_len, KH, DAY, &r) == DHT_EP_FORGED,
	      "an endpoint changed");
	memcpy(buf, vec, vec_len);
	buf[vec_len - 1] ^= 1;
	CHECK(open_rec(buf, vec_len, KH, DAY, &r) == DHT_EP_FORGED,
	      "a signature byte changed");
	memcpy(buf, vec, vec_len);
	buf[36 + 51 + 2 + 200] ^= 1;
	CHECK(open_rec(buf, vec_len, KH, DAY, &r) == DHT_EP_FORGED,
	      "a certificate byte changed");
	/* Signed by this key, but claiming another keyhash: its
	 * certificate does not hash to it. */
	m = dht_ep_make(KH0, DAY, TEXT, cert, cert_len, key_pem, buf,
	                sizeof buf, &why);
	CHECK(m > 0 && open_rec(buf, m, KH0, DAY, &r) == DHT_EP_FORGED,
	      "a certificate of another keyhash");
}

static void
text_of(char *out, size_t cap, int count)
{
	size_t len = 0;

	out[0] = '\0';
	for (int i = 0; i < count && len < cap; i++)
		len += (size_t)snprintf(out + len, cap - len,
		                        "%squic://10.0.0.%d:7", i ? "," : "",
		                        i + 1);
}

static void
test_bounds(void)
{
	unsigned char buf[DHT_EP_MAX + 16], big[DHT_EP_MAX + 1];
	char text[2048];
	struct dht_ep_record r;
	const char *why;
	size_t m;
	static const char *const bad_texts[] = {"quic://1.2.3.4:7,",
	                                        ",quic://1.2.3.4:7",
	                                        "quic://1.2.3.4:7,,x://y",
	                                        "quic://1.2.3.4:7, x://y",
	                                        "quic://0.0.0.0:7",
	                                        "quic://1.2.3.4:0",
	                                        "QUIC://1.2.3.4:7",
	                                        "hub://hub",
	                                        "quic://::1:5",
	                                        "x://",
	                                        "x://a\"b",
	                                        "1.2.3.4:7"};

	text_of(text, sizeof text, 16);
	m = dht_ep_make(KH, DAY, text, cert, cert_len, key_pem, buf, sizeof buf,
	                &why);
	CHECK(m > 0 && open_rec(buf, m, KH, DAY, &r) == DHT_EP_OK && r.n == 16,
	      "16 endpoints pass");
	text_of(text, sizeof text, 17);
	m = dht_ep_make(KH, DAY, text, cert, cert_len, key_pem, buf, sizeof buf,
	                &why);
	CHECK(m > 0 && open_rec(buf, m, KH, DAY, &r) == DHT_EP_MALFORMED,
	      "17 endpoints fail");
	m = dht_ep_make(KH, DAY, "quic://1.2.3.4:7,quic://1.2.3.4:7", cert,
	                cert_len, key_pem, buf, sizeof buf, &why);
	CHECK(m > 0 && open_rec(buf, m, KH, DAY, &r) == DHT_EP_OK && r.n == 1,
	      "a duplicate is kept once");
	for (size_t i = 0; i < sizeof bad_texts / sizeof bad_texts[0]; i++) {
		m = dht_ep_make(KH, DAY, bad_texts[i], cert, cert_len, key_pem,
		                buf, sizeof buf, &why);
		CHECK(m > 0 &&
		          open_rec(buf, m, KH, DAY, &r) == DHT_EP_MALFORMED,
		      "endpoints \"%s\" refused", bad_texts[i]);
	}
	/* 1024 bytes of endpoints pass (three of 255 characters, one of
	 * 256), 1025 cannot be made; one of 262 characters is too long. */
	memset(text, 'a', sizeof text);
	for (size_t at = 0; at < 1024; at += 256) {
		memcpy(text + at, "relay://", 8);
		text[at + 8] = (char)('0' + at / 256); /* distinct */
		if (at + 256 < 1024)
			text[at + 255] = ',';
	}
	text[1024] = '\0';
	m = dht_ep_make(KH, DAY, text, cert, cert_len, key_pem, buf, sizeof buf,
	                &why);
	CHECK(m > 0 && open_rec(buf, m, KH, DAY, &r) == DHT_EP_OK && r.n == 4,
	      "1024 bytes of endpoints pass");
	memset(text, 'a', 262);
	memcpy(text, "relay://", 8);
	text[262] = '\0';
	m = dht_ep_make(KH, DAY, text, cert, cert_len, key_pem, buf, sizeof buf,
	                &why);
	CHECK(m > 0 && open_rec(buf, m, KH, DAY, &r) == DHT_EP_MALFORMED,
	      "an endpoint of 262 characters: too long");
	memset(text, 'a', 1025);
	memcpy(text, "relay://", 8);
	text[1025] = '\0';
	CHECK(dht_ep_make(KH, DAY, text, cert, cert_len, key_pem, buf,
	                  sizeof buf, &why) == 0,
	      "1025 bytes of endpoints cannot be made");

	/* The layout. */
	memset(big, 0, sizeof big);
	memcpy(big, vec, vec_len);
	CHECK(open_rec(big, DHT_EP_MAX + 1, KH, DAY, &r) == DHT_EP_OVERSIZED,
	      "4097 bytes: oversized");
	CHECK(open_rec(big, DHT_EP_MAX, KH, DAY, &r) == DHT_EP_MALFORMED,
	      "4096 bytes with junk after the signature: malformed");
	CHECK(open_rec(vec, vec_len - 1, KH, DAY, &r) == DHT_EP_MALFORMED,
	      "cut short");
	CHECK(open_rec(vec, 20, KH, DAY, &r) == DHT_EP_MALFORMED, "20 bytes");
	CHECK(open_rec(vec, 0, KH, DAY, &r) == DHT_EP_MALFORMED, "empty");
	memcpy(buf, vec, vec_len);
	buf[4] = 2;
	CHECK(open_rec(buf, vec_len, KH, DAY, &r) == DHT_EP_MALFORMED,
	      "version 2");
	memcpy(buf, vec, vec_len);
	buf[5] = 1;
	CHECK(open_rec(buf, vec_len, KH, DAY, &r) == DHT_EP_MALFORMED,
	      "flags set");
	memcpy(buf, vec, vec_len);
	buf[0] = 'h';
	CHECK(open_rec(buf, vec_len, KH, DAY, &r) == DHT_EP_MALFORMED,
	      "another magic");
	/* A WANHosts record where an endpoints record belongs. */
	CHECK(open_rec((const unsigned char *)"198.51.100.7:7008", 17, KH, DAY,
	               &r) == DHT_EP_MALFORMED,
	      "a WANHosts value");
}

static void
test_filter(void)
{
	char out[DHT_EP_TEXT_MAX + 1];
	size_t dropped = 0;

	/* docs/protocol.md's Endpoints vector: what the OOB field keeps. */
	CHECK(dht_ep_filter(" quic://1.2.3.4:7008 ,,hub://hub.example:7777,"
	                    "1.2.3.4:7008,quic://1.2.3.4:0,QUIC://a:1,"
	                    "quic://host.example:9,quic://::1:5,x://,"
	                    "relay://turn.example:3478/abc,quic://1.2.3.4:7008",
	                    out, sizeof out, &dropped) > 0,
	      "filter");
	CHECK_STR(out, "quic://1.2.3.4:7008,hub://hub.example:7777,"
	               "quic://host.example:9,relay://turn.example:3478/abc");
	CHECK_INT(dropped, 5);
	CHECK(dht_ep_filter("", out, sizeof out, &dropped) == 0 &&
	          dropped == 0 && out[0] == '\0',
	      "nothing to filter");
}

/* docs/protocol.md states the vectors checked here. */
static void
test_document(void)
{
	static const char *const want[] = {
	    "abc6be6cc4ded33a64f48ec815599362ba6517cc",
	    "f7483b008e254c82b6496a919d9d03beba013dca",
	    "dd38310926bcf46c3f9e4f08f7d36007847ee68e", SIGNED_HEX};
	const char *src = getenv("HL_SOURCE_DIR");
	static char doc[200000];
	char path[4096];
	size_t n = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/docs/protocol.md", src ? src : "..");
	f = fopen(path, "r");
	CHECK(f != NULL, "open %s", path);
	if (f != NULL) {
		n = fread(doc, 1, sizeof doc - 1, f);
		fclose(f);
	}
	doc[n] = '\0';
	for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
		CHECK(strstr(doc, want[i]) != NULL,
		      "docs/protocol.md states %.40s...", want[i]);
}

int
main(void)
{
	static char hex[2 * (DHT_EP_MAX + 16) + 8];

	if (sodium_init() < 0)
		return 1;
	if (check_read_vector("dht-endpoints.hex", hex, sizeof hex) > 0)
		vec_len = check_unhex(hex, vec, sizeof vec);
	check_read_vector("keyhash.cert.private", key_pem, sizeof key_pem);
	test_keys();
	test_vector();
	if (cert != NULL) {
		test_forged();
		test_bounds();
	}
	test_filter();
	test_document();
	return check_done();
}
