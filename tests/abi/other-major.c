/* other-major: built for ABI 2.x. */
#include "fixture.h"

static const struct hl_discovery_ops ops = {
    .size = sizeof ops,
    .query_start = fixture_query_start,
    .query_cancel = fixture_query_cancel,
};

FIXTURE_DESC = {
    .head = {HL_ABI_MAGIC, 2, 0, (uint32_t)sizeof(struct hl_plugin_desc),
             HL_KIND_DISCOVERY},
    .name = "other-major",
    FIXTURE_COMMON,
    .discovery = &ops,
};
