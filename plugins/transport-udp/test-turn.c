/*
 * test-turn: the TURN client (turn.c) against a TURN server played here
 * with libnice's stun library: the URL parser on fixed vectors; Allocate
 * challenged with 401 and answered with credentials whose
 * MESSAGE-INTEGRITY the server checks; CreatePermission; Send indications
 * out and Data indications in (only from permitted peers); a Refresh
 * before the lifetime ends, through a 438 stale nonce; Refresh lifetime 0
 * on close; wrong credentials, a refused Refresh, endless stale nonces
 * and a silent server give their sentences;
 * RFC 7983 demultiplexing against QUIC first bytes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stun/stunagent.h>
#include <stun/stunmessage.h>

#include "check.h"
#include "turn.h"

/* What the client asked to send: the last datagram, and a count. */
static uint8_t sent[4096];
static size_t sent_len;
static int nsent;

static void
capture(void *arg, const uint8_t *buf, size_t len)
{
	(void)arg;
	CHECK(len <= sizeof sent, "sent length %zu", len);
	memcpy(sent, buf, len);
	sent_len = len;
	nsent++;
}

static const uint16_t known[] = {STUN_ATTRIBUTE_USERNAME,
                                 STUN_ATTRIBUTE_MESSAGE_INTEGRITY,
                                 STUN_ATTRIBUTE_REALM,
                                 STUN_ATTRIBUTE_NONCE,
                                 STUN_ATTRIBUTE_REQUESTED_TRANSPORT,
                                 STUN_ATTRIBUTE_LIFETIME,
                                 STUN_ATTRIBUTE_XOR_PEER_ADDRESS,
                                 STUN_ATTRIBUTE_DATA,
                                 0};

/* The server's side. */
static StunAgent sa;
static const char *server_pass = "p";

static bool
validater(StunAgent *agent, StunMessage *message, uint8_t *username,
          uint16_t username_len, uint8_t **password, size_t *password_len,
          void *user_data)
{
	(void)agent;
	(void)message;
	(void)user_data;
	if (username_len != 1 || username[0] != 'u')
		return false;
	*password = (uint8_t *)server_pass;
	*password_len = strlen(server_pass);
	return true;
}

static struct sockaddr_in
v4(const char *ip, int port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

/* Parses the client's last datagram as a request; its validation
 * status. */
static StunValidationStatus
server_read(StunMessage *req, uint8_t *copy)
{
	memcpy(copy, sent, sent_len);
	return stun_agent_validate(&sa, req, copy, sent_len, validater, NULL);
}

static size_t
server_error(const StunMessage *req, int code, const char *nonce, uint8_t *out,
             size_t cap)
{
	StunMessage r;

	CHECK(stun_agent_init_error(&sa, &r, out, cap, req, (StunError)code),
	      "init_error");
	if (nonce != NULL) {
		stun_message_append_string(&r, STUN_ATTRIBUTE_REALM,
		                           "hardline");
		stun_message_append_string(&r, STUN_ATTRIBUTE_NONCE, nonce);
	}
	return stun_agent_finish_message(&sa, &r, NULL, 0);
}

/* A success answer to req, signed with the request's long-term key. */
static size_t
server_ok(const StunMessage *req, uint32_t lifetime, int relay, uint8_t *out,
          size_t cap)
{
	StunMessage r;

	CHECK(stun_agent_init_response(&sa, &r, out, cap, req), "init_resp");
	if (relay) {
		struct sockaddr_in ra = v4("11.0.0.1", 49152);
		struct sockaddr_in ma = v4("11.0.0.3", 40000);
		struct sockaddr_storage rs, ms;

		memset(&rs, 0, sizeof rs);
		memset(&ms, 0, sizeof ms);
		memcpy(&rs, &ra, sizeof ra);
		memcpy(&ms, &ma, sizeof ma);
		stun_message_append_xor_addr(&r, STUN_ATTRIBUTE_RELAY_ADDRESS,
		                             &rs, sizeof ra);
		stun_message_append_xor_addr(
		    &r, STUN_ATTRIBUTE_XOR_MAPPED_ADDRESS, &ms, sizeof ma);
	}
	if (lifetime != UINT32_MAX)
		stun_message_append32(&r, STUN_ATTRIBUTE_LIFETIME, lifetime);
	return stun_agent_finish_message(&sa, &r, (const uint8_t *)server_pass,
	                                 strlen(server_pass));
}

static size_t
data_ind(const char *ip, int port, const char *text, uint8_t *out, size_t cap)
{
	StunMessage m;
	struct sockaddr_in a = v4(ip, port);
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof ss);
	memcpy(&ss, &a, sizeof a);
	stun_agent_init_indication(&sa, &m, out, cap, STUN_IND_DATA);
	stun_message_append_xor_addr(&m, STUN_ATTRIBUTE_XOR_PEER_ADDRESS, &ss,
	                             sizeof a);
	stun_message_append_bytes(&m, STUN_ATTRIBUTE_DATA, text, strlen(text));
	return stun_agent_finish_message(&sa, &m, NULL, 0);
}

