/*
 * dht-endpoints.c: hlcore's endpoints record in the DHT
 * (dht-endpoints.h). The signature scheme is the hub registration's
 * (plugins/hub/hubauth.c, compiled in here too): OpenSSL only.
 */
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "hardline/util.h"

#include "dht-endpoints.h"
#include "dht-key.h"
#include "dht-value.h"
#include "hubauth.h"

static const unsigned char magic[4] = {'H', 'L', 'E', 'P'};

int
dht_ep_key(const char *keyhash, uint64_t day, char out[41])
{
	char in[sizeof DHT_EP_KEY_PREFIX - 1 + 40], rolling[41];
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (dht_rolling_code(keyhash, day, rolling) != 0)
		return -1;
	memcpy(in, DHT_EP_KEY_PREFIX, sizeof DHT_EP_KEY_PREFIX - 1);
	memcpy(in + sizeof DHT_EP_KEY_PREFIX - 1, rolling, 40);
	if (EVP_Digest(in, sizeof in, digest, &len, EVP_sha1(), NULL) != 1 ||
	    len != 20)
		return -1;
	hl_hex_encode(digest, 20, out);
	return 0;
}

int
dht_ep_uri_check(const char *s, size_t len, const char **why)
{
	size_t i = 0, sl;

	if (len == 0 || len >= DHT_EP_URI_MAX) {
		*why = len == 0 ? "empty endpoint" : "endpoint too long";
		return -1;
	}
	while (i < len &&
	       ((s[i] >= 'a' && s[i] <= 'z') ||
	        (i > 0 && ((s[i] >= '0' && s[i] <= '9') || s[i] == '+' ||
	                   s[i] == '.' || s[i] == '-'))))
		i++;
	sl = i;
	if (sl == 0 || sl > 15 || len - i < 4 || memcmp(s + i, "://", 3) != 0) {
		*why = "not <scheme>://...";
		return -1;
	}
	for (i += 3; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || c == ',' || c == '"' ||
		    c == '\\') {
			*why = "a blank, comma, quote or non-ASCII byte";
			return -1;
		}
	}
	if ((sl == 4 && memcmp(s, "quic", 4) == 0) ||
	    (sl == 3 && memcmp(s, "tls", 3) == 0) ||
	    (sl == 3 && memcmp(s, "hub", 3) == 0))
		return dht_addr_check(s + sl + 3, len - sl - 3, why);
	return 0;
}

/* Append s[0..len) to the n distinct entries in eps unless there; 0, or
 * -1 when full. */
static int
ep_add(char eps[][DHT_EP_URI_MAX], size_t *n, const char *s, size_t len)
{
	for (size_t k = 0; k < *n; k++)
		if (strlen(eps[k]) == len && memcmp(eps[k], s, len) == 0)
			return 0;
	if (*n == DHT_EP_COUNT_MAX)
		return -1;
	memcpy(eps[*n], s, len);
	eps[*n][len] = '\0';
	(*n)++;
	return 0;
}

size_t
dht_ep_filter(const char *endpoints, char *out, size_t outlen, size_t *dropped)
{
	char seen[DHT_EP_COUNT_MAX][DHT_EP_URI_MAX];
	size_t len = 0, n = 0, start = 0, total, a, b;
	const char *why;

	*dropped = 0;
	if (outlen == 0)
		return 0;
	out[0] = '\0';
	if (endpoints == NULL)
		return 0;
	total = strlen(endpoints);
	while (hl_split_next(endpoints, total, &start, &a, &b)) {
		size_t had = n, need = len + (len ? 1 : 0) + (b - a);

		if (a == b)
			continue;
		if (dht_ep_uri_check(endpoints + a, b - a, &why) != 0 ||
		    need > DHT_EP_TEXT_MAX || need >= outlen ||
		    ep_add(seen, &n, endpoints + a, b - a) != 0) {
			(*dropped)++;
			continue;
		}
		if (n == had)
			continue; /* a duplicate */
		if (len)
			out[len++] = ',';
		memcpy(out + len, endpoints + a, b - a);
		len += b - a;
		out[len] = '\0';
	}
	return len;
}

