/*
 * sync.h — transports and the sync engine (push now; pull in its section).
 *
 * Depends on store/ only. Every function returns 0 or a negative errno;
 * human-readable detail of the last failure is in transport_error() /
 * the engine's error accessors, never printed.
 */
#ifndef HERMES_SYNC_H
#define HERMES_SYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "store/store.h"

/* ==== transports ======================================================= */

/*
 * A transport runs `sh -c SCRIPT` on a sandbox with streamed stdin and
 * stdout/stderr and an exit status. URLs:
 *   local:/abs/path                     a directory on this machine
 *   ssh://[user@]host[:port]/abs/root   libssh2, one connection, a channel per call
 *   cmd:PREFIX                          PREFIX split like a shell would, then
 *                                       `sh -c SCRIPT` appended (docker exec -i C, ...)
 *                                       root given as cmd:PREFIX#/abs/root (default /)
 */
struct transport;
struct transport_proc;

/*
 * SSH settings come from transport_opts; a NULL/false field falls back to
 * the environment (how tests and the daemon point at generated keys):
 *   HERMES_SSH_KEY=FILE          private key (also tried before ssh-agent)
 *   HERMES_SSH_KNOWN_HOSTS=FILE  known_hosts to check (and record into)
 *   HERMES_SSH_ACCEPT_NEW=1      record an unknown host key instead of refusing
 * A changed host key is always refused. Auth order: the key file given,
 * then ssh-agent ($SSH_AUTH_SOCK), then ~/.ssh/id_ed25519, id_rsa, id_ecdsa.
 *
 * Fault injection for tests: HERMES_FAULT_TRANSPORT_FAIL_AT=N makes the Nth
 * transport_spawn() of the process (counting from 1) fail with -EIO.
 */

struct transport_opts {
	const char *known_hosts;  /* NULL = ~/.ssh/known_hosts */
	bool accept_new;          /* unknown host key: record it instead of refusing */
	const char *identity;     /* private key file; NULL = ssh-agent, then ~/.ssh/id_* */
	int keepalive_s;          /* 0 = default (15 s) */
	int connect_timeout_ms;   /* 0 = default (10 s) */
};

/* Parse and validate a URL without connecting: -EINVAL on a bad one,
 * with a one-line reason in *why (static string, may be NULL). */
int transport_url_check(const char *url, const char **why);
/* Open (for ssh: connect and authenticate now). opts may be NULL. */
int transport_open(const char *url, const struct transport_opts *opts,
		   struct transport **out);
void transport_close(struct transport *t);	/* NULL ok */
/* Why the last transport_open() of this thread failed ("" if it did not). */
const char *transport_open_error(void);
/* Absolute root directory of the synced tree on the sandbox. */
const char *transport_root(const struct transport *t);
/* Scheme: "local", "ssh" or "cmd". */
const char *transport_kind(const struct transport *t);
/* One-line description of the last failure ("" if none). */
const char *transport_error(const struct transport *t);

/*
 * Start `sh -c script` on the sandbox (cwd unspecified: scripts cd
 * themselves). Local and cmd children run in their own process group.
 */
int transport_spawn(struct transport *t, const char *script,
		    struct transport_proc **out);
/* Write all of buf to the command's stdin (blocking). */
int transport_proc_write(struct transport_proc *p, const void *buf, size_t n);
int transport_proc_close_stdin(struct transport_proc *p);
/*
 * Read whatever arrives first on stdout or stderr: returns bytes read (>0)
 * with *stream = 1 or 2, 0 once both are at EOF, -ETIMEDOUT after
 * timeout_ms (-1 = wait forever), or -errno.
 */
ssize_t transport_proc_read(struct transport_proc *p, void *buf, size_t n,
			    int *stream, int timeout_ms);
/* Wait for exit: *status = exit code, or 128+signal. */
int transport_proc_wait(struct transport_proc *p, int *status);
/* Signal the command: local/cmd kill the whole process group; ssh sends a
 * channel signal where the server supports it (callers needing a sure kill
 * of a remote group run `kill` through the transport themselves). */
int transport_proc_kill(struct transport_proc *p, int sig);
/* Kill if still running, reap, free. NULL ok. */
void transport_proc_free(struct transport_proc *p);

