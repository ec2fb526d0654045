/*
 * fs_inode.c — the inode table (one entry per backing inode the kernel
 * holds a reference to), lookups, and journal paths.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs_int.h"
#include "fs/log_int.h"
#include "store/store.h"

int fs_itab_init(struct fs *fs)
{
	fs->ibuckets = 1 << 16;
	fs->itab = calloc(fs->ibuckets, sizeof(*fs->itab));
	if (!fs->itab)
		return -ENOMEM;
	pthread_mutex_init(&fs->ilock, NULL);
	pthread_mutex_init(&fs->fhlock, NULL);
	pthread_mutex_init(&fs->settle_lock, NULL);
	return 0;
}

void fs_itab_free(struct fs *fs)
{
	if (!fs->itab)
		return;
	for (size_t b = 0; b < fs->ibuckets; b++) {
		struct fs_inode *in = fs->itab[b], *next;

		for (; in; in = next) {
			next = in->next;
			close(in->fd);
			free(in);
		}
	}
	free(fs->itab);
	fs->itab = NULL;
	pthread_mutex_destroy(&fs->ilock);
	pthread_mutex_destroy(&fs->fhlock);
	pthread_mutex_destroy(&fs->settle_lock);
}

static size_t bucket(const struct fs *fs, dev_t dev, ino_t ino)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev;

	return (size_t)(h >> 16) & (fs->ibuckets - 1);
}

struct fs_inode *fs_inode(struct fs *fs, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? &fs->root : (struct fs_inode *)(uintptr_t)ino;
}

char *fs_proc_path(char *buf, int fd)
{
	snprintf(buf, 64, "/proc/self/fd/%d", fd);
	return buf;
}

static fuse_ino_t ino_of(struct fs *fs, struct fs_inode *in)
{
	return in == &fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)in;
}

fuse_ino_t fs_itab_find(struct fs *fs, dev_t dev, ino_t ino)
{
	struct fs_inode *in;
	fuse_ino_t r = 0;

	if (dev == fs->root.dev && ino == fs->root.ino)
		return FUSE_ROOT_ID;
	pthread_mutex_lock(&fs->ilock);
	for (in = fs->itab[bucket(fs, dev, ino)]; in; in = in->next)
		if (in->dev == dev && in->ino == ino) {
			r = ino_of(fs, in);
			break;
		}
	pthread_mutex_unlock(&fs->ilock);
	return r;
}

int fs_do_lookup(struct fs *fs, fuse_ino_t parent, const char *name,
		 struct fuse_entry_param *e)
{
	struct fs_inode *in, *p = fs_inode(fs, parent);
	int fd, r;
	size_t b;

	memset(e, 0, sizeof(*e));
	e->attr_timeout = FS_ATTR_TIMEOUT;
	e->entry_timeout = FS_ENTRY_TIMEOUT;
	fd = openat(p->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	if (e->attr.st_dev == fs->root.dev && e->attr.st_ino == fs->root.ino) {
		close(fd);	/* ".." of a top-level dir: the root is never forgotten */
		e->ino = FUSE_ROOT_ID;
		return 0;
	}
	pthread_mutex_lock(&fs->ilock);
	b = bucket(fs, e->attr.st_dev, e->attr.st_ino);
	for (in = fs->itab[b]; in; in = in->next)
		if (in->dev == e->attr.st_dev && in->ino == e->attr.st_ino)
			break;
	if (in) {
		close(fd);
	} else if ((in = calloc(1, sizeof(*in))) != NULL) {
		in->fd = fd;
		in->dev = e->attr.st_dev;
		in->ino = e->attr.st_ino;
		in->type = e->attr.st_mode & S_IFMT;
		in->next = fs->itab[b];
		fs->itab[b] = in;
		fs->icount++;
	} else {
		pthread_mutex_unlock(&fs->ilock);
		close(fd);
		return -ENOMEM;
	}
	in->nlookup++;
	pthread_mutex_unlock(&fs->ilock);
	e->ino = (fuse_ino_t)(uintptr_t)in;
	return 0;
}

void fs_forget_one(struct fs *fs, fuse_ino_t ino, uint64_t n)
{
	struct fs_inode *in = fs_inode(fs, ino), **pp;

	if (in == &fs->root)
		return;
	pthread_mutex_lock(&fs->ilock);
	in->nlookup = in->nlookup > n ? in->nlookup - n : 0;
	if (in->nlookup == 0) {
		for (pp = &fs->itab[bucket(fs, in->dev, in->ino)]; *pp; pp = &(*pp)->next)
			if (*pp == in) {
				*pp = in->next;
				break;
			}
		fs->icount--;
		fs_pt_unwatch(fs, in);
		close(in->fd);
		free(in);
	}
	pthread_mutex_unlock(&fs->ilock);
}

