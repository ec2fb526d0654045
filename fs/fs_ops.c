/*
 * fs_ops.c — FUSE operations on names and metadata: lookups, directories,
 * links, renames, attributes, xattrs. Each works relative to the backing
 * directory fd and journals what it changed. File I/O is in fs_io.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "fs/fs_int.h"
#include "store/store.h"

struct fs *fs_self(void)
{
	return fuse_get_context()->private_data;
}

const char *fs_rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

int64_t fs_journal(struct fs *fs, int op, const char *path,
		   const char *path2, uint32_t mode)
{
	struct store_entry e = { 0 };
	int64_t seq = 0;

	if (!fs->store || !path)
		return 0;
	e.op = op;
	e.path = path + strspn(path, "/");
	e.path2 = path2 && op != STORE_OP_SYMLINK ? path2 + strspn(path2, "/") : path2;
	e.mode = mode;
	e.time_ns = store_now_ns();
	if (store_journal_append(fs->store, &e, &seq) < 0)
		return 0;
	return seq;
}

void fs_own(struct fs *fs, const char *rel, int fd)
{
	struct fuse_context *ctx = fuse_get_context();
	char parent[PATH_MAX];
	struct stat st;
	gid_t gid = ctx->gid;
	const char *slash;

	if (!fs->as_root || (ctx->uid == 0 && ctx->gid == 0))
		return;
	slash = strrchr(rel, '/');
	if (slash && (size_t)(slash - rel) < sizeof(parent)) {
		memcpy(parent, rel, slash - rel);
		parent[slash - rel] = '\0';
	} else {
		strcpy(parent, ".");
	}
	/* A setgid parent already gave the node its group (kernel rule). */
	if (fstatat(fs->root_fd, parent, &st, 0) == 0 && (st.st_mode & S_ISGID))
		gid = (gid_t)-1;
	if (fd >= 0)
		(void)!fchown(fd, ctx->uid, gid);
	else
		(void)!fchownat(fs->root_fd, rel, ctx->uid, gid, AT_SYMLINK_NOFOLLOW);
}

static int fs_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	int r;

	if (fi)
		r = fstat(((struct fs_fh *)(uintptr_t)fi->fh)->fd, st);
	else if (!path)
		return -ENOENT;
	else
		r = fstatat(fs->root_fd, fs_rel(path), st, AT_SYMLINK_NOFOLLOW);
	return r < 0 ? -errno : 0;
}

static int fs_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n = readlinkat(fs_self()->root_fd, fs_rel(path), buf, size - 1);

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

static int fs_mknod(const char *path, mode_t mode, dev_t rdev)
{
	struct fs *fs = fs_self();

	if (mknodat(fs->root_fd, fs_rel(path), mode, rdev) < 0)
		return -errno;
	fs_own(fs, fs_rel(path), -1);
	/* Only regular files are synced; other nodes are journaled as a
	 * create so the sync engine can decide to skip them. */
	fs_journal(fs, STORE_OP_CREATE, path, NULL, mode);
	return 0;
}

static int fs_mkdir(const char *path, mode_t mode)
{
	struct fs *fs = fs_self();

	if (mkdirat(fs->root_fd, fs_rel(path), mode) < 0)
		return -errno;
	fs_own(fs, fs_rel(path), -1);
	fs_journal(fs, STORE_OP_MKDIR, path, NULL, S_IFDIR | mode);
	return 0;
}

static int fs_unlink(const char *path)
{
	struct fs *fs = fs_self();

	if (unlinkat(fs->root_fd, fs_rel(path), 0) < 0)
		return -errno;
	fs_journal(fs, STORE_OP_UNLINK, path, NULL, 0);
	return 0;
}

static int fs_rmdir(const char *path)
{
	struct fs *fs = fs_self();

	if (unlinkat(fs->root_fd, fs_rel(path), AT_REMOVEDIR) < 0)
		return -errno;
	fs_journal(fs, STORE_OP_RMDIR, path, NULL, 0);
	return 0;
}