/*
 * Convenience: run a script with `in` (may be NULL) as stdin, collect
 * stdout into *out (malloc'd, NUL-terminated, may be NULL to discard) and
 * stderr into the transport's error text on failure. Returns 0 once the
 * command ran, with its exit code in *status; with status NULL, a non-zero
 * exit code gives -EIO. The error text then reads "command exited with
 * status N: <last stderr line>".
 */
int transport_run(struct transport *t, const char *script,
		  const void *in, size_t inlen,
		  char **out, size_t *outlen, int *status);

/* Quote `s` for sh in single quotes; malloc'd. */
char *sync_shell_quote(const char *s);

/* ==== layout on every sandbox root =================================== */

/* File at the sandbox root written by the first push: its content is the
 * sandbox's random id (store meta "sandbox.<id>.marker"); a pull that finds
 * it missing or different refuses mass deletions (root wiped/replaced). */
#define SYNC_MARKER_NAME ".hermesfs-sandbox"
/* Staging directory at the sandbox root: uploads land here and are renamed
 * into place so readers never see a torn file. Never synced back. */
#define SYNC_STAGE_DIR ".hermesfs-tmp"

/* ==== push engine ===================================================== */

/*
 * Push = replay the journal since the sandbox's cursor against its ledger.
 *
 * Plan: renames (files and whole directories) become remote renames and
 * ledger prefix renames, so moved content is never re-sent; every other
 * journaled path is compared with the ledger: gone on the host -> remote
 * delete; directory -> mkdir/chmod; file or symlink whose SHA-256, type or
 * mode differs -> upload (same content, other mode -> chmod only). The
 * first push of a sandbox (no marker recorded yet, or cursor 0 with an
 * empty ledger) and STORE_OP_RESCAN entries get a full walk of the host
 * tree (or subtree) compared with the whole ledger.
 *
 * Transfer: ONE remote call per attempt. Its stdin is a tar (libarchive,
 * pax-restricted) holding the uploads, extracted by `tar -x` into a fresh
 * directory under SYNC_STAGE_DIR, and last an apply script run by sh that
 * renames, deletes, mkdirs, moves the staged files into place (rename(2):
 * readers never see a torn file) and fixes modes. The sandbox needs only
 * sh, tar, mv, mkdir, rm and chmod (no GNU-only flags). Every remote step
 * is idempotent, so an attempt that died half-way is simply redone.
 * The first push also writes SYNC_MARKER_NAME (see the pull section).
 *
 * Guard: a push never destroys a sandbox change that was not pulled yet.
 * Right before each overwrite, delete or rename-over, the apply script
 * compares what the sandbox holds with what the ledger says it holds (type,
 * size, whole-second mtime, as the pull's listing does; a directory: its
 * whole subtree; a path with no ledger row: nothing at all, unless it
 * already holds exactly the new version). A mismatch is moved aside on the
 * sandbox to NAME.conflict-<sandbox>-<UTC stamp>[-N] first (the pull's
 * conflict copy name), recorded with store_conflict_add() and counted in
 * stats.conflicts, with a warning in stats.error; the next pull brings it
 * to the host as a new file. The common case costs one `stat` per batch
 * of overwritten files and no extra remote call.
 *
 * Hashing happens while streaming (OpenSSL EVP), so the ledger records the
 * hash of the bytes actually sent. A file that changed while it was read
 * (size, mtime or ctime moved) is not moved into place and its ledger row
 * is left alone; so is a file that cannot be read (EACCES, EPERM: a warning
 * in stats.error, the rest of the push goes on). Both enter the sandbox's
 * retry set (store meta), compared again by the first push after
 * stats.retry_at_ns: at once the first time, then after the backoff
 * schedule, capped at 60 s. The background thread comes back for them even
 * when the journal did not move.
 *
 * Commit: only after the remote call exited 0, the ledger changes and the
 * new cursor (the last journal seq planned) are written in ONE store
 * transaction. On any failure the ledger and cursor are untouched; the
 * push is re-planned and retried after a backoff.
 *
 * Host files are read through root_fd only (openat, O_NOFOLLOW on every
 * component): never through the mountpoint, never following symlinks.
 */

/* Progress of one push attempt (for a progress bar). */
struct sync_push_progress {
	int64_t files_done, files_total;	/* uploads */
	int64_t bytes_done, bytes_total;	/* upload content bytes */
	const char *path;	/* file being sent (NULL between files) */
};

