/*
 * lanpacket.c: parse and format the LAN discovery packets, and compute
 * the rolling code. Every read is bounded by the datagram's length; no
 * allocation.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "hardline/util.h"

#include "lanpacket.h"

static const char search_line[] = "HARDLINE-SEARCH * HTTP/1.1";
static const char service_line[] = "HARDLINE-SERVICE * HTTP/1.1";

int
lan_hex20(const char *hex, unsigned char raw[20])
{
	if (hl_hex_decode(hex, 20, raw) != 0)
		return -1;
	return hex[40] == '\0' ? 0 : -1;
}

static int
password_ok(const unsigned char *s, size_t n)
{
	if (n > LAN_PASSWORD_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '2' && s[i] <= '7')))
			return 0;
	return 1;
}

/* Cut a UTF-8 text of n bytes to at most max, at a character boundary. */
static size_t
utf8_cut(const unsigned char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && (s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

static int
set_title(struct lan_packet *p, const unsigned char *v, size_t n)
{
	n = utf8_cut(v, n, LAN_TITLE_MAX);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	for (size_t i = 0; i < n; i++)
		p->title[i] = (char)(v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i]);
	p->title[n] = '\0';
	return 0;
}

static int
set_port(struct lan_packet *p, const unsigned char *v, size_t n)
{
	long port = 0;

	if (n == 0 || n > 5)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		port = port * 10 + (v[i] - '0');
	}
	if (port < 1 || port > 65535)
		return -1;
	p->port = (int)port;
	return 0;
}

static int
set_infohash(struct lan_packet *p, const unsigned char *v, size_t n)
{
	const unsigned char *dash = NULL;

	if (p->kind == LAN_SEARCH) {
		if (n == 0) {
			p->infohash[0] = '\0';
			return 0;
		}
		return hl_keyhash_lower((const char *)v, n, p->infohash);
	}
	for (size_t i = 0; i < n; i++)
		if (v[i] == '-')
			dash = v + i;
	if (dash == NULL) {
		/* A bare hash: a service without a password. */
		if (hl_keyhash_lower((const char *)v, n, p->keyhash) != 0)
			return -1;
	} else {
		size_t pwlen = (size_t)(dash - v);
		if (!password_ok(v, pwlen) ||
		    hl_keyhash_lower((const char *)dash + 1, n - pwlen - 1,
		                     p->keyhash) != 0)
			return -1;
		memcpy(p->password, v, pwlen);
		p->password[pwlen] = '\0';
	}
	snprintf(p->infohash, sizeof p->infohash, "%s-%s", p->password,
	         p->keyhash);
	return 0;
}

enum { F_INFOHASH = 1, F_COOKIE = 2, F_PORT = 4, F_TITLE = 8 };

static int
parse_field(struct lan_packet *p, const unsigned char *line, size_t n,
            unsigned *seen, const char **why)
{
	const unsigned char *colon = memchr(line, ':', n), *v;
	size_t namelen, vlen;
	unsigned f = 0;

	if (colon == NULL || colon == line) {
		*why = "a line that is not \"Name: value\"";
		return -1;
	}
	namelen = (size_t)(colon - line);
	v = colon + 1;
	vlen = n - namelen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;
#define NAME_IS(s)                                                             \
	(namelen == sizeof(s) - 1 &&                                           \
	 strncasecmp((const char *)line, s, namelen) == 0)
	if (NAME_IS("Infohash"))
		f = F_INFOHASH;
	else if (NAME_IS("cookie"))
		f = F_COOKIE;
	else if (NAME_IS("Port"))
		f = F_PORT;
	else if (NAME_IS("title"))
		f = F_TITLE;
#undef NAME_IS
	if (f == 0)
		return 0; /* unknown fields are ignored */
	if (*seen & f) {
		*why = "a field given twice";
		return -1;
	}
	*seen |= f;
	switch (f) {
	case F_INFOHASH:
		if (set_infohash(p, v, vlen) != 0) {
			*why = p->kind == LAN_SEARCH
			           ? "an Infohash that is neither empty nor "
			             "40 hex"
			           : "an Infohash that is not "
			             "<password>-<40 hex>";
			return -1;
		}
		break;
	case F_COOKIE:
		if (vlen > LAN_COOKIE_MAX) {
			*why = "a cookie too long";
			return -1;
		}
		for (size_t i = 0; i < vlen; i++)
			if (v[i] < 0x20 || v[i] == 0x7f) {
				*why = "a control character in the cookie";
				return -1;
			}
		memcpy(p->cookie, v, vlen);
		p->cookie[vlen] = '\0';
		break;
	case F_PORT:
		/* Only announces carry a port; a search's is ignored. */
		if (p->kind == LAN_SERVICE && set_port(p, v, vlen) != 0) {
			*why = "a Port that is not 1..65535";
			return -1;
		}
		break;
	case F_TITLE:
		if (p->kind == LAN_SERVICE)
			set_title(p, v, vlen);
		break;
	}
	return 0;
}

