/*
 * newer-minor: needs one minor more than the core has, stated the way a
 * plugin author would (HL_PLUGIN_ABI_MINOR before the header).
 */
#define HL_PLUGIN_ABI_MINOR (HL_ABI_MINOR + 1)
#include "fixture.h"

static const struct hl_discovery_ops ops = {
    .size = sizeof ops,
    .query_start = fixture_query_start,
    .query_cancel = fixture_query_cancel,
};

HL_PLUGIN(HL_KIND_DISCOVERY, .name = "newer-minor", .version = "0",
          .init = fixture_init, .fini = fixture_fini, .discovery = &ops);
