/*
 * hub-probe: hubclient.c driven from one blocking UDP socket, for the lab
 * tests (not installed). It shows the node's side working through real
 * NATs against real servers (hlcore hubs, coturn), as transport-udp will
 * use it:
 *
 *   hub-probe --bind 10.1.0.2:5000 --stun 11.0.0.1:7777 --stun 11.0.0.4:7778
 *             [--hub 11.0.0.1:7777 --cert FILE.pem --key FILE.pem]
 *
 * prints one line per result: "host <addr>" for each host candidate,
 * "mapped <server> <addr>" for each STUN answer, "nat <kind>" from the
 * first two, then, with --hub, "registered <keyhash> <observed>" or
 * "refused <code>". Every wait is bounded (3 tries of 1 s each). Exit 0
 * when every step answered, 1 otherwise, 2 on bad usage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "hardline/util.h"
#include "hubclient.h"
#include "hubmsg.h"

static int fd = -1;

static int
parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[256];
	uint16_t port;
	struct hubmsg_addr a;

	if (hl_addr_split(s, host, sizeof host, &port) != 0)
		return -1;
	memset(&a, 0, sizeof a);
	a.port = port;
	if (inet_pton(AF_INET, host, a.ip) == 1)
		a.family = 4;
	else if (inet_pton(AF_INET6, host, a.ip) == 1)
		a.family = 6;
	else
		return -1;
	*len = hubmsg_addr_to_sa(&a, ss);
	return 0;
}

/* Send q to `to` and wait for a datagram from it that ok() accepts; 3
 * tries, 1 s each. The answer's length, or 0. */
static size_t
ask(const uint8_t *q, size_t qlen, const struct sockaddr_storage *to,
    socklen_t tolen, uint8_t *ans, size_t cap,
    int (*ok)(const uint8_t *, size_t, void *), void *arg)
{
	for (int t = 0; t < 3; t++) {
		if (sendto(fd, q, qlen, 0, (const struct sockaddr *)to, tolen) <
		    0)
			return 0;
		for (;;) {
			struct sockaddr_storage from;
			socklen_t fl = sizeof from;
			ssize_t n = recvfrom(fd, ans, cap, 0,
			                     (struct sockaddr *)&from, &fl);
			if (n < 0)
				break; /* the 1 s timeout: send again */
			if (ok(ans, (size_t)n, arg))
				return (size_t)n;
		}
	}
	return 0;
}

static int
stun_ok(const uint8_t *b, size_t n, void *arg)
{
	void **a = arg;

	return hubclient_stun_answer(a[0], b, n, a[1]) == 0;
}

struct want {
	const uint8_t *txid;
	struct hubmsg *m;
};

static int
hub_ok(const uint8_t *b, size_t n, void *arg)
{
	struct want *w = arg;
	const char *why;

	return hubmsg_demux(b, n) == 1 && hubmsg_parse(b, n, w->m, &why) == 0 &&
	       memcmp(w->m->txid, w->txid, HUBMSG_TXID_LEN) == 0;
}

static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	size_t n;

	if (f == NULL)
		return NULL;
	s = calloc(1, 65536);
	n = s ? fread(s, 1, 65535, f) : 0;
	fclose(f);
	if (s != NULL)
		s[n] = '\0';
	return s;
}

