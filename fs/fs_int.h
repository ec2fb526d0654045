/*
 * fs_int.h — private to the fs/ overlay: the mount state shared by the
 * FUSE low-level operations (fs_ll.c, fs_llio.c), the inode table
 * (fs_inode.c) and the lifecycle (fs_mount.c).
 *
 * One FUSE inode per backing inode (keyed by st_dev/st_ino), each holding
 * an O_PATH fd, so hard links share one kernel inode and page cache.
 * Journal paths are derived from the backing dentries themselves
 * (/proc/self/fd), so they follow renames exactly.
 */
#ifndef HERMES_FS_INT_H
#define HERMES_FS_INT_H

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "fs/fs.h"

/*
 * How long the kernel may trust names, attributes and missing names
 * (negative entries). The daemon is the only writer of the backing tree
 * while it is mounted (the mount usually hides it), except sync-back,
 * which calls fs_invalidate() for every path it changes, creates or
 * deletes; the kernel keeps its caches exact for changes made through the
 * mount. So the timeouts only bound how long a change made behind the
 * mount's back (out of contract) stays invisible. 1 s expired the entries
 * of a 10,000-file create+stat+delete run between its phases: one LOOKUP
 * per stat and per unlink.
 */
#define FS_ENTRY_TIMEOUT 60.0
#define FS_ATTR_TIMEOUT 60.0
#define FS_NEGATIVE_TIMEOUT 60.0
/*
 * Largest WRITE and READ. libfuse moves a request through a pipe with
 * splice (one copy, into or out of the backing page cache) only if header +
 * data + a few pages fit in a pipe, 1 MiB by default (pipe-max-size);
 * otherwise it read()s a WRITE into a buffer and pwrite()s it (two copies)
 * and answers a READ from a fresh malloc'd buffer per request (page
 * faults). 512 KiB stays on the splice path both ways: a 512 MiB dd +
 * fsync took a median 1.09 s vs 3.17 s with 1 MiB, and 1 MiB readahead
 * read 512 MiB in ~5 s instead of 0.3 s. libfuse derives max_pages from
 * max_write, which caps READs at the same size.
 */
#define FS_MAX_WRITE (512u * 1024)
#define FS_MAX_READ FS_MAX_WRITE
/* Kernel readahead wanted on the mount (KiB); the kernel caps FUSE's at
 * its default 128 KiB, only root can raise it (sysfs). */
#define FS_READAHEAD_KB 1024

/* How a file written through passthrough looked when last checked: a
 * write moves its mtime or size (fs_pt.c). */
struct fs_wsnap {
	bool unsure;		/* a write might not change the mtime */
	struct timespec mtime;
	off_t size;
};

struct fs_inode {
	int fd;			/* O_PATH | O_NOFOLLOW (root: the backing dir fd) */
	dev_t dev;
	ino_t ino;
	mode_t type;		/* S_IFMT bits */
	uint64_t nlookup;	/* kernel references; fs->ilock */
	/* Passthrough: the kernel refuses two backing files for one inode,
	 * so every open of it shares one id while any is open (fs->fhlock). */
	int32_t backing_id;
	uint32_t backing_refs;
	/* Written through passthrough: still watched after the last RELEASE,
	 * because a shared mapping outlives its handle and writes on with no
	 * request reaching us (fs->settle_lock; fs_pt.c). */
	bool watched;
	struct fs_wsnap wsnap;
	struct fs_inode *wprev, *wnext;
	struct fs_inode *next;	/* hash chain */
};

struct fs {
	int root_fd;			/* backing directory */
	int proc_fd;			/* /proc/self/fd */
	char *root_path;		/* its path, to relativize /proc/self/fd links */
	size_t root_len;
	struct fs_inode root;
	struct store *store;		/* NULL: journaling off */
	struct fuse_session *se;
	char *mountpoint;
	bool mounted;
	bool as_root;			/* chown new nodes to the caller */
	bool writeback;			/* kernel writeback cache wanted */
	bool no_passthrough;		/* fs_config.no_passthrough */
	bool pt_offered;		/* the kernel offered passthrough (INIT) */
	bool pt_capable;		/* we may register backing files */
	uint32_t pt_stack_depth;	/* passthrough's max_stack_depth */
	bool fine_ctime;		/* backing ctimes never repeat (fs_pt.c) */
	int pt;				/* atomic: 1 = passthrough in use */
	int pt_used;			/* a file was opened that way (fhlock) */
	volatile sig_atomic_t stop;	/* fs_stop() was called */
	volatile sig_atomic_t running;	/* inside fs_run() */
	pthread_t run_thread;
	pthread_mutex_t ilock;		/* inode table */
	struct fs_inode **itab;
	size_t ibuckets, icount;
	int journal_lost;		/* atomic: see fs_journal_lost() */
	pthread_mutex_t fhlock;		/* the lists of open handles */
	pthread_mutex_t settle_lock;	/* a handle's check-and-journal
					 * (fs_fh_settle); taken after fhlock */
	struct fs_hlink *fhs;		/* fhlock: open files (struct fs_fh) */
	struct fs_hlink *dirs;		/* fhlock: open directories */
	struct fs_inode *watch;		/* settle_lock: see fs_inode.watched */
};

/* A node of fs->fhs or fs->dirs: the first member of struct fs_fh and of
 * struct fs_dir, so a node is also a pointer to its handle. */
