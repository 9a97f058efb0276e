/*
 * punchmsg.h: the punch probe (docs/protocol.md, "Punch probes"): what two
 * nodes send each other's candidate addresses, from their QUIC sockets, to
 * open their NATs before the QUIC handshake. 32 bytes:
 *
 *   0x0c  version (1)  type (1 PROBE, 2 ACK)  flags (0)
 *   txid (8: the hub LOOKUP's, which the INTRO carried)
 *   keyhash (20, raw)
 *
 * The first byte is in the range 4..15 that RFC 7983 (and RFC 9443) leave
 * unassigned, beside the hub's 0x0b, so the one UDP socket tells it from
 * STUN, hub messages and QUIC. Plain C, no state; punchmsg_parse() is
 * bounded and fuzzed (fuzz-punchmsg).
 */
#ifndef HL_PUNCHMSG_H
#define HL_PUNCHMSG_H

#include <stddef.h>
#include <stdint.h>

#define PUNCHMSG_MARK 0x0c
#define PUNCHMSG_VERSION 1
#define PUNCHMSG_LEN 32
#define PUNCHMSG_PROBE 1
#define PUNCHMSG_ACK 2

struct punchmsg {
	uint8_t type; /* PUNCHMSG_PROBE or PUNCHMSG_ACK */
	uint8_t txid[8];
	uint8_t keyhash[20];
};

/* 0 with *m filled when buf[0..len) is exactly one probe or ack of this
 * version with flags 0; else -1. Reads nothing outside buf[0..len). */
int punchmsg_parse(const uint8_t *buf, size_t len, struct punchmsg *m);

/* m into out (PUNCHMSG_LEN bytes). */
void punchmsg_format(const struct punchmsg *m, uint8_t out[PUNCHMSG_LEN]);

/*
 * Port prediction for a NAT that maps each destination anew (symmetric):
 * the ports it is likely to give next, from the ports it was seen to give
 * (known[0..n): toward the hub, toward a TURN server or another hub). A
 * NAT that allocates in sequence gives the next mapping last + delta,
 * delta the smallest gap seen (1 when only one port is known); up to max
 * such ports (1024..65535, wrapping), none twice and none of known. The
 * birthday approach's random probes follow them: against a NAT that picks
 * at random these cost one tick of probes.
 */
size_t punch_predict(const uint16_t *known, size_t n, uint16_t *out,
                     size_t max);

#endif /* HL_PUNCHMSG_H */
