/*
 * fs_int.h — private to the fs/ overlay: the mount state shared by the
 * FUSE operations (fs_ops.c, fs_io.c) and the lifecycle (fs_mount.c).
 */
#ifndef HERMES_FS_INT_H
#define HERMES_FS_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs/fs.h"

struct fuse;
struct fuse_operations;

struct fs {
	int root_fd;			/* backing directory */
	struct store *store;		/* NULL: journaling off */
	struct fuse *fuse;
	char *mountpoint;
	bool mounted;
	bool as_root;			/* chown new nodes to the caller */
	volatile sig_atomic_t stop;	/* fs_stop() was called */
	volatile sig_atomic_t running;	/* inside fs_run() */
	pthread_t run_thread;
};

/* An open file: the backing fd and whether it was written since its last
 * WRITE entry (coalescing: one entry per flush/release/fsync). */
struct fs_fh {
	int fd;
	int dirty;			/* atomic */
};

extern const struct fuse_operations fs_operations;

/* The mount of the current request. */
struct fs *fs_self(void);

/* "/a/b" (FUSE path) -> "a/b"; "/" -> "." for *at() calls. */
const char *fs_rel(const char *path);

/* Append a journal entry for a FUSE path ("/a/b" -> "a/b"); path2 may be
 * NULL. Returns the seq (0 when journaling is off or path is NULL). */
int64_t fs_journal(struct fs *fs, int op, const char *path,
		   const char *path2, uint32_t mode);

/* Journal a WRITE for fh if it was written since its last entry. */
int64_t fs_fh_settle(struct fs *fs, struct fs_fh *fh, const char *path);

/* When running as root: give a node just created at rel (or fd >= 0) to
 * the calling process's uid, and gid unless the parent directory is
 * setgid. */
void fs_own(struct fs *fs, const char *rel, int fd);

/* Tree walk shared by rescan and snapshot save (fs_scan.c). */
struct fs_node {
	char *path;
	int type;		/* enum store_ftype */
	int64_t size;
	uint32_t mode;
	int64_t mtime_ns;
	int64_t ino;
};

#endif
