/*
 * store.h — the hermesfs SQLite store (WAL mode): journal, sandboxes, ledger.
 *
 * Lowest layer: depends on nothing else in hermesfs. Every function returns
 * 0 or a negative errno (-ENOENT for a missing row, -EEXIST for a duplicate,
 * -EIO for an SQLite failure); nothing prints.
 *
 * Threading: one struct store may be used from any number of threads. All
 * database access is serialized on one recursive lock; store_tx_begin() takes
 * that lock until store_tx_commit()/store_tx_rollback(), so the thread that
 * opened a transaction may keep calling store functions inside it while other
 * threads wait. Journal appends never wait for that lock: they are queued and
 * a committer thread writes them in batches (group commit).
 */
#ifndef HERMES_STORE_H
#define HERMES_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

#define STORE_SCHEMA_VERSION 2
#define STORE_SHA256_LEN 32

/* Journal operations. Values are stored on disk: never renumber. */
enum store_op {
	STORE_OP_CREATE   = 1,	/* new regular file (path)                */
	STORE_OP_WRITE    = 2,	/* content changed (path)                 */
	STORE_OP_TRUNCATE = 3,	/* size changed (path)                    */
	STORE_OP_UNLINK   = 4,	/* non-directory removed (path)           */
	STORE_OP_RENAME   = 5,	/* path moved to path2                    */
	STORE_OP_MKDIR    = 6,	/* directory created (path)               */
	STORE_OP_RMDIR    = 7,	/* directory removed (path)               */
	STORE_OP_SYMLINK  = 8,	/* symlink created at path, target path2  */
	STORE_OP_LINK     = 9,	/* hard link path2 made to existing path  */
	STORE_OP_CHMOD    = 10,	/* mode changed (path, mode)              */
	STORE_OP_CHOWN    = 11,	/* owner changed (path)                   */
	STORE_OP_UTIMENS  = 12,	/* times changed (path)                   */
	STORE_OP_XATTR    = 13,	/* extended attribute changed (path)      */
	STORE_OP_EXCHANGE = 14,	/* path and path2 swapped (RENAME_EXCHANGE) */
	STORE_OP_RESCAN   = 15,	/* path (a dir, "" = root) may differ in any
				 * way: compare it whole against each ledger */
};

/* Name of an op for logs and `hermes-fsctl log` ("write", ...). */
const char *store_op_name(int op);
/* Inverse of store_op_name(); returns 0 when unknown. */
int store_op_from_name(const char *name);

/* One journal entry. Paths are relative to the mount root, no leading '/'
 * ("" is the root itself). */
struct store_entry {
	int64_t seq;		/* assigned by the store, strictly increasing */
	int op;			/* enum store_op */
	const char *path;
	const char *path2;	/* NULL unless RENAME, LINK, SYMLINK, EXCHANGE */
	uint32_t mode;		/* st_mode where meaningful, else 0 */
	int64_t time_ns;	/* wall clock when appended */
	int64_t origin;		/* 0 = host; else the sandbox id whose pull
				 * caused it (so it is not pushed back there) */
};

/*
 * Open (creating if needed) the store at `path`, migrating its schema to
 * STORE_SCHEMA_VERSION. The parent directory must exist. Starts the group
 * commit thread.
 */
int store_open(const char *path, struct store **out);
/* Write every queued journal entry, stop the committer, close. NULL is ok. */
void store_close(struct store *st);
/* Schema version of the open database (after migration). */
int store_schema_version(struct store *st, int *version);

/* ---- journal ---------------------------------------------------------- */

/*
 * An entry goes through three states:
 *   queued     store_journal_append() returned: it has a seq (head), and
 *              store_sandbox_needs_push() counts it; nothing on disk yet.
 *   committed  the committer wrote its batch to the WAL (a round gathers
 *              what arrives within ~20 ms; at once when someone waits):
 *              readers (foreach, count, pending, so pushes and `hermes-fsctl
 *              log`) see it and a crash of this process (kill -9) no longer
 *              loses it.
 *   synced     the WAL is fdatasync'ed past it: a power loss cannot lose it.
 * Batches commit without an fsync; the WAL is synced only when someone waits
 * for durability (once for all such waiters), on store_close(), and by any
 * write outside the journal (those are synced when their function returns).
 * After a power loss the journal keeps every synced entry and may lose later
 * ones (never one without the ones before it); the clean flag (below) makes
 * the next mount rescan for what they described.
 */

/* Queue an entry; returns at once (no disk I/O) with its seq in *seq_out
 * (may be NULL). */
