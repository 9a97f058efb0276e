/*
 * fuzz-socks.c: the SOCKS5 front's parser, from a local client's first
 * bytes (hl__socks_greeting, then hl__socks_request on what follows).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hl.h"

static void
check_request(const unsigned char *buf, size_t size)
{
	struct hl__socks_request req, req2;
	size_t used = 0, used2 = 0;
	int rc = hl__socks_request(buf, size, &used, &req);

	if (rc == 1) {
		if (used == 0 || used > size || used > HL_SOCKS_REQUEST_MAX)
			abort();
		if (memchr(req.name, '\0', sizeof req.name) == NULL)
			abort();
		if (req.rep == HL_SOCKS_SUCCEEDED &&
		    (req.cmd != 1 || req.atyp != 3 ||
		     !hl__password_valid(req.password) ||
		     !hl_keyhash_is_lower(req.keyhash)))
			abort();
		if (req.rep != HL_SOCKS_SUCCEEDED && req.keyhash[0] != '\0')
			abort();
		/* Bytes after the request change nothing. */
		if (hl__socks_request(buf, used, &used2, &req2) != 1 ||
		    used2 != used || req2.rep != req.rep ||
		    strcmp(req2.keyhash, req.keyhash) != 0)
			abort();
	} else if (rc == 0) {
		if (used != 0 || size >= HL_SOCKS_REQUEST_MAX)
			abort();
	} else if (rc != -1) {
		abort();
	}
	/* An answer, once given for a prefix, stands. */
	if (size > 0) {
		int r2 = hl__socks_request(buf, size / 2, &used2, &req2);
		if (r2 != 0 && r2 != rc)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so any read past them is caught. */
	unsigned char *buf = malloc(size ? size : 1);
	size_t used = 0;
	int rc;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	rc = hl__socks_greeting(buf, size, &used);
	if (rc == 1 || rc == 2) {
		if (used < 3 || used > size || used > HL_SOCKS_GREETING_MAX)
			abort();
		check_request(buf + used, size - used);
	} else if (rc == 0) {
		if (size >= HL_SOCKS_GREETING_MAX)
			abort();
	}
	/* The whole input as a request too. */
	check_request(buf, size);
	free(buf);
	return 0;
}
