/* short-struct: a head claiming a descriptor of only 24 bytes. */
#include "fixture.h"

FIXTURE_DESC = {
    .head = {HL_ABI_MAGIC, HL_ABI_MAJOR, HL_ABI_MINOR, 24, HL_KIND_DISCOVERY},
    .name = "short-struct",
    FIXTURE_COMMON,
    .discovery = &fixture_discovery,
};
