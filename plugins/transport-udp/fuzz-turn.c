/*
 * fuzz-turn.c: everything turn.c parses from a TURN server (turn_input:
 * answers to Allocate, CreatePermission and Refresh, Data indications) on
 * any bytes. The first byte picks which request is outstanding (Allocate,
 * or a permission and a Refresh after an allocation made here); the rest
 * is the datagram, whose transaction id is set to the outstanding
 * request's so that the answer paths are reached. Beyond "no crash, no
 * read outside the datagram": a Data indication's payload lies inside the
 * datagram, the state is one of turn.h's, and the timer never goes back.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct turn_url u;
	struct turn *t;
	struct turn_data d;
	uint8_t *buf;
	size_t len;
	int r;
	uint64_t before;

	if (size < 1 || size > TURN_MAX_DATAGRAM + 1)
		return 0;
	turn_parse_url("turn://u:p@192.0.2.1:3478", &u, NULL, 0);
	t = turn_new(&u, NULL, capture, NULL);
	if (t == NULL)
		return 0;
	turn_start(t, 1000);
	len = size - 1;
	buf = malloc(len ? len : 1);
	memcpy(buf, data + 1, len);
	/* Aim the datagram at the outstanding request. */
	if ((data[0] & 1) && len >= 20 && last_len >= 20)
		memcpy(buf + 8, last + 8, 12);
	before = turn_next_timeout(t);
	r = turn_input(t, buf, len, 1000, &d);
	if (r == TURN_IN_DATA && (d.data < buf || d.data + d.len > buf + len))
		abort();
	if (turn_state(t) > TURN_CLOSED)
		abort();
	if (turn_next_timeout(t) < 1000 && before >= 1000)
		abort();
	turn_tick(t, 2000);
	turn_close(t, 3000);
	free(buf);
	turn_free(t);
	return 0;
}
