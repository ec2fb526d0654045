/*
 * push_host.c — read the host tree through root_fd only: every component
 * opened with O_NOFOLLOW, so a symlink planted in the tree is pushed as a
 * symlink and never followed. The last parent directory opened is cached
 * (plans are walked in path order, so siblings share it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/evp.h>

#include "sync/push_int.h"

void push_host_init(struct push_host *h, int root_fd)
{
	h->root_fd = root_fd;
	h->dir = NULL;
	h->dir_fd = -1;
}

void push_host_release(struct push_host *h)
{
	if (h->dir_fd >= 0)
		close(h->dir_fd);
	free(h->dir);
	h->dir = NULL;
	h->dir_fd = -1;
}

/* Open directory `dir` (relpath) component by component. */
static int open_dir(int root_fd, const char *dir, int *out)
{
	char *copy = strdup(dir), *save = NULL, *c;
	int fd = dup(root_fd), r = 0;

	if (!copy || fd < 0) {
		r = copy ? -errno : -ENOMEM;
		goto out;
	}
	for (c = strtok_r(copy, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		int nfd = openat(fd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		if (nfd < 0) {
			r = errno == ELOOP || errno == ENOTDIR ? -ENOENT : -errno;
			goto out;
		}
		close(fd);
		fd = nfd;
	}
	*out = fd;
	fd = -1;	/* transferred */
out:
	if (fd >= 0)
		close(fd);
	free(copy);
	return r;
}

/* Parent directory fd of rel (cached) and the last component. */
static int parent_of(struct push_host *h, const char *rel, int *dfd,
		     const char **base)
{
	const char *slash = strrchr(rel, '/');
	size_t n = slash ? (size_t)(slash - rel) : 0;
	int fd, r;

	*base = slash ? slash + 1 : rel;
	if (!n) {
		*dfd = h->root_fd;
		return 0;
	}
	if (h->dir && strlen(h->dir) == n && !strncmp(h->dir, rel, n)) {
		*dfd = h->dir_fd;
		return 0;
	}
	push_host_release(h);
	h->dir = strndup(rel, n);
	if (!h->dir)
		return -ENOMEM;
	r = open_dir(h->root_fd, h->dir, &fd);
	if (r < 0) {
		free(h->dir);
		h->dir = NULL;
		return r;
	}
	h->dir_fd = fd;
	*dfd = fd;
	return 0;
}

int push_host_lstat(struct push_host *h, const char *rel, struct stat *st)
{
	const char *base;
	int dfd, r;

	if (!*rel)
		return fstat(h->root_fd, st) < 0 ? -errno : 0;
	r = parent_of(h, rel, &dfd, &base);
	if (r < 0)
		return r;
	if (fstatat(dfd, base, st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOTDIR ? -ENOENT : -errno;
	return 0;
}

int push_host_open(struct push_host *h, const char *rel, int *fd)
{
	const char *base;
	int dfd, r = parent_of(h, rel, &dfd, &base);

	if (r < 0)
		return r;
	*fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK |
		     O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

int push_host_readlink(struct push_host *h, const char *rel, char **target)
{
	char buf[PATH_MAX + 1];
	const char *base;
	int dfd, r = parent_of(h, rel, &dfd, &base);
	ssize_t n;

	if (r < 0)
		return r;
	n = readlinkat(dfd, base, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*target = strdup(buf);
	return *target ? 0 : -ENOMEM;
}

static int walk_fd(int dfd, const char *rel, push_walk_fn fn, void *arg)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;
	int r = 0;

	if (!d) {
		close(dfd);
		return -errno;
	}
	while (r >= 0 && (de = readdir(d))) {
		struct stat st;
		char *child;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;	/* vanished: its journal entry follows */
		if (asprintf(&child, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0)
			return closedir(d), -ENOMEM;
		r = fn(child, &st, arg);
		if (r == 0 && S_ISDIR(st.st_mode)) {
			int cfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
					 O_NOFOLLOW | O_CLOEXEC);

			if (cfd >= 0)
				r = walk_fd(cfd, child, fn, arg);
			else if (errno == EACCES || errno == EPERM)
				r = fn(child, NULL, arg);	/* cannot enter it */
		}
		if (r > 0)
			r = 0;
		free(child);
	}
	closedir(d);
	return r;
}

int push_host_walk(struct push_host *h, const char *rel, push_walk_fn fn,
		   void *arg)
{
	int pfd, fd, r;

	if (*rel) {
		r = open_dir(h->root_fd, rel, &pfd);
		if (r < 0)
			return r == -ENOTDIR ? -ENOENT : r;
		fd = openat(pfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(pfd);
	} else {
		fd = openat(h->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	return walk_fd(fd, rel, fn, arg);
}

int push_sha_buf(const void *p, size_t n, uint8_t out[STORE_SHA256_LEN])
{
	unsigned len = 0;

	return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 ? 0 : -EIO;
}

int push_sha_fd(int fd, uint8_t out[STORE_SHA256_LEN], int64_t *size)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	static __thread char buf[1 << 16];
	int64_t total = 0;
	unsigned len = 0;
	ssize_t n;
	int r = 0;

	if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		r = -ENOMEM;
		goto out;
	}
	while ((n = pread(fd, buf, sizeof(buf), total)) > 0) {
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		total += n;
	}
	if (n < 0)
		r = -errno;
	else if (EVP_DigestFinal_ex(ctx, out, &len) != 1)
		r = -EIO;
	if (size)
		*size = total;
out:
	EVP_MD_CTX_free(ctx);
	return r;
}
