/* short-struct: a head claiming a descriptor of only 24 bytes. */
#include "fixture.h"

static const struct hl_discovery_ops ops = {
    .size = sizeof ops,
    .query_start = fixture_query_start,
    .query_cancel = fixture_query_cancel,
};

FIXTURE_DESC = {
    .head = {HL_ABI_MAGIC, HL_ABI_MAJOR, HL_ABI_MINOR, 24, HL_KIND_DISCOVERY},
    .name = "short-struct",
    FIXTURE_COMMON,
    .discovery = &ops,
};
