/*
 * test-identity.c: keyhashes, passwords, and the identity files in the
 * original Python Hardline's layout (<cert>, <cert>.private, <cert>.hash).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "hl.h"

static char dir[] = "/tmp/hl-test-identity-XXXXXX";
static char path[4096];

static const char *
at(const char *name)
{
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return path;
}

static char *
slurp(const char *p)
{
	return hl__read_file(p, 1 << 20, NULL);
}

static void
spit(const char *p, const char *s)
{
	FILE *f = fopen(p, "w");
	if (f == NULL)
		return;
	fputs(s, f);
	fclose(f);
}

static int
mode_of(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static int
is_hash(const char *s)
{
	if (strlen(s) != HL_KEYHASH_LEN)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* The keyhash of a PEM certificate file, computed by openssl and Python as
 * docs/protocol.md says, independently of hlcore. "" when the tools fail. */
static void
python_keyhash(const char *cert, char out[64])
{
	char cmd[8192];
	FILE *p;

	out[0] = '\0';
	snprintf(cmd, sizeof cmd,
	         "openssl x509 -outform DER -in '%s' | python3 -c 'import "
	         "sys,hashlib;print(hashlib.blake2b(sys.stdin.buffer.read(),"
	         "digest_size=32).hexdigest()[:40])'",
	         cert);
	p = popen(cmd, "r");
	if (p == NULL)
		return;
	if (fgets(out, 64, p) == NULL)
		out[0] = '\0';
	pclose(p);
	out[strcspn(out, "\n")] = '\0';
}

