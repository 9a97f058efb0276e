/*
 * dht-value.h: the record a Hardline server puts in OpenDHT, and the lines
 * an OpenDHT HTTP proxy answers with. Both come from the network and are
 * untrusted hints (the TLS pin authenticates), so they are parsed strictly
 * and bounded; nothing here allocates from what it parses.
 */
#ifndef HL_DHT_VALUE_H
#define HL_DHT_VALUE_H

#include <stddef.h>

#define DHT_VALUE_MAX 1024 /* bytes in one record */
#define DHT_VALUE_ADDRS_MAX 16 /* addresses in one record */
#define DHT_ADDR_MAX 262 /* "[v6]:port" or a DNS name with a port */
#define DHT_PROXY_LINE_MAX 8192 /* one JSON line of a proxy's answer */

enum dht_value_result {
	DHT_VALUE_OK = 0,
	DHT_VALUE_EMPTY = 1, /* no bytes, or only blanks */
	DHT_VALUE_MALFORMED = 2, /* *why says what */
};

/*
 * Parse a record: the WANHosts string as raw ASCII, "ip:port" or
 * "[ipv6]:port" or "name:port", comma-separated, blanks around items
 * allowed. At most DHT_VALUE_MAX bytes and DHT_VALUE_ADDRS_MAX addresses;
 * ports 1-65535 without leading zeros; IP literals must parse and must not
 * be the unspecified address; names are LDH labels of at most 63, 253 in
 * all. Any bad item makes the whole record MALFORMED. On OK, out[0..*n)
 * holds the distinct addresses in order.
 */
enum dht_value_result dht_value_parse(const void *data, size_t len,
                                      char out[][DHT_ADDR_MAX], size_t *n,
                                      const char **why);

/* One address as above ("host:port"); 0, or -1 with *why. */
int dht_addr_check(const char *s, size_t len, const char **why);

/*
 * What to publish for a WANHosts string: its addresses that
 * dht_value_parse accepts, in order, within the limits, joined by ",".
 * Returns the length written to out (NUL-ended; 0 when none is
 * publishable) and counts in *dropped the items left out.
 */
size_t dht_value_make(const char *wanhosts, char *out, size_t outlen,
                      size_t *dropped);

/*
 * One line of an OpenDHT proxy's GET /key/<key> answer, a JSON object
 * {"data":"<base64>","id":"...","type":0} (other fields ignored). Decodes
 * data into buf (at most bufmax bytes). Returns the decoded length, or -1
 * when the line is not such an object, the data is not base64, or it
 * exceeds bufmax.
 */
long dht_proxy_line(const char *line, size_t len, unsigned char *buf,
                    size_t bufmax);

#endif /* HL_DHT_VALUE_H */