static int
do_register(const char *hub, const char *cert_path, const char *key_path)
{
	struct sockaddr_storage to;
	socklen_t tolen;
	char *cert_pem = slurp(cert_path), *key_pem = slurp(key_path);
	BIO *b = NULL;
	X509 *x = NULL;
	unsigned char *der = NULL;
	int dlen, rc = 1;
	uint8_t kh[20], hash[32], txid[8], q[HUBMSG_MAX], ans[2048];
	char khx[41], obs[64];
	struct hubmsg m;
	struct want w = {txid, &m};
	size_t n;

	if (cert_pem == NULL || key_pem == NULL ||
	    parse_addr(hub, &to, &tolen) != 0)
		goto out;
	b = BIO_new_mem_buf(cert_pem, -1);
	x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	dlen = x ? i2d_X509(x, &der) : -1;
	if (dlen <= 0)
		goto out;
	/* The keyhash: docs/protocol.md, "Identity". */
	crypto_generichash(hash, 32, der, (size_t)dlen, NULL, 0);
	memcpy(kh, hash, 20);
	hl_hex_encode(kh, 20, khx);

	RAND_bytes(txid, sizeof txid);
	n = hubclient_challenge_req(q, sizeof q, txid, kh);
	if (ask(q, n, &to, tolen, ans, sizeof ans, hub_ok, &w) == 0 ||
	    m.type != HUBMSG_CHALLENGE) {
		printf("no challenge\n");
		goto out;
	}
	RAND_bytes(txid, sizeof txid);
	n = hubclient_register(q, sizeof q, txid, kh, m.nonce, der,
	                       (size_t)dlen, key_pem, hub, NULL, 0);
	if (n == 0 || ask(q, n, &to, tolen, ans, sizeof ans, hub_ok, &w) == 0) {
		printf("no answer to the registration\n");
		goto out;
	}
	if (m.type == HUBMSG_REGISTERED) {
		hubmsg_addr_str(&m.observed, obs, sizeof obs);
		printf("registered %s %s\n", khx, obs);
		rc = 0;
	} else {
		printf("refused %u\n", m.error);
	}
out:
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(b);
	free(cert_pem);
	free(key_pem);
	return rc;
}

int
main(int argc, char **argv)
{
	const char *bind_s = NULL, *stun[2] = {NULL, NULL}, *hub = NULL;
	const char *cert = NULL, *key = NULL;
	struct sockaddr_storage ss;
	socklen_t sl;
	struct timeval tv = {1, 0};
	struct hubmsg_addr local, mapped[2];
	struct hubmsg_cand hc[16];
	int nstun = 0, rc = 0;
	size_t nh;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--bind") == 0)
			bind_s = argv[i + 1];
		else if (strcmp(argv[i], "--stun") == 0 && nstun < 2)
			stun[nstun++] = argv[i + 1];
		else if (strcmp(argv[i], "--hub") == 0)
			hub = argv[i + 1];
		else if (strcmp(argv[i], "--cert") == 0)
			cert = argv[i + 1];
		else if (strcmp(argv[i], "--key") == 0)
			key = argv[i + 1];
		else
			bind_s = NULL, i = argc;
	}
	if (bind_s == NULL || parse_addr(bind_s, &ss, &sl) != 0 ||
	    (hub && (!cert || !key)) || sodium_init() < 0) {
		fprintf(stderr,
		        "usage: hub-probe --bind IP:PORT [--stun "
		        "IP:PORT]x2 [--hub IP:PORT --cert F --key F]\n");
		return 2;
	}
	fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0) {
		perror("hub-probe: socket");
		return 1;
	}
	hubmsg_addr_from_sa(&local, (struct sockaddr *)&ss);
	nh = hubclient_host_candidates(ss.ss_family, local.port, hc, 16);
	for (size_t i = 0; i < nh; i++) {
		char s[64];
		hubmsg_addr_str(&hc[i].addr, s, sizeof s);
		printf("host %s\n", s);
	}
	memset(mapped, 0, sizeof mapped);
	for (int i = 0; i < nstun; i++) {
		struct hubclient_stun st;
		struct sockaddr_storage to;
		socklen_t tl;
		uint8_t ans[2048];
		void *arg[2] = {&st, &mapped[i]};
		char s[64];

		if (parse_addr(stun[i], &to, &tl) != 0 ||
		    hubclient_stun_request(&st) == 0)
			return 2;
		if (ask(st.buf, st.len, &to, tl, ans, sizeof ans, stun_ok,
		        arg) == 0) {
			printf("no STUN answer from %s\n", stun[i]);
			memset(&mapped[i], 0, sizeof mapped[i]);
			rc = 1;
			continue;
		}
		hubmsg_addr_str(&mapped[i], s, sizeof s);
		printf("mapped %s %s\n", stun[i], s);
	}
	if (nstun == 2)
		printf("nat %s\n", hubclient_nat_name(hubclient_nat_kind(
		                       &local, &mapped[0], &mapped[1])));
	if (hub != NULL && do_register(hub, cert, key) != 0)
		rc = 1;
	fflush(stdout);
	close(fd);
	return rc;
}
