/*
 * bench_store.c — journal append throughput with group commit (8 threads)
 * against one transaction per append, and the cost of the pre-command
 * "is the journal head past this cursor" check against counting pending
 * entries. Both baselines are measured in the same run.
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

int main(void)
{
	char dir[] = "/tmp/bench_store.XXXXXX", path[256], cmd[300];
	pthread_t t[THREADS];
	struct store *st;
	int64_t id, n;
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

	printf("journal appends, %d threads, group commit: %.0f/s (durable)\n",
	    THREADS, group);
	printf("  baseline, one fsync'd transaction per append: %.0f/s\n", naive);
	printf("  ratio: %.1fx\n", group / naive);
	printf("needs-push check (head > cursor): %.2f us per call\n", check_us);
	printf("  baseline, counting pending entries (%lld rows): %.2f us\n",
	    (long long)n, count_us);
	printf("  ratio: %.0fx cheaper\n", count_us / check_us);
	store_close(st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
