/*
 * fs_ll.c — FUSE low-level operations on names and attributes: lookup,
 * forget, getattr/setattr, mknod/mkdir/symlink/link, unlink/rmdir, rename,
 * readlink, xattrs. Each journals what it changed. File and directory
 * handles are in fs_llio.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/fs_int.h"
#include "store/store.h"

static struct fs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r = fs_do_lookup(FS(req), parent, name, &e);

	if (r == -ENOENT) {	/* negative entry: cached, see FS_NEGATIVE_TIMEOUT */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = FS_NEGATIVE_TIMEOUT;
		fuse_reply_entry(req, &e);
	} else if (r < 0) {
		fuse_reply_err(req, -r);
	} else {
		fuse_reply_entry(req, &e);
	}
}

static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	fs_forget_one(FS(req), ino, n);
	fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count,
			    struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		fs_forget_one(FS(req), forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	if (fstatat(fs_inode(FS(req), ino)->fd, "", &st,
		    AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_attr(req, &st, FS_ATTR_TIMEOUT);
}

static int set_times(struct fs_inode *in, int hfd, const struct stat *a, int valid)
{
	char proc[64];
	struct timespec tv[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };

	if (valid & FUSE_SET_ATTR_ATIME_NOW)
		tv[0].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_ATIME)
		tv[0] = a->st_atim;
	if (valid & FUSE_SET_ATTR_MTIME_NOW)
		tv[1].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_MTIME)
		tv[1] = a->st_mtim;
	if (hfd >= 0)
		return futimens(hfd, tv);
	if (S_ISLNK(in->type))
		return utimensat(in->fd, "", tv, AT_EMPTY_PATH);
	return utimensat(AT_FDCWD, fs_proc_path(proc, in->fd), tv, 0);
}

/* Apply one setattr; returns the journal op or -errno. */
static int do_setattr(struct fs_inode *in, int hfd, const struct stat *a, int valid)
{
	char proc[64];

	if (valid & FUSE_SET_ATTR_MODE) {
		if ((hfd >= 0 ? fchmod(hfd, a->st_mode)
		     : chmod(fs_proc_path(proc, in->fd), a->st_mode)) < 0)
			return -errno;
		return STORE_OP_CHMOD;
	}
	if (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t u = (valid & FUSE_SET_ATTR_UID) ? a->st_uid : (uid_t)-1;
		gid_t g = (valid & FUSE_SET_ATTR_GID) ? a->st_gid : (gid_t)-1;

		if (fchownat(in->fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
			return -errno;
		return STORE_OP_CHOWN;
	}
	if (valid & FUSE_SET_ATTR_SIZE) {
		if ((hfd >= 0 ? ftruncate(hfd, a->st_size)
		     : truncate(fs_proc_path(proc, in->fd), a->st_size)) < 0)
			return -errno;
		return STORE_OP_TRUNCATE;
	}
	if (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		     FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)) {
		if (set_times(in, hfd, a, valid) < 0)
			return -errno;
		return STORE_OP_UTIMENS;
	}
	return 0;
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int valid, struct fuse_file_info *fi)
{
	struct fs *fs = FS(req);
	struct fs_inode *in = fs_inode(fs, ino);
	int hfd = fi ? ((struct fs_fh *)(uintptr_t)fi->fh)->fd : -1;
	/* Owner first: a chown carries the mode without its setuid bit, and
	 * when the chown is refused that bit must stay. */
	static const int parts[] = {
		FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID, FUSE_SET_ATTR_MODE,
		FUSE_SET_ATTR_SIZE, FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
		FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW,
	};
	char *path = NULL;

	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		int op = do_setattr(in, hfd, attr, valid & parts[i]);

		if (op < 0) {
			free(path);
			fuse_reply_err(req, -op);
			return;
		}
		if (op > 0 && fs->store) {
			if (!path)
				path = fs_fd_relpath(fs, in->fd);
			fs_journal(fs, op, path, NULL, op == STORE_OP_CHMOD ? attr->st_mode : 0);
		}
	}
	free(path);
	ll_getattr(req, ino, fi);
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlinkat(fs_inode(FS(req), ino)->fd, "", buf, sizeof(buf) - 1);

	if (n < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* Reply with the entry of name in parent (taking a lookup reference). */
static void reply_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int r = fs_do_lookup(FS(req), parent, name, &e);

	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_entry(req, &e);
}

/* After creating name in parent: own it, journal it, reply with its entry. */
static void reply_new(fuse_req_t req, fuse_ino_t parent, const char *name,
		      int op, const char *path2, uint32_t mode)
{
	struct fs *fs = FS(req);
	char *path;

	fs_own(fs, req, fs_inode(fs, parent)->fd, name, -1);
	path = fs_child_relpath(fs, parent, name);
	fs_journal(fs, op, path, path2, mode);
	free(path);
	reply_lookup(req, parent, name);
}

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		     mode_t mode, dev_t rdev)
{
	int r = mknodat(fs_inode(FS(req), parent)->fd, name,
			fs_umask_push(req, mode), rdev);

	fs_umask_pop();
	if (r < 0)
		fuse_reply_err(req, errno);
	else	/* journaled as a create; the sync engine skips non-files */
		reply_new(req, parent, name, STORE_OP_CREATE, NULL,
			  fs_umask_mode(req, mode));
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	int r = mkdirat(fs_inode(FS(req), parent)->fd, name,
			fs_umask_push(req, mode));

	fs_umask_pop();
	if (r < 0)
		fuse_reply_err(req, errno);
	else
		reply_new(req, parent, name, STORE_OP_MKDIR, NULL,
			  S_IFDIR | fs_umask_mode(req, mode));
}