size_t
dht_ep_signed_data(const unsigned char *rec, size_t signed_len,
                   unsigned char *out, size_t cap)
{
	size_t cl = sizeof DHT_EP_SIGN_CONTEXT; /* with its NUL */

	if (cap < cl + signed_len)
		return 0;
	memcpy(out, DHT_EP_SIGN_CONTEXT, cl);
	memcpy(out + cl, rec, signed_len);
	return cl + signed_len;
}

static void
put16(unsigned char *p, size_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static size_t
get16(const unsigned char *p)
{
	return (size_t)p[0] << 8 | p[1];
}

size_t
dht_ep_make(const char *keyhash, uint64_t day, const char *text,
            const unsigned char *cert, size_t cert_len, const char *key_pem,
            unsigned char *out, size_t cap, const char **why)
{
	unsigned char
	    tbs[sizeof DHT_EP_SIGN_CONTEXT + DHT_EP_HEAD + DHT_EP_TEXT_MAX];
	unsigned char sig[DHT_EP_SIG_MAX];
	size_t tl = text ? strlen(text) : 0, p, sl, tlen;

	*why = "no endpoints, or more than 1024 bytes of them";
	if (tl == 0 || tl > DHT_EP_TEXT_MAX)
		return 0;
	*why = "the certificate is empty or longer than 2048 bytes";
	if (cert_len == 0 || cert_len > DHT_EP_CERT_MAX)
		return 0;
	*why = "not a keyhash";
	if (keyhash == NULL || strlen(keyhash) != 40)
		return 0;
	/* 36 + 1024 + 2 + 2048 + 2 + 512 bytes at most: within 4096. */
	*why = "no room for the record";
	if (cap < DHT_EP_HEAD + tl + 2 + cert_len + 2)
		return 0;
	memcpy(out, magic, 4);
	out[4] = DHT_EP_VERSION;
	out[5] = 0;
	for (int i = 0; i < 8; i++)
		out[6 + i] = (unsigned char)(day >> (56 - 8 * i));
	*why = "not a keyhash";
	if (hl_hex_decode(keyhash, 20, out + 14) != 0)
		return 0;
	put16(out + 34, tl);
	memcpy(out + DHT_EP_HEAD, text, tl);
	p = DHT_EP_HEAD + tl;
	tlen = dht_ep_signed_data(out, p, tbs, sizeof tbs);
	*why = "the service's key cannot sign (a key type other than ECDSA, "
	       "RSA of 2048 to 8192 bits, or Ed25519)";
	sl = tlen ? hubauth_sign(key_pem, tbs, tlen, sig, sizeof sig) : 0;
	if (sl == 0)
		return 0;
	*why = "no room for the record";
	if (p + 2 + cert_len + 2 + sl > cap)
		return 0;
	put16(out + p, cert_len);
	memcpy(out + p + 2, cert, cert_len);
	p += 2 + cert_len;
	put16(out + p, sl);
	memcpy(out + p + 2, sig, sl);
	*why = NULL;
	return p + 2 + sl;
}

enum dht_ep_result
dht_ep_parse(const void *data, size_t len, struct dht_ep_record *r,
             const char **why)
{
	const unsigned char *d = data;
	size_t p, start = 0, a, b;

	r->n = 0;
	*why = NULL;
	if (len > DHT_EP_MAX) {
		*why = "longer than 4096 bytes";
		return DHT_EP_OVERSIZED;
	}
	if (len < DHT_EP_HEAD || memcmp(d, magic, 4) != 0) {
		*why = "not an endpoints record (no \"HLEP\")";
		return DHT_EP_MALFORMED;
	}
	if (d[4] != DHT_EP_VERSION || d[5] != 0) {
		*why = "another version, or flags set";
		return DHT_EP_MALFORMED;
	}
	r->day = 0;
	for (int i = 0; i < 8; i++)
		r->day = r->day << 8 | d[6 + i];
	memcpy(r->keyhash, d + 14, 20);
	r->text_len = get16(d + 34);
	r->text = (const char *)d + DHT_EP_HEAD;
	p = DHT_EP_HEAD + r->text_len;
	if (r->text_len == 0 || r->text_len > DHT_EP_TEXT_MAX || p + 2 > len) {
		*why = "bad length of the endpoints";
		return DHT_EP_MALFORMED;
	}
	r->signed_len = p;
	r->cert_len = get16(d + p);
	r->cert = d + p + 2;
	p += 2 + r->cert_len;
	if (r->cert_len == 0 || r->cert_len > DHT_EP_CERT_MAX || p + 2 > len) {
		*why = "bad length of the certificate";
		return DHT_EP_MALFORMED;
	}
	r->sig_len = get16(d + p);
	r->sig = d + p + 2;
	p += 2 + r->sig_len;
	if (r->sig_len == 0 || r->sig_len > DHT_EP_SIG_MAX || p != len) {
		*why = p < len ? "bytes after the signature"
		               : "bad length of the signature";
		return DHT_EP_MALFORMED;
	}
	/* Entries joined by single commas: none empty, no blanks. */
	while (hl_split_next(r->text, r->text_len, &start, &a, &b)) {
		const char *e = r->text + a;
		if (a == b || (a > 0 && r->text[a - 1] != ',') ||
		    (b < r->text_len && r->text[b] != ',')) {
			*why = "an empty endpoint, or blanks";
			r->n = 0;
			return DHT_EP_MALFORMED;
		}
		if (dht_ep_uri_check(e, b - a, why) != 0) {
			r->n = 0;
			return DHT_EP_MALFORMED;
		}
		if (ep_add(r->eps, &r->n, e, b - a) != 0) {
			*why = "more than 16 endpoints";
			r->n = 0;
			return DHT_EP_MALFORMED;
		}
	}
	if (r->n == 0 || r->text[0] == ',' || r->text[r->text_len - 1] == ',') {
		*why = "an empty endpoint";
		r->n = 0;
		return DHT_EP_MALFORMED;
	}
	return DHT_EP_OK;
}

enum dht_ep_result
dht_ep_open(const void *data, size_t len, const char *keyhash, uint64_t day,
            struct dht_ep_record *r, const char **why)
{
	unsigned char want[20], digest[32];
	unsigned char
	    tbs[sizeof DHT_EP_SIGN_CONTEXT + DHT_EP_HEAD + DHT_EP_TEXT_MAX];
	enum dht_ep_result res = dht_ep_parse(data, len, r, why);
	size_t tlen;

	if (res != DHT_EP_OK)
		return res;
	res = DHT_EP_FORGED;
	if (keyhash == NULL || strlen(keyhash) != 40 ||
	    hl_hex_decode(keyhash, 20, want) != 0 ||
	    memcmp(want, r->keyhash, 20) != 0)
		*why = "for another service";
	else if (r->day != day)
		*why = "for another day (replayed?)";
	else if (crypto_generichash(digest, sizeof digest, r->cert, r->cert_len,
	                            NULL, 0) != 0 ||
	         memcmp(digest, want, 20) != 0)
		*why = "a certificate of another keyhash";
	else if ((tlen = dht_ep_signed_data(data, r->signed_len, tbs,
	                                    sizeof tbs)) == 0 ||
	         hubauth_verify(r->cert, r->cert_len, r->sig, r->sig_len, tbs,
	                        tlen, why) != 0) {
		if (*why == NULL)
			*why = "bad signature";
	} else
		res = DHT_EP_OK;
	if (res != DHT_EP_OK)
		r->n = 0;
	return res;
}
