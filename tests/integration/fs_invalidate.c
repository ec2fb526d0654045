/*
 * fs_invalidate — the fs API in-process: mount with fs_new(), serve with
 * fs_run() on a thread, change the backing tree directly (as sync-back
 * does: replace by rename, or rewrite in place), call fs_invalidate() and
 * check that readers through the mount see the new content at once; then
 * fs_stop() from another thread ends fs_run() and unmounts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs.h"

static char dir[] = "/tmp/hermes-fsinv.XXXXXX";
static char backing[256], mnt[256];
static int failures;

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", \
	__FILE__, __LINE__, #c); failures++; } } while (0)

static void put(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(s, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "write %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static char *get(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return "(missing)";
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Whether a listing of dir (through the mount) shows name. */
static bool listed(const char *dir, const char *name)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool found = false;

	while (d && (e = readdir(d)))
		found |= strcmp(e->d_name, name) == 0;
	if (d)
		closedir(d);
	return found;
}

static void *serve(void *arg)
{
	static int r;

	r = fs_run(arg);
	return &r;
}

/* Sync-back style: write a temp file in the backing dir, rename it over. */
static void backing_replace(int root, const char *name, const char *s)
{
	int fd = openat(root, ".tmp", O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s) ||
	    close(fd) != 0 || renameat(root, ".tmp", root, name) != 0) {
		perror("backing_replace");
		exit(1);
	}
}

int main(void)
{
	struct fs_config cfg = { 0 };
	struct fs *fs = NULL;
	char p[512], q[512];
	pthread_t th;
	void *ret;
	int r;

	if (!mkdtemp(dir))
		return 1;
	snprintf(backing, sizeof(backing), "%s/b", dir);
	snprintf(mnt, sizeof(mnt), "%s/m", dir);
	mkdir(backing, 0755);
	mkdir(mnt, 0755);
	cfg.backing = backing;
	cfg.mountpoint = mnt;
	cfg.fsname = "hermesfs:test";
	if ((r = fs_new(&cfg, &fs)) < 0) {
		fprintf(stderr, "fs_new: %s\n", strerror(-r));
		return 1;
	}
	pthread_create(&th, NULL, serve, fs);

	snprintf(p, sizeof(p), "%s/f", mnt);
	put(p, "host");
	CHECK(strcmp(get(p), "host") == 0);
	struct stat st;
	CHECK(stat(p, &st) == 0 && st.st_size == 4);

	/* replaced by rename, longer */
	backing_replace(fs_root_fd(fs), "f", "remote version");
	fs_invalidate(fs, "f");
	CHECK(strcmp(get(p), "remote version") == 0);
	CHECK(stat(p, &st) == 0 && st.st_size == 14);

	/* replaced by rename, shorter */
	backing_replace(fs_root_fd(fs), "f", "r2");
	fs_invalidate(fs, "f");
	CHECK(strcmp(get(p), "r2") == 0);

	/* new file and deleted file in a subdirectory */
	snprintf(q, sizeof(q), "%s/d", mnt);
	mkdir(q, 0755);
	snprintf(q, sizeof(q), "%s/d/g", mnt);
	put(q, "g");
	CHECK(strcmp(get(q), "g") == 0);
	CHECK(unlinkat(fs_root_fd(fs), "d/g", 0) == 0);
	fs_invalidate(fs, "d/g");
	CHECK(access(q, F_OK) != 0);
	backing_replace(fs_root_fd(fs), "d/g", "again");
	fs_invalidate(fs, "d/g");
	CHECK(strcmp(get(q), "again") == 0);

	/* rewritten in place (same inode), longer */
	{
		int fd = openat(fs_root_fd(fs), "f", O_WRONLY | O_TRUNC);
		CHECK(fd >= 0 && write(fd, "in place, longer", 16) == 16);
		close(fd);
	}
	fs_invalidate(fs, "f");
	CHECK(strcmp(get(p), "in place, longer") == 0);

	/* rewritten in place while a reader holds it open through the mount */
	{
		int keep = open(p, O_RDONLY), fd;
		char buf[64] = { 0 };

		CHECK(keep >= 0 && pread(keep, buf, sizeof(buf) - 1, 0) == 16);
		fd = openat(fs_root_fd(fs), "f", O_WRONLY | O_TRUNC);
		CHECK(fd >= 0 && write(fd, "rewritten while open, longer", 28) == 28);
		close(fd);
		fs_invalidate(fs, "f");
		CHECK(strcmp(get(p), "rewritten while open, longer") == 0);
		memset(buf, 0, sizeof(buf));
		CHECK(pread(keep, buf, sizeof(buf) - 1, 0) == 28);
		close(keep);
	}

	/*
	 * Missing names and listings are cached (negative entries, readdir
	 * cache): a file or directory that sync-back creates behind the mount
	 * stays invisible until it invalidates the name, then shows at once (a new top-level file, and
	 * a new directory with a file in it, as pull_host_parent() makes them).
	 */
	{
		char n[512], x[512];

		snprintf(n, sizeof(n), "%s/new", mnt);
		snprintf(x, sizeof(x), "%s/x/y", mnt);
		CHECK(access(n, F_OK) != 0 && errno == ENOENT);
		CHECK(access(x, F_OK) != 0 && errno == ENOENT);
		CHECK(!listed(mnt, "new") && !listed(mnt, "x"));	/* cached listing */
		backing_replace(fs_root_fd(fs), "new", "pulled");
		CHECK(mkdirat(fs_root_fd(fs), "x", 0755) == 0);
		backing_replace(fs_root_fd(fs), "x/y", "pulled too");
		CHECK(access(n, F_OK) != 0);	/* still the cached negative entry */
		CHECK(!listed(mnt, "new"));	/* still the cached listing */
		fs_invalidate(fs, "new");
		CHECK(strcmp(get(n), "pulled") == 0);
		CHECK(listed(mnt, "new"));
		fs_invalidate(fs, "x");
		fs_invalidate(fs, "x/y");
		CHECK(strcmp(get(x), "pulled too") == 0);
		CHECK(listed(mnt, "x"));
		snprintf(x, sizeof(x), "%s/x", mnt);
		CHECK(listed(x, "y"));
		/* and deleted again behind the mount */
		CHECK(unlinkat(fs_root_fd(fs), "new", 0) == 0);
		fs_invalidate(fs, "new");
		CHECK(access(n, F_OK) != 0 && errno == ENOENT);
		CHECK(!listed(mnt, "new"));
		/* a listing cached by the kernel follows changes through the mount */
		snprintf(n, sizeof(n), "%s/viamount", mnt);
		put(n, "m");
		CHECK(listed(mnt, "viamount"));
		CHECK(unlink(n) == 0);
		CHECK(!listed(mnt, "viamount"));
	}

	fs_stop(fs);
	pthread_join(th, &ret);
	CHECK(*(int *)ret == 0);
	fs_free(fs);
	snprintf(p, sizeof(p), "rm -rf '%s'", dir);
	if (system(p) != 0)
		failures++;
	if (failures)
		return 1;
	printf("fs_invalidate: all checks passed\n");
	return 0;
}
