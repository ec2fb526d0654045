/*
 * test_store.c — unit tests for store/ against a real SQLite file.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "store/store.h"

struct fx {
	char dir[64];
	char path[96];
	struct store *st;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	strcpy(f->dir, "/tmp/test_store.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/store.db", f->dir);
	assert_int_equal(store_open(f->path, &f->st), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	store_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static int64_t append(struct store *st, int op, const char *p, const char *p2)
{
	struct store_entry e = { .op = op, .path = p, .path2 = p2 };
	int64_t seq = 0;

	assert_int_equal(store_journal_append(st, &e, &seq), 0);
	return seq;
}

static void test_schema_and_reopen(void **state)
{
	struct fx *f = *state;
	int v = 0;

	assert_int_equal(store_schema_version(f->st, &v), 0);
	assert_int_equal(v, STORE_SCHEMA_VERSION);
	append(f->st, STORE_OP_WRITE, "a", NULL);
	store_close(f->st);
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(store_schema_version(f->st, &v), 0);
	assert_int_equal(v, STORE_SCHEMA_VERSION);
	/* close wrote the queued entry; reopen continues the sequence */
	assert_int_equal(store_journal_head(f->st), 1);
	assert_int_equal(append(f->st, STORE_OP_WRITE, "b", NULL), 2);
}

static void test_open_bad_path(void **state)
{
	struct store *st = NULL;

	(void)state;
	assert_true(store_open("/nonexistent-dir/x/store.db", &st) < 0);
	assert_null(st);
	store_close(NULL);
}

struct collect {
	int64_t seqs[64];
	char paths[64][16];
	int ops[64];
	int n;
	int stop_at;
};

static int collect_fn(const struct store_entry *e, void *arg)
{
	struct collect *c = arg;

	c->seqs[c->n] = e->seq;
	c->ops[c->n] = e->op;
	snprintf(c->paths[c->n], sizeof(c->paths[0]), "%s", e->path);
	c->n++;
	return c->stop_at && c->n == c->stop_at ? 42 : 0;
}

