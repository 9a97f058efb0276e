/* punchctl.c: the punch control stream's lines (punchctl.h). */
#include "punchctl.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "hardline/util.h"

static const char *const kind_names[] = {NULL, "host", "srflx", "mapped",
                                         "relay"};

const char *
punchctl_kind_name(uint8_t kind)
{
	return kind >= 1 && kind <= 4 ? kind_names[kind] : NULL;
}

uint8_t
punchctl_kind_parse(const char *s, size_t len)
{
	for (uint8_t k = 1; k <= 4; k++)
		if (strlen(kind_names[k]) == len &&
		    memcmp(kind_names[k], s, len) == 0)
			return k;
	return 0;
}

static int
is_pw_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
}

/* "ip:port" or "[v6]:port" (port 1..65535, decimal, no leading zero). */
static int
addr_parse(const char *s, size_t len, struct hubmsg_addr *a)
{
	char host[64];
	const char *colon;
	size_t hl, pl;
	unsigned long port = 0;

	memset(a, 0, sizeof *a);
	if (len < 3 || len > 60)
		return -1;
	colon = NULL;
	for (size_t i = len; i > 0; i--)
		if (s[i - 1] == ':') {
			colon = s + i - 1;
			break;
		}
	if (colon == NULL)
		return -1;
	hl = (size_t)(colon - s);
	pl = len - hl - 1;
	if (pl == 0 || pl > 5 || colon[1] == '0')
		return -1;
	for (size_t i = 0; i < pl; i++) {
		if (colon[1 + i] < '0' || colon[1 + i] > '9')
			return -1;
		port = port * 10 + (unsigned long)(colon[1 + i] - '0');
	}
	if (port == 0 || port > 65535)
		return -1;
	if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') {
		if (hl - 2 >= sizeof host)
			return -1;
		memcpy(host, s + 1, hl - 2);
		host[hl - 2] = '\0';
		if (inet_pton(AF_INET6, host, a->ip) != 1)
			return -1;
		a->family = 6;
	} else {
		if (hl == 0 || hl >= sizeof host)
			return -1;
		memcpy(host, s, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, a->ip) != 1)
			return -1;
		a->family = 4;
	}
	a->port = (uint16_t)port;
	return 0;
}

static int
addr_format(const struct hubmsg_addr *a, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN];
	int n;

	if (a->port == 0 || (a->family != 4 && a->family != 6) ||
	    inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->ip, ip,
	              sizeof ip) == NULL)
		return -1;
	n = snprintf(out, cap, a->family == 4 ? "%s:%u" : "[%s]:%u", ip,
	             a->port);
	return n > 0 && (size_t)n < cap ? n : -1;
}

/* The next space-separated token of line[*pos..len): its start and
 * length; -1 at the end. Tokens are separated by exactly one space. */
static int
token(const char *line, size_t len, size_t *pos, const char **t, size_t *tl)
{
	size_t p = *pos, e;

	if (p >= len)
		return -1;
	for (e = p; e < len && line[e] != ' '; e++)
		;
	if (e == p)
		return -1; /* an empty token: two spaces, or a leading one */
	*t = line + p;
	*tl = e - p;
	*pos = e < len ? e + 1 : e;
	if (e < len && e + 1 == len)
		return -1; /* a trailing space */
	return 0;
}

static int
word_is(const char *t, size_t tl, const char *w)
{
	return strlen(w) == tl && memcmp(t, w, tl) == 0;
}

int
punchctl_parse(const char *line, size_t len, struct punchctl *m)
{
	const char *t;
	size_t tl, pos = 0;

	memset(m, 0, sizeof *m);
	if (line == NULL || len == 0 || len > PUNCHCTL_LINE_MAX)
		return -1;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)line[i] < 0x20 ||
		    (unsigned char)line[i] > 0x7e)
			return -1;
	if (token(line, len, &pos, &t, &tl) != 0)
		return -1;
	if (word_is(t, tl, "HELLO")) {
		m->type = PUNCHCTL_HELLO;
		if (token(line, len, &pos, &t, &tl) != 0 ||
		    !word_is(t, tl, "1") ||
		    token(line, len, &pos, &t, &tl) != 0 || tl != 16)
			return -1;
		if (hl_hex_decode(t, 8, m->txid) != 0)
			return -1;
		if (token(line, len, &pos, &t, &tl) != 0)
			return -1;
		if (!word_is(t, tl, "-")) {
			if (tl > PUNCHCTL_PASSWORD_MAX)
				return -1;
			for (size_t i = 0; i < tl; i++)
				if (!is_pw_char(t[i]))
					return -1;
			memcpy(m->password, t, tl);
		}
		return pos == len ? 0 : -1;
	}
	if (word_is(t, tl, "OK")) {
		m->type = PUNCHCTL_OK;
		return pos == len ? 0 : -1;
	}
	if (word_is(t, tl, "NO")) {
		m->type = PUNCHCTL_NO;
		if (token(line, len, &pos, &t, &tl) != 0 || pos != len ||
		    tl > PUNCHCTL_REASON_MAX)
			return -1;
		for (size_t i = 0; i < tl; i++)
			if (!((t[i] >= 'a' && t[i] <= 'z') || t[i] == '-'))
				return -1;
		memcpy(m->text, t, tl);
		return 0;
	}
	if (word_is(t, tl, "CANDS")) {
		m->type = PUNCHCTL_CANDS;
		while (pos < len) {
			struct hubmsg_cand *c;
			if (m->ncands == PUNCHCTL_CANDS_MAX ||
			    token(line, len, &pos, &t, &tl) != 0)
				return -1;
			c = &m->cands[m->ncands];
			c->kind = punchctl_kind_parse(t, tl);
			if (c->kind == 0 ||
			    token(line, len, &pos, &t, &tl) != 0 ||
			    addr_parse(t, tl, &c->addr) != 0)
				return -1;
			m->ncands++;
		}
		return 0;
	}
	if (word_is(t, tl, "READY")) {
		m->type = PUNCHCTL_READY;
		if (token(line, len, &pos, &t, &tl) != 0 || pos != len)
			return -1;
		return addr_parse(t, tl, &m->addr);
	}
	if (word_is(t, tl, "FAIL")) {
		m->type = PUNCHCTL_FAIL;
		/* the rest of the line, as it is */
		if (pos >= len || len - pos > PUNCHCTL_TEXT_MAX ||
		    line[pos - 1] != ' ')
			return -1;
		memcpy(m->text, line + pos, len - pos);
		return 0;
	}
	return -1;
}

