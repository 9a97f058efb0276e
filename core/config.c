/*
 * config.c: the YAML config. The file is read into a tree of struct hl_conf
 * nodes (each with its file:line:column), then the keys the core owns are
 * checked and copied into struct hl__config. Plugins read their own subtree
 * through the accessors at the end of this file.
 *
 * libyaml's event parser builds the tree: it never expands aliases (they
 * are refused here), and the depth and size limits below bound the work a
 * malformed file can cause.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/util.h>
#include <yaml.h>

#include "hl.h"

#define CONF_MAX_SIZE (1024 * 1024) /* bytes of YAML */
#define CONF_MAX_DEPTH 32 /* nested maps and lists */
#define CONF_MAX_PRINTED 100 /* error lines printed, then a note */
#define CONF_NAME_MAX 63 /* plugin and service names */
#define CONF_PRIORITY_MAX 1000

#define DEFAULT_STATE_DIR "./hardline-state"
#define DEFAULT_PROXY_LISTEN "127.0.0.1:7009"

/*
 * A node as config.c builds it: the public part first, so that a
 * struct hl_conf pointer from this file can be turned back into this.
 */
struct node {
	struct hl_conf c;
	int null; /* a YAML null: plain ~, null or nothing */
	struct pos *kpos; /* MAP: where each key stood */
	size_t cap;
};

struct pos {
	int line, col;
};

struct ctx {
	const char *file;
	FILE *errs;
	int nerrors;
	yaml_parser_t parser;
	const char *buf;
	size_t len;
};

static struct node *
to_node(const struct hl_conf *c)
{
	return (struct node *)(uintptr_t)c;
}

/* ---- errors ---- */

static void
verr_at(struct ctx *x, int line, int col, const char *fmt, va_list ap)
{
	x->nerrors++;
	if (x->errs == NULL)
		return;
	if (x->nerrors > CONF_MAX_PRINTED) {
		if (x->nerrors == CONF_MAX_PRINTED + 1)
			fprintf(x->errs,
			        "%s: too many errors, only the first "
			        "%d are shown\n",
			        x->file, CONF_MAX_PRINTED);
		return;
	}
	fprintf(x->errs, "%s:%d:%d: ", x->file, line, col);
	vfprintf(x->errs, fmt, ap);
	fputc('\n', x->errs);
}

static void __attribute__((format(printf, 4, 5)))
err_at(struct ctx *x, int line, int col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr_at(x, line, col, fmt, ap);
	va_end(ap);
}

static void __attribute__((format(printf, 3, 4)))
err(struct ctx *x, const struct hl_conf *n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	verr_at(x, n->line, n->col, fmt, ap);
	va_end(ap);
}

void
hl__conf_verror(FILE *errs, const struct hl_conf *node, const char *fmt,
                va_list ap)
{
	if (errs == NULL)
		return;
	if (node != NULL)
		fprintf(errs,
		        "%s:%d:%d: ", node->file ? node->file : "(config)",
		        node->line, node->col);
	vfprintf(errs, fmt, ap);
	fputc('\n', errs);
}

void
hl__conf_key_pos(const struct hl_conf *map, size_t i, int *line, int *col)
{
	const struct node *n = to_node(map);

	*line = map->line;
	*col = map->col;
	if (map->type == HL_CONF_MAP && i < map->n && n->kpos != NULL) {
		*line = n->kpos[i].line;
		*col = n->kpos[i].col;
	}
}

/*
 * Put s into out between double quotes, for a message: control characters
 * and quotes are escaped, and a long value is cut short with "...".
 */
static const char *
quote(const char *s, char *out, size_t outlen)
{
	size_t o = 0, i;

	out[o++] = '"';
	for (i = 0; s[i] != '\0' && o + 8 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\') {
			out[o++] = '\\';
			out[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o +=
			    (size_t)snprintf(out + o, outlen - o, "\\x%02x", c);
		} else {
			out[o++] = (char)c;
		}
	}
	if (s[i] != '\0') {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o++] = '"';
	out[o] = '\0';
	return out;
}

#define Q(s, buf) quote((s), (buf), sizeof(buf))

/* What a node is, for "must be X, not Y". */
static const char *
describe(const struct hl_conf *n, char *out, size_t outlen)
{
	char q[72];

	switch (n->type) {
	case HL_CONF_MAP:
		return "a map";
	case HL_CONF_LIST:
		return "a list";
	default:
		if (to_node(n)->null)
			return "empty";
		snprintf(out, outlen, "%s", Q(n->str, q));
		return out;
	}
}

/* ---- the tree ---- */

static void
node_free(struct node *n)
{
	if (n == NULL)
		return;
	free(n->c.str);
	for (size_t i = 0; i < n->c.n; i++) {
		if (n->c.keys != NULL)
			free(n->c.keys[i]);
		node_free(to_node(n->c.items[i]));
	}
	free(n->c.keys);
	free(n->c.items);
	free(n->kpos);
	free(n);
}

static struct node *
node_new(struct ctx *x, int type, yaml_mark_t mark)
{
	struct node *n = calloc(1, sizeof *n);

	if (n == NULL)
		return NULL;
	n->c.type = type;
	n->c.file = x->file;
	n->c.line = (int)mark.line + 1;
	n->c.col = (int)mark.column + 1;
	return n;
}

/* Room for one more item (and key, in a map). */
static int
node_grow(struct node *n)
{
	size_t cap;
	void *p;

	if (n->c.n < n->cap)
		return 0;
	cap = n->cap ? n->cap * 2 : 4;
	p = realloc(n->c.items, cap * sizeof *n->c.items);
	if (p == NULL)
		return -1;
	n->c.items = p;
	if (n->c.type == HL_CONF_MAP) {
		p = realloc(n->c.keys, cap * sizeof *n->c.keys);
		if (p == NULL)
			return -1;
		n->c.keys = p;
		p = realloc(n->kpos, cap * sizeof *n->kpos);
		if (p == NULL)
			return -1;
		n->kpos = p;
	}
	n->cap = cap;
	return 0;
}

/* The byte at a mark (whose index counts characters, not bytes), or -1. */
static int
char_at(const struct ctx *x, yaml_mark_t m)
{
	size_t i = 0, line = 0, col = 0;

	while (i < x->len && line < m.line)
		if (x->buf[i++] == '\n')
			line++;
	for (; i < x->len && x->buf[i] != '\n'; i++) {
		if (((unsigned char)x->buf[i] & 0xc0) == 0x80)
			continue;
		if (col++ == m.column)
			return (unsigned char)x->buf[i];
	}
	return -1;
}

