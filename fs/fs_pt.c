/*
 * fs_pt.c — FUSE passthrough: the kernel (>= 6.9) reads and writes an open
 * file's backing file itself, so data never crosses the daemon (no READ or
 * WRITE requests, no double copy, the backing file's own readahead and
 * page cache, and no getxattr(security.capability) before each write).
 *
 * libfuse 3.14 (Debian 12) predates passthrough: it neither asks for it at
 * INIT nor can put a backing id in an OPEN reply. Both are a few fields of
 * the kernel protocol, so the session's transport is replaced by our own
 * read/writev (fuse_session_custom_io) that records the INIT request and
 * patches two replies on their way to the kernel:
 *   INIT:        flags |= FUSE_INIT_EXT, flags2 |= FUSE_PASSTHROUGH, and a
 *                max_stack_depth (how deep the backing file system may be);
 *   OPEN/CREATE: open_flags |= FOPEN_PASSTHROUGH and backing_id.
 * A reply goes out on the thread that handles its request, inside
 * fuse_reply_*(), so thread-local state says which reply is which.
 *
 * Registering a backing file needs CAP_SYS_ADMIN; without it (or on an
 * older kernel) the first open finds out and the mount stays on the plain
 * READ/WRITE path for good. The kernel refuses (EIO) to open one inode in
 * both modes at once, so the choice is made once per mount, never per file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs_int.h"
#include "store/store.h"

/* Kernel protocol 7.40 (linux/fuse.h of 6.9+; Debian 12's copy is 7.38). */
#define PT_OP_INIT 26
#define PT_INIT_EXT (1u << 30)
#define PT_FLAGS2_PASSTHROUGH (1u << 5)		/* FUSE_PASSTHROUGH, bit 37 */
#define PT_FOPEN_PASSTHROUGH (1u << 7)
/* What the kernel accepts beside it: DIRECT_IO, NOFLUSH, PARALLEL_DIRECT_
 * WRITES. KEEP_CACHE would fail the open (EIO); there is no cache to keep. */
#define PT_FOPEN_ALLOWED ((1u << 0) | (1u << 5) | (1u << 6))
#define PT_IN_HEADER 40				/* struct fuse_in_header */
#define PT_OUT_HEADER 16			/* struct fuse_out_header */
/* Offsets in struct fuse_init_in / fuse_init_out. */
#define PT_INIT_IN_FLAGS 12
#define PT_INIT_IN_FLAGS2 16
#define PT_INIT_OUT_FLAGS 12
#define PT_INIT_OUT_FLAGS2 32
#define PT_INIT_OUT_STACK 36
#define PT_INIT_OUT_SIZE 64
#define PT_OVERLAYFS_MAGIC 0x794c7630
/* Timestamp granularity assumed where ctimes are not known to be fine:
 * ext4 with small inodes keeps seconds, vfat two. */
#define PT_COARSE_NS (2LL * 1000000000)

struct pt_backing_map {
	int32_t fd;
	uint32_t flags;
	uint64_t padding;
};
#define PT_IOC_BACKING_OPEN _IOW(229, 1, struct pt_backing_map)
#define PT_IOC_BACKING_CLOSE _IOW(229, 2, uint32_t)

static __thread uint64_t init_unique;	/* the INIT this thread answers */
static __thread int32_t open_backing;	/* > 0: the reply being sent opens */

/* Byte `off` of the message the iovec describes; NULL past its end. */
static unsigned char *iov_at(struct iovec *iov, int count, size_t off)
{
	for (int i = 0; i < count; i++) {
		if (off < iov[i].iov_len)
			return (unsigned char *)iov[i].iov_base + off;
		off -= iov[i].iov_len;
	}
	return NULL;
}

static bool iov_get32(struct iovec *iov, int count, size_t off, uint32_t *v)
{
	unsigned char b[4];

	for (size_t i = 0; i < 4; i++) {
		unsigned char *p = iov_at(iov, count, off + i);

		if (!p)
			return false;
		b[i] = *p;
	}
	memcpy(v, b, 4);
	return true;
}

static void iov_put32(struct iovec *iov, int count, size_t off, uint32_t v)
{
	unsigned char b[4];

	memcpy(b, &v, 4);
	for (size_t i = 0; i < 4; i++)
		*iov_at(iov, count, off + i) = b[i];
}

