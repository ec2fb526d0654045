/*
 * push_int.h — private to the push engine (sync/push*.c): a small string
 * map, host access through root_fd, the planner, the tar sender.
 */
#ifndef HERMES_PUSH_INT_H
#define HERMES_PUSH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "store/store.h"
#include "sync/sync.h"

/* ---- string map (push_map.c): chained hash, keys owned ----------------- */

struct push_mapent {
	char *key;
	void *val;
	struct push_mapent *next;
};

struct push_map {
	struct push_mapent **b;
	size_t nb, n;
};

void *push_map_get(const struct push_map *m, const char *key, bool *found);
/* Insert or replace; the key is copied. */
int push_map_put(struct push_map *m, const char *key, void *val);
/* Remove; returns the old value (NULL when absent). */
void *push_map_del(struct push_map *m, const char *key);
/* Keys equal to prefix or below it ("" = all), malloc'd array of borrowed
 * keys, sorted (strcmp). */
int push_map_prefix(const struct push_map *m, const char *prefix,
		    const char ***out, size_t *n);
/* Free every entry; free_val (may be NULL) is called on each value. */
void push_map_clear(struct push_map *m, void (*free_val)(void *));
/* True when path equals prefix or lies below it ("" holds everything). */
bool push_path_under(const char *path, const char *prefix);

/* ---- host tree through root_fd (push_host.c) --------------------------- */

struct push_host {
	int root_fd;
	char *dir;		/* relpath of the cached parent directory */
	int dir_fd;		/* -1 when none */
};

void push_host_init(struct push_host *h, int root_fd);
void push_host_release(struct push_host *h);
/* lstat rel; -ENOENT when it or a parent is missing, or a parent is not a
 * directory or is a symlink (never followed). "" is the root itself. */
int push_host_lstat(struct push_host *h, const char *rel, struct stat *st);
/* Open a regular file for reading (O_NOFOLLOW everywhere). */
int push_host_open(struct push_host *h, const char *rel, int *fd);
int push_host_readlink(struct push_host *h, const char *rel, char **target);
/* Every entry below directory rel (not rel itself), depth first; the
 * callback's negative return stops the walk, a positive one does not enter
 * that directory. A directory that cannot be entered (EACCES, EPERM) is
 * reported a second time with st NULL. */
typedef int (*push_walk_fn)(const char *rel, const struct stat *st, void *arg);
int push_host_walk(struct push_host *h, const char *rel, push_walk_fn fn,
		   void *arg);
/* SHA-256 of a whole fd's content from offset 0. */
int push_sha_fd(int fd, uint8_t out[STORE_SHA256_LEN], int64_t *size);
int push_sha_buf(const void *p, size_t n, uint8_t out[STORE_SHA256_LEN]);

/* ---- retry set (push_retry.c) ------------------------------------------- */

#define PUSH_RETRY_MAX_MS 60000	/* longest delay between two tries */

/* Paths a push skipped (unreadable, changed while sent), tried again by
 * the first push after due_ns (store_now_ns clock). */
struct push_retry {
	int64_t due_ns;
	int tries;		/* consecutive pushes that skipped them */
	char **paths;
	size_t n, cap;
};

/* Load the sandbox's set (empty when none). */
int push_retry_load(struct store *st, int64_t sb, struct push_retry *out);
/* Store it (an empty set deletes it); call inside the push's transaction. */
int push_retry_save(struct store *st, int64_t sb, const struct push_retry *r);
/* Add a path (copied; duplicates and names with '\n' are dropped). */
int push_retry_add(struct push_retry *r, const char *path);
bool push_retry_has(const struct push_retry *r, const char *path);
void push_retry_release(struct push_retry *r);
struct push_plan;
/* Paths a failed attempt may have changed remotely (not guarded by the
 * next, forced, push): load, add the plan's, clear once a push commits. */
int push_attempted_load(struct store *st, int64_t sb, struct push_map *out);
int push_attempted_save(struct store *st, int64_t sb, const struct push_plan *p);
int push_attempted_clear(struct store *st, int64_t sb);

/* ---- plan (push_plan.c) ------------------------------------------------- */

enum push_opkind { PUSH_OP_MV = 1, PUSH_OP_RM };