static void
syntax_error(struct ctx *x)
{
	yaml_parser_t *p = &x->parser;
	int line = (int)p->problem_mark.line + 1;
	int col = (int)p->problem_mark.column + 1;
	const char *problem = p->problem ? p->problem : "malformed YAML";
	const char *hint = "";

	if (p->error == YAML_MEMORY_ERROR) {
		err_at(x, line, col, "out of memory while reading the YAML");
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		/* The reader gives a byte offset, not a mark. */
		size_t off =
		    p->problem_offset < x->len ? p->problem_offset : x->len;
		line = 1;
		col = 1;
		for (size_t i = 0; i < off; i++) {
			if (x->buf[i] == '\n') {
				line++;
				col = 1;
			} else if (((unsigned char)x->buf[i] & 0xc0) != 0x80) {
				col++;
			}
		}
		if (p->problem_value != -1)
			err_at(x, line, col,
			       "%s (byte 0x%02x): the config must "
			       "be UTF-8 text",
			       problem, p->problem_value & 0xff);
		else
			err_at(x, line, col, "%s", problem);
		return;
	}
	if (char_at(x, p->problem_mark) == '\t')
		hint = "; YAML indents with spaces, not tabs";
	if (p->context != NULL)
		err_at(x, line, col, "%s (%s at line %d, column %d)%s", problem,
		       p->context, (int)p->context_mark.line + 1,
		       (int)p->context_mark.column + 1, hint);
	else
		err_at(x, line, col, "%s%s", problem, hint);
}

/* The next event; on a syntax error, report it and return -1. */
static int
next_event(struct ctx *x, yaml_event_t *ev)
{
	if (yaml_parser_parse(&x->parser, ev))
		return 0;
	syntax_error(x);
	return -1;
}

/* Skip the next event, one of the stream's or the document's marks: its
 * type, and where it starts into *at unless NULL; on a syntax error,
 * report it and return -1. */
static int
skip_event(struct ctx *x, yaml_mark_t *at)
{
	yaml_event_t ev;
	int type;

	if (next_event(x, &ev) < 0)
		return -1;
	type = (int)ev.type;
	if (at != NULL)
		*at = ev.start_mark;
	yaml_event_delete(&ev);
	return type;
}

static int
is_null_scalar(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
	    !ev->data.scalar.plain_implicit)
		return 0;
	return len == 0 || (len == 1 && v[0] == '~') ||
	       (len == 4 && (strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
	                     strcmp(v, "NULL") == 0));
}

static int
key_cmp(const void *a, const void *b, void *arg)
{
	const struct node *m = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(m->c.keys[i], m->c.keys[j]);

	if (c != 0)
		return c;
	return i < j ? -1 : i > j;
}

/*
 * Report every key of m that repeats an earlier one, and drop it with its
 * value, so that conf_get finds one value a key. Sorting keeps this
 * O(n log n) for a map of many keys.
 */
static int
map_dedup(struct ctx *x, struct node *m)
{
	size_t n = m->c.n, *idx, *first, o;

	if (n < 2)
		return 0;
	idx = malloc(n * sizeof *idx);
	first = malloc(n * sizeof *first);
	if (idx == NULL || first == NULL) {
		free(idx);
		free(first);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		idx[i] = i;
		first[i] = i;
	}
	qsort_r(idx, n, sizeof *idx, key_cmp, m);
	for (size_t i = 1; i < n; i++)
		if (strcmp(m->c.keys[idx[i]], m->c.keys[idx[i - 1]]) == 0)
			first[idx[i]] = first[idx[i - 1]];
	free(idx);
	o = 0;
	for (size_t i = 0; i < n; i++) {
		if (first[i] != i) {
			char q[72];
			struct pos *p = &m->kpos[first[i]];
			err_at(
			    x, m->kpos[i].line, m->kpos[i].col,
			    "duplicate key %s (first at line %d, column %d); "
			    "a key may appear once in a map",
			    Q(m->c.keys[i], q), p->line, p->col);
			free(m->c.keys[i]);
			node_free(to_node(m->c.items[i]));
			continue;
		}
		m->c.keys[o] = m->c.keys[i];
		m->c.items[o] = m->c.items[i];
		m->kpos[o] = m->kpos[i];
		o++;
	}
	m->c.n = o;
	free(first);
	return 0;
}

static struct node *parse_node(struct ctx *x, yaml_event_t *ev, int depth);

/* The items of a list or the entries of a map, up to its end event. */
static int
parse_children(struct ctx *x, struct node *n, int depth)
{
	yaml_event_t ev;
	int is_map = n->c.type == HL_CONF_MAP;
	yaml_event_type_t end =
	    is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;

	for (;;) {
		struct node *key = NULL, *val;

		if (next_event(x, &ev) < 0)
			return -1;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			break;
		}
		if (is_map) {
			/* A key: parsed as a node first, then checked. */
			key = parse_node(x, &ev, depth + 1);
			if (key == NULL)
				return -1;
			if (key->c.type != HL_CONF_SCALAR) {
				err(x, &key->c,
				    "a key must be a plain word, "
				    "not %s",
				    key->c.type == HL_CONF_MAP ? "a map"
				                               : "a list");
			}
			if (next_event(x, &ev) < 0) {
				node_free(key);
				return -1;
			}
		}
		val = parse_node(x, &ev, depth + 1);
		if (val == NULL) {
			node_free(key);
			return -1;
		}
		if (is_map && key->c.type != HL_CONF_SCALAR) {
			node_free(key);
			node_free(val);
			continue;
		}
		if (node_grow(n) < 0) {
			node_free(key);
			node_free(val);
			err(x, &n->c, "out of memory");
			return -1;
		}
		if (is_map) {
			n->c.keys[n->c.n] = key->c.str;
			n->kpos[n->c.n].line = key->c.line;
			n->kpos[n->c.n].col = key->c.col;
			key->c.str = NULL;
			node_free(key);
		}
		n->c.items[n->c.n++] = &val->c;
	}
	if (is_map && map_dedup(x, n) < 0) {
		err(x, &n->c, "out of memory");
		return -1;
	}
	return 0;
}

/*
 * Build the node that starts with *ev (which this function deletes).
 * Returns NULL after a fatal error (a syntax error, too deep a nesting,
 * out of memory); other errors are reported and the tree goes on.
 */