static size_t iov_total(const struct iovec *iov, int count)
{
	size_t n = 0;

	for (int i = 0; i < count; i++)
		n += iov[i].iov_len;
	return n;
}

static ssize_t pt_read(int fd, void *buf, size_t len, void *userdata)
{
	struct fs *fs = userdata;
	ssize_t n = read(fd, buf, len);
	const unsigned char *b = buf;
	uint32_t op, flags, flags2 = 0;

	if (n < PT_IN_HEADER + PT_INIT_IN_FLAGS2 + 4)
		return n;
	memcpy(&op, b + 4, 4);
	if (op != PT_OP_INIT)
		return n;
	memcpy(&init_unique, b + 8, 8);
	memcpy(&flags, b + PT_IN_HEADER + PT_INIT_IN_FLAGS, 4);
	if (flags & PT_INIT_EXT)
		memcpy(&flags2, b + PT_IN_HEADER + PT_INIT_IN_FLAGS2, 4);
	fs->pt_offered = (flags & PT_INIT_EXT) && (flags2 & PT_FLAGS2_PASSTHROUGH);
	return n;
}

/* Ask for passthrough in libfuse's INIT reply (it answers 7.38 fields). */
static void init_patch(struct fs *fs, struct iovec *iov, int count)
{
	uint32_t flags, flags2;
	size_t o = PT_OUT_HEADER;

	if (!fs_pt_wanted(fs) ||
	    iov_total(iov, count) < PT_OUT_HEADER + PT_INIT_OUT_SIZE ||
	    !iov_get32(iov, count, o + PT_INIT_OUT_FLAGS, &flags) ||
	    !iov_get32(iov, count, o + PT_INIT_OUT_FLAGS2, &flags2))
		return;
	iov_put32(iov, count, o + PT_INIT_OUT_FLAGS, flags | PT_INIT_EXT);
	iov_put32(iov, count, o + PT_INIT_OUT_FLAGS2, flags2 | PT_FLAGS2_PASSTHROUGH);
	/* It becomes the mount's own stacking depth: 1 keeps it usable under
	 * overlayfs; 2 only when the backing tree is itself on overlayfs
	 * (a container's root), which 1 would refuse (ELOOP). */
	iov_put32(iov, count, o + PT_INIT_OUT_STACK, fs->pt_stack_depth);
	__atomic_store_n(&fs->pt, 1, __ATOMIC_RELEASE);
}

/* struct fuse_open_out ends both OPEN and CREATE replies:
 * { u64 fh; u32 open_flags; i32 backing_id }. */
static void open_patch(struct iovec *iov, int count, int32_t id)
{
	size_t n = iov_total(iov, count);
	uint32_t flags;

	if (n < PT_OUT_HEADER + 16 || !iov_get32(iov, count, n - 8, &flags))
		return;
	iov_put32(iov, count, n - 8, (flags & PT_FOPEN_ALLOWED) | PT_FOPEN_PASSTHROUGH);
	iov_put32(iov, count, n - 4, (uint32_t)id);
}

static ssize_t pt_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	uint64_t unique = 0;
	int32_t error = 0;

	if (count > 0 && iov[0].iov_len >= PT_OUT_HEADER) {
		memcpy(&error, (char *)iov[0].iov_base + 4, 4);
		memcpy(&unique, (char *)iov[0].iov_base + 8, 8);
	}
	if (init_unique && unique == init_unique) {
		init_unique = 0;
		if (error == 0)
			init_patch(userdata, iov, count);
	} else if (open_backing > 0 && error == 0) {
		open_patch(iov, count, open_backing);
	}
	return writev(fd, iov, count);
}

