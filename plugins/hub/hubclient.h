/*
 * hubclient.h: the node's side of the hub, for transport-udp (or any
 * program): this host's candidates, STUN binding requests and their
 * answers (server-reflexive candidates), what two answers say about the
 * NAT, and the messages a node sends to a hub, REGISTER signed.
 *
 * No libevent and no sockets: the caller sends and receives on its own UDP
 * socket (the one its QUIC uses, so that hubs and STUN servers see the
 * mapping a punch will use), and demultiplexes with hubmsg_demux(). Uses
 * hubmsg.c, hubauth.c (OpenSSL) and libnice's loop-agnostic stun library
 * (pkg-config "nice").
 */
#ifndef HL_HUBCLIENT_H
#define HL_HUBCLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <stun/stunagent.h>

#include "hubmsg.h"

/*
 * Host candidates: the addresses of this host's interfaces that are up
 * and not loopback: IPv4, and IPv6 other than link-local; family
 * AF_INET, AF_INET6 or AF_UNSPEC (both). Each with `port` and kind
 * HUBMSG_CAND_HOST, without duplicates, at most max. Returns the count.
 */
size_t hubclient_host_candidates(int family, uint16_t port,
                                 struct hubmsg_cand *out, size_t max);

/* One STUN binding transaction (RFC 8489), the request in buf[0..len). */
struct hubclient_stun {
	StunAgent agent;
	StunMessage req;
	uint8_t buf[64];
	size_t len;
};

/* Make a new binding request in s (a fresh transaction id); its length
 * (s->len), or 0. */
size_t hubclient_stun_request(struct hubclient_stun *s);

/* The same with a CHANGE-REQUEST (RFC 5780): answer from another address
 * (HUBCLIENT_CHANGE_IP) and/or port (HUBCLIENT_CHANGE_PORT). */
#define HUBCLIENT_CHANGE_IP 0x4u
#define HUBCLIENT_CHANGE_PORT 0x2u
size_t hubclient_stun_request_change(struct hubclient_stun *s, uint32_t change);

/* 0 when the datagram buf[0..len) is a binding success answering s, with
 * its XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) in *mapped and, when other is
 * not NULL, its OTHER-ADDRESS (RFC 5780: where the server answers
 * CHANGE-REQUESTs from; family 0 when none) in *other; else -1 (not an
 * answer to s, an error answer, no address). */
int hubclient_stun_answer(struct hubclient_stun *s, const uint8_t *buf,
                          size_t len, struct hubmsg_addr *mapped);
int hubclient_stun_answer_other(struct hubclient_stun *s, const uint8_t *buf,
                                size_t len, struct hubmsg_addr *mapped,
                                struct hubmsg_addr *other);

/* What a NAT does with one local socket, from the addresses two STUN
 * servers (or hubs) at different addresses saw it at. */
enum hubclient_nat {
	HUBCLIENT_NAT_UNKNOWN = 0, /* an answer missing */
	HUBCLIENT_NAT_NONE = 1, /* seen at the local address itself */
	HUBCLIENT_NAT_CONE = 2, /* one mapping for every destination */
	HUBCLIENT_NAT_SYMMETRIC = 3, /* a mapping per destination */
};

/* local: the socket's own address (family 0 when not known: NONE is then
 * never the answer); m1, m2: what the two servers saw (family 0: no
 * answer). */
int hubclient_nat_kind(const struct hubmsg_addr *local,
                       const struct hubmsg_addr *m1,
                       const struct hubmsg_addr *m2);
const char *hubclient_nat_name(int kind);

/*
 * A REGISTER (docs/protocol.md, "Hub messages") into out: keyhash (20
 * raw bytes), the hub's nonce, the service's certificate (DER) and its
 * private key (PEM: signs, never sent), hub_addr as the node dialed the
 * hub, and its candidates. Returns the length, or 0 (a key that cannot
 * sign, a certificate over 1100 bytes, out too small).
 */
size_t hubclient_register(uint8_t *out, size_t cap,
                          const uint8_t txid[HUBMSG_TXID_LEN],
                          const uint8_t keyhash[20],
                          const uint8_t nonce[HUBMSG_NONCE_LEN],
                          const uint8_t *cert_der, size_t cert_len,
                          const char *key_pem, const char *hub_addr,
                          const struct hubmsg_cand *cands, size_t ncands);

/*
 * The other messages a node sends: CHALLENGE_REQ, KEEPALIVE (token from
 * REGISTERED; candidates replace the registered ones when ncands > 0)
 * and LOOKUP (padded to 80 bytes, so that the hub's answer may carry
 * all 8 candidates). Each returns the length written into out, or 0.
 */
size_t hubclient_challenge_req(uint8_t *out, size_t cap,
                               const uint8_t txid[HUBMSG_TXID_LEN],
                               const uint8_t keyhash[20]);
size_t hubclient_keepalive(uint8_t *out, size_t cap,
                           const uint8_t txid[HUBMSG_TXID_LEN],
                           const uint8_t keyhash[20],
                           const uint8_t token[HUBMSG_TOKEN_LEN],
                           const struct hubmsg_cand *cands, size_t ncands);
size_t hubclient_lookup(uint8_t *out, size_t cap,
                        const uint8_t txid[HUBMSG_TXID_LEN],
                        const uint8_t keyhash[20],
                        const struct hubmsg_cand *cands, size_t ncands);

#endif /* HL_HUBCLIENT_H */
