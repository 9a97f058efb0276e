/*
 * oob.c: the out-of-band line each end of a tunnel sends once, right after
 * the TLS handshake: one JSON object and a '\n' (docs/protocol.md,
 * "Out-of-band lines").
 * The server says {"WANHosts":"..."}, the client {"password":"..."}.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hl.h"

/* A string field of the line, copied into *out (malloc'd); absent: *out
 * stays NULL. -1 when it is not a string, holds a NUL, or no memory. */
static int
string_field(json_t *root, const char *name, char **out)
{
	json_t *v = json_object_get(root, name);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (v == NULL)
		return 0;
	if (!json_is_string(v) || strlen(s) != n ||
	    (*out = malloc(n + 1)) == NULL)
		return -1;
	memcpy(*out, s, n + 1);
	return 0;
}

int
hl__oob_parse(const char *line, size_t len, struct hl__oob *out)
{
	json_error_t jerr;
	json_t *root, *v;

	memset(out, 0, sizeof *out);
	if (line == NULL || len > HL_OOB_MAX)
		return -1;
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL)
		return -1;
	if (!json_is_object(root))
		goto bad;

	v = json_object_get(root, "password");
	if (v != NULL) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		/* A string of [a-z2-7], at most 22 long: anything else is a
		 * malformed line, not just a wrong password. */
		if (!json_is_string(v) || n > HL_PASSWORD_MAX ||
		    strlen(s) != n || !hl__password_valid(s))
			goto bad;
		memcpy(out->password, s, n + 1);
		out->has_password = 1;
	}

	if (string_field(root, "WANHosts", &out->wanhosts) != 0 ||
	    string_field(root, "Endpoints", &out->endpoints) != 0)
		goto bad;

	/* hlcore's refusal at a cap: {"busy":"<why>","retry_ms":N}. */
	v = json_object_get(root, "busy");
	if (v != NULL) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		if (!json_is_string(v) || strlen(s) != n ||
		    n >= sizeof out->busy)
			goto bad;
		memcpy(out->busy, s, n + 1);
		out->is_busy = 1;
		out->retry_ms = 500;
	}
	v = json_object_get(root, "retry_ms");
	if (v != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 60000)
			goto bad;
		out->retry_ms = (int)json_integer_value(v);
	}
	json_decref(root);
	return 0;
bad:
	json_decref(root);
	hl__oob_clear(out);
	return -1;
}

void
hl__oob_clear(struct hl__oob *oob)
{
	if (oob == NULL)
		return;
	free(oob->wanhosts);
	free(oob->endpoints);
	memset(oob, 0, sizeof *oob);
}

/* obj as one compact line ending in '\n' (malloc'd), or NULL; obj is
 * released either way (NULL: out of memory before it was made). */
static char *
json_line(json_t *obj, int ok)
{
	char *js = ok && obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
	char *line = NULL;
	size_t n;

	if (js != NULL) {
		n = strlen(js);
		line = malloc(n + 2);
		if (line != NULL) {
			memcpy(line, js, n);
			line[n] = '\n';
			line[n + 1] = '\0';
		}
	}
	free(js); /* jansson's default allocator is malloc */
	json_decref(obj);
	return line;
}

/* {"<key>":"<value>"}\n, or {}\n when value is NULL or empty. */
static char *
one_field_line(const char *key, const char *value)
{
	json_t *obj;

	if (value == NULL || value[0] == '\0')
		return strdup("{}\n");
	obj = json_object();
	return json_line(
	    obj, obj != NULL &&
	             json_object_set_new(obj, key, json_string(value)) == 0);
}

char *
hl__oob_server_line(const char *wanhosts, const char *endpoints)
{
	json_t *obj;

	if (endpoints == NULL || endpoints[0] == '\0')
		return one_field_line("WANHosts", wanhosts);
	obj = json_object();
	return json_line(
	    obj, obj != NULL &&
	             (wanhosts == NULL || wanhosts[0] == '\0' ||
	              json_object_set_new(obj, "WANHosts",
	                                  json_string(wanhosts)) == 0) &&
	             json_object_set_new(obj, "Endpoints",
	                                 json_string(endpoints)) == 0);
}

