/*
 * test-loader: the plugin loader against the fixture plugins. Good ones
 * load (the frozen 1.0 one above all); each broken one is refused with a
 * message that names the file, the value found and the value wanted.
 * Usage: test-loader [FIXTURE_DIR] (default: where the build puts them).
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/opensslv.h>

#include "hl.h"
#include "check.h"

#ifndef HL_ABI_FIXTURE_DIR
#define HL_ABI_FIXTURE_DIR "tests/abi"
#endif

static const char *fixture_dir = HL_ABI_FIXTURE_DIR;

static const char *
fixture(const char *name)
{
	return check_fmt("%s/%s.so", fixture_dir, name);
}

/* The services a fixture's init gets: only log, captured. */
static char logged[512];

static void
fake_log(struct hl_plugin *self, int level, const char *fmt, ...)
{
	va_list ap;

	(void)self;
	(void)level;
	va_start(ap, fmt);
	vsnprintf(logged, sizeof logged, fmt, ap);
	va_end(ap);
}

static const struct hl_services fake_svc = {
    .size = sizeof fake_svc,
    .abi_major = HL_ABI_MAJOR,
    .abi_minor = HL_ABI_MINOR,
    .core_version = HL_VERSION,
    .log = fake_log,
};

/*
 * Open path as want_name and expect a refusal whose message starts with
 * the file and holds every one of the NULL-ended substrings.
 */
static void
expect_refused(int line, const char *path, const char *want_name, ...)
{
	struct hl_plugin p = {0};
	char err[1024] = "";
	const char *sub;
	va_list ap;
	int rc;

	rc = hl__plugin_open(path, want_name, &p, err, sizeof err);
	CHECK(rc == -1, "line %d: %s: expected a refusal, got %d", line, path,
	      rc);
	if (rc == 0) {
		hl__plugin_close(&p);
		return;
	}
	CHECK(p.dl == NULL && p.path == NULL && p.desc == NULL,
	      "line %d: %s: a refused plugin leaves p empty", line, path);
	CHECK(strncmp(err, path, strlen(path)) == 0 &&
	          strncmp(err + strlen(path), ": ", 2) == 0,
	      "line %d: expected the message to start with \"%s: \", got "
	      "\"%s\"",
	      line, path, err);
	CHECK(strchr(err, '\n') == NULL,
	      "line %d: expected one line, got \"%s\"", line, err);
	va_start(ap, want_name);
	while ((sub = va_arg(ap, const char *)) != NULL)
		CHECK(strstr(err, sub) != NULL,
		      "line %d: expected \"%s\" in \"%s\"", line, sub, err);
	va_end(ap);
}
#define REFUSED(path, want, ...)                                               \
	expect_refused(__LINE__, path, want, __VA_ARGS__, (const char *)NULL)

static int
expect_loads(int line, const char *path, const char *want_name,
             struct hl_plugin *p)
{
	char err[1024] = "";
	int rc;

	memset(p, 0, sizeof *p);
	rc = hl__plugin_open(path, want_name, p, err, sizeof err);
	CHECK(rc == 0, "line %d: %s: expected it to load, got \"%s\"", line,
	      path, err);
	if (rc != 0)
		return -1;
	CHECK(p->dl != NULL && p->desc != NULL,
	      "line %d: expected dl and desc set", line);
	CHECK_STR(p->path, path);
	return 0;
}
#define LOADS(path, want, p) expect_loads(__LINE__, path, want, p)