struct fs_hlink {
	struct fs_hlink *prev, *next;	/* fs->fhlock */
};

/* An open file: the backing fd and whether it was written since its last
 * WRITE entry (coalescing: one entry per flush/release/fsync). */
struct fs_fh {
	struct fs_hlink link;		/* first, see struct fs_hlink */
	int fd;
	int dirty;			/* atomic */
	/* Passthrough (fs_pt.c): writes never reach us, so a write-enabled
	 * handle remembers how its file looked (fs->settle_lock) to tell
	 * them by. */
	struct fs_inode *pt_inode;	/* opened in passthrough mode: its
					 * inode (the kernel keeps it known
					 * until after RELEASE) */
	bool pt_write;
	struct fs_wsnap wsnap;
};

extern const struct fuse_lowlevel_ops fs_ll_ops;

/* ---- inode table (fs_inode.c) ---- */
int fs_itab_init(struct fs *fs);
void fs_itab_free(struct fs *fs);
struct fs_inode *fs_inode(struct fs *fs, fuse_ino_t ino);
/* Look up name in parent, take a lookup reference, fill e. */
int fs_do_lookup(struct fs *fs, fuse_ino_t parent, const char *name,
		 struct fuse_entry_param *e);
void fs_forget_one(struct fs *fs, fuse_ino_t ino, uint64_t n);
/* Find the known inode for (dev, ino); 0 if the kernel does not know it. */
fuse_ino_t fs_itab_find(struct fs *fs, dev_t dev, ino_t ino);
/* "/proc/self/fd/N" into buf (at least 64 bytes). */
char *fs_proc_path(char *buf, int fd);

/* ---- journal paths (fs_inode.c) ---- */
/* Path of the object an fd refers to, relative to the root ("" = root);
 * NULL if deleted or outside. malloc'd. */
char *fs_fd_relpath(struct fs *fs, int fd);
/* Relative path of name in parent; NULL on failure. malloc'd. */
char *fs_child_relpath(struct fs *fs, fuse_ino_t parent, const char *name);
/* Append an entry (paths relative, may be NULL: then nothing). Returns seq. */
int64_t fs_journal(struct fs *fs, int op, const char *path, const char *path2,
		   uint32_t mode);
/* Journal a WRITE for fh if it was written since its last entry. */
int64_t fs_fh_settle(struct fs *fs, struct fs_fh *fh);
/* Close and forget an open handle (fs_llio.c). */
void fs_fh_free(struct fs *fs, struct fs_fh *fh);
/* Settle and free the handles the kernel never released: a session can
 * end with RELEASE requests still queued (lazy unmount, close racing the
 * unmount); their writes must still reach the journal. */
void fs_fh_drain(struct fs *fs);
/* When running as root: give a node just created (name in parent, or fd)
 * to the calling uid/gid (gid left alone under a setgid parent). */
void fs_own(struct fs *fs, fuse_req_t req, int parent_fd, const char *name, int fd);
/* Clear the bits kill of a file whose mode is mode (fd: O_PATH or open) and
 * journal the chmod: what the kernel would have done for a caller without
 * CAP_FSETID, which the root daemon's own calls do not do. */
void fs_mode_kill(struct fs *fs, int fd, mode_t mode, mode_t kill);
/*
 * Around a create, mkdir or mknod: the kernel leaves the caller's umask to
 * us (DONT_MASK), and the backing file system must apply it only where the
 * parent has no default ACL. fs_umask_push() gives this request thread the
 * caller's umask and returns the mode to create with; fs_umask_pop() puts
 * umask 0 back. fs_umask_mode() is the mode the caller meant (for the
 * journal).
 */
mode_t fs_umask_push(fuse_req_t req, mode_t mode);
void fs_umask_pop(void);
mode_t fs_umask_mode(fuse_req_t req, mode_t mode);

/* ---- passthrough (fs_pt.c) ---- */
/* After mounting: put our transport under the session (it asks the kernel
 * for passthrough at INIT). */
int fs_pt_setup(struct fs *fs);
/* At INIT: the kernel offers passthrough and the mount wants it. */
bool fs_pt_wanted(const struct fs *fs);
bool fs_pt_on(const struct fs *fs);
/* Open fh of inode `in` in passthrough mode (if on): register the backing
 * file with the kernel, or share the inode's registration; flags: the open
 * flags. 0 also when the mount falls back to the plain path. */
int fs_pt_open(struct fs *fs, struct fs_inode *in, struct fs_fh *fh, int flags);
/* Around fuse_reply_open()/fuse_reply_create() of fh: the reply then
 * carries its backing id. */
void fs_pt_reply_begin(const struct fs_fh *fh);
void fs_pt_reply_end(void);
/* Whether the file changed since the last call (or the open); caller
 * holds fs->settle_lock. */
bool fs_pt_written(struct fs *fs, struct fs_fh *fh);
/* At RELEASE of fh: keep watching its file (it may still be mapped). */
void fs_pt_watch(struct fs *fs, struct fs_fh *fh);
/* Journal watched files that changed; caller holds fs->settle_lock. */
void fs_pt_watch_settle(struct fs *fs);
/* The inode is being forgotten: last check, stop watching (takes
 * fs->settle_lock). */
void fs_pt_unwatch(struct fs *fs, struct fs_inode *in);
/* Drop fh's share of its inode's backing id. */
void fs_pt_close(struct fs *fs, struct fs_fh *fh);

#endif