char *fs_fd_relpath(struct fs *fs, int fd)
{
	static const char deleted[] = " (deleted)";
	char proc[64], buf[PATH_MAX + 1];
	struct stat st;
	ssize_t n;

	if (fd == fs->root_fd)
		return strdup("");
	snprintf(proc, sizeof(proc), "%d", fd);
	n = readlinkat(fs->proc_fd, proc, buf, sizeof(buf) - 1);
	if (n <= 0 || (size_t)n >= sizeof(buf) - 1)
		return NULL;
	buf[n] = '\0';
	/* The kernel marks an unlinked file's link so; a name that merely
	 * ends that way costs one fstat to tell apart. */
	if ((size_t)n > sizeof(deleted) - 1 &&
	    strcmp(buf + n - (sizeof(deleted) - 1), deleted) == 0 &&
	    fstatat(fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 &&
	    !S_ISDIR(st.st_mode) && st.st_nlink == 0) {
		errno = ENOENT;	/* unlinked: nothing left to journal */
		return NULL;
	}
	errno = EXDEV;		/* outside the backing dir (it was moved?) */
	if (strncmp(buf, fs->root_path, fs->root_len) != 0)
		return NULL;
	if (buf[fs->root_len] == '\0')
		return strdup("");
	if (fs->root_len > 1 && buf[fs->root_len] != '/')
		return NULL;
	return strdup(buf + fs->root_len + (fs->root_len > 1));
}

char *fs_child_relpath(struct fs *fs, fuse_ino_t parent, const char *name)
{
	char *dir = fs_fd_relpath(fs, fs_inode(fs, parent)->fd), *out = NULL;

	if (!dir)
		return NULL;
	if (asprintf(&out, "%s%s%s", dir, *dir ? "/" : "", name) < 0)
		out = NULL;
	free(dir);
	return out;
}

int64_t fs_journal(struct fs *fs, int op, const char *path, const char *path2,
		   uint32_t mode)
{
	struct store_entry e = { 0 };
	int64_t seq = 0;
	int r = -ENOENT;

	if (!fs->store)
		return 0;
	e.op = op;
	e.path = path;
	e.path2 = path2;
	e.mode = mode;
	e.time_ns = store_now_ns();
	if (!path || (r = store_journal_append(fs->store, &e, &seq)) < 0) {
		/* The operation itself succeeded: keep serving, but make sure
		 * the next mount rescans (see fs_journal_lost). */
		if (!__atomic_exchange_n(&fs->journal_lost, 1, __ATOMIC_ACQ_REL))
			hlog(HLOG_ERR, "a change could not be journaled (%s): the"
			     " next mount will rescan the tree", strerror(-r));
		return 0;
	}
	return seq;
}

/*
 * Check and append under one lock: fs_settle_open() must not pass a handle
 * whose change another thread has seen but not appended yet, or a push
 * right after it would miss that change.
 */
int64_t fs_fh_settle(struct fs *fs, struct fs_fh *fh)
{
	char *path;
	int64_t seq = 0;

	if (!fs->store)
		return 0;
	pthread_mutex_lock(&fs->settle_lock);
	if (fs_pt_written(fs, fh))	/* its writes bypassed us */
		__atomic_store_n(&fh->dirty, 1, __ATOMIC_RELEASE);
	if (!__atomic_exchange_n(&fh->dirty, 0, __ATOMIC_ACQ_REL))
		goto out;
	path = fs_fd_relpath(fs, fh->fd);
	if (!path && errno == ENOENT)	/* written after its unlink */
		goto out;
	seq = fs_journal(fs, STORE_OP_WRITE, path, NULL, 0);
	free(path);
out:
	pthread_mutex_unlock(&fs->settle_lock);
	return seq;
}

void fs_settle_open(struct fs *fs)
{
	struct fs_hlink *l;

	if (!fs || !fs->store)
		return;
	pthread_mutex_lock(&fs->fhlock);
	for (l = fs->fhs; l; l = l->next)
		fs_fh_settle(fs, (struct fs_fh *)l);
	pthread_mutex_unlock(&fs->fhlock);
	/* Files no longer open but possibly still mapped. */
	pthread_mutex_lock(&fs->settle_lock);
	fs_pt_watch_settle(fs);
	pthread_mutex_unlock(&fs->settle_lock);
}

void fs_mode_kill(struct fs *fs, int fd, mode_t mode, mode_t kill)
{
	char proc[64], *path;
	mode_t left = mode & 07777 & ~kill;

	if (!kill || chmod(fs_proc_path(proc, fd), left) < 0)
		return;
	path = fs_fd_relpath(fs, fd);
	fs_journal(fs, STORE_OP_CHMOD, path, NULL, left);
	free(path);
}

/* umask is per fs_struct, which threads share: each request thread takes
 * its own copy (unshare CLONE_FS) the first time. 1 = own, -1 = could not. */
static __thread int umask_own;

mode_t fs_umask_push(fuse_req_t req, mode_t mode)
{
	if (!umask_own)
		umask_own = unshare(CLONE_FS) == 0 ? 1 : -1;
	if (umask_own < 0)	/* mask it here: default ACLs then see less */
		return fs_umask_mode(req, mode);
	umask(fuse_req_ctx(req)->umask);
	return mode;
}

void fs_umask_pop(void)
{
	if (umask_own > 0)
		umask(0);
}

mode_t fs_umask_mode(fuse_req_t req, mode_t mode)
{
	return mode & ~fuse_req_ctx(req)->umask;
}

void fs_own(struct fs *fs, fuse_req_t req, int parent_fd, const char *name, int fd)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	struct stat st;
	gid_t gid = ctx->gid;

	if (!fs->as_root || (ctx->uid == 0 && ctx->gid == 0))
		return;
	/* A setgid parent already gave the node its group (kernel rule). */
	if (fstat(parent_fd, &st) == 0 && (st.st_mode & S_ISGID))
		gid = (gid_t)-1;
	if (fd >= 0)
		(void)!fchown(fd, ctx->uid, gid);
	else
		(void)!fchownat(parent_fd, name, ctx->uid, gid, AT_SYMLINK_NOFOLLOW);
}
