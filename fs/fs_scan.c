/*
 * fs_scan.c — the backing-tree snapshot: what the store last knew of the
 * tree, so that changes nobody journaled (a daemon killed before it
 * journaled a write, edits while unmounted) are found and journaled at the
 * next mount.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs_int.h"
#include "store/store.h"

struct fs_node {
	char *path;
	int type;		/* enum store_ftype */
	int64_t size;
	uint32_t mode;
	int64_t mtime_ns;
	int64_t ino;
	int64_t ctime_ns;
};

struct nodes {
	struct fs_node *v;
	size_t n, cap;
};

static void nodes_free(struct nodes *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		free(ns->v[i].path);
	free(ns->v);
	ns->v = NULL;
	ns->n = ns->cap = 0;
}

static int nodes_push(struct nodes *ns, const struct fs_node *nd)
{
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 256;
		struct fs_node *v = realloc(ns->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		ns->v = v;
		ns->cap = cap;
	}
	ns->v[ns->n] = *nd;
	if (!(ns->v[ns->n].path = strdup(nd->path)))
		return -ENOMEM;
	ns->n++;
	return 0;
}

static int ftype(mode_t m)
{
	return S_ISREG(m) ? STORE_FT_FILE : S_ISDIR(m) ? STORE_FT_DIR :
	       S_ISLNK(m) ? STORE_FT_SYMLINK : 0;
}

/* Depth-first walk of dirfd (at relative path `prefix`). Other node types
 * (fifos, sockets, devices) are not synced and not recorded. */
static int walk(int dirfd, const char *prefix, struct nodes *ns)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;
	char path[PATH_MAX];
	struct stat st;
	int r = 0;

	if (!d) {
		close(dirfd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		struct fs_node nd;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !ftype(st.st_mode))
			continue;	/* vanished meanwhile, or not synced */
		if (snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "",
			     de->d_name) >= (int)sizeof(path))
			continue;
		nd = (struct fs_node){ .path = path, .type = ftype(st.st_mode),
			.size = S_ISDIR(st.st_mode) ? 0 : st.st_size,
			.mode = st.st_mode,
			.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
			.ino = (int64_t)st.st_ino,
			.ctime_ns = st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec };
		if ((r = nodes_push(ns, &nd)) < 0)
			break;
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(dirfd, de->d_name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (fd >= 0 && (r = walk(fd, path, ns)) < 0)
				break;
		}
	}
	closedir(d);
	return r;
}

static int cmp_node(const void *a, const void *b)
{
	return strcmp(((const struct fs_node *)a)->path, ((const struct fs_node *)b)->path);
}

static int tree_read(int root_fd, struct nodes *ns)
{
	int fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r;

	if (fd < 0)
		return -errno;
	if ((r = walk(fd, "", ns)) < 0)
		return r;
	if (ns->n)	/* qsort(NULL, 0) is undefined */
		qsort(ns->v, ns->n, sizeof(*ns->v), cmp_node);
	return 0;
}

static int snap_collect(const struct store_snap_row *row, void *arg)
{
	struct fs_node nd = { .path = (char *)row->path, .type = row->type,
		.size = row->size, .mode = row->mode, .mtime_ns = row->mtime_ns,
		.ino = row->ino, .ctime_ns = row->ctime_ns };

	return nodes_push(arg, &nd);
}

static int snapshot_write(struct store *st, const struct nodes *ns)
{
	int r = store_snapshot_begin(st);

	for (size_t i = 0; r == 0 && i < ns->n; i++) {
		const struct fs_node *nd = &ns->v[i];
		struct store_snap_row row = { .path = nd->path, .type = nd->type,
			.size = nd->size, .mode = nd->mode, .mtime_ns = nd->mtime_ns,
			.ino = nd->ino, .ctime_ns = nd->ctime_ns };

		r = store_snapshot_put(st, &row);
	}
	if (r < 0) {
		store_tx_rollback(st);
		return r;
	}
	return store_snapshot_commit(st);
}

int fs_snapshot_save(struct store *st, int root_fd)
{
	struct nodes ns = { 0 };
	int r = tree_read(root_fd, &ns);

	if (r == 0)
		r = snapshot_write(st, &ns);
	nodes_free(&ns);
	return r;
}