/* The server reads the client's last request and answers it with the
 * error code (with the realm and a nonce, unless nonce is NULL): what
 * turn_input makes of the answer at now. */
static int
answer_error(struct turn *t, int code, const char *nonce, uint64_t now)
{
	uint8_t req_buf[4096], out[4096];
	StunMessage req;
	struct turn_data d;
	size_t n;

	server_read(&req, req_buf);
	n = server_error(&req, code, nonce, out, sizeof out);
	return turn_input(t, out, n, now, &d);
}

static void
test_url(void)
{
	static const struct {
		const char *url, *user, *pass, *host;
		int port;
	} good[] = {
	    {"turn://u:p@11.0.0.1:3478", "u", "p", "11.0.0.1", 3478},
	    {"TURN://al%40ce:p%3Aw@relay.example", "al@ce", "p:w",
	     "relay.example", 3478},
	    {"turn://a:b@[2001:db8::1]:5349", "a", "b", "2001:db8::1", 5349},
	};
	struct turn_url u;
	char err[128];

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		if (!CHECK_INT_OK(
		        turn_parse_url(good[i].url, &u, err, sizeof err), 0))
			continue;
		CHECK_STR(u.user, good[i].user);
		CHECK_STR(u.pass, good[i].pass);
		CHECK_STR(u.host, good[i].host);
		CHECK_INT(u.port, good[i].port);
	}
	static const char *bad[] = {
	    "turns://u:p@h",   "turn://h:3478",      "turn://u@h",
	    "turn://:p@h",     "turn://u:@h",        "turn://u:p@",
	    "turn://u:p@h:0",  "turn://u:p@h:65536", "turn://u:p@h:34x",
	    "turn://u:p@[::1", "turn://u:p@h/x",     "turn://u:p%zz@h",
	    "turn://u:p%4@h",  "turn://u:p%00@h",    NULL};
	for (int i = 0; bad[i]; i++) {
		err[0] = 0;
		CHECK(turn_parse_url(bad[i], &u, err, sizeof err) == -1 &&
		          strncmp(err, "turn URL: ", 10) == 0,
		      "%s refused (%s)", bad[i], err);
	}
}

static struct turn *
client(struct turn_config *cfg)
{
	struct turn_url u;

	turn_parse_url("turn://u:p@11.0.0.1:3478", &u, NULL, 0);
	return turn_new(&u, cfg, capture, NULL);
}

