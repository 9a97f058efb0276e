/*
 * host.c: the browser side's Host header, and the Hardline name in it
 * ("[www.]<password>-<keyhash>.localhost[:port]"). Everything here reads
 * bytes from a local client: bounded by the length given, no allocation.
 * How much head to wait for (HL_HTTP_HEAD_MAX) is the caller's to bound:
 * an unfinished head is always "more bytes needed", so that it can answer
 * 431 rather than 400.
 */
#include <string.h>
#include <strings.h>

#include "hl.h"

#define METHOD_MAX 32

/* RFC 9110 token characters. */
static int
tchar(unsigned char c)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9'))
		return 1;
	return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int
ows(char c)
{
	return c == ' ' || c == '\t';
}

/* The request line looks like "METHOD SP target SP HTTP/d.d". */
static int
request_line_ok(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n && tchar((unsigned char)s[i]))
		i++;
	if (i == 0 || i >= n || s[i] != ' ')
		return 0;
	if (n < i + 1 + 1 + 9)
		return 0;
	s += n - 9;
	return s[0] == ' ' && memcmp(s + 1, "HTTP/", 5) == 0 && s[6] >= '0' &&
	       s[6] <= '9' && s[7] == '.' && s[8] >= '0' && s[8] <= '9';
}

int
hl__http_find_host(const char *buf, size_t len, const char **host,
                   size_t *hostlen)
{
	const char *found = NULL;
	size_t p = 0, i, foundlen = 0;
	int nline = 0, after_host = 0;

	/* RFC 9112: ignore empty lines before the request line. */
	while (p < len && (buf[p] == '\r' || buf[p] == '\n'))
		p++;

	/* Say "not HTTP" as soon as the method shows it (a TLS hello, say),
	 * rather than wait for a head that never comes. */
	for (i = p; i < len && i - p <= METHOD_MAX; i++) {
		if (buf[i] == ' ')
			break;
		if (!tchar((unsigned char)buf[i]))
			return -1;
	}
	if (i - p > METHOD_MAX || (i < len && i == p))
		return -1;

	for (;;) {
		const char *line = buf + p, *nl;
		size_t n;

		nl = memchr(line, '\n', len - p);
		if (nl == NULL)
			return 0;
		n = (size_t)(nl - line);
		p += n + 1;
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (nline++ == 0) {
			if (!request_line_ok(line, n))
				return -1;
			continue;
		}
		if (n == 0)
			break; /* the end of the head */
		if (ows(line[0])) {
			/* An obsolete folded line: fine after any header
			 * but Host, whose value would be ambiguous. */
			if (after_host)
				return -1;
			continue;
		}
		after_host = 0;

		const char *colon = memchr(line, ':', n);
		if (colon == NULL)
			continue;
		size_t namelen = (size_t)(colon - line);
		while (namelen > 0 && ows(line[namelen - 1]))
			namelen--;
		if (namelen != 4 || strncasecmp(line, "host", 4) != 0)
			continue;
		if (found != NULL)
			return -1; /* two Host headers */
		const char *v = colon + 1, *e = line + n;
		while (v < e && ows(*v))
			v++;
		while (e > v && ows(e[-1]))
			e--;
		found = v;
		foundlen = (size_t)(e - v);
		after_host = 1;
	}
	if (found == NULL)
		return -1;
	*host = found;
	*hostlen = foundlen;
	return 1;
}

int
hl__host_parse(const char *host, size_t len, char password[HL_PASSWORD_MAX + 1],
               char keyhash[HL_KEYHASH_LEN + 1])
{
	static const char suffix[] = ".localhost";
	const size_t sl = sizeof suffix - 1;
	size_t s = 0, e = len, i, ls, dash;
	char pw[HL_PASSWORD_MAX + 1], kh[HL_KEYHASH_LEN + 1];

	password[0] = '\0';
	keyhash[0] = '\0';
	while (s < e && ows(host[s]))
		s++;
	while (e > s && ows(host[e - 1]))
		e--;
	if (s == e || host[s] == '[')
		return -1; /* empty, or an IPv6 literal */

	/* An optional ":port", digits only. */
	for (i = e; i > s; i--)
		if (host[i - 1] == ':')
			break;
	if (i > s) {
		size_t nd = e - i;
		if (nd == 0 || nd > 5)
			return -1;
		for (size_t j = i; j < e; j++)
			if (host[j] < '0' || host[j] > '9')
				return -1;
		e = i - 1;
	}
	if (e > s && host[e - 1] == '.')
		e--; /* "localhost." is the same name */

	if (e - s < sl + 1 || strncasecmp(host + e - sl, suffix, sl) != 0)
		return -1;
	e -= sl;

	/* The label just before "localhost". */
	ls = e;
	while (ls > s && host[ls - 1] != '.')
		ls--;
	for (dash = e; dash > ls; dash--)
		if (host[dash - 1] == '-')
			break;
	if (dash == ls)
		return -1; /* no '-' */
	dash--;

	if (hl_keyhash_lower(host + dash + 1, e - (dash + 1), kh) != 0)
		return -1;

	/* Host names are case-insensitive (and browsers lowercase them), so
	 * the password is taken in lowercase, as the original does. */
	if (dash - ls > HL_PASSWORD_MAX)
		return -1;
	for (i = 0; i < dash - ls; i++) {
		char c = host[ls + i];
		pw[i] = (c >= 'A' && c <= 'Z') ? (char)(c | 0x20) : c;
	}
	pw[i] = '\0';
	if (memchr(host + ls, '\0', dash - ls) != NULL ||
	    !hl__password_valid(pw))
		return -1;

	memcpy(password, pw, dash - ls + 1);
	memcpy(keyhash, kh, sizeof kh);
	return 0;
}

int
hl__label_parse(const char *label, char password[HL_PASSWORD_MAX + 1],
                char keyhash[HL_KEYHASH_LEN + 1])
{
	static const char suffix[] = ".localhost";
	char buf[HL_PASSWORD_MAX + HL_KEYHASH_LEN + sizeof suffix + 2];
	size_t len = strlen(label), sl = sizeof suffix - 1;

	password[0] = '\0';
	keyhash[0] = '\0';
	if (len == 0 || len > 200)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (label[i] == ':' || (unsigned char)label[i] <= ' ')
			return -1;
	if (label[len - 1] == '.')
		len--;
	if (len >= sl && strncasecmp(label + len - sl, suffix, sl) == 0)
		return hl__host_parse(label, len, password, keyhash);
	/* A bare label: exactly "<password>-<keyhash>", no other dots. */
	if (memchr(label, '.', len) != NULL || len + sl >= sizeof buf)
		return -1;
	memcpy(buf, label, len);
	memcpy(buf + len, suffix, sl + 1);
	return hl__host_parse(buf, len + sl, password, keyhash);
}
