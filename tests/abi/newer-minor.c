/*
 * newer-minor: needs one minor more than the core has, stated the way a
 * plugin author would (HL_PLUGIN_ABI_MINOR before the header).
 */
#define HL_PLUGIN_ABI_MINOR (HL_ABI_MINOR + 1)
#include "fixture.h"

HL_PLUGIN(HL_KIND_DISCOVERY, .name = "newer-minor", .version = "0",
          .init = fixture_init, .fini = fixture_fini,
          .discovery = &fixture_discovery);
