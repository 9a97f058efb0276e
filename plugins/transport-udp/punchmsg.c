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
