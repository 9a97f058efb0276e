/* good: a valid discovery plugin, built the way plugins are. */
#include "fixture.h"

static int
good_init(const struct hl_services *svc, struct hl_plugin *self,
          const struct hl_conf *conf, void **state)
{
	(void)conf;
	svc->log(self, HL_LOG_INFO, "good fixture: init ran");
	*state = NULL;
	return 0;
}

static const struct hl_discovery_ops good_discovery = {
    .size = sizeof good_discovery,
    .query_start = fixture_query_start,
    .query_cancel = fixture_query_cancel,
};

HL_PLUGIN(HL_KIND_DISCOVERY, .name = "good", .version = "1.2.3",
          .description = "a valid discovery plugin that finds nothing",
          .default_priority = 42, .init = good_init, .fini = fixture_fini,
          .discovery = &good_discovery);
