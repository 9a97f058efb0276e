/*
 * identity.c: a service's key pair and self-signed certificate, its
 * keyhash and its password, stored in the original Python Hardline's
 * layout: <cert> (PEM), <cert>.private (PEM key) and <cert>.hash
 * ("<password>-<keyhash>", no newline).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include "hl.h"

#define PEM_FILE_MAX (1024 * 1024)
#define HASH_FILE_MAX 256
#define CERT_DAYS 36525 /* a hundred years */

static const char base32_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

void
hl__keyhash(const unsigned char *der, size_t len, char out[41])
{
	unsigned char h[crypto_generichash_BYTES]; /* 32: BLAKE2b-256 */

	/* BLAKE2b with a 32-byte output, cut to 20 bytes afterwards: the
	 * output size is an input of the hash, so this is not BLAKE2b-160. */
	crypto_generichash(h, sizeof h, der, len, NULL, 0);
	hl_hex_encode(h, HL_KEYHASH_LEN / 2, out);
}

void
hl__password_generate(char out[HL_PASSWORD_MAX + 1])
{
	unsigned char raw[8];
	unsigned int acc = 0, bits = 0;
	size_t n = 0;

	if (sodium_init() < 0)
		abort();
	randombytes_buf(raw, sizeof raw);
	/* RFC 4648 base32, lowercase, without the padding: 13 characters. */
	for (size_t i = 0; i < sizeof raw; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 5) {
			out[n++] = base32_alphabet[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[n++] = base32_alphabet[(acc << (5 - bits)) & 31];
	out[n] = '\0';
	sodium_memzero(raw, sizeof raw);
}

static int
password_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
}

int
hl__password_valid(const char *s)
{
	size_t i;

	if (s == NULL)
		return 0;
	for (i = 0; s[i] != '\0'; i++)
		if (i >= HL_PASSWORD_MAX || !password_char((unsigned char)s[i]))
			return 0;
	return 1;
}

void
hl__identity_url(const struct hl__identity *id, int proxy_port, char *out,
                 size_t outlen)
{
	snprintf(out, outlen, "http://%s-%s.localhost:%d/", id->password,
	         id->keyhash, proxy_port);
}

void
hl__identity_clear(struct hl__identity *id)
{
	if (id == NULL)
		return;
	free(id->cert_path);
	free(id->der);
	free(id->cert_pem);
	if (id->key_pem != NULL) {
		sodium_memzero(id->key_pem, strlen(id->key_pem));
		free(id->key_pem);
	}
	sodium_memzero(id, sizeof *id);
}

/* ---- loading and creating ---- */

/* Writes one sentence to err, and forgets OpenSSL's queued errors. */
static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0) {
		ERR_clear_error();
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	ERR_clear_error();
}

static const char *
ssl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r != NULL ? r : "unknown error";
}

static char *
path_cat(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = malloc(la + lb + 1);

	if (p == NULL)
		return NULL;
	memcpy(p, a, la);
	memcpy(p + la, b, lb + 1);
	return p;
}

/* 1 when path exists, 0 when it does not, -1 (errno set) when unknown. */
static int
exists(const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0)
		return 1;
	return errno == ENOENT ? 0 : -1;
}

/* A password callback that refuses: an encrypted key never prompts. */
static int
no_passphrase(char *buf HL_UNUSED, int size HL_UNUSED, int rwflag HL_UNUSED,
              void *u HL_UNUSED)
{
	return -1;
}

/* The contents of a memory BIO as a malloc'd NUL-ended string. */
static char *
bio_strdup(BIO *bio)
{
	char *data, *s;
	long n = BIO_get_mem_data(bio, &data);

	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, data, (size_t)n);
	s[n] = '\0';
	return s;
}

static char *
pem_of_cert(X509 *x)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *s = NULL;

	if (bio != NULL && PEM_write_bio_X509(bio, x) == 1)
		s = bio_strdup(bio);
	BIO_free(bio);
	return s;
}

static char *
pem_of_key(EVP_PKEY *pkey)
{
	BIO *bio = BIO_new(BIO_s_secmem());
	char *s = NULL;

	if (bio != NULL &&
	    PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1)
		s = bio_strdup(bio);
	BIO_free(bio); /* a mem BIO's buffer is cleansed when freed */
	return s;
}

