/*
 * hubmsg.h: the rendezvous hub's messages (docs/protocol.md, "Hub
 * messages"): one UDP datagram each, a 12-byte head and typed attributes.
 *
 * This codec is plain C11 with no libevent, no OpenSSL and no state: the
 * hub plugin uses it for the hub's side and transport-udp compiles the
 * same file for the node's side. hubmsg_parse() is bounded (it reads
 * nothing outside buf[0..len)), fuzzed (fuzz-hubmsg) and strict: a datagram
 * it refuses is to be dropped and counted, never answered.
 */
#ifndef HL_HUBMSG_H
#define HL_HUBMSG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The first byte of every hub message: in the range 4..15 that RFC 7983
 * (and RFC 9443) leave to nobody, so one UDP socket tells it from STUN
 * (0..3), DTLS, TURN channels and QUIC. */
#define HUBMSG_MARK 0x0b
#define HUBMSG_VERSION 1
#define HUBMSG_HEAD 12 /* mark, version, type, flags, txid[8] */
#define HUBMSG_MAX 1400 /* bytes in one datagram, head included */
#define HUBMSG_CANDS_MAX 8
#define HUBMSG_CERT_MAX 1100
#define HUBMSG_SIG_MAX 512
#define HUBMSG_HUBADDR_MAX 255
#define HUBMSG_TEXT_MAX 1200
#define HUBMSG_NONCE_LEN 16
#define HUBMSG_TOKEN_LEN 16
#define HUBMSG_TXID_LEN 8

/* Message types. */
enum hubmsg_type {
	HUBMSG_CHALLENGE_REQ = 1, /* node -> hub: a nonce, please */
	HUBMSG_CHALLENGE = 2, /* hub -> node: the nonce */
	HUBMSG_REGISTER = 3, /* node -> hub: certificate + signature */
	HUBMSG_REGISTERED = 4, /* hub -> node: token, observed address */
	HUBMSG_KEEPALIVE = 5, /* node -> hub: token */
	HUBMSG_KEEPALIVE_ACK = 6, /* hub -> node: observed address */
	HUBMSG_LOOKUP = 7, /* client -> hub: keyhash + own candidates */
	HUBMSG_LOOKUP_ANSWER = 8, /* hub -> client: the service's */
	HUBMSG_INTRO = 9, /* hub -> service node: the client's */
	HUBMSG_STATUS_REQ = 10, /* loopback -> hub */
	HUBMSG_STATUS = 11, /* hub -> loopback: counters (JSON text) */
	HUBMSG_ERROR = 15, /* hub -> node or client */
	HUBMSG_TYPE_MAX = 15,
};

/* Attribute types; each is also a bit (1 << type) in hubmsg.have. */
enum hubmsg_attr {
	HUBMSG_A_KEYHASH = 1, /* 20 bytes */
	HUBMSG_A_NONCE = 2, /* 16 bytes */
	HUBMSG_A_TOKEN = 3, /* 16 bytes */
	HUBMSG_A_CERT = 4, /* 1..1100: the certificate, DER */
	HUBMSG_A_SIGNATURE = 5, /* 1..512 */
	HUBMSG_A_HUB_ADDR = 6, /* 1..255: "host:port", as the node dialed */
	HUBMSG_A_OBSERVED = 7, /* 7 or 19: an address (see hubmsg_addr) */
	HUBMSG_A_CANDIDATE = 8, /* 8 or 20: kind + address; up to 8 */
	HUBMSG_A_LIFETIME = 9, /* 2: seconds a silent registration lasts */
	HUBMSG_A_REFRESH = 10, /* 2: seconds between keep-alives */
	HUBMSG_A_ERROR = 11, /* 2: an error code */
	HUBMSG_A_TEXT = 12, /* 0..1200: UTF-8 text (status) */
};

#define HUBMSG_BIT(a) (1u << (a))

/* Candidate kinds (ICE's words). */
enum hubmsg_cand_kind {
	HUBMSG_CAND_HOST = 1, /* an address of the node's own interfaces */
	HUBMSG_CAND_SRFLX = 2, /* server-reflexive: seen by a STUN server */
	HUBMSG_CAND_MAPPED = 3, /* mapped on the router (UPnP, NAT-PMP) */
	HUBMSG_CAND_RELAY = 4, /* a TURN allocation */
};

