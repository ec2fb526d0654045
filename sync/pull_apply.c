/*
 * pull_apply.c — the host side of a pull: each decided item applied
 * atomically (temp file in the target directory, fsync, renameat), never
 * following a symlink, journaled and reported. Conflict copies keep the
 * host version beside the path under NAME.conflict-<sandbox>-<UTC stamp>.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/fault_int.h"
#include "sync/pull_int.h"

static void journal(struct pull_ctx *c, int op, const char *path,
		    const char *path2, uint32_t mode, int64_t origin)
{
	struct store_entry e = {
		.op = op, .path = path, .path2 = path2, .mode = mode,
		.time_ns = store_now_ns(), .origin = origin,
	};

	if (store_journal_append(c->st, &e, NULL) < 0)
		pull_report_add_path(&c->rep, "warning: could not journal ", path, "\n");
}

static void invalidate(struct pull_ctx *c, const char *path)
{
	if (c->cfg->invalidate)
		c->cfg->invalidate(path, c->cfg->invalidate_arg);
}

static void made_dir(const char *rel, void *arg)
{
	struct pull_ctx *c = arg;

	journal(c, STORE_OP_MKDIR, rel, NULL, S_IFDIR | 0755, c->sb);
	invalidate(c, rel);
}

static void fail(struct pull_ctx *c, const char *path, const char *what, int err)
{
	char line[200];

	snprintf(line, sizeof(line), ": %s: %s (not applied)\n", what, strerror(-err));
	pull_report_add_path(&c->rep, "error: ", path, line);
}

/* Owner for a new host file: the replaced file's, else the directory's. */
static void owner_of(int dfd, const char *base, uid_t *uid, gid_t *gid)
{
	struct stat st;

	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	    fstat(dfd, &st) == 0) {
		*uid = st.st_uid;
		*gid = st.st_gid;
	} else {
		*uid = (uid_t)-1;
		*gid = (gid_t)-1;
	}
}

static int copy_range(int from, int64_t off, int64_t size, int to)
{
	char buf[64 * 1024];
	loff_t in = off;
	int64_t left = size;

	while (left > 0) {
		ssize_t n = copy_file_range(from, &in, to, NULL, (size_t)left, 0);

		if (n > 0) {
			left -= n;
			continue;
		}
		if (n == 0)
			return -EIO;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS &&
		    errno != EOPNOTSUPP)
			return -errno;
		/* No in-kernel copy between these files: plain reads. */
		n = pread(from, buf, left < (int64_t)sizeof(buf) ? (size_t)left : sizeof(buf), in);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		if (write(to, buf, (size_t)n) != n)
			return -EIO;
		in += n;
		left -= n;
	}
	return 0;
}

static void tmp_name(struct pull_ctx *c, char *buf, size_t n)
{
	snprintf(buf, n, ".hermesfs-pull-%d-%u", (int)getpid(), ++c->tmpseq);
}

/* Content, owner, mode and mtime of the remote file into fd. */
static int fill_temp(struct pull_ctx *c, const struct pull_item *it, int fd,
		     uid_t uid, gid_t gid)
{
	const struct pull_fetch *f = it->fetch;
	int64_t ns = it->entry->mtime_ns;
	struct timespec ts[2] = {
		{ ns / 1000000000, ns % 1000000000 },
		{ ns / 1000000000, ns % 1000000000 },
	};
	int r = copy_range(c->stage_fd, f->off, f->size, fd);

	if (r == 0 && fchown(fd, uid, gid) < 0 && errno != EPERM)
		r = -errno;
	if (r == 0 && fchmod(fd, it->entry->mode & PULL_MODE_MASK) < 0)
		r = -errno;
	if (r == 0 && futimens(fd, ts) < 0)
		r = -errno;
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	return r;
}

/* Give an O_TMPFILE its temp name (after it is complete). */
static int link_tmpfile(int fd, int dfd, const char *tmp)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, dfd, tmp, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	return linkat(fd, "", dfd, tmp, AT_EMPTY_PATH) == 0 ? 0 : -errno;
}

