/*
 * dht: publish and find Hardline services through OpenDHT, wire-compatible
 * with the original Python Hardline (docs/protocol.md, "DHT").
 *
 * Server side: this node's WANHosts, as raw ASCII, under the day-rolling
 * key of every service it serves; at start, whenever WANHosts changes, and
 * every 8 minutes (OpenDHT drops a value 10 minutes after its last put);
 * also under the neighbouring day's key within an hour of midnight UTC.
 * Client side: a lookup of the same keys feeds the router candidates.
 *
 * Two modes. Native: a node of our own (libopendht-c's dht_runner), which
 * runs its own thread; its results cross to the loop only through
 * svc->call_on_loop, by way of the "hub" below, so that nothing of ours is
 * touched after a query is cancelled or the plugin stopped. Proxy: an
 * OpenDHT HTTP proxy (dhtnode --proxyserver) through libevent's evhttp on
 * the core's loop: no thread, no UDP port, for a light client.
 *
 * Config (plugins: dht:):
 *   bootstrap: ["bootstrap.jami.net:4222"]   native: nodes to join through
 *   port: 0                                  native: UDP port, 0 = random
 *   proxy: "http://host:port/"               proxy mode instead of a node
 */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <opendht/opendht_c.h>
#include <sodium.h>

#include "dht-endpoints.h"
#include "dht-key.h"
#include "dht-value.h"
#include "hardline/plugin.h"
#include "hardline/evutil.h"
#include "hardline/util.h"

#define DEFAULT_BOOTSTRAP "bootstrap.jami.net:4222"
#define DEFAULT_DHT_PORT "4222"
#define MAX_BOOTSTRAP 16
#define LOOKUP_TIMEOUT_SEC 5 /* a lookup ends by then, found or not */
#define REPUBLISH_SEC 480 /* as the original: every 8 minutes */
#define MAX_LOOKUPS 64 /* running at once */
#define MAX_CANDIDATES 64 /* fed to the router per lookup */
#define MAX_OPS 512 /* OpenDHT operations in flight */
#define MAX_QUEUED 1024 /* results waiting for the loop */
#define MAX_VALUES_PER_GET 64 /* values read from one key */
#define BOOT_WAIT_SEC 15 /* a bootstrap round's answers */
#define BOOT_BACKOFF_MIN_SEC 5 /* then 10, 20, ... */
#define BOOT_BACKOFF_MAX_SEC 600
#define BOOT_CHECK_SEC 600 /* re-ping the bootstrap when joined */
#define PROXY_TIMEOUT_SEC 5 /* one request to the proxy, in all */
#define PROXY_BODY_MAX (256 * 1024)
#define PROXY_HEADERS_MAX 16384

struct dht;

/* ---- the hub: from OpenDHT's thread to the loop ---- */

enum msg_kind { MSG_VALUE, MSG_GET_DONE, MSG_PUT_DONE, MSG_PING_DONE };
enum op_kind { OP_GET, OP_PUT, OP_PING };

/* Which record an operation is about. */
enum rec_kind { REC_WANHOSTS = 0, REC_ENDPOINTS = 1 };

struct msg {
	struct msg *next;
	int kind;
	uint64_t id; /* lookup id (value, get) or round (ping) */
	int rec; /* enum rec_kind (value, put) */
	uint64_t day; /* the day of the key a value was read under */
	int ok;
	size_t len;
	unsigned char data[];
};

/* One OpenDHT operation in flight: the user data of its callbacks. It
 * lives until OpenDHT calls its done callback, or until the runner is
 * deleted (then fini frees what is left). */
struct op {
	struct hub *hub;
	int kind;
	uint64_t id;
	int rec; /* enum rec_kind */
	uint64_t day; /* of the key (gets) */
	unsigned nvalues;
	struct op *next, **prevp;
};

/*
 * Shared by the plugin (one reference) and by the call queued with
 * call_on_loop, if any (one more). Everything but svc and self is under
 * mu. At fini, dead is set and d cleared; a queued pump that runs later
 * finds nothing to do and drops its reference.
 */
struct hub {
	pthread_mutex_t mu;
	int refs;
	int dead;
	int pump_queued;
	struct msg *head, **tail;
	size_t nqueued;
	unsigned long dropped;
	struct op *ops;
	size_t nops;
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct dht *d;
};

/* ---- the plugin's state (loop thread only) ---- */

struct lookup {
	struct dht *d;
	uint64_t id;
	struct hl_query *q;
	int pending; /* key lookups not ended yet */
	unsigned ncand;
	struct event *timer;
	struct lookup *next, **prevp;
};

enum req_kind { REQ_GET, REQ_POST };

/* One HTTP request to the proxy, on a connection of its own. */
struct proxy_req {
	struct dht *d;
	int kind;
	int rec; /* enum rec_kind */
	uint64_t id; /* lookup id (GET) */
	uint64_t day; /* of the key (GET) */
	struct evhttp_connection *conn;
	struct event *timer;
	struct evbuffer *line;
	int skipping; /* in a line too long to read */
	int in_cb; /* inside an evhttp callback: do not free conn */
	int cancelled; /* cancelled while in_cb: timer frees it */
	int starting; /* inside evhttp_make_request */
	int failed_early; /* it called back before returning */
	unsigned nlines;
	struct proxy_req *next, **prevp;
};

/* The endpoints record of one service for one day, signed once and put
 * again unchanged until the endpoints or the day change. */
struct ep_pub {
	char keyhash[41];
	uint64_t day;
	unsigned char rec[DHT_EP_MAX];
	size_t len; /* 0: it could not be made (said once) */
	dht_value *dvalue; /* native: one object, so its id stays */
	char value_id[24]; /* proxy: the id we give it */
};

struct bootstrap {
	char host[256];
	char port[8];
	char text[272];
};

/* One name lookup (one address family) of a bootstrap host. d is NULL
 * once the plugin let go of it: its callback then only frees it. */
struct resolve {
	struct dht *d;
	uint64_t round;
	size_t idx;
	int family;
	struct evdns_request *req;
	struct resolve *next, **prevp;
};

struct dht {
	const struct hl_services *svc;
	struct hl_plugin *self;
	struct event_base *base;
	struct hub *hub;

	/* proxy mode */
	int proxy_mode;
	char proxy_url[512];
	char proxy_host[256];
	int proxy_port;
	char proxy_path[512]; /* ends with '/' */
	struct proxy_req *reqs;
	size_t nreqs;

	/* native mode */
	dht_runner *runner;
	int port;
	struct bootstrap boot[MAX_BOOTSTRAP];
	size_t nboot;
	struct resolve *resolves;
	uint64_t round;
	int round_pending, round_done, round_ok;
	char round_err[256];
	struct event *boot_timer; /* next round */
	struct event *boot_deadline; /* this round's answers */
	int backoff;
	int joined;
	int warned_offline;

	/* publishing */
	char *wanhosts;
	char value[DHT_VALUE_MAX + 1];
	size_t value_len;
	dht_value *dvalue; /* native: one object, so its id stays */
	char value_id[24]; /* proxy: the id we give it */
	struct event *publish_timer;
	int said_empty, said_dropped, said_published, said_put_failed;
	/* publishing the endpoints record */
	char *endpoints;
	char ep_text[DHT_EP_TEXT_MAX + 1];
	size_t ep_len;
	struct ep_pub *eps;
	size_t neps, eps_cap;
	int said_ep_dropped, said_ep_published;

	/* lookups */
	struct lookup *lookups;
	size_t nlookups;
	uint64_t next_id;
	int said_busy;

	/* counters, logged at fini */
	unsigned long n_lookups, n_records, n_empty, n_malformed, n_candidates;
	unsigned long n_puts_ok, n_puts_failed;
	unsigned long n_ep_records, n_ep_forged, n_ep_oversized, n_ep_malformed;
	unsigned long n_ep_found, n_ep_puts_ok, n_ep_puts_failed;
};

