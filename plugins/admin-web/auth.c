/*
 * auth.c: the admin token (a file in state_dir, 0600 from birth), login
 * sessions in memory, CSRF tokens and the login rate limit. Every secret
 * comparison is in constant time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "admin-web.h"

#define TOKEN_FILE "admin.token"
#define TOKEN_BYTES 20 /* 160 bits, 32 base32 characters */
#define TOKEN_MIN 22 /* an admin's own token: at least ~128 bits */

void
auth_random_hex(char *out, size_t nbytes)
{
	unsigned char raw[64];

	if (nbytes > sizeof raw)
		nbytes = sizeof raw;
	randombytes_buf(raw, nbytes);
	sodium_bin2hex(out, nbytes * 2 + 1, raw, nbytes);
	sodium_memzero(raw, sizeof raw);
}

static void
base32(const unsigned char *in, size_t n, char *out)
{
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned int acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5) {
			*out++ = alphabet[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		*out++ = alphabet[(acc << (5 - bits)) & 31];
	*out = '\0';
}

static int
token_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || strchr("-._~+/=", c) != NULL;
}

static int
read_token(struct auth *a, const struct hl_services *svc,
           struct hl_plugin *self, const char *path, int fd)
{
	char text[TOKEN_MAX + 64];
	struct stat st;
	ssize_t n;
	size_t len;

	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		svc->log(self, HL_LOG_ERROR, "%s is not a regular file", path);
		return -1;
	}
	if ((st.st_mode & 077) != 0) {
		svc->log(
		    self, HL_LOG_WARN,
		    "%s was readable by others (mode %03o); it is now 0600",
		    path, (unsigned)(st.st_mode & 0777));
		if (fchmod(fd, 0600) != 0) {
			svc->log(self, HL_LOG_ERROR, "chmod 0600 %s: %s", path,
			         strerror(errno));
			return -1;
		}
	}
	n = read(fd, text, sizeof text - 1);
	if (n < 0) {
		svc->log(self, HL_LOG_ERROR, "cannot read %s: %s", path,
		         strerror(errno));
		return -1;
	}
	len = (size_t)n;
	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' ||
	                   text[len - 1] == ' ' || text[len - 1] == '\t'))
		len--;
	text[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (!token_char_ok(text[i]))
			len = 0;
	if (len < TOKEN_MIN || len > TOKEN_MAX) {
		svc->log(
		    self, HL_LOG_ERROR,
		    "%s must hold one token of %d to %d letters, digits or "
		    "-._~+/=; delete it and restart to get a new one",
		    path, TOKEN_MIN, TOKEN_MAX);
		sodium_memzero(text, sizeof text);
		return -1;
	}
	memcpy(a->token, text, len + 1);
	sodium_memzero(text, sizeof text);
	return 0;
}

static int
create_token(struct auth *a, const struct hl_services *svc,
             struct hl_plugin *self, const char *path, int fd)
{
	unsigned char raw[TOKEN_BYTES];
	char line[TOKEN_MAX + 2];
	size_t len;

	randombytes_buf(raw, sizeof raw);
	base32(raw, sizeof raw, a->token);
	sodium_memzero(raw, sizeof raw);
	len = (size_t)snprintf(line, sizeof line, "%s\n", a->token);
	if (write(fd, line, len) != (ssize_t)len || fsync(fd) != 0) {
		svc->log(self, HL_LOG_ERROR, "cannot write %s: %s", path,
		         strerror(errno));
		sodium_memzero(line, sizeof line);
		unlink(path);
		return -1;
	}
	sodium_memzero(line, sizeof line);
	return 0;
}

int
auth_load_token(struct auth *a, const struct hl_services *svc,
                struct hl_plugin *self, const char *state_dir, int *created)
{
	char path[4096];
	int fd, rc;

	if (sodium_init() < 0) {
		svc->log(self, HL_LOG_ERROR, "libsodium failed to start");
		return -1;
	}
	*created = 0;
	snprintf(path, sizeof path, "%s/%s", state_dir, TOKEN_FILE);
	/* Created 0600 in one step: never a moment when others can read it. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
	          0600);
	if (fd >= 0) {
		rc = create_token(a, svc, self, path, fd);
		close(fd);
		*created = rc == 0;
	} else if (errno == EEXIST) {
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			svc->log(self, HL_LOG_ERROR, "cannot open %s: %s", path,
			         strerror(errno));
			return -1;
		}
		rc = read_token(a, svc, self, path, fd);
		close(fd);
	} else {
		svc->log(self, HL_LOG_ERROR, "cannot create %s: %s", path,
		         strerror(errno));
		return -1;
	}
	if (rc != 0)
		return -1;
	crypto_generichash(a->token_hash, sizeof a->token_hash,
	                   (const unsigned char *)a->token, strlen(a->token),
	                   NULL, 0);
	return 0;
}

int
auth_token_ok(const struct auth *a, const char *given)
{
	unsigned char h[32];
	int ok;

	if (given == NULL || a->token[0] == '\0')
		return 0;
	/* Hash first: the comparison then takes the same time whatever the
	 * length of the guess. */
	crypto_generichash(h, sizeof h, (const unsigned char *)given,
	                   strlen(given), NULL, 0);
	ok = sodium_memcmp(h, a->token_hash, sizeof h) == 0;
	sodium_memzero(h, sizeof h);
	return ok;
}

