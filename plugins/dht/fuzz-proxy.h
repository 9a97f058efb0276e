/*
 * fuzz-proxy.h: what fuzz-dht and fuzz-dht-endpoints do with an OpenDHT
 * proxy line: decode it (dht_proxy_line must never write past cap), then
 * give the value it holds to the target's own record check.
 */
#ifndef HL_FUZZ_PROXY_H
#define HL_FUZZ_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "dht-value.h"

static inline void
fuzz_proxy_line(const uint8_t *data, size_t size, unsigned char *buf,
                size_t cap, void (*check)(const uint8_t *rec, size_t len))
{
	long n = dht_proxy_line((const char *)data, size, buf, cap);

	if (n > (long)cap)
		__builtin_trap();
	if (n >= 0)
		check(buf, (size_t)n);
}

#endif /* HL_FUZZ_PROXY_H */