static void test_journal_append_read(void **state)
{
	struct fx *f = *state;
	struct collect c = { 0 };
	struct store_entry e = { .op = STORE_OP_RENAME, .path = "x",
	    .path2 = "y", .mode = 0100644, .origin = 7 };
	int64_t n = -1, seq;

	assert_int_equal(store_journal_append(f->st, &e, &seq), 0);
	assert_int_equal(seq, 1);
	append(f->st, STORE_OP_MKDIR, "d", NULL);
	append(f->st, STORE_OP_UNLINK, "d/f", NULL);
	assert_int_equal(store_journal_head(f->st), 3);
	assert_int_equal(store_journal_sync(f->st), 0);
	assert_int_equal(store_journal_durable(f->st), 3);
	assert_int_equal(store_journal_foreach(f->st, 0, 0, collect_fn, &c), 0);
	assert_int_equal(c.n, 3);
	assert_int_equal(c.ops[0], STORE_OP_RENAME);
	assert_string_equal(c.paths[2], "d/f");
	memset(&c, 0, sizeof(c));
	assert_int_equal(store_journal_foreach(f->st, 1, 1, collect_fn, &c), 0);
	assert_int_equal(c.n, 1);
	assert_int_equal(c.seqs[0], 2);
	memset(&c, 0, sizeof(c));
	c.stop_at = 2;
	assert_int_equal(store_journal_foreach(f->st, 0, 0, collect_fn, &c), 42);
	assert_int_equal(c.n, 2);
	assert_int_equal(store_journal_count(f->st, 1, &n), 0);
	assert_int_equal(n, 2);
	/* Entry 1 came from sandbox 7's pull: not pending for sandbox 7. */
	assert_int_equal(store_journal_pending(f->st, 0, 7, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_journal_pending(f->st, 0, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_journal_pending(f->st, 2, 8, &n), 0);
	assert_int_equal(n, 1);
	e.op = 999;
	assert_int_equal(store_journal_append(f->st, &e, NULL), -EINVAL);
	assert_int_equal(store_journal_wait(f->st, 0), 0);
}

static int check_entry_fn(const struct store_entry *e, void *arg)
{
	(void)arg;
	assert_int_equal(e->op, STORE_OP_RENAME);
	assert_string_equal(e->path, "x");
	assert_string_equal(e->path2, "y");
	assert_int_equal(e->mode, 0100644);
	assert_int_equal(e->origin, 7);
	assert_true(e->time_ns > 0);
	return 0;
}

static void test_journal_fields(void **state)
{
	struct fx *f = *state;
	struct store_entry e = { .op = STORE_OP_RENAME, .path = "x",
	    .path2 = "y", .mode = 0100644, .origin = 7 };

	assert_int_equal(store_journal_append(f->st, &e, NULL), 0);
	assert_int_equal(store_journal_sync(f->st), 0);
	assert_int_equal(store_journal_foreach(f->st, 0, 0, check_entry_fn,
	    NULL), 0);
	assert_string_equal(store_op_name(STORE_OP_RENAME), "rename");
	assert_int_equal(store_op_from_name("rmdir"), STORE_OP_RMDIR);
	assert_int_equal(store_op_from_name("bogus"), 0);
}

#define THREADS 8
#define PER_THREAD 2000

static void *appender(void *arg)
{
	struct store *st = arg;
	int64_t last = 0, seq;
	char p[32];
	int i;

	for (i = 0; i < PER_THREAD; i++) {
		struct store_entry e = { .op = STORE_OP_WRITE, .path = p };

		snprintf(p, sizeof(p), "t/%d", i);
		if (store_journal_append(st, &e, &seq) != 0 || seq <= last)
			return (void *)1;
		last = seq;
		if (i % 500 == 0 && store_journal_wait(st, seq) != 0)
			return (void *)1;
	}
	return NULL;
}

struct seqcheck {
	int64_t prev;
	int64_t n;
	bool ok;
};

static int seqcheck_fn(const struct store_entry *e, void *arg)
{
	struct seqcheck *c = arg;

	if (e->seq != c->prev + 1)
		c->ok = false;
	c->prev = e->seq;
	c->n++;
	return 0;
}

static void test_journal_concurrent(void **state)
{
	struct fx *f = *state;
	pthread_t t[THREADS];
	struct seqcheck c = { 0, 0, true };
	void *rv;
	int i;

	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, appender, f->st), 0);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], &rv), 0);
		assert_null(rv);
	}
	assert_int_equal(store_journal_sync(f->st), 0);
	assert_int_equal(store_journal_foreach(f->st, 0, 0, seqcheck_fn, &c), 0);
	assert_true(c.ok);
	assert_int_equal(c.n, THREADS * PER_THREAD);
	assert_int_equal(store_journal_head(f->st), THREADS * PER_THREAD);
}