/* libfuse uses splice only where these exist: keep it for the plain path. */
static ssize_t pt_splice_receive(int fdin, off_t *offin, int fdout, off_t *offout,
				 size_t len, unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static ssize_t pt_splice_send(int fdin, off_t *offin, int fdout, off_t *offout,
			      size_t len, unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

/*
 * Whether the backing file system gives a changed file a ctime newer than
 * any ctime already read (multigrain timestamps, ext4/xfs/btrfs/tmpfs on
 * Linux >= 6.13): then a write through passthrough is seen by comparing
 * fstat() before and after. Coarse timestamps (one per clock tick) would
 * repeat; three writes in a row each moving ctime rule that out.
 */
static bool fine_ctime(int dirfd)
{
	struct stat a, b;
	bool fine = true;
	int fd = openat(dirfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		return false;
	for (int i = 0; i < 3 && fine; i++)
		fine = fstat(fd, &a) == 0 && pwrite(fd, "x", 1, i) == 1 &&
		       fstat(fd, &b) == 0 &&
		       (a.st_ctim.tv_sec != b.st_ctim.tv_sec ||
			a.st_ctim.tv_nsec != b.st_ctim.tv_nsec);
	close(fd);
	return fine;
}

/*
 * Registering a backing file needs CAP_SYS_ADMIN in the initial user
 * namespace (root in a container's own namespace is refused). Asking for
 * passthrough without it would only make the first open find out.
 */
static bool pt_capable(void)
{
	char line[256], ns[64];
	unsigned long long caps = 0;
	ssize_t n;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	fclose(f);
	n = readlink("/proc/self/ns/user", ns, sizeof(ns) - 1);
	if (n <= 0)
		return false;
	ns[n] = '\0';
	/* 4026531837: the initial user namespace's fixed inode number. */
	return (caps & (1ULL << 21)) && strcmp(ns, "user:[4026531837]") == 0;
}

int fs_pt_setup(struct fs *fs)
{
	static const struct fuse_custom_io io = {
		.read = pt_read, .writev = pt_writev,
		.splice_receive = pt_splice_receive, .splice_send = pt_splice_send,
	};
	int fd = fuse_session_fd(fs->se);
	struct statfs sfs;

	if (fs->no_passthrough || fs->writeback || fd < 0)
		return 0;
#if FUSE_MAJOR_VERSION > 3 || FUSE_MINOR_VERSION >= 16
	/* libfuse negotiates passthrough itself from 3.16 (and may bypass
	 * writev from 3.17): patching its replies would fight it. Moving to
	 * its fuse_passthrough_open() is the way there; until then, none. */
	return 0;
#endif
	if (!(fs->pt_capable = pt_capable()))
		return 0;	/* libfuse's own transport, as before */
	fs->fine_ctime = fine_ctime(fs->root_fd);
	fs->pt_stack_depth = fstatfs(fs->root_fd, &sfs) == 0 &&
			     sfs.f_type == PT_OVERLAYFS_MAGIC ? 2 : 1;
	return fuse_session_custom_io(fs->se, &io, fd);
}

bool fs_pt_wanted(const struct fs *fs)
{
	/* The kernel turns passthrough down when writeback caching is on. */
	return fs->pt_offered && fs->pt_capable && !fs->no_passthrough &&
	       !fs->writeback;
}

bool fs_passthrough(const struct fs *fs)
{
	return fs && fs_pt_on(fs);
}

bool fs_pt_on(const struct fs *fs)
{
	return __atomic_load_n(&fs->pt, __ATOMIC_ACQUIRE) == 1;
}

/* Remember what fd's file looks like now, to tell a later write by. */
static void snap_take(struct fs *fs, int fd, struct fs_wsnap *w)
{
	struct timespec now;
	struct stat st;

	if (fstat(fd, &st) < 0) {
		w->unsure = true;
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	w->mtime = st.st_mtim;
	w->size = st.st_size;
	/* With coarse timestamps (or on another file system than the probed
	 * root) a write within the granularity keeps the mtime: a change that
	 * recent counts as changed again at the next check. */
	w->unsure = (!fs->fine_ctime || st.st_dev != fs->root.dev) &&
		    (now.tv_sec - st.st_mtim.tv_sec) * 1000000000LL +
		    (now.tv_nsec - st.st_mtim.tv_nsec) < PT_COARSE_NS;
}

/*
 * Whether fd's file changed since w was taken; retakes w if so. mtime, not
 * ctime: chmod, chown, xattrs and sync-back's own mode changes move the
 * ctime without a write (they journal themselves).
 */
static bool snap_changed(struct fs *fs, int fd, struct fs_wsnap *w)
{
	struct stat st;

	if (!w->unsure && fstat(fd, &st) == 0 &&
	    st.st_mtim.tv_sec == w->mtime.tv_sec &&
	    st.st_mtim.tv_nsec == w->mtime.tv_nsec && st.st_size == w->size)
		return false;
	snap_take(fs, fd, w);
	return true;
}

bool fs_pt_written(struct fs *fs, struct fs_fh *fh)
{
	return fh->pt_inode && fh->pt_write && snap_changed(fs, fh->fd, &fh->wsnap);
}

/* ---- watching files after their last RELEASE ---- */

static void watch_journal(struct fs *fs, struct fs_inode *in)
{
	char *path;

	if (!snap_changed(fs, in->fd, &in->wsnap))
		return;
	if ((path = fs_fd_relpath(fs, in->fd)) != NULL)	/* NULL: unlinked */
		fs_journal(fs, STORE_OP_WRITE, path, NULL, 0);
	free(path);
}

void fs_pt_watch(struct fs *fs, struct fs_fh *fh)
{
	struct fs_inode *in = fh->pt_inode;

	if (!in || !fh->pt_write || !fs->store)
		return;
	pthread_mutex_lock(&fs->settle_lock);
	in->wsnap = fh->wsnap;
	if (!in->watched) {
		in->watched = true;
		in->wprev = NULL;
		in->wnext = fs->watch;
		if (fs->watch)
			fs->watch->wprev = in;
		fs->watch = in;
	}
	pthread_mutex_unlock(&fs->settle_lock);
}

void fs_pt_watch_settle(struct fs *fs)
{
	for (struct fs_inode *in = fs->watch; in; in = in->wnext)
		watch_journal(fs, in);
}

void fs_pt_unwatch(struct fs *fs, struct fs_inode *in)
{
	pthread_mutex_lock(&fs->settle_lock);
	if (in->watched) {
		watch_journal(fs, in);
		if (in->wprev)
			in->wprev->wnext = in->wnext;
		else
			fs->watch = in->wnext;
		if (in->wnext)
			in->wnext->wprev = in->wprev;
		in->watched = false;
	}
	pthread_mutex_unlock(&fs->settle_lock);
}

/* The inode's backing id, registered on its first open (fs->fhlock). */
static int backing_get(struct fs *fs, struct fs_inode *in, int fd)
{
	struct pt_backing_map map = { .fd = fd };
	int id;

	if (in->backing_refs > 0) {
		in->backing_refs++;
		return 0;
	}
	id = ioctl(fuse_session_fd(fs->se), PT_IOC_BACKING_OPEN, &map);
	if (id < 0)
		return -errno;
	in->backing_id = id;
	in->backing_refs = 1;
	return 0;
}

int fs_pt_open(struct fs *fs, struct fs_inode *in, struct fs_fh *fh, int flags)
{
	bool plain = false;
	int r;

	if (!fs_pt_on(fs))
		return 0;
	pthread_mutex_lock(&fs->fhlock);
	r = backing_get(fs, in, fh->fd);
	if (r == 0) {
		__atomic_store_n(&fs->pt_used, 1, __ATOMIC_RELEASE);
	} else if ((r == -EPERM || r == -ENOTTY) && !fs->pt_used) {
		/* Not allowed after all, or not built in: the plain path for
		 * good (before any file is open in passthrough mode: the
		 * kernel refuses mixing the two on one inode). */
		__atomic_store_n(&fs->pt, 0, __ATOMIC_RELEASE);
		plain = true;
	} else if (r == -ELOOP || r == -EOPNOTSUPP || r == -EINVAL) {
		plain = true;	/* this file only (its file system is too
				 * deep or unsupported): every open of it fails
				 * the same way, so its inode never mixes */
	}
	pthread_mutex_unlock(&fs->fhlock);
	if (plain)
		return 0;
	if (r < 0)
		return r;
	fh->pt_inode = in;
	fh->pt_write = (flags & O_ACCMODE) != O_RDONLY;
	if (fh->pt_write)
		snap_take(fs, fh->fd, &fh->wsnap);
	return 0;
}

void fs_pt_reply_begin(const struct fs_fh *fh)
{
	open_backing = fh && fh->pt_inode ? fh->pt_inode->backing_id : 0;
}

void fs_pt_reply_end(void)
{
	open_backing = 0;
}

void fs_pt_close(struct fs *fs, struct fs_fh *fh)
{
	struct fs_inode *in = fh ? fh->pt_inode : NULL;
	uint32_t id;

	if (!in)
		return;
	fh->pt_inode = NULL;
	pthread_mutex_lock(&fs->fhlock);
	if (--in->backing_refs == 0) {
		id = (uint32_t)in->backing_id;
		in->backing_id = 0;
		if (fs->se)
			ioctl(fuse_session_fd(fs->se), PT_IOC_BACKING_CLOSE, &id);
	}
	pthread_mutex_unlock(&fs->fhlock);
}
