/*
 * store_journal.c — the append-only journal with group commit.
 *
 * Appenders (FUSE threads) only queue: they never touch SQLite, so a write(2)
 * through the mount never waits on disk. One committer thread drains the
 * whole queue into a single transaction per round.
 *
 * Committed is not synced. A round commits at synchronous=NORMAL: the WAL
 * frames reach the OS (a crash of this process loses nothing, readers see
 * the entries) but nothing is fsync'ed. Only when a durability waiter
 * (fsync(2) through the mount, a clean unmount) wants a committed seq does
 * the committer fdatasync the WAL, once for every waiter of that round.
 * One sync covers every frame written before it, and SQLite's WAL
 * recovery keeps a prefix of the commits (each frame's checksum chains
 * over all earlier ones), so after a power loss the journal holds every
 * synced entry, every write outside the journal (those stay FULL: see
 * batch_write) and possibly some later entries — never a gap.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"

static const char *const op_names[] = {
	[STORE_OP_CREATE] = "create", [STORE_OP_WRITE] = "write",
	[STORE_OP_TRUNCATE] = "truncate", [STORE_OP_UNLINK] = "unlink",
	[STORE_OP_RENAME] = "rename", [STORE_OP_MKDIR] = "mkdir",
	[STORE_OP_RMDIR] = "rmdir", [STORE_OP_SYMLINK] = "symlink",
	[STORE_OP_LINK] = "link", [STORE_OP_CHMOD] = "chmod",
	[STORE_OP_CHOWN] = "chown", [STORE_OP_UTIMENS] = "utimens",
	[STORE_OP_XATTR] = "xattr", [STORE_OP_EXCHANGE] = "exchange",
	[STORE_OP_RESCAN] = "rescan",
};
#define N_OPS ((int)(sizeof(op_names) / sizeof(op_names[0])))

const char *store_op_name(int op)
{
	return op > 0 && op < N_OPS && op_names[op] ? op_names[op] : "unknown";
}

int store_op_from_name(const char *name)
{
	int i;

	for (i = 1; i < N_OPS; i++)
		if (op_names[i] && strcmp(op_names[i], name) == 0)
			return i;
	return 0;
}

/* A round without waiters waits this long for more entries, or until
 * this many are queued: see gather(). */
#define GATHER_NS (20 * 1000 * 1000)
#define GATHER_MAX 4096

static void qent_release(struct store_qent *q)
{
	free((char *)q->e.path);
	free((char *)q->e.path2);
}

int store_journal_append(struct store *st, const struct store_entry *e,
			 int64_t *seq_out)
{
	struct store_qent q = { .e = *e };
	struct store_qent *nq;

	if (e->path == NULL || e->op <= 0 || e->op >= N_OPS)
		return -EINVAL;
	q.e.path = strdup(e->path);
	q.e.path2 = e->path2 ? strdup(e->path2) : NULL;
	if (q.e.path == NULL || (e->path2 && q.e.path2 == NULL)) {
		qent_release(&q);
		return -ENOMEM;
	}
	if (q.e.time_ns == 0)
		q.e.time_ns = store_now_ns();
	pthread_mutex_lock(&st->qlock);
	if (st->qlen == st->qcap) {
		size_t ncap = st->qcap ? st->qcap * 2 : 256;

		if ((nq = realloc(st->q, ncap * sizeof(*nq))) == NULL) {
			pthread_mutex_unlock(&st->qlock);
			qent_release(&q);
			return -ENOMEM;
		}
		st->q = nq;
		st->qcap = ncap;
	}
	q.e.seq = st->head + 1;
	__atomic_store_n(&st->head, q.e.seq, __ATOMIC_RELEASE);
	st->q[st->qlen++] = q;
	/* Else the committer is busy or gathering: see gather(). */
	if (st->qlen == 1 || st->qlen == GATHER_MAX)
		pthread_cond_signal(&st->qcond);
	pthread_mutex_unlock(&st->qlock);
	if (seq_out)
		*seq_out = q.e.seq;
	return 0;
}

