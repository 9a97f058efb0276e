/*
 * punchctl.h: the lines of `hlcore punch`'s control stream (docs/
 * protocol.md, "Punch control stream"), carried by a QUIC stream with
 * ALPN "hardline-punch" (the certificate pinned by keyhash, so the
 * password inside never crosses the network in clear). One line each,
 * ASCII, LF-ended, at most PUNCHCTL_LINE_MAX bytes before the LF:
 *
 *   client -> service:  HELLO 1 <txid: 16 hex> <password, or "-">
 *   service -> client:  OK | NO <reason: password, forbidden, busy...>
 *   both ways:          CANDS [<kind> <ip:port>]...   (at most 8)
 *                       READY <ip:port: where this side saw the other>
 *                       FAIL <why, printable text>
 *
 * Plain C, no state: punchctl_parse() reads nothing outside the line and
 * is fuzzed (fuzz-punchctl); punchctl_format() writes what parses back
 * to the same message.
 */
#ifndef HL_PUNCHCTL_H
#define HL_PUNCHCTL_H

#include <stddef.h>
#include <stdint.h>

#include "hubmsg.h"

#define PUNCHCTL_VERSION 1
#define PUNCHCTL_LINE_MAX 512
#define PUNCHCTL_CANDS_MAX 8
#define PUNCHCTL_PASSWORD_MAX 22
#define PUNCHCTL_TEXT_MAX 200
#define PUNCHCTL_REASON_MAX 32
#define PUNCHCTL_ALPN "hardline-punch"

enum punchctl_type {
	PUNCHCTL_HELLO = 1,
	PUNCHCTL_OK = 2,
	PUNCHCTL_NO = 3,
	PUNCHCTL_CANDS = 4,
	PUNCHCTL_READY = 5,
	PUNCHCTL_FAIL = 6,
};

struct punchctl {
	int type;
	uint8_t txid[8]; /* HELLO: the probes' txid */
	char password[PUNCHCTL_PASSWORD_MAX + 1]; /* HELLO: "" for none */
	char text[PUNCHCTL_TEXT_MAX + 1]; /* NO: the reason; FAIL: why */
	struct hubmsg_cand cands[PUNCHCTL_CANDS_MAX]; /* CANDS */
	size_t ncands;
	struct hubmsg_addr addr; /* READY */
};

/* 0 with *m filled when line[0..len) (without its LF) is one valid
 * line; else -1. */
int punchctl_parse(const char *line, size_t len, struct punchctl *m);

/* m as one line with its LF, NUL-ended, into out: its length, or 0 when
 * m is not valid or out is too small. */
size_t punchctl_format(const struct punchctl *m, char *out, size_t cap);

/* A service's label as `hlcore connect` takes it: "<password>-<keyhash>"
 * with ".localhost" (and a final dot) allowed after it. 0 with the
 * password ("" for none) and the keyhash (lowercase), or -1. */
int punchctl_label(const char *label, char password[PUNCHCTL_PASSWORD_MAX + 1],
                   char keyhash[41]);

/* "host", "srflx", "mapped", "relay", or NULL; and back (0: unknown). */
const char *punchctl_kind_name(uint8_t kind);
uint8_t punchctl_kind_parse(const char *s, size_t len);

#endif /* HL_PUNCHCTL_H */
