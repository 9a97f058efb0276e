/*
 * dht-value.c: parse DHT records and proxy answers (dht-value.h). Built
 * into the plugin, its unit test and its fuzz target.
 */
#include <arpa/inet.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "hardline/util.h"

#include "dht-value.h"

static int
is_blank(unsigned char c)
{
	return c == ' ' || c == '\t';
}

static int
check_port(const char *p, size_t len, const char **why)
{
	unsigned long v = 0;

	if (len == 0 || len > 5 || (p[0] == '0')) {
		*why = len == 0 ? "no port" : "bad port";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9') {
			*why = "bad port";
			return -1;
		}
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v < 1 || v > 65535) {
		*why = "port out of range";
		return -1;
	}
	return 0;
}

static int
check_name(const char *h, size_t len, const char **why)
{
	size_t label = 0;
	int all_digits = 1;

	if (len == 0 || len > 253) {
		*why = "bad host name length";
		return -1;
	}
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? h[i] : '.';
		if (c == '.') {
			if (label == 0 || h[i - 1] == '-') {
				*why = "bad host name";
				return -1;
			}
			if (i == len && all_digits) {
				*why = "bad IPv4 address";
				return -1;
			}
			label = 0;
			all_digits = 1;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-') ||
		    (c == '-' && label == 0) || ++label > 63) {
			*why = "bad host name";
			return -1;
		}
		if (c < '0' || c > '9')
			all_digits = 0;
	}
	return 0;
}

int
dht_addr_check(const char *s, size_t len, const char **why)
{
	char host[DHT_ADDR_MAX];
	const char *colon;
	size_t hl;

	if (len == 0 || len >= DHT_ADDR_MAX) {
		*why = len == 0 ? "empty address" : "address too long";
		return -1;
	}
	if (s[0] == '[') {
		const char *rb = memchr(s, ']', len);
		struct in6_addr a6;

		if (rb == NULL || (size_t)(rb - s) + 1 >= len || rb[1] != ':') {
			*why = "bad [IPv6]:port";
			return -1;
		}
		hl = (size_t)(rb - s) - 1;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (hl == 0 || inet_pton(AF_INET6, host, &a6) != 1) {
			*why = "bad IPv6 address";
			return -1;
		}
		if (IN6_IS_ADDR_UNSPECIFIED(&a6)) {
			*why = "unspecified address";
			return -1;
		}
		colon = rb + 1;
	} else {
		struct in_addr a4;
		int dotted = 1;

		colon = NULL;
		for (size_t i = len; i > 0; i--)
			if (s[i - 1] == ':') {
				colon = s + i - 1;
				break;
			}
		if (colon == NULL) {
			*why = "no port";
			return -1;
		}
		hl = (size_t)(colon - s);
		if (memchr(s, ':', hl) != NULL) {
			*why = "IPv6 address without brackets";
			return -1;
		}
		if (hl == 0) {
			*why = "no host";
			return -1;
		}
		memcpy(host, s, hl);
		host[hl] = '\0';
		for (size_t i = 0; i < hl; i++)
			if (!(host[i] == '.' ||
			      (host[i] >= '0' && host[i] <= '9')))
				dotted = 0;
		if (dotted) {
			if (inet_pton(AF_INET, host, &a4) != 1) {
				*why = "bad IPv4 address";
				return -1;
			}
			if (a4.s_addr == htonl(INADDR_ANY)) {
				*why = "unspecified address";
				return -1;
			}
		} else if (check_name(host, hl, why) != 0)
			return -1;
	}
	return check_port(colon + 1, len - (size_t)(colon + 1 - s), why);
}

enum dht_value_result
dht_value_parse(const void *data, size_t len, char out[][DHT_ADDR_MAX],
                size_t *n, const char **why)
{
	const char *s = data;
	size_t start = 0, blanks = 0, a, b;

	*n = 0;
	*why = NULL;
	for (size_t i = 0; i < len; i++)
		if (is_blank((unsigned char)s[i]))
			blanks++;
	if (len == blanks)
		return DHT_VALUE_EMPTY;
	if (len > DHT_VALUE_MAX) {
		*why = "longer than 1 KiB";
		return DHT_VALUE_MALFORMED;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 || c >= 0x7f) {
			*why = "not printable ASCII";
			return DHT_VALUE_MALFORMED;
		}
	}
	while (hl_split_next(s, len, &start, &a, &b)) {
		int dup = 0;

		if (dht_addr_check(s + a, b - a, why) != 0) {
			*n = 0;
			return DHT_VALUE_MALFORMED;
		}
		for (size_t k = 0; k < *n && !dup; k++)
			dup = strlen(out[k]) == b - a &&
			      memcmp(out[k], s + a, b - a) == 0;
		if (!dup) {
			if (*n == DHT_VALUE_ADDRS_MAX) {
				*why = "more than 16 addresses";
				*n = 0;
				return DHT_VALUE_MALFORMED;
			}
			memcpy(out[*n], s + a, b - a);
			out[*n][b - a] = '\0';
			(*n)++;
		}
	}
	return DHT_VALUE_OK;
}

size_t
dht_value_make(const char *wanhosts, char *out, size_t outlen, size_t *dropped)
{
	size_t len = 0, naddrs = 0, start = 0, total, a, b;
	const char *why;

	*dropped = 0;
	if (outlen == 0)
		return 0;
	out[0] = '\0';
	if (wanhosts == NULL)
		return 0;
	total = strlen(wanhosts);
	while (hl_split_next(wanhosts, total, &start, &a, &b)) {
		if (a == b)
			continue;
		if (dht_addr_check(wanhosts + a, b - a, &why) != 0 ||
		    naddrs == DHT_VALUE_ADDRS_MAX ||
		    len + (len ? 1 : 0) + (b - a) > DHT_VALUE_MAX ||
		    len + (len ? 1 : 0) + (b - a) >= outlen) {
			(*dropped)++;
			continue;
		}
		if (len)
			out[len++] = ',';
		memcpy(out + len, wanhosts + a, b - a);
		len += b - a;
		out[len] = '\0';
		naddrs++;
	}
	return len;
}

long
dht_proxy_line(const char *line, size_t len, unsigned char *buf, size_t bufmax)
{
	json_t *root, *data;
	json_error_t err;
	const char *b64;
	size_t b64len, bin = 0;
	long ret = -1;

	if (len == 0 || len > DHT_PROXY_LINE_MAX)
		return -1;
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL)
		return -1;
	data = json_object_get(root, "data");
	if (json_is_object(root) && json_is_string(data)) {
		b64 = json_string_value(data);
		b64len = json_string_length(data);
		if (sodium_base642bin(buf, bufmax, b64, b64len, NULL, &bin,
		                      NULL,
		                      sodium_base64_VARIANT_ORIGINAL) == 0)
			ret = (long)bin;
	}
	json_decref(root);
	return ret;
}
