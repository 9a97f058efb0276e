/* punchmsg.c: the punch probe codec (punchmsg.h). */
#include "punchmsg.h"

#include <string.h>

int
punchmsg_parse(const uint8_t *buf, size_t len, struct punchmsg *m)
{
	if (buf == NULL || len != PUNCHMSG_LEN || buf[0] != PUNCHMSG_MARK ||
	    buf[1] != PUNCHMSG_VERSION ||
	    (buf[2] != PUNCHMSG_PROBE && buf[2] != PUNCHMSG_ACK) || buf[3] != 0)
		return -1;
	m->type = buf[2];
	memcpy(m->txid, buf + 4, sizeof m->txid);
	memcpy(m->keyhash, buf + 12, sizeof m->keyhash);
	return 0;
}

void
punchmsg_format(const struct punchmsg *m, uint8_t out[PUNCHMSG_LEN])
{
	out[0] = PUNCHMSG_MARK;
	out[1] = PUNCHMSG_VERSION;
	out[2] = m->type;
	out[3] = 0;
	memcpy(out + 4, m->txid, sizeof m->txid);
	memcpy(out + 12, m->keyhash, sizeof m->keyhash);
}

size_t
punch_predict(const uint16_t *known, size_t n, uint16_t *out, size_t max)
{
	unsigned last = 0, delta = 0;
	size_t k = 0;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (known[i] > last)
			last = known[i];
		for (size_t j = 0; j < i; j++) {
			unsigned d = known[i] > known[j] ? known[i] - known[j]
			                                 : known[j] - known[i];
			if (d > 0 && d <= 64 && (delta == 0 || d < delta))
				delta = d;
		}
	}
	if (delta == 0)
		delta = 1;
	for (unsigned p = last, tries = 0; k < max && tries < 4 * max;
	     tries++) {
		int seen = 0;
		p += delta;
		if (p > 65535)
			p = 1024 + (p - 65536);
		for (size_t i = 0; i < n; i++)
			seen |= known[i] == p;
		for (size_t i = 0; i < k; i++)
			seen |= out[i] == p;
		if (!seen)
			out[k++] = (uint16_t)p;
	}
	return k;
}
