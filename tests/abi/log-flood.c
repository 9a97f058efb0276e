/*
 * log-flood: a fixture that logs one line 5000 times through svc->log, as
 * a plugin hit by a flood of bad packets would, then one unrelated line.
 */
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
	(void)conf;
	*state = fixture_timed_new(sizeof(struct fixture_timed), svc, self,
	                           flood_timer, 300);
	return *state != NULL ? 0 : -1;
}

HL_PLUGIN(HL_KIND_CONTROL, .name = "log-flood", .version = "1",
          .description = "logs one line 5000 times", .init = flood_init,
          .fini = fixture_timed_free);