static void
test_good(void)
{
	struct hl_plugin p;
	void *state = &p;

	if (LOADS(fixture("good"), "good", &p) < 0)
		return;
	CHECK_STR(p.d.name, "good");
	CHECK_STR(p.d.version, "1.2.3");
	CHECK_INT(p.d.default_priority, 42);
	CHECK_INT(p.d.head.kinds, HL_KIND_DISCOVERY);
	CHECK_INT(p.d.head.size, sizeof(struct hl_plugin_desc));
	CHECK(p.d.discovery != NULL && p.d.traversal == NULL &&
	          p.d.transport == NULL,
	      "expected only the discovery facet");
	/* Loading ran none of its code: init runs only when called. */
	CHECK_STR(logged, "");
	CHECK_INT(p.d.init(&fake_svc, &p, NULL, &state), 0);
	CHECK_STR(logged, "good fixture: init ran");
	CHECK(state == NULL, "expected init to set *state");
	p.d.fini(state);

	/* The same file twice is two records of one mapping. */
	struct hl_plugin q;
	if (LOADS(fixture("good"), NULL, &q) == 0) {
		CHECK(q.desc == p.desc, "expected one mapping");
		hl__plugin_close(&q);
	}
	hl__plugin_close(&p);
	CHECK(p.dl == NULL && p.path == NULL, "expected close to clear p");
	hl__plugin_close(&p); /* closing twice is harmless */
}

static void
test_frozen_1_0(void)
{
	struct hl_plugin p;
	void *state = NULL;

	if (LOADS(fixture("frozen-1-0"), "frozen-1-0", &p) < 0)
		return;
	CHECK_INT(p.d.head.abi_major, 1);
	CHECK_INT(p.d.head.abi_minor, 0);
	CHECK_INT(p.d.head.kinds,
	          HL_KIND_DISCOVERY | HL_KIND_TRAVERSAL | HL_KIND_TRANSPORT);
	CHECK(p.d.head.size <= sizeof(struct hl_plugin_desc),
	      "a 1.0 descriptor (%u bytes) fits in this core's (%zu)",
	      (unsigned)p.d.head.size, sizeof(struct hl_plugin_desc));
	CHECK(p.d.discovery && p.d.traversal && p.d.transport,
	      "expected all three 1.0 facets");
	CHECK_INT(p.d.init(&fake_svc, &p, NULL, &state), 0);
	CHECK_STR(logged, "frozen 1.0 fixture: init ran");
	p.d.fini(state);
	hl__plugin_close(&p);
}

static void
test_broken_fixtures(void)
{
	char want[64], want2[64];

	REFUSED(fixture("bad-magic"), "bad-magic", "0x4e504c48", "0x484c504e",
	        "HL_PLUGIN()");

	snprintf(want, sizeof want, "this hlcore speaks %d.%d", HL_ABI_MAJOR,
	         HL_ABI_MINOR);
	REFUSED(fixture("other-major"), "other-major", "plugin ABI 2.x", want,
	        "rebuild the plugin", "upgrade hlcore");

	snprintf(want, sizeof want, "needs ABI %d.%d", HL_ABI_MAJOR,
	         HL_ABI_MINOR + 1);
	snprintf(want2, sizeof want2, "this hlcore has %d.%d", HL_ABI_MAJOR,
	         HL_ABI_MINOR);
	REFUSED(fixture("newer-minor"), "newer-minor", want, want2,
	        "upgrade hlcore", "HL_PLUGIN_ABI_MINOR");

	/* The least a 1.x descriptor lays out: the 1.0 one (1.2 appended
	 * flags after it). */
	snprintf(want, sizeof want, "(%zu bytes)",
	         offsetof(struct hl_plugin_desc, reserved) +
	             sizeof(((struct hl_plugin_desc *)0)->reserved));
	REFUSED(fixture("short-struct"), "short-struct",
	        "descriptor is 24 bytes", want);

	REFUSED(fixture("missing-op"), "missing-op", "transport", "no dial op",
	        "struct hl_transport_ops");

	REFUSED(fixture("no-symbol"), "no-symbol",
	        "is not a Hardline plugin (no `hardline_plugin` symbol)",
	        "build it with HL_PLUGIN() from hardline/plugin.h");

	snprintf(want, sizeof want, "(%zu bytes)",
	         sizeof(struct hl_plugin_head));
	REFUSED(fixture("tiny-symbol"), "tiny-symbol", "is 4 bytes", want);

	REFUSED(fixture("name-mismatch"), "name-mismatch", "\"someone-else\"",
	        "\"name-mismatch\"", "someone-else.so");
}

