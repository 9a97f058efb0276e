/*
 * loopcall.c: svc->call_on_loop, a plugin's thread handing work to the
 * loop. Calls queue under a lock and run on the loop thread in order; a
 * plugin's calls still queued when it stops are dropped (plugin.h), so
 * none runs after its fini.
 */
#include <pthread.h>
#include <stdlib.h>

#include <event2/event.h>

#include "daemon.h"

struct loop_call {
	void (*fn)(void *);
	void *arg;
	struct hl_plugin *owner;
	struct loop_call *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct loop_call *queue, **queue_tail = &queue;
/* The batch calls_callback is running: a call in it may stop a plugin,
 * whose calls still in it are then dropped (hl__loopcall_drop). */
static struct loop_call *running;
static struct event *calls_ev;
static int closed;

static void
calls_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
               void *arg HL_UNUSED)
{
	pthread_mutex_lock(&lock);
	running = queue;
	queue = NULL;
	queue_tail = &queue;
	/* One at a time off the batch, under the lock: a call may stop a
	 * plugin, and hl__loopcall_drop then takes that plugin's calls out
	 * of the batch too. */
	while (running != NULL) {
		struct loop_call *call = running;
		running = call->next;
		pthread_mutex_unlock(&lock);
		call->fn(call->arg);
		free(call);
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
}

int
hl__loopcall_init(struct event_base *base)
{
	calls_ev = event_new(base, -1, 0, calls_callback, NULL);
	return calls_ev != NULL ? 0 : -1;
}

int
hl__loopcall_add(struct hl_plugin *owner, void (*fn)(void *), void *arg)
{
	struct loop_call *call;

	if (calls_ev == NULL)
		return -1;
	call = malloc(sizeof *call);
	if (call == NULL)
		return -1;
	call->fn = fn;
	call->arg = arg;
	call->owner = owner;
	call->next = NULL;
	pthread_mutex_lock(&lock);
	if (closed) {
		pthread_mutex_unlock(&lock);
		free(call);
		return -1;
	}
	*queue_tail = call;
	queue_tail = &call->next;
	pthread_mutex_unlock(&lock);
	/* Thread-safe: the loop was made with evthread_use_pthreads(). */
	event_active(calls_ev, EV_READ, 0);
	return 0;
}

void
hl__loopcall_drop(struct hl_plugin *owner)
{
	pthread_mutex_lock(&lock);
	/* Both the queue and the batch being run, when a call in it is
	 * what stops owner. */
	for (int q = 0; q < 2; q++) {
		struct loop_call **pp = q ? &running : &queue;
		while (*pp != NULL) {
			struct loop_call *call = *pp;
			if (call->owner == owner) {
				*pp = call->next;
				free(call);
			} else {
				pp = &call->next;
			}
		}
	}
	queue_tail = &queue;
	while (*queue_tail != NULL)
		queue_tail = &(*queue_tail)->next;
	pthread_mutex_unlock(&lock);
}

void
hl__loopcall_close(void)
{
	pthread_mutex_lock(&lock);
	closed = 1;
	pthread_mutex_unlock(&lock);
}

void
hl__loopcall_free(void)
{
	/* Calls that never ran: their plugins are gone, so they are
	 * dropped, not run. */
	pthread_mutex_lock(&lock);
	while (queue != NULL) {
		struct loop_call *call = queue;
		queue = call->next;
		free(call);
	}
	queue_tail = &queue;
	closed = 0;
	pthread_mutex_unlock(&lock);
	hl_event_free(&calls_ev);
	calls_ev = NULL;
}
