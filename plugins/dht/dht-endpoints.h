/*
 * dht-endpoints.h: hlcore's own DHT record (docs/protocol.md, "DHT",
 * "The endpoints record"): a service node's typed endpoints
 * ("quic://198.51.100.7:7008", "hub://hub.example.org:7777"), signed by
 * the service's key, under a key of its own beside the WANHosts record
 * that Python Hardline reads (which stays as it is).
 *
 * The record, all integers big-endian, nothing after its last byte:
 *
 *   0   4  magic "HLEP"
 *   4   1  version 1
 *   5   1  flags 0
 *   6   8  day: the UTC day of the key it is stored under
 *   14  20 keyhash, raw
 *   34  2  n: length of the endpoints text, 1 to 1024
 *   36  n  endpoints text: entries joined by ",", no blanks
 *   ..  2  c: length of the certificate, 1 to 2048
 *   ..  c  the service's certificate, DER
 *   ..  2  s: length of the signature, 1 to 512
 *   ..  s  signature over "hardline-dht-endpoints-v1" 0x00 || bytes 0 to
 *          36 + n of the record (everything before c)
 *
 * At most 4096 bytes in all. The parser is fuzzed (fuzz-dht-endpoints);
 * nothing here allocates from what it parses.
 */
#ifndef HL_DHT_ENDPOINTS_H
#define HL_DHT_ENDPOINTS_H

#include <stddef.h>
#include <stdint.h>

#define DHT_EP_MAX 4096 /* bytes in one record */
#define DHT_EP_TEXT_MAX 1024 /* bytes of its endpoints text */
#define DHT_EP_COUNT_MAX 16 /* endpoints in one record */
#define DHT_EP_CERT_MAX 2048 /* bytes of certificate */
#define DHT_EP_SIG_MAX 512 /* bytes of signature */
#define DHT_EP_URI_MAX 262 /* one endpoint, 261 characters, and a NUL */
#define DHT_EP_HEAD 36 /* bytes before the endpoints text */
#define DHT_EP_VERSION 1
#define DHT_EP_KEY_PREFIX "hardline-endpoints-v1:"
#define DHT_EP_SIGN_CONTEXT "hardline-dht-endpoints-v1" /* + a 0 byte */

enum dht_ep_result {
	DHT_EP_OK = 0,
	DHT_EP_OVERSIZED = 1, /* more than DHT_EP_MAX bytes */
	DHT_EP_MALFORMED = 2, /* does not parse, or a bad endpoint */
	DHT_EP_FORGED = 3, /* parses, but is not the key's own: another
	                    * keyhash or day, a certificate of another hash,
	                    * a key type not accepted, a bad signature */
};

/* A record parsed (pointers into the bytes given to the parser). */
struct dht_ep_record {
	uint64_t day;
	unsigned char keyhash[20];
	const char *text;
	size_t text_len;
	const unsigned char *cert;
	size_t cert_len;
	const unsigned char *sig;
	size_t sig_len;
	size_t signed_len; /* bytes of the record the signature covers */
	size_t n; /* endpoints, distinct, in order */
	char eps[DHT_EP_COUNT_MAX][DHT_EP_URI_MAX];
};

/*
 * The OpenDHT key (40 lowercase hex) of keyhash's endpoints record for
 * UTC day: SHA-1 of "hardline-endpoints-v1:" followed by the 40 hex
 * characters of the day's rolling code (OpenDHT's InfoHash::get of that
 * string). 0, or -1 when keyhash is not 40 hex digits.
 */
int dht_ep_key(const char *keyhash, uint64_t day, char out[41]);

/*
 * One endpoint, "<scheme>://<rest>": the scheme [a-z][a-z0-9+.-]*, at
 * most 15; the rest printable ASCII without blanks, ',', '"' or '\\'; at
 * most 261 characters in all; for quic, tls and hub the rest is a
 * host:port that dht_addr_check accepts. 0, or -1 with *why.
 */
int dht_ep_uri_check(const char *s, size_t len, const char **why);

/*
 * What to publish of this node's endpoints (the core's comma-separated
 * list): the entries dht_ep_uri_check accepts, distinct, in order, within
 * DHT_EP_COUNT_MAX and DHT_EP_TEXT_MAX, joined by ",". Returns the length
 * written to out (NUL-ended; 0 when none) and counts in *dropped the
 * entries left out.
 */
size_t dht_ep_filter(const char *endpoints, char *out, size_t outlen,
                     size_t *dropped);

/* The bytes a record's signature covers: the context, its 0 byte, then
 * rec[0..signed_len). Returns their length, or 0 when cap is too small. */
size_t dht_ep_signed_data(const unsigned char *rec, size_t signed_len,
                          unsigned char *out, size_t cap);

/*
 * Make a record for keyhash (40 hex), day and the endpoints text (as
 * dht_ep_filter makes it), with the service's certificate (DER) and its
 * PEM private key, into out (cap bytes; DHT_EP_MAX are enough). Returns
 * its length, or 0 with *why (text or certificate out of bounds, a key
 * type that cannot sign).
 */
size_t dht_ep_make(const char *keyhash, uint64_t day, const char *text,
                   const unsigned char *cert, size_t cert_len,
                   const char *key_pem, unsigned char *out, size_t cap,
                   const char **why);

/* Parse a record's layout and its endpoints, checking no signature:
 * OK, OVERSIZED or MALFORMED (with *why). */
enum dht_ep_result dht_ep_parse(const void *data, size_t len,
                                struct dht_ep_record *r, const char **why);

/*
 * A record read under the key of keyhash (40 hex) for day: parsed, then
 * authenticated: its keyhash and day must be those, its certificate's
 * keyhash (docs/protocol.md, "Identity") keyhash, and its signature
 * valid by that certificate's key (ECDSA P-256/384/521 with SHA-256, RSA
 * 2048 to 8192 bits PKCS #1 v1.5 with SHA-256, Ed25519). OK, or another
 * result with *why; r->eps holds the endpoints only on OK.
 */
enum dht_ep_result dht_ep_open(const void *data, size_t len,
                               const char *keyhash, uint64_t day,
                               struct dht_ep_record *r, const char **why);

#endif /* HL_DHT_ENDPOINTS_H */
