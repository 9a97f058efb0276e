/*
 * seen.c: the Hardline services seen on the network (svc->service_seen,
 * from LAN announces and DHT browsing), for the admin panel's list and
 * `hlcore discover`. Announces are hints from strangers, so the table is
 * bounded: a share per host, the oldest entry forgotten when full, and
 * entries not heard of for 10 minutes dropped.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"

#define SEEN_MAX 256
#define SEEN_PER_HOST 16

static struct hl__seen *seen;
static size_t nseen;

/* Whether two "host:port" addresses have the same host. */
static int
same_host(const char *a, const char *b)
{
	char ha[HL_ADDR_MAX], hb[HL_ADDR_MAX];
	uint16_t pa, pb;

	return hl_addr_split(a, ha, sizeof ha, &pa) == 0 &&
	       hl_addr_split(b, hb, sizeof hb, &pb) == 0 && strcmp(ha, hb) == 0;
}

static void
forget_older_than(time_t when)
{
	for (struct hl__seen **pp = &seen; *pp != NULL;) {
		if ((*pp)->last < when) {
			struct hl__seen *s = *pp;
			*pp = s->next;
			free(s);
			nseen--;
		} else {
			pp = &(*pp)->next;
		}
	}
}

void
hl__seen_add(const char *source, const char *title, const char *label,
             const char *addr)
{
	struct hl__seen *s, **pp;
	time_t now = time(NULL);

	forget_older_than(now - 600);
	for (s = seen; s != NULL; s = s->next)
		if (strcmp(s->label, label) == 0 && strcmp(s->addr, addr) == 0)
			break;
	if (s == NULL) {
		struct hl__seen **oldest = NULL;
		size_t from_host = 0;
		for (pp = &seen; *pp != NULL; pp = &(*pp)->next) {
			if (same_host((*pp)->addr, addr))
				from_host++;
			if (oldest == NULL || (*pp)->last <= (*oldest)->last)
				oldest = pp;
		}
		if (from_host >= SEEN_PER_HOST) {
			hl__stats.hints_dropped++;
			return;
		}
		if (nseen >= SEEN_MAX && oldest != NULL) {
			s = *oldest;
			*oldest = s->next;
			free(s);
			nseen--;
		}
		s = calloc(1, sizeof *s);
		if (s == NULL)
			return;
		s->next = seen;
		seen = s;
		nseen++;
	}
	snprintf(s->title, sizeof s->title, "%s", title ? title : "");
	snprintf(s->label, sizeof s->label, "%s", label);
	snprintf(s->addr, sizeof s->addr, "%s", addr);
	snprintf(s->source, sizeof s->source, "%s", source);
	s->last = now;
}

const struct hl__seen *
hl__seen_first(void)
{
	return seen;
}

void
hl__seen_free(void)
{
	HL__LIST_FREE(seen, free);
	nseen = 0;
}