static void lookup_value(struct dht *d, uint64_t id, int rec, uint64_t day,
                         const void *data, size_t len);
static void lookup_key_done(struct dht *d, uint64_t id);
static void put_done(struct dht *d, int rec, int ok);
static void boot_step_done(struct dht *d, uint64_t round, int ok);
static void publish_round(struct dht *d);

/* ---- hub ---- */

static struct hub *
hub_new(const struct hl_services *svc, struct hl_plugin *self, struct dht *d)
{
	struct hub *h = calloc(1, sizeof *h);

	if (h == NULL)
		return NULL;
	if (pthread_mutex_init(&h->mu, NULL) != 0) {
		free(h);
		return NULL;
	}
	h->refs = 1;
	HL_QUEUE_INIT(h->head, h->tail);
	h->svc = svc;
	h->self = self;
	h->d = d;
	return h;
}

static void
hub_unref(struct hub *h)
{
	int last;

	pthread_mutex_lock(&h->mu);
	last = --h->refs == 0;
	pthread_mutex_unlock(&h->mu);
	if (!last)
		return;
	while (h->head != NULL) {
		struct msg *m = h->head;
		h->head = m->next;
		free(m);
	}
	pthread_mutex_destroy(&h->mu);
	free(h);
}

/* Loop thread: hand every queued result to the plugin, if still there. */
static void
hub_pump(void *arg)
{
	struct hub *h = arg;
	struct msg *list;

	pthread_mutex_lock(&h->mu);
	HL_QUEUE_TAKE_ALL(list, h->head, h->tail);
	h->nqueued = 0;
	h->pump_queued = 0;
	pthread_mutex_unlock(&h->mu);
	while (list != NULL) {
		struct msg *m = list;
		struct dht *d = h->dead ? NULL : h->d;

		list = m->next;
		if (d != NULL) {
			switch (m->kind) {
			case MSG_VALUE:
				lookup_value(d, m->id, m->rec, m->day, m->data,
				             m->len);
				break;
			case MSG_GET_DONE:
				lookup_key_done(d, m->id);
				break;
			case MSG_PUT_DONE:
				put_done(d, m->rec, m->ok);
				break;
			case MSG_PING_DONE:
				boot_step_done(d, m->id, m->ok);
				break;
			}
		}
		free(m);
	}
	hub_unref(h);
}

static void
noop(void *arg HL_UNUSED)
{
}

/* Any thread: queue m for the loop (and own it). */
static void
hub_post(struct hub *h, struct msg *m)
{
	int call = 0;

	if (m == NULL)
		return;
	pthread_mutex_lock(&h->mu);
	if (h->dead || h->nqueued >= MAX_QUEUED) {
		if (!h->dead)
			h->dropped++;
		pthread_mutex_unlock(&h->mu);
		free(m);
		return;
	}
	HL_QUEUE_PUSH(h->head, h->tail, m);
	h->nqueued++;
	if (!h->pump_queued) {
		h->pump_queued = 1;
		h->refs++;
		call = 1;
	}
	pthread_mutex_unlock(&h->mu);
	if (call && h->svc->call_on_loop(h->self, hub_pump, h) != 0) {
		/* The core is stopping: fini will free what is queued. */
		pthread_mutex_lock(&h->mu);
		h->pump_queued = 0;
		h->refs--;
		pthread_mutex_unlock(&h->mu);
	}
}

static struct msg *
msg_new(int kind, const struct op *o, int ok, const void *data, size_t len)
{
	struct msg *m = malloc(sizeof *m + len);

	if (m == NULL)
		return NULL;
	m->kind = kind;
	m->id = o->id;
	m->rec = o->rec;
	m->day = o->day;
	m->ok = ok;
	m->len = len;
	if (len)
		memcpy(m->data, data, len);
	return m;
}

/* Loop thread: a new operation's context, or NULL when too many run. */
static struct op *
op_new(struct hub *h, int kind, int rec, uint64_t id, uint64_t day)
{
	struct op *o;

	pthread_mutex_lock(&h->mu);
	if (h->nops >= MAX_OPS || (o = calloc(1, sizeof *o)) == NULL) {
		pthread_mutex_unlock(&h->mu);
		return NULL;
	}
	o->hub = h;
	o->kind = kind;
	o->id = id;
	o->rec = rec;
	o->day = day;
	HL_LIST_INSERT(h->ops, o);
	h->nops++;
	pthread_mutex_unlock(&h->mu);
	return o;
}

static void
op_unlink_locked(struct hub *h, struct op *o)
{
	HL_LIST_REMOVE(o);
	h->nops--;
}

/* OpenDHT's thread: one value of a get. */
static bool
op_value_callback(const dht_value *v, void *arg)
{
	struct op *o = arg;
	dht_data_view dv = dht_value_get_data(v);
	size_t max = o->rec == REC_ENDPOINTS ? DHT_EP_MAX : DHT_VALUE_MAX;
	/* One byte more than a record may hold marks an oversized one. */
	size_t len = dv.size > max ? max + 1 : dv.size;

	hub_post(o->hub, msg_new(MSG_VALUE, o, 1, dv.data, len));
	return ++o->nvalues < MAX_VALUES_PER_GET;
}

/* OpenDHT's thread (or, while the runner is deleted, the loop's): an
 * operation ended; its context goes. */
static void
op_done_callback(bool ok, void *arg)
{
	struct op *o = arg;
	struct hub *h = o->hub;
	int kind = o->kind == OP_GET   ? MSG_GET_DONE
	           : o->kind == OP_PUT ? MSG_PUT_DONE
	                               : MSG_PING_DONE;

	pthread_mutex_lock(&h->mu);
	op_unlink_locked(h, o);
	pthread_mutex_unlock(&h->mu);
	hub_post(h, msg_new(kind, o, ok, NULL, 0));
	free(o);
}

/* ---- lookups (client side) ---- */

static struct lookup *
lookup_find(struct dht *d, uint64_t id)
{
	for (struct lookup *lk = d->lookups; lk != NULL; lk = lk->next)
		if (lk->id == id)
			return lk;
	return NULL;
}

static void proxy_req_cancel(struct proxy_req *r);

static void
lookup_free(struct lookup *lk)
{
	struct dht *d = lk->d;
	struct proxy_req *r, *rn;

	HL_LIST_REMOVE(lk);
	d->nlookups--;
	for (r = d->reqs; r != NULL; r = rn) {
		rn = r->next;
		if (r->kind == REQ_GET && r->id == lk->id)
			proxy_req_cancel(r);
	}
	hl_event_free(&lk->timer);
	free(lk);
}

static void
lookup_finish(struct lookup *lk)
{
	struct dht *d = lk->d;
	struct hl_query *q = lk->q;

	d->svc->log(d->self, HL_LOG_DEBUG, "lookup of %.8s ended: %u address%s",
	            d->svc->query_keyhash(q), lk->ncand,
	            lk->ncand == 1 ? "" : "es");
	lookup_free(lk);
	d->svc->query_done(d->self, q);
}

static void
lookup_timeout_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                        void *arg)
{
	lookup_finish(arg);
}

/* Give lookup id (which may end meanwhile) the candidate addr. */
static void
lookup_feed(struct dht *d, uint64_t id, const char *addr)
{
	struct lookup *lk = lookup_find(d, id);

	/* The core may end the route while we feed it. */
	if (lk == NULL || lk->ncand >= MAX_CANDIDATES)
		return;
	lk->ncand++;
	d->n_candidates++;
	d->svc->log(d->self, HL_LOG_DEBUG, "lookup of %.8s: %s",
	            d->svc->query_keyhash(lk->q), addr);
	d->svc->query_candidate(d->self, lk->q, addr);
}