int
lan_parse(const unsigned char *buf, size_t len, struct lan_packet *p,
          const char **why)
{
	size_t pos = 0;
	int nlines = 0, ended = 0;
	unsigned seen = 0;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	memset(p, 0, sizeof *p);
	if (len > LAN_PACKET_MAX) {
		*why = "too big";
		return -1;
	}
	while (pos < len && !ended) {
		const unsigned char *line = buf + pos;
		size_t e = pos, n;

		while (e < len && buf[e] != '\r' && buf[e] != '\n' &&
		       buf[e] != '\0')
			e++;
		if (e + 1 >= len || buf[e] != '\r' || buf[e + 1] != '\n') {
			*why = e < len && buf[e] == '\0'
			           ? "a NUL byte"
			           : "a line not ended by CRLF";
			return -1;
		}
		n = e - pos;
		pos = e + 2;
		if (++nlines > LAN_LINES_MAX) {
			*why = "too many lines";
			return -1;
		}
		if (nlines == 1) {
			if (n == sizeof search_line - 1 &&
			    memcmp(line, search_line, n) == 0)
				p->kind = LAN_SEARCH;
			else if (n == sizeof service_line - 1 &&
			         memcmp(line, service_line, n) == 0)
				p->kind = LAN_SERVICE;
			else {
				*why = "not a HARDLINE-SEARCH or "
				       "HARDLINE-SERVICE packet";
				return -1;
			}
		} else if (n == 0) {
			ended = 1;
		} else if (parse_field(p, line, n, &seen, why) != 0) {
			return -1;
		}
	}
	if (nlines == 0) {
		*why = "empty";
		return -1;
	}
	if (!ended) {
		*why = "no blank line after the fields";
		return -1;
	}
	if (!(seen & F_INFOHASH)) {
		*why = "no Infohash";
		return -1;
	}
	if (p->kind == LAN_SERVICE && !(seen & F_PORT)) {
		*why = "an announce without a Port";
		return -1;
	}
	return 0;
}

/* Text that may go into a field as it is: no control characters. */
static int
field_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

size_t
lan_format_search(char *out, size_t cap, const char *infohash,
                  const char *cookie)
{
	int n;

	if (!field_ok(infohash, LAN_INFOHASH_MAX) ||
	    !field_ok(cookie, LAN_COOKIE_MAX))
		return 0;
	n = snprintf(out, cap,
	             "HARDLINE-SEARCH * HTTP/1.1\r\n"
	             "Infohash: %s\r\n"
	             "cookie: %s\r\n"
	             "\r\n\r\n",
	             infohash, cookie);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

size_t
lan_format_service(char *out, size_t cap, int port, const char *infohash,
                   const char *cookie, const char *title)
{
	char t[LAN_TITLE_MAX + 1];
	size_t tl = strlen(title);
	int n;

	if (port < 1 || port > 65535 || !field_ok(infohash, LAN_INFOHASH_MAX) ||
	    !field_ok(cookie, LAN_COOKIE_MAX))
		return 0;
	tl = utf8_cut((const unsigned char *)title, tl, LAN_TITLE_MAX);
	for (size_t i = 0; i < tl; i++)
		t[i] = (unsigned char)title[i] < 0x20 || title[i] == 0x7f
		           ? ' '
		           : title[i];
	t[tl] = '\0';
	n = snprintf(out, cap,
	             "HARDLINE-SERVICE * HTTP/1.1\r\n"
	             "Port: %d\r\n"
	             "Infohash: %s\r\n"
	             "cookie: %s\r\n"
	             "title: %s\r\n"
	             "\r\n\r\n",
	             port, infohash, cookie, t);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

void
lan_rolling_code(const unsigned char raw[20], uint64_t day, char out[41])
{
	unsigned char in[28], h[crypto_generichash_BYTES];

	memcpy(in, raw, 20);
	for (int i = 0; i < 8; i++)
		in[20 + i] = (unsigned char)(day >> (8 * i));
	/* BLAKE2b with a 32-byte output (not BLAKE2b-512 cut short). */
	crypto_generichash(h, sizeof h, in, sizeof in, NULL, 0);
	hl_hex_encode(h, 20, out);
}
