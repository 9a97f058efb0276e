/*
 * live.c: the list of every object that owns a connection (a proxy
 * request, an OOB exchange, a service-side tunnel, a splice), so that a
 * clean stop closes them all (hl__live_abort_all, from main.c).
 */
#include <stddef.h>

#include "daemon.h"

static struct hl__live *live_list;

void
hl__live_add(struct hl__live *l, void (*abort)(struct hl__live *))
{
	l->abort = abort;
	HL_LIST_INSERT(live_list, l);
}

void
hl__live_remove(struct hl__live *l)
{
	if (l->prevp == NULL)
		return;
	HL_LIST_REMOVE(l);
	l->next = NULL;
	l->prevp = NULL;
}

void
hl__live_abort_all(void)
{
	while (live_list != NULL) {
		struct hl__live *l = live_list;
		hl__live_remove(l);
		l->abort(l);
	}
}
