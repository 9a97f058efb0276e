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

/* Port prediction: the next ports of a sequential NAT. */
static void
test_predict(void)
{
	uint16_t out[8];
	const uint16_t one[] = {40000}, two[] = {40010, 40006},
	               wrap[] = {65534}, far[] = {2000, 50000};

	CHECK_INT(punch_predict(one, 1, out, 3), 3);
	CHECK(out[0] == 40001 && out[1] == 40002 && out[2] == 40003,
	      "one port: the next ones (%u %u %u)", out[0], out[1], out[2]);
	/* Two mappings 4 apart: the NAT steps by 4, from the highest. */
	CHECK_INT(punch_predict(two, 2, out, 2), 2);
	CHECK(out[0] == 40014 && out[1] == 40018, "step 4 (%u %u)", out[0],
	      out[1]);
	CHECK_INT(punch_predict(wrap, 1, out, 3), 3);
	CHECK(out[0] == 65535 && out[1] == 1024 && out[2] == 1025,
	      "wraps past 65535 to 1024 (%u %u %u)", out[0], out[1], out[2]);
	/* A gap too wide to be a step (a random NAT): step 1. */
	CHECK_INT(punch_predict(far, 2, out, 1), 1);
	CHECK_INT(out[0], 50001);
	CHECK_INT(punch_predict(one, 0, out, 8), 0);
}

int
main(void)
{
	test_predict();
	test_vector(probe_hex, PUNCHMSG_PROBE);
	test_vector(ack_hex, PUNCHMSG_ACK);
	test_refused();
	return check_done();
}
