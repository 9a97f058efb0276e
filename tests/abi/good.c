/* good: a valid discovery plugin, built the way plugins are. */
#define FIXTURE_NAME "good"
#include "fixture.h"

HL_PLUGIN(HL_KIND_DISCOVERY, .name = "good", .version = "1.2.3",
          .description = "a valid discovery plugin that finds nothing",
          .default_priority = 42, .init = fixture_init, .fini = fixture_fini,
          .discovery = &fixture_discovery);