static int fs_symlink(const char *target, const char *path)
{
	struct fs *fs = fs_self();

	if (symlinkat(target, fs->root_fd, fs_rel(path)) < 0)
		return -errno;
	fs_own(fs, fs_rel(path), -1);
	fs_journal(fs, STORE_OP_SYMLINK, path, target, S_IFLNK | 0777);
	return 0;
}

static int fs_rename(const char *from, const char *to, unsigned int flags)
{
	struct fs *fs = fs_self();

	if (renameat2(fs->root_fd, fs_rel(from), fs->root_fd, fs_rel(to), flags) < 0)
		return -errno;
	fs_journal(fs, (flags & RENAME_EXCHANGE) ? STORE_OP_EXCHANGE : STORE_OP_RENAME,
		   from, to, 0);
	return 0;
}

static int fs_link(const char *from, const char *to)
{
	struct fs *fs = fs_self();

	if (linkat(fs->root_fd, fs_rel(from), fs->root_fd, fs_rel(to), 0) < 0)
		return -errno;
	fs_journal(fs, STORE_OP_LINK, from, to, 0);
	return 0;
}

static int fs_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	int r;

	if (fi)
		r = fchmod(((struct fs_fh *)(uintptr_t)fi->fh)->fd, mode);
	else
		r = fchmodat(fs->root_fd, fs_rel(path), mode, 0);
	if (r < 0)
		return -errno;
	fs_journal(fs, STORE_OP_CHMOD, path, NULL, mode);
	return 0;
}

static int fs_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	int r;

	if (fi)
		r = fchown(((struct fs_fh *)(uintptr_t)fi->fh)->fd, uid, gid);
	else
		r = fchownat(fs->root_fd, fs_rel(path), uid, gid, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return -errno;
	fs_journal(fs, STORE_OP_CHOWN, path, NULL, 0);
	return 0;
}

static int fs_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	int r;

	if (fi)
		r = futimens(((struct fs_fh *)(uintptr_t)fi->fh)->fd, tv);
	else
		r = utimensat(fs->root_fd, fs_rel(path), tv, AT_SYMLINK_NOFOLLOW);
	if (r < 0)
		return -errno;
	fs_journal(fs, STORE_OP_UTIMENS, path, NULL, 0);
	return 0;
}

static int fs_statfs(const char *path, struct statvfs *sv)
{
	return fstatvfs(fs_self()->root_fd, sv) < 0 ? -errno : 0;
}

/* xattr calls have no *at() form: go through the backing fd's magic link,
 * which reaches the backing tree even when it is mounted over. */
static int xpath(char *buf, size_t len, const char *path)
{
	int n = snprintf(buf, len, "/proc/self/fd/%d/%s", fs_self()->root_fd,
			 fs_rel(path));

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int fs_setxattr(const char *path, const char *name, const char *value,
		       size_t size, int flags)
{
	char p[PATH_MAX + 64];
	int r = xpath(p, sizeof(p), path);

	if (r < 0)
		return r;
	if (lsetxattr(p, name, value, size, flags) < 0)
		return -errno;
	fs_journal(fs_self(), STORE_OP_XATTR, path, NULL, 0);
	return 0;
}

static int fs_getxattr(const char *path, const char *name, char *value, size_t size)
{
	char p[PATH_MAX + 64];
	ssize_t n;
	int r = xpath(p, sizeof(p), path);

	if (r < 0)
		return r;
	n = lgetxattr(p, name, value, size);
	return n < 0 ? -errno : (int)n;
}

static int fs_listxattr(const char *path, char *list, size_t size)
{
	char p[PATH_MAX + 64];
	ssize_t n;
	int r = xpath(p, sizeof(p), path);

	if (r < 0)
		return r;
	n = llistxattr(p, list, size);
	return n < 0 ? -errno : (int)n;
}

static int fs_removexattr(const char *path, const char *name)
{
	char p[PATH_MAX + 64];
	int r = xpath(p, sizeof(p), path);

	if (r < 0)
		return r;
	if (lremovexattr(p, name) < 0)
		return -errno;
	fs_journal(fs_self(), STORE_OP_XATTR, path, NULL, 0);
	return 0;
}

static int fs_opendir(const char *path, struct fuse_file_info *fi)
{
	int fd = openat(fs_self()->root_fd, fs_rel(path),
			O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return -errno;
	if ((d = fdopendir(fd)) == NULL) {
		int e = errno;

		close(fd);
		return -e;
	}
	fi->fh = (uintptr_t)d;
	return 0;
}

static int fs_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	DIR *d = (DIR *)(uintptr_t)fi->fh;
	struct dirent *de;
	struct stat st;
	bool plus = flags & FUSE_READDIR_PLUS;

	seekdir(d, off);
	while ((errno = 0, de = readdir(d)) != NULL) {
		enum fuse_fill_dir_flags ff = 0;

		memset(&st, 0, sizeof(st));
		if (plus && strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
			ff = FUSE_FILL_DIR_PLUS;
		} else {
			st.st_ino = de->d_ino;
			st.st_mode = (mode_t)de->d_type << 12;
		}
		if (fill(buf, de->d_name, &st, telldir(d), ff))
			break;
	}
	return de == NULL && errno ? -errno : 0;
}

static int fs_releasedir(const char *path, struct fuse_file_info *fi)
{
	closedir((DIR *)(uintptr_t)fi->fh);
	return 0;
}

static int fs_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct fs *fs = fs_self();
	int fd = dirfd((DIR *)(uintptr_t)fi->fh);

	if ((datasync ? fdatasync(fd) : fsync(fd)) < 0)
		return -errno;
	return fs->store ? store_journal_sync(fs->store) : 0;
}

