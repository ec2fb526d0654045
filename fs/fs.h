/*
 * fs.h — the journaled FUSE overlay (libfuse3, high-level API, multithreaded).
 *
 * The mount is a passthrough of a backing directory that may be the
 * mountpoint itself: the backing directory is opened before mounting and
 * every operation works relative to that fd, never through the mountpoint.
 * Each mutation appends an entry to the store's journal (paths relative to
 * the mount root, no leading '/'). Writes are coalesced: one WRITE entry per
 * flush/release/fsync of a handle that was written, and fsync returns only
 * once that entry is durable.
 *
 * Permission checks are the kernel's (default_permissions). When the daemon
 * runs as root the mount is allow_other and new files, directories, nodes
 * and symlinks are chowned to the calling process's uid/gid (gid left to
 * the kernel's setgid-directory rule when the parent is setgid).
 *
 * fs_new() sets the process umask to 0 (request threads apply each
 * caller's own umask around what they create): create other files with
 * explicit modes.
 *
 * All functions return 0 or a negative errno unless stated otherwise.
 */
#ifndef HERMES_FS_H
#define HERMES_FS_H

#include <stdbool.h>
#include <stdint.h>

struct fs;
struct store;

struct fs_config {
	const char *backing;	/* directory to overlay */
	const char *mountpoint;	/* may equal backing */
	const char *fsname;	/* mount source in /proc/self/mountinfo
				 * ("hermesfs:<state dir>"); NULL = "hermesfs" */
	struct store *store;	/* journal; NULL = journaling off (bench) */
	bool debug;		/* libfuse debug output on stderr */
	bool writeback_cache;	/* kernel writeback cache: faster small writes,
				 * but the kernel then keeps its own size of a
				 * cached file that changes behind the mount
				 * (notify_inval_inode does not reset it), and
				 * written data may sit in the kernel while
				 * sync-back compares the host file, which could
				 * replace it without a conflict copy; the kernel
				 * also sends a SETATTR (mtime) per closed file
				 * (off by default) */
	bool no_passthrough;	/* never let the kernel read and write backing
				 * files itself (FUSE passthrough, used when the
				 * kernel offers it and the daemon may: root) */
};

/*
 * Open the backing directory (before mounting, so a mount over the same
 * path works), create the FUSE session and mount it. Nothing is served
 * until fs_run(). The store must outlive the fs.
 */
int fs_new(const struct fs_config *cfg, struct fs **out);

/*
 * Serve requests on a pool of threads until the mount goes away
 * (fusermount3 -u, umount) or fs_stop() is called; then unmount. Returns 0
 * on a normal end. Call it from one thread only; it installs handlers for
 * SIGINT, SIGTERM and SIGHUP that stop it (like fs_stop()) while it runs.
 */
int fs_run(struct fs *fs);

/*
 * Make fs_run() return (it unmounts, lazily if the mount is busy). Callable
 * from any thread and from a signal handler: it only sets a flag and sends
 * SIGHUP to the thread inside fs_run(). Before fs_run() starts, it makes
 * the next fs_run() return at once.
 */
void fs_stop(struct fs *fs);

/* The backing directory fd (O_DIRECTORY): the sync engine reads and writes
 * the tree through it (openat & co.), never through the mountpoint. */
int fs_root_fd(const struct fs *fs);

/*
 * Drop the kernel's cached attributes and data of `relpath` (no leading
 * '/'; "" = root) and its directory entry, after something (sync-back)
 * changed the backing tree directly. Safe from any thread while fs_run()
 * runs. Unknown paths are not an error.
 */
void fs_invalidate(struct fs *fs, const char *relpath);

/*
 * Journal what open files hold that the journal does not show yet: writes
 * made through passthrough (the daemon never sees them) and writes whose
 * file was closed but whose RELEASE the kernel has not sent yet (close(2)
 * does not wait for it). Call before reading the journal for a push, so a
 * file written and closed just before `hermes-fsctl sync` or a remote
 * command is part of it. Safe from any thread. The entries are appended,
 * not yet committed: store_journal_flush() before reading them.
 */
void fs_settle_open(struct fs *fs);

/*
 * Whether a mutation could not be journaled (its path could not be
 * resolved, or the store refused the append). The caller must then not
 * declare the shutdown clean: the next mount's rescan finds the change.
 */
bool fs_journal_lost(const struct fs *fs);

/* Whether the kernel reads and writes open files' backing files itself
 * (FUSE passthrough: Linux >= 6.9, CAP_SYS_ADMIN, not turned off). */
bool fs_passthrough(const struct fs *fs);

/* Unmount if still mounted, close everything. NULL is ok. */
void fs_free(struct fs *fs);

/* ---- backing-tree snapshot: detecting changes nobody journaled ------- */

/*
 * Walk the tree under root_fd, compare it with the store's snapshot (what
 * the store last knew of it) and journal every difference (created,
 * removed, size, mtime or ctime changed, mode changed, type changed),
 * then replace the snapshot with the tree as found. With no snapshot at all it
 * journals one RESCAN of the root. *changes (may be NULL) gets the number
 * of entries journaled. Waits until they are durable. Run it before
 * serving, after an unclean shutdown.
 */
int fs_rescan(struct store *st, int root_fd, int64_t *changes);

/* Replace the snapshot with the tree as it is now (at clean unmount). */
int fs_snapshot_save(struct store *st, int root_fd);

/*
 * Default state directory of a mountpoint:
 * ${XDG_STATE_HOME:-$HOME/.local/state}/hermesfs/<xxh3-64 hex of the
 * absolute, canonical mountpoint>. malloc'd; NULL on failure (errno set).
 * The directory is not created.
 */
char *fs_state_dir_default(const char *mountpoint);

#endif /* HERMES_FS_H */
