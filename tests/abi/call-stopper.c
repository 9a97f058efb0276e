/*
 * call-stopper: a fixture whose one call on the loop turns the plugin
 * call-victim off, as the admin panel's toggle does. Queued before
 * call-victim's own calls, it runs first in the same batch.
 */
#include "fixture.h"

static const struct hl_services *svc;

static void
stop_victim(void *arg)
{
	struct hl_plugin *self = arg;
	char err[256];

	if (svc->plugin_set_enabled(self, "call-victim", 0, err, sizeof err) !=
	    0)
		svc->log(self, HL_LOG_ERROR, "cannot stop call-victim: %s",
		         err);
	else
		svc->log(self, HL_LOG_INFO, "turned call-victim off");
}

static int
stopper_init(const struct hl_services *s, struct hl_plugin *self,
             const struct hl_conf *conf, void **state)
{
	(void)conf;
	svc = s;
	*state = NULL;
	return svc->call_on_loop(self, stop_victim, self);
}

HL_PLUGIN(HL_KIND_CONTROL, .name = "call-stopper", .version = "1",
          .description = "turns call-victim off from a call on the loop",
          .init = stopper_init, .fini = fixture_fini);