struct journaler {
	struct store *st;
	int root_fd;
	int64_t count;
	int r;
};

static void jadd(struct journaler *j, int op, const char *path,
		 const char *path2, uint32_t mode)
{
	struct store_entry e = { .op = op, .path = path, .path2 = path2,
				 .mode = mode, .time_ns = store_now_ns() };
	int r = store_journal_append(j->st, &e, NULL);

	if (r < 0 && j->r == 0)
		j->r = r;
	j->count++;
}

static void journal_removed(struct journaler *j, const struct fs_node *old)
{
	jadd(j, old->type == STORE_FT_DIR ? STORE_OP_RMDIR : STORE_OP_UNLINK,
	     old->path, NULL, 0);
}

static void journal_added(struct journaler *j, const struct fs_node *nd)
{
	char target[PATH_MAX];
	ssize_t n;

	if (nd->type == STORE_FT_DIR) {
		jadd(j, STORE_OP_MKDIR, nd->path, NULL, nd->mode);
	} else if (nd->type == STORE_FT_SYMLINK) {
		n = readlinkat(j->root_fd, nd->path, target, sizeof(target) - 1);
		target[n < 0 ? 0 : n] = '\0';
		jadd(j, STORE_OP_SYMLINK, nd->path, target, nd->mode);
	} else {
		jadd(j, STORE_OP_CREATE, nd->path, NULL, nd->mode);
		jadd(j, STORE_OP_WRITE, nd->path, NULL, nd->mode);
	}
}

/* Same path in both: journal what differs. */
static void journal_changed(struct journaler *j, const struct fs_node *old,
			    const struct fs_node *nd)
{
	if (old->type != nd->type || (nd->type == STORE_FT_SYMLINK &&
	    (old->mtime_ns != nd->mtime_ns || old->ino != nd->ino))) {
		journal_removed(j, old);
		journal_added(j, nd);
		return;
	}
	/* A ctime of 0 came from a snapshot taken before schema 2. */
	if (nd->type == STORE_FT_FILE && (old->size != nd->size ||
	    old->mtime_ns != nd->mtime_ns || old->ino != nd->ino ||
	    (old->ctime_ns != 0 && old->ctime_ns != nd->ctime_ns)))
		jadd(j, STORE_OP_WRITE, nd->path, NULL, nd->mode);
	if ((old->mode & 07777) != (nd->mode & 07777))
		jadd(j, STORE_OP_CHMOD, nd->path, NULL, nd->mode);
}

/* Merge of two path-sorted lists. Removals first, deepest first, so a
 * removed directory's children go before it. */
static void journal_diff(struct journaler *j, const struct nodes *old,
			 const struct nodes *now)
{
	size_t i, k;

	for (i = old->n; i-- > 0;) {
		const struct fs_node key = { .path = old->v[i].path };

		if (!bsearch(&key, now->v, now->n, sizeof(*now->v), cmp_node))
			journal_removed(j, &old->v[i]);
	}
	for (i = 0, k = 0; k < now->n; k++) {
		int c = 1;

		while (i < old->n && (c = strcmp(old->v[i].path, now->v[k].path)) < 0)
			i++;
		if (i < old->n && c == 0)
			journal_changed(j, &old->v[i], &now->v[k]);
		else
			journal_added(j, &now->v[k]);
	}
}

int fs_rescan(struct store *st, int root_fd, int64_t *changes)
{
	struct nodes old = { 0 }, now = { 0 };
	struct journaler j = { .st = st, .root_fd = root_fd };
	int64_t have = 0;
	int r;

	if ((r = store_snapshot_count(st, &have)) < 0 ||
	    (r = tree_read(root_fd, &now)) < 0)
		goto out;
	if (have == 0) {
		jadd(&j, STORE_OP_RESCAN, "", NULL, 0);
	} else {
		if ((r = store_snapshot_foreach(st, snap_collect, &old)) < 0)
			goto out;
		qsort(old.v, old.n, sizeof(*old.v), cmp_node);
		journal_diff(&j, &old, &now);
	}
	if ((r = j.r) < 0 || (r = store_journal_sync(st)) < 0)
		goto out;
	r = snapshot_write(st, &now);
out:
	if (changes)
		*changes = j.count;
	nodes_free(&old);
	nodes_free(&now);
	return r;
}