/* Defined in fs_io.c. */
int fs_io_open(const char *path, struct fuse_file_info *fi);
int fs_io_create(const char *path, mode_t mode, struct fuse_file_info *fi);
int fs_io_read_buf(const char *path, struct fuse_bufvec **bufp, size_t size,
		   off_t off, struct fuse_file_info *fi);
int fs_io_write_buf(const char *path, struct fuse_bufvec *buf, off_t off,
		    struct fuse_file_info *fi);
int fs_io_flush(const char *path, struct fuse_file_info *fi);
int fs_io_release(const char *path, struct fuse_file_info *fi);
int fs_io_fsync(const char *path, int datasync, struct fuse_file_info *fi);
int fs_io_truncate(const char *path, off_t size, struct fuse_file_info *fi);
int fs_io_fallocate(const char *path, int mode, off_t off, off_t len,
		    struct fuse_file_info *fi);
ssize_t fs_io_copy_file_range(const char *pin, struct fuse_file_info *fin,
			      off_t oin, const char *pout,
			      struct fuse_file_info *fout, off_t oout,
			      size_t len, int flags);
off_t fs_io_lseek(const char *path, off_t off, int whence,
		  struct fuse_file_info *fi);
void *fs_io_init(struct fuse_conn_info *conn, struct fuse_config *cfg);

/* No lock/flock operations: the kernel then keeps POSIX and flock locks
 * itself, which is exact for every process using the mount. */
const struct fuse_operations fs_operations = {
	.init = fs_io_init,
	.getattr = fs_getattr,
	.readlink = fs_readlink,
	.mknod = fs_mknod,
	.mkdir = fs_mkdir,
	.unlink = fs_unlink,
	.rmdir = fs_rmdir,
	.symlink = fs_symlink,
	.rename = fs_rename,
	.link = fs_link,
	.chmod = fs_chmod,
	.chown = fs_chown,
	.truncate = fs_io_truncate,
	.open = fs_io_open,
	.read_buf = fs_io_read_buf,
	.write_buf = fs_io_write_buf,
	.statfs = fs_statfs,
	.flush = fs_io_flush,
	.release = fs_io_release,
	.fsync = fs_io_fsync,
	.setxattr = fs_setxattr,
	.getxattr = fs_getxattr,
	.listxattr = fs_listxattr,
	.removexattr = fs_removexattr,
	.opendir = fs_opendir,
	.readdir = fs_readdir,
	.releasedir = fs_releasedir,
	.fsyncdir = fs_fsyncdir,
	.create = fs_io_create,
	.utimens = fs_utimens,
	.fallocate = fs_io_fallocate,
	.copy_file_range = fs_io_copy_file_range,
	.lseek = fs_io_lseek,
};
