/*
 * fuzz-admin: libFuzzer target for what admin-web reads from requests: form
 * bodies (form_get) and what it writes back of them (buf_html).
 *
 * The checks compare with what the output must be, so that a wrong answer
 * is caught, not only a crash: form_get agrees with a plain second decoder
 * of the same rules (the first field named key, '+' as a space, %XX
 * decoded, -1 for a NUL or a value that does not fit), and its value is
 * never longer than the field it came from; buf_html's output holds no raw
 * '<', '>', '"' or '\'', every '&' in it starts one of the five entities,
 * and decoding them gives back the input exactly.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin-web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The reference's decoding of a field's value v[0..n): '+' is a space,
 * %XX the byte XX when both digits are in the value; -1 for a NUL or
 * when it does not fit out with its NUL. */
static int
ref_decode(const char *v, size_t n, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t j = 0; j < n; j++) {
		unsigned char byte = (unsigned char)v[j];
		if (v[j] == '+')
			byte = ' ';
		else if (v[j] == '%' && n - j > 2 &&
		         hl_hex_decode(v + j + 1, 1, &byte) == 0)
			j += 2;
		else if (v[j] == '%')
			byte = '%';
		if (byte == '\0' || o + 1 >= outlen)
			return -1;
		out[o++] = (char)byte;
	}
	out[o] = '\0';
	return 0;
}

/* The reference: *rawlen is the length of the field's value as sent. */
static int
ref_form_get(const char *s, size_t len, const char *key, char *out,
             size_t outlen, size_t *rawlen)
{
	size_t klen = strlen(key);

	for (size_t i = 0; i <= len;) {
		const char *amp = memchr(s + i, '&', len - i);
		size_t end = amp ? (size_t)(amp - s) : len;
		if (end - i > klen && memcmp(s + i, key, klen) == 0 &&
		    s[i + klen] == '=') {
			*rawlen = end - i - klen - 1;
			return ref_decode(s + i + klen + 1, *rawlen, out,
			                  outlen);
		}
		if (amp == NULL)
			break;
		i = end + 1;
	}
	return -1;
}

/* Decode buf_html's output back; -1 when it holds a raw special
 * character or an '&' that starts no entity of the five. */
static int
unescape(const char *p, size_t len, char *out, size_t *outlen)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = {{"&amp;", '&'},
	            {"&lt;", '<'},
	            {"&gt;", '>'},
	            {"&quot;", '"'},
	            {"&#39;", '\''}};
	size_t o = 0;

	for (size_t i = 0; i < len;) {
		if (p[i] == '<' || p[i] == '>' || p[i] == '"' || p[i] == '\'')
			return -1;
		if (p[i] != '&') {
			out[o++] = p[i++];
			continue;
		}
		size_t k = 0;
		while (k < sizeof ents / sizeof ents[0] &&
		       strncmp(p + i, ents[k].ent, strlen(ents[k].ent)) != 0)
			k++;
		if (k == sizeof ents / sizeof ents[0])
			return -1;
		out[o++] = ents[k].c;
		i += strlen(ents[k].ent);
	}
	*outlen = o;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"token", "csrf", "priority", "next"};
	char out[64], want[64], *s, *back;
	size_t rawlen = 0, slen, backlen;
	struct buf b;

	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		int got = form_get((const char *)data, size, keys[k], out,
		                   sizeof out);
		int ref = ref_form_get((const char *)data, size, keys[k], want,
		                       sizeof want, &rawlen);
		if (got != ref)
			abort();
		if (got == 0 &&
		    (strcmp(out, want) != 0 || strlen(out) > rawlen))
			abort();
	}
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	slen = strlen(s);
	memset(&b, 0, sizeof b);
	buf_html(&b, s);
	if (b.oom || (b.p == NULL && slen > 0))
		abort();
	back = malloc(b.len + 1);
	if (back == NULL)
		abort();
	if (unescape(b.p ? b.p : "", b.len, back, &backlen) != 0 ||
	    backlen != slen || memcmp(back, s, slen) != 0)
		abort();
	free(back);
	buf_free(&b);
	free(s);
	return 0;
}
