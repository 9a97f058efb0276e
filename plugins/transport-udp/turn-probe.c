/*
 * turn-probe: turn.c driven from one UDP socket and poll(), for the lab
 * test tests/lab/test_turn.py (built for tests, not installed). It shows
 * the TURN client working against a real coturn through a real NAT, the
 * way transport-udp will drive it:
 *
 *   turn-probe --bind 10.2.0.2:5001 --server turn://u:p@11.0.0.1:3478
 *              [--permit IP]... [--echo] [--run SECONDS] [--lifetime S]
 *              [--perm-refresh S] [--no-refresh] [--rto MS] [--rc N]
 *
 * prints one line per event, flushed: "allocated relayed=A:P mapped=A:P
 * lifetime=S", "permitted IP:0", "data from A:P len=N: TEXT" (with --echo
 * it sends "echo TEXT" back to that peer through the relay), "refreshed
 * lifetime=S count=N", "error: SENTENCE" (then exit 1), and after --run
 * seconds (default 10) Refresh with lifetime 0, "closed" when answered
 * (within 3 s, else "closed (no answer to Refresh 0)") and exit 0.
 * Exit 2 on bad usage.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "hardline/util.h"
#include "turn.h"

static int fd = -1;
static struct sockaddr_storage server;
static socklen_t server_len;

static uint64_t
now_ms(void)
{
	return (uint64_t)hl_mono_ms();
}

static int
parse_ip_port(const char *ip, uint16_t port, struct sockaddr_storage *ss,
              socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*len = sizeof *a4;
		return 0;
	}
	if (inet_pton(AF_INET6, ip, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof *a6;
		return 0;
	}
	return -1;
}

/* "ip:port" (v4) or "[v6]:port" */
static int
parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char ip[128];
	const char *c = strrchr(s, ':');
	size_t n;

	if (c == NULL || c == s)
		return -1;
	n = (size_t)(c - s);
	if (s[0] == '[' && s[n - 1] == ']') {
		s++;
		n -= 2;
	}
	if (n >= sizeof ip)
		return -1;
	memcpy(ip, s, n);
	ip[n] = 0;
	return parse_ip_port(ip, (uint16_t)atoi(c + 1), ss, len);
}

static const char *
fmt(const struct sockaddr_storage *a, char *out, size_t cap)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)a;

		inet_ntop(AF_INET, &s->sin_addr, ip, sizeof ip);
		port = ntohs(s->sin_port);
	} else if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;

		inet_ntop(AF_INET6, &s->sin6_addr, ip, sizeof ip);
		port = ntohs(s->sin6_port);
	}
	snprintf(out, cap, "%s:%u", ip, port);
	return out;
}

static void
send_cb(void *arg HL_UNUSED, const uint8_t *buf, size_t len)
{
	if (sendto(fd, buf, len, 0, (struct sockaddr *)&server, server_len) < 0)
		fprintf(stderr, "turn-probe: sendto: %s\n", strerror(errno));
}

