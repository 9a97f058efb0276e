/*
 * fuzz-oob.c: the out-of-band line a tunnel's peer sends (hl__oob_parse),
 * and the WANHosts value in it (hl__wanhosts_split).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hl.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[HL_WANHOSTS_MAX][HL_ADDR_MAX];
	struct hl__oob oob;
	char *buf, *s;
	size_t n;
	int bad;

	/* A copy of exactly size bytes, so any read past them is caught. */
	buf = malloc(size ? size : 1);
	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);

	if (hl__oob_parse(buf, size, &oob) == 0) {
		if (oob.has_password && !hl__password_valid(oob.password))
			abort();
		if (oob.wanhosts != NULL) {
			n = hl__wanhosts_split(oob.wanhosts, out,
			                       HL_WANHOSTS_MAX, &bad);
			if (n > HL_WANHOSTS_MAX || bad < 0)
				abort();
			for (size_t i = 0; i < n; i++)
				if (strlen(out[i]) >= HL_ADDR_MAX)
					abort();
			/* What we would send back parses to the same. */
			s = hl__oob_server_line(oob.wanhosts, NULL);
			if (s != NULL) {
				struct hl__oob again = {0};
				size_t sl = strlen(s);
				if (sl == 0 || s[sl - 1] != '\n')
					abort();
				if (sl - 1 <= HL_OOB_MAX &&
				    (hl__oob_parse(s, sl - 1, &again) != 0 ||
				     (oob.wanhosts[0] != '\0' &&
				      strcmp(again.wanhosts, oob.wanhosts) !=
				          0)))
					abort();
				hl__oob_clear(&again);
				free(s);
			}
		}
		hl__oob_clear(&oob);
	}

	/* The raw bytes as a WANHosts value (NUL-ended at the first NUL). */
	s = malloc(size + 1);
	if (s != NULL) {
		memcpy(s, data, size);
		s[size] = '\0';
		n = hl__wanhosts_split(s, out, 4, NULL);
		if (n > 4)
			abort();
		free(s);
	}
	free(buf);
	return 0;
}
