/*
 * exec_int.h — private to exec/: bounded output buffers, the marker
 * filter and the shell scripts a session sends to the sandbox.
 */
#ifndef HERMES_EXEC_INT_H
#define HERMES_EXEC_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "exec/exec.h"

/* ---- bounded output (exec_out.c) ---- */

/* Keeps the first cap/2 bytes and a ring of the last cap - cap/2. */
struct capbuf {
	size_t cap, hcap, tcap;
	char *head;
	size_t head_len;
	char *tail;		/* ring of tcap bytes */
	size_t tail_pos, tail_len;
	uint64_t total;
};
int capbuf_init(struct capbuf *b, size_t cap);
int capbuf_add(struct capbuf *b, const void *p, size_t n);
/* Contiguous copy (NUL-terminated), with the omission notice when over cap. */
int capbuf_take(struct capbuf *b, char **out, size_t *len, bool *truncated);
void capbuf_release(struct capbuf *b);

/*
 * Markers on stdout: "\036HERMES:" NONCE ":" TYPE LEN ":" PAYLOAD, where
 * LEN is the decimal byte length of PAYLOAD. Everything else passes
 * through. A marker that matches the nonce but is malformed is dropped.
 */
#define EXEC_NONCE_HEX 32
#define EXEC_MARKER_MAX 65536
struct mfilter {
	char pat[64];
	size_t patlen, m;	/* bytes of pat matched so far */
	int state;		/* 0 text, 1 type, 2 length, 3 payload */
	char type;
	size_t len, got;
	char *payload;		/* EXEC_MARKER_MAX + 1 */
	void (*on_text)(void *arg, const char *p, size_t n);
	void (*on_marker)(void *arg, char type, const char *p, size_t n);
	void *arg;
};
int mfilter_init(struct mfilter *f, const char *nonce);
void mfilter_feed(struct mfilter *f, const char *p, size_t n);
/* End of stream: a partial match is text after all. */
void mfilter_flush(struct mfilter *f);
void mfilter_release(struct mfilter *f);

/* ---- scripts (exec_script.c); all malloc'd ---- */

struct exec_script_args {
	const char *dir;	/* private directory on the sandbox */
	const char *nonce;
	int cur, next;		/* snapshot generations: source cur, save next */
	bool snapshot;		/* false: fallback to `bash -l`, no source */
	bool flat;		/* bash leads its own process group (local, ssh) */
	bool env_cleared;	/* a spare: inherited environment cleared at boot */
	const char *cwd, *initial_cwd, *override;
	const char *command;
};
/* `sh -c` script for one command (a fresh bash -c). */
char *exec_script_run(const struct exec_script_args *a);
/* `sh -c` script starting a spare (see exec_spare.c): it prints an R
 * marker once ready, then waits for exec_script_blob() on its stdin
 * (up to EOF). Only the session's constant fields of a are used. */
char *exec_script_spare(const struct exec_script_args *a);
/* What a spare is sent for one call: the call's state as assignments. */
char *exec_script_blob(const struct exec_script_args *a);
/* `sh -c` script creating the directory and the login-shell snapshot:
 * prints the directory on its first line, then "ok" or "fallback". */
char *exec_script_start(void);
/* `sh -c` script killing remote group pgid (TERM, then KILL) and the outer
 * shell `outer`; exit 0 once no live member of the group is left. */
char *exec_script_kill(long pgid, long outer);
/* Name of snapshot generation g inside dir ("snap.0", "snap.1"). */
#define EXEC_SNAP_FMT "%s/snap.%d"

/* ---- the session (exec.c) ---- */

struct transport;

struct exec_session {
	struct transport *t;
	int (*before_run)(void *arg);
	void *arg;
	size_t cap;
	int snap_timeout_ms;
	bool local;			/* pids are ours: kill directly */
	bool flat;			/* see exec_script.c */
	bool ssh;
	pthread_mutex_t run_lock;	/* one exec_run at a time */
	pthread_mutex_t lock;		/* the fields below */
	char *dir;			/* NULL: no private dir (degraded) */
	char *cwd, *initial_cwd;
	char nonce[EXEC_NONCE_HEX + 1];
	int gen;			/* current snapshot generation */
	bool snapshot;
	char err[512];
	volatile sig_atomic_t cancel;
	volatile sig_atomic_t running;
	struct exec_spare *spare;	/* NULL: spares off (exec_spare.c) */
};

/* ---- spares (exec_spare.c) ---- */

/* Start the spare machinery (a thread that keeps one spare ready) and ask
 * for the first spare. Not an error to skip: the session then always
 * spawns fresh. */
int exec_spare_start(struct exec_session *s);
/* Stop the thread and end the spare, if any (closing its stdin: it exits
 * having run nothing; then it is killed and reaped). NULL-safe. */
void exec_spare_stop(struct exec_session *s);
/* A ready spare for this request, or NULL (none ready, disabled, stdin
 * bytes given, no snapshot). Waits for a spare being started. */
struct transport_proc *exec_spare_take(struct exec_session *s,
				       const struct exec_request *req);
/* Ask for the next spare (started off the caller's path). */
void exec_spare_refill(struct exec_session *s);
/* A taken spare failed before running anything: count it (spares are
 * turned off after several failures in a row). */
void exec_spare_failed(struct exec_session *s);

void exec_set_error(struct exec_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int64_t exec_mono_ms(void);
/* Close p's stdin and read (discarding) until EOF or timeout_ms: 0 at EOF,
 * else the last read's negative errno (-ETIMEDOUT). */
int exec_proc_drain(struct transport_proc *p, int timeout_ms);

#endif /* HERMES_EXEC_INT_H */
