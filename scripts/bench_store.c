/*
 * bench_store.c — journal append throughput with group commit (8 threads)
 * against one transaction per append, and the cost of the pre-command
 * "is the journal head past this cursor" check against counting pending
 * entries. Both baselines are measured in the same run.
 *
 * Then what a mount's journal pays: appends paced like FUSE requests
 * (each after a few us of work), committed without a sync unless someone
 * waits for durability, against the same stream with a durability waiter
 * always present (every round synced: what every round cost before
 * commits stopped syncing by themselves).
 */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"

#define THREADS 8
#define PER_THREAD 5000
#define NAIVE_N 500
#define CHECKS 200000
#define PACED_THREADS 2
#define PACED_PER_THREAD 1500	/* 3,000 entries per run */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *appender(void *arg)
{
	struct store *st = arg;
	char p[32];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		struct store_entry e = { .op = STORE_OP_WRITE, .path = p };

		snprintf(p, sizeof(p), "dir/file-%d", i);
		if (store_journal_append(st, &e, NULL) != 0)
			abort();
	}
	return NULL;
}

/* Baseline: what a store without group commit pays, one durable
 * transaction per mutation. */
static double naive_rate(const char *dir)
{
	char path[256];
	sqlite3 *db;
	sqlite3_stmt *s;
	double t0;
	int i;

	snprintf(path, sizeof(path), "%s/naive.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		abort();
	sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
	    "CREATE TABLE j(seq INTEGER PRIMARY KEY, op INT, path TEXT)",
	    NULL, NULL, NULL);
	sqlite3_prepare_v2(db, "INSERT INTO j(op,path) VALUES(2,?)", -1, &s, NULL);
	t0 = now_s();
	for (i = 0; i < NAIVE_N; i++) {
		sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		sqlite3_bind_text(s, 1, "dir/file", -1, SQLITE_STATIC);
		sqlite3_step(s);
		sqlite3_reset(s);
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	}
	t0 = now_s() - t0;
	sqlite3_finalize(s);
	sqlite3_close(db);
	return NAIVE_N / t0;
}

struct paced {
	struct store *st;
	bool done;		/* atomic */
};

/* Roughly the gap between two journaled FUSE requests of one thread. */
static void *paced_appender(void *arg)
{
	struct paced *p = arg;
	struct store_entry e = { .op = STORE_OP_CREATE, .path = "dir/f" };
	int i;

	for (i = 0; i < PACED_PER_THREAD; i++) {
		if (store_journal_append(p->st, &e, NULL) != 0)
			abort();
		nanosleep(&(struct timespec){ 0, 10000 }, NULL);
	}
	return NULL;
}

/* fsync(2) callers back to back: every round has a durability waiter. */
static void *syncer(void *arg)
{
	struct paced *p = arg;

	while (!__atomic_load_n(&p->done, __ATOMIC_ACQUIRE))
		if (store_journal_sync(p->st) != 0)
			abort();
	return NULL;
}

/* Appends/s until committed, and the store's commits and syncs. */
static double paced_run(const char *dir, const char *name, bool waiter,
			struct store_journal_stats *s)
{
	struct paced p = { 0 };
	pthread_t t[PACED_THREADS], w;
	char path[256];
	double t0;
	int i;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (store_open(path, &p.st) != 0)
		abort();
	t0 = now_s();
	if (waiter)
		pthread_create(&w, NULL, syncer, &p);
	for (i = 0; i < PACED_THREADS; i++)
		pthread_create(&t[i], NULL, paced_appender, &p);
	for (i = 0; i < PACED_THREADS; i++)
		pthread_join(t[i], NULL);
	store_journal_flush(p.st);
	t0 = now_s() - t0;
	__atomic_store_n(&p.done, true, __ATOMIC_RELEASE);
	if (waiter)
		pthread_join(w, NULL);
	store_journal_stats(p.st, s);
	store_close(p.st);
	return PACED_THREADS * PACED_PER_THREAD / t0;
}

static void paced_report(const char *dir)
{
	struct store_journal_stats s0, s1;
	double r0, r1;
	int n = PACED_THREADS * PACED_PER_THREAD;

	r1 = paced_run(dir, "paced-sync.db", true, &s1);
	r0 = paced_run(dir, "paced.db", false, &s0);
	printf("paced appends (%d threads, %d entries, 10 us apart):\n",
	    PACED_THREADS, n);
	printf("  no durability waiter: %.0f/s, %lld commits, %lld syncs\n",
	    r0, (long long)s0.commits, (long long)s0.syncs);
	printf("  a durability waiter every round (as every round was before):"
	    " %.0f/s, %lld commits, %lld syncs\n", r1, (long long)s1.commits,
	    (long long)s1.syncs);
	printf("  syncs per %d entries: %lld vs %lld\n", n,
	    (long long)s0.syncs, (long long)s1.syncs);
}

int main(void)
{
	char dir[] = "/tmp/bench_store.XXXXXX", path[256], cmd[300];
	pthread_t t[THREADS];
	struct store *st;
	int64_t id, n;
	struct store_journal_stats gs;
	double t0, group, naive, check_us, count_us;
	bool need;
	int i;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/store.db", dir);
	if (store_open(path, &st) != 0)
		return 1;
	t0 = now_s();
	for (i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, appender, st);
	for (i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	store_journal_sync(st);
	group = THREADS * PER_THREAD / (now_s() - t0);
	store_journal_stats(st, &gs);
	naive = naive_rate(dir);

	store_sandbox_add(st, "s", "local:/tmp/s", &id);
	store_sandbox_cursor_set(st, id, 10);
	t0 = now_s();
	for (i = 0; i < CHECKS; i++)
		store_sandbox_needs_push(st, id, &need);
	check_us = (now_s() - t0) / CHECKS * 1e6;
	t0 = now_s();
	for (i = 0; i < 200; i++)
		store_journal_count(st, 10, &n);
	count_us = (now_s() - t0) / 200 * 1e6;

	printf("journal appends, %d threads, group commit: %.0f/s (synced at"
	    " the end: %lld commits, %lld syncs)\n", THREADS, group,
	    (long long)gs.commits, (long long)gs.syncs);
	printf("  baseline, one fsync'd transaction per append: %.0f/s\n", naive);
	printf("  ratio: %.1fx\n", group / naive);
	printf("needs-push check (head > cursor): %.2f us per call\n", check_us);
	printf("  baseline, counting pending entries (%lld rows): %.2f us\n",
	    (long long)n, count_us);
	printf("  ratio: %.0fx cheaper\n", count_us / check_us);
	store_close(st);
	paced_report(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