static void
test_flow(void)
{
	uint8_t req_buf[4096], out[4096];
	StunMessage req;
	struct turn_config cfg = {.lifetime_s = 20};
	struct turn *t = client(&cfg);
	struct turn_data d;
	struct sockaddr_storage r;
	struct sockaddr_in peer = v4("11.0.0.2", 0), other = v4("11.0.0.9", 0);
	size_t n;
	uint64_t now = 1000;
	char addr[64];

	CHECK_INT(turn_state(t), TURN_IDLE);
	CHECK_INT(turn_start(t, now), 0);
	CHECK_INT(turn_state(t), TURN_ALLOCATING);
	CHECK_INT(nsent, 1);
	/* The first Allocate has no credentials: a 401 challenge. */
	server_read(&req, req_buf);
	CHECK_INT(stun_message_get_method(&req), STUN_ALLOCATE);
	CHECK_INT(stun_message_get_class(&req), STUN_REQUEST);
	CHECK(stun_message_has_attribute(&req,
	                                 STUN_ATTRIBUTE_REQUESTED_TRANSPORT),
	      "REQUESTED-TRANSPORT");
	CHECK(!stun_message_has_attribute(&req, STUN_ATTRIBUTE_USERNAME),
	      "no USERNAME before the challenge");
	CHECK_INT(turn_permit(t, (struct sockaddr *)&peer, sizeof peer, now),
	          0);
	CHECK_INT(nsent, 1); /* remembered until allocated */
	{
		struct sockaddr_in short6 = peer;

		short6.sin_family = AF_INET6; /* but sockaddr_in's size */
		CHECK_INT(turn_permit(t, (struct sockaddr *)&short6,
		                      sizeof short6, now),
		          -1);
	}
	n = server_error(&req, 401, "n1", out, sizeof out);
	CHECK_INT(turn_input(t, out, n, now, &d), TURN_IN_DONE);
	CHECK_INT(nsent, 2);
	/* Now with USERNAME, REALM, NONCE and a MESSAGE-INTEGRITY the
	 * server's long-term key checks. */
	CHECK_INT(server_read(&req, req_buf), STUN_VALIDATION_SUCCESS);
	CHECK(stun_message_has_attribute(&req, STUN_ATTRIBUTE_NONCE), "NONCE");
	n = server_ok(&req, 20, 1, out, sizeof out);
	/* A retransmitted copy of the answer later is ignored. */
	CHECK_INT(turn_input(t, out, n, now, &d), TURN_IN_DONE);
	CHECK_INT(turn_state(t), TURN_READY);
	CHECK_INT(turn_lifetime(t), 20);
	CHECK_INT(turn_relayed(t, &r, NULL), 0);
	CHECK(r.ss_family == AF_INET &&
	          ntohs(((struct sockaddr_in *)&r)->sin_port) == 49152,
	      "relayed address");
	inet_ntop(AF_INET, &((struct sockaddr_in *)&r)->sin_addr, addr,
	          sizeof addr);
	CHECK_STR(addr, "11.0.0.1");
	CHECK_INT(turn_input(t, out, n, now, &d), TURN_IN_DONE);
	/* The remembered permission went out on READY. */
	CHECK_INT(nsent, 3);
	CHECK_INT(server_read(&req, req_buf), STUN_VALIDATION_SUCCESS);
	CHECK_INT(stun_message_get_method(&req), STUN_CREATEPERMISSION);
	CHECK(turn_send(t, (struct sockaddr *)&peer, sizeof peer,
	                (const uint8_t *)"x", 1) == -1,
	      "no send before the permission is confirmed");
	n = server_ok(&req, UINT32_MAX, 0, out, sizeof out);
	CHECK_INT(turn_input(t, out, n, now, &d), TURN_IN_DONE);
	CHECK_INT(turn_permitted(t, (struct sockaddr *)&peer), 1);
	CHECK_INT(turn_permitted(t, (struct sockaddr *)&other), 0);

	/* Send indication out. */
	peer.sin_port = htons(40001);
	CHECK_INT(turn_send(t, (struct sockaddr *)&peer, sizeof peer,
	                    (const uint8_t *)"hello", 5),
	          0);
	{
		StunMessage m;
		struct sockaddr_storage p;
		socklen_t pl = sizeof p;
		uint16_t dl = 0;
		const uint8_t *dd;

		memcpy(req_buf, sent, sent_len);
		CHECK_INT(
		    stun_agent_validate(&sa, &m, req_buf, sent_len, NULL, NULL),
		    STUN_VALIDATION_SUCCESS);
		CHECK_INT(stun_message_get_class(&m), STUN_INDICATION);
		CHECK_INT(stun_message_get_method(&m), STUN_IND_SEND);
		CHECK_INT(stun_message_find_xor_addr(
		              &m, STUN_ATTRIBUTE_XOR_PEER_ADDRESS, &p, &pl),
		          STUN_MESSAGE_RETURN_SUCCESS);
		CHECK_INT(ntohs(((struct sockaddr_in *)&p)->sin_port), 40001);
		dd = stun_message_find(&m, STUN_ATTRIBUTE_DATA, &dl);
		CHECK(dd && dl == 5 && memcmp(dd, "hello", 5) == 0, "DATA");
		CHECK(!stun_message_has_attribute(
		          &m, STUN_ATTRIBUTE_MESSAGE_INTEGRITY),
		      "indications carry no MESSAGE-INTEGRITY");
	}
	/* Data indications in: the permitted peer's only. */
	n = data_ind("11.0.0.2", 40001, "quic!", out, sizeof out);
	{
		uint8_t *exact = check_exact(out, n);

		CHECK_INT(turn_input(t, exact, n, now, &d), TURN_IN_DATA);
		CHECK(d.len == 5 && memcmp(d.data, "quic!", 5) == 0,
		      "Data unwrapped");
		CHECK_INT(ntohs(((struct sockaddr_in *)&d.peer)->sin_port),
		          40001);
		free(exact);
	}
	n = data_ind("11.0.0.9", 40001, "nope", out, sizeof out);
	CHECK_INT(turn_input(t, out, n, now, &d), TURN_IN_DONE);
	/* QUIC and junk are not ours. */
	memset(out, 0, sizeof out);
	out[0] = 0x40;
	CHECK_INT(turn_input(t, out, 40, now, &d), TURN_IN_NOT_TURN);
	out[0] = 0xc3;
	CHECK_INT(turn_input(t, out, 1200, now, &d), TURN_IN_NOT_TURN);
	CHECK_INT(turn_is_stun(out, 1200), 0);

	/* Refresh before the lifetime's end (20 s: at 10 s). */
	CHECK(turn_next_timeout(t) <= now + 10000, "refresh due by 10 s, %llu",
	      (unsigned long long)(turn_next_timeout(t) - now));
	now = turn_next_timeout(t);
	nsent = 0;
	turn_tick(t, now);
	CHECK_INT(nsent, 1);
	server_read(&req, req_buf);
	CHECK_INT(stun_message_get_method(&req), STUN_REFRESH);
	/* 438: a new nonce, the Refresh again with it. */
	n = server_error(&req, 438, "n2", out, sizeof out);
	CHECK_INT(turn_input(t, out, n, now, &d), TURN_IN_DONE);
	CHECK_INT(nsent, 2);
	CHECK_INT(server_read(&req, req_buf), STUN_VALIDATION_SUCCESS);
	{
		char nonce[64];

		stun_message_find_string(&req, STUN_ATTRIBUTE_NONCE, nonce,
		                         sizeof nonce);
		CHECK_STR(nonce, "n2");
	}
	n = server_ok(&req, 20, 0, out, sizeof out);
	CHECK_INT(turn_input(t, out, n, now, &d), TURN_IN_DONE);
	CHECK_INT(turn_refreshes(t), 1);
	CHECK_INT(turn_state(t), TURN_READY);

	/* Close: Refresh with lifetime 0, through a 438, then CLOSED. */
	nsent = 0;
	turn_close(t, now);
	CHECK_INT(turn_state(t), TURN_CLOSING);
	CHECK_INT(nsent, 1);
	server_read(&req, req_buf);
	n = server_error(&req, 438, "n3", out, sizeof out);
	CHECK_INT(turn_input(t, out, n, now, &d), TURN_IN_DONE);
	CHECK_INT(nsent, 2);
	CHECK_INT(server_read(&req, req_buf), STUN_VALIDATION_SUCCESS);
	{
		uint32_t lt = 99;

		CHECK_INT(stun_message_get_method(&req), STUN_REFRESH);
		stun_message_find32(&req, STUN_ATTRIBUTE_LIFETIME, &lt);
		CHECK_INT(lt, 0);
	}
	/* Data for the closing allocation is no longer delivered. */
	n = data_ind("11.0.0.2", 40001, "late", out, sizeof out);
	CHECK_INT(turn_input(t, out, n, now, &d), TURN_IN_DONE);
	n = server_ok(&req, 0, 0, out, sizeof out);
	CHECK_INT(turn_input(t, out, n, now, &d), TURN_IN_DONE);
	CHECK_INT(turn_state(t), TURN_CLOSED);
	CHECK(turn_next_timeout(t) == UINT64_MAX, "no timer after close");
	turn_free(t);
}

