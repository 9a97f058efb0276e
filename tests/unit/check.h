/*
 * check.h: the unit tests' few macros. A failed CHECK says what was
 * expected and what came; the program's exit status is the failure count,
 * and its last line is "N passed, N failed".
 */
#ifndef HL_TEST_CHECK_H
#define HL_TEST_CHECK_H

#include <stdio.h>
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

#define CHECK_INT(got, want)                                                   \
	do {                                                                   \
		long g_ = (long)(got), w_ = (long)(want);                      \
		CHECK(g_ == w_, "%s: expected %ld, got %ld", #got, w_, g_);    \
	} while (0)

static inline int
check_done(void)
{
	printf("%d passed, %d failed\n", check_passed, check_failed);
	return check_failed ? 1 : 0;
}

#endif