/* An endpoints record read for lookup lk under the key of day: fed to
 * the router only when the service's own key signed it for that key. */
static void
lookup_endpoints(struct dht *d, struct lookup *lk, uint64_t day,
                 const void *data, size_t len)
{
	struct dht_ep_record rec;
	const char *kh = d->svc->query_keyhash(lk->q), *why = NULL;
	uint64_t id = lk->id;
	enum dht_ep_result r;

	d->n_ep_records++;
	r = dht_ep_open(data, len, kh, day, &rec, &why);
	if (r != DHT_EP_OK) {
		static const char *const what[] = {
		    [DHT_EP_OVERSIZED] = "an oversized",
		    [DHT_EP_MALFORMED] = "a malformed",
		    [DHT_EP_FORGED] = "a forged"};
		if (r == DHT_EP_OVERSIZED)
			d->n_ep_oversized++;
		else if (r == DHT_EP_FORGED)
			d->n_ep_forged++;
		else
			d->n_ep_malformed++;
		d->svc->log(d->self, HL_LOG_DEBUG,
		            "lookup of %.8s: dropping %s endpoints record (%zu "
		            "bytes: %s)",
		            kh, what[r], len, why ? why : "?");
		return;
	}
	for (size_t i = 0; i < rec.n; i++) {
		d->n_ep_found++;
		lookup_feed(d, id, rec.eps[i]);
	}
}

/* A record read for lookup id (which may be gone) under the key of day. */
static void
lookup_value(struct dht *d, uint64_t id, int rec, uint64_t day,
             const void *data, size_t len)
{
	char addrs[DHT_VALUE_ADDRS_MAX][DHT_ADDR_MAX];
	struct lookup *lk = lookup_find(d, id);
	const char *why = NULL;
	size_t n = 0;
	enum dht_value_result r;

	if (lk == NULL)
		return;
	if (rec == REC_ENDPOINTS) {
		lookup_endpoints(d, lk, day, data, len);
		return;
	}
	d->n_records++;
	r = dht_value_parse(data, len, addrs, &n, &why);
	if (r == DHT_VALUE_EMPTY) {
		d->n_empty++;
		d->svc->log(d->self, HL_LOG_DEBUG,
		            "lookup of %.8s: ignoring an empty record",
		            d->svc->query_keyhash(lk->q));
		return;
	}
	if (r == DHT_VALUE_MALFORMED) {
		d->n_malformed++;
		d->svc->log(
		    d->self, HL_LOG_DEBUG,
		    "lookup of %.8s: ignoring a malformed record (%zu bytes: "
		    "%s)",
		    d->svc->query_keyhash(lk->q), len, why ? why : "?");
		return;
	}
	for (size_t i = 0; i < n; i++)
		lookup_feed(d, id, addrs[i]);
}

/* One key's lookup of lookup id ended. */
static void
lookup_key_done(struct dht *d, uint64_t id)
{
	struct lookup *lk = lookup_find(d, id);

	if (lk != NULL && --lk->pending <= 0)
		lookup_finish(lk);
}

/* ---- the proxy over HTTP ---- */

static void
proxy_req_free(struct proxy_req *r)
{
	HL_LIST_REMOVE(r);
	r->d->nreqs--;
	if (r->conn != NULL)
		evhttp_connection_free(r->conn);
	hl_event_free(&r->timer);
	if (r->line != NULL)
		evbuffer_free(r->line);
	free(r);
}

static void
proxy_req_cancel(struct proxy_req *r)
{
	struct timeval now = {0, 0};

	if (!r->in_cb) {
		proxy_req_free(r);
		return;
	}
	/* evhttp is running one of r's callbacks: free it from the loop. */
	r->cancelled = 1;
	evtimer_add(r->timer, &now);
}

/* A line of a GET's answer that is not a value, or too long to read. */
static void
proxy_bad_line(struct proxy_req *r, int too_long)
{
	if (r->rec == REC_WANHOSTS)
		r->d->n_malformed++;
	else if (too_long)
		r->d->n_ep_oversized++; /* a record of over 6 KiB */
	else
		r->d->n_ep_malformed++;
}

static void
proxy_line(struct proxy_req *r, const char *line, size_t len)
{
	/* Whatever a line may hold: an oversized endpoints record is
	 * decoded, then dropped as oversized. */
	unsigned char buf[DHT_PROXY_LINE_MAX];
	size_t cap = r->rec == REC_WANHOSTS ? DHT_VALUE_MAX + 1 : sizeof buf;
	long n;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' '))
		len--;
	if (len == 0)
		return;
	if (++r->nlines > MAX_VALUES_PER_GET)
		return;
	n = dht_proxy_line(line, len, buf, cap);
	if (n < 0) {
		struct lookup *lk = lookup_find(r->d, r->id);
		proxy_bad_line(r, 0);
		if (lk != NULL)
			r->d->svc->log(
			    r->d->self, HL_LOG_DEBUG,
			    "lookup of %.8s: ignoring a line of the proxy's "
			    "answer that is not a value",
			    r->d->svc->query_keyhash(lk->q));
		return;
	}
	lookup_value(r->d, r->id, r->rec, r->day, buf, (size_t)n);
}

/* Take the complete lines out of in; keep the rest in r->line. */
static void
proxy_read_lines(struct proxy_req *r, struct evbuffer *in, int final)
{
	char line[DHT_PROXY_LINE_MAX + 1];

	while (!r->cancelled) {
		struct evbuffer_ptr nl = evbuffer_search(in, "\n", 1, NULL);
		size_t take;

		if (nl.pos < 0) {
			size_t have = evbuffer_get_length(r->line);
			size_t more = evbuffer_get_length(in);
			if (r->skipping || have + more > DHT_PROXY_LINE_MAX) {
				evbuffer_drain(in, more);
				if (!r->skipping)
					proxy_bad_line(r, 1);
				r->skipping = 1;
				evbuffer_drain(r->line, have);
			} else {
				evbuffer_remove_buffer(in, r->line, more);
			}
			if (final && !r->skipping &&
			    evbuffer_get_length(r->line) > 0) {
				size_t l = evbuffer_remove(r->line, line,
				                           sizeof line - 1);
				proxy_line(r, line, l);
			}
			return;
		}
		take = (size_t)nl.pos;
		if (r->skipping ||
		    evbuffer_get_length(r->line) + take > DHT_PROXY_LINE_MAX) {
			if (!r->skipping)
				proxy_bad_line(r, 1);
			evbuffer_drain(in, take + 1);
			evbuffer_drain(r->line, evbuffer_get_length(r->line));
			r->skipping = 0;
			continue;
		}
		evbuffer_remove_buffer(in, r->line, take);
		evbuffer_drain(in, 1);
		take = evbuffer_remove(r->line, line, sizeof line - 1);
		proxy_line(r, line, take);
	}
}

static void
proxy_chunk_callback(struct evhttp_request *req, void *arg)
{
	struct proxy_req *r = arg;

	if (r->cancelled || r->kind != REQ_GET)
		return;
	if (evhttp_request_get_response_code(req) != 200)
		return;
	r->in_cb = 1;
	proxy_read_lines(r, evhttp_request_get_input_buffer(req), 0);
	r->in_cb = 0;
}

static void
proxy_req_end(struct proxy_req *r, int ok, const char *why)
{
	struct dht *d = r->d;
	int kind = r->kind, rec = r->rec;
	uint64_t id = r->id;

	if (!ok)
		d->svc->log(d->self, HL_LOG_DEBUG, "proxy %s: %s",
		            kind == REQ_GET ? "lookup" : "put", why);
	proxy_req_free(r);
	if (kind == REQ_GET)
		lookup_key_done(d, id);
	else
		put_done(d, rec, ok);
}

