/*
 * fixture.h: stubs shared by the ABI fixture plugins. The broken fixtures
 * fill their descriptor by hand (HL_PLUGIN() would not let them break it);
 * FIXTURE_COMMON gives the fields they get right. Only ABI 1.0 here:
 * frozen-1-0 includes this file against the frozen 1.0 header.
 */
#ifndef HL_ABI_FIXTURE_H
#define HL_ABI_FIXTURE_H

#include <stdlib.h>

#include <hardline/evutil.h>
#include <hardline/plugin.h>

#define FIXTURE_UNUSED __attribute__((unused))

/* Who fixture_init says it is ("<FIXTURE_NAME> fixture: init ran"), so
 * that test-loader sees which init ran; define it before this header. */
#ifndef FIXTURE_NAME
#define FIXTURE_NAME "ABI test"
#endif

static FIXTURE_UNUSED int
fixture_init(const struct hl_services *svc, struct hl_plugin *self,
             const struct hl_conf *conf, void **state)
{
	(void)conf;
	svc->log(self, HL_LOG_INFO, FIXTURE_NAME " fixture: init ran");
	*state = NULL;
	return 0;
}

static FIXTURE_UNUSED void
fixture_fini(void *state)
{
	(void)state;
}

static FIXTURE_UNUSED int
fixture_query_start(void *state, struct hl_query *q)
{
	(void)state;
	(void)q;
	return -1;
}

static FIXTURE_UNUSED void
fixture_query_cancel(void *state, struct hl_query *q)
{
	(void)state;
	(void)q;
}

static FIXTURE_UNUSED void
fixture_port_event(void *state, const struct sockaddr *sa, socklen_t salen,
                   int open)
{
	(void)state;
	(void)sa;
	(void)salen;
	(void)open;
}

static FIXTURE_UNUSED struct hl_dial *
fixture_dial(void *state, const char *keyhash, const char *addr, hl_dial_cb cb,
             void *arg)
{
	(void)state;
	(void)keyhash;
	(void)addr;
	(void)cb;
	(void)arg;
	return NULL;
}

static FIXTURE_UNUSED void
fixture_dial_cancel(void *state, struct hl_dial *d)
{
	(void)state;
	(void)d;
}

/* A fixture that acts from one timer: what it keeps of init's arguments,
 * and the timer. */
struct fixture_timed {
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct event *ev;
};

/*
 * The state of a fixture that acts from one timer: size zeroed bytes that
 * start with a struct fixture_timed, filled, whose timer calls
 * cb(-1, EV_TIMEOUT, state) in ms milliseconds. NULL when out of memory
 * or timers. fixture_timed_free undoes it.
 */
static FIXTURE_UNUSED void *
fixture_timed_new(size_t size, const struct hl_services *svc,
                  struct hl_plugin *self, event_callback_fn cb, long long ms)
{
	struct fixture_timed *f = calloc(1, size);

	if (f == NULL)
		return NULL;
	f->svc = svc;
	f->self = self;
	f->ev = hl_evtimer_start_ms(svc->event_base(self), cb, f, ms);
	if (f->ev == NULL) {
		free(f);
		return NULL;
	}
	return f;
}

static FIXTURE_UNUSED void
fixture_timed_free(void *state)
{
	struct fixture_timed *f = state;

	event_free(f->ev);
	free(f);
}

/* The tables of a well-formed plugin of each 1.0 kind, of the stubs. */
static FIXTURE_UNUSED const struct hl_discovery_ops fixture_discovery = {
    .size = sizeof fixture_discovery,
    .query_start = fixture_query_start,
    .query_cancel = fixture_query_cancel,
};

static FIXTURE_UNUSED const struct hl_traversal_ops fixture_traversal = {
    .size = sizeof fixture_traversal,
    .port_event = fixture_port_event,
};

static FIXTURE_UNUSED const struct hl_transport_ops fixture_transport = {
    .size = sizeof fixture_transport,
    .dial = fixture_dial,
    .dial_cancel = fixture_dial_cancel,
};

#define FIXTURE_COMMON                                                         \
	.version = "0", .description = "ABI test fixture",                     \
	.default_priority = 50, .libevent_version = LIBEVENT_VERSION_NUMBER,   \
	.openssl_version = OPENSSL_VERSION_NUMBER, .init = fixture_init,       \
	.fini = fixture_fini

/* The descriptor symbol, exported as HL_PLUGIN() does it. */
#define FIXTURE_DESC                                                           \
	HL_EXPORT extern const struct hl_plugin_desc hardline_plugin;          \
	HL_EXPORT const struct hl_plugin_desc hardline_plugin

#endif
