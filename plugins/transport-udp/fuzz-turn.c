/*
 * fuzz-turn.c: everything turn.c parses from a TURN server (turn_input:
 * answers to Allocate, CreatePermission and Refresh, Data indications) on
 * any bytes. The first byte steers: bit 1 first brings the client to
 * TURN_READY with a confirmed permission for 11.0.0.2 (answers built here
 * with libnice's stunmessage API), bit 2 then puts a Refresh in flight,
 * bit 3 a CreatePermission; bit 0 copies the transaction id of the last
 * request into the datagram so that the answer paths are reached. The
 * rest is the datagram. Beyond "no crash, no read outside the datagram": a
 * Data indication's payload lies inside the datagram and comes from a
 * permitted peer, the state is one of turn.h's. The same bytes go to
 * turn_parse_url as a string: a URL it accepts has every part.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stun/stunagent.h>
#include <stun/stunmessage.h>

#include "turn.h"

static uint8_t last[4096];
static size_t last_len;

static void
capture(void *arg, const uint8_t *buf, size_t len)
{
	(void)arg;
	if (len > sizeof last)
		abort();
	memcpy(last, buf, len);
	last_len = len;
}

/* A success answer to the last request (no MESSAGE-INTEGRITY: the
 * requests before a 401 carry no credentials). */
static void
answer(struct turn *t, uint64_t now, int relay)
{
	StunAgent a;
	StunMessage m;
	StunTransactionId id;
	uint8_t buf[256];
	struct turn_data d;

	memset(&m, 0, sizeof m);
	m.agent = &a;
	m.buffer = buf;
	m.buffer_len = sizeof buf;
	memcpy(id, last + 4, sizeof id);
	if (!stun_message_init(&m, STUN_RESPONSE,
	                       (StunMethod)((last[0] << 8 | last[1]) & 0x3eef),
	                       id))
		abort();
	if (relay) {
		struct sockaddr_storage ss;
		struct sockaddr_in *r = (struct sockaddr_in *)&ss;

		memset(&ss, 0, sizeof ss);
		r->sin_family = AF_INET;
		r->sin_port = htons(49152);
		inet_pton(AF_INET, "192.0.2.1", &r->sin_addr);
		stun_message_append_xor_addr(&m, STUN_ATTRIBUTE_RELAY_ADDRESS,
		                             &ss, sizeof *r);
		stun_message_append32(&m, STUN_ATTRIBUTE_LIFETIME, 600);
	}
	turn_input(t, buf, stun_message_length(&m), now, &d);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct turn_url u;
	struct turn *t;
	struct turn_data d;
	struct sockaddr_in peer;
	uint8_t *buf;
	size_t len;
	int r;

	if (size < 1 || size > TURN_MAX_DATAGRAM + 1)
		return 0;
	turn_parse_url("turn://u:p@192.0.2.1:3478", &u, NULL, 0);
	t = turn_new(&u, NULL, capture, NULL);
	if (t == NULL)
		return 0;
	memset(&peer, 0, sizeof peer);
	peer.sin_family = AF_INET;
	inet_pton(AF_INET, "11.0.0.2", &peer.sin_addr);
	turn_start(t, 1000);
	if (data[0] & 2) {
		answer(t, 1000, 1);
		if (turn_state(t) != TURN_READY)
			abort();
		turn_permit(t, (struct sockaddr *)&peer, sizeof peer, 1000);
		answer(t, 1000, 0);
		if (!turn_permitted(t, (struct sockaddr *)&peer))
			abort();
		if (data[0] & 4)
			turn_tick(t, 1000 + 541 * 1000);
		if (data[0] & 8) {
			struct sockaddr_in other = peer;

			other.sin_addr.s_addr ^= htonl(1);
			turn_permit(t, (struct sockaddr *)&other, sizeof other,
			            1000);
		}
	}
	len = size - 1;
	/* The URL parser too, on the same bytes as a string. */
	buf = malloc(len + 1);
	memcpy(buf, data + 1, len);
	buf[len] = 0;
	if (turn_parse_url((const char *)buf, &u, NULL, 0) == 0 &&
	    (u.user[0] == 0 || u.pass[0] == 0 || u.host[0] == 0 || u.port == 0))
		abort();
	if ((data[0] & 1) && len >= 20 && last_len >= 20)
		memcpy(buf + 8, last + 8, 12);
	r = turn_input(t, buf, len, 1000, &d);
	if (r == TURN_IN_DATA &&
	    (d.data < buf || d.data + d.len > buf + len ||
	     !turn_permitted(t, (struct sockaddr *)&d.peer)))
		abort();
	if (turn_state(t) > TURN_CLOSING)
		abort();
	turn_tick(t, 2000);
	turn_close(t, 3000);
	free(buf);
	turn_free(t);
	return 0;
}