static void
proxy_done_callback(struct evhttp_request *req, void *arg)
{
	struct proxy_req *r = arg;
	int code = req ? evhttp_request_get_response_code(req) : 0;
	char why[64];

	if (r->starting) {
		/* Failed inside evhttp_make_request: end it from the loop
		 * (the connection is still ours: not yet free on
		 * completion). */
		struct timeval now = {0, 0};
		r->failed_early = 1;
		evtimer_add(r->timer, &now);
		return;
	}
	/* evhttp frees the connection once this returns (free on
	 * completion); we must not. */
	r->conn = NULL;
	if (r->cancelled)
		return; /* the timer frees r */
	if (code == 200 && r->kind == REQ_GET) {
		r->in_cb = 1;
		proxy_read_lines(r, evhttp_request_get_input_buffer(req), 1);
		r->in_cb = 0;
		if (r->cancelled)
			return;
	}
	if (code == 0)
		snprintf(
		    why, sizeof why,
		    "no answer from the proxy (refused, unreachable, or too "
		    "large)");
	else
		snprintf(why, sizeof why, "the proxy answered HTTP %d", code);
	proxy_req_end(r, code == 200, why);
}

static void
proxy_timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                     void *arg)
{
	struct proxy_req *r = arg;

	if (r->cancelled) {
		proxy_req_free(r);
		return;
	}
	proxy_req_end(r, 0,
	              r->failed_early ? "cannot connect to the proxy"
	                              : "no complete answer within 5 s");
}

/* Start one request (a GET for lookup id of the key of day, or a POST
 * of body), about a record of kind rec; 0, or -1 (nothing started). */
static int
proxy_request(struct dht *d, int kind, int rec, uint64_t id, uint64_t day,
              const char *key, const char *body)
{
	struct proxy_req *r = calloc(1, sizeof *r);
	struct timeval tv = {PROXY_TIMEOUT_SEC, 0};
	struct evhttp_request *req;
	struct evkeyvalq *hdr;
	char uri[600], host[300];

	if (r == NULL)
		return -1;
	r->d = d;
	r->kind = kind;
	r->rec = rec;
	r->id = id;
	r->day = day;
	HL_LIST_INSERT(d->reqs, r);
	d->nreqs++;
	r->timer = evtimer_new(d->base, proxy_timer_callback, r);
	r->line = evbuffer_new();
	r->conn = evhttp_connection_base_new(d->base, d->svc->dns_base(d->self),
	                                     d->proxy_host,
	                                     (unsigned short)d->proxy_port);
	if (r->timer == NULL || r->line == NULL || r->conn == NULL)
		goto fail;
	evhttp_connection_set_max_body_size(r->conn, PROXY_BODY_MAX);
	evhttp_connection_set_max_headers_size(r->conn, PROXY_HEADERS_MAX);
	evhttp_connection_set_timeout(r->conn, PROXY_TIMEOUT_SEC);
	evhttp_connection_set_retries(r->conn, 0);
	req = evhttp_request_new(proxy_done_callback, r);
	if (req == NULL)
		goto fail;
	if (kind == REQ_GET)
		evhttp_request_set_chunked_cb(req, proxy_chunk_callback);
	hdr = evhttp_request_get_output_headers(req);
	snprintf(host, sizeof host, "%s:%d", d->proxy_host, d->proxy_port);
	evhttp_add_header(hdr, "Host", host);
	evhttp_add_header(hdr, "User-Agent", "hlcore-dht");
	evhttp_add_header(hdr, "Connection", "close");
	if (body != NULL) {
		evhttp_add_header(hdr, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(req), body,
		             strlen(body));
	}
	snprintf(uri, sizeof uri, "%skey/%s", d->proxy_path, key);
	r->starting = 1;
	if (evhttp_make_request(
	        r->conn, req,
	        kind == REQ_GET ? EVHTTP_REQ_GET : EVHTTP_REQ_POST, uri) != 0)
		goto fail;
	r->starting = 0;
	if (!r->failed_early) {
		evhttp_connection_free_on_completion(r->conn);
		evtimer_add(r->timer, &tv);
	}
	return 0;
fail:
	d->svc->log(d->self, HL_LOG_DEBUG,
	            "proxy: cannot start a request to %s", d->proxy_url);
	proxy_req_free(r);
	return -1;
}

/* ---- publishing (server side) ---- */

static void
put_done(struct dht *d, int rec, int ok)
{
	size_t nids = d->svc->identity_count(d->self);

	if (ok) {
		int *said = rec == REC_ENDPOINTS ? &d->said_ep_published
		                                 : &d->said_published;
		if (rec == REC_ENDPOINTS)
			d->n_ep_puts_ok++;
		else
			d->n_puts_ok++;
		if (*said)
			return;
		*said = 1;
		d->said_put_failed = 0;
		if (rec == REC_ENDPOINTS)
			d->svc->log(d->self, HL_LOG_INFO,
			            "published the endpoints \"%s\" for %zu "
			            "service%s (signed, beside WANHosts)",
			            d->ep_text, nids, nids == 1 ? "" : "s");
		else
			d->svc->log(d->self, HL_LOG_INFO,
			            "published \"%s\" for %zu service%s",
			            d->value, nids, nids == 1 ? "" : "s");
		return;
	}
	if (rec == REC_ENDPOINTS)
		d->n_ep_puts_failed++;
	else
		d->n_puts_failed++;
	/* Before the node joined, puts fail at once; they are made again
	 * when it joins. */
	if (!d->said_put_failed && !d->said_published &&
	    !d->said_ep_published && (d->proxy_mode || d->joined)) {
		d->said_put_failed = 1;
		d->svc->log(d->self, HL_LOG_INFO,
		            "a put did not reach the DHT yet (offline?); it is "
		            "retried every %d min",
		            REPUBLISH_SEC / 60);
	}
}

static void
publish_timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                       void *arg)
{
	publish_round(arg);
}

static void
publish_schedule(struct dht *d)
{
	int64_t next = dht_key_days_next_change((int64_t)time(NULL)) + 2;
	struct timeval tv = {
	    next < REPUBLISH_SEC ? (time_t)next : REPUBLISH_SEC, 0};

	evtimer_add(d->publish_timer, &tv);
}

/* Publish from the loop, soon: the events of one change (WANHosts, then
 * endpoints) make one round. */
static void
publish_soon(struct dht *d)
{
	struct timeval now = {0, 0};

	evtimer_add(d->publish_timer, &now);
}

static void
ep_pub_free(struct ep_pub *e)
{
	if (e->dvalue != NULL)
		dht_value_unref(e->dvalue);
	e->dvalue = NULL;
}

/* Forget the signed records of the days not in days[0..ndays) (all of
 * them when ndays is 0). */
static void
ep_prune(struct dht *d, const uint64_t *days, size_t ndays)
{
	size_t kept = 0;

	for (size_t i = 0; i < d->neps; i++) {
		int keep = 0;
		for (size_t j = 0; j < ndays; j++)
			keep |= d->eps[i].day == days[j];
		if (!keep)
			ep_pub_free(&d->eps[i]);
		else if (kept != i)
			d->eps[kept++] = d->eps[i];
		else
			kept++;
	}
	d->neps = kept;
}

/* The endpoints record of service id for day, made and signed on first
 * use; NULL when there is none to put (said once per change). */
