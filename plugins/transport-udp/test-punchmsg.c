/*
 * test-punchmsg: the punch probe (docs/protocol.md, "Punch probes")
 * against its test vectors, byte for byte both ways, and what the parser
 * refuses.
 */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "punchmsg.h"

#define KH "4edde683894d49d6c60b396ebe3c05deb97d4ab3"

static const char probe_hex[] = "0c010100"
                                "0001020304050607" KH;
static const char ack_hex[] = "0c010200"
                              "0001020304050607" KH;

static void
test_vector(const char *hex, uint8_t type)
{
	uint8_t want[64], got[PUNCHMSG_LEN];
	size_t n = check_unhex(hex, want, sizeof want);
	struct punchmsg m = {type, {0, 1, 2, 3, 4, 5, 6, 7}, {0}}, p;
	uint8_t *exact;

	check_unhex(KH, m.keyhash, sizeof m.keyhash);
	CHECK_INT(n, PUNCHMSG_LEN);
	punchmsg_format(&m, got);
	CHECK(memcmp(got, want, PUNCHMSG_LEN) == 0, "%s formatted", hex);
	exact = check_exact(want, n);
	CHECK(punchmsg_parse(exact, n, &p) == 0 && p.type == type &&
	          memcmp(p.txid, m.txid, 8) == 0 &&
	          memcmp(p.keyhash, m.keyhash, 20) == 0,
	      "%s parsed", hex);
	free(exact);
}

static void
test_refused(void)
{
	uint8_t good[PUNCHMSG_LEN], b[PUNCHMSG_LEN + 1];
	struct punchmsg p;

	check_unhex(probe_hex, good, sizeof good);
	CHECK(punchmsg_parse(good, PUNCHMSG_LEN - 1, &p) != 0, "short");
	memcpy(b, good, PUNCHMSG_LEN);
	b[PUNCHMSG_LEN] = 0;
	CHECK(punchmsg_parse(b, PUNCHMSG_LEN + 1, &p) != 0, "long");
	for (int i = 0; i < 4; i++) {
		memcpy(b, good, PUNCHMSG_LEN);
		b[i] ^= 0x40; /* mark, version, type 0x41, flags */
		CHECK(punchmsg_parse(b, PUNCHMSG_LEN, &p) != 0, "byte %d", i);
	}
	memcpy(b, good, PUNCHMSG_LEN);
	b[2] = 3;
	CHECK(punchmsg_parse(b, PUNCHMSG_LEN, &p) != 0, "type 3");
	CHECK(punchmsg_parse(NULL, 0, &p) != 0, "nothing");
}

int
main(void)
{
	test_vector(probe_hex, PUNCHMSG_PROBE);
	test_vector(ack_hex, PUNCHMSG_ACK);
	test_refused();
	return check_done();
}
