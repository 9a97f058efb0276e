/* other-major: built for ABI 2.x. */
#include "fixture.h"

FIXTURE_DESC = {
    .head = {HL_ABI_MAGIC, 2, 0, (uint32_t)sizeof(struct hl_plugin_desc),
             HL_KIND_DISCOVERY},
    .name = "other-major",
    FIXTURE_COMMON,
    .discovery = &fixture_discovery,
};
