/*
 * stats.c: the node's counters. Each part counts its own events here
 * (router.c, proxy.c, socksd.c, outbound.c, server.c, exchange.c,
 * seen.c); status.c reports them in /api/status "stats".
 */
#include "daemon.h"

struct hl__stats hl__stats;