static void
test_keyhash_vectors(void)
{
	char h[41];

	/* BLAKE2b-256, cut to 20 bytes; BLAKE2b-160("abc") would be
	 * 384264f676f39536840523f284921cdc68b6846b. */
	hl__keyhash((const unsigned char *)"", 0, h);
	CHECK_STR(h, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47");
	hl__keyhash((const unsigned char *)"abc", 3, h);
	CHECK_STR(h, "bddd813c634239723171ef3fee98579b94964e3b");
}

static void
test_passwords(void)
{
	char a[HL_PASSWORD_MAX + 1], b[HL_PASSWORD_MAX + 1];

	hl__password_generate(a);
	hl__password_generate(b);
	CHECK_INT(strlen(a), 13);
	CHECK(hl__password_valid(a), "generated password \"%s\" is valid", a);
	CHECK(strcmp(a, b) != 0, "two generated passwords differ (%s)", a);
	/* 64 bits in 13 base32 characters: the last one carries 4 bits and
	 * a zero, so it is one of a, c, e, ..., 6. */
	CHECK(strchr("acegikmoqsuwy246", a[12]) != NULL,
	      "last character '%c' carries a zero bit", a[12]);

	CHECK_INT(hl__password_valid(""), 1);
	CHECK_INT(hl__password_valid("abcxyz234567"), 1);
	CHECK_INT(hl__password_valid("aaaaaaaaaaaaaaaaaaaaaa"), 1); /* 22 */
	CHECK_INT(hl__password_valid("aaaaaaaaaaaaaaaaaaaaaaa"), 0);
	CHECK_INT(hl__password_valid("abc1"), 0);
	CHECK_INT(hl__password_valid("abc8"), 0);
	CHECK_INT(hl__password_valid("Abc"), 0);
	CHECK_INT(hl__password_valid("a-b"), 0);
	CHECK_INT(hl__password_valid(NULL), 0);
}

static void
test_ct_streq(void)
{
	CHECK_INT(hl_ct_streq("", ""), 1);
	CHECK_INT(hl_ct_streq("abc", "abc"), 1);
	CHECK_INT(hl_ct_streq("abc", "abd"), 0);
	CHECK_INT(hl_ct_streq("abc", "ab"), 0);
	CHECK_INT(hl_ct_streq("ab", "abc"), 0);
	CHECK_INT(hl_ct_streq("", "a"), 0);
	CHECK_INT(hl_ct_streq("xbc", "abc"), 0);
}

static void
test_new_identity(void)
{
	struct hl__service_conf sc = {.name = "wiki"};
	struct hl__identity id, id2;
	char err[512] = "", want[128], url[256], ext[64];
	char keyhash[41], password[HL_PASSWORD_MAX + 1];
	char *s, *key_before;

	CHECK_INT(hl__identity_load(dir, &sc, &id, err, sizeof err), 0);
	CHECK_STR(err, "");
	CHECK(is_hash(id.keyhash), "keyhash \"%s\" is 40 lowercase hex",
	      id.keyhash);
	CHECK_INT(strlen(id.password), 13);
	CHECK(hl__password_valid(id.password), "password \"%s\" is valid",
	      id.password);

	/* The files, with their modes. */
	CHECK_INT(mode_of(at("wiki.cert")), 0644);
	CHECK_INT(mode_of(at("wiki.cert.private")), 0600);
	CHECK_INT(mode_of(at("wiki.cert.hash")), 0600);
	snprintf(want, sizeof want, "%s-%s", id.password, id.keyhash);
	s = slurp(at("wiki.cert.hash"));
	CHECK_STR(s, want);
	free(s);

	/* The keyhash as Python Hardline computes it. */
	python_keyhash(at("wiki.cert"), ext);
	CHECK_STR(id.keyhash, ext);

	/* What plugins see. */
	CHECK_INT(id.pub.size, sizeof(struct hl_identity));
	CHECK_STR(id.pub.name, "wiki");
	CHECK_STR(id.pub.keyhash, id.keyhash);
	CHECK(id.pub.cert_der != NULL && id.pub.cert_der_len > 100,
	      "cert_der is set (%zu bytes)", id.pub.cert_der_len);
	{
		char h[41];
		hl__keyhash(id.pub.cert_der, id.pub.cert_der_len, h);
		CHECK_STR(h, id.keyhash);
	}
	CHECK(id.pub.cert_pem != NULL &&
	          strstr(id.pub.cert_pem, "-----BEGIN CERTIFICATE-----") !=
	              NULL,
	      "cert_pem is a PEM certificate");
	CHECK(id.pub.key_pem != NULL &&
	          strstr(id.pub.key_pem, "PRIVATE KEY-----") != NULL,
	      "key_pem is a PEM private key");
	s = slurp(at("wiki.cert"));
	CHECK_STR(s, id.pub.cert_pem);
	free(s);
	key_before = slurp(at("wiki.cert.private"));

	/* The shareable URL. */
	hl__identity_url(&id, 7009, url, sizeof url);
	snprintf(want, sizeof want, "http://%s-%s.localhost:7009/", id.password,
	         id.keyhash);
	CHECK_STR(url, want);

	/* Loading again gives the same identity and leaves the files be. */
	snprintf(keyhash, sizeof keyhash, "%s", id.keyhash);
	snprintf(password, sizeof password, "%s", id.password);
	hl__identity_clear(&id);
	CHECK_INT(hl__identity_load(dir, &sc, &id2, err, sizeof err), 0);
	CHECK_STR(id2.keyhash, keyhash);
	CHECK_STR(id2.password, password);
	s = slurp(at("wiki.cert.private"));
	CHECK(s != NULL && key_before != NULL && strcmp(s, key_before) == 0,
	      "the key file is unchanged by a second load");
	free(s);
	free(key_before);
	hl__identity_clear(&id2);

	/* A .hash file with a trailing newline (hand-edited) keeps its
	 * password, and is rewritten without it. */
	snprintf(want, sizeof want, "%s-%s\n", password, keyhash);
	spit(at("wiki.cert.hash"), want);
	CHECK_INT(hl__identity_load(dir, &sc, &id, err, sizeof err), 0);
	CHECK_STR(id.password, password);
	want[strlen(want) - 1] = '\0';
	s = slurp(at("wiki.cert.hash"));
	CHECK_STR(s, want);
	free(s);
	hl__identity_clear(&id);

	/* No password: the dash stays. */
	sc.password_mode = HL_PW_NONE;
	CHECK_INT(hl__identity_load(dir, &sc, &id, err, sizeof err), 0);
	CHECK_STR(id.password, "");
	snprintf(want, sizeof want, "-%s", keyhash);
	s = slurp(at("wiki.cert.hash"));
	CHECK_STR(s, want);
	free(s);
	hl__identity_url(&id, 7009, url, sizeof url);
	snprintf(want, sizeof want, "http://-%s.localhost:7009/", keyhash);
	CHECK_STR(url, want);
	hl__identity_clear(&id);

	/* A fixed password. */
	sc.password_mode = HL_PW_FIXED;
	sc.password = "sesame";
	CHECK_INT(hl__identity_load(dir, &sc, &id, err, sizeof err), 0);
	CHECK_STR(id.password, "sesame");
	CHECK_STR(id.keyhash, keyhash);
	snprintf(want, sizeof want, "sesame-%s", keyhash);
	s = slurp(at("wiki.cert.hash"));
	CHECK_STR(s, want);
	free(s);
	hl__identity_clear(&id);

	sc.password = "Sesame1";
	CHECK_INT(hl__identity_load(dir, &sc, &id, err, sizeof err), -1);
	CHECK(strstr(err, "wiki") != NULL && strstr(err, "password"),
	      "bad fixed password: \"%s\"", err);

	/* Back to auto: the stored one belongs to this cert, so it is kept. */
	sc.password_mode = HL_PW_AUTO;
	sc.password = NULL;
	CHECK_INT(hl__identity_load(dir, &sc, &id, err, sizeof err), 0);
	CHECK_STR(id.password, "sesame");
	hl__identity_clear(&id);

	/* A .hash for another certificate: a new password. */
	spit(at("wiki.cert.hash"),
	     "sesame-0000000000000000000000000000000000000000");
	CHECK_INT(hl__identity_load(dir, &sc, &id, err, sizeof err), 0);
	CHECK(strcmp(id.password, "sesame") != 0 && strlen(id.password) == 13,
	      "a new password, got \"%s\"", id.password);
	CHECK_STR(id.keyhash, keyhash);
	hl__identity_clear(&id);
}

static void
test_python_layout(void)
{
	struct hl__service_conf sc = {.name = "foo"};
	struct hl__identity id;
	char err[512] = "", cmd[8192], ext[64], want[128], cert[4096];
	char *s;
	int rc;

	snprintf(cmd, sizeof cmd,
	         "cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout "
	         "foo.cert.private -out foo.cert -days 1 -subj /CN=x "
	         ">/dev/null 2>&1",
	         dir);
	rc = system(cmd);
	CHECK_INT(rc, 0);
	snprintf(cert, sizeof cert, "%s", at("foo.cert"));
	python_keyhash(cert, ext);
	CHECK(is_hash(ext), "python computed a keyhash (\"%s\")", ext);
	snprintf(want, sizeof want, "hfhfdysvtziz6-%s", ext);
	spit(at("foo.cert.hash"), want);

	/* Loaded through sc->cert from its own place, not the state dir. */
	sc.cert = cert;
	CHECK_INT(hl__identity_load("/nonexistent", &sc, &id, err, sizeof err),
	          0);
	CHECK_STR(err, "");
	CHECK_STR(id.keyhash, ext);
	CHECK_STR(id.password, "hfhfdysvtziz6");
	s = slurp(at("foo.cert.hash"));
	CHECK_STR(s, want);
	free(s);
	CHECK(id.pub.key_pem != NULL &&
	          strstr(id.pub.key_pem, "PRIVATE KEY") != NULL,
	      "an RSA key is loaded");
	hl__identity_clear(&id);

	/* Someone else's key beside the certificate. */
	snprintf(cmd, sizeof cmd,
	         "cp '%s/wiki.cert.private' '%s/foo.cert.private'", dir, dir);
	CHECK_INT(system(cmd), 0);
	CHECK_INT(hl__identity_load(NULL, &sc, &id, err, sizeof err), -1);
	CHECK(strstr(err, "foo: ") == err &&
	          strstr(err, "does not belong") != NULL &&
	          strstr(err, "foo.cert.private") != NULL,
	      "mismatched key: \"%s\"", err);
	CHECK(id.pub.keyhash == NULL, "a failed load leaves no identity");

	/* Not a key at all. */
	spit(at("foo.cert.private"), "hello\n");
	CHECK_INT(hl__identity_load(NULL, &sc, &id, err, sizeof err), -1);
	CHECK(strstr(err, "foo.cert.private") != NULL &&
	          strstr(err, "not an unencrypted PEM private key") != NULL,
	      "garbage key: \"%s\"", err);

	/* A certificate without its key. */
	unlink(at("foo.cert.private"));
	CHECK_INT(hl__identity_load(NULL, &sc, &id, err, sizeof err), -1);
	CHECK(strstr(err, "foo.cert.private") != NULL &&
	          strstr(err, "missing") != NULL,
	      "missing key: \"%s\"", err);

	/* A key without its certificate. */
	snprintf(cmd, sizeof cmd, "mv '%s/foo.cert' '%s/bar.cert.private'", dir,
	         dir);
	CHECK_INT(system(cmd), 0);
	snprintf(cert, sizeof cert, "%s", at("bar.cert"));
	CHECK_INT(hl__identity_load(NULL, &sc, &id, err, sizeof err), -1);
	CHECK(strstr(err, "bar.cert is missing") != NULL,
	      "missing cert: \"%s\"", err);

	/* A custom place whose directory does not exist. */
	snprintf(cert, sizeof cert, "%s", at("nodir/x.cert"));
	CHECK_INT(hl__identity_load(NULL, &sc, &id, err, sizeof err), -1);
	CHECK(strstr(err, "nodir/x.cert") != NULL &&
	          strstr(err, "No such file") != NULL,
	      "missing directory: \"%s\"", err);

	/* A service name that would leave the state dir. */
	{
		struct hl__service_conf w = {.name = "../wiki"};
		CHECK_INT(hl__identity_load(dir, &w, &id, err, sizeof err), -1);
		CHECK(strstr(err, "'/'") != NULL, "bad name: \"%s\"", err);
	}

	/* Unreadable (only meaningful when not root). */
	if (geteuid() != 0) {
		struct hl__service_conf w = {.name = "wiki"};
		chmod(at("wiki.cert.private"), 0);
		CHECK_INT(hl__identity_load(dir, &w, &id, err, sizeof err), -1);
		CHECK(strstr(err, "wiki: cannot read ") == err &&
		          strstr(err, "wiki.cert.private: Permission denied"),
		      "unreadable key: \"%s\"", err);
		chmod(at("wiki.cert.private"), 0600);
	}
}

/*
 * The keyhash test vector of docs/protocol.md ("Identity"): the committed
 * certificate tests/vectors/keyhash.cert, loaded the way a service's
 * `cert:` is, must hash to the value the document states, and the
 * document must state the value this code computes.
 */
#define VECTOR_KEYHASH "4edde683894d49d6c60b396ebe3c05deb97d4ab3"

static void
test_vector_cert(void)
{
	const char *src = getenv("HL_SOURCE_DIR");
	struct hl__service_conf sc = {.name = "vector",
	                              .password_mode = HL_PW_NONE};
	struct hl__identity id;
	char err[512] = "", cmd[8192], cert[4096], ext[64];
	char *doc;

	CHECK(src != NULL, "HL_SOURCE_DIR is set (ctest sets it)");
	if (src == NULL)
		return;
	/* A copy: loading writes <cert>.hash beside the certificate. */
	snprintf(cmd, sizeof cmd,
	         "mkdir -p '%s/vector' && cp '%s/tests/vectors/keyhash.cert' "
	         "'%s/tests/vectors/keyhash.cert.private' '%s/vector/' && "
	         "chmod 600 '%s/vector/keyhash.cert.private'",
	         dir, src, src, dir, dir);
	CHECK_INT(system(cmd), 0);
	snprintf(cert, sizeof cert, "%s/vector/keyhash.cert", dir);
	sc.cert = cert;
	CHECK_INT(hl__identity_load(dir, &sc, &id, err, sizeof err), 0);
	CHECK_STR(err, "");
	CHECK_STR(id.keyhash, VECTOR_KEYHASH);
	hl__identity_clear(&id);

	/* openssl and Python's hashlib agree, independently of hlcore. */
	python_keyhash(cert, ext);
	CHECK_STR(ext, VECTOR_KEYHASH);

	snprintf(cmd, sizeof cmd, "%s/docs/protocol.md", src);
	doc = hl__read_file(cmd, 1 << 20, NULL);
	CHECK(doc != NULL && strstr(doc, VECTOR_KEYHASH) != NULL,
	      "docs/protocol.md states the keyhash %s", VECTOR_KEYHASH);
	free(doc);
}

int
main(void)
{
	char cmd[4096];

	hl__log_level = HL_LOG_WARN;
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_keyhash_vectors();
	test_passwords();
	test_ct_streq();
	test_new_identity();
	test_python_layout();
	test_vector_cert();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
	return check_done();
}
