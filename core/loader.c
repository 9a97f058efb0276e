/*
 * loader.c: open a plugin's shared object and check its descriptor before
 * any of the plugin's code runs. The order is the ABI's promise: only the
 * frozen head is read until it has passed (magic, major, minor, size);
 * only then is the rest copied, and only then is anything behind a pointer
 * read. Every refusal is one sentence: the file, the value found, the
 * value wanted, and the fix.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/opensslv.h>

#include "hl.h"

#ifndef HL_PLUGIN_INSTALL_DIR
#error "HL_PLUGIN_INSTALL_DIR must be defined (core/CMakeLists.txt does)"
#endif

/*
 * The sizes of the 1.0 structs: the least a 1.x plugin lays out. Each ends
 * at the last member 1.0 had, so they stay right when members are
 * appended (reserved slots are renamed in place, never moved).
 * SIZE_THROUGH(s, m): the size of struct s up to and including member m.
 */
#define SIZE_THROUGH(s, m) (offsetof(struct s, m) + sizeof(((struct s *)0)->m))
#define HL_DESC_SIZE_1_0 SIZE_THROUGH(hl_plugin_desc, reserved)
#define HL_DISCOVERY_OPS_SIZE_1_0 SIZE_THROUGH(hl_discovery_ops, query_cancel)
#define HL_TRAVERSAL_OPS_SIZE_1_0 SIZE_THROUGH(hl_traversal_ops, port_event)
#define HL_EVENTS_OPS_SIZE_1_1 SIZE_THROUGH(hl_events_ops, event)
#define HL_TRANSPORT_OPS_SIZE_1_0 SIZE_THROUGH(hl_transport_ops, dial_cancel)

/* A descriptor larger than this is not a descriptor but a damaged file. */
#define HL_DESC_SIZE_MAX (64 * 1024)
#define HL_NAME_MAX 63

#define HL_KINDS_KNOWN                                                         \
	(HL_KIND_DISCOVERY | HL_KIND_TRAVERSAL | HL_KIND_TRANSPORT |           \
	 HL_KIND_CONTROL)

#define EV_MAJOR(v) ((unsigned)(((v) >> 24) & 0xff))
#define EV_MINOR(v) ((unsigned)(((v) >> 16) & 0xff))
#define EV_PATCH(v) ((unsigned)(((v) >> 8) & 0xff))
/* OPENSSL_VERSION_NUMBER: 0xMNN00PP0 in 3.x, 0xMNNFFPPS before. */
#define SSL_MAJOR(v) ((unsigned)(((v) >> 28) & 0xf))
#define SSL_MINOR(v) ((unsigned)(((v) >> 20) & 0xff))

static const struct {
	unsigned bit;
	const char *name;
} kind_names[] = {
    {HL_KIND_DISCOVERY, "discovery"},
    {HL_KIND_TRAVERSAL, "traversal"},
    {HL_KIND_TRANSPORT, "transport"},
    {HL_KIND_CONTROL, "control"},
};

static void refuse(char *err, size_t errlen, const char *path, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));

static void
refuse(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (err == NULL || errlen == 0)
		return;
	n = snprintf(err, errlen, "%s: ", path);
	if (n < 0 || (size_t)n >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}

static int
name_valid(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++) {
		if (n >= HL_NAME_MAX)
			return 0;
		if (!((s[n] >= 'a' && s[n] <= 'z') ||
		      (s[n] >= '0' && s[n] <= '9') || s[n] == '-'))
			return 0;
	}
	return n > 0;
}

static void
kinds_str(uint32_t kinds, char *out, size_t outlen)
{
	size_t n = 0;

	out[0] = '\0';
	for (size_t i = 0; i < sizeof kind_names / sizeof kind_names[0]; i++) {
		if (!(kinds & kind_names[i].bit))
			continue;
		n += snprintf(out + n, n < outlen ? outlen - n : 0, "%s%s",
		              n ? ", " : "", kind_names[i].name);
		if (n >= outlen)
			return;
	}
	if (kinds & ~(uint32_t)HL_KINDS_KNOWN)
		snprintf(out + n, n < outlen ? outlen - n : 0,
		         "%sunknown bits 0x%x", n ? ", " : "",
		         (unsigned)(kinds & ~(uint32_t)HL_KINDS_KNOWN));
}

/* The facet checks, for one kind: table present, big enough, mandatory
 * ops set. The size is read before anything else of the table. */
