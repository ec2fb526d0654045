/*
 * fs_llio.c — FUSE low-level operations on open files and directories,
 * statfs, and the connection setup.
 *
 * Journaling is coalesced per handle: write/fallocate/copy_file_range only
 * mark the handle dirty; flush, release and fsync turn a dirty handle into
 * one WRITE entry. fsync also waits until the journal is durable.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs/fs_int.h"
#include "store/store.h"

static struct fs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
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
 * opened write-only (mmap, partial pages). With the writeback cache the
 * kernel keeps O_APPEND positions itself; without it the backing fd keeps
 * O_APPEND so appends land at the real end even if the kernel's size is
 * stale (pwrite on an O_APPEND fd appends).
 */
static int backing_flags(const struct fs *fs, int flags)
{
	flags &= ~(O_NOFOLLOW | O_CREAT | O_EXCL);
	if (fs->writeback)
		flags &= ~O_APPEND;
	if ((flags & O_ACCMODE) == O_WRONLY)
		flags = (flags & ~O_ACCMODE) | O_RDWR;
	return flags | O_CLOEXEC;
}

/* Open handles are listed: the kernel sends no RELEASE or RELEASEDIR for
 * those still open when the session ends (fs_fh_drain frees them). */
static void hlink_add(struct fs *fs, struct fs_hlink **head, struct fs_hlink *l)
{
	pthread_mutex_lock(&fs->fhlock);
	l->prev = NULL;
	l->next = *head;
	if (*head)
		(*head)->prev = l;
	*head = l;
	pthread_mutex_unlock(&fs->fhlock);
}

static void hlink_del(struct fs *fs, struct fs_hlink **head, struct fs_hlink *l)
{
	pthread_mutex_lock(&fs->fhlock);
	if (l->prev)
		l->prev->next = l->next;
	else
		*head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	pthread_mutex_unlock(&fs->fhlock);
}

/*
 * No FLUSH round trip at close(2), which would only journal: RELEASE
 * journals the handle's writes once its last reference goes, and the
 * daemon calls fs_settle_open() before every push, which covers the time
 * between close(2) and RELEASE. (Locks are the kernel's own, see fs_ll.c;
 * with the writeback cache the kernel sends FLUSH anyway, to write back.)
 */
static int fh_new(struct fs *fs, struct fs_inode *in, int fd,
		  struct fuse_file_info *fi)
{
	struct fs_fh *fh = calloc(1, sizeof(*fh));
	int r;

	if (!fh) {
		close(fd);
		return -ENOMEM;
	}
	fh->fd = fd;
	if ((r = fs_pt_open(fs, in, fh, fi->flags)) < 0) {
		close(fd);
		free(fh);
		return r;
	}
	hlink_add(fs, &fs->fhs, &fh->link);
	fi->fh = (uintptr_t)fh;
	fi->keep_cache = 1;	/* one inode per file: the page cache is ours */
	fi->noflush = 1;
	return 0;
}

void fs_fh_free(struct fs *fs, struct fs_fh *fh)
{
	if (!fh)
		return;
	hlink_del(fs, &fs->fhs, &fh->link);
	fs_pt_close(fs, fh);
	close(fh->fd);
	free(fh);
}

struct fs_dir;
static void dir_free(struct fs *fs, struct fs_dir *d);

void fs_fh_drain(struct fs *fs)
{
	struct fs_fh *fh;

	pthread_mutex_lock(&fs->fhlock);
	while ((fh = (struct fs_fh *)fs->fhs)) {
		pthread_mutex_unlock(&fs->fhlock);
		fs_fh_settle(fs, fh);
		fs_fh_free(fs, fh);
		pthread_mutex_lock(&fs->fhlock);
	}
	pthread_mutex_unlock(&fs->fhlock);
	pthread_mutex_lock(&fs->settle_lock);	/* files still mapped */
	fs_pt_watch_settle(fs);
	pthread_mutex_unlock(&fs->settle_lock);
	while (fs->dirs)	/* the loop has ended: nobody else touches them */
		dir_free(fs, (struct fs_dir *)fs->dirs);
}