/* Journal rounds only skip the fsync: every other write (ledger + cursor
 * after a push, the clean flag, sandboxes, the snapshot) keeps
 * synchronous=FULL, so its callers keep "committed = durable", and such a
 * commit also syncs every journal frame before it. The setting cannot
 * change inside a transaction, hence outside BEGIN..COMMIT, under the lock
 * every other writer takes too. */
static int batch_write(struct store *st, struct store_qent *b, size_t n)
{
	sqlite3_stmt *ins = NULL;
	int r = -EIO;
	size_t i;

	store_lock(st);
	if (sqlite3_exec(st->db, "PRAGMA synchronous=NORMAL", NULL, NULL,
	    NULL) != SQLITE_OK)
		goto out_unlock;
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto out_full;
	if (store_prepare(st, "INSERT INTO journal(seq,op,path,path2,mode,"
	    "time_ns,origin) VALUES(?,?,?,?,?,?,?)", &ins) < 0)
		goto out;
	for (i = 0; i < n; i++) {
		const struct store_entry *e = &b[i].e;

		sqlite3_bind_int64(ins, 1, e->seq);
		sqlite3_bind_int(ins, 2, e->op);
		sqlite3_bind_text(ins, 3, e->path, -1, SQLITE_STATIC);
		if (e->path2)
			sqlite3_bind_text(ins, 4, e->path2, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(ins, 4);
		sqlite3_bind_int64(ins, 5, e->mode);
		sqlite3_bind_int64(ins, 6, e->time_ns);
		sqlite3_bind_int64(ins, 7, e->origin);
		if (sqlite3_step(ins) != SQLITE_DONE)
			goto out;
		sqlite3_reset(ins);
	}
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		r = 0;
 out:
	if (r < 0)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(ins);
 out_full:
	/* Setting a pager flag outside a transaction does not fail; and the
	 * batch is committed, so it must not be requeued whatever this says. */
	sqlite3_exec(st->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
 out_unlock:
	store_unlock(st);
	return r;
}

/*
 * fdatasync the WAL through SQLite's own handle for it (the pager's journal
 * file is the WAL in WAL mode), with the flags SQLite itself uses when a
 * FULL commit syncs the WAL: the VFS also syncs the directory after the
 * WAL was created. Cheaper than a dummy FULL transaction (no frame to
 * write) and works when there is nothing left to commit.
 */
static int wal_sync(struct store *st)
{
	sqlite3_file *f = NULL;
	int r = -EIO;

	store_lock(st);
	if (sqlite3_file_control(st->db, "main", SQLITE_FCNTL_JOURNAL_POINTER,
	    &f) == SQLITE_OK && f && f->pMethods &&
	    f->pMethods->xSync(f, SQLITE_SYNC_NORMAL) == SQLITE_OK)
		r = 0;
	store_unlock(st);
	return r;
}

/* Put a failed batch back in front of anything queued since. */
static void batch_requeue(struct store *st, struct store_qent *b, size_t n)
{
	struct store_qent *nq;

	nq = malloc((n + st->qlen + 1) * sizeof(*nq));
	if (nq == NULL)
		abort();	/* cannot keep the promise of no lost entry */
	memcpy(nq, b, n * sizeof(*nq));
	memcpy(nq + n, st->q, st->qlen * sizeof(*nq));
	free(st->q);
	free(b);
	st->q = nq;
	st->qlen += n;
	st->qcap = st->qlen + 1;
}

/* Tests: HERMES_FAULT_COMMIT_DELAY_MS=N holds every batch N ms before it
 * is written (queued entries stay uncommitted that long). */
static void commit_delay(void)
{
	const char *s = getenv("HERMES_FAULT_COMMIT_DELAY_MS");

	if (s && atoi(s) > 0)
		nanosleep(&(struct timespec){ atoi(s) / 1000,
					      (atoi(s) % 1000) * 1000000L }, NULL);
}

/* qlock held. A sync is due once the highest seq a waiter wants is
 * committed (if it is still queued, the next round commits it first and
 * one sync serves both). */
static bool sync_due(const struct store *st)
{
	return st->sync_err == 0 && st->sync_want > st->synced &&
	    st->sync_want <= st->committed;
}

/* qlock held; drops it around the write. false: the batch failed. */
static bool commit_round(struct store *st)
{
	struct store_qent *b = st->q;
	size_t n = st->qlen, i;
	int r;

	st->q = NULL;
	st->qlen = st->qcap = 0;
	pthread_mutex_unlock(&st->qlock);
	commit_delay();
	r = batch_write(st, b, n);
	pthread_mutex_lock(&st->qlock);
	st->commit_err = r;
	if (r < 0) {
		batch_requeue(st, b, n);
		pthread_cond_broadcast(&st->dcond);
		return false;
	}
	st->n_commits++;
	__atomic_store_n(&st->committed, b[n - 1].e.seq, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&st->dcond);
	for (i = 0; i < n; i++)
		qent_release(&b[i]);
	free(b);
	return true;
}

/* qlock held; drops it around the sync. A failed fdatasync may have
 * dropped the dirty pages it could not write (a later one then succeeds
 * without them), so the error sticks: no durability is promised again on
 * this store, and the clean flag is never set, so the next mount rescans. */
static void sync_round(struct store *st)
{
	int64_t upto = st->committed;	/* every frame up to it is written */
	int r;

	pthread_mutex_unlock(&st->qlock);
	r = wal_sync(st);
	pthread_mutex_lock(&st->qlock);
	if (r < 0) {
		st->sync_err = r;
	} else {
		st->n_syncs++;
		if (upto > st->synced)
			__atomic_store_n(&st->synced, upto, __ATOMIC_RELEASE);
	}
	pthread_cond_broadcast(&st->dcond);
}

/* qlock held. Without anyone waiting, let a round collect what arrives in
 * the next GATHER_NS: a mount's requests come one by one, and each round
 * writes at least one WAL frame (4 KiB) per page it touches, later copied
 * by a checkpoint that syncs them; rounds of one entry cost ~3 frames per
 * entry. Any waiter (fsync(2), a push, a log) cuts the wait short.
 * 20 ms, not 2: each round's transaction (BEGIN, the pragmas, COMMIT, the
 * WAL index) cost more than its inserts, and that CPU is taken from the
 * request threads on a small machine (bench_fs, create+stat+delete of
 * 10,000 files on 2 cores: journaling cost 12-49% with 2 ms, 0-6% with
 * 20 ms; committer CPU 0.6 s -> 0.2 s per 20,000 files). A kill -9 loses
 * at most the last 20 ms of entries instead of 2: the rescan at the next
 * mount finds what they described, as before. */
static void gather(struct store *st)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += GATHER_NS;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	while (st->qlen > 0 && st->qlen < GATHER_MAX && st->waiters == 0 &&
	    !st->stopping)
		if (pthread_cond_timedwait(&st->qcond, &st->qlock, &ts) == ETIMEDOUT)
			break;
}

static void *committer_main(void *arg)
{
	struct store *st = arg;

	pthread_mutex_lock(&st->qlock);
	for (;;) {
		while (st->qlen == 0 && !sync_due(st) && !st->stopping)
			pthread_cond_wait(&st->qcond, &st->qlock);
		/* Closing leaves everything committed synced, as when every
		 * round was a FULL commit (SQLite's own checkpoint at close
		 * does not when another connection has the file open). */
		if (st->stopping && st->sync_want < st->committed)
			st->sync_want = st->committed;
		gather(st);
		if (st->qlen > 0 && !commit_round(st)) {
			/* Waiters on entries already committed still get
			 * their sync; the others get commit_err. */
			if (st->sync_err == 0 && st->sync_want > st->synced &&
			    st->committed > st->synced)
				sync_round(st);
			if (st->stopping)
				break;	/* give up: entries stay unwritten */
			pthread_mutex_unlock(&st->qlock);
			nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
			pthread_mutex_lock(&st->qlock);
			continue;
		}
		if (sync_due(st))
			sync_round(st);
		else if (st->stopping && st->qlen == 0)
			break;
	}
	pthread_mutex_unlock(&st->qlock);
	return NULL;
}

static int head_load(struct store *st, int64_t *head)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO;

	store_lock(st);
	if (store_prepare(st, "SELECT max(coalesce((SELECT CAST(value AS INTEGER)"
	    " FROM meta WHERE key='head'),0), coalesce((SELECT max(seq) FROM"
	    " journal),0))", &s) < 0)
		goto out;
	if (sqlite3_step(s) != SQLITE_ROW)
		goto out;
	*head = sqlite3_column_int64(s, 0);
	r = 0;
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_journal_start(struct store *st)
{
	int r;

	pthread_mutex_init(&st->qlock, NULL);
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&st->qcond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&st->dcond, NULL);
	if ((r = head_load(st, &st->head)) < 0)
		return r;
	/* A previous run killed before its sync may have left frames that are
	 * in the page cache only: nothing counts as synced before our first
	 * sync (or a FULL commit, e.g. the clean flag, which syncs them). */
	st->committed = st->head;
	st->synced = 0;
	if (pthread_create(&st->committer, NULL, committer_main, st) != 0)
		return -EAGAIN;
	st->committer_running = true;
	return 0;
}