static struct node *
parse_node(struct ctx *x, yaml_event_t *ev, int depth)
{
	struct node *n = NULL;
	yaml_char_t *anchor = NULL;

	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		n = node_new(x, HL_CONF_SCALAR, ev->start_mark);
		if (n == NULL)
			break;
		n->c.str = malloc(ev->data.scalar.length + 1);
		if (n->c.str == NULL) {
			free(n);
			n = NULL;
			break;
		}
		memcpy(n->c.str, ev->data.scalar.value, ev->data.scalar.length);
		n->c.str[ev->data.scalar.length] = '\0';
		n->null = is_null_scalar(ev);
		if (strlen(n->c.str) != ev->data.scalar.length)
			err(x, &n->c,
			    "a value contains a NUL character "
			    "(\\0), which a config cannot use");
		break;
	case YAML_ALIAS_EVENT:
		n = node_new(x, HL_CONF_SCALAR, ev->start_mark);
		if (n == NULL)
			break;
		n->c.str = strdup("");
		n->null = 1;
		if (n->c.str == NULL) {
			free(n);
			n = NULL;
			break;
		}
		err(x, &n->c,
		    "aliases (*name) are not supported; write the "
		    "value out in full");
		break;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (depth >= CONF_MAX_DEPTH) {
			err_at(x, (int)ev->start_mark.line + 1,
			       (int)ev->start_mark.column + 1,
			       "maps and lists nested more than %d deep; the "
			       "config needs far fewer levels",
			       CONF_MAX_DEPTH);
			yaml_event_delete(ev);
			return NULL;
		}
		if (ev->type == YAML_SEQUENCE_START_EVENT) {
			anchor = ev->data.sequence_start.anchor;
			n = node_new(x, HL_CONF_LIST, ev->start_mark);
		} else {
			anchor = ev->data.mapping_start.anchor;
			n = node_new(x, HL_CONF_MAP, ev->start_mark);
		}
		break;
	default:
		/* Not reachable with a well-behaved parser. */
		err_at(x, (int)ev->start_mark.line + 1,
		       (int)ev->start_mark.column + 1, "unexpected YAML event");
		yaml_event_delete(ev);
		return NULL;
	}
	if (n == NULL) {
		err_at(x, (int)ev->start_mark.line + 1,
		       (int)ev->start_mark.column + 1, "out of memory");
		yaml_event_delete(ev);
		return NULL;
	}
	if (anchor != NULL)
		err(x, &n->c,
		    "anchors (&%.40s) are not supported; write the "
		    "value out in full",
		    (const char *)anchor);
	yaml_event_delete(ev);
	if ((n->c.type == HL_CONF_MAP || n->c.type == HL_CONF_LIST) &&
	    parse_children(x, n, depth) < 0) {
		node_free(n);
		return NULL;
	}
	return n;
}

/*
 * The root node of the one document in buf, or NULL (and *empty set when
 * the file holds nothing).
 */
static struct node *
parse_tree(struct ctx *x, int *empty)
{
	yaml_event_t ev;
	yaml_mark_t at;
	struct node *root = NULL;
	int type;

	*empty = 0;
	if (!yaml_parser_initialize(&x->parser)) {
		err_at(x, 1, 1, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&x->parser, (const unsigned char *)x->buf,
	                             x->len);
	if (skip_event(x, NULL) < 0) /* stream start */
		goto done;
	type =
	    skip_event(x, NULL); /* document start, or an empty stream's end */
	if (type < 0)
		goto done;
	if (type == YAML_STREAM_END_EVENT) {
		*empty = 1;
		goto done;
	}
	if (next_event(x, &ev) < 0)
		goto done;
	root = parse_node(x, &ev, 0);
	if (root == NULL)
		goto done;
	if (skip_event(x, NULL) < 0) /* document end */
		goto fail;
	type = skip_event(x, &at); /* stream end, or a second document */
	if (type < 0)
		goto fail;
	if (type == YAML_DOCUMENT_START_EVENT)
		err_at(x, (int)at.line + 1, (int)at.column + 1,
		       "a second YAML document (after \"---\"); the config is "
		       "one document");
	goto done;
fail:
	node_free(root);
	root = NULL;
done:
	yaml_parser_delete(&x->parser);
	return root;
}

/* ---- checks of the core's keys ---- */

static const char *const top_keys[] = {
    "state_dir",      "log",     "proxy",    "plugin_dir",
    "plugins_strict", "plugins", "services", "peers",
    "forwards",       "limits",  NULL};
static const char *const log_keys[] = {"level", NULL};
static const char *const proxy_keys[] = {"listen", "socks", "socks_listen",
                                         NULL};
static const char *const forward_keys[] = {"listen", "to", "title", NULL};
static const char *const limits_keys[] = {
    "idle_timeout",        "tunnels", "tunnels_per_peer",
    "tunnels_per_service", "routes",  NULL};
static const char *const service_keys[] = {
    "target", "title", "password", "cert", "lan_announce_password",
    "punch",  NULL};

static int
in_list(const char *s, const char *const *list)
{
	for (; *list != NULL; list++)
		if (strcmp(s, *list) == 0)
			return 1;
	return 0;
}

/* Report the i-th key of map m, which is not in allowed; where names m. */
static void
unknown_key(struct ctx *x, const struct node *m, size_t i, const char *where,
            const char *const *allowed)
{
	char list[256], q[72];
	size_t o = 0;

	list[0] = '\0';
	for (const char *const *a = allowed; *a != NULL; a++) {
		int w = snprintf(list + o, sizeof list - o, "%s%s",
		                 a == allowed ? "" : ", ", *a);
		if (w < 0 || (size_t)w >= sizeof list - o)
			break;
		o += (size_t)w;
	}
	err_at(x, m->kpos[i].line, m->kpos[i].col,
	       "unknown key %s%s%s (allowed here: %s)", Q(m->c.keys[i], q),
	       where ? " in " : "", where ? where : "", list);
}

/* Report every key of map m not in allowed. */
static void
check_keys(struct ctx *x, const struct hl_conf *m, const char *where,
           const char *const *allowed)
{
	for (size_t i = 0; i < m->n; i++)
		if (!in_list(m->keys[i], allowed))
			unknown_key(x, to_node(m), i, where, allowed);
}

/*
 * Check that n is a map; a YAML null (`key:` with nothing) becomes an
 * empty map. Returns 1 when n is a map, else reports and returns 0.
 */
static int
want_map(struct ctx *x, const struct hl_conf *c, const char *what,
         const char *example)
{
	struct node *n = to_node(c);
	char d[80];

	if (n->c.type == HL_CONF_MAP)
		return 1;
	if (n->c.type == HL_CONF_SCALAR && n->null) {
		free(n->c.str);
		n->c.str = NULL;
		n->c.type = HL_CONF_MAP;
		n->null = 0;
		return 1;
	}
	err(x, c, "%s must be a map%s%s, not %s", what, example ? " like " : "",
	    example ? example : "", describe(c, d, sizeof d));
	return 0;
}

/* A section that is a map of the keys in allowed: want_map, then every
 * other key reported (as check_keys does, "in where"). Returns 1 when c
 * is a map. */
static int
want_section(struct ctx *x, const struct hl_conf *c, const char *what,
             const char *example, const char *where, const char *const *allowed)
{
	if (!want_map(x, c, what, example))
		return 0;
	check_keys(x, c, where, allowed);
	return 1;
}

/* The text of a scalar with a value, or NULL after reporting. */
static const char *
want_str(struct ctx *x, const struct hl_conf *c, const char *what,
         const char *expect)
{
	char d[80];

	if (c->type == HL_CONF_SCALAR && !to_node(c)->null)
		return c->str;
	err(x, c, "%s must be %s, not %s", what, expect,
	    describe(c, d, sizeof d));
	return NULL;
}

/* The text under key in map m (want_str's): NULL when key is absent or
 * its value is not text (reported). *node gets the value, or NULL. */
static const char *
key_str(struct ctx *x, const struct hl_conf *m, const char *key,
        const char *what, const char *expect, const struct hl_conf **node)
{
	*node = hl__conf_get(m, key);
	return *node == NULL ? NULL : want_str(x, *node, what, expect);
}

/* A copy of a scalar's text, or NULL after reporting. */
static char *
dup_str(struct ctx *x, const struct hl_conf *c, const char *what,
        const char *expect)
{
	const char *s = want_str(x, c, what, expect);
	char *d;

	if (s == NULL)
		return NULL;
	d = strdup(s);
	if (d == NULL)
		err(x, c, "out of memory");
	return d;
}

/* A boolean into *out; returns 0, or -1 after reporting. */
static int
want_bool(struct ctx *x, const struct hl_conf *c, const char *what, int *out)
{
	static const char *const yes[] = {"true", "yes", "on"};
	static const char *const no[] = {"false", "no", "off"};
	const char *s = want_str(x, c, what, "true or false");

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	{
		char q[72];
		err(x, c,
		    "%s must be true or false (yes/no and on/off work "
		    "too), not %s",
		    what, Q(s, q));
	}
	return -1;
}

/* A "host:port" address; returns 0, or -1 after reporting. */
static int
want_addr(struct ctx *x, const struct hl_conf *c, const char *what,
          const char *example, const char **out)
{
	char host[HL_ADDR_MAX], q[72];
	uint16_t port;
	const char *s = want_str(x, c, what, "a \"host:port\" address");

	if (s == NULL)
		return -1;
	if (hl__addr_split(s, host, sizeof host, &port) < 0) {
		err(x, c,
		    "%s is %s, not a \"host:port\" address (e.g. %s; "
		    "an IPv6 address goes in brackets, as in \"[::1]:7009\"; "
		    "the port is 1 to 65535)",
		    what, Q(s, q), example);
		return -1;
	}
	*out = s;
	return 0;
}

static int
name_ok(const char *s, int upper_and_dot)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-')
			continue;
		if (upper_and_dot &&
		    ((c >= 'A' && c <= 'Z') || c == '_' || c == '.'))
			continue;
		return 0;
	}
	return i >= 1 && i <= CONF_NAME_MAX;
}

