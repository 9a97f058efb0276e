/*
 * socks.c: the SOCKS5 front's parser (RFC 1928): the greeting and the
 * request, from a local client's first bytes. Pure functions: bounded by
 * the length given, no allocation, no I/O, so that they are unit-tested
 * and fuzzed on their own. Only "no authentication" and CONNECT to a
 * Hardline name are accepted; everything else gets its refusal code.
 */
#include <string.h>

#include "hl.h"

#define SOCKS_VERSION 5
#define METHOD_NONE 0x00
#define CMD_CONNECT 1
#define ATYP_IPV4 1
#define ATYP_NAME 3
#define ATYP_IPV6 4

/* How every message from the client starts: the version byte, then a
 * head of n bytes in all (the version included). 1 when the head is all
 * there, 0 to wait for more, -1 when it is not SOCKS5. */
static int
have_head(const unsigned char *buf, size_t len, size_t n)
{
	if (len < 1)
		return 0;
	if (buf[0] != SOCKS_VERSION)
		return -1;
	return len >= n;
}

int
hl__socks_greeting(const unsigned char *buf, size_t len, size_t *used)
{
	int head = have_head(buf, len, 2);
	size_t n;

	*used = 0;
	if (head <= 0)
		return head;
	n = buf[1];
	if (n == 0)
		return -1; /* no method at all: nothing to choose */
	if (len < 2 + n)
		return 0;
	*used = 2 + n;
	return memchr(buf + 2, METHOD_NONE, n) != NULL ? 1 : 2;
}

/* A host name's characters: letters, digits, '-', '.' (and '_', which
 * some names carry); never ':', a space or a NUL. */
static int
name_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_'))
			return 0;
	}
	return n > 0;
}

int
hl__socks_request(const unsigned char *buf, size_t len, size_t *used,
                  struct hl__socks_request *req)
{
	int head = have_head(buf, len, 4);
	size_t addrlen, need;

	*used = 0;
	memset(req, 0, sizeof *req);
	if (head <= 0)
		return head;
	if (buf[2] != 0)
		return -1;
	req->cmd = buf[1];
	req->atyp = buf[3];
	switch (req->atyp) {
	case ATYP_IPV4:
		addrlen = 4;
		break;
	case ATYP_IPV6:
		addrlen = 16;
		break;
	case ATYP_NAME:
		if (len < 5)
			return 0;
		addrlen = 1 + (size_t)buf[4];
		break;
	default:
		/* Its length is unknown: refuse at once. */
		*used = 4;
		req->rep = HL_SOCKS_ADDRESS_NOT_SUPPORTED;
		return 1;
	}
	need = 4 + addrlen + 2;
	if (len < need)
		return 0;
	*used = need;
	req->port = (uint16_t)(buf[need - 2] << 8 | buf[need - 1]);
	if (req->atyp == ATYP_NAME) {
		memcpy(req->name, buf + 5, addrlen - 1);
		req->name[addrlen - 1] = '\0';
	}
	if (req->cmd != CMD_CONNECT) {
		req->rep = HL_SOCKS_COMMAND_NOT_SUPPORTED;
		return 1;
	}
	if (req->atyp != ATYP_NAME) {
		/* Only a name says which service: an address says nothing. */
		req->rep = HL_SOCKS_ADDRESS_NOT_SUPPORTED;
		return 1;
	}
	if (!name_ok(buf + 5, addrlen - 1) ||
	    hl__host_parse(req->name, addrlen - 1, req->password,
	                   req->keyhash) != 0) {
		req->password[0] = '\0';
		req->keyhash[0] = '\0';
		req->rep = HL_SOCKS_NOT_ALLOWED;
		return 1;
	}
	req->rep = HL_SOCKS_SUCCEEDED;
	return 1;
}

void
hl__socks_reply(unsigned char out[10], int rep)
{
	memset(out, 0, 10);
	out[0] = SOCKS_VERSION;
	out[1] = (unsigned char)rep;
	out[3] = ATYP_IPV4;
}

void
hl__socks4_refusal(unsigned char out[8])
{
	memset(out, 0, 8);
	out[1] = 0x5b;
}