struct sync_push_config {
	/* Retries after a failed attempt: 0 = 3, < 0 = none. */
	int retries;
	/* Delays before retry 1, 2, ...: the list when given (its last value
	 * repeats), else backoff_ms doubling (0 = 2000: 2 s, 4 s, 8 s). */
	const int *backoff_list;
	size_t backoff_count;
	int backoff_ms;
	/* Paths never pushed (e.g. gitignore patterns): return true to skip
	 * relpath; a skipped directory skips its whole subtree. Skipped paths
	 * are neither uploaded nor deleted on the sandbox. May be NULL. */
	bool (*ignore)(const char *relpath, bool is_dir, void *arg);
	void *ignore_arg;
	/* Called from the pushing thread after every chunk sent and file
	 * finished. May be NULL. */
	void (*progress)(const struct sync_push_progress *p, void *arg);
	void *progress_arg;
	/* Polled between chunks and during backoff: non-zero aborts the
	 * attempt (remote command killed, nothing committed): -EINTR. */
	const volatile int *cancel;
};

struct sync_push_stats {
	int64_t entries;	/* journal entries replayed */
	int64_t cursor;		/* cursor after the push (unchanged on failure) */
	int64_t uploaded;	/* files and symlinks sent */
	int64_t skipped;	/* compared and found equal to the ledger */
	int64_t renamed;	/* remote renames (a directory counts once) */
	int64_t deleted;	/* remote deletions (a subtree counts once) */
	int64_t mkdirs;
	int64_t chmods;		/* mode-only changes */
	int64_t changed_during_upload;	/* not applied: tried again later */
	int64_t unreadable;	/* host files that could not be read (EACCES...):
				 * skipped, the rest pushed, tried again later */
	int64_t conflicts;	/* sandbox versions not pulled yet, moved aside
				 * to NAME.conflict-<sandbox>-<stamp> on the
				 * sandbox (store_conflict_add) */
	int64_t retry_at_ns;	/* store_now_ns() time when skipped files are
				 * due for another try; 0 = none left */
	int64_t bytes_sent;	/* file content bytes in the tar */
	int64_t bytes_out;	/* everything written to the transport */
	int attempts;		/* attempts used (1 = no retry) */
	char error[256];	/* last failure; on success "" or a warning
				 * (files skipped, conflicts kept aside) */
};

/*
 * Push sandbox `sandbox_id` (a store sandbox) through transport `t`, reading
 * the host tree from root_fd (a directory fd of the backing tree). cfg and
 * stats may be NULL. Blocks until done (the retries included). Not to be
 * run concurrently for the same sandbox (the engine guarantees that);
 * different sandboxes may push in parallel.
 * Returns 0, -EINTR (cancelled), or the last attempt's error
 * (transport errno, -EIO when the remote command failed, ...).
 */
int sync_push_run(struct store *st, int64_t sandbox_id, struct transport *t,
		  int root_fd, const struct sync_push_config *cfg,
		  struct sync_push_stats *stats);

/* When files a push of `sandbox_id` skipped are due for another try
 * (store_now_ns clock; the stored retry set); 0 when none. */
int64_t sync_push_retry_at(struct store *st, int64_t sandbox_id);

/* ==== pull engine (sync-back) ========================================== */
/* (owned by the pull work: three-way apply, hostile-input checks) */

/*
 * Pull = three-way sync-back: base = this sandbox's ledger, host = the
 * current file under root_fd, remote = the sandbox's file. One listing
 * call finds what changed (size, whole-second mtime, mode, type), one tar
 * stream fetches only those files, staged in an anonymous host file
 * before anything is applied. Applies are atomic (temp + fsync + rename),
 * journaled with origin = the sandbox (so they fan out to the other
 * sandboxes but are not pushed back) and recorded in the ledger.
 * Everything the sandbox sends is untrusted: bad names, escaping symlinks,
 * hard links, devices, fifos and sockets are refused and reported; caps
 * are checked before writing; a root that is missing, empty while the
 * ledger is not, or whose marker is missing or different, is -ESTALE and
 * nothing is changed.
 */