/* Whether dfd/base exists (as anything). */
static bool name_taken(int dfd, const char *base)
{
	struct stat st;

	return fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

/*
 * Remote file content at dfd/base. The content goes into an unnamed
 * O_TMPFILE that is only named once complete and synced: straight at base
 * when nothing is there (no temp name ever exists), else at a temp name
 * renamed over base. Without O_TMPFILE: a named temp, removed on failure.
 * *tmp is set to the name to rename from, "" when base was linked.
 */
static int write_file(struct pull_ctx *c, const struct pull_item *it, int dfd,
		      const char *base, char *tmp, size_t tmplen)
{
	uid_t uid;
	gid_t gid;
	int fd, r;

	owner_of(dfd, base, &uid, &gid);
	tmp_name(c, tmp, tmplen);
	fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0) {
		r = fill_temp(c, it, fd, uid, gid);
		if (r == 0 && !name_taken(dfd, base)) {
			r = link_tmpfile(fd, dfd, base);
			if (r == 0)
				tmp[0] = '\0';
			else if (r == -EEXIST)
				r = -EAGAIN;	/* created on the host meanwhile */
		} else if (r == 0) {
			r = link_tmpfile(fd, dfd, tmp);
		}
		close(fd);
		if (r != -EPERM && r != -ENOENT && r != -EOPNOTSUPP)
			return r;	/* -EAGAIN too: nothing linked */
	}
	fd = openat(dfd, tmp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	r = fill_temp(c, it, fd, uid, gid);
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0)
		unlinkat(dfd, tmp, 0);
	return r;
}

/* The remote version (file or symlink) put at dfd/base by one rename or
 * one link, so readers see the old version or the new one, never a mix. */
static int place_atomic(struct pull_ctx *c, const struct pull_item *it,
			int dfd, const char *base)
{
	char tmp[64];
	uid_t uid;
	gid_t gid;
	int r;

	if (it->remote.type == STORE_FT_FILE) {
		r = write_file(c, it, dfd, base, tmp, sizeof(tmp));
		if (r < 0 || !tmp[0])
			goto out;
	} else {
		owner_of(dfd, base, &uid, &gid);
		tmp_name(c, tmp, sizeof(tmp));
		if (symlinkat(it->entry->target, dfd, tmp) < 0)
			return -errno;
		fchownat(dfd, tmp, uid, gid, AT_SYMLINK_NOFOLLOW);
	}
	/* The host was hashed before the remote file was written out: a host
	 * write since then must not be replaced (it is pulled next time, as a
	 * conflict). Only the rename itself is left unguarded. A conflict
	 * needs no check: the host copy is a hard link made before, so later
	 * writes land in the copy. */
	if (it->action == PULL_APPLY && it->host.type != STORE_FT_DIR &&
	    pull_host_changed(dfd, base, &it->host)) {
		unlinkat(dfd, tmp, 0);
		return -EAGAIN;
	}
	if (renameat(dfd, tmp, dfd, base) < 0) {
		r = -errno;
		unlinkat(dfd, tmp, 0);
		return r;
	}
	r = 0;
out:
	/* The directory entries are made durable by one syncfs() before the
	 * ledger commits (pull.c), not one fsync per file. */
	return r;
}

/* True if this directory was seen before in this pull; records it. Kept
 * sorted: pulls may touch many directories. */
static bool seen_dir(struct pull_ctx *c, uint64_t dev, uint64_t ino)
{
	size_t lo = 0, hi = c->nswept;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const struct pull_dirid *m = &c->swept[mid];

		if (m->dev == dev && m->ino == ino)
			return true;
		if (m->dev < dev || (m->dev == dev && m->ino < ino))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (c->nswept == c->capswept) {
		size_t cap = c->capswept ? 2 * c->capswept : 16;
		struct pull_dirid *v = realloc(c->swept, cap * sizeof(*v));

		if (!v)
			return true;	/* no memory: skip the sweep */
		c->swept = v;
		c->capswept = cap;
	}
	memmove(&c->swept[lo + 1], &c->swept[lo], (c->nswept - lo) * sizeof(*c->swept));
	c->swept[lo] = (struct pull_dirid){ dev, ino };
	c->nswept++;
	return false;
}