static void
check_log(struct ctx *x, struct hl__config *cfg, const struct hl_conf *m)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	const struct hl_conf *lv;
	const char *s;
	char q[72];

	if (!want_section(x, m, "\"log\"", "{ level: info }", "log", log_keys))
		return;
	s = key_str(x, m, "level", "the log level",
	            "one of error, warn, info, debug", &lv);
	if (s == NULL)
		return;
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			cfg->log_level = HL_LOG_ERROR + i;
			return;
		}
	}
	err(x, lv, "log level %s is not one of error, warn, info, debug",
	    Q(s, q));
}

/* A numeric "ip:port" to listen on; returns 0, or -1 after reporting. */
static int
want_listen(struct ctx *x, const struct hl_conf *c, const char *what,
            const char *example, const char **out)
{
	struct sockaddr_storage ss;
	int sslen = sizeof ss;
	char q[72];

	if (want_addr(x, c, what, example, out) < 0)
		return -1;
	if (evutil_parse_sockaddr_port(*out, (struct sockaddr *)&ss, &sslen) !=
	    0) {
		err(x, c,
		    "%s is %s: a listening address must be an IP address "
		    "and a port, like %s (\"[::1]:2222\" for IPv6), not a "
		    "host name",
		    what, Q(*out, q), example);
		return -1;
	}
	return 0;
}

static void
check_proxy(struct ctx *x, struct hl__config *cfg, const struct hl_conf *m)
{
	const struct hl_conf *l;
	const char *s;

	if (!want_section(x, m, "\"proxy\"", "{ listen: \"127.0.0.1:7009\" }",
	                  "proxy", proxy_keys))
		return;
	if ((l = hl__conf_get(m, "socks")) != NULL)
		want_bool(x, l, "proxy socks", &cfg->proxy_socks);
	if ((l = hl__conf_get(m, "socks_listen")) != NULL &&
	    want_listen(x, l, "proxy socks_listen", "\"127.0.0.1:1080\"", &s) ==
	        0 &&
	    (cfg->socks_listen = strdup(s)) == NULL)
		err(x, l, "out of memory");
	s = key_str(x, m, "listen", "proxy listen",
	            "a \"host:port\" address or off", &l);
	if (s == NULL)
		return;
	free(cfg->proxy_listen);
	cfg->proxy_listen = NULL;
	if (strcasecmp(s, "off") == 0) {
		if (cfg->proxy_socks)
			err(x, l,
			    "proxy socks: true needs the proxy's listen "
			    "address; with listen: off, give SOCKS a port of "
			    "its own with socks_listen");
		return;
	}
	if (want_addr(x, l, "proxy listen",
	              "\"127.0.0.1:7009\", or \"off\" for no proxy", &s) < 0)
		return;
	cfg->proxy_listen = strdup(s);
	if (cfg->proxy_listen == NULL)
		err(x, l, "out of memory");
}

/* Where an address given elsewhere in the config also listens. */
static const char *
listen_clash(const struct hl__config *cfg, const char *addr, size_t upto)
{
	if (cfg->proxy_listen != NULL && strcmp(cfg->proxy_listen, addr) == 0)
		return "the proxy's listen address";
	if (cfg->socks_listen != NULL && strcmp(cfg->socks_listen, addr) == 0)
		return "the proxy's socks_listen address";
	for (size_t i = 0; i < upto; i++)
		if (cfg->forwards[i].listen != NULL &&
		    strcmp(cfg->forwards[i].listen, addr) == 0)
			return "another forward's listen address";
	return NULL;
}