/*
 * open(O_TRUNC) reaches us as one OPEN (FUSE_CAP_ATOMIC_O_TRUNC) instead of
 * a SETATTR(size 0) and an OPEN. The kernel then leaves clearing the
 * set-user-ID bit (and set-group-ID with group exec) of the truncated file
 * to us: the backing kernel only does it when the daemon is not root.
 */
static void trunc_kill_suid(struct fs *fs, fuse_req_t req, int fd)
{
	struct stat st;
	mode_t kill = 0;

	if (!fs->as_root || fuse_req_ctx(req)->uid == 0 || fstat(fd, &st) < 0 ||
	    !S_ISREG(st.st_mode))
		return;
	if (st.st_mode & S_ISUID)
		kill |= S_ISUID;
	if ((st.st_mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		kill |= S_ISGID;
	fs_mode_kill(fs, fd, st.st_mode, kill);
}

/* The kernel marks an exec's open with __FMODE_EXEC in the open flags. */
#define FS_O_EXEC 040

/* The mount carries the backing root's noexec; a noexec file system
 * mounted further down is refused here, at the exec's open. */
static bool exec_refused(int fd, int flags)
{
	struct statvfs sv;

	return (flags & FS_O_EXEC) &&
	    (fstatvfs(fd, &sv) < 0 || (sv.f_flag & ST_NOEXEC));
}

void fs_ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_inode *in = fs_inode(fs, ino);
	char proc[64], *path;
	int fd, r;

	fs_proc_path(proc, in->fd);
	fd = open(proc, backing_flags(fs, fi->flags));
	if (fd < 0 && errno == EACCES)	/* write-only file, non-root daemon */
		fd = open(proc, (fi->flags & ~(O_APPEND | O_CREAT | O_EXCL)) | O_CLOEXEC);
	if (fd >= 0 && exec_refused(fd, fi->flags)) {
		close(fd);
		fd = -1;
		errno = EACCES;
	}
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	/* open() truncated already: journal it even if the open fails now */
	if (fi->flags & O_TRUNC)
		trunc_kill_suid(fs, req, fd);
	if ((fi->flags & O_TRUNC) && fs->store) {
		path = fs_fd_relpath(fs, fd);
		fs_journal(fs, STORE_OP_TRUNCATE, path, NULL, 0);
		free(path);
	}
	if ((r = fh_new(fs, in, fd, fi)) < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	fs_pt_reply_begin(fh_of(fi));
	r = fuse_reply_open(req, fi);
	fs_pt_reply_end();
	if (r < 0)	/* interrupted, or the reply did not reach the kernel */
		fs_fh_free(fs, fh_of(fi));
}

void fs_ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_inode *p = fs_inode(fs, parent);
	struct fuse_entry_param e;
	char *path;
	int fd, r;

	fd = openat(p->fd, name, backing_flags(fs, fi->flags) | O_CREAT |
		    (fi->flags & O_EXCL) | O_NOFOLLOW, fs_umask_push(req, mode));
	fs_umask_pop();
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fs_own(fs, req, p->fd, name, fd);
	path = fs_child_relpath(fs, parent, name);
	fs_journal(fs, STORE_OP_CREATE, path, NULL,
		   S_IFREG | (fs_umask_mode(req, mode) & 07777));
	free(path);
	if ((r = fs_do_lookup(fs, parent, name, &e)) < 0) {
		close(fd);
		fuse_reply_err(req, -r);
		return;
	}
	if ((r = fh_new(fs, fs_inode(fs, e.ino), fd, fi)) < 0) {
		fs_forget_one(fs, e.ino, 1);
		fuse_reply_err(req, -r);
		return;
	}
	fs_pt_reply_begin(fh_of(fi));
	r = fuse_reply_create(req, &e, fi);
	fs_pt_reply_end();
	if (r < 0) {	/* the handle holds the inode: free it first */
		fs_fh_free(fs, fh_of(fi));
		fs_forget_one(fs, e.ino, 1);
	}
}

void fs_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fh_of(fi)->fd;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
}