static void
test_bad_files(void)
{
	char tmpl[] = "/tmp/hl-test-loader-XXXXXX.so";
	int fd;

	REFUSED("/nonexistent-hl-dir/nothing.so", "nothing",
	        "No such file or directory", "plugin_dir");
	/* A name that could climb out of plugin_dir is refused before the
	 * file is opened at all. */
	REFUSED(fixture("good"), "../good", "\"../good\"", "[a-z0-9-]+");

	fd = mkstemps(tmpl, 3);
	CHECK(fd >= 0, "mkstemps");
	if (fd < 0)
		return;
	CHECK(write(fd, "not an ELF file\n", 16) == 16, "write");
	close(fd);
	REFUSED(tmpl, "x", "cannot load", "install the library it needs",
	        "rebuild the plugin");
	unlink(tmpl);
}

/* One field of the mutable fixture broken at a time. */
static void
test_each_check(void)
{
	const char *path = fixture("mutable");
	struct hl_plugin_desc *m, orig;
	struct hl_discovery_ops *disc, orig_disc;
	struct hl_traversal_ops *trav, orig_trav;
	struct hl_transport_ops *tran, orig_tran;
	struct hl_plugin p;
	char want[128];
	void *dl;

	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CHECK(dl != NULL, "dlopen %s: %s", path, dlerror());
	if (dl == NULL)
		return;
	m = dlsym(dl, HL_PLUGIN_SYMBOL);
	CHECK(m != NULL, "dlsym");
	if (m == NULL) {
		dlclose(dl);
		return;
	}
	disc = (struct hl_discovery_ops *)m->discovery;
	trav = (struct hl_traversal_ops *)m->traversal;
	tran = (struct hl_transport_ops *)m->transport;
	orig = *m;
	orig_disc = *disc;
	orig_trav = *trav;
	orig_tran = *tran;
#define RESTORE()                                                              \
	do {                                                                   \
		*m = orig;                                                     \
		*disc = orig_disc;                                             \
		*trav = orig_trav;                                             \
		*tran = orig_tran;                                             \
	} while (0)
/* Load mutable with stmt's change: refused, the message holding each
 * string given; then mend it. */
#define BROKEN(stmt, ...)                                                      \
	do {                                                                   \
		stmt;                                                          \
		REFUSED(path, "mutable", __VA_ARGS__);                         \
		RESTORE();                                                     \
	} while (0)
/* Load mutable as changed: it loads; then mend it. */
#define STILL_LOADS()                                                          \
	do {                                                                   \
		if (LOADS(path, "mutable", &p) == 0)                           \
			hl__plugin_close(&p);                                  \
		RESTORE();                                                     \
	} while (0)

	STILL_LOADS();

	REFUSED(path, "other-name", "\"mutable\"", "\"other-name\"");

	BROKEN(m->head.magic = 0, "0x00000000", "0x484c504e");

	BROKEN(m->head.abi_major = 0, "ABI 0.x", "speaks 1.",
	       "rebuild the plugin");

	BROKEN(m->head.abi_major = 3, "ABI 3.x", "speaks 1.", "upgrade hlcore");

	BROKEN(m->head.abi_minor = 77, "needs ABI 1.77", "this hlcore has 1.");

	BROKEN(m->head.size = 70000, "70000 bytes", "65536");

	/* Bigger than the symbol (its size may include a sanitizer's
	 * redzone, hence no exact number for it). */
	m->head.size = sizeof *m + 4096;
	snprintf(want, sizeof want, "says %zu bytes", sizeof *m + 4096);
	REFUSED(path, "mutable", want, "symbol is only");
	RESTORE();

	BROKEN(m->name = NULL, "no name", ".name");

	m->name = "Bad_Name";
	REFUSED(path, NULL, "\"Bad_Name\"", "[a-z0-9-]+");
	RESTORE();

	BROKEN(m->init = NULL, "no init", ".init");

	m->libevent_version = 0x02020100;
	snprintf(want, sizeof want, "this hlcore uses libevent %lu.%lu",
	         (unsigned long)(LIBEVENT_VERSION_NUMBER >> 24) & 0xff,
	         (unsigned long)(LIBEVENT_VERSION_NUMBER >> 16) & 0xff);
	REFUSED(path, "mutable", "built against libevent 2.2", want,
	        "rebuild the plugin");
	RESTORE();

	m->openssl_version = 0x1010107fL;
	snprintf(want, sizeof want, "this hlcore uses OpenSSL %lu.%lu",
	         (unsigned long)(OPENSSL_VERSION_NUMBER >> 28) & 0xf,
	         (unsigned long)(OPENSSL_VERSION_NUMBER >> 20) & 0xff);
	if (OPENSSL_VERSION_NUMBER >> 20 != 0x101) {
		REFUSED(path, "mutable", "built against OpenSSL 1.1", want,
		        "rebuild the plugin");
	}
	RESTORE();

	/* 1.2: a plugin that passes no OpenSSL object says so and is not
	 * held to OpenSSL's version (built without its headers: 0). */
	m->openssl_version = 0;
	m->flags = HL_PLUGIN_NO_OPENSSL;
	STILL_LOADS();
	m->openssl_version = 0;
	REFUSED(path, "mutable", "built against OpenSSL 0.0", "rebuild");
	RESTORE();

	m->head.kinds = 0;
	m->discovery = NULL;
	m->traversal = NULL;
	m->transport = NULL;
	REFUSED(path, "mutable", "no kind", "HL_KIND_");
	RESTORE();

	BROKEN(m->head.kinds |= 0x100, "0x107", "unknown bits 0x100", "0xf");

	BROKEN(m->discovery = NULL, "no discovery table", "HL_KIND_DISCOVERY");

	disc->size = 8;
	/* The least a 1.x plugin lays out is the 1.0 table. */
	snprintf(want, sizeof want, "(%zu bytes)",
	         offsetof(struct hl_discovery_ops, query_cancel) +
	             sizeof(void (*)(void)));
	REFUSED(path, "mutable", "discovery table says it is 8 bytes", want,
	        "sizeof(struct hl_discovery_ops)");
	RESTORE();

	BROKEN(disc->query_start = NULL, "no query_start op");

	BROKEN(disc->query_cancel = NULL, "no query_cancel op");

	BROKEN(trav->size = 0, "traversal table says it is 0 bytes");

	BROKEN(trav->port_event = NULL, "no port_event op");

	BROKEN(tran->dial_cancel = NULL, "no dial_cancel op");

	/* A table for a kind not declared would be silently ignored. */
	BROKEN(m->head.kinds = HL_KIND_DISCOVERY, "has a traversal table",
	       "declares only kinds discovery", "HL_KIND_TRAVERSAL");

	BROKEN(m->reserved[2] = m, "reserved[2]", "NULL");

	/* A control plugin has no facet table in 1.0, so no ops to check. */
	m->head.kinds = HL_KIND_CONTROL;
	m->discovery = NULL;
	m->traversal = NULL;
	m->transport = NULL;
	STILL_LOADS();

	/* Optional parts may be missing. */
	m->version = NULL;
	m->description = NULL;
	m->fini = NULL;
	STILL_LOADS();
#undef BROKEN
#undef STILL_LOADS
#undef RESTORE
	dlclose(dl);
}

