/*
 * exec.h — spawn-per-call command execution on a transport.
 *
 * A session keeps, on the sandbox, a private directory (mktemp -d, 0700)
 * holding a snapshot of a login shell (files 0600, the first written to a
 * mktemp name and renamed): exported variables, functions and aliases,
 * plus `shopt -s expand_aliases`, `set +e`, `set +u`. Every command is a
 * fresh `bash -c` that cds to the tracked cwd (exit 126 with a message if
 * it is gone; the session then goes back to its initial cwd), clears the
 * inherited environment, sources the snapshot and evals the command under
 * an EXIT trap that saves exported variables, functions and aliases back
 * (to the other of two snapshot generations, adopted only once complete)
 * and reports the cwd. The command runs in its own process group: bash
 * itself where it leads one (local:, ssh://), else a `set -m` subshell
 * (cmd:). Its pgid comes back in a P marker before it can print anything,
 * status/cwd in an E marker; markers carry a per-session random nonce and
 * are removed from the output; output imitating one (without the nonce)
 * is returned unchanged and never moves the cwd. On timeout or interrupt
 * the group gets TERM, then KILL, and is checked gone: with kill(2) for
 * local:, through a second transport call for ssh:// and cmd:.
 *
 * Warm spare (local: and ssh://, once a snapshot exists; off with
 * exec_config.no_spare): after a call (and at session start) a session
 * thread starts the NEXT call's bash ahead of time (for ssh: opens the
 * channel and execs it), with the inherited environment already cleared,
 * waiting in / on its stdin. A call then only sends its state (command,
 * cwd, snapshot generation) and EOF; the spare reads all of it before
 * running any, so the snapshot, cwd and environment are read at run time,
 * never at spawn time, and each command is still its own fresh bash that
 * exits with it. A spare that gets EOF without a complete state exits
 * having run nothing (how it is ended at session close); one that died
 * idle is replaced by a fresh start within the same call. Calls with
 * stdin bytes start fresh (a spare's stdin carries the state).
 * Trade-off: one idle bash per session (for ssh also an idle channel and
 * sshd session process on the sandbox) for as long as the session lives,
 * and the CPU of starting it spent between calls rather than in them;
 * back-to-back calls gain little (the next spare is still starting), calls
 * an agent's think time apart skip the whole spawn. $SECONDS is reset when
 * the call starts; the process start time is the spare's.
 *
 * Known limits: a command that replaces the shell (`exec prog`) or that
 * installs its own EXIT trap keeps the previous cwd and environment (its
 * exit status is still right). A command string must fit in one argument
 * (at most 120 KiB: -E2BIG). `set -u` failures exit 127 in the flat shape
 * (as `bash -c` does) and 1 in the nested one. Processes a command leaves in the background
 * keep running; the call returns shortly after the command itself ends.
 *
 * Depends on sync/ transports only (never on the push engine: the caller
 * supplies before_run). Functions return 0 or a negative errno.
 */
#ifndef HERMES_EXEC_H
#define HERMES_EXEC_H

#include <stdbool.h>
#include <stddef.h>

struct transport;
struct exec_session;

#define EXEC_OUTPUT_CAP_DEFAULT (1u << 20)
#define EXEC_STATUS_CWD_GONE 126
#define EXEC_STATUS_TIMEOUT 124
#define EXEC_STATUS_INTERRUPT 130

struct exec_config {
	struct transport *t;	/* borrowed; must outlive the session */
	const char *cwd;	/* initial cwd; NULL = transport_root(t) */
	/* Called before each command (the daemon pushes when the journal head
	 * is past the sandbox cursor). A negative return aborts that run. */
	int (*before_run)(void *arg);
	void *arg;
	size_t output_cap;	/* per buffer; 0 = EXEC_OUTPUT_CAP_DEFAULT. Over
				 * the cap the head and tail are kept around a
				 * "[hermes: N bytes of output omitted]" notice. */
	int snapshot_timeout_s;	/* login shell snapshot; 0 = 15 s */
	bool no_spare;		/* never start a command ahead of time (above) */
};

/* Start a session: create the private directory on the sandbox and take
 * the login-shell snapshot. A failed snapshot is not an error: commands
 * then run under `bash -l` until a command saves a snapshot
 * (see exec_session_snapshot_ok). Fails only when the sandbox cannot
 * run anything or has no writable temporary directory (exec_new_error()
 * says why). */
int exec_session_new(const struct exec_config *cfg, struct exec_session **out);
/* Why the last exec_session_new() of this thread failed ("" if it did not). */
const char *exec_new_error(void);
/* Remove the private directory on the sandbox (best effort) and free.
 * No exec_run may be in progress. NULL ok. */
void exec_session_free(struct exec_session *s);

struct exec_request {
	const char *command;		/* bash source, run as by `bash -c` */
	const void *stdin_buf;		/* bytes for the command's stdin; NULL = */
	size_t stdin_len;		/* empty stdin (EOF at once) */
	int timeout_s;			/* <= 0: none */
	const char *cwd_override;	/* run there (relative: to the tracked cwd);
					 * the tracked cwd is not changed by
					 * this call. NULL = tracked cwd */
	bool separate_streams;		/* also fill out/err */
	const volatile int *cancel;	/* polled; non-zero interrupts (130) */
};

struct exec_result {
	int status;		/* exit code, 128+signal, 124 timeout, 130 interrupt,
				 * 126 working directory gone */
	char *output;		/* stdout and stderr interleaved as they came;
				 * NUL-terminated for convenience, binary-safe */
	size_t output_len;
	char *out, *err;	/* only with separate_streams (else NULL) */
	size_t out_len, err_len;
	bool truncated;		/* some buffer hit output_cap */
	bool timed_out;
	bool interrupted;
	bool cwd_reset;		/* tracked cwd was gone: back to the initial one */
	bool killed_verified;	/* timeout/interrupt: the process group was seen
				 * gone after the kill */
	bool spare;		/* it ran on a spare started ahead of time */
};

/*
 * Run one command in the session (calls are serialized per session).
 * Returns 0 once the command was started and its result collected (status
 * in res, including timeouts and interrupts), or a negative errno when it
 * could not run (before_run failed, transport error); then res is empty
 * and exec_session_error() says why. Release res with exec_result_release.
 */
int exec_run(struct exec_session *s, const struct exec_request *req,
	     struct exec_result *res);
void exec_result_release(struct exec_result *res);	/* NULL ok */

/* Interrupt the command running in this session, if any (its result gets
 * status 130). Async-signal-safe: may be called from a signal handler. */
void exec_cancel(struct exec_session *s);

/* The tracked cwd (malloc'd copy; NULL on ENOMEM). */
char *exec_session_cwd(struct exec_session *s);
/* Whether commands source a snapshot (false: `bash -l` fallback). */
bool exec_session_snapshot_ok(struct exec_session *s);
/* One line about the last failure of this session ("" if none). */
const char *exec_session_error(struct exec_session *s);

#endif /* HERMES_EXEC_H */