int store_journal_append(struct store *st, const struct store_entry *e,
			 int64_t *seq_out);
/* Block until every entry up to and including `seq` is synced: what
 * fsync(2) through the mount needs. seq <= 0 returns at once, a seq past
 * the head waits for the head. -EIO if the entries cannot be committed, or
 * if a sync ever failed on this store (a failed fdatasync may drop pages:
 * no later success can vouch for them). */
int store_journal_wait(struct store *st, int64_t seq);
/* Block until everything appended so far is synced. */
int store_journal_sync(struct store *st);
/* Block until every entry up to `seq` is committed (visible to readers,
 * safe from a crash of this process), without waiting for any fsync: what
 * a push, a pull or a log listing needs. */
int store_journal_wait_committed(struct store *st, int64_t seq);
/* Block until everything appended so far is committed. */
int store_journal_flush(struct store *st);
/* Last seq assigned (queued or not). O(1), no database access. */
int64_t store_journal_head(struct store *st);
/* Last seq committed (what readers see). O(1). */
int64_t store_journal_committed(struct store *st);
/* Last seq known synced (0 until this store's first sync). O(1). */
int64_t store_journal_synced(struct store *st);
/* Old name of store_journal_committed() (it meant "written", never more):
 * kept for the callers that still use it. */
int64_t store_journal_durable(struct store *st);

/* For tests and benchmarks: what the committer has done since open. */
struct store_journal_stats {
	int64_t commits;	/* batches committed (no fsync each) */
	int64_t syncs;		/* WAL fdatasyncs for durability waiters/close */
	int64_t committed;	/* as store_journal_committed() */
	int64_t synced;		/* as store_journal_synced() */
};
void store_journal_stats(struct store *st, struct store_journal_stats *out);

/* Called for each entry in seq order; a non-zero return stops the walk and
 * becomes the return value of the foreach. Strings live for the call only. */
typedef int (*store_entry_fn)(const struct store_entry *e, void *arg);
/* Entries with seq > since (committed ones only), at most `limit` (0 = all). */
int store_journal_foreach(struct store *st, int64_t since, int64_t limit,
			  store_entry_fn fn, void *arg);
/* Number of committed entries with seq > since. */
int store_journal_count(struct store *st, int64_t since, int64_t *count);
/* What a push to `sandbox` still has to look at: committed entries with
 * seq > since, not counting those its own pull wrote (origin = sandbox),
 * which are never sent back to it. */
int store_journal_pending(struct store *st, int64_t since, int64_t sandbox,
			  int64_t *count);
/*
 * Delete entries every sandbox has applied: seq <= the lowest cursor. With no
 * sandboxes, keeps everything (a sandbox added later starts from a full scan
 * anyway, but the log stays useful). *pruned (may be NULL) gets the count.
 */
int store_journal_prune(struct store *st, int64_t *pruned);

/* ---- sandboxes -------------------------------------------------------- */

struct store_sandbox {
	int64_t id;
	char *name;
	char *url;
	int64_t cursor;		/* last journal seq fully applied there */
	int64_t created_ns;
};

/* Add a sandbox with cursor 0. -EEXIST if the name is taken. */
int store_sandbox_add(struct store *st, const char *name, const char *url,
		      int64_t *id_out);
/* Remove a sandbox and its whole ledger. -ENOENT if unknown. */
int store_sandbox_remove(struct store *st, const char *name);
/* Look up by name. Release *out with store_sandbox_release(). */
int store_sandbox_get(struct store *st, const char *name,
		      struct store_sandbox *out);
int store_sandbox_get_by_id(struct store *st, int64_t id,
			    struct store_sandbox *out);
void store_sandbox_release(struct store_sandbox *sb);
/* All sandboxes ordered by name; free with store_sandbox_list_free(). */
int store_sandbox_list(struct store *st, struct store_sandbox **out,
		       size_t *n);
void store_sandbox_list_free(struct store_sandbox *list, size_t n);
int store_sandbox_cursor_get(struct store *st, int64_t id, int64_t *cursor);
int store_sandbox_cursor_set(struct store *st, int64_t id, int64_t cursor);
/*
 * The O(1) pre-command check: *needed = journal head > that sandbox's
 * cursor. One primary-key lookup plus an atomic read.
 */
int store_sandbox_needs_push(struct store *st, int64_t id, bool *needed);

/* ---- ledger: what each sandbox holds, per path ------------------------ */

enum store_ftype { STORE_FT_FILE = 1, STORE_FT_DIR = 2, STORE_FT_SYMLINK = 3 };