static int
check_facet(const char *path, const char *kind, const char *macro,
            const void *table, size_t min_size, const char *type, char *err,
            size_t errlen)
{
	size_t size;

	if (table == NULL) {
		refuse(
		    err, errlen, path,
		    "declares kind %s but has no %s table (.%s is NULL): "
		    "set .%s = &your_ops in HL_PLUGIN(), or drop %s from its "
		    "kinds",
		    kind, kind, kind, kind, macro);
		return -1;
	}
	memcpy(&size, table, sizeof size);
	if (size < min_size) {
		refuse(
		    err, errlen, path,
		    "its %s table says it is %zu bytes, smaller than the 1.0 "
		    "%s (%zu bytes): set its .size = sizeof(%s) and rebuild",
		    kind, size, type, min_size, type);
		return -1;
	}
	return 0;
}

/* A library whose objects cross the ABI: the plugin's major.minor must
 * be the core's. */
static int
check_library(const char *path, const char *lib, unsigned major, unsigned minor,
              unsigned core_major, unsigned core_minor, char *err,
              size_t errlen)
{
	if (major == core_major && minor == core_minor)
		return 0;
	refuse(err, errlen, path,
	       "built against %s %u.%u, but this hlcore uses %s %u.%u: "
	       "rebuild the plugin against the %s %u.%u headers",
	       lib, major, minor, lib, core_major, core_minor, lib, core_major,
	       core_minor);
	return -1;
}

static int
check_op(const char *path, const char *kind, int present, const char *opname,
         const char *type, char *err, size_t errlen)
{
	if (present)
		return 0;
	refuse(err, errlen, path,
	       "its %s table has no %s op (NULL), which every %s plugin needs: "
	       "set .%s in its %s",
	       kind, opname, kind, opname, type);
	return -1;
}