enum sync_conflict_policy {
	SYNC_CONFLICT_COPY = 0,	  /* remote at the path, host kept beside it as
				   * NAME.conflict-<sandbox>-<YYYYmmddTHHMMSSZ> */
	SYNC_CONFLICT_HOST_WINS,  /* host kept, re-pushed to the sandbox */
	SYNC_CONFLICT_REMOTE_WINS, /* remote at the path, host version dropped */
};
/* "conflict-copy", "host-wins", "remote-wins" <-> enum; -EINVAL if unknown. */
int sync_conflict_policy_parse(const char *s, enum sync_conflict_policy *out);
const char *sync_conflict_policy_name(enum sync_conflict_policy p);

#define SYNC_PULL_MAX_TOTAL_BYTES (4LL << 30)	/* defaults for 0 below */
#define SYNC_PULL_MAX_FILES 1000000LL
#define SYNC_PULL_MAX_FILE_SIZE (1LL << 30)

/*
 * Progress of a pull (for a progress bar), in two phases. Fetching: the
 * totals are known before the tar arrives (the files the listing
 * comparison decided to fetch and their listed sizes); the done counts
 * only grow, and the last call of a complete fetch has done == total (a
 * file that grew on the sandbox since the listing raises bytes_total with
 * it, so done never exceeds total). A retry starts again from 0 with
 * attempt + 1. Then applying (host writes, one fsync per file): `applied`
 * grows from 0 to apply_total (every changed path), the fetch counts stay.
 */
struct sync_pull_progress {
	int64_t files_done, files_total;	/* regular files to fetch */
	int64_t bytes_done, bytes_total;	/* their content bytes */
	int attempt;				/* 1, 2, ... */
	bool applying;				/* the fetch is over */
	int64_t applied, apply_total;		/* changed paths (applying) */
};
/* Least time between two progress calls of one phase (its first and last
 * calls are always made). */
#define SYNC_PULL_PROGRESS_MS 100

struct sync_pull_config {
	enum sync_conflict_policy policy;
	int64_t max_total_bytes;	/* fetched content; 0 = default */
	int64_t max_files;		/* listed entries; 0 = default */
	int64_t max_file_size;		/* one file; 0 = default */
	int retries;			/* after a transport failure; 0 = 3, <0 = none */
	int backoff_ms;			/* first retry delay, doubling; 0 = 2000 */
	const int *backoff_list;	/* else these delays (the last repeats) */
	size_t backoff_count;
	bool portable_listing;		/* force the sh+stat listing (tests) */
	/* Paths never pulled (the push's ignore rules, same signature):
	 * dropped from the listing before planning and caps, so they are
	 * neither applied, deleted, refused nor counted. A skipped directory
	 * skips its subtree. May be NULL. */
	bool (*ignore)(const char *relpath, bool is_dir, void *arg);
	void *ignore_arg;
	/* Called after each change to a host path (FUSE cache invalidation). */
	void (*invalidate)(const char *relpath, void *arg);
	void *invalidate_arg;
	/* Polled while fetching: non-zero stops the pull before anything is
	 * applied (-EINTR). Once applying has started the pull finishes. */
	const volatile int *cancel;
	/* Called from the pulling thread while files are fetched: once with
	 * done = 0 when the listing was compared, then at most every
	 * SYNC_PULL_PROGRESS_MS while the tar arrives, and once at its end
	 * (not at all when nothing is fetched); then the same way while the
	 * changes are applied (not at all when nothing changed). May be NULL. */
	void (*progress)(const struct sync_pull_progress *p, void *arg);
	void *progress_arg;
};

struct sync_pull_stats {
	int64_t listed;		/* remote entries accepted */
	int64_t fetched;	/* files received */
	int64_t applied;	/* host paths written or created */
	int64_t deleted;	/* host paths deleted */
	int64_t conflicts;	/* conflict copies made (store_conflict_add) */
	int64_t refused;	/* hostile or unsupported entries refused */
	int64_t kept;		/* remote deletions / changes not applied */
	int64_t bytes_in;	/* bytes read from the transport (listing + tar) */
	int attempts;		/* transport attempts used */
	char *report;		/* malloc'd lines: refusals, conflicts, warnings */
};
void sync_pull_stats_release(struct sync_pull_stats *s);

/*
 * Pull sandbox `sandbox_id` through `t` into the host tree at root_fd (a
 * directory fd: the host tree is only reached through it, never following
 * symlinks). Pulls are serialized process-wide. cfg may be NULL (defaults).
 * stats may be NULL. Returns 0 (refusals and conflicts are not failures:
 * see stats), -ESTALE (root missing/wiped/replaced: nothing changed),
 * -EFBIG (a cap), -EPROTO (garbled listing or tar), -EINTR (cancelled
 * before applying), or the transport's error after the retries.
 */