static void test_sandboxes(void **state)
{
	struct fx *f = *state;
	struct store_sandbox sb, *list = NULL;
	int64_t id1, id2, cur = -1;
	size_t n = 0;
	bool need = true;

	assert_int_equal(store_sandbox_add(f->st, "zeta", "local:/z", &id1), 0);
	assert_int_equal(store_sandbox_add(f->st, "alpha", "ssh://h/r", &id2), 0);
	assert_int_equal(store_sandbox_add(f->st, "zeta", "local:/y", NULL), -EEXIST);
	assert_int_equal(store_sandbox_add(f->st, "", "local:/y", NULL), -EINVAL);
	assert_int_equal(store_sandbox_get(f->st, "zeta", &sb), 0);
	assert_int_equal(sb.id, id1);
	assert_string_equal(sb.url, "local:/z");
	assert_int_equal(sb.cursor, 0);
	store_sandbox_release(&sb);
	assert_int_equal(store_sandbox_get_by_id(f->st, id2, &sb), 0);
	assert_string_equal(sb.name, "alpha");
	store_sandbox_release(&sb);
	assert_int_equal(store_sandbox_get(f->st, "nope", &sb), -ENOENT);
	assert_int_equal(store_sandbox_list(f->st, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].name, "alpha");	/* ordered by name */
	store_sandbox_list_free(list, n);

	assert_int_equal(store_sandbox_needs_push(f->st, id1, &need), 0);
	assert_false(need);
	append(f->st, STORE_OP_WRITE, "f", NULL);
	assert_int_equal(store_sandbox_needs_push(f->st, id1, &need), 0);
	assert_true(need);
	assert_int_equal(store_sandbox_cursor_set(f->st, id1, 1), 0);
	assert_int_equal(store_sandbox_cursor_get(f->st, id1, &cur), 0);
	assert_int_equal(cur, 1);
	assert_int_equal(store_sandbox_needs_push(f->st, id1, &need), 0);
	assert_false(need);
	assert_int_equal(store_sandbox_cursor_set(f->st, 9999, 1), -ENOENT);
	assert_int_equal(store_sandbox_needs_push(f->st, 9999, &need), -ENOENT);

	assert_int_equal(store_sandbox_remove(f->st, "zeta"), 0);
	assert_int_equal(store_sandbox_remove(f->st, "zeta"), -ENOENT);
	assert_int_equal(store_sandbox_list(f->st, &list, &n), 0);
	assert_int_equal(n, 1);
	store_sandbox_list_free(list, n);
}

static void test_prune(void **state)
{
	struct fx *f = *state;
	int64_t a, b, pruned = -1, cnt = 0;
	int i;

	for (i = 0; i < 10; i++)
		append(f->st, STORE_OP_WRITE, "f", NULL);
	assert_int_equal(store_journal_sync(f->st), 0);
	assert_int_equal(store_journal_prune(f->st, &pruned), 0);
	assert_int_equal(pruned, 0);	/* no sandbox: keep everything */
	assert_int_equal(store_sandbox_add(f->st, "a", "local:/a", &a), 0);
	assert_int_equal(store_sandbox_add(f->st, "b", "local:/b", &b), 0);
	assert_int_equal(store_sandbox_cursor_set(f->st, a, 8), 0);
	assert_int_equal(store_sandbox_cursor_set(f->st, b, 4), 0);
	assert_int_equal(store_journal_prune(f->st, &pruned), 0);
	assert_int_equal(pruned, 4);
	assert_int_equal(store_journal_count(f->st, 0, &cnt), 0);
	assert_int_equal(cnt, 6);
	assert_int_equal(store_sandbox_cursor_set(f->st, b, 10), 0);
	assert_int_equal(store_sandbox_cursor_set(f->st, a, 10), 0);
	assert_int_equal(store_journal_prune(f->st, &pruned), 0);
	assert_int_equal(store_journal_count(f->st, 0, &cnt), 0);
	assert_int_equal(cnt, 0);
	/* an empty journal must not restart numbering: cursors would lie */
	store_close(f->st);
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(append(f->st, STORE_OP_WRITE, "g", NULL), 11);
}

static void put_row(struct store *st, int64_t sb, const char *path, int fill)
{
	struct store_ledger_row r = { .path = (char *)path,
	    .type = STORE_FT_FILE, .size = fill, .mode = 0100600,
	    .mtime_ns = 1000 + fill };

	memset(r.sha256, fill, sizeof(r.sha256));
	assert_int_equal(store_ledger_put(st, sb, &r), 0);
}

static int count_fn(const struct store_ledger_row *row, void *arg)
{
	(void)row;
	(*(int *)arg)++;
	return 0;
}

static int ledger_n(struct store *st, int64_t sb, const char *prefix)
{
	int n = 0;

	assert_int_equal(store_ledger_foreach(st, sb, prefix, count_fn, &n), 0);
	return n;
}