/* Error codes (HUBMSG_A_ERROR). */
enum hubmsg_error {
	HUBMSG_E_NOT_FOUND = 1, /* lookup: no node registered that keyhash */
	HUBMSG_E_BAD_NONCE = 2, /* register: unknown, used or stale nonce */
	HUBMSG_E_BAD_PROOF = 3, /* register: certificate or signature */
	HUBMSG_E_BAD_HUB = 4, /* register: HUB_ADDR is not this hub */
	HUBMSG_E_UNKNOWN = 5, /* keep-alive: register again */
	HUBMSG_E_FULL = 6, /* the hub's table is full: try another hub */
};

/* An IP address and port. family 4 or 6 (0: none); ip in network order,
 * 4 or 16 bytes used. On the wire: family (1), port (2, big-endian), ip. */
struct hubmsg_addr {
	uint8_t family;
	uint16_t port;
	uint8_t ip[16];
};

struct hubmsg_cand {
	uint8_t kind; /* enum hubmsg_cand_kind */
	struct hubmsg_addr addr;
};

/* One message, parsed or to be formatted. Pointers (cert, sig, text)
 * point into the parsed datagram and live as long as it does. */
struct hubmsg {
	uint8_t type;
	uint8_t txid[HUBMSG_TXID_LEN]; /* chosen by the asker, echoed back */
	uint32_t have; /* HUBMSG_BIT(attr) of every attribute present */
	uint8_t keyhash[20];
	uint8_t nonce[HUBMSG_NONCE_LEN];
	uint8_t token[HUBMSG_TOKEN_LEN];
	const uint8_t *cert;
	size_t cert_len;
	const uint8_t *sig;
	size_t sig_len;
	char hub_addr[HUBMSG_HUBADDR_MAX + 1];
	struct hubmsg_addr observed;
	struct hubmsg_cand cands[HUBMSG_CANDS_MAX];
	size_t ncands; /* HUBMSG_A_CANDIDATE is in have when ncands > 0 */
	uint16_t lifetime, refresh, error;
	const char *text; /* not NUL-ended */
	size_t text_len;
};

/* 1 when a datagram's first byte says it is a hub message, 2 when it
 * says STUN (RFC 7983: 0..3), else 0. */
int hubmsg_demux(const uint8_t *buf, size_t len);

/*
 * Parse one datagram. Returns 0 with *m filled, or -1 with *why set to a
 * few static words ("bad version", "duplicate attribute", ...). Refused:
 * anything over HUBMSG_MAX, a wrong mark, version or non-zero flags, an
 * unknown type, an attribute running past the end, a known attribute
 * with a wrong length or value, twice (CANDIDATE: more than 8), or not
 * allowed in that type, a missing required attribute, an unknown
 * attribute below 0x80. Unknown attributes from 0x80 up are skipped.
 */
int hubmsg_parse(const uint8_t *buf, size_t len, struct hubmsg *m,
                 const char **why);

/*
 * Write m (type, txid and the attributes in m->have, in ascending type
 * order, candidates in their order) into out. Returns the length, or 0
 * when cap is too small or m would not parse (a missing required
 * attribute, a bad length, too many candidates).
 */
size_t hubmsg_format(const struct hubmsg *m, uint8_t *out, size_t cap);

/*
 * The bytes a REGISTER signs: "hardline-hub-register-v1", a zero byte,
 * the nonce, the 20 raw keyhash bytes, one byte giving the length of
 * hub_addr, and hub_addr. Returns the length (at most 317), or 0 when
 * hub_addr is too long or out too small.
 */
#define HUBMSG_SIGNED_MAX (25 + HUBMSG_NONCE_LEN + 20 + 1 + HUBMSG_HUBADDR_MAX)
size_t hubmsg_signed_data(const uint8_t nonce[HUBMSG_NONCE_LEN],
                          const uint8_t keyhash[20], const char *hub_addr,
                          uint8_t *out, size_t cap);

/* Between socket addresses and hubmsg_addr (IPv4-mapped IPv6 addresses
 * become family 4). from: 0, or -1 for another family; to: the length
 * written into ss. */
int hubmsg_addr_from_sa(struct hubmsg_addr *a, const struct sockaddr *sa);
socklen_t hubmsg_addr_to_sa(const struct hubmsg_addr *a,
                            struct sockaddr_storage *ss);
/* "ip:port" or "[v6]:port" into out (54 bytes are always enough). */
void hubmsg_addr_str(const struct hubmsg_addr *a, char *out, size_t outlen);
int hubmsg_addr_eq(const struct hubmsg_addr *a, const struct hubmsg_addr *b);

const char *hubmsg_type_name(int type);

#endif /* HL_HUBMSG_H */
