/*
 * fuzz-punchmsg.c: the punch probe parser on any bytes: no read outside
 * the datagram, and what parses formats back to the same 32 bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "punchmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct punchmsg m;
	uint8_t out[PUNCHMSG_LEN];

	if (punchmsg_parse(data, size, &m) != 0)
		return 0;
	punchmsg_format(&m, out);
	if (size != PUNCHMSG_LEN || memcmp(out, data, size) != 0)
		abort();
	return 0;
}