static struct ep_pub *
ep_pub_get(struct dht *d, const struct hl_identity *id, uint64_t day)
{
	struct ep_pub *e;
	const char *why = NULL;

	for (size_t i = 0; i < d->neps; i++)
		if (d->eps[i].day == day &&
		    strcmp(d->eps[i].keyhash, id->keyhash) == 0)
			return d->eps[i].len > 0 ? &d->eps[i] : NULL;
	if (d->neps == d->eps_cap) {
		size_t cap = d->eps_cap ? d->eps_cap * 2 : 4;
		struct ep_pub *n = realloc(d->eps, cap * sizeof *n);
		if (n == NULL)
			return NULL;
		d->eps = n;
		d->eps_cap = cap;
	}
	e = &d->eps[d->neps++];
	memset(e, 0, sizeof *e);
	snprintf(e->keyhash, sizeof e->keyhash, "%s", id->keyhash);
	e->day = day;
	e->len = dht_ep_make(id->keyhash, day, d->ep_text, id->cert_der,
	                     id->cert_der_len, id->key_pem, e->rec,
	                     sizeof e->rec, &why);
	if (e->len == 0) {
		/* Once per day and change: the record of the next day is
		 * tried (and fails) afresh. */
		d->svc->log(d->self, HL_LOG_WARN,
		            "cannot publish the endpoints of %s in the DHT: %s",
		            id->name, why ? why : "?");
		return NULL;
	}
	if (!d->proxy_mode) {
		e->dvalue = dht_value_new(e->rec, e->len);
		if (e->dvalue == NULL) {
			d->neps--;
			return NULL;
		}
	} else {
		uint64_t rid;
		randombytes_buf(&rid, sizeof rid);
		snprintf(e->value_id, sizeof e->value_id, "%llu",
		         (unsigned long long)(rid >> 1));
	}
	return e;
}

/* A proxy POST body of value data[0..len) with id vid, in a new string;
 * NULL when out of memory. */
static char *
proxy_body(const void *data, size_t len, const char *vid)
{
	size_t b64len =
	    sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	size_t cap = b64len + 64;
	char *body = malloc(cap), *b64 = malloc(b64len);

	if (body != NULL && b64 != NULL) {
		sodium_bin2base64(b64, b64len, data, len,
		                  sodium_base64_VARIANT_ORIGINAL);
		snprintf(body, cap,
		         "{\"data\":\"%s\",\"id\":\"%s\",\"type\":0}", b64,
		         vid);
	} else {
		free(body);
		body = NULL;
	}
	free(b64);
	return body;
}

/* Put a value under key: data as a proxy POST, or dv natively. */
static void
put_one(struct dht *d, int rec, const char *key, const void *data, size_t len,
        const char *vid, dht_value *dv)
{
	if (d->proxy_mode) {
		char *body = proxy_body(data, len, vid);
		if (body == NULL ||
		    proxy_request(d, REQ_POST, rec, 0, 0, key, body) != 0)
			put_done(d, rec, 0);
		free(body);
	} else {
		struct op *o = dv ? op_new(d->hub, OP_PUT, rec, 0, 0) : NULL;
		dht_infohash h;
		if (o == NULL) {
			put_done(d, rec, 0);
			return;
		}
		dht_infohash_from_hex(&h, key);
		dht_runner_put(d->runner, &h, dv, op_done_callback, o, false);
	}
}

static void
publish_round(struct dht *d)
{
	size_t nids = d->svc->identity_count(d->self), ndays;
	uint64_t days[2];

	publish_schedule(d);
	if (nids == 0)
		return;
	if (d->value_len == 0 && d->ep_len == 0) {
		if (!d->said_empty)
			d->svc->log(
			    d->self, HL_LOG_INFO,
			    "nothing to publish: this node knows no address "
			    "where it can be reached from outside (no "
			    "transport-tls advertise:, no upnp mapping, no "
			    "yggdrasil address, no transport-udp advertise: "
			    "or hub); looking services up still works");
		d->said_empty = 1;
		return;
	}
	d->said_empty = 0;
	if (!d->proxy_mode && d->runner == NULL)
		return;
	ndays = dht_key_days((int64_t)time(NULL), days);
	ep_prune(d, days, ndays);
	for (size_t i = 0; i < nids; i++) {
		const struct hl_identity *id = d->svc->identity_at(d->self, i);

		if (id == NULL)
			continue;
		for (size_t j = 0; j < ndays; j++) {
			char key[41];
			struct ep_pub *e;

			if (d->value_len > 0 &&
			    dht_key(id->keyhash, days[j], key) == 0) {
				d->svc->log(d->self, HL_LOG_DEBUG,
				            "putting %s's addresses under %s "
				            "(day %llu)",
				            id->name, key,
				            (unsigned long long)days[j]);
				put_one(d, REC_WANHOSTS, key, d->value,
				        d->value_len, d->value_id, d->dvalue);
			}
			if (d->ep_len == 0 ||
			    dht_ep_key(id->keyhash, days[j], key) != 0 ||
			    (e = ep_pub_get(d, id, days[j])) == NULL)
				continue;
			d->svc->log(
			    d->self, HL_LOG_DEBUG,
			    "putting %s's endpoints under %s (day %llu, "
			    "%zu bytes)",
			    id->name, key, (unsigned long long)days[j], e->len);
			put_one(d, REC_ENDPOINTS, key, e->rec, e->len,
			        e->value_id, e->dvalue);
		}
	}
}

/* A new value of an event's text: 1 when it changed (kept in *slot),
 * 0 when it is the same (or out of memory). */
static int
text_changed(char **slot, const char *text)
{
	char *copy;

	if (*slot != NULL && strcmp(*slot, text) == 0)
		return 0;
	copy = strdup(text);
	if (copy == NULL)
		return 0;
	free(*slot);
	*slot = copy;
	return 1;
}

/* Once per run: what of this node's addresses its DHT records leave
 * out. */
static void
warn_left_out(struct dht *d, int *said, size_t dropped, const char *what,
              const char *limits, const char *text)
{
	if (dropped == 0 || *said)
		return;
	*said = 1;
	d->svc->log(d->self, HL_LOG_WARN,
	            "leaving %zu of this node's %s out of its DHT record "
	            "(malformed, or past %s): \"%s\"",
	            dropped, what, limits, text);
}

static void
wanhosts_event(struct dht *d, const char *text)
{
	size_t dropped = 0;

	if (!text_changed(&d->wanhosts, text))
		return;
	d->value_len =
	    dht_value_make(text, d->value, sizeof d->value, &dropped);
	warn_left_out(d, &d->said_dropped, dropped, "WANHosts",
	              "16 addresses or 1 KiB", text);
	if (d->dvalue != NULL) {
		dht_value_unref(d->dvalue);
		d->dvalue = NULL;
	}
	d->said_published = 0;
	if (d->value_len > 0 && !d->proxy_mode)
		d->dvalue =
		    dht_value_new((const uint8_t *)d->value, d->value_len);
	else if (d->value_len > 0) {
		uint64_t rid;
		randombytes_buf(&rid, sizeof rid);
		snprintf(d->value_id, sizeof d->value_id, "%llu",
		         (unsigned long long)(rid >> 1));
	}
	publish_soon(d);
}

static void
endpoints_event(struct dht *d, const char *text)
{
	size_t dropped = 0;

	if (!text_changed(&d->endpoints, text))
		return;
	d->ep_len =
	    dht_ep_filter(text, d->ep_text, sizeof d->ep_text, &dropped);
	warn_left_out(d, &d->said_ep_dropped, dropped, "endpoints",
	              "16 endpoints or 1 KiB", text);
	/* Signed again, with the new endpoints, at the next round. */
	ep_prune(d, NULL, 0);
	d->said_ep_published = 0;
	publish_soon(d);
}

static void
dht_event(void *state, const struct hl_event *ev)
{
	struct dht *d = state;
	const char *text = ev->text ? ev->text : "";

	if (ev->type == HL_EVENT_WANHOSTS)
		wanhosts_event(d, text);
	else if (ev->type == HL_EVENT_ENDPOINTS)
		endpoints_event(d, text);
}

