/* buf.c: growable text, HTML escaping, and form fields. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin-web.h"

/* No page is anywhere near this; a bigger one is a bug, not a page. */
#define BUF_MAX (8u << 20)

static int
grow(struct buf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->oom)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	if (b->len + more + 1 > BUF_MAX) {
		b->oom = 1;
		return -1;
	}
	cap = b->cap ? b->cap : 4096;
	while (cap < b->len + more + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (p == NULL) {
		b->oom = 1;
		return -1;
	}
	b->p = p;
	b->cap = cap;
	return 0;
}

void
buf_add(struct buf *b, const char *s, size_t n)
{
	if (grow(b, n) != 0)
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void
buf_puts(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

void
buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || grow(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void
buf_html(struct buf *b, const char *s)
{
	const char *run = s;

	for (; *s != '\0'; s++) {
		const char *ent;
		switch (*s) {
		case '&':
			ent = "&amp;";
			break;
		case '<':
			ent = "&lt;";
			break;
		case '>':
			ent = "&gt;";
			break;
		case '"':
			ent = "&quot;";
			break;
		case '\'':
			ent = "&#39;";
			break;
		default:
			continue;
		}
		buf_add(b, run, (size_t)(s - run));
		buf_puts(b, ent);
		run = s + 1;
	}
	buf_add(b, run, (size_t)(s - run));
}

void
buf_free(struct buf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

char *
buf_take(struct buf *b, size_t *len)
{
	char *p;

	if (b->oom || grow(b, 0) != 0) {
		buf_free(b);
		return NULL;
	}
	p = b->p;
	*len = b->len;
	memset(b, 0, sizeof *b);
	return p;
}

int
form_get(const char *body, size_t len, const char *key, char *out,
         size_t outlen)
{
	size_t klen = strlen(key), i = 0;

	while (i < len) {
		size_t end = i, o = 0;
		while (end < len && body[end] != '&')
			end++;
		if (end - i > klen && memcmp(body + i, key, klen) == 0 &&
		    body[i + klen] == '=') {
			for (size_t j = i + klen + 1; j < end; j++) {
				char c = body[j];
				if (c == '+') {
					c = ' ';
				} else if (c == '%' && j + 2 < end &&
				           hl_hexval(body[j + 1]) >= 0 &&
				           hl_hexval(body[j + 2]) >= 0) {
					c = (char)(hl_hexval(body[j + 1]) * 16 +
					           hl_hexval(body[j + 2]));
					j += 2;
				}
				if (c == '\0' || o + 1 >= outlen)
					return -1;
				out[o++] = c;
			}
			out[o] = '\0';
			return 0;
		}
		i = end + 1;
	}
	return -1;
}

int
plugin_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 63)
		return 0;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_'))
			return 0;
	return 1;
}
