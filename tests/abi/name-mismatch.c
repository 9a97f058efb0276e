/* name-mismatch: the file is name-mismatch.so, the descriptor says not. */
#include "fixture.h"

HL_PLUGIN(HL_KIND_DISCOVERY, .name = "someone-else", .version = "0",
          .init = fixture_init, .fini = fixture_fini,
          .discovery = &fixture_discovery);
