/*
 * pull_host.c — reaching the host tree only through root_fd, one component
 * at a time with O_NOFOLLOW, so no symlink (planted by anyone) is ever
 * followed while a pull reads or writes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/pull_int.h"

/* -ELOOP for a symlink (never followed), -ENOTDIR for anything else that
 * is not a directory. */
static int open_dir_at(int fd, const char *name)
{
	int r = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (r >= 0)
		return r;
	r = -errno;
	if (r == -ENOTDIR && fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISLNK(st.st_mode))
		r = -ELOOP;
	return r;
}

int pull_host_parent(int root_fd, const char *rel, bool create,
		     pull_mkdir_fn made, void *made_arg,
		     int *dirfd, const char **base)
{
	char buf[PATH_MAX];
	size_t n = strlen(rel);
	char *c, *s;
	int fd, nfd;

	if (n >= sizeof(buf) || !n)
		return -ENAMETOOLONG;
	memcpy(buf, rel, n + 1);
	fd = open_dir_at(root_fd, ".");
	if (fd < 0)
		return fd;
	for (c = buf; (s = strchr(c, '/')); c = s + 1) {
		*s = '\0';
		nfd = open_dir_at(fd, c);
		if (nfd == -ENOENT && create) {
			if (mkdirat(fd, c, 0755) < 0 && errno != EEXIST) {
				nfd = -errno;
			} else {
				if (made)
					made(buf, made_arg);
				nfd = open_dir_at(fd, c);
			}
		}
		*s = '/';
		close(fd);
		if (nfd < 0)
			return nfd;
		fd = nfd;
	}
	*dirfd = fd;
	*base = rel + (c - buf);
	return 0;
}

static int hash_fd(int fd, uint8_t out[STORE_SHA256_LEN])
{
	struct pull_sha *sha = NULL;
	char buf[64 * 1024];
	ssize_t n;
	int r = pull_sha_new(&sha);

	while (r == 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		r = pull_sha_update(sha, buf, (size_t)n);
	}
	if (r == 0)
		r = pull_sha_final(sha, out);
	pull_sha_free(sha);
	return r;
}

void pull_ver_stamp(struct pull_ver *v, const struct stat *st)
{
	v->ino = st->st_ino;
	v->size = st->st_size;
	v->ctime_ns = st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
}

bool pull_host_changed(int dirfd, const char *base, const struct pull_ver *h)
{
	struct pull_ver now = { 0 };
	struct stat st;

	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return h->present;
	if (!h->present)
		return true;
	pull_ver_stamp(&now, &st);
	return now.ino != h->ino || now.size != h->size ||
	       now.ctime_ns != h->ctime_ns;
}

static int version_at(int dirfd, const char *base, struct pull_ver *out)
{
	char target[PATH_MAX];
	struct stat st;
	ssize_t n;
	int fd, r;

	if (fstatat(dirfd, base, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	out->present = true;
	out->mode = st.st_mode;
	pull_ver_stamp(out, &st);
	if (S_ISDIR(st.st_mode)) {
		out->type = STORE_FT_DIR;
	} else if (S_ISLNK(st.st_mode)) {
		out->type = STORE_FT_SYMLINK;
		n = readlinkat(dirfd, base, target, sizeof(target));
		if (n < 0)
			return -errno;
		return pull_sha_buf(target, (size_t)n, out->sha);
	} else if (S_ISREG(st.st_mode)) {
		out->type = STORE_FT_FILE;
		fd = openat(dirfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		if (fstat(fd, &st) == 0)	/* the inode actually hashed */
			pull_ver_stamp(out, &st);
		r = hash_fd(fd, out->sha);
		close(fd);
		return r;
	}
	/* fifo, device, socket on the host: equal to nothing we know. */
	return 0;
}

int pull_host_version(int root_fd, const char *rel, struct pull_ver *out)
{
	const char *base;
	int dirfd, r;

	memset(out, 0, sizeof(*out));
	r = pull_host_parent(root_fd, rel, false, NULL, NULL, &dirfd, &base);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	r = version_at(dirfd, base, out);
	close(dirfd);
	return r;
}

int pull_stage_open(int root_fd)
{
	char name[64];
	int fd;

	fd = openat(root_fd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0)
		return fd;
	/* No O_TMPFILE here: a named file, unlinked at once, so nothing is
	 * ever left behind even on a crash right after. */
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), ".hermesfs-pull-%d-%d",
			 (int)getpid(), rand());
		fd = openat(root_fd, name,
			    O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0) {
			unlinkat(root_fd, name, 0);
			return fd;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}