static int
session_live(const struct session *s, time_t now)
{
	return s->id[0] != '\0' && now - s->last < SESSION_IDLE_SEC &&
	       now - s->created < SESSION_LIFE_SEC;
}

struct session *
auth_session_new(struct auth *a)
{
	struct session *s = NULL;
	time_t now = time(NULL);

	for (size_t i = 0; i < SESSIONS_MAX; i++) {
		struct session *t = &a->sessions[i];
		if (!session_live(t, now)) {
			s = t;
			break;
		}
		if (s == NULL || t->last < s->last)
			s = t;
	}
	memset(s, 0, sizeof *s);
	auth_random_hex(s->id, SESSION_ID_LEN / 2);
	auth_random_hex(s->csrf, SESSION_ID_LEN / 2);
	s->created = s->last = now;
	return s;
}

struct session *
auth_session_find(struct auth *a, const char *id)
{
	time_t now = time(NULL);
	struct session *found = NULL;

	if (id == NULL || strlen(id) != SESSION_ID_LEN)
		return NULL;
	for (size_t i = 0; i < SESSIONS_MAX; i++) {
		struct session *s = &a->sessions[i];
		if (s->id[0] == '\0')
			continue;
		if (!session_live(s, now)) {
			auth_session_drop(s);
			continue;
		}
		if (sodium_memcmp(s->id, id, SESSION_ID_LEN) == 0)
			found = s;
	}
	if (found != NULL)
		found->last = now;
	return found;
}

void
auth_session_drop(struct session *s)
{
	sodium_memzero(s, sizeof *s);
}

int
auth_csrf_ok(const struct session *s, const char *given)
{
	return given != NULL && strlen(given) == SESSION_ID_LEN &&
	       sodium_memcmp(s->csrf, given, SESSION_ID_LEN) == 0;
}

/* The rate limit's key for an address: IPv4 as it is, IPv6 by its /64
 * (one host usually holds a whole /64). */
static void
source_key(const struct sockaddr *sa, char *out, size_t len)
{
	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, out, (socklen_t)len);
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)sa;
		const unsigned char *b = in6->sin6_addr.s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			inet_ntop(AF_INET, b + 12, out, (socklen_t)len);
			return;
		}
		snprintf(out, len, "%02x%02x:%02x%02x:%02x%02x:%02x%02x::/64",
		         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]);
	} else {
		snprintf(out, len, "?");
	}
}

static struct source *
source_find(struct auth *a, const struct sockaddr *sa, int create)
{
	char key[sizeof a->sources[0].key];
	struct source *oldest = NULL;

	source_key(sa, key, sizeof key);
	for (size_t i = 0; i < SOURCES_MAX; i++) {
		struct source *s = &a->sources[i];
		if (s->key[0] != '\0' && strcmp(s->key, key) == 0)
			return s;
		if (oldest == NULL || s->key[0] == '\0' ||
		    (oldest->key[0] != '\0' && s->last < oldest->last))
			oldest = s;
	}
	if (!create)
		return NULL;
	/* Full: the source heard from longest ago makes room. */
	memset(oldest, 0, sizeof *oldest);
	snprintf(oldest->key, sizeof oldest->key, "%s", key);
	return oldest;
}

int
auth_login_wait(struct auth *a, const struct sockaddr *sa)
{
	struct source *s = source_find(a, sa, 0);
	time_t now = time(NULL), first = now;
	int recent = 0;

	if (s == NULL)
		return 0;
	for (size_t i = 0; i < LOGIN_FAILS_MAX; i++) {
		if (s->fails[i] != 0 && now - s->fails[i] < LOGIN_WINDOW_SEC) {
			recent++;
			if (s->fails[i] < first)
				first = s->fails[i];
		}
	}
	if (recent < LOGIN_FAILS_MAX)
		return 0;
	return (int)(first + LOGIN_WINDOW_SEC - now) > 0
	           ? (int)(first + LOGIN_WINDOW_SEC - now)
	           : 1;
}

void
auth_login_failed(struct auth *a, const struct sockaddr *sa)
{
	struct source *s = source_find(a, sa, 1);

	s->last = time(NULL);
	s->fails[s->next] = s->last;
	s->next = (s->next + 1) % LOGIN_FAILS_MAX;
}

void
auth_clear(struct auth *a)
{
	sodium_memzero(a, sizeof *a);
}