struct store_ledger_row {
	char *path;
	int type;			/* enum store_ftype */
	uint8_t sha256[STORE_SHA256_LEN];	/* content (file) or target (symlink) */
	int64_t size;
	uint32_t mode;			/* permission bits + type bits */
	int64_t mtime_ns;		/* as sent to / seen on the sandbox */
};

/* Fills *out (out->path allocated); -ENOENT if absent. */
int store_ledger_get(struct store *st, int64_t sandbox,
		     const char *path, struct store_ledger_row *out);
/* Insert or replace. */
int store_ledger_put(struct store *st, int64_t sandbox,
		     const struct store_ledger_row *row);
/* Delete `path` and, when recursive, everything below it. */
int store_ledger_delete(struct store *st, int64_t sandbox,
			const char *path, bool recursive);
/* Rename `from` and everything below it to `to`, in one statement. Rows
 * already at the destination are replaced. */
int store_ledger_rename(struct store *st, int64_t sandbox,
			const char *from, const char *to);
typedef int (*store_ledger_fn)(const struct store_ledger_row *row, void *arg);
/* Rows at `prefix` and below ("" or NULL = all), ordered by path. */
int store_ledger_foreach(struct store *st, int64_t sandbox,
			 const char *prefix, store_ledger_fn fn, void *arg);
int store_ledger_count(struct store *st, int64_t sandbox, int64_t *count);
void store_ledger_row_release(struct store_ledger_row *row);

/* ---- transactions ----------------------------------------------------- */

/*
 * Everything between begin and commit lands atomically or not at all
 * (e.g. ledger rows + cursor after a push). Not nestable. The calling
 * thread holds the store lock until commit/rollback.
 */
int store_tx_begin(struct store *st);
int store_tx_commit(struct store *st);
int store_tx_rollback(struct store *st);

/* ---- host snapshot: what the store last knew of the backing tree ------ */

/*
 * Used to detect changes made while no daemon journaled them (after a
 * crash). Replace the whole snapshot with snapshot_begin / put... / commit
 * (one transaction); walk it with snapshot_foreach.
 */
struct store_snap_row {
	const char *path;
	int type;		/* enum store_ftype */
	int64_t size;
	uint32_t mode;
	int64_t mtime_ns;
	int64_t ino;
	int64_t ctime_ns;	/* 0: not known (taken before schema 2) */
};
int store_snapshot_begin(struct store *st);
int store_snapshot_put(struct store *st, const struct store_snap_row *row);
int store_snapshot_commit(struct store *st);
typedef int (*store_snap_fn)(const struct store_snap_row *row, void *arg);
int store_snapshot_foreach(struct store *st, store_snap_fn fn, void *arg);
int store_snapshot_count(struct store *st, int64_t *count);

/* ---- conflicts: host versions kept aside by a pull, until resolved ---- */

struct store_conflict {
	int64_t id;
	int64_t sandbox;
	char *path;		/* the path the remote version was applied at */
	char *copy_path;	/* where the host version was kept */
	int64_t time_ns;
};
int store_conflict_add(struct store *st, int64_t sandbox, const char *path,
		       const char *copy_path, int64_t *id_out);
/* sandbox < 0: all sandboxes. Free with store_conflict_list_free(). */
int store_conflict_list(struct store *st, int64_t sandbox,
			struct store_conflict **out, size_t *n);
void store_conflict_list_free(struct store_conflict *list, size_t n);
int store_conflict_resolve(struct store *st, int64_t id);

/* ---- shutdown flag and small settings --------------------------------- */

/*
 * *was_clean: whether the previous run called store_clean_set(st, true)
 * last. A new store counts as clean. A daemon sets false when it starts
 * serving and true after a clean unmount. Both are synced before
 * store_clean_set() returns, and true only after every journal entry is:
 * so the flag never claims more than the disk holds, and journal entries a
 * power loss takes always belong to a run marked unclean, whose next mount
 * rescans the backing tree against the snapshot.
 */
int store_clean_get(struct store *st, bool *was_clean);
int store_clean_set(struct store *st, bool clean);
/* String settings (kept across remounts). *value is malloc'd; -ENOENT if
 * unset. set with value NULL deletes. */
int store_meta_get(struct store *st, const char *key, char **value);
int store_meta_set(struct store *st, const char *key, const char *value);

/* Monotonic-ish wall clock in ns, as used for time_ns fields. */
int64_t store_now_ns(void);

#endif /* HERMES_STORE_H */