int sync_pull_run(struct store *st, int64_t sandbox_id, struct transport *t,
		  int root_fd, const struct sync_pull_config *cfg,
		  struct sync_pull_stats *stats);

/* ==== sync engine: every sandbox, push + pull, background ============= */

/*
 * The engine owns, per sandbox of the store (re-read on every call, so
 * `sandbox add/rm` take effect at once): an open transport (opened on
 * first use, closed after any error and reopened on the next call), a
 * lock so a push and a pull of the same sandbox never overlap, and the
 * status shown by `hermes-fsctl status`. Pulls of all sandboxes are also
 * serialized process-wide (they write the host tree). Pushes of different
 * sandboxes run in parallel on a bounded pool of threads.
 *
 * Threading: every function may be called from any thread, concurrently
 * (the daemon's control-socket handlers, exec's before-run hook and the
 * background thread). Calls block until their work is done; status never
 * blocks on a running push or pull.
 *
 * Errors: functions return 0 or a negative errno (-ENOENT: no sandbox of
 * that name); sync_engine_error() gives the one-line reason.
 */
struct sync_engine;

struct sync_engine_config {
	/* Defaults for every sandbox. push.cancel and pull.cancel are owned
	 * by the engine (set on sync_engine_stop/free). */
	struct sync_push_config push;
	struct sync_pull_config pull;
	/* Optional per-sandbox overrides: called before each push or pull
	 * with copies of the defaults above (e.g. a [sandbox NAME] section of
	 * the config file: retry schedule, conflict policy, caps, ignores). */
	void (*configure)(const char *name, struct sync_push_config *push,
			  struct sync_pull_config *pull, void *arg);
	void *configure_arg;
	/* Called after every push and pull (worker thread): for logs. */
	void (*on_done)(const char *name, bool is_pull, int rc,
			const char *error, void *arg);
	void *on_done_arg;
	/* Background pushes only go to sandboxes for which this returns
	 * true (e.g. not those with auto-push = no); NULL = all. */
	bool (*follow)(const char *name, void *arg);
	void *follow_arg;
	int pool_size;		/* parallel pushes; 0 = 4 */
	int poll_ms;		/* background poll of the journal head; 0 = 200 */
	int max_backoff_ms;	/* background retry delay cap; 0 = 60000 */
	struct transport_opts topts;	/* for every transport_open (strings
					 * must outlive the engine) */
	/* Optional per-sandbox transport options (e.g. the SSH key of a
	 * [sandbox NAME] section): called with a copy of topts before the
	 * sandbox's transport is opened; strings must outlive the engine.
	 * Gets configure_arg. */
	void (*configure_transport)(const char *name, struct transport_opts *o,
				    void *arg);
};

/*
 * New engine over store st and the host tree at root_fd (both borrowed:
 * they must outlive the engine). cfg is copied; NULL = defaults.
 */
int sync_engine_new(struct store *st, int root_fd,
		    const struct sync_engine_config *cfg,
		    struct sync_engine **out);
/* Stop the background thread, wait for running work, close transports. */
void sync_engine_free(struct sync_engine *e);	/* NULL ok */

/* Per-call options of sync_engine_run() (every member optional). */
struct sync_engine_call {
	/* Non-zero stops this call's work (-EINTR; nothing committed). When
	 * set, it replaces the engine's own stop flag for this call. */
	const volatile int *cancel;
	/* Push progress of sandbox `name` (pushing threads, concurrently). */
	void (*progress)(const char *name, const struct sync_push_progress *p,
			 void *arg);
	/* After each push / pull this call ran, with its stats (worker
	 * threads; pushes of different sandboxes concurrently). error is the
	 * pull's one-line reason ("" on success). */
	void (*on_push)(const char *name, int rc, const struct sync_push_stats *s,
			void *arg);
	void (*on_pull)(const char *name, int rc, const struct sync_pull_stats *s,
			const char *error, void *arg);
	void *arg;
	/* Pull progress of sandbox `name` (the pulling thread; pulls run one
	 * at a time). */
	void (*pull_progress)(const char *name, const struct sync_pull_progress *p,
			      void *arg);
};