/*
 * The certificate (key 0: an X509 *) or the private key (key 1: an
 * EVP_PKEY *) in the PEM file at path, the file's bytes wiped from memory
 * after; or NULL with the error in err: "<name>: cannot read <path>" or
 * "<name>: <path> is not a PEM ...".
 */
static void *
read_pem(const char *name, const char *path, int key, char *err, size_t errlen)
{
	size_t len;
	char *buf = hl__read_file(path, PEM_FILE_MAX, &len);
	BIO *bio;
	void *v = NULL;

	if (buf == NULL) {
		seterr(err, errlen, "%s: cannot read %s: %s", name, path,
		       strerror(errno));
		return NULL;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	if (bio != NULL && key)
		v = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
	else if (bio != NULL)
		v = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	sodium_memzero(buf, len);
	free(buf);
	if (v == NULL)
		seterr(err, errlen,
		       key ? "%s: %s is not an unencrypted PEM private key (%s)"
		           : "%s: %s is not a PEM certificate (%s)",
		       name, path, ssl_reason());
	return v;
}

static int
load_existing(const char *name, const char *cert_path, const char *key_path,
              X509 **xp, EVP_PKEY **kp, char *err, size_t errlen)
{
	struct stat st;

	*xp = read_pem(name, cert_path, 0, err, errlen);
	if (*xp == NULL)
		return -1;
	*kp = read_pem(name, key_path, 1, err, errlen);
	if (*kp == NULL)
		return -1;
	if (X509_check_private_key(*xp, *kp) != 1) {
		seterr(
		    err, errlen,
		    "%s: the private key %s does not belong to the certificate "
		    "%s",
		    name, key_path, cert_path);
		return -1;
	}
	if (stat(key_path, &st) == 0 && (st.st_mode & 077) != 0)
		hl__warn("%s: %s can be read by other users (mode %03o): "
		         "chmod 600 it",
		         name, key_path, (unsigned)(st.st_mode & 0777));
	return 0;
}

static int
add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -1;
}

/* A new ECDSA P-256 key and a self-signed certificate for it. */
static int
generate(X509 **xp, EVP_PKEY **kp)
{
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	X509 *x = NULL;
	X509_NAME *subj;
	EVP_PKEY *pkey;
	int ok = 0;

	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (pkey == NULL)
		return -1;
	x = X509_new();
	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1)
		goto out;
	/* A random positive 128-bit serial. */
	randombytes_buf(serial, sizeof serial);
	serial[0] = (serial[0] & 0x7f) | 0x40;
	bn = BN_bin2bn(serial, sizeof serial, NULL);
	if (bn == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto out;
	if (X509_gmtime_adj(X509_getm_notBefore(x), -86400) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), CERT_DAYS, 0, NULL) == NULL)
		goto out;
	/* Nobody checks the name (the keyhash is the identity); a fixed one
	 * tells nothing about the service. */
	subj = X509_get_subject_name(x);
	if (X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_ASC,
	                               (const unsigned char *)"hardline", -1,
	                               -1, 0) != 1 ||
	    X509_set_issuer_name(x, subj) != 1 || X509_set_pubkey(x, pkey) != 1)
		goto out;
	if (add_ext(x, NID_basic_constraints, "critical,CA:FALSE") != 0 ||
	    add_ext(x, NID_key_usage, "critical,digitalSignature") != 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth") != 0 ||
	    add_ext(x, NID_subject_key_identifier, "hash") != 0)
		goto out;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto out;
	ok = 1;
out:
	BN_free(bn);
	if (!ok) {
		X509_free(x);
		EVP_PKEY_free(pkey);
		return -1;
	}
	*xp = x;
	*kp = pkey;
	return 0;
}

/* Strip trailing whitespace (a hand-edited .hash may end in a newline). */
static void
rtrim(char *s, size_t *len)
{
	while (*len > 0 && (s[*len - 1] == '\n' || s[*len - 1] == '\r' ||
	                    s[*len - 1] == ' ' || s[*len - 1] == '\t'))
		s[--*len] = '\0';
}

/*
 * Decide the password and keep <cert>.hash up to date. The file holds the
 * password, so it is written 0600.
 */
