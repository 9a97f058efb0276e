/*
 * dht-key.h: where a Hardline service's record lives in OpenDHT
 * (docs/protocol.md, "DHT"): the SHA-1 of the 40-character hex of the day's
 * rolling code, and which days matter around midnight UTC.
 */
#ifndef HL_DHT_KEY_H
#define HL_DHT_KEY_H

#include <stddef.h>
#include <stdint.h>

#define DHT_DAY_SECONDS 86400
/* Within this many seconds of midnight UTC, the neighbouring day's key is
 * published and looked up too (clocks drift; the day turns mid-lookup). */
#define DHT_EDGE_SECONDS 3600

/*
 * The rolling code of keyhash (40 hex, any case) for UTC day `day`:
 * BLAKE2b-256(raw20 || uint64_le(day)), first 20 bytes, lowercase hex.
 * Returns 0, or -1 when keyhash is not 40 hex digits.
 */
int dht_rolling_code(const char *keyhash, uint64_t day, char out[41]);

/* The OpenDHT key (40 lowercase hex) of keyhash for day: SHA-1 of the
 * rolling code's 40 ASCII characters. 0, or -1 as above. */
int dht_key(const char *keyhash, uint64_t day, char out[41]);

/*
 * The UTC days whose keys matter at unix time now: days[0] is today;
 * within DHT_EDGE_SECONDS after midnight yesterday follows, within
 * DHT_EDGE_SECONDS before midnight tomorrow. Returns how many (1 or 2).
 */
size_t dht_key_days(int64_t now, uint64_t days[2]);

/* Seconds from now until dht_key_days(now) gives another answer (> 0). */
int64_t dht_key_days_next_change(int64_t now);

#endif /* HL_DHT_KEY_H */
