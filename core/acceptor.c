/*
 * acceptor.c: the listening sockets of the core's own fronts (the proxy,
 * the SOCKS listener, each forward). Out of descriptors, a listening
 * socket stays readable and libevent would call accept() again at once,
 * forever: an acceptor stops accepting for a short pause that grows while
 * it lasts (50 ms doubling to 2 s), logs once a pause, and resumes by
 * itself. A front at its own cap holds its acceptor (new connections wait
 * in the kernel's queue) and releases it later.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "daemon.h"

struct hl__acceptor {
	struct evconnlistener *lev;
	struct event *resume;
	char who[64];
	hl__accept_cb cb;
	void *arg;
	int pause_ms; /* > 0: pausing, or paused last and no accept since */
	int held; /* the front holds it (at its cap) */
	unsigned long emfile; /* accepts that failed for lack of descriptors */
};

static void
update(struct hl__acceptor *a, int pausing)
{
	if (a->held || pausing)
		evconnlistener_disable(a->lev);
	else
		evconnlistener_enable(a->lev);
}

static void
accept_callback(struct evconnlistener *l HL_UNUSED, evutil_socket_t fd,
                struct sockaddr *sa, int salen, void *arg)
{
	struct hl__acceptor *a = arg;

	a->pause_ms = 0; /* descriptors again */
	a->cb(a->arg, fd, sa, (socklen_t)salen);
}

static void
resume_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED, void *arg)
{
	/* pause_ms stays until an accept succeeds: a failure right away
	 * pauses twice as long. */
	update(arg, 0);
}

static void
error_callback(struct evconnlistener *l HL_UNUSED, void *arg)
{
	struct hl__acceptor *a = arg;
	int e = EVUTIL_SOCKET_ERROR();

	if (!hl_accept_out_of_descriptors(e)) {
		hl__warn("%s: accept failed: %s", a->who,
		         evutil_socket_error_to_string(e));
		return;
	}
	a->emfile++;
	a->pause_ms = hl_pause_next(a->pause_ms, 50, 2000);
	update(a, 1);
	hl__warn("%s: out of descriptors (%s; %lu times so far): not "
	         "accepting for %d ms",
	         a->who, evutil_socket_error_to_string(e), a->emfile,
	         a->pause_ms);
	hl_evtimer_add_ms(a->resume, a->pause_ms);
}

struct hl__acceptor *
hl__acceptor_new(struct event_base *base, const char *who, int fd,
                 hl__accept_cb cb, void *arg)
{
	struct hl__acceptor *a = calloc(1, sizeof *a);

	if (a == NULL)
		return NULL;
	snprintf(a->who, sizeof a->who, "%s", who);
	a->cb = cb;
	a->arg = arg;
	a->resume = evtimer_new(base, resume_callback, a);
	a->lev = evconnlistener_new(
	    base, accept_callback, a,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
	if (a->resume == NULL || a->lev == NULL) {
		if (a->lev == NULL)
			evutil_closesocket(fd);
		hl__acceptor_free(a);
		return NULL;
	}
	evconnlistener_set_error_cb(a->lev, error_callback);
	return a;
}

int
hl__listen_socket(const char *addr, int flags, struct sockaddr_storage *ss)
{
	int sslen = sizeof *ss, fd, e;

	if (evutil_parse_sockaddr_port(addr, (struct sockaddr *)ss, &sslen) !=
	    0) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	            0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &(int){1}, sizeof(int));
	if (ss->ss_family == AF_INET6 && (flags & HL_LISTEN_V6ONLY))
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){1},
		           sizeof(int));
	if (bind(fd, (struct sockaddr *)ss, (socklen_t)sslen) != 0 ||
	    (!(flags & HL_LISTEN_BIND_ONLY) && listen(fd, 512) != 0)) {
		e = errno;
		evutil_closesocket(fd);
		errno = e;
		return -1;
	}
	return fd;
}

struct hl__acceptor *
hl__acceptor_listen(struct event_base *base, const char *who, const char *addr,
                    hl__accept_cb cb, void *arg, struct sockaddr_storage *ss)
{
	int fd = hl__listen_socket(addr, 0, ss);
	struct hl__acceptor *a;

	if (fd < 0) {
		if (errno == EINVAL)
			hl__err("%s: cannot parse listen address \"%s\"", who,
			        addr);
		else
			hl__err("%s: cannot listen on %s: %s", who, addr,
			        strerror(errno));
		return NULL;
	}
	a = hl__acceptor_new(base, who, fd, cb, arg);
	if (a == NULL)
		hl__err("%s: cannot listen on %s: out of memory", who, addr);
	return a;
}

void
hl__acceptor_hold(struct hl__acceptor *a, int hold)
{
	if (a->held == hold)
		return;
	a->held = hold;
	/* A pause under way ends on its own timer. */
	if (!evtimer_pending(a->resume, NULL))
		update(a, 0);
}

void
hl__acceptor_free(struct hl__acceptor *a)
{
	if (a == NULL)
		return;
	if (a->lev != NULL)
		evconnlistener_free(a->lev);
	hl_event_free(&a->resume);
	free(a);
}
