/*
 * admin-web.h: the parts of the admin-web plugin shared between its files:
 * a growable text buffer (buf.c), the login token, sessions and the login
 * rate limit (auth.c), and the pages (pages.c). Everything here runs on
 * the core's loop thread; nothing is exported from the .so.
 */
#ifndef ADMIN_WEB_H
#define ADMIN_WEB_H

#include <stdarg.h>
#include <stddef.h>
#include <time.h>

#include <sys/socket.h>

#include <jansson.h>

#include "hardline/plugin.h"
#include "hardline/util.h"

/* ---- buf.c: text that grows; after a failed allocation, oom is set and
 * every later call does nothing. ---- */
struct buf {
	char *p;
	size_t len, cap;
	int oom;
};
void buf_add(struct buf *b, const char *s, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* s with & < > " ' as entities: safe in text and in quoted attributes. */
void buf_html(struct buf *b, const char *s);
void buf_free(struct buf *b);
/* The text, NUL-ended, now owned by the caller (NULL after oom). */
char *buf_take(struct buf *b, size_t *len);

/* The value of field `key` in an application/x-www-form-urlencoded body,
 * decoded, into out; 0, or -1 when absent or longer than outlen - 1. */
int form_get(const char *body, size_t len, const char *key, char *out,
             size_t outlen);

/* 1 for a plausible plugin name: [a-z0-9_-]{1,63}. */
int plugin_name_ok(const char *s);

/* ---- auth.c ---- */
#define TOKEN_MAX 128 /* the longest token an admin may write */
#define SESSION_ID_LEN 64 /* hex of 32 random bytes */
#define SESSIONS_MAX 32
#define SESSION_IDLE_SEC (2 * 3600)
#define SESSION_LIFE_SEC (24 * 3600)
#define LOGIN_FAILS_MAX 5 /* failed logins per source ... */
#define LOGIN_WINDOW_SEC 60 /* ... within this many seconds */
#define SOURCES_MAX 256

struct session {
	char id[SESSION_ID_LEN + 1]; /* "" when the slot is free */
	char csrf[SESSION_ID_LEN + 1];
	time_t created, last;
	char flash[512]; /* a message for the next page, then cleared */
};

struct source {
	char key[48]; /* the address (IPv6: its /64) */
	time_t fails[LOGIN_FAILS_MAX]; /* a ring of failure times */
	size_t next;
	time_t last;
};

struct auth {
	char token[TOKEN_MAX + 1];
	unsigned char token_hash[32];
	struct session sessions[SESSIONS_MAX];
	struct source sources[SOURCES_MAX];
};

/*
 * Read <state_dir>/admin.token, or create it (0600 from birth, O_EXCL)
 * with a fresh 160-bit token; *created says which. 0, or -1 after
 * logging why.
 */
int auth_load_token(struct auth *a, const struct hl_services *svc,
                    struct hl_plugin *self, const char *state_dir,
                    int *created);
/* 1 when given is the token (compared in constant time). */
int auth_token_ok(const struct auth *a, const char *given);
/* A new session (the least recently used one goes when all are taken). */
struct session *auth_session_new(struct auth *a);
/* The live session with this id, or NULL; touching it keeps it alive. */
struct session *auth_session_find(struct auth *a, const char *id);
void auth_session_drop(struct session *s);
/* 1 when s's CSRF token is given (constant time). */
int auth_csrf_ok(const struct session *s, const char *given);
/* Login rate limit per source address: seconds to wait before another
 * attempt (0: go ahead), and the count of a failure. */
int auth_login_wait(struct auth *a, const struct sockaddr *sa);
void auth_login_failed(struct auth *a, const struct sockaddr *sa);
/* n random bytes as 2n lowercase hex characters and a NUL. */
void auth_random_hex(char *out, size_t nbytes);
void auth_clear(struct auth *a);

/* ---- pages.c ---- */
/* The login page; error may be NULL. */
void page_login(struct buf *b, const char *csrf, const char *error);
/* What the core can do beyond ABI 1.1's first services (HL_HAS): the
 * dashboard shows only the controls that work. */
struct caps {
	int priority; /* svc->plugin_set_priority */
	int browse; /* svc->browse */
};
/* The dashboard, from the status object. */
void page_dashboard(struct buf *b, json_t *status, const struct session *s,
                    const char *self_name, const struct caps *caps);
/* A short page with a message and a link back. */
void page_message(struct buf *b, const char *title, const char *text);
/* The QR code of text as an SVG image; -1 when it cannot be made (no
 * libqrencode at build time, or text too long). */
int qr_svg(struct buf *b, const char *text);

/* The embedded static files (generated from assets/ by embed.cmake). */
extern const unsigned char asset_admin_css[], asset_admin_js[];
extern const size_t asset_admin_css_len, asset_admin_js_len;

#endif /* ADMIN_WEB_H */