static int
settle_password(const char *name, const struct hl__service_conf *sc,
                const char *hash_path, struct hl__identity *id, char *err,
                size_t errlen)
{
	char want[HL_PASSWORD_MAX + 1 + HL_KEYHASH_LEN + 1];
	char *old;
	size_t oldlen = 0;
	int old_errno = 0, n;

	old = hl__read_file(hash_path, HASH_FILE_MAX, &oldlen);
	if (old == NULL) {
		old_errno = errno;
		if (old_errno != ENOENT) {
			seterr(err, errlen, "%s: cannot read %s: %s", name,
			       hash_path, strerror(old_errno));
			return -1;
		}
	}

	switch (sc->password_mode) {
	case HL_PW_FIXED:
		if (!hl__password_valid(sc->password) ||
		    sc->password[0] == '\0') {
			seterr(err, errlen,
			       "%s: the password must be 1 to %d characters "
			       "among a-z and 2-7",
			       name, HL_PASSWORD_MAX);
			goto fail;
		}
		snprintf(id->password, sizeof id->password, "%s", sc->password);
		break;
	case HL_PW_NONE:
		id->password[0] = '\0';
		break;
	default: {
		/* Keep the password of an existing "pw-hash" made for this
		 * very certificate; else make a new one. */
		char *dash = NULL;

		if (old != NULL) {
			char tmp[HASH_FILE_MAX + 1];
			size_t tl =
			    oldlen < HASH_FILE_MAX ? oldlen : HASH_FILE_MAX;
			memcpy(tmp, old, tl);
			tmp[tl] = '\0';
			rtrim(tmp, &tl);
			dash = strrchr(tmp, '-');
			if (dash != NULL &&
			    strlen(dash + 1) == HL_KEYHASH_LEN &&
			    strncasecmp(dash + 1, id->keyhash,
			                HL_KEYHASH_LEN) == 0) {
				*dash = '\0';
				if (tmp[0] != '\0' && hl__password_valid(tmp)) {
					memcpy(id->password, tmp,
					       strlen(tmp) + 1); /* <= 22 */
				} else {
					if (tmp[0] != '\0')
						hl__warn(
						    "%s: the password in %s "
						    "is not 1 to %d of a-z, "
						    "2-7: making a new one",
						    name, hash_path,
						    HL_PASSWORD_MAX);
					dash = NULL;
				}
			} else {
				dash = NULL;
			}
			sodium_memzero(tmp, sizeof tmp);
		}
		if (dash == NULL)
			hl__password_generate(id->password);
		break;
	}
	}

	n = snprintf(want, sizeof want, "%s-%s", id->password, id->keyhash);
	if (old == NULL || oldlen != (size_t)n || memcmp(old, want, n) != 0) {
		if (hl__write_file_atomic(hash_path, want, (size_t)n, 0600) !=
		    0) {
			seterr(err, errlen, "%s: cannot write %s: %s", name,
			       hash_path, strerror(errno));
			goto fail;
		}
	} else {
		struct stat st;
		/* fchmod on what was read, never through a symlink. */
		int fd = open(hash_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (id->password[0] != '\0' && fd >= 0 && fstat(fd, &st) == 0 &&
		    (st.st_mode & 077) != 0 && fchmod(fd, 0600) != 0)
			hl__warn("%s: %s holds the password but cannot be "
			         "made private: %s",
			         name, hash_path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	if (old != NULL) {
		sodium_memzero(old, oldlen);
		free(old);
	}
	sodium_memzero(want, sizeof want);
	return 0;
fail:
	if (old != NULL) {
		sodium_memzero(old, oldlen);
		free(old);
	}
	return -1;
}

int
hl__identity_load(const char *state_dir, const struct hl__service_conf *sc,
                  struct hl__identity *id, char *err, size_t errlen)
{
	char *key_path = NULL, *hash_path = NULL, *key_pem = NULL;
	const char *name;
	unsigned char *der = NULL;
	X509 *x = NULL;
	EVP_PKEY *pkey = NULL;
	int have_cert, have_key, der_len, rc = -1;

	memset(id, 0, sizeof *id);
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	snprintf(id->name_buf, sizeof id->name_buf, "%s",
	         sc->name != NULL ? sc->name : "");
	name = id->name_buf;
	if (sodium_init() < 0) {
		seterr(err, errlen, "%s: libsodium cannot start", name);
		return -1;
	}

	if (sc->cert != NULL && sc->cert[0] != '\0') {
		id->cert_path = strdup(sc->cert);
	} else {
		/* The name becomes a file name in state_dir: keep it there. */
		if (name[0] == '\0' || name[0] == '.' ||
		    strchr(name, '/') != NULL ||
		    strlen(sc->name) >= sizeof id->name_buf) {
			seterr(
			    err, errlen,
			    "%s: a service name must be 1 to %zu characters, "
			    "without '/' and not starting with '.'",
			    name, sizeof id->name_buf - 1);
			goto out;
		}
		if (asprintf(&id->cert_path, "%s/%s.cert",
		             state_dir != NULL ? state_dir : ".", name) < 0)
			id->cert_path = NULL;
	}
	if (id->cert_path == NULL)
		goto oom;
	key_path = path_cat(id->cert_path, ".private");
	hash_path = path_cat(id->cert_path, ".hash");
	if (key_path == NULL || hash_path == NULL)
		goto oom;

	have_cert = exists(id->cert_path);
	if (have_cert < 0) {
		seterr(err, errlen, "%s: cannot look at %s: %s", name,
		       id->cert_path, strerror(errno));
		goto out;
	}
	have_key = exists(key_path);
	if (have_key < 0) {
		seterr(err, errlen, "%s: cannot look at %s: %s", name, key_path,
		       strerror(errno));
		goto out;
	}

	if (have_cert && have_key) {
		if (load_existing(name, id->cert_path, key_path, &x, &pkey, err,
		                  errlen) != 0)
			goto out;
	} else if (have_cert || have_key) {
		seterr(
		    err, errlen,
		    "%s: %s exists but %s is missing: restore it, or move both "
		    "away to make a new identity (and a new URL)",
		    name, have_cert ? id->cert_path : key_path,
		    have_cert ? key_path : id->cert_path);
		goto out;
	} else {
		char *pem;
		if (generate(&x, &pkey) != 0) {
			seterr(err, errlen,
			       "%s: cannot make a key and certificate: %s",
			       name, ssl_reason());
			goto out;
		}
		/* The key first, 0600 from the moment it exists. */
		key_pem = pem_of_key(pkey);
		if (key_pem == NULL)
			goto oom;
		if (hl__write_file_atomic(key_path, key_pem, strlen(key_pem),
		                          0600) != 0) {
			seterr(err, errlen, "%s: cannot write %s: %s", name,
			       key_path, strerror(errno));
			goto out;
		}
		pem = pem_of_cert(x);
		if (pem == NULL) {
			unlink(key_path);
			goto oom;
		}
		if (hl__write_file_atomic(id->cert_path, pem, strlen(pem),
		                          0644) != 0) {
			seterr(err, errlen, "%s: cannot write %s: %s", name,
			       id->cert_path, strerror(errno));
			free(pem);
			unlink(key_path);
			goto out;
		}
		free(pem);
		hl__info("%s: made a new identity in %s", name, id->cert_path);
	}

	der_len = i2d_X509(x, &der);
	if (der_len <= 0) {
		seterr(err, errlen, "%s: cannot encode %s: %s", name,
		       id->cert_path, ssl_reason());
		goto out;
	}
	id->der = malloc((size_t)der_len);
	if (id->der == NULL)
		goto oom;
	memcpy(id->der, der, (size_t)der_len);
	id->der_len = (size_t)der_len;
	hl__keyhash(id->der, id->der_len, id->keyhash);

	id->cert_pem = pem_of_cert(x);
	if (id->cert_pem == NULL)
		goto oom;
	if (key_pem == NULL)
		key_pem = pem_of_key(pkey);
	if (key_pem == NULL)
		goto oom;
	id->key_pem = key_pem;
	key_pem = NULL;

	if (settle_password(name, sc, hash_path, id, err, errlen) != 0)
		goto out;

	id->pub.size = sizeof id->pub;
	id->pub.name = id->name_buf;
	id->pub.keyhash = id->keyhash;
	id->pub.cert_der = id->der;
	id->pub.cert_der_len = id->der_len;
	id->pub.cert_pem = id->cert_pem;
	id->pub.key_pem = id->key_pem;
	/* The title belongs to the config, which outlives identities. */
	id->pub.title = sc->title != NULL ? sc->title : id->name_buf;
	id->pub.password = id->password;
	id->pub.announce_password = sc->lan_announce_password;
	id->pub.punch = sc->punch; /* the config's, as the title */
	rc = 0;
	goto out;
oom:
	seterr(err, errlen, "%s: out of memory", name);
out:
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(pkey);
	free(key_path);
	free(hash_path);
	if (key_pem != NULL) {
		sodium_memzero(key_pem, strlen(key_pem));
		free(key_pem);
	}
	if (rc != 0)
		hl__identity_clear(id);
	ERR_clear_error();
	return rc;
}
