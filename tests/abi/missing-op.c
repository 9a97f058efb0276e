/* missing-op: a transport without dial. */
#include "fixture.h"

static const struct hl_transport_ops ops = {
    .size = sizeof ops,
    .dial = NULL,
    .dial_cancel = fixture_dial_cancel,
};

HL_PLUGIN(HL_KIND_TRANSPORT, .name = "missing-op", .version = "0",
          .init = fixture_init, .fini = fixture_fini, .transport = &ops);
