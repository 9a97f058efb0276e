/*
 * mutable: a valid plugin of every facet whose descriptor and tables are
 * writable, so that test-loader can break one field at a time and check
 * each refusal without a fixture file per field. The test reaches the
 * tables through the descriptor's pointers (the objects are writable).
 */
#include "fixture.h"

static struct hl_discovery_ops mutable_discovery = {
    .size = sizeof(struct hl_discovery_ops),
    .query_start = fixture_query_start,
    .query_cancel = fixture_query_cancel,
};
static struct hl_traversal_ops mutable_traversal = {
    .size = sizeof(struct hl_traversal_ops),
    .port_event = fixture_port_event,
};
static struct hl_transport_ops mutable_transport = {
    .size = sizeof(struct hl_transport_ops),
    .dial = fixture_dial,
    .dial_cancel = fixture_dial_cancel,
};

HL_EXPORT extern struct hl_plugin_desc hardline_plugin;
HL_EXPORT struct hl_plugin_desc hardline_plugin = {
    .head = {HL_ABI_MAGIC, HL_ABI_MAJOR, HL_ABI_MINOR,
             (uint32_t)sizeof(struct hl_plugin_desc),
             HL_KIND_DISCOVERY | HL_KIND_TRAVERSAL | HL_KIND_TRANSPORT},
    .name = "mutable",
    FIXTURE_COMMON,
    .discovery = &mutable_discovery,
    .traversal = &mutable_traversal,
    .transport = &mutable_transport,
};