static void test_ledger(void **state)
{
	struct fx *f = *state;
	struct store_ledger_row row;
	int64_t sb, sb2, cnt = 0;
	uint8_t h[STORE_SHA256_LEN];

	assert_int_equal(store_sandbox_add(f->st, "s", "local:/s", &sb), 0);
	assert_int_equal(store_sandbox_add(f->st, "t", "local:/t", &sb2), 0);
	put_row(f->st, sb, "dir", 1);
	put_row(f->st, sb, "dir/a", 2);
	put_row(f->st, sb, "dir/sub/b", 3);
	put_row(f->st, sb, "dir0", 4);		/* sorts after "dir/": not below */
	put_row(f->st, sb, "dir.x", 5);		/* sorts before "dir/" */
	put_row(f->st, sb2, "dir/a", 9);
	assert_int_equal(store_ledger_get(f->st, sb, "dir/a", &row), 0);
	memset(h, 2, sizeof(h));
	assert_memory_equal(row.sha256, h, sizeof(h));
	assert_int_equal(row.size, 2);
	assert_int_equal(row.mode, 0100600);
	assert_int_equal(row.mtime_ns, 1002);
	assert_int_equal(row.type, STORE_FT_FILE);
	store_ledger_row_release(&row);
	store_ledger_row_release(NULL);
	assert_int_equal(store_ledger_get(f->st, sb, "nope", &row), -ENOENT);
	put_row(f->st, sb, "dir/a", 7);		/* replace */
	assert_int_equal(store_ledger_get(f->st, sb, "dir/a", &row), 0);
	assert_int_equal(row.size, 7);
	store_ledger_row_release(&row);

	assert_int_equal(ledger_n(f->st, sb, "dir"), 3);
	assert_int_equal(ledger_n(f->st, sb, NULL), 5);
	assert_int_equal(store_ledger_count(f->st, sb, &cnt), 0);
	assert_int_equal(cnt, 5);

	/* prefix rename moves the subtree only, and replaces the target */
	put_row(f->st, sb, "new/stale", 8);
	assert_int_equal(store_ledger_rename(f->st, sb, "dir", "new"), 0);
	assert_int_equal(ledger_n(f->st, sb, "dir"), 0);
	assert_int_equal(ledger_n(f->st, sb, "new"), 3);
	assert_int_equal(store_ledger_get(f->st, sb, "new/stale", &row), -ENOENT);
	assert_int_equal(store_ledger_get(f->st, sb, "new/sub/b", &row), 0);
	assert_int_equal(row.size, 3);
	store_ledger_row_release(&row);
	assert_int_equal(store_ledger_get(f->st, sb, "dir0", &row), 0);
	store_ledger_row_release(&row);
	assert_int_equal(ledger_n(f->st, sb2, "dir"), 1);	/* other sandbox */
	assert_int_equal(store_ledger_rename(f->st, sb, "", "x"), -EINVAL);

	assert_int_equal(store_ledger_delete(f->st, sb, "new/a", false), 0);
	assert_int_equal(ledger_n(f->st, sb, "new"), 2);
	assert_int_equal(store_ledger_delete(f->st, sb, "new", true), 0);
	assert_int_equal(ledger_n(f->st, sb, NULL), 2);
	/* removing a sandbox drops its ledger */
	assert_int_equal(store_sandbox_remove(f->st, "t"), 0);
	assert_int_equal(store_ledger_count(f->st, sb2, &cnt), 0);
	assert_int_equal(cnt, 0);
}

