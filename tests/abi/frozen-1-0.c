/*
 * frozen-1-0: a plugin of every 1.0 facet, built against the frozen copy
 * of the 1.0 header in frozen/1.0 (never the current one). Every 1.x core
 * must keep loading it. The fixtures' stubs (fixture.h) use only 1.0, and
 * here see the frozen header too.
 */
#define FIXTURE_NAME "frozen 1.0"
#include "fixture.h"

#if HL_ABI_MAJOR != 1 || HL_ABI_MINOR != 0
#error "frozen-1-0 must be built against tests/abi/frozen/1.0"
#endif

HL_PLUGIN(HL_KIND_DISCOVERY | HL_KIND_TRAVERSAL | HL_KIND_TRANSPORT,
          .name = "frozen-1-0", .version = "1.0",
          .description = "built against the frozen 1.0 header",
          .default_priority = 10, .init = fixture_init, .fini = fixture_fini,
          .discovery = &fixture_discovery, .traversal = &fixture_traversal,
          .transport = &fixture_transport);