/* ---- joining the network (native mode) ---- */

static void
boot_round_end(struct dht *d)
{
	struct timeval tv = {0, 0};
	char list[512] = "";
	size_t len = 0;

	if (d->round_done)
		return;
	d->round_done = 1;
	evtimer_del(d->boot_deadline);
	for (size_t i = 0; i < d->nboot; i++)
		len += (size_t)snprintf(
		    list + len, len < sizeof list ? sizeof list - len : 0,
		    "%s%s", i ? ", " : "", d->boot[i].text);
	if (d->round_ok) {
		if (!d->joined) {
			d->svc->log(
			    d->self, HL_LOG_INFO, "%s the DHT (bootstrap: %s)",
			    d->warned_offline ? "reached" : "joined", list);
			d->joined = 1;
			publish_round(d); /* puts made offline may be lost */
		}
		d->backoff = BOOT_BACKOFF_MIN_SEC;
		tv.tv_sec = BOOT_CHECK_SEC;
	} else {
		if (!d->warned_offline) {
			d->warned_offline = 1;
			d->svc->log(
			    d->self, HL_LOG_WARN,
			    "no DHT bootstrap node answered (%s%s%s): "
			    "working offline, retrying with backoff up to "
			    "%d min",
			    list, d->round_err[0] ? "; " : "", d->round_err,
			    BOOT_BACKOFF_MAX_SEC / 60);
		} else if (d->joined) {
			d->svc->log(
			    d->self, HL_LOG_INFO,
			    "the DHT bootstrap nodes (%s) stopped answering; "
			    "retrying with backoff",
			    list);
		} else {
			d->svc->log(d->self, HL_LOG_DEBUG,
			            "still no answer from %s; next try in %d s",
			            list, d->backoff);
		}
		d->joined = 0;
		tv.tv_sec = d->backoff;
		d->backoff = d->backoff * 2 > BOOT_BACKOFF_MAX_SEC
		                 ? BOOT_BACKOFF_MAX_SEC
		                 : d->backoff * 2;
	}
	evtimer_add(d->boot_timer, &tv);
}

/* One resolve or ping of round ended. */
static void
boot_step_done(struct dht *d, uint64_t round, int ok)
{
	if (round != d->round || d->round_done)
		return;
	if (ok)
		d->round_ok = 1;
	if (--d->round_pending <= 0 || d->round_ok)
		boot_round_end(d);
}

static void
boot_ping(struct dht *d, uint64_t round, const struct sockaddr *sa,
          socklen_t len)
{
	struct op *o = op_new(d->hub, OP_PING, REC_WANHOSTS, round, 0);

	if (o == NULL)
		return;
	d->round_pending++;
	dht_runner_ping(d->runner, (struct sockaddr *)sa, len, op_done_callback,
	                o);
}

static void
resolve_unlink(struct resolve *rs)
{
	HL_LIST_REMOVE(rs);
	rs->next = NULL;
	rs->prevp = NULL;
}

/*
 * Let go of a name lookup still running. When the core is stopping, the
 * loop never runs again and the core's evdns_base_free (without failing
 * requests) frees it quietly, so it is left alone: cancelling would leave
 * libevent's deferred cancel callback, and what it frees, for a loop
 * iteration that never comes. Otherwise it is cancelled; its callback,
 * deferred to the loop, then frees rs.
 */
static void
resolve_drop(struct dht *d, struct resolve *rs, int stopping)
{
	resolve_unlink(rs);
	rs->d = NULL;
	if (stopping || rs->req == NULL)
		free(rs);
	else
		evdns_cancel_request(d->svc->dns_base(d->self), rs->req);
}

/* evdns: the addresses of a bootstrap host, one family. */
static void
boot_resolve_callback(int result, char type, int count, int ttl HL_UNUSED,
                      void *addresses, void *arg)
{
	struct resolve *rs = arg;
	struct dht *d = rs->d;
	uint64_t round = rs->round;
	int port;

	if (d == NULL) {
		free(rs);
		return;
	}
	resolve_unlink(rs);
	port = atoi(d->boot[rs->idx].port);
	if (result != DNS_ERR_NONE) {
		if (d->round_err[0] == '\0' || rs->family == AF_INET)
			snprintf(d->round_err, sizeof d->round_err,
			         "name lookup of %s failed: %s",
			         d->boot[rs->idx].host,
			         evdns_err_to_string(result));
	} else if (type == DNS_IPv4_A || type == DNS_IPv6_AAAA) {
		int family = type == DNS_IPv4_A ? AF_INET : AF_INET6;
		size_t iplen = family == AF_INET ? 4 : 16;
		for (int i = 0; i < count && i < 2; i++) {
			struct sockaddr_storage ss;
			socklen_t len = hl_sockaddr_make(
			    &ss, family, (char *)addresses + iplen * i,
			    (uint16_t)port);
			boot_ping(d, round, (struct sockaddr *)&ss, len);
		}
	}
	free(rs);
	boot_step_done(d, round, 0);
}

/* Resolve bootstrap host i for round: a numeric address at once, a name
 * through the core's evdns (IPv4 and IPv6, two steps of the round). */
static void
boot_resolve(struct dht *d, uint64_t round, size_t i)
{
	struct evdns_base *dns = d->svc->dns_base(d->self);
	struct evutil_addrinfo hints, *res = NULL;
	static const int families[2] = {AF_INET, AF_INET6};

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	hints.ai_flags = EVUTIL_AI_NUMERICHOST | EVUTIL_AI_NUMERICSERV;
	if (evutil_getaddrinfo(d->boot[i].host, d->boot[i].port, &hints,
	                       &res) == 0) {
		if (res != NULL)
			boot_ping(d, round, res->ai_addr,
			          (socklen_t)res->ai_addrlen);
		evutil_freeaddrinfo(res);
		boot_step_done(d, round, 0);
		return;
	}
	if (dns == NULL) {
		snprintf(d->round_err, sizeof d->round_err,
		         "cannot look up %s: hlcore has no DNS resolver",
		         d->boot[i].host);
		boot_step_done(d, round, 0);
		return;
	}
	d->round_pending++; /* two steps for this host */
	for (int f = 0; f < 2; f++) {
		struct resolve *rs = calloc(1, sizeof *rs);

		if (rs == NULL) {
			boot_step_done(d, round, 0);
			continue;
		}
		rs->d = d;
		rs->round = round;
		rs->idx = i;
		rs->family = families[f];
		HL_LIST_INSERT(d->resolves, rs);
		rs->req =
		    families[f] == AF_INET
		        ? evdns_base_resolve_ipv4(dns, d->boot[i].host, 0,
		                                  boot_resolve_callback, rs)
		        : evdns_base_resolve_ipv6(dns, d->boot[i].host, 0,
		                                  boot_resolve_callback, rs);
		if (rs->req == NULL) {
			/* evdns refused it (and calls nothing). */
			resolve_unlink(rs);
			free(rs);
			boot_step_done(d, round, 0);
		}
	}
}

static void
boot_round(struct dht *d)
{
	struct timeval tv = {BOOT_WAIT_SEC, 0};
	uint64_t round;

	if (d->nboot == 0 || d->runner == NULL)
		return;
	/* A name lookup of the last round still waiting (no name server
	 * answers) is given up: at most one per host and family runs. */
	while (d->resolves != NULL)
		resolve_drop(d, d->resolves, 0);
	round = ++d->round;
	d->round_done = 0;
	d->round_ok = 0;
	d->round_err[0] = '\0';
	d->round_pending = (int)d->nboot + 1; /* +1 until all started */
	evtimer_add(d->boot_deadline, &tv);
	for (size_t i = 0; i < d->nboot && round == d->round; i++)
		boot_resolve(d, round, i);
	boot_step_done(d, round, 0);
}