static void
check_forward(struct ctx *x, struct hl__config *cfg, const struct hl_conf *m,
              size_t idx)
{
	struct hl__forward_conf *fc = &cfg->forwards[cfg->nforwards];
	const struct hl_conf *l, *to, *title;
	char what[64], q[72];
	const char *s, *clash;

	snprintf(what, sizeof what, "forward %zu", idx + 1);
	if (!want_section(x, m, what,
	                  "{ listen: \"127.0.0.1:2222\", to: "
	                  "\"<password>-<keyhash>\" }",
	                  what, forward_keys))
		return;
	fc->node = m;
	cfg->nforwards++;
	l = hl__conf_get(m, "listen");
	to = hl__conf_get(m, "to");
	title = hl__conf_get(m, "title");
	if (l == NULL)
		err(x, m,
		    "%s has no listen: add listen: \"127.0.0.1:PORT\", the "
		    "local port that reaches the service",
		    what);
	else if (want_listen(x, l, "its listen", "\"127.0.0.1:2222\"", &s) ==
	         0) {
		fc->listen_node = l;
		if ((clash = listen_clash(cfg, s, cfg->nforwards - 1)) != NULL)
			err(x, l,
			    "%s listens on %s, which is already %s: each "
			    "forward needs a port of its own",
			    what, Q(s, q), clash);
		else if ((fc->listen = strdup(s)) == NULL)
			err(x, l, "out of memory");
	}
	if (to == NULL)
		err(x, m,
		    "%s has no to: add to: \"<password>-<keyhash>\", the "
		    "name of the service from its URL",
		    what);
	else if ((s = want_str(x, to, "its to", "\"<password>-<keyhash>\"")) !=
	             NULL &&
	         hl__label_parse(s, fc->password, fc->keyhash) != 0)
		/* The value may hold a password: not repeated. */
		err(x, to,
		    "the to of %s is not a Hardline service name: write "
		    "\"<password>-<keyhash>\" as in the service's URL "
		    "http://<password>-<keyhash>.localhost:7009/ (the keyhash "
		    "is 40 hex characters, the password a-z and 2-7, maybe "
		    "empty)",
		    what);
	if (title != NULL)
		fc->title = dup_str(x, title, "its title", "some text");
}

static void
check_forwards(struct ctx *x, struct hl__config *cfg, const struct hl_conf *l)
{
	char d[80];

	if (l->type == HL_CONF_SCALAR && to_node(l)->null)
		return;
	if (l->type != HL_CONF_LIST) {
		err(x, l,
		    "\"forwards\" must be a list like - { listen: "
		    "\"127.0.0.1:2222\", to: \"<password>-<keyhash>\" }, "
		    "not %s",
		    describe(l, d, sizeof d));
		return;
	}
	if (l->n == 0)
		return;
	cfg->forwards = calloc(l->n, sizeof *cfg->forwards);
	if (cfg->forwards == NULL) {
		err(x, l, "out of memory");
		return;
	}
	for (size_t i = 0; i < l->n; i++)
		check_forward(x, cfg, l->items[i], i);
}

/*
 * A whole number from min to max into *out, or `auto` (*out = -1) when
 * allow_auto. Returns 0, or -1 after reporting.
 */
static int
want_count(struct ctx *x, const struct hl_conf *c, const char *what, long min,
           long max, int allow_auto, long *out)
{
	const char *s = want_str(x, c, what, "a whole number");
	char q[72], *end;
	long v;

	if (s == NULL)
		return -1;
	if (allow_auto && strcasecmp(s, "auto") == 0) {
		*out = -1;
		return 0;
	}
	errno = 0;
	v = strtol(s, &end, 10);
	if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0 || v < min ||
	    v > max) {
		err(x, c, "%s is %s, not a whole number from %ld to %ld%s",
		    what, Q(s, q), min, max,
		    allow_auto ? " (or auto: sized from the descriptor limit)"
		               : "");
		return -1;
	}
	*out = v;
	return 0;
}

static void
check_limits(struct ctx *x, struct hl__config *cfg, const struct hl_conf *m)
{
	static const struct {
		const char *key;
		long min, max;
		int allow_auto;
		size_t off;
	} items[] = {
	    {"idle_timeout", 0, 30L * 86400, 0,
	     offsetof(struct hl__limits_conf, idle_timeout)},
	    {"tunnels", 1, 1L << 24, 1,
	     offsetof(struct hl__limits_conf, tunnels)},
	    {"tunnels_per_peer", 1, 1L << 24, 1,
	     offsetof(struct hl__limits_conf, per_peer)},
	    {"tunnels_per_service", 1, 1L << 24, 1,
	     offsetof(struct hl__limits_conf, per_service)},
	    {"routes", 1, 1L << 20, 1,
	     offsetof(struct hl__limits_conf, routes)},
	};

	if (!want_section(x, m, "\"limits\"", "{ idle_timeout: 10800 }",
	                  "limits", limits_keys))
		return;
	for (size_t i = 0; i < sizeof items / sizeof items[0]; i++) {
		const struct hl_conf *v = hl__conf_get(m, items[i].key);
		char what[64];

		if (v == NULL)
			continue;
		snprintf(what, sizeof what, "limits %s", items[i].key);
		want_count(x, v, what, items[i].min, items[i].max,
		           items[i].allow_auto,
		           (long *)((char *)&cfg->limits + items[i].off));
	}
}

