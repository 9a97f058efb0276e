/*
 * fuzz-config.c: libFuzzer target for the YAML config parser. Any input
 * must give a config or a count of errors, never a crash or a leak.
 */
#include <stddef.h>
#include <stdint.h>

#include "hl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl__config *cfg;
	int nerrors = 0;

	cfg = hl__config_parse("fuzz.yaml", (const char *)data, size, NULL,
	                       &nerrors);
	if (cfg != NULL) {
		/* Walk what a plugin would read. */
		for (size_t i = 0; i < cfg->nplugins; i++) {
			const struct hl_conf *n = cfg->plugins[i].node;
			for (size_t j = 0; j < hl__conf_len(n); j++) {
				(void)hl__conf_key(n, j);
				(void)hl__conf_str(hl__conf_item(n, j));
			}
		}
		(void)hl__conf_get(cfg->root, "services");
	} else if (nerrors < 1) {
		__builtin_trap(); /* refused without saying why */
	}
	hl__config_free(cfg);
	return 0;
}
