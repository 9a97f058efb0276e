/*
 * fuzz-host.c: the browser side's request head, from a local client's
 * first bytes to a Hardline name (hl__http_find_host, hl__host_parse).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hl.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char pw[HL_PASSWORD_MAX + 1], kh[HL_KEYHASH_LEN + 1];
	const char *host = NULL;
	size_t hostlen = 0;
	/* A copy of exactly size bytes, so any read past them is caught. */
	char *buf = malloc(size ? size : 1);
	int rc;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);

	rc = hl__http_find_host(buf, size, &host, &hostlen);
	/* An answer, once given for a prefix, stands for every longer
	 * input: more bytes never change it. */
	{
		const char *h2 = NULL;
		size_t l2 = 0;
		int rc2 = hl__http_find_host(buf, size / 2, &h2, &l2);
		if (rc2 != 0 &&
		    (rc2 != rc || (rc == 1 && (h2 != host || l2 != hostlen))))
			abort();
	}
	if (rc == 1) {
		if (host < buf || host + hostlen > buf + size)
			abort();
		if (hl__host_parse(host, hostlen, pw, kh) == 0) {
			if (!hl__password_valid(pw) || !hl_keyhash_is_lower(kh))
				abort();
		}
	}

	/* The whole input as a Host value too. */
	if (hl__host_parse(buf, size, pw, kh) == 0) {
		if (!hl__password_valid(pw) || !hl_keyhash_is_lower(kh))
			abort();
	}
	free(buf);
	return 0;
}
