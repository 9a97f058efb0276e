/*
 * check.h: the unit tests' few macros. A failed CHECK says what was
 * expected and what came; the program's exit status is the failure count,
 * and its last line is "N passed, N failed".
 */
#ifndef HL_TEST_CHECK_H
#define HL_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (cond) {                                                    \
			check_passed++;                                        \
		} else {                                                       \
			check_failed++;                                        \
			fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);  \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
		}                                                              \
	} while (0)

#define CHECK_STR(got, want)                                                   \
	do {                                                                   \
		const char *g_ = (got), *w_ = (want);                          \
		CHECK(g_ != NULL && strcmp(g_, w_) == 0,                       \
		      "%s: expected \"%s\", got \"%s\"", #got, w_,             \
		      g_ ? g_ : "(null)");                                     \
	} while (0)

/* CHECK_INT's check; 1 when it held, for what may be looked at only
 * then. */
static inline int
check_int_(const char *file, int line, const char *what, long got, long want)
{
	if (got == want) {
		check_passed++;
		return 1;
	}
	check_failed++;
	fprintf(stderr, "%s:%d: FAIL: %s: expected %ld, got %ld\n", file, line,
	        what, want, got);
	return 0;
}

#define CHECK_INT(got, want) ((void)CHECK_INT_OK(got, want))

/* CHECK_INT, and whether it held:
 *   if (CHECK_INT_OK(cfg->nservices, 1))
 *       CHECK_STR(cfg->services[0].name, "web"); */
#define CHECK_INT_OK(got, want)                                                \
	check_int_(__FILE__, __LINE__, #got, (long)(got), (long)(want))

/*
 * A copy of exactly len bytes of p on the heap, no NUL after them, so
 * that ASan sees any read past the end of what a parser was given. Free
 * it. Exits when out of memory.
 */
static inline void *
check_exact(const void *p, size_t len)
{
	void *b = malloc(len ? len : 1);

	if (b == NULL) {
		perror("check_exact");
		exit(2);
	}
	memcpy(b, p, len);
	return b;
}

/*
 * printf into one of 8 static buffers taken in turn, so that a call's
 * result (a path, say) stays valid through the next 7 calls: enough for
 * the arguments of one call.
 */
static inline __attribute__((format(printf, 1, 2))) const char *
check_fmt(const char *fmt, ...)
{
	static char bufs[8][4096];
	static int next;
	char *b = bufs[next++ % 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, sizeof bufs[0], fmt, ap);
	va_end(ap);
	return b;
}

/*
 * The file tests/vectors/<name> (under $HL_SOURCE_DIR, else ".."), NUL
 * added, into out (cap bytes with the NUL); returns its length, or 0
 * after a failed CHECK when it cannot be read.
 */
static inline size_t
check_read_vector(const char *name, char *out, size_t cap)
{
	const char *src = getenv("HL_SOURCE_DIR");
	char path[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof path, "%s/tests/vectors/%s", src ? src : "..",
	         name);
	f = fopen(path, "rb");
	if (f == NULL) {
		CHECK(0, "cannot open %s (set HL_SOURCE_DIR)", path);
		return 0;
	}
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
	return n;
}

/* hex (trailing newlines ignored) decoded into out: its length, or 0
 * (odd, not hex, or over cap bytes). */
static inline size_t
check_unhex(const char *hex, unsigned char *out, size_t cap)
{
	size_t n = strlen(hex);

	while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r'))
		n--;
	if (n % 2 != 0 || n / 2 > cap)
		return 0;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1 ||
		    strchr("0123456789abcdefABCDEF", hex[2 * i]) == NULL ||
		    strchr("0123456789abcdefABCDEF", hex[2 * i + 1]) == NULL)
			return 0;
		out[i] = (unsigned char)v;
	}
	return n / 2;
}

/* A step the tests cannot do without (sodium_init() >= 0, say): when it
 * failed, say so and exit 1 before any test runs. */
static inline void
check_setup(int ok, const char *what)
{
	if (!ok) {
		printf("FAIL: %s\n", what);
		exit(1);
	}
}

static inline int
check_done(void)
{
	printf("%d passed, %d failed\n", check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