/* Everything past the head, on the copy in p->d. */
static int
check_desc(const char *path, const char *want_name, struct hl_plugin *p,
           char *err, size_t errlen)
{
	const struct hl_plugin_desc *d = &p->d;
	uint32_t kinds = d->head.kinds;
	char ks[128];

	if (d->name == NULL) {
		refuse(err, errlen, path,
		       "descriptor has no name (.name is NULL), and a plugin "
		       "needs one: set .name in HL_PLUGIN() to the file's name "
		       "without .so");
		return -1;
	}
	if (!name_valid(d->name)) {
		refuse(err, errlen, path,
		       "descriptor name \"%.*s\" is not of the form [a-z0-9-]+ "
		       "(at most %d characters): rename the plugin, its file "
		       "and its config key to such a name",
		       HL_NAME_MAX, d->name, HL_NAME_MAX);
		return -1;
	}
	if (want_name != NULL && strcmp(d->name, want_name) != 0) {
		refuse(
		    err, errlen, path,
		    "descriptor names the plugin \"%s\", but it was loaded as "
		    "\"%s\" and the two must be one name: rename the file to "
		    "%s.so and its config key to %s, or set .name = \"%s\" "
		    "and rebuild",
		    d->name, want_name, d->name, d->name, want_name);
		return -1;
	}
	if (d->init == NULL) {
		refuse(err, errlen, path,
		       "descriptor has no init (.init is NULL), which every "
		       "plugin needs: set .init in HL_PLUGIN()");
		return -1;
	}
	if (check_library(path, "libevent", EV_MAJOR(d->libevent_version),
	                  EV_MINOR(d->libevent_version),
	                  EV_MAJOR(LIBEVENT_VERSION_NUMBER),
	                  EV_MINOR(LIBEVENT_VERSION_NUMBER), err, errlen) < 0)
		return -1;
	/* 1.2: a plugin that hands no OpenSSL object across the ABI (its
	 * TLS is GnuTLS, or none) is not held to OpenSSL's version. */
	if (!(d->flags & HL_PLUGIN_NO_OPENSSL) &&
	    check_library(path, "OpenSSL", SSL_MAJOR(d->openssl_version),
	                  SSL_MINOR(d->openssl_version),
	                  SSL_MAJOR(OPENSSL_VERSION_NUMBER),
	                  SSL_MINOR(OPENSSL_VERSION_NUMBER), err, errlen) < 0)
		return -1;
	if (kinds == 0) {
		refuse(err, errlen, path,
		       "descriptor declares no kind (kinds is 0), but a plugin "
		       "is at least one of discovery, traversal, transport, "
		       "control: pass HL_KIND_* bits as HL_PLUGIN()'s first "
		       "argument");
		return -1;
	}
	if (kinds & ~(uint32_t)HL_KINDS_KNOWN) {
		kinds_str(kinds, ks, sizeof ks);
		refuse(
		    err, errlen, path,
		    "descriptor declares kinds 0x%x (%s), but ABI %d.%d knows "
		    "only 0x%x: use only the HL_KIND_* bits of "
		    "hardline/plugin.h",
		    (unsigned)kinds, ks, HL_ABI_MAJOR, HL_ABI_MINOR,
		    (unsigned)HL_KINDS_KNOWN);
		return -1;
	}

	/* Each kind's table and its mandatory ops. */
	static const struct {
		unsigned bit;
		const char *kind, *macro, *type;
		size_t min_size;
		struct {
			size_t off; /* of the op in the table */
			const char *name; /* NULL: none */
		} ops[2];
	} facets[] = {
	    {HL_KIND_DISCOVERY,
	     "discovery",
	     "HL_KIND_DISCOVERY",
	     "struct hl_discovery_ops",
	     HL_DISCOVERY_OPS_SIZE_1_0,
	     {{offsetof(struct hl_discovery_ops, query_start), "query_start"},
	      {offsetof(struct hl_discovery_ops, query_cancel),
	       "query_cancel"}}},
	    {HL_KIND_TRAVERSAL,
	     "traversal",
	     "HL_KIND_TRAVERSAL",
	     "struct hl_traversal_ops",
	     HL_TRAVERSAL_OPS_SIZE_1_0,
	     {{offsetof(struct hl_traversal_ops, port_event), "port_event"},
	      {0, NULL}}},
	    {HL_KIND_TRANSPORT,
	     "transport",
	     "HL_KIND_TRANSPORT",
	     "struct hl_transport_ops",
	     HL_TRANSPORT_OPS_SIZE_1_0,
	     {{offsetof(struct hl_transport_ops, dial), "dial"},
	      {offsetof(struct hl_transport_ops, dial_cancel), "dial_cancel"}}},
	};
	const void *tables[] = {d->discovery, d->traversal, d->transport};
	/* Tables present for kinds not declared are a mistake too: the core
	 * would silently ignore them. */
	for (size_t i = 0; i < sizeof facets / sizeof facets[0]; i++) {
		if (tables[i] != NULL && !(kinds & facets[i].bit)) {
			kinds_str(kinds, ks, sizeof ks);
			refuse(err, errlen, path,
			       "has a %s table but declares only kinds %s: add "
			       "%s to HL_PLUGIN()'s kinds, or drop .%s",
			       facets[i].kind, ks, facets[i].macro,
			       facets[i].kind);
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof facets / sizeof facets[0]; i++) {
		if (!(kinds & facets[i].bit))
			continue;
		if (check_facet(path, facets[i].kind, facets[i].macro,
		                tables[i], facets[i].min_size, facets[i].type,
		                err, errlen) < 0)
			return -1;
		for (size_t k = 0; k < 2 && facets[i].ops[k].name != NULL;
		     k++) {
			void (*op)(void);
			/* The table is at least min_size bytes (checked). */
			memcpy(&op,
			       (const char *)tables[i] + facets[i].ops[k].off,
			       sizeof op);
			if (check_op(path, facets[i].kind, op != NULL,
			             facets[i].ops[k].name, facets[i].type, err,
			             errlen) < 0)
				return -1;
		}
	}

	if (d->events != NULL) {
		size_t size;
		memcpy(&size, d->events, sizeof size);
		if (size < HL_EVENTS_OPS_SIZE_1_1) {
			refuse(err, errlen, path,
			       "its events table says it is %zu bytes, smaller "
			       "than the 1.1 struct hl_events_ops (%zu bytes): "
			       "set its .size = sizeof(struct hl_events_ops) "
			       "and rebuild",
			       size, (size_t)HL_EVENTS_OPS_SIZE_1_1);
			return -1;
		}
		if (check_op(path, "events", d->events->event != NULL, "event",
		             "struct hl_events_ops", err, errlen) < 0)
			return -1;
	}
	for (size_t i = 0; i < sizeof d->reserved / sizeof d->reserved[0];
	     i++) {
		if (d->reserved[i] != NULL) {
			refuse(
			    err, errlen, path,
			    "descriptor's reserved[%zu] is set, but ABI %d.%d "
			    "gives it no meaning and needs it NULL: leave "
			    "reserved out of HL_PLUGIN()",
			    i, HL_ABI_MAJOR, HL_ABI_MINOR);
			return -1;
		}
	}
	return 0;
}

/* The head checks; nothing beyond *h is read. */
static int
check_head(const char *path, const struct hl_plugin_head *h, char *err,
           size_t errlen)
{
	if (h->magic != HL_ABI_MAGIC) {
		refuse(err, errlen, path,
		       "the `%s` symbol starts with magic 0x%08x, not 0x%08x "
		       "(\"HLPN\"), so it is not a Hardline plugin descriptor: "
		       "build it with HL_PLUGIN() from hardline/plugin.h",
		       HL_PLUGIN_SYMBOL, (unsigned)h->magic,
		       (unsigned)HL_ABI_MAGIC);
		return -1;
	}
	if (h->abi_major != HL_ABI_MAJOR) {
		if (h->abi_major > HL_ABI_MAJOR)
			refuse(
			    err, errlen, path,
			    "built for plugin ABI %u.x, but this hlcore "
			    "speaks %d.%d: rebuild the plugin against hlcore "
			    "%d.x's hardline/plugin.h, or upgrade hlcore to "
			    "one that speaks ABI %u.x",
			    (unsigned)h->abi_major, HL_ABI_MAJOR, HL_ABI_MINOR,
			    HL_ABI_MAJOR, (unsigned)h->abi_major);
		else
			refuse(
			    err, errlen, path,
			    "built for plugin ABI %u.x, but this hlcore "
			    "speaks %d.%d: rebuild the plugin against hlcore "
			    "%d.x's hardline/plugin.h",
			    (unsigned)h->abi_major, HL_ABI_MAJOR, HL_ABI_MINOR,
			    HL_ABI_MAJOR);
		return -1;
	}
	if (h->abi_minor > HL_ABI_MINOR) {
		refuse(
		    err, errlen, path,
		    "needs ABI %u.%u but this hlcore has %d.%d: upgrade "
		    "hlcore, or build the plugin with "
		    "HL_PLUGIN_ABI_MINOR %d if it does not use newer services",
		    (unsigned)h->abi_major, (unsigned)h->abi_minor,
		    HL_ABI_MAJOR, HL_ABI_MINOR, HL_ABI_MINOR);
		return -1;
	}
	if (h->size < HL_DESC_SIZE_1_0) {
		refuse(
		    err, errlen, path,
		    "descriptor is %u bytes, smaller than the 1.0 descriptor "
		    "(%zu bytes) that ABI %u.%u requires: the head is wrong "
		    "or the file damaged; build the descriptor with "
		    "HL_PLUGIN() from hardline/plugin.h",
		    (unsigned)h->size, (size_t)HL_DESC_SIZE_1_0,
		    (unsigned)h->abi_major, (unsigned)h->abi_minor);
		return -1;
	}
	if (h->size > HL_DESC_SIZE_MAX) {
		refuse(err, errlen, path,
		       "descriptor claims %u bytes, more than the %d any "
		       "descriptor may have: the file is damaged; rebuild the "
		       "plugin with HL_PLUGIN() from hardline/plugin.h",
		       (unsigned)h->size, HL_DESC_SIZE_MAX);
		return -1;
	}
	return 0;
}

/*
 * The size the dynamic linker records for the descriptor symbol, or 0 when
 * it does not know. Checked against the head so that a stray symbol of the
 * same name is never read past its end.
 */
static size_t
symbol_size(const void *sym, int *is_func)
{
	Dl_info info;
	const ElfW(Sym) *es = NULL;

	*is_func = 0;
	if (dladdr1(sym, &info, (void **)&es, RTLD_DL_SYMENT) == 0 ||
	    es == NULL || info.dli_saddr != sym)
		return 0;
	*is_func = (es->st_info & 0xf) == STT_FUNC;
	return es->st_size;
}

int
hl__plugin_open(const char *path, const char *want_name, struct hl_plugin *p,
                char *err, size_t errlen)
{
	char dlpath[PATH_MAX];
	struct hl_plugin_head head;
	const void *sym;
	size_t symsize, n;
	int is_func, len;
	void *dl;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	p->path = NULL;
	p->dl = NULL;
	p->desc = NULL;
	memset(&p->d, 0, sizeof p->d);

	/* Refuse a bad name before opening anything: it may come from a
	 * config and end up in a path. */
	if (want_name != NULL && !name_valid(want_name)) {
		refuse(err, errlen, path,
		       "plugin name \"%s\" is not of the form [a-z0-9-]+ (at "
		       "most %d characters): use the plugin's own name as its "
		       "config key",
		       want_name, HL_NAME_MAX);
		return -1;
	}
	if (access(path, F_OK) != 0) {
		refuse(err, errlen, path,
		       "cannot open: %s: build or install the plugin, or set "
		       "plugin_dir to where it is",
		       strerror(errno));
		return -1;
	}
	/* dlopen searches the library path for a name without a slash; a
	 * plugin file is always a path. */
	len = snprintf(dlpath, sizeof dlpath, "%s%s",
	               strchr(path, '/') == NULL ? "./" : "", path);
	if (len < 0 || (size_t)len >= sizeof dlpath) {
		refuse(err, errlen, path,
		       "path is longer than %d bytes: use a shorter plugin_dir",
		       PATH_MAX - 1);
		return -1;
	}

	dlerror();
	dl = dlopen(dlpath, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		const char *e = dlerror();
		size_t dl_len = strlen(dlpath);
		if (e == NULL)
			e = "unknown dlopen error";
		/* dlerror() often starts with the path: say it once. */
		if (strncmp(e, dlpath, dl_len) == 0 &&
		    strncmp(e + dl_len, ": ", 2) == 0)
			e += dl_len + 2;
		refuse(err, errlen, path,
		       "cannot load: %s: install the library it needs, or "
		       "rebuild the plugin for this system",
		       e);
		return -1;
	}
	dlerror();
	sym = dlsym(dl, HL_PLUGIN_SYMBOL);
	if (sym == NULL) {
		refuse(err, errlen, path,
		       "is not a Hardline plugin (no `%s` symbol): build it "
		       "with HL_PLUGIN() from hardline/plugin.h",
		       HL_PLUGIN_SYMBOL);
		goto fail;
	}
	symsize = symbol_size(sym, &is_func);
	if (is_func) {
		refuse(err, errlen, path,
		       "its `%s` symbol is a function, not a descriptor: build "
		       "it with HL_PLUGIN() from hardline/plugin.h",
		       HL_PLUGIN_SYMBOL);
		goto fail;
	}
	if (symsize != 0 && symsize < sizeof head) {
		refuse(
		    err, errlen, path,
		    "its `%s` symbol is %zu bytes, smaller than a descriptor "
		    "head (%zu bytes), so it is not a descriptor: build it "
		    "with HL_PLUGIN() from hardline/plugin.h",
		    HL_PLUGIN_SYMBOL, symsize, sizeof head);
		goto fail;
	}

	memcpy(&head, sym, sizeof head);
	if (check_head(path, &head, err, errlen) < 0)
		goto fail;
	if (symsize != 0 && symsize < head.size) {
		refuse(
		    err, errlen, path,
		    "descriptor head says %u bytes but the `%s` symbol is only "
		    "%zu: the head is wrong or the file damaged; build the "
		    "descriptor with HL_PLUGIN() from hardline/plugin.h",
		    (unsigned)head.size, HL_PLUGIN_SYMBOL, symsize);
		goto fail;
	}

	n = head.size < sizeof p->d ? head.size : sizeof p->d;
	memcpy(&p->d, sym, n);
	if (check_desc(path, want_name, p, err, errlen) < 0)
		goto fail;

	p->path = strdup(path);
	if (p->path == NULL) {
		refuse(err, errlen, path, "out of memory");
		goto fail;
	}
	p->dl = dl;
	p->desc = sym;
	return 0;

fail:
	memset(&p->d, 0, sizeof p->d);
	dlclose(dl);
	return -1;
}

void
hl__plugin_close(struct hl_plugin *p)
{
	if (p == NULL)
		return;
	if (p->dl != NULL)
		dlclose(p->dl);
	free(p->path);
	p->path = NULL;
	p->dl = NULL;
	p->desc = NULL;
	memset(&p->d, 0, sizeof p->d);
}

static void
openssl_version_str(unsigned long v, char *out, size_t outlen)
{
	unsigned major = SSL_MAJOR(v), minor = SSL_MINOR(v);

	if (major >= 3) {
		snprintf(out, outlen, "%u.%u.%u", major, minor,
		         (unsigned)((v >> 4) & 0xff));
	} else {
		unsigned fix = (v >> 12) & 0xff, patch = (v >> 4) & 0xff;
		char letter[2] = {0};
		if (patch > 0 && patch <= 26)
			letter[0] = (char)('a' + patch - 1);
		snprintf(out, outlen, "%u.%u.%u%s", major, minor, fix, letter);
	}
}

int
hl__plugin_info(const char *path, FILE *out)
{
	struct hl_plugin p = {0};
	const struct hl_plugin_desc *d;
	char err[1024], ks[128], ssl[32], core_ssl[32];
	const char *base;
	size_t blen;

	if (hl__plugin_open(path, NULL, &p, err, sizeof err) < 0) {
		fprintf(out, "%s\n", err);
		return 2;
	}
	d = &p.d;
	kinds_str(d->head.kinds, ks, sizeof ks);
	if (d->flags & HL_PLUGIN_NO_OPENSSL)
		snprintf(ssl, sizeof ssl, "none (passes no OpenSSL object)");
	else
		openssl_version_str(d->openssl_version, ssl, sizeof ssl);
	openssl_version_str(OPENSSL_VERSION_NUMBER, core_ssl, sizeof core_ssl);

	fprintf(out, "file:             %s\n", path);
	fprintf(out, "name:             %s\n", d->name);
	fprintf(out, "version:          %s\n", d->version ? d->version : "-");
	fprintf(out, "description:      %s\n",
	        d->description ? d->description : "-");
	fprintf(out, "kinds:            %s\n", ks);
	fprintf(out,
	        "ABI needed:       %u.%u (built with ABI %u.x; this hlcore "
	        "speaks %d.%d)\n",
	        (unsigned)d->head.abi_major, (unsigned)d->head.abi_minor,
	        (unsigned)d->head.abi_major, HL_ABI_MAJOR, HL_ABI_MINOR);
	fprintf(out, "descriptor size:  %u bytes (this hlcore knows %zu)\n",
	        (unsigned)d->head.size, sizeof(struct hl_plugin_desc));
	fprintf(out, "default priority: %d\n", d->default_priority);
	fprintf(out, "libevent:         %u.%u.%u (this hlcore: %u.%u.%u)\n",
	        EV_MAJOR(d->libevent_version), EV_MINOR(d->libevent_version),
	        EV_PATCH(d->libevent_version),
	        EV_MAJOR(LIBEVENT_VERSION_NUMBER),
	        EV_MINOR(LIBEVENT_VERSION_NUMBER),
	        EV_PATCH(LIBEVENT_VERSION_NUMBER));
	fprintf(out, "OpenSSL:          %s (this hlcore: %s)\n", ssl, core_ssl);
	fprintf(out, "facets:          ");
	if (d->discovery)
		fprintf(out, " discovery (%zu bytes)", d->discovery->size);
	if (d->traversal)
		fprintf(out, " traversal (%zu bytes)", d->traversal->size);
	if (d->transport)
		fprintf(out, " transport (%zu bytes)", d->transport->size);
	if (!d->discovery && !d->traversal && !d->transport)
		fprintf(out, " none");
	fprintf(out, "\n");
	fprintf(out, "validate:         %s\n", d->validate ? "yes" : "no");

	/* One name everywhere: say so when the file is named otherwise. */
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	blen = strlen(d->name);
	if (strncmp(base, d->name, blen) != 0 ||
	    strcmp(base + blen, ".so") != 0)
		fprintf(out,
		        "note: the file should be named %s.so, since hlcore "
		        "loads the plugin `%s` from that file\n",
		        d->name, d->name);
	hl__plugin_close(&p);
	return 0;
}

static int
is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *
hl__plugin_find(const char *plugin_dir, const char *name)
{
	char exe[PATH_MAX], *slash, *path = NULL;
	ssize_t n;

	if (plugin_dir != NULL) {
		if (asprintf(&path, "%s/%s.so", plugin_dir, name) < 0)
			return NULL;
		return path;
	}
	/* The build tree: build/hlcore beside build/plugins/<name>.so. */
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n > 0) {
		exe[n] = '\0';
		slash = strrchr(exe, '/');
		if (slash != NULL) {
			*slash = '\0';
			if (asprintf(&path, "%s/plugins/%s.so", exe, name) < 0)
				return NULL;
			if (is_file(path))
				return path;
			free(path);
			path = NULL;
		}
	}
	if (asprintf(&path, "%s/%s.so", HL_PLUGIN_INSTALL_DIR, name) < 0)
		return NULL;
	return path;
}
