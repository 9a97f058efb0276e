/*
 * dht-key.c: the day-rolling DHT key (docs/protocol.md, "Rolling code"
 * and "DHT").
 * libsodium for BLAKE2b-256 (OpenSSL 3.0's BLAKE2B-512 has a fixed output
 * size), OpenSSL's EVP interface for SHA-1.
 */
#include <string.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "hardline/util.h"

#include "dht-key.h"

int
dht_rolling_code(const char *keyhash, uint64_t day, char out[41])
{
	unsigned char in[28], digest[32];

	if (keyhash == NULL || strlen(keyhash) != 40)
		return -1;
	if (hl_hex_decode(keyhash, 20, in) != 0)
		return -1;
	for (size_t i = 0; i < 8; i++)
		in[20 + i] = (unsigned char)(day >> (8 * i));
	if (crypto_generichash(digest, sizeof digest, in, sizeof in, NULL, 0) !=
	    0)
		return -1;
	hl_hex_encode(digest, 20, out);
	return 0;
}

int
dht_key(const char *keyhash, uint64_t day, char out[41])
{
	char rolling[41];
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (dht_rolling_code(keyhash, day, rolling) != 0)
		return -1;
	if (EVP_Digest(rolling, 40, digest, &len, EVP_sha1(), NULL) != 1 ||
	    len != 20)
		return -1;
	hl_hex_encode(digest, 20, out);
	return 0;
}

size_t
dht_key_days(int64_t now, uint64_t days[2])
{
	int64_t today = now / DHT_DAY_SECONDS, into;

	if (now < 0)
		today = 0;
	into = now - today * DHT_DAY_SECONDS;
	days[0] = (uint64_t)today;
	if (into < DHT_EDGE_SECONDS && today > 0) {
		days[1] = (uint64_t)today - 1;
		return 2;
	}
	if (into >= DHT_DAY_SECONDS - DHT_EDGE_SECONDS) {
		days[1] = (uint64_t)today + 1;
		return 2;
	}
	return 1;
}

int64_t
dht_key_days_next_change(int64_t now)
{
	int64_t into = now - (now / DHT_DAY_SECONDS) * DHT_DAY_SECONDS;

	if (now < 0)
		return 1;
	if (into < DHT_EDGE_SECONDS)
		return DHT_EDGE_SECONDS - into;
	if (into < DHT_DAY_SECONDS - DHT_EDGE_SECONDS)
		return DHT_DAY_SECONDS - DHT_EDGE_SECONDS - into;
	return DHT_DAY_SECONDS - into;
}
