/*
 * store_int.h — private to store/: the struct behind the opaque handle.
 */
#ifndef HERMES_STORE_INT_H
#define HERMES_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>

#include "store/store.h"

struct store_qent {
	struct store_entry e;	/* path/path2 owned (malloc'd) */
};

struct store {
	pthread_mutex_t lock;	/* recursive; guards db and in_tx */
	sqlite3 *db;		/* lock */
	bool in_tx;		/* lock */
	sqlite3_stmt *ledger_put;	/* lock: cached, hot in push commits */
	sqlite3_stmt *snap_put;		/* lock: cached, one per host file */

	pthread_mutex_t qlock;	/* guards everything below */
	pthread_cond_t qcond;	/* committer: queue non-empty, waiter or stop */
	pthread_cond_t dcond;	/* waiters: committed/synced advanced or error */
	struct store_qent *q;	/* qlock: entries not yet written */
	size_t qlen, qcap;	/* qlock */
	int64_t head;		/* qlock for writes; atomic reads */
	int64_t committed;	/* qlock for writes; atomic reads: in the WAL */
	int64_t synced;		/* qlock for writes; atomic reads: fsync'ed */
	int64_t sync_want;	/* qlock: highest seq a durability waiter wants */
	int waiters;		/* qlock: threads in a journal wait */
	int64_t n_commits;	/* qlock: journal batches committed */
	int64_t n_syncs;	/* qlock: WAL syncs done for durability waiters */
	int commit_err;		/* qlock: last batch failure, 0 once one succeeds */
	int sync_err;		/* qlock: first WAL sync failure; sticky */
	bool stopping;		/* qlock */
	bool committer_running;
	pthread_t committer;
};

void store_lock(struct store *st);
void store_unlock(struct store *st);
int store_exec(struct store *st, const char *sql);
/* Caller holds the lock. */
int store_prepare(struct store *st, const char *sql, sqlite3_stmt **out);
int store_journal_start(struct store *st);
void store_journal_stop(struct store *st);

#endif