size_t
punchctl_format(const struct punchctl *m, char *out, size_t cap)
{
	char a[64];
	size_t n = 0;
	int w;

#define PUT(...)                                                               \
	do {                                                                   \
		w = snprintf(out + n, cap - n, __VA_ARGS__);                   \
		if (w < 0 || (size_t)w >= cap - n)                             \
			return 0;                                              \
		n += (size_t)w;                                                \
	} while (0)

	if (out == NULL || cap == 0)
		return 0;
	switch (m->type) {
	case PUNCHCTL_HELLO: {
		size_t pl = strnlen(m->password, sizeof m->password);
		if (pl > PUNCHCTL_PASSWORD_MAX)
			return 0;
		for (size_t i = 0; i < pl; i++)
			if (!is_pw_char(m->password[i]))
				return 0;
		PUT("HELLO %d ", PUNCHCTL_VERSION);
		for (size_t i = 0; i < 8; i++)
			PUT("%02x", m->txid[i]);
		PUT(" %s\n", pl ? m->password : "-");
		break;
	}
	case PUNCHCTL_OK:
		PUT("OK\n");
		break;
	case PUNCHCTL_NO: {
		size_t tl = strnlen(m->text, sizeof m->text);
		if (tl == 0 || tl > PUNCHCTL_REASON_MAX)
			return 0;
		for (size_t i = 0; i < tl; i++)
			if (!((m->text[i] >= 'a' && m->text[i] <= 'z') ||
			      m->text[i] == '-'))
				return 0;
		PUT("NO %s\n", m->text);
		break;
	}
	case PUNCHCTL_CANDS:
		if (m->ncands > PUNCHCTL_CANDS_MAX)
			return 0;
		PUT("CANDS");
		for (size_t i = 0; i < m->ncands; i++) {
			const char *k = punchctl_kind_name(m->cands[i].kind);
			if (k == NULL ||
			    addr_format(&m->cands[i].addr, a, sizeof a) < 0)
				return 0;
			PUT(" %s %s", k, a);
		}
		PUT("\n");
		break;
	case PUNCHCTL_READY:
		if (addr_format(&m->addr, a, sizeof a) < 0)
			return 0;
		PUT("READY %s\n", a);
		break;
	case PUNCHCTL_FAIL: {
		size_t tl = strnlen(m->text, sizeof m->text);
		if (tl == 0 || tl > PUNCHCTL_TEXT_MAX)
			return 0;
		for (size_t i = 0; i < tl; i++)
			if ((unsigned char)m->text[i] < 0x20 ||
			    (unsigned char)m->text[i] > 0x7e)
				return 0;
		PUT("FAIL %s\n", m->text);
		break;
	}
	default:
		return 0;
	}
#undef PUT
	return n - 1 <= PUNCHCTL_LINE_MAX ? n : 0;
}

int
punchctl_label(const char *label, char password[PUNCHCTL_PASSWORD_MAX + 1],
               char keyhash[41])
{
	size_t len = strlen(label), dash;
	static const char suffix[] = ".localhost";

	if (len > 0 && label[len - 1] == '.')
		len--;
	if (len > sizeof suffix - 1 &&
	    strncasecmp(label + len - (sizeof suffix - 1), suffix,
	                sizeof suffix - 1) == 0)
		len -= sizeof suffix - 1;
	/* the keyhash is the last 40 characters, after a dash */
	if (len < 41 || label[len - 41] != '-')
		return -1;
	dash = len - 41;
	if (dash > PUNCHCTL_PASSWORD_MAX)
		return -1;
	for (size_t i = 0; i < dash; i++)
		if (!is_pw_char(label[i]))
			return -1;
	if (hl_keyhash_lower(label + dash + 1, 40, keyhash) != 0)
		return -1;
	memcpy(password, label, dash);
	password[dash] = '\0';
	return 0;
}
