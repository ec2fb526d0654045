/*
 * daemon_int.h — private to fs/: the hermesfs daemon's services (control
 * socket handlers, sync engine, exec sessions) and its logging.
 *
 * main_hermesfs.c owns the lifetime: it fills a struct daemon, mounts, calls
 * daemon_services_start() before serving and daemon_services_stop() after
 * the mount is gone.
 */
#ifndef HERMES_FS_DAEMON_INT_H
#define HERMES_FS_DAEMON_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/log_int.h"

struct store;
struct fs;
struct config;
struct ctl_server;
struct ctl_req;
struct sync_engine;
struct sb_settings;
struct daemon_exec;

struct daemon {
	/* Set by main before daemon_services_start(); read-only after. */
	char *state_dir;	/* absolute, 0700 */
	char *mountpoint;	/* absolute */
	char *backing;		/* absolute */
	struct store *st;
	struct fs *fs;
	int root_fd;		/* backing directory (owned by fs) */
	struct config *cfg;	/* ~/.config/hermesfs/config + CLI overrides */
	/* Begin an unmount without waiting for it (fs_stop). */
	void (*request_stop)(struct daemon *d);

	/* Owned by the services. */
	struct ctl_server *ctl;
	struct sync_engine *eng;
	pthread_mutex_t settings_lock;	/* guards settings */
	struct sb_settings *settings;	/* per-sandbox config, read lazily */
	struct daemon_exec *exec;	/* exec sessions per sandbox */
};

/* Start the sync engine (background pushes) and the control socket. */
int daemon_services_start(struct daemon *d);
/* Stop accepting requests, finish the transaction in progress, stop the
 * engine. Safe to call when start failed half-way or never ran. */
void daemon_services_stop(struct daemon *d);

/* Command handlers, one per CLI verb; each writes to req->out/req->err and
 * returns the exit status for the client (CTL_EXIT_*). */
int daemon_cmd_status(struct daemon *d, struct ctl_req *req);
int daemon_cmd_sandbox(struct daemon *d, struct ctl_req *req);
int daemon_cmd_log(struct daemon *d, struct ctl_req *req);
int daemon_cmd_sync(struct daemon *d, struct ctl_req *req);
int daemon_cmd_exec(struct daemon *d, struct ctl_req *req);

/* Sync engine glue (daemon_sync.c). */
int daemon_engine_start(struct daemon *d);
void daemon_engine_stop(struct daemon *d);
/* Wake the background pusher (a sandbox was added). */
void daemon_engine_kick(struct daemon *d);
/* Drop the engine's state for a sandbox about to be removed. */
void daemon_engine_forget(struct daemon *d, const char *name);
/* The O(1) pre-command check, then a push if the journal head is past the
 * sandbox's cursor. */
int daemon_engine_push_if_needed(struct daemon *d, const char *name);
struct transport_opts;
/* SSH options of a sandbox from the config (pointers into d->cfg). */
void daemon_transport_opts(struct daemon *d, const char *name,
			   struct transport_opts *o);
/* Connect once to url; on failure print a one-line reason to errfd. */
int daemon_sandbox_probe(struct daemon *d, const char *name, const char *url,
			 int errfd);

/* Exec sessions: created lazily per sandbox, freed at stop. */
int daemon_exec_init(struct daemon *d);
void daemon_exec_release(struct daemon *d);
/* Shutdown: interrupt the commands running (their clients get 130 and a
 * line saying why) and refuse new ones. A command is not a transaction;
 * waiting for an agent's `sleep 3600` would hold the unmount hostage. */
void daemon_exec_interrupt(struct daemon *d);
/* Close the session of a sandbox about to be removed. */
void daemon_exec_forget(struct daemon *d, const char *name);

/* ---- output helpers for handlers ------------------------------------ */

/* Write s to fd as a JSON string literal (quotes and escapes). */
void json_put_str(int fd, const char *s);
/* "2026-11-23T10:54:01Z" (UTC) or "-" for 0. */
void fmt_time_ns(int64_t ns, char *buf, size_t len);

#endif