/*
 * Temp names left by a pull that was killed (kill -9, power loss) between
 * naming its temp and renaming it: removed the first time a later pull
 * writes in that directory. Only names of processes that are gone.
 */
static void sweep_dir(struct pull_ctx *c, int dfd)
{
	static const char pfx[] = ".hermesfs-pull-";
	struct dirent *d;
	struct stat st;
	DIR *dir;
	int fd;

	if (fstat(dfd, &st) < 0 || seen_dir(c, st.st_dev, st.st_ino))
		return;
	fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((d = readdir(dir))) {
		long pid;
		char *end;

		if (strncmp(d->d_name, pfx, sizeof(pfx) - 1) != 0)
			continue;
		pid = strtol(d->d_name + sizeof(pfx) - 1, &end, 10);
		if (*end != '-' || pid <= 0 || pid == (long)getpid() ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (unlinkat(dfd, d->d_name, 0) == 0)
			pull_report_add_path(&c->rep, "removed a stale temp file ",
					     d->d_name, " (an earlier pull was killed)\n");
	}
	closedir(dir);
}

static int place_dir(int dfd, const char *base, uint32_t mode)
{
	struct stat st;

	if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
		return fchmodat(dfd, base, mode & PULL_MODE_MASK, 0) < 0 ? -errno : 0;
	if (mkdirat(dfd, base, mode & PULL_MODE_MASK) < 0)
		return -errno;
	/* mkdir applies the umask: set the mode asked for. */
	fchmodat(dfd, base, mode & PULL_MODE_MASK, 0);
	return 0;
}

/* Remove whatever the host has at dfd/base (a directory only if empty). */
static int remove_host(int dfd, const char *base, int type)
{
	if (unlinkat(dfd, base, type == STORE_FT_DIR ? AT_REMOVEDIR : 0) < 0)
		return errno == ENOENT ? 0 : -errno;
	return 0;
}

/* Put the remote version at the path, whatever the host has there now
 * (the caller has kept the host version if it mattered). */
static int place_remote(struct pull_ctx *c, struct pull_item *it, int dfd,
			const char *base)
{
	int r;

	if (it->host.present && it->host.type != it->remote.type &&
	    (it->host.type == STORE_FT_DIR || it->remote.type == STORE_FT_DIR)) {
		r = remove_host(dfd, base, it->host.type);
		if (r < 0)
			return r;
		journal(c, it->host.type == STORE_FT_DIR ? STORE_OP_RMDIR : STORE_OP_UNLINK,
			it->path, NULL, 0, c->sb);
	}
	if (it->remote.type == STORE_FT_DIR) {
		r = place_dir(dfd, base, it->entry->mode);
		if (r == 0)
			journal(c, it->host.present ? STORE_OP_CHMOD : STORE_OP_MKDIR,
				it->path, NULL, it->entry->mode & (S_IFMT | PULL_MODE_MASK), c->sb);
		return r;
	}
	r = place_atomic(c, it, dfd, base);
	if (r < 0)
		return r;
	if (it->remote.type == STORE_FT_SYMLINK)
		journal(c, STORE_OP_SYMLINK, it->path, it->entry->target,
			S_IFLNK | 0777, c->sb);
	else
		journal(c, it->host.present ? STORE_OP_WRITE : STORE_OP_CREATE,
			it->path, NULL, it->entry->mode & (S_IFMT | PULL_MODE_MASK), c->sb);
	return 0;
}

/* A free NAME.conflict-<sandbox>-<stamp>[-N] beside base. */
static int copy_name(struct pull_ctx *c, int dfd, const char *base,
		     char *out, size_t outlen)
{
	char suffix[NAME_MAX + 1];
	struct stat st;

	for (int i = 0; i < 1000; i++) {
		size_t sl, bl = strlen(base);

		if (i)
			snprintf(suffix, sizeof(suffix), ".conflict-%.64s-%s-%d",
				 c->sbname, c->stamp, i);
		else
			snprintf(suffix, sizeof(suffix), ".conflict-%.64s-%s",
				 c->sbname, c->stamp);
		sl = strlen(suffix);
		if (bl + sl > NAME_MAX)
			bl = NAME_MAX - sl;
		if (bl + sl >= outlen)
			return -ENAMETOOLONG;
		memcpy(out, base, bl);
		memcpy(out + bl, suffix, sl + 1);
		if (fstatat(dfd, out, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
			return 0;
	}
	return -EEXIST;
}

static char *sibling(const char *path, const char *base, const char *name)
{
	char *s = NULL;

	if (asprintf(&s, "%.*s%s", (int)(base - path), path, name) < 0)
		return NULL;
	return s;
}

/* Keep the host version at a conflict copy (a hard link: the path never
 * disappears for files and symlinks; directories are moved). */
static int keep_host_copy(struct pull_ctx *c, struct pull_item *it, int dfd,
			  const char *base, char **copy_rel)
{
	char name[NAME_MAX + 1];
	int r = copy_name(c, dfd, base, name, sizeof(name));

	if (r < 0)
		return r;
	if (it->host.type == STORE_FT_DIR) {
		if (renameat2(dfd, base, dfd, name, RENAME_NOREPLACE) < 0)
			return -errno;
	} else if (linkat(dfd, base, dfd, name, 0) < 0) {
		return -errno;
	}
	*copy_rel = sibling(it->path, base, name);
	if (!*copy_rel)
		return -ENOMEM;
	if (it->host.type == STORE_FT_DIR)
		journal(c, STORE_OP_RENAME, it->path, *copy_rel, 0, 0);
	else
		journal(c, it->host.type == STORE_FT_SYMLINK ? STORE_OP_LINK :
			STORE_OP_CREATE, it->host.type == STORE_FT_SYMLINK ?
			it->path : *copy_rel, it->host.type == STORE_FT_SYMLINK ?
			*copy_rel : NULL, it->host.mode, 0);
	invalidate(c, *copy_rel);
	return 0;
}

static void record_conflict(struct pull_ctx *c, const char *path,
			    const char *copy, const char *what)
{
	char line[256];

	store_conflict_add(c->st, c->sb, path, copy, NULL);
	c->stats->conflicts++;
	snprintf(line, sizeof(line), ": %s kept as ", what);
	pull_report_add_path(&c->rep, "conflict: ", path, line);
	pull_report_add_path(&c->rep, "", copy, "\n");
}

static int do_conflict(struct pull_ctx *c, struct pull_item *it, int dfd,
		       const char *base)
{
	char *copy = NULL;
	int r = keep_host_copy(c, it, dfd, base, &copy);

	if (r < 0)
		return r;
	if (it->host.type == STORE_FT_DIR)
		it->host.present = false;	/* moved away */
	r = place_remote(c, it, dfd, base);
	if (r == 0)
		record_conflict(c, it->path, copy,
				"changed on both sides; sandbox version applied, host version");
	free(copy);
	return r;
}

/* Host deleted it, the sandbox changed it: the sandbox version is saved
 * as a conflict copy, the host deletion stands. */
static int do_restore_copy(struct pull_ctx *c, struct pull_item *it, int dfd,
			   const char *base)
{
	char name[NAME_MAX + 1], *copy;
	int r = copy_name(c, dfd, base, name, sizeof(name));

	if (r < 0)
		return r;
	copy = sibling(it->path, base, name);
	if (!copy)
		return -ENOMEM;
	if (it->remote.type == STORE_FT_DIR) {
		r = place_dir(dfd, name, it->entry->mode);
	} else {
		struct pull_item tmp = *it;

		tmp.host.present = false;
		r = place_atomic(c, &tmp, dfd, name);
	}
	if (r == 0) {
		journal(c, it->remote.type == STORE_FT_DIR ? STORE_OP_MKDIR :
			it->remote.type == STORE_FT_SYMLINK ? STORE_OP_SYMLINK :
			STORE_OP_CREATE, copy,
			it->remote.type == STORE_FT_SYMLINK ? it->entry->target : NULL,
			it->entry->mode & (S_IFMT | PULL_MODE_MASK), 0);
		invalidate(c, copy);
		record_conflict(c, it->path, copy,
				"deleted on host, changed on sandbox; sandbox version");
	}
	free(copy);
	return r;
}

static int do_delete(struct pull_ctx *c, struct pull_item *it, int dfd,
		     const char *base)
{
	int r;

	if (it->host.type != STORE_FT_DIR && pull_host_changed(dfd, base, &it->host))
		return -EAGAIN;	/* written since it was found unchanged */
	r = remove_host(dfd, base, it->host.type);

	if (r == -ENOTEMPTY || r == -EEXIST) {
		/* Something new (host-only) is inside: keep it. */
		pull_report_add_path(&c->rep, "kept ", it->path,
				     ": deleted on sandbox but not empty on host\n");
		c->stats->kept++;
		return 0;
	}
	if (r < 0)
		return r;
	journal(c, it->host.type == STORE_FT_DIR ? STORE_OP_RMDIR : STORE_OP_UNLINK,
		it->path, NULL, 0, c->sb);
	c->stats->deleted++;
	return 0;
}

static int apply_at(struct pull_ctx *c, struct pull_item *it, int dfd,
		    const char *base)
{
	int r;

	switch (it->action) {
	case PULL_APPLY:
		r = place_remote(c, it, dfd, base);
		if (r == 0)
			c->stats->applied++;
		return r;
	case PULL_CONFLICT:
		r = do_conflict(c, it, dfd, base);
		if (r == 0)
			c->stats->applied++;
		return r;
	case PULL_RESTORE_COPY:
		return do_restore_copy(c, it, dfd, base);
	case PULL_DELETE:
		return do_delete(c, it, dfd, base);
	default:
		return 0;
	}
}

static bool needs_host(enum pull_action a)
{
	return a == PULL_APPLY || a == PULL_CONFLICT ||
	       a == PULL_RESTORE_COPY || a == PULL_DELETE;
}

int pull_apply_item(struct pull_ctx *c, struct pull_item *it)
{
	const char *base;
	int dfd, r = 0;

	if (it->action == PULL_HOST_WINS || it->action == PULL_KEEP_HOST) {
		/* Re-push the host version so the sandbox converges to it. */
		if (it->host.type == STORE_FT_SYMLINK) {
			/* The target is not at hand: have the parent compared whole. */
			const char *sl = strrchr(it->path, '/');
			char *dir = strndup(it->path, sl ? (size_t)(sl - it->path) : 0);

			if (dir)
				journal(c, STORE_OP_RESCAN, dir, NULL, 0, 0);
			free(dir);
		} else {
			journal(c, it->host.type == STORE_FT_DIR ? STORE_OP_CHMOD :
				STORE_OP_WRITE, it->path, NULL, it->host.mode, 0);
		}
		c->stats->kept++;
		pull_report_add_path(&c->rep, "kept host version of ", it->path,
				     it->action == PULL_KEEP_HOST ?
				     ": deleted on sandbox, changed on host\n" :
				     ": changed on both sides (host-wins)\n");
	}
	if (needs_host(it->action)) {
		r = pull_host_parent(c->root_fd, it->path, it->action != PULL_DELETE,
				     made_dir, c, &dfd, &base);
		if (r == -ENOENT && it->action == PULL_DELETE)
			r = 0;	/* already gone with its parent */
		else if (r == 0) {
			if (it->action != PULL_DELETE)
				sweep_dir(c, dfd);
			r = apply_at(c, it, dfd, base);
			close(dfd);
		}
		if (r == -EAGAIN) {
			/* Not ok: the ledger keeps its row and the next pull
			 * decides again with this host version. */
			pull_report_add_path(&c->rep, "skipped ", it->path,
					     ": changed on the host during the pull"
					     " (pulled next time)\n");
			c->stats->kept++;
			return 0;
		}
		if (r < 0) {
			fail(c, it->path, pull_action_name(it->action), r);
			return r;
		}
		if (it->entry && (it->entry->mode & 06000) && it->action != PULL_DELETE)
			pull_report_add_path(&c->rep, "stripped setuid/setgid bits of ",
					     it->path, "\n");
		invalidate(c, it->path);
		sync_crash_point("pull-apply");	/* tests: host changed, ledger not */
	}
	it->ok = true;
	return 0;
}
