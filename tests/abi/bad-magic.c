/* bad-magic: the magic byte-swapped, as a big-endian build would have it. */
#include "fixture.h"

FIXTURE_DESC = {
    .head = {0x4e504c48u, HL_ABI_MAJOR, HL_ABI_MINOR,
             (uint32_t)sizeof(struct hl_plugin_desc), HL_KIND_DISCOVERY},
    .name = "bad-magic",
    FIXTURE_COMMON,
    .discovery = &fixture_discovery,
};