static void
usage(void)
{
	fprintf(stderr,
	        "usage: turn-probe --bind IP:PORT --server turn://u:p@IP:PORT "
	        "[--permit IP]... [--echo] [--run S] [--lifetime S] "
	        "[--perm-refresh S] [--no-refresh] "
	        "[--rto MS] [--rc N]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct sockaddr_storage bind_ss, permits[TURN_MAX_PEERS];
	socklen_t bind_len = 0, permit_len[TURN_MAX_PEERS];
	int npermit = 0, echo = 0, announced = 0;
	int permitted[TURN_MAX_PEERS] = {0};
	unsigned run_s = 10, refreshes = 0;
	struct turn_config cfg;
	struct turn_url u;
	char err[160], a1[80], a2[80];
	struct turn *t;
	uint64_t end;
	int have_server = 0, closing = 0;

	memset(&cfg, 0, sizeof cfg);
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(o, "--echo") == 0) {
			echo = 1;
			continue;
		}
		if (strcmp(o, "--no-refresh") == 0) {
			cfg.no_refresh = 1;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(o, "--bind") == 0) {
			if (parse_addr(v, &bind_ss, &bind_len) < 0)
				usage();
		} else if (strcmp(o, "--server") == 0) {
			if (turn_parse_url(v, &u, err, sizeof err) < 0) {
				fprintf(stderr, "turn-probe: %s\n", err);
				return 2;
			}
			have_server = 1;
		} else if (strcmp(o, "--permit") == 0) {
			if (npermit == TURN_MAX_PEERS ||
			    parse_ip_port(v, 0, &permits[npermit],
			                  &permit_len[npermit]) < 0)
				usage();
			npermit++;
		} else if (strcmp(o, "--run") == 0) {
			run_s = (unsigned)atoi(v);
		} else if (strcmp(o, "--lifetime") == 0) {
			cfg.lifetime_s = (uint32_t)atoi(v);
		} else if (strcmp(o, "--perm-refresh") == 0) {
			cfg.perm_refresh_s = (uint32_t)atoi(v);
		} else if (strcmp(o, "--rto") == 0) {
			cfg.rto_ms = (uint32_t)atoi(v);
		} else if (strcmp(o, "--rc") == 0) {
			cfg.rc = (unsigned)atoi(v);
		} else {
			usage();
		}
	}
	if (bind_len == 0 || !have_server ||
	    parse_ip_port(u.host, u.port, &server, &server_len) < 0)
		usage(); /* the lab names servers by address */
	fd = socket(bind_ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&bind_ss, bind_len) < 0) {
		perror("turn-probe: socket/bind");
		return 1;
	}
	t = turn_new(&u, &cfg, send_cb, NULL);
	if (t == NULL)
		return 1;
	end = now_ms() + (uint64_t)run_s * 1000;
	turn_start(t, now_ms());
	for (int i = 0; i < npermit; i++)
		turn_permit(t, (struct sockaddr *)&permits[i], permit_len[i],
		            now_ms());
	for (;;) {
		uint64_t now = now_ms(), next = turn_next_timeout(t);
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int wait;

		if (turn_state(t) == TURN_FAILED) {
			printf("error: %s\n", turn_error(t));
			fflush(stdout);
			turn_free(t);
			return 1;
		}
		if (turn_state(t) == TURN_READY && !announced) {
			struct sockaddr_storage r, m;

			turn_relayed(t, &r, &m);
			printf("allocated relayed=%s mapped=%s lifetime=%u\n",
			       fmt(&r, a1, sizeof a1), fmt(&m, a2, sizeof a2),
			       turn_lifetime(t));
			announced = 1;
		}
		for (int i = 0; i < npermit; i++)
			if (!permitted[i] &&
			    turn_permitted(t, (struct sockaddr *)&permits[i])) {
				permitted[i] = 1;
				printf("permitted %s\n",
				       fmt(&permits[i], a1, sizeof a1));
			}
		if (turn_refreshes(t) != refreshes) {
			refreshes = turn_refreshes(t);
			printf("refreshed lifetime=%u count=%u\n",
			       turn_lifetime(t), refreshes);
		}
		fflush(stdout);
		if (closing && turn_state(t) == TURN_CLOSED) {
			printf("closed\n");
			break;
		}
		if (now >= end && closing) {
			printf("closed (no answer to Refresh 0)\n");
			break;
		}
		if (now >= end) {
			turn_close(t, now);
			closing = 1;
			end = now + 3000;
			continue;
		}
		if (next <= now) {
			turn_tick(t, now);
			continue;
		}
		if (next > end)
			next = end;
		wait = (int)(next - now);
		if (poll(&pfd, 1, wait) > 0) {
			uint8_t buf[TURN_MAX_DATAGRAM];
			struct sockaddr_storage from;
			socklen_t fl = sizeof from;
			ssize_t n = recvfrom(fd, buf, sizeof buf, 0,
			                     (struct sockaddr *)&from, &fl);
			struct turn_data d;

			if (n <= 0 || fl != server_len ||
			    memcmp(&from, &server, (size_t)fl) != 0)
				continue; /* the demux rule: only the server */
			if (turn_input(t, buf, (size_t)n, now_ms(), &d) ==
			    TURN_IN_DATA) {
				char text[128];
				size_t k = 0;
				uint8_t reply[TURN_MAX_DATA];

				for (; k < d.len && k + 1 < sizeof text; k++)
					text[k] = (d.data[k] >= 0x20 &&
					           d.data[k] < 0x7f)
					              ? (char)d.data[k]
					              : '.';
				text[k] = 0;
				printf("data from %s len=%zu: %s\n",
				       fmt(&d.peer, a1, sizeof a1), d.len,
				       text);
				if (echo && d.len + 5 <= sizeof reply) {
					memcpy(reply, "echo ", 5);
					memcpy(reply + 5, d.data, d.len);
					if (turn_send(
					        t, (struct sockaddr *)&d.peer,
					        d.peer_len, reply,
					        d.len + 5) < 0)
						printf("send refused\n");
				}
			}
		}
	}
	fflush(stdout);
	turn_free(t);
	close(fd);
	return 0;
}