/* A client (cfg maybe NULL) started at now and answered 401: its
 * authenticated Allocate is in req (req_buf). */
static struct turn *
challenged(struct turn_config *cfg, uint64_t now, StunMessage *req,
           uint8_t *req_buf)
{
	struct turn *t = client(cfg);

	turn_start(t, now);
	answer_error(t, 401, "n1", now);
	server_read(req, req_buf);
	return t;
}

static void
test_wrong_credentials(void)
{
	struct turn *t = client(NULL);

	turn_start(t, 0);
	answer_error(t, 401, "n1", 0);
	answer_error(t, 401, "n1", 0);
	CHECK_INT(turn_state(t), TURN_FAILED);
	CHECK_STR(turn_error(t), "allocation refused: 401 wrong credentials "
	                         "(user \"u\", realm \"hardline\")");
	turn_free(t);
}

static void
test_refused(void)
{
	struct turn *t = client(NULL);

	turn_start(t, 0);
	answer_error(t, STUN_ERROR_ALLOCATION_QUOTA_REACHED, NULL, 0);
	CHECK_INT(turn_state(t), TURN_FAILED);
	CHECK(strncmp(turn_error(t), "allocation refused: 486 ", 24) == 0, "%s",
	      turn_error(t));
	turn_free(t);
}