void fs_ll_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in,
		     off_t off, struct fuse_file_info *fi)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(fuse_buf_size(in));
	ssize_t n;

	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fh_of(fi)->fd;
	out.buf[0].pos = off;
	n = fuse_buf_copy(&out, in, 0);
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	if (n > 0)
		fh_dirty(fh_of(fi));
	fuse_reply_write(req, (size_t)n);
}

void fs_ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	fs_fh_settle(FS(req), fh_of(fi));
	fuse_reply_err(req, 0);
}

void fs_ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_fh *fh = fh_of(fi);

	fs_fh_settle(FS(req), fh);
	fs_pt_watch(FS(req), fh);	/* a mapping may outlive the handle */
	fs_fh_free(FS(req), fh);
	fuse_reply_err(req, 0);
}

void fs_ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_fh *fh = fh_of(fi);
	int r = 0;

	/* Every handle, not only this one: `echo x > f; sync f` fsyncs a
	 * read-only handle while the writer's RELEASE may still be queued. */
	fs_settle_open(fs);
	if ((datasync ? fdatasync(fh->fd) : fsync(fh->fd)) < 0)
		r = errno;
	/* Everything journaled so far, this file's entries included. */
	else if (fs->store)
		r = -store_journal_wait(fs->store, store_journal_head(fs->store));
	fuse_reply_err(req, r);
}

void fs_ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		     off_t len, struct fuse_file_info *fi)
{
	if (fallocate(fh_of(fi)->fd, mode, off, len) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fh_dirty(fh_of(fi));
	fuse_reply_err(req, 0);
}

void fs_ll_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			   struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			   off_t off_out, struct fuse_file_info *fi_out,
			   size_t len, int flags)
{
	loff_t in = off_in, out = off_out;
	ssize_t n = copy_file_range(fh_of(fi_in)->fd, &in, fh_of(fi_out)->fd,
				    &out, len, (unsigned)flags);

	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	if (n > 0)
		fh_dirty(fh_of(fi_out));
	fuse_reply_write(req, (size_t)n);
}

void fs_ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		 struct fuse_file_info *fi)
{
	off_t r = lseek(fh_of(fi)->fd, off, whence);

	if (r < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, r);
}

void fs_ll_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;

	if (fstatvfs(FS(req)->root_fd, &sv) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &sv);
}

/* ---- directories ---- */

struct fs_dir {
	struct fs_hlink link;	/* first, see struct fs_hlink */
	DIR *dp;
	off_t offset;
	struct dirent *entry;	/* read but not yet sent */
};

static void dir_free(struct fs *fs, struct fs_dir *d)
{
	hlink_del(fs, &fs->dirs, &d->link);
	closedir(d->dp);
	free(d);
}

void fs_ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_dir *d = calloc(1, sizeof(*d));
	char proc[64];
	int fd, e;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Through /proc, not openat(fd, "."): resolving "." would need
	 * search permission on a directory that need only be readable. */
	fd = open(fs_proc_path(proc, fs_inode(FS(req), ino)->fd),
		  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || (d->dp = fdopendir(fd)) == NULL) {
		e = errno;
		if (fd >= 0)
			close(fd);
		free(d);
		fuse_reply_err(req, e);
		return;
	}
	fi->fh = (uintptr_t)d;
	/*
	 * The kernel may keep the listing in the directory's page cache,
	 * across opens: it drops it itself when the directory changes through
	 * the mount (its version and mtime), and fs_invalidate() drops it
	 * when sync-back changes an entry (notify_inval_inode of the parent).
	 */
	fi->cache_readdir = 1;
	fi->keep_cache = 1;
	hlink_add(FS(req), &FS(req)->dirs, &d->link);
	if (fuse_reply_open(req, fi) == -ENOENT)
		dir_free(FS(req), d);
}