void store_journal_stop(struct store *st)
{
	size_t i;

	if (st->committer_running) {
		pthread_mutex_lock(&st->qlock);
		st->stopping = true;
		pthread_cond_signal(&st->qcond);
		pthread_mutex_unlock(&st->qlock);
		pthread_join(st->committer, NULL);
		st->committer_running = false;
	}
	for (i = 0; i < st->qlen; i++)
		qent_release(&st->q[i]);
	free(st->q);
	st->q = NULL;
	st->qlen = 0;
	pthread_cond_destroy(&st->qcond);
	pthread_cond_destroy(&st->dcond);
	pthread_mutex_destroy(&st->qlock);
}

/* Everything up to `seq`, clamped to the head (a seq never assigned would
 * never come), committed or also synced. */
static int journal_wait(struct store *st, int64_t seq, bool durable)
{
	int64_t *upto = durable ? &st->synced : &st->committed;
	int r = 0;

	if (seq > store_journal_head(st))
		seq = store_journal_head(st);
	pthread_mutex_lock(&st->qlock);
	st->waiters++;
	while (*upto < seq) {
		if (st->commit_err < 0 && st->committed < seq) {
			r = st->commit_err;
			break;
		}
		if (durable && st->sync_err < 0) {
			r = st->sync_err;
			break;
		}
		if (durable && st->sync_want < seq)
			st->sync_want = seq;
		pthread_cond_signal(&st->qcond);	/* idle or gathering */
		pthread_cond_wait(&st->dcond, &st->qlock);
	}
	st->waiters--;
	pthread_mutex_unlock(&st->qlock);
	return r;
}

