/*
 * hubauth.h: the proof of a key in a hub registration (docs/protocol.md,
 * "Hub messages", REGISTER): a signature, by the service's key, over
 * hubmsg_signed_data(). OpenSSL only, no libevent and no state, so that
 * transport-udp (which signs) can compile this file as the hub (which
 * verifies) does.
 *
 * Key types and signature schemes: ECDSA (P-256, P-384, P-521) with
 * SHA-256, the signature DER-encoded (what hlcore's new keys use); RSA of
 * 2048 bits or more, PKCS #1 v1.5 with SHA-256 (Python Hardline's keys);
 * Ed25519. Nothing else is accepted.
 */
#ifndef HL_HUBAUTH_H
#define HL_HUBAUTH_H

#include <stddef.h>
#include <stdint.h>

/* 0 when sig is a valid signature of data[0..len) by the public key of the
 * DER certificate cert[0..cert_len) (which must be exactly one
 * certificate, nothing after it); else -1 with *why set to a few static
 * words. Leaves OpenSSL's error queue empty. */
int hubauth_verify(const uint8_t *cert, size_t cert_len, const uint8_t *sig,
                   size_t sig_len, const uint8_t *data, size_t len,
                   const char **why);

/* Sign data[0..len) with the PEM private key key_pem into sig (cap bytes;
 * 512 are always enough). Returns the signature's length, or 0. */
size_t hubauth_sign(const char *key_pem, const uint8_t *data, size_t len,
                    uint8_t *sig, size_t cap);

#endif /* HL_HUBAUTH_H */