static void
boot_timer_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                    void *arg)
{
	boot_round(arg);
}

static void
boot_deadline_callback(evutil_socket_t fd HL_UNUSED, short what HL_UNUSED,
                       void *arg)
{
	struct dht *d = arg;

	if (!d->round_ok && d->round_err[0] == '\0')
		snprintf(d->round_err, sizeof d->round_err,
		         "no answer within %d s", BOOT_WAIT_SEC);
	boot_round_end(d);
}

/* ---- the discovery facet ---- */

static int
dht_query_start(void *state, struct hl_query *q)
{
	struct dht *d = state;
	const char *kh = d->svc->query_keyhash(q);
	struct timeval tv = {LOOKUP_TIMEOUT_SEC, 0};
	struct lookup *lk;
	uint64_t days[2];
	size_t ndays;

	if (d->svc->identity_find(d->self, kh) != NULL)
		return -1; /* one of ours: the core dials it directly */
	if (!d->proxy_mode && d->runner == NULL)
		return -1;
	if (d->nlookups >= MAX_LOOKUPS) {
		if (!d->said_busy)
			d->svc->log(
			    d->self, HL_LOG_WARN,
			    "%d lookups already running: not looking up "
			    "more until they end",
			    MAX_LOOKUPS);
		d->said_busy = 1;
		return -1;
	}
	d->said_busy = 0;
	lk = calloc(1, sizeof *lk);
	if (lk == NULL)
		return -1;
	lk->d = d;
	lk->id = ++d->next_id;
	lk->q = q;
	lk->timer = evtimer_new(d->base, lookup_timeout_callback, lk);
	HL_LIST_INSERT(d->lookups, lk);
	d->nlookups++;
	if (lk->timer == NULL) {
		lookup_free(lk);
		return -1;
	}
	ndays = dht_key_days((int64_t)time(NULL), days);
	/* Each day: the WANHosts record, and hlcore's endpoints record. */
	for (size_t i = 0; i < 2 * ndays; i++) {
		int rec = i % 2 ? REC_ENDPOINTS : REC_WANHOSTS;
		uint64_t day = days[i / 2];
		char key[41];

		if ((rec == REC_WANHOSTS ? dht_key(kh, day, key)
		                         : dht_ep_key(kh, day, key)) != 0)
			continue;
		d->svc->log(d->self, HL_LOG_DEBUG,
		            "looking up %.8s%s under %s (day %llu)", kh,
		            rec == REC_WANHOSTS ? "" : "'s endpoints", key,
		            (unsigned long long)day);
		if (d->proxy_mode) {
			if (proxy_request(d, REQ_GET, rec, lk->id, day, key,
			                  NULL) == 0)
				lk->pending++;
		} else {
			struct op *o = op_new(d->hub, OP_GET, rec, lk->id, day);
			dht_infohash h;
			if (o == NULL)
				continue;
			lk->pending++;
			dht_infohash_from_hex(&h, key);
			dht_runner_get(d->runner, &h, op_value_callback,
			               op_done_callback, o);
		}
	}
	if (lk->pending == 0) {
		lookup_free(lk);
		return -1;
	}
	d->n_lookups++;
	evtimer_add(lk->timer, &tv);
	return 0;
}

static void
dht_query_cancel(void *state, struct hl_query *q)
{
	struct dht *d = state;

	for (struct lookup *lk = d->lookups; lk != NULL; lk = lk->next)
		if (lk->q == q) {
			lookup_free(lk);
			return;
		}
}

/* ---- config ---- */

/* "host", "[v6]", "host:port" or "[v6]:port" (the port 1 to 65535,
 * DEFAULT_DHT_PORT when none) into b; 0, or -1. */
static int
parse_bootstrap(const char *s, struct bootstrap *b)
{
	char addr[sizeof b->text + sizeof DEFAULT_DHT_PORT];
	const char *rb = s != NULL && *s == '[' ? strchr(s, ']') : NULL;
	uint16_t port;
	int n;

	if (s == NULL || *s == '\0')
		return -1;
	/* "host" and "[v6]" mean the default port. */
	if (rb != NULL ? rb[1] == '\0' : *s != '[' && strchr(s, ':') == NULL)
		n = snprintf(addr, sizeof addr, "%s:%s", s, DEFAULT_DHT_PORT);
	else
		n = snprintf(addr, sizeof addr, "%s", s);
	if (n < 0 || (size_t)n >= sizeof addr ||
	    hl_addr_split(addr, b->host, sizeof b->host, &port) != 0 ||
	    port == 0)
		return -1;
	snprintf(b->port, sizeof b->port, "%u", port);
	snprintf(b->text, sizeof b->text, "%s", s);
	return 0;
}

/* "http://host[:port][/path]" into d; 0, or -1 with why. */
static int
parse_proxy(const char *s, struct dht *d, const char **why)
{
	struct evhttp_uri *u = evhttp_uri_parse(s);
	const char *scheme, *host, *path;
	int port, ret = -1;

	*why = "not a URL";
	if (u == NULL)
		return -1;
	scheme = evhttp_uri_get_scheme(u);
	host = evhttp_uri_get_host(u);
	path = evhttp_uri_get_path(u);
	port = evhttp_uri_get_port(u);
	if (scheme == NULL || strcmp(scheme, "http") != 0)
		*why = "only http:// proxies are supported";
	else if (host == NULL || *host == '\0' || strlen(host) >= 256)
		*why = "no host";
	else if (evhttp_uri_get_userinfo(u) || evhttp_uri_get_query(u) ||
	         evhttp_uri_get_fragment(u))
		*why = "no user, query or fragment allowed";
	else if (port == 0 || port > 65535)
		*why = "bad port";
	else if (path != NULL && strlen(path) > 400)
		*why = "path too long";
	else {
		if (d != NULL) {
			snprintf(d->proxy_url, sizeof d->proxy_url, "%s", s);
			snprintf(d->proxy_host, sizeof d->proxy_host, "%s",
			         host);
			d->proxy_port = port < 0 ? 80 : port;
			snprintf(d->proxy_path, sizeof d->proxy_path, "%s%s",
			         path && *path ? path : "/",
			         path && *path && path[strlen(path) - 1] != '/'
			             ? "/"
			             : "");
			d->proxy_mode = 1;
		}
		ret = 0;
	}
	evhttp_uri_free(u);
	return ret;
}