int store_journal_wait(struct store *st, int64_t seq)
{
	return journal_wait(st, seq, true);
}

int store_journal_sync(struct store *st)
{
	return journal_wait(st, store_journal_head(st), true);
}

int store_journal_wait_committed(struct store *st, int64_t seq)
{
	return journal_wait(st, seq, false);
}

int store_journal_flush(struct store *st)
{
	return journal_wait(st, store_journal_head(st), false);
}

int64_t store_journal_head(struct store *st)
{
	return __atomic_load_n(&st->head, __ATOMIC_ACQUIRE);
}

int64_t store_journal_committed(struct store *st)
{
	return __atomic_load_n(&st->committed, __ATOMIC_ACQUIRE);
}

int64_t store_journal_synced(struct store *st)
{
	return __atomic_load_n(&st->synced, __ATOMIC_ACQUIRE);
}

int64_t store_journal_durable(struct store *st)
{
	return store_journal_committed(st);
}

void store_journal_stats(struct store *st, struct store_journal_stats *out)
{
	pthread_mutex_lock(&st->qlock);
	out->commits = st->n_commits;
	out->syncs = st->n_syncs;
	pthread_mutex_unlock(&st->qlock);
	out->committed = store_journal_committed(st);
	out->synced = store_journal_synced(st);
}