/* Ordered remote steps from the journal's renames. */
/*
 * The guard of a remote path a push overwrites, deletes or renames over:
 * what the sandbox should hold there per the ledger. sig is "-" (nothing),
 * "f SIZE MTIME_S", "l TARGET_LEN" or "d"; for a directory, manifest lists
 * its whole subtree, one "SIG ./PATH" line each, sorted by path. When the
 * sandbox holds something else, the apply script moves it aside to
 * NAME.conflict-<sandbox>-<UTC stamp> first (push_send.c).
 */
struct push_guard {
	char *sig;		/* NULL: no guard */
	char *manifest;		/* directories only */
};

struct push_op {
	int kind;
	char *a, *b;		/* MV a -> b; RM a */
	bool mkparent;		/* MV: parent of b may not exist yet */
	struct push_guard g;	/* MV: what b holds before */
};

enum push_act { PUSH_DELETE = 1, PUSH_MKDIR, PUSH_UPLOAD, PUSH_CHMOD };

struct push_item {
	char *path;
	int act;
	struct store_ledger_row row;	/* what the ledger gets (row.path unused) */
	char *target;			/* symlink target (uploads of links) */
	bool torn;			/* changed while read: not applied */
	bool unreadable;		/* could not be opened: not applied */
	struct push_guard g;		/* DELETE, UPLOAD, MKDIR: what the
					 * sandbox holds at path before */
};

/* A sandbox version the apply script moved aside (conflict copy). */
struct push_kept {
	char *path, *copy;
};

struct push_plan {
	struct push_op *ops;
	size_t nops, capops;
	struct push_item *items;	/* sorted by path */
	size_t nitems, capitems;
	int64_t cursor;			/* cursor to commit */
	int64_t entries, skipped, renamed;
	int64_t files_total, bytes_total;
	char *marker;			/* non-NULL: first push writes it */
	struct push_retry old;		/* the retry set before this push */
	bool old_due;			/* its paths were compared again */
	struct push_retry skip;		/* skipped by this attempt */
	int64_t unreadable;		/* files skipped as unreadable */
	char why[200];			/* the first one: "path: reason" */
	char *copy_suffix;		/* ".conflict-<sandbox>-<stamp>" */
	struct push_kept *kept;		/* filled by push_send */
	size_t nkept;
};

/* ---- guards (push_guard.c) ------------------------------------------------ */

/* "-", "f SIZE MTIME_S", "l LEN" or "d" for a ledger row (NULL = none). */
void push_guard_sig(const struct store_ledger_row *row, char *buf, size_t n);
void push_guard_release(struct push_guard *g);
/* The apply script's guard functions (hs, k, g, gu, gd, gm, st). */
const char *push_guard_prelude(void);
/* Parse the script's stdout ("K<path>\0<copy>\0" records) into p->kept. */
int push_guard_parse(struct push_plan *p, const char *out, size_t len);
/* The conflict copy suffix of this push, same format as the pull's. */
int push_guard_suffix(struct store *st, int64_t sb, char **out);

/* Skip path in this push (not applied, ledger row untouched) and try it
 * again later; err < 0 counts it as unreadable, with that reason. */
int push_plan_skip(struct push_plan *p, const char *path, int err);

/*
 * Plan the push of sandbox sb: journal since its cursor (a full walk when
 * the sandbox was never pushed), against its ledger, the host tree at root_fd. With
 * force, every dirty path is re-sent/re-asserted (a previous attempt may
 * have changed the remote without a ledger commit).
 */
int push_plan_build(struct store *st, int64_t sb, int root_fd,
		    const struct sync_push_config *cfg, bool force,
		    struct push_plan *out);
void push_plan_release(struct push_plan *p);
bool push_plan_empty(const struct push_plan *p);

/* ---- transfer (push_send.c) ---------------------------------------------- */

/*
 * One remote call: stream the uploads as a tar into `tar -x` in a fresh
 * stage dir, then the apply script. Fills rows of uploads (hash of the
 * bytes sent) and marks torn items. *started is set once the remote
 * command ran (the remote may have changed).
 */
int push_send(struct transport *t, int root_fd, struct push_plan *p,
	      const struct sync_push_config *cfg, struct sync_push_stats *stats,
	      bool *started);
/* The apply script (also used by unit tests). malloc'd. */
char *push_script(const struct push_plan *p, const char *stage);

#endif /* HERMES_PUSH_INT_H */
