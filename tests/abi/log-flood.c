/*
 * log-flood: a fixture that logs one line 5000 times through svc->log, as
 * a plugin hit by a flood of bad packets would, then one unrelated line.
 */
#include <stdlib.h>

#include "fixture.h"

static void
flood_timer(evutil_socket_t fd, short what, void *arg)
{
	struct fixture_timed *f = arg;

	(void)fd;
	(void)what;
	for (int i = 0; i < 5000; i++)
		f->svc->log(f->self, HL_LOG_WARN,
		            "malformed packet %d from 192.0.2.%d dropped", i,
		            i % 250);
	f->svc->log(f->self, HL_LOG_INFO, "after the flood: an unrelated line");
}

static int
flood_init(const struct hl_services *svc, struct hl_plugin *self,
           const struct hl_conf *conf, void **state)
{
	struct fixture_timed *f = calloc(1, sizeof *f);

	(void)conf;
	if (f == NULL)
		return -1;
	if (fixture_timed_start(f, svc, self, flood_timer, f, 300) != 0) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static void
flood_fini(void *state)
{
	struct fixture_timed *f = state;

	event_free(f->ev);
	free(f);
}

HL_PLUGIN(HL_KIND_CONTROL, .name = "log-flood", .version = "1",
          .description = "logs one line 5000 times", .init = flood_init,
          .fini = flood_fini);