static void ll_symlink(fuse_req_t req, const char *target, fuse_ino_t parent,
		       const char *name)
{
	if (symlinkat(target, fs_inode(FS(req), parent)->fd, name) < 0)
		fuse_reply_err(req, errno);
	else
		reply_new(req, parent, name, STORE_OP_SYMLINK, target, S_IFLNK | 0777);
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t parent,
		    const char *name)
{
	struct fs *fs = FS(req);
	char proc[64], *from, *to;

	if (linkat(AT_FDCWD, fs_proc_path(proc, fs_inode(fs, ino)->fd),
		   fs_inode(fs, parent)->fd, name, AT_SYMLINK_FOLLOW) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	from = fs_fd_relpath(fs, fs_inode(fs, ino)->fd);
	to = fs_child_relpath(fs, parent, name);
	fs_journal(fs, STORE_OP_LINK, from, to, 0);
	free(from);
	free(to);
	reply_lookup(req, parent, name);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name,
			 int flags, int op)
{
	struct fs *fs = FS(req);
	char *path = fs->store ? fs_child_relpath(fs, parent, name) : NULL;

	if (unlinkat(fs_inode(fs, parent)->fd, name, flags) < 0) {
		fuse_reply_err(req, errno);
	} else {
		fs_journal(fs, op, path, NULL, 0);
		fuse_reply_err(req, 0);
	}
	free(path);
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, 0, STORE_OP_UNLINK);
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, AT_REMOVEDIR, STORE_OP_RMDIR);
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		      fuse_ino_t newparent, const char *newname, unsigned int flags)
{
	struct fs *fs = FS(req);
	char *from = NULL, *to = NULL;

	if (fs->store) {
		from = fs_child_relpath(fs, parent, name);
		to = fs_child_relpath(fs, newparent, newname);
	}
	if (renameat2(fs_inode(fs, parent)->fd, name, fs_inode(fs, newparent)->fd,
		      newname, flags) < 0) {
		fuse_reply_err(req, errno);
	} else {
		fs_journal(fs, (flags & RENAME_EXCHANGE) ? STORE_OP_EXCHANGE
			   : STORE_OP_RENAME, from, to, 0);
		fuse_reply_err(req, 0);
	}
	free(from);
	free(to);
}

