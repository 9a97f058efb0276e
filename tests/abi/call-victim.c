/*
 * call-victim: a fixture that queues calls on the loop in init and frees
 * their argument in fini, as plugin.h tells plugins to. A call that runs
 * after fini (the core broke call_on_loop's promise) says so and aborts.
 */
#include <stdio.h>
#include <stdlib.h>

#include <hardline/plugin.h>

struct victim {
	struct hl_plugin *self;
	int calls;
};

static const struct hl_services *svc;
static int finished;

static void
victim_call(void *arg)
{
	struct victim *v = arg;

	if (finished) {
		fprintf(stderr, "call-victim: BUG: a queued call ran after "
		                "fini\n");
		abort();
	}
	svc->log(v->self, HL_LOG_INFO, "call %d ran before fini", ++v->calls);
}

static int
victim_init(const struct hl_services *s, struct hl_plugin *self,
            const struct hl_conf *conf, void **state)
{
	struct victim *v = calloc(1, sizeof *v);

	(void)conf;
	if (v == NULL)
		return -1;
	svc = s;
	finished = 0;
	v->self = self;
	*state = v;
	for (int i = 0; i < 2; i++)
		if (svc->call_on_loop(self, victim_call, v) != 0)
			return -1;
	return 0;
}

static void
victim_fini(void *state)
{
	free(state);
	finished = 1;
	svc->log(NULL, HL_LOG_INFO, "call-victim: fini ran");
}

HL_PLUGIN(HL_KIND_CONTROL, .name = "call-victim", .version = "1",
          .description = "queues calls on the loop and frees them in fini",
          .init = victim_init, .fini = victim_fini);