static char *
info(const char *path, int *rc)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	*rc = hl__plugin_info(path, f);
	fclose(f);
	return buf;
}

static void
test_plugin_info(void)
{
	char *out, want[128];
	int rc;

	logged[0] = '\0';
	out = info(fixture("good"), &rc);
	CHECK_INT(rc, 0);
	CHECK(strstr(out, fixture("good")) != NULL, "file in \"%s\"", out);
	CHECK(strstr(out, "name:             good\n") != NULL, "name in %s",
	      out);
	CHECK(strstr(out, "1.2.3") != NULL, "version in %s", out);
	CHECK(strstr(out, "finds nothing") != NULL, "description in %s", out);
	CHECK(strstr(out, "kinds:            discovery\n") != NULL,
	      "kinds in %s", out);
	snprintf(want, sizeof want, "ABI needed:       %d.%d", HL_ABI_MAJOR,
	         HL_ABI_MINOR);
	CHECK(strstr(out, want) != NULL, "abi in %s", out);
	snprintf(want, sizeof want, "descriptor size:  %zu bytes",
	         sizeof(struct hl_plugin_desc));
	CHECK(strstr(out, want) != NULL, "size in %s", out);
	CHECK(strstr(out, "default priority: 42\n") != NULL, "priority in %s",
	      out);
	CHECK(strstr(out, "libevent:         2.") != NULL, "libevent in %s",
	      out);
	CHECK(strstr(out, "OpenSSL:          ") != NULL, "OpenSSL in %s", out);
	CHECK(strstr(out, "facets:           discovery (") != NULL,
	      "facets in %s", out);
	CHECK(strstr(out, "note:") == NULL, "no note for %s", out);
	CHECK_STR(logged, ""); /* init did not run */
	free(out);

	out = info(fixture("frozen-1-0"), &rc);
	CHECK_INT(rc, 0);
	CHECK(strstr(out, "discovery, traversal, transport") != NULL,
	      "kinds in %s", out);
	CHECK(strstr(out, "ABI needed:       1.0") != NULL, "abi in %s", out);
	free(out);

	out = info(fixture("name-mismatch"), &rc);
	CHECK_INT(rc, 0);
	CHECK(strstr(out, "note: the file should be named someone-else.so") !=
	          NULL,
	      "note in %s", out);
	free(out);

	out = info(fixture("other-major"), &rc);
	CHECK_INT(rc, 2);
	CHECK(strstr(out, fixture("other-major")) != NULL &&
	          strstr(out, "2.x") != NULL,
	      "refusal in \"%s\"", out);
	free(out);
}

