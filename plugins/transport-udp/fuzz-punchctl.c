/*
 * fuzz-punchctl.c: the punch control stream's line parser on any bytes:
 * no read outside the line, and what parses formats to a line that
 * parses to the same message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "punchctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct punchctl m, again;
	char out[PUNCHCTL_LINE_MAX + 2], pw[PUNCHCTL_PASSWORD_MAX + 1], kh[41];
	size_t n;

	if (size > 0 && size < 128 && memchr(data, 0, size) == NULL) {
		char label[128];
		memcpy(label, data, size);
		label[size] = '\0';
		(void)punchctl_label(label, pw, kh);
	}
	if (punchctl_parse((const char *)data, size, &m) != 0)
		return 0;
	n = punchctl_format(&m, out, sizeof out);
	if (n == 0 || out[n - 1] != '\n' ||
	    punchctl_parse(out, n - 1, &again) != 0 ||
	    memcmp(&m, &again, sizeof m) != 0)
		abort();
	return 0;
}
