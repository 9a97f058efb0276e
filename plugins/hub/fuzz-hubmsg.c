/*
 * fuzz-hubmsg.c: the hub's message parser (hubmsg_parse) and formatter on
 * any bytes, and the node's STUN answer parser (hubclient_stun_answer). Beyond
 * "no crash, no read outside the datagram", it checks what the hub relies on: a
 * parsed message has every attribute its type requires and none it forbids,
 * bounded lengths and well-formed addresses; formatting it gives a message that
 * parses to the same fields, and formatting that again gives the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hubclient.h"
#include "hubmsg.h"

static void
same(const struct hubmsg *a, const struct hubmsg *b)
{
	if (a->type != b->type || a->have != b->have ||
	    a->ncands != b->ncands || memcmp(a->txid, b->txid, 8) != 0 ||
	    memcmp(a->keyhash, b->keyhash, 20) != 0 ||
	    a->cert_len != b->cert_len || a->sig_len != b->sig_len ||
	    a->text_len != b->text_len ||
	    strcmp(a->hub_addr, b->hub_addr) != 0 ||
	    a->lifetime != b->lifetime || a->refresh != b->refresh ||
	    a->error != b->error)
		abort();
	if ((a->have & HUBMSG_BIT(HUBMSG_A_OBSERVED)) &&
	    !hubmsg_addr_eq(&a->observed, &b->observed))
		abort();
	for (size_t i = 0; i < a->ncands; i++)
		if (a->cands[i].kind != b->cands[i].kind ||
		    !hubmsg_addr_eq(&a->cands[i].addr, &b->cands[i].addr))
			abort();
	if (a->cert_len && memcmp(a->cert, b->cert, a->cert_len) != 0)
		abort();
	if (a->sig_len && memcmp(a->sig, b->sig, a->sig_len) != 0)
		abort();
}

/* A datagram that says STUN goes to the node's STUN answer parser
 * (hubclient.c over libnice), with the request's transaction id patched
 * in so that the fuzzer gets past the transaction check. */
static void
stun(const uint8_t *data, size_t size)
{
	static struct hubclient_stun s;
	static int ready;
	uint8_t buf[HUBMSG_MAX];
	struct hubmsg_addr a;

	if (size < 20 || size > sizeof buf)
		return;
	if (!ready) {
		hubclient_stun_request(&s);
		ready = 1;
	}
	memcpy(buf, data, size);
	memcpy(buf + 4, s.buf + 4, 16); /* magic cookie and transaction id */
	if (hubclient_stun_answer(&s, buf, size, &a) == 0 &&
	    (a.port == 0 || (a.family != 4 && a.family != 6)))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hubmsg m, m2;
	const char *why = NULL;
	uint8_t out[HUBMSG_MAX], out2[HUBMSG_MAX];
	size_t n, n2;
	char s[64];

	if (hubmsg_demux(data, size) == 2)
		stun(data, size);
	if (hubmsg_parse(data, size, &m, &why) != 0) {
		if (why == NULL)
			abort();
		return 0;
	}
	if (size > HUBMSG_MAX || m.ncands > HUBMSG_CANDS_MAX ||
	    m.cert_len > HUBMSG_CERT_MAX || m.sig_len > HUBMSG_SIG_MAX ||
	    m.text_len > HUBMSG_TEXT_MAX ||
	    strlen(m.hub_addr) > HUBMSG_HUBADDR_MAX ||
	    hubmsg_demux(data, size) != 1)
		abort();
	if (m.cert != NULL &&
	    (m.cert < data || m.cert + m.cert_len > data + size))
		abort();
	if (m.ncands > 0)
		hubmsg_addr_str(&m.cands[0].addr, s, sizeof s);
	n = hubmsg_format(&m, out, sizeof out);
	/* Skipped attributes (0x80 up) are not formatted again, so the
	 * length may shrink; never grow. */
	if (n == 0 || n > size)
		abort();
	if (hubmsg_parse(out, n, &m2, &why) != 0)
		abort();
	same(&m, &m2);
	n2 = hubmsg_format(&m2, out2, sizeof out2);
	if (n2 != n || memcmp(out, out2, n) != 0)
		abort();
	return 0;
}