static void test_tx_rollback(void **state)
{
	struct fx *f = *state;
	struct store_ledger_row row;
	int64_t sb, cur = -1;

	assert_int_equal(store_sandbox_add(f->st, "s", "local:/s", &sb), 0);
	put_row(f->st, sb, "keep", 1);
	assert_int_equal(store_sandbox_cursor_set(f->st, sb, 5), 0);

	assert_int_equal(store_tx_begin(f->st), 0);
	assert_int_equal(store_tx_begin(f->st), -EBUSY);	/* not nestable */
	put_row(f->st, sb, "keep", 2);
	put_row(f->st, sb, "new", 3);
	assert_int_equal(store_ledger_delete(f->st, sb, "keep", false), 0);
	assert_int_equal(store_sandbox_cursor_set(f->st, sb, 9), 0);
	assert_int_equal(store_tx_rollback(f->st), 0);

	assert_int_equal(store_ledger_get(f->st, sb, "keep", &row), 0);
	assert_int_equal(row.size, 1);
	store_ledger_row_release(&row);
	assert_int_equal(store_ledger_get(f->st, sb, "new", &row), -ENOENT);
	assert_int_equal(store_sandbox_cursor_get(f->st, sb, &cur), 0);
	assert_int_equal(cur, 5);

	assert_int_equal(store_tx_begin(f->st), 0);
	put_row(f->st, sb, "new", 3);
	assert_int_equal(store_sandbox_cursor_set(f->st, sb, 9), 0);
	assert_int_equal(store_tx_commit(f->st), 0);
	assert_int_equal(store_sandbox_cursor_get(f->st, sb, &cur), 0);
	assert_int_equal(cur, 9);
	assert_int_equal(store_ledger_get(f->st, sb, "new", &row), 0);
	store_ledger_row_release(&row);
	assert_int_equal(store_tx_commit(f->st), -EINVAL);
}

/* A child opens the store, commits a baseline, then dies by SIGKILL in the
 * middle of a big transaction; the parent must see exactly the baseline. */
static void test_kill_mid_transaction(void **state)
{
	struct fx *f = *state;
	struct store_ledger_row row;
	struct store_sandbox sb;
	int status, i;
	int64_t cur = -1, cnt = -1;
	pid_t pid;
	int pfd[2];
	char c;

	store_close(f->st);
	f->st = NULL;
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *st;
		int64_t id;

		close(pfd[0]);
		if (store_open(f->path, &st) != 0 ||
		    store_sandbox_add(st, "s", "local:/s", &id) != 0)
			_exit(1);
		put_row(st, id, "base", 1);
		store_sandbox_cursor_set(st, id, 3);
		store_tx_begin(st);
		for (i = 0; i < 20000; i++) {
			char p[32];

			snprintf(p, sizeof(p), "torn/%d", i);
			put_row(st, id, p, 2);
			if (i == 10000 && write(pfd[1], "x", 1) != 1)
				_exit(1);
		}
		store_sandbox_cursor_set(st, id, 99);
		for (;;)
			pause();	/* never commits */
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);

	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(store_sandbox_get(f->st, "s", &sb), 0);
	assert_int_equal(store_sandbox_cursor_get(f->st, sb.id, &cur), 0);
	assert_int_equal(cur, 3);
	assert_int_equal(store_ledger_count(f->st, sb.id, &cnt), 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(store_ledger_get(f->st, sb.id, "base", &row), 0);
	store_ledger_row_release(&row);
	store_sandbox_release(&sb);
}

/* Entries a child waited on are on disk even though it was killed. */
static void test_kill_after_wait(void **state)
{
	struct fx *f = *state;
	int status;
	pid_t pid;

	store_close(f->st);
	f->st = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct store *st;
		int64_t seq = 0;
		int i;

		if (store_open(f->path, &st) != 0)
			_exit(1);
		for (i = 0; i < 100; i++)
			seq = append(st, STORE_OP_WRITE, "f", NULL);
		if (store_journal_wait(st, seq) != 0)
			_exit(1);
		kill(getpid(), SIGKILL);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(store_journal_head(f->st), 100);
}