static void
test_plugin_find(void)
{
	char *p;

	p = hl__plugin_find("/opt/hl", "transport-tls");
	CHECK_STR(p, "/opt/hl/transport-tls.so");
	free(p);
	p = hl__plugin_find("rel/dir", "x");
	CHECK_STR(p, "rel/dir/x.so");
	free(p);
	/* Not beside this binary: the install dir, even when missing. */
	p = hl__plugin_find(NULL, "no-such-plugin");
#ifdef HL_PLUGIN_INSTALL_DIR
	CHECK_STR(p, HL_PLUGIN_INSTALL_DIR "/no-such-plugin.so");
#else
	CHECK(p != NULL && strstr(p, "/no-such-plugin.so") != NULL, "got %s",
	      p);
#endif
	free(p);
}

static void
test_relative_path(void)
{
	struct hl_plugin p;
	char cwd[4096];

	if (getcwd(cwd, sizeof cwd) == NULL || chdir(fixture_dir) != 0) {
		CHECK(0, "chdir %s", fixture_dir);
		return;
	}
	/* A bare file name is a file here, not a library search. */
	if (LOADS("good.so", "good", &p) == 0)
		hl__plugin_close(&p);
	CHECK(chdir(cwd) == 0, "chdir back");
}

int
main(int argc, char **argv)
{
	if (argc > 1)
		fixture_dir = argv[1];
	test_good();
	test_frozen_1_0();
	test_broken_fixtures();
	test_bad_files();
	test_each_check();
	test_plugin_info();
	test_plugin_find();
	test_relative_path();
	return check_done();
}
