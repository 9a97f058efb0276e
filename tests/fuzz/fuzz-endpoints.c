/*
 * fuzz-endpoints.c: the typed endpoint list (docs/protocol.md,
 * "Endpoints"): the OOB field an hlcore peer sends (hl__endpoints_split,
 * hl__endpoint_check), and the peer cache's mix of it with WANHosts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hl.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[HL_WANHOSTS_MAX][HL_ADDR_MAX];
	char *buf;
	int bad = -1;
	size_t n;

	/* The field as the OOB parser hands it over: a NUL-ended string. */
	buf = malloc(size + 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	for (int any_bare = 0; any_bare < 2; any_bare++) {
		n = hl__endpoints_split(buf, out, HL_WANHOSTS_MAX, any_bare,
		                        &bad);
		if (n > HL_WANHOSTS_MAX || bad < 0)
			abort();
		for (size_t i = 0; i < n; i++) {
			size_t len = strnlen(out[i], HL_ADDR_MAX);
			if (len == 0 || len >= HL_ADDR_MAX ||
			    memchr(out[i], ',', len) != NULL)
				abort();
			/* Every endpoint kept passes the check again. */
			if (strstr(out[i], "://") != NULL &&
			    hl__endpoint_check(out[i], len) != 0)
				abort();
		}
	}
	/* The raw bytes as one entry (no NUL needed: len is the bound). */
	(void)hl__endpoint_check((const char *)data, size);
	free(buf);
	return 0;
}
