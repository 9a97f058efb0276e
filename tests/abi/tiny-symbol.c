/*
 * tiny-symbol: a `hardline_plugin` symbol too small to hold a head. Built
 * without sanitizers: AddressSanitizer would pad the symbol with a redzone.
 */
#include <hardline/plugin.h>

HL_EXPORT extern const uint32_t hardline_plugin;
HL_EXPORT const uint32_t hardline_plugin = HL_ABI_MAGIC;
