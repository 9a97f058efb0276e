/*
 * fuzz-dht-endpoints: hlcore's endpoints record (dht-endpoints.h) on
 * arbitrary bytes. The first byte picks what the rest is:
 *   0: a record, parsed and then authenticated for the keyhash and day it
 *      claims (so that inputs reach the certificate and signature checks);
 *   1: a line of an OpenDHT proxy's answer, decoded, then as 0;
 *   2: a node's endpoints (the core's list): filtered, made into a record
 *      signed by the test vector key (tests/vectors/keyhash.cert), which
 *      must then open with the same endpoints.
 * Invariants: a refusal says why and hands out nothing; what is handed
 * out passes the endpoint check on its own, at most 16 of them.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "hardline/util.h"

#include "dht-endpoints.h"
#include "dht-value.h"
#include "fuzz-proxy.h"

/* The test vector's certificate and key: public on purpose. */
static const char cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBgjCCASigAwIBAgIBATAKBggqhkjOPQQDAjAfMR0wGwYDVQQDDBRoYXJkbGlu\n"
    "ZS10ZXN0LXZlY3RvcjAgFw0yNjEyMDEwMDE1MDBaGA8yMTI2MTIwMjAwMTUwMFow\n"
    "HzEdMBsGA1UEAwwUaGFyZGxpbmUtdGVzdC12ZWN0b3IwWTATBgcqhkjOPQIBBggq\n"
    "hkjOPQMBBwNCAARO9OVZ6WHWV/qPCOHGtuIHiiaxGwtotpKZjod8vZVpqpx8dcPv\n"
    "unB4LfSxJWsHAq5xKAhNzo2u2rHgNe/n13ojo1MwUTAdBgNVHQ4EFgQUZVs1VRnR\n"
    "PLQka3WQHLnhHnX6/p8wHwYDVR0jBBgwFoAUZVs1VRnRPLQka3WQHLnhHnX6/p8w\n"
    "DwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiAOvnh2MvKKq/LupH73\n"
    "DQosA3wq6no5gU5jHa20p6ml/wIhAKoGzOiDKAhOvxGzTGGmU0CJXvFdkt2cQxYV\n"
    "UvMy+xBg\n"
    "-----END CERTIFICATE-----\n";
static const char key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgkh76+3WyfEhM1fJX\n"
    "qCJqKdlWSVVlKbZGGSP3AhFSjt2hRANCAARO9OVZ6WHWV/qPCOHGtuIHiiaxGwto\n"
    "tpKZjod8vZVpqpx8dcPvunB4LfSxJWsHAq5xKAhNzo2u2rHgNe/n13oj\n"
    "-----END PRIVATE KEY-----\n";
#define KH "4edde683894d49d6c60b396ebe3c05deb97d4ab3"

static unsigned char cert[DHT_EP_CERT_MAX];
static size_t cert_len;

static int
setup(void)
{
	BIO *b;
	X509 *x;
	unsigned char *p = cert;
	int n;

	if (sodium_init() < 0)
		return -1;
	b = BIO_new_mem_buf(cert_pem, -1);
	x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	n = x ? i2d_X509(x, NULL) : -1;
	if (n > 0 && (size_t)n <= sizeof cert)
		cert_len = (size_t)i2d_X509(x, &p);
	X509_free(x);
	BIO_free(b);
	return cert_len > 0 ? 0 : -1;
}

static void
check_handed_out(enum dht_ep_result res, const struct dht_ep_record *r,
                 const char *why)
{
	const char *w;

	if (res != DHT_EP_OK) {
		if (why == NULL || r->n != 0)
			__builtin_trap();
		return;
	}
	if (r->n == 0 || r->n > DHT_EP_COUNT_MAX)
		__builtin_trap();
	for (size_t i = 0; i < r->n; i++)
		if (dht_ep_uri_check(r->eps[i], strlen(r->eps[i]), &w) != 0)
			__builtin_trap();
}

static void
check_record(const uint8_t *p, size_t n)
{
	static struct dht_ep_record r;
	const char *why = NULL;
	enum dht_ep_result res = dht_ep_parse(p, n, &r, &why);
	char kh[41];

	check_handed_out(res, &r, why);
	if (res != DHT_EP_OK)
		return;
	if (n > DHT_EP_MAX || r.text_len > DHT_EP_TEXT_MAX ||
	    r.cert_len > DHT_EP_CERT_MAX || r.sig_len > DHT_EP_SIG_MAX)
		__builtin_trap();
	hl_hex_encode(r.keyhash, 20, kh);
	res = dht_ep_open(p, n, kh, r.day, &r, &why);
	check_handed_out(res, &r, why);
}

static void
check_text(const uint8_t *p, size_t n)
{
	static struct dht_ep_record r;
	char in[2048], text[DHT_EP_TEXT_MAX + 1];
	unsigned char rec[DHT_EP_MAX];
	size_t dropped, len, m;
	const char *why = NULL;
	enum dht_ep_result res;

	if (n >= sizeof in)
		return;
	memcpy(in, p, n);
	in[n] = '\0';
	len = dht_ep_filter(in, text, sizeof text, &dropped);
	if (len != strlen(text) || len > DHT_EP_TEXT_MAX)
		__builtin_trap();
	if (len == 0)
		return;
	m = dht_ep_make(KH, 19000, text, cert, cert_len, key_pem, rec,
	                sizeof rec, &why);
	if (m == 0 || m > DHT_EP_MAX)
		__builtin_trap();
	/* What we would publish, we open as OK. */
	res = dht_ep_open(rec, m, KH, 19000, &r, &why);
	check_handed_out(res, &r, why);
	if (res != DHT_EP_OK)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static unsigned char buf[DHT_PROXY_LINE_MAX];

	if (!ready) {
		if (setup() != 0)
			return 0;
		ready = 1;
	}
	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		check_record(data + 1, size - 1);
		break;
	case 1:
		fuzz_proxy_line(data + 1, size - 1, buf, sizeof buf,
		                check_record);
		break;
	default:
		check_text(data + 1, size - 1);
	}
	return 0;
}
