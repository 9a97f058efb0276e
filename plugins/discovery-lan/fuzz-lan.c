/*
 * fuzz-lan.c: the LAN discovery packet parser (lan_parse) and formatter,
 * on any bytes. Beyond "no crash, no read outside the datagram", it checks
 * what the plugin relies on: a parsed packet holds only well-formed
 * fields, formatting it and parsing it again gives the same fields, and
 * no title, whatever its bytes, can add a line to an announce.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hardline/util.h"

#include "lanpacket.h"

static int
no_ctl(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

static void
check_fields(const struct lan_packet *p)
{
	if (p->kind != LAN_SEARCH && p->kind != LAN_SERVICE)
		abort();
	if (!no_ctl(p->cookie) || !no_ctl(p->title) ||
	    strlen(p->cookie) > LAN_COOKIE_MAX ||
	    strlen(p->title) > LAN_TITLE_MAX)
		abort();
	if (p->kind == LAN_SEARCH) {
		if (p->infohash[0] != '\0' && !hl_keyhash_is_lower(p->infohash))
			abort();
		return;
	}
	if (!hl_keyhash_is_lower(p->keyhash) || p->port < 1 ||
	    p->port > 65535 || strlen(p->password) > LAN_PASSWORD_MAX)
		abort();
	for (const char *c = p->password; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '2' && *c <= '7')))
			abort();
	{
		char label[LAN_INFOHASH_MAX + 1];
		strcpy(label, p->password);
		strcat(label, "-");
		strcat(label, p->keyhash);
		if (strcmp(label, p->infohash) != 0)
			abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so any read past them is caught. */
	unsigned char *buf = malloc(size ? size : 1);
	struct lan_packet p, q;
	char out[1024];
	const char *why = NULL;
	size_t n;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	if (lan_parse(buf, size, &p, &why) == 0) {
		check_fields(&p);
		n = p.kind == LAN_SEARCH
		        ? lan_format_search(out, sizeof out, p.infohash,
		                            p.cookie)
		        : lan_format_service(out, sizeof out, p.port,
		                             p.infohash, p.cookie, p.title);
		if (n == 0 || lan_parse((unsigned char *)out, n, &q, &why) != 0)
			abort();
		if (q.kind != p.kind || q.port != p.port ||
		    strcmp(q.infohash, p.infohash) != 0 ||
		    strcmp(q.cookie, p.cookie) != 0 ||
		    strcmp(q.title, p.title) != 0)
			abort();
	} else if (why == NULL) {
		abort();
	}

	/* The input as a title: the announce stays one well-formed packet
	 * with this node's fields. */
	{
		char *title = malloc(size + 1);
		if (title != NULL) {
			memcpy(title, data, size);
			title[size] = '\0';
			n = lan_format_service(
			    out, sizeof out, 7008,
			    "-0123456789abcdef0123456789abcdef01234567",
			    "c00k1e", title);
			if (n == 0 ||
			    lan_parse((unsigned char *)out, n, &q, &why) != 0 ||
			    q.kind != LAN_SERVICE || q.port != 7008 ||
			    strcmp(q.cookie, "c00k1e") != 0)
				abort();
			free(title);
		}
	}
	free(buf);
	return 0;
}
