/*
 * fuzz-dht: the DHT record parser and the proxy-line decoder on arbitrary
 * bytes. The first byte picks which: even, a record; odd, a proxy line
 * whose decoded data then goes through the record parser too.
 */
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "dht-value.h"
#include "fuzz-proxy.h"

static void
check_record(const uint8_t *p, size_t n)
{
	char out[DHT_VALUE_ADDRS_MAX][DHT_ADDR_MAX];
	size_t count = 0;
	const char *why = NULL;
	enum dht_value_result r = dht_value_parse(p, n, out, &count, &why);

	if (r == DHT_VALUE_OK) {
		if (count == 0 || count > DHT_VALUE_ADDRS_MAX)
			__builtin_trap();
		for (size_t i = 0; i < count; i++) {
			/* Every address handed out passes the address check
			 * on its own. */
			if (dht_addr_check(out[i], strlen(out[i]), &why) != 0)
				__builtin_trap();
		}
	} else if (r == DHT_VALUE_MALFORMED && why == NULL)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	unsigned char buf[DHT_VALUE_MAX + 1];

	if (!ready) {
		if (sodium_init() < 0)
			return 0;
		ready = 1;
	}
	if (size == 0)
		return 0;
	if ((data[0] & 1) == 0) {
		check_record(data + 1, size - 1);
		if (size - 1 < 4096) {
			char in[4096], made[DHT_VALUE_MAX + 1];
			size_t dropped, len;
			memcpy(in, data + 1, size - 1);
			in[size - 1] = '\0';
			len = dht_value_make(in, made, sizeof made, &dropped);
			/* What we would publish, we parse back as OK. */
			if (len > 0)
				check_record((const uint8_t *)made, len);
		}
	} else {
		fuzz_proxy_line(data + 1, size - 1, buf, sizeof buf,
		                check_record);
	}
	return 0;
}