/* A client (with cfg, maybe NULL) allocated: 401, then success with
 * lifetime 20 s. */
static struct turn *
ready_with(struct turn_config *cfg, uint64_t now)
{
	uint8_t req_buf[4096], out[4096];
	StunMessage req;
	struct turn_data d;
	struct turn *t = challenged(cfg, now, &req, req_buf);
	size_t n;

	n = server_ok(&req, 20, 1, out, sizeof out);
	turn_input(t, out, n, now, &d);
	CHECK_INT(turn_state(t), TURN_READY);
	return t;
}

static struct turn *
ready(uint64_t now)
{
	return ready_with(NULL, now);
}

static void
test_refresh_errors(void)
{
	uint8_t req_buf[4096], out[4096];
	StunMessage req;
	struct turn_data d;
	struct turn *t = ready(0);
	uint64_t now = turn_next_timeout(t);
	StunMessage r;
	size_t n;

	/* Four 438s in a row to one Refresh: the fourth is one too many. */
	turn_tick(t, now);
	for (int i = 0; i < 4; i++) {
		answer_error(t, 438, check_fmt("s%d", i), now);
		CHECK_INT(turn_state(t), i < 3 ? TURN_READY : TURN_FAILED);
	}
	CHECK_STR(turn_error(t), "allocation lost (Refresh refused): 438 "
	                         "stale nonce 4 times in a row");
	turn_free(t);

	/* 437: the server no longer knows the allocation. */
	t = ready(0);
	now = turn_next_timeout(t);
	turn_tick(t, now);
	server_read(&req, req_buf);
	stun_agent_init_error(&sa, &r, out, sizeof out, &req,
	                      STUN_ERROR_ALLOCATION_MISMATCH);
	n = stun_agent_finish_message(&sa, &r, (const uint8_t *)server_pass,
	                              strlen(server_pass));
	turn_input(t, out, n, now, &d);
	CHECK_INT(turn_state(t), TURN_FAILED);
	CHECK(strncmp(turn_error(t), "allocation lost (Refresh refused): 437 ",
	              39) == 0,
	      "%s", turn_error(t));
	turn_free(t);
}

static void
test_silence(void)
{
	struct turn *t = client(NULL);
	uint64_t now = 5000, start = now;
	int ticks = 0;

	nsent = 0;
	turn_start(t, now);
	while (turn_state(t) == TURN_ALLOCATING && ticks++ < 100) {
		now = turn_next_timeout(t);
		turn_tick(t, now);
	}
	CHECK_INT(nsent, 7); /* RFC 8489 Rc */
	CHECK_INT(now - start, 39500); /* and the last wait of 16 RTO */
	CHECK_INT(turn_state(t), TURN_FAILED);
	CHECK_STR(turn_error(t), "no answer from the TURN server "
	                         "11.0.0.1:3478 within 40 s");
	turn_free(t);
}

/* A signed error answer (code) to req. */
static size_t
server_signed_error(const StunMessage *req, int code, uint8_t *out, size_t cap)
{
	StunMessage r;

	stun_agent_init_error(&sa, &r, out, cap, req, (StunError)code);
	return stun_agent_finish_message(&sa, &r, (const uint8_t *)server_pass,
	                                 strlen(server_pass));
}

/* 437 to Allocate: this 5-tuple still has an allocation (of a run that
 * crashed): a Refresh with lifetime 0 clears it, then Allocate again; a
 * second 437 fails, naming it. */