/* Whether the caller is in group gid (its own or a supplementary one). */
static bool caller_in_group(fuse_req_t req, gid_t gid)
{
	gid_t groups[64];
	int n = fuse_req_getgroups(req, 64, groups);

	if (fuse_req_ctx(req)->gid == gid)
		return true;
	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* Setting an access ACL drops set-group-ID when the caller is neither in
 * the file's group nor root; the backing file system would not, as the
 * root daemon is exempt (and the kernel leaves it to us with POSIX_ACL). */
static void acl_kill_sgid(struct fs *fs, fuse_req_t req, struct fs_inode *in)
{
	struct stat st;

	if (!fs->as_root || fuse_req_ctx(req)->uid == 0 ||
	    fstatat(in->fd, "", &st, AT_EMPTY_PATH) < 0 ||
	    !(st.st_mode & S_ISGID) || caller_in_group(req, st.st_gid))
		return;
	fs_mode_kill(fs, in->fd, st.st_mode, S_ISGID);
}

/* xattr syscalls have no *at() form: go through /proc/self/fd, which
 * reaches the backing inode even when the tree is mounted over. */
static void ll_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			const char *value, size_t size, int flags)
{
	struct fs *fs = FS(req);
	struct fs_inode *in = fs_inode(fs, ino);
	char proc[64], *path;

	if (S_ISLNK(in->type)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (setxattr(fs_proc_path(proc, in->fd), name, value, size, flags) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	if (strcmp(name, "system.posix_acl_access") == 0)
		acl_kill_sgid(fs, req, in);
	path = fs_fd_relpath(fs, in->fd);
	fs_journal(fs, STORE_OP_XATTR, path, NULL, 0);
	free(path);
	fuse_reply_err(req, 0);
}

static void reply_xattr(fuse_req_t req, size_t size, ssize_t n, const char *buf)
{
	if (n < 0)
		fuse_reply_err(req, errno);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void ll_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs_inode *in = fs_inode(FS(req), ino);
	char proc[64], *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (S_ISLNK(in->type)) {
		free(buf);
		fuse_reply_err(req, ENODATA);
		return;
	}
	n = getxattr(fs_proc_path(proc, in->fd), name, buf, size);
	reply_xattr(req, size, n, buf);
	free(buf);
}

static void ll_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct fs_inode *in = fs_inode(FS(req), ino);
	char proc[64], *buf = size ? malloc(size) : NULL;
	ssize_t n;

	if (S_ISLNK(in->type)) {
		free(buf);
		if (size)
			fuse_reply_buf(req, "", 0);
		else
			fuse_reply_xattr(req, 0);
		return;
	}
	n = listxattr(fs_proc_path(proc, in->fd), buf, size);
	reply_xattr(req, size, n, buf);
	free(buf);
}

static void ll_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = FS(req);
	struct fs_inode *in = fs_inode(fs, ino);
	char proc[64], *path;

	if (S_ISLNK(in->type)) {
		fuse_reply_err(req, ENODATA);
		return;
	}
	if (removexattr(fs_proc_path(proc, in->fd), name) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	path = fs_fd_relpath(fs, in->fd);
	fs_journal(fs, STORE_OP_XATTR, path, NULL, 0);
	free(path);
	fuse_reply_err(req, 0);
}

/* Defined in fs_llio.c. */
void fs_ll_init(void *userdata, struct fuse_conn_info *conn);
void fs_ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ll_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		  mode_t mode, struct fuse_file_info *fi);
void fs_ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		struct fuse_file_info *fi);
void fs_ll_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *buf,
		     off_t off, struct fuse_file_info *fi);
void fs_ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		 struct fuse_file_info *fi);
void fs_ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		   struct fuse_file_info *fi);
void fs_ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi);
void fs_ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
void fs_ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		    struct fuse_file_info *fi);
void fs_ll_statfs(fuse_req_t req, fuse_ino_t ino);
void fs_ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off,
		     off_t len, struct fuse_file_info *fi);
void fs_ll_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			   struct fuse_file_info *fi_in, fuse_ino_t ino_out,
			   off_t off_out, struct fuse_file_info *fi_out,
			   size_t len, int flags);
void fs_ll_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		 struct fuse_file_info *fi);

/* No getlk/setlk/flock: the kernel then keeps POSIX and flock locks
 * itself, which is exact for every process using the mount. No access:
 * default_permissions makes the kernel check. */
const struct fuse_lowlevel_ops fs_ll_ops = {
	.init = fs_ll_init,
	.lookup = ll_lookup,
	.forget = ll_forget,
	.forget_multi = ll_forget_multi,
	.getattr = ll_getattr,
	.setattr = ll_setattr,
	.readlink = ll_readlink,
	.mknod = ll_mknod,
	.mkdir = ll_mkdir,
	.symlink = ll_symlink,
	.link = ll_link,
	.unlink = ll_unlink,
	.rmdir = ll_rmdir,
	.rename = ll_rename,
	.setxattr = ll_setxattr,
	.getxattr = ll_getxattr,
	.listxattr = ll_listxattr,
	.removexattr = ll_removexattr,
	.open = fs_ll_open,
	.create = fs_ll_create,
	.read = fs_ll_read,
	.write_buf = fs_ll_write_buf,
	.flush = fs_ll_flush,
	.release = fs_ll_release,
	.fsync = fs_ll_fsync,
	.opendir = fs_ll_opendir,
	.readdir = fs_ll_readdir,
	.readdirplus = fs_ll_readdirplus,
	.releasedir = fs_ll_releasedir,
	.fsyncdir = fs_ll_fsyncdir,
	.statfs = fs_ll_statfs,
	.fallocate = fs_ll_fallocate,
	.copy_file_range = fs_ll_copy_file_range,
	.lseek = fs_ll_lseek,
};