enum sync_engine_op {
	SYNC_ENGINE_PUSH,
	SYNC_ENGINE_PULL,
	SYNC_ENGINE_FLUSH,	/* push, pull, then push what the pull kept */
};

/* Run op on sandbox `name` or on all (NULL): pushes in parallel on the
 * pool, pulls one after another. call may be NULL. Returns the first
 * error (-ENOENT: no such sandbox). */
int sync_engine_run(struct sync_engine *e, enum sync_engine_op op,
		    const char *name, const struct sync_engine_call *call);
/* Make the background thread look at every sandbox now (one was added). */
void sync_engine_kick(struct sync_engine *e);

/* Push sandbox `name`, or all of them in parallel (NULL). Uses the
 * configured retries/backoff. Returns the first error. */
int sync_engine_push(struct sync_engine *e, const char *name);
/* Pull (sync-back) sandbox `name`, or all of them one after another. */
int sync_engine_pull(struct sync_engine *e, const char *name);
/* The teardown call: push, then pull, of `name` or all, then push again
 * what the pull kept from the host. What the pull journaled reaches the
 * OTHER sandboxes through the background thread or their next push. The
 * pull runs even when the push failed (nothing the sandbox holds is left
 * behind at teardown). Returns the first error. */
int sync_engine_flush(struct sync_engine *e, const char *name);
/* Before a remote command on `name`: push if and only if the journal head
 * is past its cursor (O(1) when nothing is pending). */
int sync_engine_push_if_needed(struct sync_engine *e, const char *name);

/* Background thread: polls the durable journal head every poll_ms and
 * pushes to every sandbox that is behind, one attempt at a time, backing
 * off per sandbox after errors with that sandbox's push schedule (after
 * configure): its backoff_list (last value repeating), else backoff_ms
 * doubling; at most max_backoff_ms. Prunes the journal below the lowest
 * cursor. */
int sync_engine_start_background(struct sync_engine *e);
/* Stop it (cancels a running background push) and wait. Idempotent. */
void sync_engine_stop(struct sync_engine *e);
/* Stop it after the work in progress, for a clean shutdown: a running
 * background push finishes its transaction (commits, or fails as it
 * would have), no new one starts. Returns 0 once it is done, or
 * -ETIMEDOUT if it still runs after grace_ms: it is then cancelled (rolled
 * back, nothing half-applied) and sync_engine_stop()/free() wait for it.
 * Explicit sync_engine_run() calls are not affected. */
int sync_engine_drain(struct sync_engine *e, int grace_ms);
/* Is any sandbox pushing or pulling right now? (for shutdown logs) */
bool sync_engine_busy(struct sync_engine *e);

enum sync_sandbox_state {
	SYNC_SB_IDLE = 0,
	SYNC_SB_PUSHING,
	SYNC_SB_PULLING,
	SYNC_SB_ERROR,		/* the last push or pull failed: see last_error */
};
/* "idle", "pushing", "pulling", "error". */
const char *sync_sandbox_state_name(enum sync_sandbox_state s);

struct sync_sandbox_status {
	char *name, *url;
	int64_t id;
	enum sync_sandbox_state state;
	char *last_error;		/* "" when the last operation succeeded */
	int64_t cursor;
	int64_t pending;		/* durable journal entries after the cursor */
	int64_t last_push_ns;		/* wall clock at the end; 0 = never */
	int64_t last_push_dur_ns;
	int64_t last_pull_ns, last_pull_dur_ns;
	struct sync_push_progress progress;	/* while pushing, or pulling
						 * (the fetch's counts; path NULL) */
	struct sync_push_stats last_push;	/* of the last push that ran */
	int64_t last_pull_applied, last_pull_conflicts, last_pull_refused;
	int64_t next_retry_ns;		/* background retry time; 0 = none */
};

/* Snapshot of every sandbox (ordered by name). Never waits for a push. */
int sync_engine_status(struct sync_engine *e,
		       struct sync_sandbox_status **out, size_t *n);
void sync_engine_status_free(struct sync_sandbox_status *v, size_t n);
/* Copy the last error of `name` (NULL: the first sandbox in error) into
 * buf; "" when none. Returns 0 or -ENOENT. */
int sync_engine_error(struct sync_engine *e, const char *name, char *buf,
		      size_t len);

#endif /* HERMES_SYNC_H */