static void test_clean_flag_and_meta(void **state)
{
	struct fx *f = *state;
	bool clean = false;
	char *v = NULL;

	assert_int_equal(store_clean_get(f->st, &clean), 0);
	assert_true(clean);		/* fresh store */
	assert_int_equal(store_clean_set(f->st, false), 0);
	store_close(f->st);
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(store_clean_get(f->st, &clean), 0);
	assert_false(clean);		/* survived "crash" */
	assert_int_equal(store_clean_set(f->st, true), 0);
	assert_int_equal(store_clean_get(f->st, &clean), 0);
	assert_true(clean);

	assert_int_equal(store_meta_get(f->st, "k", &v), -ENOENT);
	assert_int_equal(store_meta_set(f->st, "k", "v1"), 0);
	assert_int_equal(store_meta_set(f->st, "k", "v2"), 0);
	assert_int_equal(store_meta_get(f->st, "k", &v), 0);
	assert_string_equal(v, "v2");
	free(v);
	assert_int_equal(store_meta_set(f->st, "k", NULL), 0);
	assert_int_equal(store_meta_get(f->st, "k", &v), -ENOENT);
}

static int snap_fn(const struct store_snap_row *r, void *arg)
{
	int *n = arg;

	if (strcmp(r->path, "b") == 0) {
		assert_int_equal(r->type, STORE_FT_DIR);
		assert_int_equal(r->ino, 77);
		assert_int_equal(r->mtime_ns, 5);
	}
	(*n)++;
	return 0;
}

static void test_snapshot(void **state)
{
	struct fx *f = *state;
	struct store_snap_row a = { "a", STORE_FT_FILE, 10, 0100644, 4, 76 };
	struct store_snap_row b = { "b", STORE_FT_DIR, 0, 040755, 5, 77 };
	int64_t cnt = -1;
	int n = 0;

	assert_int_equal(store_snapshot_begin(f->st), 0);
	assert_int_equal(store_snapshot_put(f->st, &a), 0);
	assert_int_equal(store_snapshot_put(f->st, &b), 0);
	assert_int_equal(store_snapshot_commit(f->st), 0);
	assert_int_equal(store_snapshot_count(f->st, &cnt), 0);
	assert_int_equal(cnt, 2);
	assert_int_equal(store_snapshot_foreach(f->st, snap_fn, &n), 0);
	assert_int_equal(n, 2);
	/* begin replaces the whole snapshot */
	assert_int_equal(store_snapshot_begin(f->st), 0);
	assert_int_equal(store_snapshot_put(f->st, &b), 0);
	assert_int_equal(store_snapshot_commit(f->st), 0);
	assert_int_equal(store_snapshot_count(f->st, &cnt), 0);
	assert_int_equal(cnt, 1);
}

static void test_conflicts(void **state)
{
	struct fx *f = *state;
	struct store_conflict *list = NULL;
	int64_t sb, id;
	size_t n = 0;

	assert_int_equal(store_sandbox_add(f->st, "s", "local:/s", &sb), 0);
	assert_int_equal(store_conflict_add(f->st, sb, "a", "a.conflict-s-1", &id), 0);
	assert_int_equal(store_conflict_add(f->st, sb, "b", "b.conflict-s-1", NULL), 0);
	assert_int_equal(store_conflict_list(f->st, -1, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].copy_path, "a.conflict-s-1");
	store_conflict_list_free(list, n);
	assert_int_equal(store_conflict_resolve(f->st, id), 0);
	assert_int_equal(store_conflict_resolve(f->st, id), -ENOENT);
	assert_int_equal(store_conflict_list(f->st, sb, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].path, "b");
	store_conflict_list_free(list, n);
	assert_int_equal(store_conflict_list(f->st, sb + 1, &list, &n), 0);
	assert_int_equal(n, 0);
	store_conflict_list_free(list, n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_schema_and_reopen),
		cmocka_unit_test(test_open_bad_path),
		T(test_journal_append_read),
		T(test_journal_fields),
		T(test_journal_concurrent),
		T(test_sandboxes),
		T(test_prune),
		T(test_ledger),
		T(test_tx_rollback),
		T(test_kill_mid_transaction),
		T(test_kill_after_wait),
		T(test_clean_flag_and_meta),
		T(test_snapshot),
		T(test_conflicts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
