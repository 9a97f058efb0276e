/*
 * lanpacket.h: the Hardline LAN discovery packets (docs/protocol.md, "LAN
 * discovery"), parsed and formatted with every length bounded, and the
 * day's rolling code. No sockets, no state: the fuzz target links only
 * this.
 */
#ifndef HL_LANPACKET_H
#define HL_LANPACKET_H

#include <stddef.h>
#include <stdint.h>

/* A datagram longer than this is dropped unread (the original reads 4096;
 * ours are a few hundred bytes). */
#define LAN_PACKET_MAX 2048
/* At most this many lines up to the blank line that ends the head. */
#define LAN_LINES_MAX 24
#define LAN_PASSWORD_MAX 22
#define LAN_INFOHASH_MAX (LAN_PASSWORD_MAX + 1 + 40) /* "<pw>-<hash>" */
#define LAN_COOKIE_MAX 96
#define LAN_TITLE_MAX 127 /* longer titles are cut at a character */

enum lan_kind {
	LAN_SEARCH = 1, /* HARDLINE-SEARCH */
	LAN_SERVICE = 2, /* HARDLINE-SERVICE, an announce */
};

struct lan_packet {
	int kind;
	/*
	 * SEARCH: "" (every service) or 40 lowercase hex (a rolling code or
	 * a raw keyhash). SERVICE: "<password>-<hash>" with the hash in
	 * lowercase; a bare hash is read as "-<hash>".
	 */
	char infohash[LAN_INFOHASH_MAX + 1];
	char password[LAN_PASSWORD_MAX + 1]; /* SERVICE: "" when none */
	char keyhash[41]; /* SERVICE: 40 lowercase hex */
	char cookie[LAN_COOKIE_MAX + 1]; /* "" when absent */
	char title[LAN_TITLE_MAX + 1]; /* SERVICE; control chars -> ? */
	int port; /* SERVICE: 1..65535 */
};

/*
 * Parse one datagram. Returns 0 and fills *p, or -1 with *why set to a
 * short static reason (for the debug log) when the packet is malformed:
 * too big, not CRLF, an unknown first line, too many or too long lines,
 * a field repeated, a bad Infohash or Port. Field names are read in any
 * case; unknown fields are ignored.
 */
int lan_parse(const unsigned char *buf, size_t len, struct lan_packet *p,
              const char **why);

/*
 * Format a search or an announce exactly as the original does (field
 * names and their case, CRLF, the trailing blank lines). Returns the
 * length, or 0 when it does not fit in cap or a field is not valid.
 * Control characters in title become spaces, so a title can never add a
 * line.
 */
size_t lan_format_search(char *out, size_t cap, const char *infohash,
                         const char *cookie);
size_t lan_format_service(char *out, size_t cap, int port, const char *infohash,
                          const char *cookie, const char *title);

/* 40 hex characters (any case) to 20 bytes; 0, or -1. */
int lan_hex20(const char *hex, unsigned char raw[20]);

/*
 * The rolling code of a keyhash for a UTC day (unix time / 86400):
 * BLAKE2b-256(raw20 || uint64_le(day)), first 20 bytes, lowercase hex.
 */
void lan_rolling_code(const unsigned char raw[20], uint64_t day, char out[41]);

#endif /* HL_LANPACKET_H */
