/*
 * hubauth.c: signing and checking a hub registration's proof of the key
 * (hubauth.h).
 */
#include "hubauth.h"

#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* The digest for a key, or -1 when the key type (or size) is refused;
 * *md NULL for Ed25519, which hashes by itself. */
static int
scheme(EVP_PKEY *pk, const EVP_MD **md)
{
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_EC:
		*md = EVP_sha256();
		return 0;
	case EVP_PKEY_RSA:
		if (EVP_PKEY_get_bits(pk) < 2048 ||
		    EVP_PKEY_get_bits(pk) > 8192)
			return -1;
		*md = EVP_sha256();
		return 0;
	case EVP_PKEY_ED25519:
		*md = NULL;
		return 0;
	default:
		return -1;
	}
}

int
hubauth_verify(const uint8_t *cert, size_t cert_len, const uint8_t *sig,
               size_t sig_len, const uint8_t *data, size_t len,
               const char **why)
{
	const unsigned char *p = cert;
	X509 *x = NULL;
	EVP_PKEY *pk;
	EVP_MD_CTX *ctx = NULL;
	const EVP_MD *md;
	int ok = -1;

	*why = "certificate does not parse";
	if (cert_len == 0 || cert_len > 65536)
		goto out;
	x = d2i_X509(NULL, &p, (long)cert_len);
	if (x == NULL || p != cert + cert_len)
		goto out;
	pk = X509_get0_pubkey(x);
	*why = "key type not accepted";
	if (pk == NULL || scheme(pk, &md) != 0)
		goto out;
	*why = "bad signature";
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestVerifyInit(ctx, NULL, md, NULL, pk) != 1 ||
	    EVP_DigestVerify(ctx, sig, sig_len, data, len) != 1)
		goto out;
	*why = NULL;
	ok = 0;
out:
	EVP_MD_CTX_free(ctx);
	X509_free(x);
	ERR_clear_error();
	return ok;
}

size_t
hubauth_sign(const char *key_pem, const uint8_t *data, size_t len, uint8_t *sig,
             size_t cap)
{
	BIO *b = BIO_new_mem_buf(key_pem, -1);
	EVP_PKEY *pk = NULL;
	EVP_MD_CTX *ctx = NULL;
	const EVP_MD *md;
	size_t n = 0, siglen = cap;

	if (b == NULL)
		goto out;
	pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	if (pk == NULL || scheme(pk, &md) != 0)
		goto out;
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, md, NULL, pk) != 1 ||
	    EVP_DigestSign(ctx, NULL, &siglen, data, len) != 1 ||
	    siglen > cap || EVP_DigestSign(ctx, sig, &siglen, data, len) != 1)
		goto out;
	n = siglen;
out:
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	BIO_free(b);
	ERR_clear_error();
	return n;
}