static void
test_mismatch(void)
{
	uint8_t req_buf[4096], out[4096];
	StunMessage req;
	struct turn_data d;
	struct turn *t = challenged(NULL, 0, &req, req_buf);
	uint32_t lt = 1;
	size_t n;

	n = server_signed_error(&req, 437, out, sizeof out);
	turn_input(t, out, n, 0, &d);
	CHECK_INT(turn_state(t), TURN_ALLOCATING);
	CHECK_INT(server_read(&req, req_buf), STUN_VALIDATION_SUCCESS);
	CHECK_INT(stun_message_get_method(&req), STUN_REFRESH);
	CHECK_INT(stun_message_find32(&req, STUN_ATTRIBUTE_LIFETIME, &lt),
	          STUN_MESSAGE_RETURN_SUCCESS);
	CHECK_INT(lt, 0);
	n = server_ok(&req, 0, 0, out, sizeof out);
	turn_input(t, out, n, 0, &d);
	CHECK_INT(server_read(&req, req_buf), STUN_VALIDATION_SUCCESS);
	CHECK_INT(stun_message_get_method(&req), STUN_ALLOCATE);
	n = server_signed_error(&req, 437, out, sizeof out);
	turn_input(t, out, n, 0, &d);
	CHECK_INT(turn_state(t), TURN_FAILED);
	CHECK(strncmp(turn_error(t), "allocation refused: 437 ", 24) == 0, "%s",
	      turn_error(t));
	turn_free(t);
}

/* A permission per peer, and peers come and go: a full table makes room
 * only by letting go of a peer idle for TURN_PEER_IDLE_MS, and a peer
 * idle that long is no longer refreshed. */
static void
test_idle_peers(void)
{
	uint8_t req_buf[4096], out[4096];
	StunMessage req;
	struct turn_data d;
	struct turn_config cfg = {.no_refresh = 1, .perm_refresh_s = 290};
	uint64_t now = 1000;
	struct turn *t = ready_with(&cfg, now);
	struct sockaddr_in p[TURN_MAX_PEERS], extra = v4("11.0.2.1", 0);
	size_t n;
	int before;
	for (int i = 0; i < TURN_MAX_PEERS; i++) {
		p[i] = v4(check_fmt("11.0.1.%d", i + 1), 0);
		CHECK_INT(
		    turn_permit(t, (struct sockaddr *)&p[i], sizeof p[i], now),
		    0);
		server_read(&req, req_buf);
		n = server_ok(&req, UINT32_MAX, 0, out, sizeof out);
		turn_input(t, out, n, now, &d);
		CHECK_INT(turn_permitted(t, (struct sockaddr *)&p[i]), 1);
	}
	/* Full, and nobody idle long enough: refused. */
	CHECK_INT(
	    turn_permit(t, (struct sockaddr *)&extra, sizeof extra, now + 1000),
	    -1);
	/* p[0] is permitted again (a new INTRO) at 200 s. */
	CHECK_INT(
	    turn_permit(t, (struct sockaddr *)&p[0], sizeof p[0], now + 200000),
	    0);
	/* At 300 s the longest idle (p[1]) makes room; p[0] stays. */
	now += TURN_PEER_IDLE_MS;
	before = nsent;
	CHECK_INT(turn_permit(t, (struct sockaddr *)&extra, sizeof extra, now),
	          0);
	CHECK_INT(nsent, before + 1);
	CHECK_INT(server_read(&req, req_buf), STUN_VALIDATION_SUCCESS);
	CHECK_INT(stun_message_get_method(&req), STUN_CREATEPERMISSION);
	CHECK_INT(turn_permitted(t, (struct sockaddr *)&p[1]), 0);
	CHECK_INT(turn_permitted(t, (struct sockaddr *)&p[0]), 1);
	/* The refreshes come due (290 s): the idle peers are let go, p[0]'s
	 * permission alone is sent again. */
	before = nsent;
	turn_tick(t, now);
	CHECK_INT(nsent, before + 1);
	CHECK_INT(turn_permitted(t, (struct sockaddr *)&p[2]), 0);
	CHECK_INT(turn_permitted(t, (struct sockaddr *)&p[0]), 1);
	turn_free(t);
}

int
main(void)
{
	stun_agent_init(&sa, known, STUN_COMPATIBILITY_RFC5389,
	                STUN_AGENT_USAGE_LONG_TERM_CREDENTIALS);
	test_url();
	test_flow();
	test_wrong_credentials();
	test_refused();
	test_refresh_errors();
	test_silence();
	test_idle_peers();
	test_mismatch();
	return check_done();
}