static int
parse_priority(const char *s, int *out)
{
	long v = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 6)
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (i == 0 || v > CONF_PRIORITY_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

/*
 * One entry of a section that maps names to entries: the name, its value
 * and where the name stood. room holds the section's entries, as many as
 * keys in the section; cfg's count of them says how many are taken.
 */
typedef void check_entry_fn(struct ctx *x, struct hl__config *cfg, void *room,
                            const char *name, const struct hl_conf *v,
                            struct pos kp);

/* A section that maps names to entries (plugins, services, peers): check
 * that it is a map, make room for one entry of `size` bytes per key, and
 * check each entry into it with check_one. Returns the room (calloc'd), or
 * NULL when there is nothing to read (not a map, empty, or out of memory,
 * each reported). */
static void *
check_named_entries(struct ctx *x, struct hl__config *cfg,
                    const struct hl_conf *m, const char *what,
                    const char *example, size_t size, check_entry_fn *check_one)
{
	const struct node *mn = to_node(m);
	void *room;

	if (!want_map(x, m, what, example) || m->n == 0)
		return NULL;
	room = calloc(m->n, size);
	if (room == NULL) {
		err(x, m, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < m->n; i++)
		check_one(x, cfg, room, m->keys[i], m->items[i], mn->kpos[i]);
	return room;
}

/* The entry of a plugin or a service (kind): its name valid (a service's
 * may have uppercase letters, '_' and '.'; else the error says what a
 * name may hold) and its value a map, as example shows. 1 when both are,
 * else 0 after the error. */
static int
want_entry_map(struct ctx *x, const char *kind, const char *name,
               const struct hl_conf *v, struct pos kp, const char *example)
{
	int service = strcmp(kind, "service") == 0;
	char q[72], what[96], rule[128];

	if (!name_ok(name, service)) {
		if (service)
			snprintf(
			    rule, sizeof rule,
			    "use 1 to %d letters, digits, \"-\", \"_\" and "
			    "\".\"",
			    CONF_NAME_MAX);
		else
			snprintf(
			    rule, sizeof rule,
			    "a plugin's name is 1 to %d lowercase letters, "
			    "digits and \"-\" (the name of its .so file)",
			    CONF_NAME_MAX);
		err_at(x, kp.line, kp.col, "%s name %s is not valid: %s", kind,
		       Q(name, q), rule);
		return 0;
	}
	snprintf(what, sizeof what, "%s \"%s\"", kind, name);
	return want_map(x, v, what, example);
}

static void
check_plugin(struct ctx *x, struct hl__config *cfg, void *room,
             const char *name, const struct hl_conf *v, struct pos kp)
{
	const struct hl_conf *pr;
	struct hl__plugin_conf *pc;
	char q[72], what[96];
	const char *s;

	if (!want_entry_map(x, "plugin", name, v, kp, "{ priority: 10 }"))
		return;
	pc = (struct hl__plugin_conf *)room + cfg->nplugins++;
	pc->node = v;
	pc->name = strdup(name);
	if (pc->name == NULL)
		err(x, v, "out of memory");
	snprintf(what, sizeof what, "the priority of plugin \"%s\"", name);
	s = key_str(x, v, "priority", what, "a number from 0 to 1000", &pr);
	if (s == NULL)
		return;
	if (parse_priority(s, &pc->priority) < 0) {
		err(x, pr,
		    "%s must be a whole number from 0 to %d (lower is tried "
		    "first), not %s",
		    what, CONF_PRIORITY_MAX, Q(s, q));
		return;
	}
	pc->has_priority = 1;
}

/* Why a fixed password is refused, for the message (the value itself is
 * not repeated: it is a secret). */
static void
password_problem(const char *s, char *out, size_t outlen)
{
	size_t len = strlen(s);

	if (len == 0) {
		snprintf(out, outlen, "it is empty");
		return;
	}
	if (len > HL_PASSWORD_MAX) {
		snprintf(out, outlen, "it has %zu characters", len);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7'))
			continue;
		if (c >= 'A' && c <= 'Z')
			snprintf(out, outlen, "it has uppercase letters");
		else if (c >= '0' && c <= '9')
			snprintf(out, outlen, "it has the digit %c", c);
		else if (c > ' ' && c < 0x7f)
			snprintf(out, outlen, "it has the character '%c'", c);
		else
			snprintf(out, outlen,
			         "it has a space or a character "
			         "outside a-z and 2-7");
		return;
	}
	out[0] = '\0';
}

static void
service_password(struct ctx *x, struct hl__service_conf *sc,
                 const struct hl_conf *v, const char *what)
{
	const char *s = want_str(x, v, what, "auto, none or a fixed password");
	char why[64];

	if (s == NULL)
		return;
	if (strcasecmp(s, "auto") == 0) {
		sc->password_mode = HL_PW_AUTO;
		return;
	}
	if (strcasecmp(s, "none") == 0) {
		sc->password_mode = HL_PW_NONE;
		return;
	}
	password_problem(s, why, sizeof why);
	if (why[0] != '\0') {
		err(x, v,
		    "%s is not valid: %s; use auto (a random one, the "
		    "default), none, or a fixed password of 1 to %d "
		    "characters from a-z and 2-7",
		    what, why, HL_PASSWORD_MAX);
		return;
	}
	sc->password_mode = HL_PW_FIXED;
	if ((sc->password = strdup(s)) == NULL)
		err(x, v, "out of memory");
}

/*
 * punch: the command this node runs when a client punches a UDP path to
 * the service (`hlcore -c FILE punch LABEL -- CMD`, transport-udp): run
 * with /bin/sh -c, so one line or a script; absent, punching is refused.
 */
#define HL_PUNCH_CMD_MAX 4096
static void
service_punch(struct ctx *x, struct hl__service_conf *sc,
              const struct hl_conf *v, const char *what)
{
	const char *s = want_str(x, v, what,
	                         "a shell command (run with /bin/sh -c when a "
	                         "client punches a path to this service)");
	size_t n, i;

	if (s == NULL)
		return;
	n = strlen(s);
	for (i = 0; i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n'); i++)
		;
	if (i == n) {
		err(x, v,
		    "%s is empty: give the command to run (or leave "
		    "punch out: punching is then refused)",
		    what);
		return;
	}
	if (n > HL_PUNCH_CMD_MAX) {
		err(x, v, "%s is %zu bytes long, more than %d", what, n,
		    HL_PUNCH_CMD_MAX);
		return;
	}
	if ((sc->punch = strdup(s)) == NULL)
		err(x, v, "out of memory");
}

static void
check_service(struct ctx *x, struct hl__config *cfg, void *room,
              const char *name, const struct hl_conf *m, struct pos kp)
{
	const struct node *mn = to_node(m);
	struct hl__service_conf *sc;
	char what[112];
	const char *s;

	if (!want_entry_map(x, "service", name, m, kp,
	                    "{ target: \"127.0.0.1:8080\" }"))
		return;
	sc = (struct hl__service_conf *)room + cfg->nservices++;
	sc->node = m;
	sc->password_mode = HL_PW_AUTO;
	if ((sc->name = strdup(name)) == NULL)
		err(x, m, "out of memory");
	for (size_t i = 0; i < m->n; i++) {
		const char *k = m->keys[i];
		const struct hl_conf *v = m->items[i];

		snprintf(what, sizeof what, "the %s of service \"%s\"", k,
		         name);
		if (strcmp(k, "target") == 0) {
			if (want_addr(x, v, what, "\"127.0.0.1:8080\"", &s) ==
			        0 &&
			    (sc->target = strdup(s)) == NULL)
				err(x, v, "out of memory");
		} else if (strcmp(k, "title") == 0) {
			sc->title = dup_str(x, v, what, "some text");
		} else if (strcmp(k, "password") == 0) {
			service_password(x, sc, v, what);
		} else if (strcmp(k, "cert") == 0) {
			sc->cert =
			    dup_str(x, v, what, "the path of a certificate");
		} else if (strcmp(k, "lan_announce_password") == 0) {
			want_bool(x, v, what, &sc->lan_announce_password);
		} else if (strcmp(k, "punch") == 0) {
			service_punch(x, sc, v, what);
		} else {
			snprintf(what, sizeof what, "service \"%s\"", name);
			unknown_key(x, mn, i, what, service_keys);
		}
	}
	if (hl__conf_get(m, "target") == NULL)
		err_at(x, kp.line, kp.col,
		       "service \"%s\" has no target: add "
		       "target: \"host:port\" of the app it serves (e.g. "
		       "\"127.0.0.1:8080\")",
		       name);
	if (hl__conf_get(m, "title") == NULL &&
	    (sc->title = strdup(name)) == NULL)
		err(x, m, "out of memory");
}

static int
peer_add_addr(struct ctx *x, struct hl__peer_conf *pc, const struct hl_conf *a)
{
	char what[80];
	const char *s;

	snprintf(what, sizeof what, "the address of peer %.12s...",
	         pc->keyhash);
	/* A typed endpoint ("quic://198.51.100.7:7008") names the one
	 * transport that dials it; a bare host:port is for every transport
	 * that dials host:port. */
	s = a->type == HL_CONF_SCALAR ? hl__conf_str(a) : NULL;
	if (s != NULL && strstr(s, "://") != NULL) {
		char q[72];
		if (hl__endpoint_check(s, strlen(s)) != 0) {
			err(x, a,
			    "%s is %s, not an address: \"host:port\" (for "
			    "every transport) or \"quic://host:port\" / "
			    "\"tls://host:port\" (for one; the port 1 to "
			    "65535, an IPv6 address in brackets)",
			    what, Q(s, q));
			return -1;
		}
	} else if (want_addr(x, a, what, "\"198.51.100.7:7008\"", &s) < 0)
		return -1;
	if ((pc->addrs[pc->naddrs] = strdup(s)) == NULL) {
		err(x, a, "out of memory");
		return -1;
	}
	pc->naddrs++;
	return 0;
}

static int
peer_cmp(const void *a, const void *b)
{
	const struct hl__peer_conf *p = *(struct hl__peer_conf *const *)a;
	const struct hl__peer_conf *q = *(struct hl__peer_conf *const *)b;
	int c = strcmp(p->keyhash, q->keyhash);

	if (c != 0)
		return c;
	return p < q ? -1 : p > q;
}

/* Keys differing only in case name the same peer: report the repeats. */
static void
check_peer_repeats(struct ctx *x, struct hl__config *cfg)
{
	struct hl__peer_conf **v;

	if (cfg->npeers < 2)
		return;
	v = malloc(cfg->npeers * sizeof *v);
	if (v == NULL)
		return;
	for (size_t i = 0; i < cfg->npeers; i++)
		v[i] = &cfg->peers[i];
	qsort(v, cfg->npeers, sizeof *v, peer_cmp);
	for (size_t i = 1; i < cfg->npeers; i++) {
		const struct hl_conf *first = v[i - 1]->node;
		if (strcmp(v[i]->keyhash, v[i - 1]->keyhash) != 0)
			continue;
		err(x, v[i]->node,
		    "peer %s is listed twice (also at line %d, "
		    "column %d); put all its addresses in one list",
		    v[i]->keyhash, first->line, first->col);
	}
	free(v);
}

static void
check_peer(struct ctx *x, struct hl__config *cfg, void *room, const char *name,
           const struct hl_conf *v, struct pos kp)
{
	struct hl__peer_conf *pc = (struct hl__peer_conf *)room + cfg->npeers;
	char q[72], d[80];

	if (hl_keyhash_lower(name, strlen(name), pc->keyhash) < 0) {
		err_at(x, kp.line, kp.col,
		       "peer %s is not a keyhash: a keyhash is 40 hex "
		       "characters (0-9, a-f), the part after the last \"-\" "
		       "in a Hardline URL's name; this has %zu characters",
		       Q(name, q), strlen(name));
		memset(pc->keyhash, 0, sizeof pc->keyhash);
		return;
	}
	pc->node = v;
	cfg->npeers++;
	if (v->type == HL_CONF_MAP ||
	    (v->type == HL_CONF_SCALAR && to_node(v)->null) ||
	    (v->type == HL_CONF_LIST && v->n == 0)) {
		err(x, v,
		    "peer %.12s... needs a \"host:port\" address or a list "
		    "of them, not %s",
		    pc->keyhash,
		    v->type == HL_CONF_LIST ? "an empty list"
		                            : describe(v, d, sizeof d));
		return;
	}
	pc->addrs =
	    calloc(v->type == HL_CONF_LIST ? v->n : 1, sizeof *pc->addrs);
	if (pc->addrs == NULL) {
		err(x, v, "out of memory");
		return;
	}
	if (v->type == HL_CONF_SCALAR) {
		peer_add_addr(x, pc, v);
		return;
	}
	for (size_t j = 0; j < v->n; j++)
		peer_add_addr(x, pc, v->items[j]);
}

static void
check_config(struct ctx *x, struct hl__config *cfg)
{
	const struct hl_conf *root = cfg->root;

	/* In the file's order, so the errors come out in that order. */
	for (size_t i = 0; i < root->n; i++) {
		const char *k = root->keys[i];
		const struct hl_conf *v = root->items[i];

		if (strcmp(k, "state_dir") == 0) {
			free(cfg->state_dir);
			cfg->state_dir =
			    dup_str(x, v, "\"state_dir\"", "a directory path");
		} else if (strcmp(k, "log") == 0) {
			check_log(x, cfg, v);
		} else if (strcmp(k, "proxy") == 0) {
			check_proxy(x, cfg, v);
		} else if (strcmp(k, "plugin_dir") == 0) {
			cfg->plugin_dir =
			    dup_str(x, v, "\"plugin_dir\"", "a directory path");
		} else if (strcmp(k, "plugins_strict") == 0) {
			want_bool(x, v, "\"plugins_strict\"",
			          &cfg->strict_plugins);
		} else if (strcmp(k, "plugins") == 0) {
			cfg->plugins = check_named_entries(
			    x, cfg, v, "\"plugins\"",
			    "{ transport-tls: { priority: 10 } }",
			    sizeof *cfg->plugins, check_plugin);
		} else if (strcmp(k, "services") == 0) {
			cfg->services = check_named_entries(
			    x, cfg, v, "\"services\"",
			    "{ wiki: { target: \"127.0.0.1:8080\" } }",
			    sizeof *cfg->services, check_service);
		} else if (strcmp(k, "peers") == 0) {
			cfg->peers = check_named_entries(
			    x, cfg, v, "\"peers\"",
			    "{ <keyhash>: [\"198.51.100.7:7008\"] }",
			    sizeof *cfg->peers, check_peer);
			check_peer_repeats(x, cfg);
		} else if (strcmp(k, "limits") == 0) {
			check_limits(x, cfg, v);
		} else if (strcmp(k, "forwards") == 0) {
			continue; /* below, once the proxy's ports are known */
		} else {
			unknown_key(x, to_node(root), i, NULL, top_keys);
		}
	}
	if (cfg->socks_listen != NULL && cfg->proxy_listen != NULL &&
	    strcmp(cfg->socks_listen, cfg->proxy_listen) == 0)
		err(x,
		    hl__conf_get(hl__conf_get(root, "proxy"), "socks_listen"),
		    "socks_listen is the proxy's own listen address: use "
		    "socks: true to take SOCKS5 on that port, or give "
		    "socks_listen a port of its own");
	if (hl__conf_get(root, "forwards") != NULL)
		check_forwards(x, cfg, hl__conf_get(root, "forwards"));
}

/* ---- the entry points ---- */

struct hl__config *
hl__config_parse(const char *file, const char *buf, size_t len, FILE *errs,
                 int *nerrors)
{
	struct hl__config *cfg;
	struct ctx x;
	struct node *root;
	int empty, dummy;

	if (nerrors == NULL)
		nerrors = &dummy;
	*nerrors = 0;
	memset(&x, 0, sizeof x);
	x.errs = errs;
	x.buf = buf != NULL ? buf : "";
	x.len = buf != NULL ? len : 0;
	cfg = calloc(1, sizeof *cfg);
	if (cfg == NULL ||
	    (cfg->file = strdup(file != NULL ? file : "(config)")) == NULL) {
		free(cfg);
		if (errs != NULL)
			fprintf(errs, "%s: out of memory\n",
			        file != NULL ? file : "(config)");
		*nerrors = 1;
		return NULL;
	}
	x.file = cfg->file;
	cfg->log_level = HL_LOG_INFO;
	cfg->limits.idle_timeout = HL_IDLE_TIMEOUT_DEFAULT;
	cfg->limits.tunnels = cfg->limits.per_peer = -1;
	cfg->limits.per_service = cfg->limits.routes = -1;
	cfg->state_dir = strdup(DEFAULT_STATE_DIR);
	cfg->proxy_listen = strdup(DEFAULT_PROXY_LISTEN);
	if (cfg->state_dir == NULL || cfg->proxy_listen == NULL) {
		err_at(&x, 1, 1, "out of memory");
		goto done;
	}

	if (x.len > CONF_MAX_SIZE) {
		err_at(&x, 1, 1,
		       "the config is %zu bytes, more than the %d "
		       "a config may have",
		       x.len, CONF_MAX_SIZE);
		goto done;
	}
	root = parse_tree(&x, &empty);
	cfg->root = root ? &root->c : NULL;
	if (root == NULL) {
		if (empty)
			err_at(&x, 1, 1, "empty config");
		goto done;
	}
	if (root->c.type == HL_CONF_SCALAR && root->null) {
		err_at(&x, 1, 1, "empty config");
		goto done;
	}
	if (root->c.type != HL_CONF_MAP) {
		char d[80];
		err(&x, &root->c,
		    "the config must be a map of settings "
		    "(state_dir:, plugins:, services:, ...), not %s",
		    describe(&root->c, d, sizeof d));
		goto done;
	}
	check_config(&x, cfg);
done:
	*nerrors = x.nerrors;
	if (x.nerrors > 0) {
		hl__config_free(cfg);
		return NULL;
	}
	return cfg;
}

struct hl__config *
hl__config_load(const char *file, FILE *errs, int *nerrors)
{
	struct hl__config *cfg;
	size_t len;
	char *buf;
	int dummy;

	if (nerrors == NULL)
		nerrors = &dummy;
	buf = hl__read_file(file, CONF_MAX_SIZE, &len);
	if (buf == NULL) {
		if (errs != NULL)
			fprintf(errs, "%s: %s%s\n", file, strerror(errno),
			        errno == EFBIG
			            ? " (a config may have at most 1 MiB)"
			            : "");
		*nerrors = 1;
		return NULL;
	}
	cfg = hl__config_parse(file, buf, len, errs, nerrors);
	free(buf);
	return cfg;
}

void
hl__config_free(struct hl__config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->nplugins; i++)
		free(cfg->plugins[i].name);
	free(cfg->plugins);
	for (size_t i = 0; i < cfg->nservices; i++) {
		struct hl__service_conf *sc = &cfg->services[i];
		free(sc->name);
		free(sc->target);
		free(sc->title);
		free(sc->password);
		free(sc->punch);
		free(sc->cert);
	}
	free(cfg->services);
	for (size_t i = 0; i < cfg->npeers; i++) {
		for (size_t j = 0; j < cfg->peers[i].naddrs; j++)
			free(cfg->peers[i].addrs[j]);
		free(cfg->peers[i].addrs);
	}
	free(cfg->peers);
	for (size_t i = 0; i < cfg->nforwards; i++) {
		free(cfg->forwards[i].listen);
		free(cfg->forwards[i].title);
	}
	free(cfg->forwards);
	free(cfg->socks_listen);
	free(cfg->state_dir);
	free(cfg->proxy_listen);
	free(cfg->plugin_dir);
	node_free(to_node(cfg->root));
	free(cfg->file);
	free(cfg);
}

/* ---- accessors (the services table hands these to plugins) ---- */

int
hl__conf_type(const struct hl_conf *node)
{
	return node != NULL ? node->type : HL_CONF_NONE;
}

const struct hl_conf *
hl__conf_get(const struct hl_conf *node, const char *key)
{
	if (node == NULL || node->type != HL_CONF_MAP || key == NULL)
		return NULL;
	for (size_t i = 0; i < node->n; i++)
		if (strcmp(node->keys[i], key) == 0)
			return node->items[i];
	return NULL;
}

const char *
hl__conf_str(const struct hl_conf *node)
{
	if (node == NULL || node->type != HL_CONF_SCALAR)
		return NULL;
	return node->str;
}

size_t
hl__conf_len(const struct hl_conf *node)
{
	if (node == NULL ||
	    (node->type != HL_CONF_MAP && node->type != HL_CONF_LIST))
		return 0;
	return node->n;
}

const struct hl_conf *
hl__conf_item(const struct hl_conf *node, size_t i)
{
	if (node == NULL ||
	    (node->type != HL_CONF_MAP && node->type != HL_CONF_LIST) ||
	    i >= node->n)
		return NULL;
	return node->items[i];
}

const char *
hl__conf_key(const struct hl_conf *node, size_t i)
{
	if (node == NULL || node->type != HL_CONF_MAP || i >= node->n)
		return NULL;
	return node->keys[i];
}

struct hl_conf *
hl__conf_map_without(const struct hl_conf *map, const char *key)
{
	const struct node *m = to_node(map);
	struct node *n;

	if (map == NULL || map->type != HL_CONF_MAP)
		return NULL;
	n = calloc(1, sizeof *n);
	if (n == NULL)
		return NULL;
	n->c = *map;
	n->c.n = 0;
	n->c.keys = calloc(map->n ? map->n : 1, sizeof *n->c.keys);
	n->c.items = calloc(map->n ? map->n : 1, sizeof *n->c.items);
	n->kpos = calloc(map->n ? map->n : 1, sizeof *n->kpos);
	if (n->c.keys == NULL || n->c.items == NULL || n->kpos == NULL) {
		hl__conf_shell_free(&n->c);
		return NULL;
	}
	for (size_t i = 0; i < map->n; i++) {
		if (strcmp(map->keys[i], key) == 0)
			continue;
		n->c.keys[n->c.n] = map->keys[i];
		n->c.items[n->c.n] = map->items[i];
		if (m->kpos != NULL)
			n->kpos[n->c.n] = m->kpos[i];
		else
			n->kpos[n->c.n] = (struct pos){map->line, map->col};
		n->c.n++;
	}
	n->cap = n->c.n;
	return &n->c;
}

void
hl__conf_shell_free(struct hl_conf *shell)
{
	struct node *n = to_node(shell);

	if (shell == NULL)
		return;
	free(n->c.keys);
	free(n->c.items);
	free(n->kpos);
	free(n);
}
