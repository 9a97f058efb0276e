/*
 * test-atomic.c: hl__write_file_atomic writes a new file, 0600 before any
 * byte is in it, and never through what is already at its temp name: a
 * symlink planted there, a hard link to another file, or a temp file
 * left by a crash.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "hl.h"

static char dir[] = "/tmp/hl-test-util-XXXXXX";

static const char *
at(const char *name)
{
	return check_fmt("%s/%s", dir, name);
}

static const char *
tmp_of(const char *path)
{
	static char p[4096];

	snprintf(p, sizeof p, "%s.tmp%ld", path, (long)getpid());
	return p;
}

static void
put(const char *path, const char *text, int mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror(path);
		close(fd);
	}
	chmod(path, mode);
}

static void
expect(const char *path, const char *text, int mode)
{
	size_t len = 0;
	char *got = hl__read_file(path, 4096, &len);
	struct stat st;

	CHECK(got != NULL && strcmp(got, text) == 0,
	      "%s: expected \"%s\", got \"%s\"", path, text, got ? got : "");
	CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	          (int)(st.st_mode & 0777) == mode,
	      "%s: expected a regular file of mode %03o, got mode %03o", path,
	      mode, (unsigned)(st.st_mode & 0777));
	free(got);
}

int
main(void)
{
	const char *key, *victim;

	umask(022);
	if (mkdtemp(dir) == NULL)
		return 1;
	key = at("svc.cert.private");
	victim = at("victim");

	/* A fresh file. */
	CHECK_INT(hl__write_file_atomic(key, "secret 1", 8, 0600), 0);
	expect(key, "secret 1", 0600);

	/* A symlink at the temp name: the link goes, its target stays. */
	put(victim, "victim", 0644);
	CHECK_INT(symlink(victim, tmp_of(key)), 0);
	CHECK_INT(hl__write_file_atomic(key, "secret 2", 8, 0600), 0);
	expect(victim, "victim", 0644);
	expect(key, "secret 2", 0600);
	CHECK(access(tmp_of(key), F_OK) != 0, "no temp file left");

	/* A hard link to another file at the temp name. */
	CHECK_INT(link(victim, tmp_of(key)), 0);
	CHECK_INT(hl__write_file_atomic(key, "secret 3", 8, 0600), 0);
	expect(victim, "victim", 0644);
	expect(key, "secret 3", 0600);

	/* A temp file left by a crash, readable by all. */
	put(tmp_of(key), "stale", 0644);
	CHECK_INT(hl__write_file_atomic(key, "secret 4", 8, 0600), 0);
	expect(key, "secret 4", 0600);

	unlink(key);
	unlink(victim);
	rmdir(dir);
	return check_done();
}
