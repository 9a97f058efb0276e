/*
 * frozen-1-0: a plugin of every 1.0 facet, built against the frozen copy
 * of the 1.0 header in frozen/1.0 (never the current one). Every 1.x core
 * must keep loading it. The fixtures' stubs (fixture.h) use only 1.0, and
 * here see the frozen header too.
 */
#include "fixture.h"

#if HL_ABI_MAJOR != 1 || HL_ABI_MINOR != 0
#error "frozen-1-0 must be built against tests/abi/frozen/1.0"
#endif

static int
frozen_init(const struct hl_services *svc, struct hl_plugin *self,
            const struct hl_conf *conf, void **state)
{
	(void)conf;
	svc->log(self, HL_LOG_INFO, "frozen 1.0 fixture: init ran");
	*state = NULL;
	return 0;
}

static const struct hl_discovery_ops frozen_discovery = {
    .size = sizeof frozen_discovery,
    .query_start = fixture_query_start,
    .query_cancel = fixture_query_cancel,
};

static const struct hl_traversal_ops frozen_traversal = {
    .size = sizeof frozen_traversal,
    .port_event = fixture_port_event,
};

static const struct hl_transport_ops frozen_transport = {
    .size = sizeof frozen_transport,
    .dial = fixture_dial,
    .dial_cancel = fixture_dial_cancel,
};

HL_PLUGIN(HL_KIND_DISCOVERY | HL_KIND_TRAVERSAL | HL_KIND_TRANSPORT,
          .name = "frozen-1-0", .version = "1.0",
          .description = "built against the frozen 1.0 header",
          .default_priority = 10, .init = frozen_init, .fini = fixture_fini,
          .discovery = &frozen_discovery, .traversal = &frozen_traversal,
          .transport = &frozen_transport);
