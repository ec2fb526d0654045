/*
 * store_journal.c — the append-only journal with group commit.
 *
 * Appenders (FUSE threads) only queue: they never touch SQLite, so a write(2)
 * through the mount never waits on disk. One committer thread drains the
 * whole queue into a single transaction per round, so N concurrent appends
 * cost one fsync, and fsync(2) callers wait for their seq only.
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
	pthread_cond_signal(&st->qcond);
	pthread_mutex_unlock(&st->qlock);
	if (seq_out)
		*seq_out = q.e.seq;
	return 0;
}

static int batch_write(struct store *st, struct store_qent *b, size_t n)
{
	sqlite3_stmt *ins = NULL, *meta = NULL;
	int r = -EIO;
	size_t i;

	store_lock(st);
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto out_unlock;
	if (store_prepare(st, "INSERT INTO journal(seq,op,path,path2,mode,"
	    "time_ns,origin) VALUES(?,?,?,?,?,?,?)", &ins) < 0 ||
	    store_prepare(st, "INSERT OR REPLACE INTO meta VALUES('head',?)",
	    &meta) < 0)
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
	sqlite3_bind_int64(meta, 1, b[n - 1].e.seq);
	if (sqlite3_step(meta) != SQLITE_DONE)
		goto out;
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		r = 0;
 out:
	if (r < 0)
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_finalize(ins);
	sqlite3_finalize(meta);
 out_unlock:
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
 * is written (queued entries stay not durable that long). */
static void commit_delay(void)
{
	const char *s = getenv("HERMES_FAULT_COMMIT_DELAY_MS");

	if (s && atoi(s) > 0)
		nanosleep(&(struct timespec){ atoi(s) / 1000,
					      (atoi(s) % 1000) * 1000000L }, NULL);
}

static void *committer_main(void *arg)
{
	struct store *st = arg;
	struct store_qent *b;
	size_t n, i;
	int r;

	pthread_mutex_lock(&st->qlock);
	for (;;) {
		while (st->qlen == 0 && !st->stopping)
			pthread_cond_wait(&st->qcond, &st->qlock);
		if (st->qlen == 0)
			break;
		b = st->q;
		n = st->qlen;
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
			if (st->stopping)
				break;	/* give up: entries stay unwritten */
			pthread_mutex_unlock(&st->qlock);
			nanosleep(&(struct timespec){ 0, 100 * 1000 * 1000 }, NULL);
			pthread_mutex_lock(&st->qlock);
			continue;
		}
		__atomic_store_n(&st->durable, b[n - 1].e.seq, __ATOMIC_RELEASE);
		pthread_cond_broadcast(&st->dcond);
		for (i = 0; i < n; i++)
			qent_release(&b[i]);
		free(b);
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
	pthread_cond_init(&st->qcond, NULL);
	pthread_cond_init(&st->dcond, NULL);
	if ((r = head_load(st, &st->head)) < 0)
		return r;
	st->durable = st->head;
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

int store_journal_wait(struct store *st, int64_t seq)
{
	int r = 0;

	pthread_mutex_lock(&st->qlock);
	while (st->durable < seq) {
		if (st->commit_err < 0) {
			r = st->commit_err;
			break;
		}
		pthread_cond_wait(&st->dcond, &st->qlock);
	}
	pthread_mutex_unlock(&st->qlock);
	return r;
}

int store_journal_sync(struct store *st)
{
	return store_journal_wait(st, store_journal_head(st));
}

int64_t store_journal_head(struct store *st)
{
	return __atomic_load_n(&st->head, __ATOMIC_ACQUIRE);
}

int64_t store_journal_durable(struct store *st)
{
	return __atomic_load_n(&st->durable, __ATOMIC_ACQUIRE);
}
