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
/* (owned by the push work: journal replay against the ledger) */

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

struct sync_pull_config {
	enum sync_conflict_policy policy;
	int64_t max_total_bytes;	/* fetched content; 0 = default */
	int64_t max_files;		/* listed entries; 0 = default */
	int64_t max_file_size;		/* one file; 0 = default */
	int retries;			/* after a transport failure; 0 = 3, <0 = none */
	int backoff_ms;			/* first retry delay, doubling; 0 = 2000 */
	bool portable_listing;		/* force the sh+stat listing (tests) */
	/* Called after each change to a host path (FUSE cache invalidation). */
	void (*invalidate)(const char *relpath, void *arg);
	void *invalidate_arg;
	/* Polled while fetching: non-zero stops the pull before anything is
	 * applied (-EINTR). Once applying has started the pull finishes. */
	const volatile int *cancel;
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

#endif /* HERMES_SYNC_H */
