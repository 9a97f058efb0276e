/* name-mismatch: the file is name-mismatch.so, the descriptor says not. */
#include "fixture.h"

static const struct hl_discovery_ops ops = {
    .size = sizeof ops,
    .query_start = fixture_query_start,
    .query_cancel = fixture_query_cancel,
};

HL_PLUGIN(HL_KIND_DISCOVERY, .name = "someone-else", .version = "0",
          .init = fixture_init, .fini = fixture_fini, .discovery = &ops);