char *
hl__oob_client_line(const char *password)
{
	return one_field_line("password", password);
}

char *
hl__oob_busy_line(const char *wanhosts, const char *why, int retry_ms)
{
	json_t *obj = json_object();

	return json_line(
	    obj, obj != NULL &&
	             (wanhosts == NULL || wanhosts[0] == '\0' ||
	              json_object_set_new(obj, "WANHosts",
	                                  json_string(wanhosts)) == 0) &&
	             json_object_set_new(obj, "busy", json_string(why)) == 0 &&
	             json_object_set_new(obj, "retry_ms",
	                                 json_integer(retry_ms)) == 0);
}

/* Split a comma-separated list into out (at most max entries), keeping
 * those ok() accepts; empty entries are nothing, the others are counted
 * in *bad. */
static size_t
split_list(const char *s, char out[][HL_ADDR_MAX], size_t max, int *bad,
           int (*ok)(const char *entry, size_t n, int arg), int arg)
{
	size_t count = 0, len = s != NULL ? strlen(s) : 0, pos = 0, a, b;
	int nbad = 0;

	while (count < max && hl_split_next(s, len, &pos, &a, &b)) {
		char entry[HL_ADDR_MAX];
		size_t n = b - a;

		/* An empty entry ("a:1,,b:2", a trailing comma) is nothing,
		 * not an error. */
		if (n == 0)
			continue;
		if (n < HL_ADDR_MAX) {
			memcpy(entry, s + a, n);
			entry[n] = '\0';
		}
		if (n >= HL_ADDR_MAX || !ok(entry, n, arg)) {
			nbad++;
			continue;
		}
		memcpy(out[count++], entry, n + 1);
	}
	if (bad != NULL)
		*bad = nbad;
	return count;
}

/* "host:port" */
static int
bare_ok(const char *entry, size_t n HL_UNUSED, int arg HL_UNUSED)
{
	char host[HL_ADDR_MAX];
	uint16_t port;

	return hl__addr_split(entry, host, sizeof host, &port) == 0;
}

/* A typed endpoint, or (any_bare) a bare "host:port" */
static int
endpoint_ok(const char *entry, size_t n, int any_bare)
{
	return hl__endpoint_check(entry, n) == 0 ||
	       (any_bare && memchr(entry, '/', n) == NULL &&
	        bare_ok(entry, n, 0));
}

size_t
hl__wanhosts_split(const char *s, char out[][HL_ADDR_MAX], size_t max, int *bad)
{
	return split_list(s, out, max, bad, bare_ok, 0);
}

int
hl__endpoint_check(const char *s, size_t len)
{
	size_t i = 0, sl;
	char rest[HL_ADDR_MAX], host[HL_ADDR_MAX];
	uint16_t port;

	if (s == NULL || len >= HL_ADDR_MAX)
		return -1;
	if (len == 0 || !(s[0] >= 'a' && s[0] <= 'z'))
		return -1;
	while (i < len &&
	       ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
	        s[i] == '+' || s[i] == '.' || s[i] == '-'))
		i++;
	sl = i;
	if (sl > 15 || len - i < 4 || memcmp(s + i, "://", 3) != 0)
		return -1;
	for (i += 3; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c <= ' ' || c >= 0x7f || c == ',' || c == '"' || c == '\\')
			return -1;
	}
	if ((sl == 4 && memcmp(s, "quic", 4) == 0) ||
	    (sl == 3 && memcmp(s, "tls", 3) == 0)) {
		memcpy(rest, s + sl + 3, len - sl - 3);
		rest[len - sl - 3] = '\0';
		if (hl__addr_split(rest, host, sizeof host, &port) != 0)
			return -1;
	}
	return 0;
}

size_t
hl__endpoints_split(const char *s, char out[][HL_ADDR_MAX], size_t max,
                    int any_bare, int *bad)
{
	return split_list(s, out, max, bad, endpoint_ok, any_bare);
}
