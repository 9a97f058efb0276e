/*
 * fd-hog: a fixture that takes every free descriptor for a while, as a
 * flood of connections to another part of the node would: 1 s after init
 * it opens /dev/null until open() fails with EMFILE, and 4 s later it
 * closes them all. So the other plugins meet EMFILE with none of the
 * connections being their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "fixture.h"

#define HOG_MAX 65536

struct hog {
	struct fixture_timed t; /* first: fixture_timed_new made it */
	int *fds;
	int n, held;
};

static void
hog_release(struct hog *h)
{
	for (int i = 0; i < h->n; i++)
		close(h->fds[i]);
	h->n = 0;
}

static void
hog_timer(evutil_socket_t fd, short what, void *arg)
{
	struct hog *h = arg;
	struct timeval hold = {4, 0};

	(void)fd;
	(void)what;
	if (h->held) {
		hog_release(h);
		h->t.svc->log(h->t.self, HL_LOG_INFO,
		              "released the descriptors");
		return;
	}
	while (h->n < HOG_MAX) {
		int d = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (d < 0)
			break;
		h->fds[h->n++] = d;
	}
	h->held = 1;
	h->t.svc->log(h->t.self, HL_LOG_INFO, "holding %d descriptors (%s)",
	              h->n, errno == EMFILE ? "EMFILE" : "stopped early");
	evtimer_add(h->t.ev, &hold);
}

static int
hog_init(const struct hl_services *svc, struct hl_plugin *self,
         const struct hl_conf *conf, void **state)
{
	struct hog *h =
	    fixture_timed_new(sizeof *h, svc, self, hog_timer, 1000);

	(void)conf;
	if (h == NULL)
		return -1;
	h->fds = calloc(HOG_MAX, sizeof *h->fds);
	if (h->fds == NULL) {
		fixture_timed_free(h);
		return -1;
	}
	*state = h;
	return 0;
}

static void
hog_fini(void *state)
{
	struct hog *h = state;

	hog_release(h);
	free(h->fds);
	fixture_timed_free(h);
}

HL_PLUGIN(HL_KIND_CONTROL, .name = "fd-hog", .version = "1",
          .description = "takes every free descriptor for 4 s",
          .init = hog_init, .fini = hog_fini);
