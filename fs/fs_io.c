/*
 * fs_io.c — FUSE operations on open files, and the connection setup.
 *
 * Journaling is coalesced per handle: write/fallocate/copy_file_range only
 * mark the handle dirty; flush, release and fsync turn a dirty handle into
 * one WRITE entry. fsync also waits until the journal is durable.
 */
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs_int.h"
#include "store/store.h"

#define FS_MAX_WRITE (1u << 20)

int64_t fs_fh_settle(struct fs *fs, struct fs_fh *fh, const char *path)
{
	if (!__atomic_exchange_n(&fh->dirty, 0, __ATOMIC_ACQ_REL))
		return 0;
	return fs_journal(fs, STORE_OP_WRITE, path, NULL, 0);
}

static struct fs_fh *fh_of(struct fuse_file_info *fi)
{
	return (struct fs_fh *)(uintptr_t)fi->fh;
}

static void fh_dirty(struct fs_fh *fh)
{
	__atomic_store_n(&fh->dirty, 1, __ATOMIC_RELEASE);
}

/*
 * Write-only opens become read-write: the kernel may read pages of a file
 * opened write-only (mmap, partial page writes). O_APPEND stays, so appends
 * land at the real end of the backing file (pwrite on an O_APPEND fd
 * appends) even when the kernel's idea of the size is stale.
 */
static int backing_flags(int flags)
{
	flags &= ~O_NOFOLLOW;
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags | O_NOFOLLOW | O_CLOEXEC;
}

static int fh_new(int fd, struct fuse_file_info *fi)
{
	struct fs_fh *fh = calloc(1, sizeof(*fh));

	if (!fh) {
		close(fd);
		return -ENOMEM;
	}
	fh->fd = fd;
	fi->fh = (uintptr_t)fh;
	return 0;
}

int fs_io_open(const char *path, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	int fd, r;

	fd = openat(fs->root_fd, fs_rel(path), backing_flags(fi->flags));
	if (fd < 0 && errno == EACCES)	/* write-only file, non-root daemon */
		fd = openat(fs->root_fd, fs_rel(path),
			    (fi->flags & ~O_APPEND) | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if ((r = fh_new(fd, fi)) < 0)
		return r;
	if (fi->flags & O_TRUNC)
		fs_journal(fs, STORE_OP_TRUNCATE, path, NULL, 0);
	return 0;
}

int fs_io_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	int fd, r;

	fd = openat(fs->root_fd, fs_rel(path), backing_flags(fi->flags) | O_CREAT, mode);
	if (fd < 0)
		return -errno;
	fs_own(fs, fs_rel(path), fd);
	if ((r = fh_new(fd, fi)) < 0)
		return r;
	fs_journal(fs, STORE_OP_CREATE, path, NULL, S_IFREG | (mode & 07777));
	return 0;
}

int fs_io_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size,
		   off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec *src = malloc(sizeof(*src));

	if (!src)
		return -ENOMEM;
	*src = FUSE_BUFVEC_INIT(size);
	src->buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	src->buf[0].fd = fh_of(fi)->fd;
	src->buf[0].pos = off;
	*bufp = src;
	return 0;
}

int fs_io_write_buf(const char *path, struct fuse_bufvec *buf, off_t off,
		    struct fuse_file_info *fi)
{
	struct fuse_bufvec dst = FUSE_BUFVEC_INIT(fuse_buf_size(buf));
	ssize_t n;

	dst.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	dst.buf[0].fd = fh_of(fi)->fd;
	dst.buf[0].pos = off;
	n = fuse_buf_copy(&dst, buf, FUSE_BUF_SPLICE_NONBLOCK);
	if (n > 0)
		fh_dirty(fh_of(fi));
	return (int)n;
}

int fs_io_flush(const char *path, struct fuse_file_info *fi)
{
	fs_fh_settle(fs_self(), fh_of(fi), path);
	return 0;
}

int fs_io_release(const char *path, struct fuse_file_info *fi)
{
	struct fs_fh *fh = fh_of(fi);

	fs_fh_settle(fs_self(), fh, path);
	close(fh->fd);
	free(fh);
	return 0;
}

int fs_io_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	struct fs_fh *fh = fh_of(fi);

	fs_fh_settle(fs, fh, path);
	if ((datasync ? fdatasync(fh->fd) : fsync(fh->fd)) < 0)
		return -errno;
	/* Everything journaled so far, this file's entries included. */
	return fs->store ? store_journal_wait(fs->store, store_journal_head(fs->store)) : 0;
}

int fs_io_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	int fd, r;

	if (fi) {
		r = ftruncate(fh_of(fi)->fd, size);
	} else {
		fd = openat(fs->root_fd, fs_rel(path), O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return -errno;
		r = ftruncate(fd, size);
		if (r < 0)
			r = -errno;
		close(fd);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return -errno;
	fs_journal(fs, STORE_OP_TRUNCATE, path, NULL, 0);
	return 0;
}

int fs_io_fallocate(const char *path, int mode, off_t off, off_t len,
		    struct fuse_file_info *fi)
{
	if (fallocate(fh_of(fi)->fd, mode, off, len) < 0)
		return -errno;
	fh_dirty(fh_of(fi));
	return 0;
}

ssize_t fs_io_copy_file_range(const char *pin, struct fuse_file_info *fin,
			      off_t oin, const char *pout,
			      struct fuse_file_info *fout, off_t oout,
			      size_t len, int flags)
{
	loff_t in = oin, out = oout;
	ssize_t n = copy_file_range(fh_of(fin)->fd, &in, fh_of(fout)->fd, &out,
				    len, (unsigned)flags);

	if (n < 0)
		return -errno;
	if (n > 0)
		fh_dirty(fh_of(fout));
	return n;
}

off_t fs_io_lseek(const char *path, off_t off, int whence, struct fuse_file_info *fi)
{
	off_t r = lseek(fh_of(fi)->fd, off, whence);

	return r < 0 ? -errno : r;
}

void *fs_io_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct fs *fs = fuse_get_context()->private_data;

	cfg->use_ino = 1;
	cfg->hard_remove = 1;	/* no .fuse_hidden files in the backing dir */
	cfg->entry_timeout = 1.0;
	cfg->attr_timeout = 1.0;
	cfg->negative_timeout = 0;
	cfg->auto_cache = 1;	/* drop cached data if mtime/size changed */
	cfg->kernel_cache = 0;
	cfg->nullpath_ok = 0;
	/* No writeback cache: with it the kernel trusts its own size of a
	 * regular file over ours, so a file that sync-back replaced in the
	 * backing dir would keep its old size (reads cut short) even after
	 * fs_invalidate(). */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->want &= ~(unsigned)FUSE_CAP_ATOMIC_O_TRUNC;
	conn->max_write = FS_MAX_WRITE;
	conn->max_readahead = FS_MAX_WRITE;
	return fs;
}