static bool is_dot(const char *n)
{
	return n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'));
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct fs *fs = FS(req);
	struct fs_dir *d = (struct fs_dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size), *p = buf;
	size_t rem = size;
	int err = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	for (;;) {
		struct fuse_entry_param e = { 0 };
		size_t n;

		if (!d->entry) {
			errno = 0;
			if (!(d->entry = readdir(d->dp))) {
				err = errno;
				break;
			}
		}
		if (!plus) {
			struct stat st = { .st_ino = d->entry->d_ino,
					   .st_mode = (mode_t)d->entry->d_type << 12 };

			n = fuse_add_direntry(req, p, rem, d->entry->d_name, &st,
					      d->entry->d_off);
		} else {
			if (!is_dot(d->entry->d_name))
				err = -fs_do_lookup(fs, ino, d->entry->d_name, &e);
			if (err == ENOENT) {	/* gone meanwhile */
				err = 0;
				d->offset = d->entry->d_off;
				d->entry = NULL;
				continue;
			}
			if (err && err != EACCES)
				break;
			if (e.ino == 0) {
				/* "." and "..", or a name in a directory readable
				 * but not searchable: the name alone, as getdents
				 * gives it. */
				err = 0;
				e.attr.st_ino = d->entry->d_ino;
				e.attr.st_mode = (mode_t)d->entry->d_type << 12;
			}
			n = fuse_add_direntry_plus(req, p, rem, d->entry->d_name, &e,
						   d->entry->d_off);
			if (n > rem && e.ino)
				fs_forget_one(fs, e.ino, 1);
		}
		if (n > rem)
			break;	/* keep the entry for the next call */
		p += n;
		rem -= n;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
	if (err && rem == size)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, size - rem);
	free(buf);
}

void fs_ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

void fs_ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

void fs_ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	dir_free(FS(req), (struct fs_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

void fs_ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	int fd = dirfd(((struct fs_dir *)(uintptr_t)fi->fh)->dp), r = 0;

	if ((datasync ? fdatasync(fd) : fsync(fd)) < 0)
		r = errno;
	else if (fs->store)
		r = -store_journal_sync(fs->store);
	fuse_reply_err(req, r);
}

/*
 * POSIX_ACL: the kernel checks callers against the backing files' ACLs
 * (read through getxattr, then cached), not their mode bits alone; the
 * backing file system keeps mode and ACL in step and gives what the daemon
 * creates its directory's default ACL. DONT_MASK: a default ACL replaces
 * the caller's umask, so the kernel leaves the umask to us (fs_umask_push).
 */
void fs_ll_init(void *userdata, struct fuse_conn_info *conn)
{
	struct fs *fs = userdata;
	unsigned want = FUSE_CAP_PARALLEL_DIROPS |
			FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
			FUSE_CAP_SPLICE_READ | FUSE_CAP_AUTO_INVAL_DATA |
			FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO |
			FUSE_CAP_CACHE_SYMLINKS | FUSE_CAP_ATOMIC_O_TRUNC |
			FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;

	if (fs->writeback)
		want |= FUSE_CAP_WRITEBACK_CACHE;
	/* With passthrough no WRITE comes to us: receiving each small request
	 * through a pipe (splice) would only add system calls. */
	conn->want |= conn->capable & want;
	if (fs_pt_wanted(fs))	/* libfuse wants it by default */
		conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
	if (!fs->writeback)
		conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->max_write = FS_MAX_WRITE;
	conn->max_readahead = FS_READAHEAD_KB * 1024;
	conn->max_read = FS_MAX_READ;	/* must match the max_read mount option */
}