/* Check conf, and fill d when not NULL. 0, or -1 (reported). */
static int
read_conf(const struct hl_services *svc, struct hl_plugin *self,
          const struct hl_conf *conf, struct dht *d)
{
	static const char *const allowed[] = {"bootstrap", "port", "proxy",
	                                      NULL};
	const struct hl_conf *boot, *port, *proxy;
	int bad = 0;

	if (svc->conf_check_keys(self, conf, allowed) != 0)
		return -1;
	boot = conf ? svc->conf_get(conf, "bootstrap") : NULL;
	port = conf ? svc->conf_get(conf, "port") : NULL;
	proxy = conf ? svc->conf_get(conf, "proxy") : NULL;
	if (proxy != NULL) {
		const char *why, *s = svc->conf_str(proxy);
		if (s == NULL || parse_proxy(s, d, &why) != 0) {
			svc->conf_error(
			    self, proxy,
			    "dht proxy: expected \"http://host:port/\" (an "
			    "OpenDHT proxy, e.g. dhtnode --proxyserver): %s",
			    s ? why : "not a string");
			bad++;
		}
		if (boot != NULL || port != NULL) {
			svc->conf_error(
			    self, boot ? boot : port,
			    "dht: proxy: uses an OpenDHT proxy instead of a "
			    "node of this host's own, so bootstrap: and port: "
			    "do not apply: remove them, or remove proxy:");
			bad++;
		}
	}
	if (port != NULL) {
		int p = 0; /* the UDP port, 0: any */
		if (hl_conf_int(svc, self, conf, "port", 0, 65535, &p) != 0)
			bad++;
		else if (d != NULL)
			d->port = p;
	}
	if (boot != NULL) {
		size_t n = svc->conf_type(boot) == HL_CONF_LIST
		               ? svc->conf_len(boot)
		               : 0;
		if (svc->conf_type(boot) != HL_CONF_LIST || n > MAX_BOOTSTRAP) {
			svc->conf_error(
			    self, boot,
			    "dht bootstrap: expected a list of at most %d "
			    "\"host:port\" (e.g. [\"%s\"])",
			    MAX_BOOTSTRAP, DEFAULT_BOOTSTRAP);
			bad++;
			n = 0;
		}
		for (size_t i = 0; i < n; i++) {
			const struct hl_conf *it = svc->conf_item(boot, i);
			struct bootstrap b;
			if (parse_bootstrap(svc->conf_str(it), &b) != 0) {
				svc->conf_error(
				    self, it,
				    "dht bootstrap: expected \"host:port\" or "
				    "\"[ipv6]:port\"");
				bad++;
			} else if (d != NULL)
				d->boot[d->nboot++] = b;
		}
	} else if (d != NULL && !d->proxy_mode) {
		parse_bootstrap(DEFAULT_BOOTSTRAP, &d->boot[0]);
		d->nboot = 1;
	}
	return bad ? -1 : 0;
}

static int
dht_validate(const struct hl_services *svc, struct hl_plugin *self,
             const struct hl_conf *conf)
{
	return read_conf(svc, self, conf, NULL);
}

/* ---- init and fini ---- */

static void dht_fini(void *state);

static int
dht_init(const struct hl_services *svc, struct hl_plugin *self,
         const struct hl_conf *conf, void **state)
{
	struct dht *d;
	int e;

	if (!HL_HAS(svc, wanhosts))
		return hl_core_lacks(svc, self, "svc->wanhosts (ABI 1.1)");
	if (sodium_init() < 0)
		return -1;
	HL_STATE_NEW(d, svc, self);
	if (d == NULL)
		return -1;
	d->backoff = BOOT_BACKOFF_MIN_SEC;
	if (read_conf(svc, self, conf, d) != 0) {
		free(d);
		return -1;
	}
	d->hub = hub_new(svc, self, d);
	d->publish_timer = evtimer_new(d->base, publish_timer_callback, d);
	d->boot_timer = evtimer_new(d->base, boot_timer_callback, d);
	d->boot_deadline = evtimer_new(d->base, boot_deadline_callback, d);
	if (d->hub == NULL || d->publish_timer == NULL ||
	    d->boot_timer == NULL || d->boot_deadline == NULL) {
		dht_fini(d);
		return -1;
	}
	if (d->proxy_mode) {
		svc->log(
		    self, HL_LOG_INFO,
		    "using the OpenDHT proxy %s (no DHT node on this host)",
		    d->proxy_url);
	} else {
		d->runner = dht_runner_new();
		if (d->runner == NULL) {
			dht_fini(d);
			return -1;
		}
		e = dht_runner_run(d->runner, (in_port_t)d->port);
		if (e != 0) {
			svc->log(self, HL_LOG_ERROR,
			         "cannot start a DHT node on UDP port %d: %s",
			         d->port, strerror(e < 0 ? -e : e));
			dht_runner_delete(d->runner);
			d->runner = NULL;
			dht_fini(d);
			return -1;
		}
		svc->log(
		    self, HL_LOG_INFO,
		    "DHT node on UDP port %u (OpenDHT %s), %zu bootstrap "
		    "node%s",
		    (unsigned)dht_runner_get_bound_port(d->runner, AF_INET),
		    dht_version(), d->nboot, d->nboot == 1 ? "" : "s");
		boot_round(d);
	}
	*state = d;
	return 0;
}

static void
dht_fini(void *state)
{
	struct dht *d = state;
	struct hub *h = d->hub;
	int stopping;

	while (d->lookups != NULL)
		lookup_free(d->lookups);
	while (d->reqs != NULL)
		proxy_req_free(d->reqs);
	stopping = d->svc->call_on_loop(d->self, noop, NULL) != 0;
	while (d->resolves != NULL)
		resolve_drop(d, d->resolves, stopping);
	hl_event_free(&d->publish_timer);
	hl_event_free(&d->boot_timer);
	hl_event_free(&d->boot_deadline);
	/* Joins OpenDHT's thread: after this no callback of ours runs. */
	if (d->runner != NULL)
		dht_runner_delete(d->runner);
	if (d->dvalue != NULL)
		dht_value_unref(d->dvalue);
	ep_prune(d, NULL, 0);
	free(d->eps);
	if (h != NULL) {
		int pending;

		pthread_mutex_lock(&h->mu);
		while (h->ops != NULL) {
			struct op *o = h->ops;
			op_unlink_locked(h, o);
			free(o);
		}
		h->dead = 1;
		h->d = NULL;
		while (h->head != NULL) {
			struct msg *m = h->head;
			h->head = m->next;
			free(m);
		}
		HL_QUEUE_INIT(h->head, h->tail);
		h->nqueued = 0;
		pending = h->pump_queued;
		pthread_mutex_unlock(&h->mu);
		/* A pump still queued never runs: the core drops the calls
		 * a plugin queued once it has stopped (plugin.h), whether
		 * hlcore is stopping or the plugin was turned off. So its
		 * reference is dropped here. */
		if (pending) {
			pthread_mutex_lock(&h->mu);
			h->pump_queued = 0;
			h->refs--;
			pthread_mutex_unlock(&h->mu);
		}
		if (h->dropped > 0)
			d->svc->log(
			    d->self, HL_LOG_INFO,
			    "%lu DHT results were dropped: the loop was busy",
			    h->dropped);
		hub_unref(h);
	}
	if (d->n_lookups > 0 || d->n_puts_ok + d->n_puts_failed > 0)
		d->svc->log(d->self, HL_LOG_INFO,
		            "%lu lookups: %lu records read, %lu empty and %lu "
		            "malformed ignored, %lu addresses found; %lu puts "
		            "stored, %lu failed",
		            d->n_lookups, d->n_records, d->n_empty,
		            d->n_malformed, d->n_candidates, d->n_puts_ok,
		            d->n_puts_failed);
	if (d->n_ep_records > 0 || d->n_ep_puts_ok + d->n_ep_puts_failed > 0)
		d->svc->log(
		    d->self, HL_LOG_INFO,
		    "endpoints records: %lu read, %lu forged, %lu "
		    "oversized and %lu malformed dropped, %lu endpoints "
		    "found; %lu puts stored, %lu failed",
		    d->n_ep_records, d->n_ep_forged, d->n_ep_oversized,
		    d->n_ep_malformed, d->n_ep_found, d->n_ep_puts_ok,
		    d->n_ep_puts_failed);
	free(d->wanhosts);
	free(d->endpoints);
	free(d);
}

static const struct hl_discovery_ops dht_discovery = {
    .size = sizeof(struct hl_discovery_ops),
    .query_start = dht_query_start,
    .query_cancel = dht_query_cancel,
};

static const struct hl_events_ops dht_events = {
    .size = sizeof(struct hl_events_ops),
    .event = dht_event,
};

HL_PLUGIN(HL_KIND_DISCOVERY, .name = "dht", .version = "1.0",
          .description = "publish and find services through OpenDHT (a node of "
                         "its own, or an HTTP proxy)",
          .default_priority = 40, .init = dht_init, .fini = dht_fini,
          .validate = dht_validate, .discovery = &dht_discovery,
          .events = &dht_events);
