/*
 * daemon_sync_int.h — private to the daemon's sync files (daemon_sync.c,
 * daemon_engine.c, daemon_status.c). See daemon_sync.c for the locking.
 */
#ifndef HERMES_FS_DAEMON_SYNC_INT_H
#define HERMES_FS_DAEMON_SYNC_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/daemon_int.h"
#include "store/store.h"
#include "sync/sync.h"

struct ctl_req;
struct ignore;

/* Runtime state of one sandbox. Never freed before the engine stops, so
 * pointers stay valid; `removed` hides it from lookups. */
struct dsb {
	struct dsb *next;		/* eng->lock */
	int64_t id;
	char *name, *url;
	struct ignore *ignore;		/* config patterns: never pushed */
	bool auto_push;			/* pushed by the background thread */
	pthread_mutex_t op;		/* one push or pull at a time */
	struct transport *t;		/* op; NULL until connected */
	volatile int cancel;		/* background work on it stops (rm, exit) */
	/* eng->lock: */
	bool removed;
	bool busy;			/* a background push is scheduled */
	const char *state;		/* idle, pushing, pulling, error */
	char last_error[320];
	int64_t last_push_ns, last_push_dur_ns;
	int64_t last_pull_ns, last_pull_dur_ns;
	int64_t retry_after_ns;		/* background: wait after an error */
	struct sync_push_progress progress;	/* while pushing */
};

struct daemon_engine {
	pthread_mutex_t lock;		/* list and status fields */
	pthread_cond_t kick;		/* lock; wakes the background pusher */
	pthread_mutex_t pull_lock;	/* pulls write the host tree: one at a time */
	struct dsb *list;		/* lock */
	pthread_t bg;
	bool bg_running;
	volatile int stop;		/* set once at shutdown; cancels work */
	int parallel;			/* sandboxes pushed at once */
};

int dsb_get(struct daemon *d, const char *name, struct dsb **out);
void dsb_free(struct dsb *sb);
void dsb_set_state(struct daemon *d, struct dsb *sb, const char *state,
		   const char *err);

/* Push / pull one sandbox now (blocking, retries included). req (may be
 * NULL for the background) receives progress and report lines and can
 * cancel. */
int dsb_push(struct daemon *d, struct dsb *sb, struct ctl_req *req,
	     struct sync_push_stats *stats);
int dsb_pull(struct daemon *d, struct dsb *sb, struct ctl_req *req,
	     struct sync_pull_stats *stats);

/* Progress display for a push on the client's terminal (daemon_status.c). */
struct progress;
struct progress *progress_new(int fd, const char *what, const char *name);
void progress_update(const struct sync_push_progress *p, void *arg);
void progress_free(struct progress *pg);

#endif
