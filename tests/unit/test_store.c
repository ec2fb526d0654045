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
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"

/*
 * A VFS over the real one that watches the WAL and the database file:
 * ground truth for "synced" (written bytes followed by an fdatasync that
 * SQLite or the store issued), independent of the store's own counters.
 */
struct wfile {
	sqlite3_file base;
	sqlite3_file *real;	/* the real VFS's file, right after this */
	int kind;		/* 1 WAL, 2 main database, 0 other */
};

static sqlite3_vfs *g_real, g_vfs;
static sqlite3_io_methods g_io;
static int g_wal_syncs;		/* atomic: WAL syncs since start */
static bool g_dirty[3];		/* atomic: written since last synced */
static int64_t g_wal_synced_size;	/* WAL size at its last sync */

#define W(f) ((struct wfile *)(f))
#define R(f) (W(f)->real)

static int w_close(sqlite3_file *f)
{
	return R(f)->pMethods->xClose(R(f));
}

static int w_read(sqlite3_file *f, void *b, int n, sqlite3_int64 off)
{
	return R(f)->pMethods->xRead(R(f), b, n, off);
}

static int w_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 off)
{
	__atomic_store_n(&g_dirty[W(f)->kind], true, __ATOMIC_SEQ_CST);
	return R(f)->pMethods->xWrite(R(f), b, n, off);
}

static int w_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return R(f)->pMethods->xTruncate(R(f), size);
}

static int w_sync(sqlite3_file *f, int flags)
{
	sqlite3_int64 size = 0;
	int r = R(f)->pMethods->xSync(R(f), flags);

	if (r != SQLITE_OK)
		return r;
	__atomic_store_n(&g_dirty[W(f)->kind], false, __ATOMIC_SEQ_CST);
	if (W(f)->kind == 1) {
		R(f)->pMethods->xFileSize(R(f), &size);
		__atomic_store_n(&g_wal_synced_size, size, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&g_wal_syncs, 1, __ATOMIC_SEQ_CST);
	}
	return r;
}

static int w_size(sqlite3_file *f, sqlite3_int64 *size)
{
	return R(f)->pMethods->xFileSize(R(f), size);
}

static int w_lock(sqlite3_file *f, int l)
{
	return R(f)->pMethods->xLock(R(f), l);
}

static int w_unlock(sqlite3_file *f, int l)
{
	return R(f)->pMethods->xUnlock(R(f), l);
}

static int w_reserved(sqlite3_file *f, int *out)
{
	return R(f)->pMethods->xCheckReservedLock(R(f), out);
}

static int w_fcntl(sqlite3_file *f, int op, void *arg)
{
	return R(f)->pMethods->xFileControl(R(f), op, arg);
}

static int w_sector(sqlite3_file *f)
{
	return R(f)->pMethods->xSectorSize(R(f));
}

static int w_devchar(sqlite3_file *f)
{
	return R(f)->pMethods->xDeviceCharacteristics(R(f));
}

static int w_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **p)
{
	return R(f)->pMethods->xShmMap(R(f), pg, sz, ext, p);
}

static int w_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return R(f)->pMethods->xShmLock(R(f), off, n, flags);
}

static void w_shm_barrier(sqlite3_file *f)
{
	R(f)->pMethods->xShmBarrier(R(f));
}

static int w_shm_unmap(sqlite3_file *f, int del)
{
	return R(f)->pMethods->xShmUnmap(R(f), del);
}

static int w_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **p)
{
	return R(f)->pMethods->xFetch(R(f), off, n, p);
}

static int w_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
	return R(f)->pMethods->xUnfetch(R(f), off, p);
}

static int w_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
		  int flags, int *oflags)
{
	struct wfile *w = W(f);
	int r;

	(void)vfs;
	w->real = (sqlite3_file *)(w + 1);
	w->real->pMethods = NULL;
	w->kind = flags & SQLITE_OPEN_WAL ? 1 : flags & SQLITE_OPEN_MAIN_DB ? 2 : 0;
	r = g_real->xOpen(g_real, name, w->real, flags, oflags);
	f->pMethods = w->real->pMethods ? &g_io : NULL;
	return r;
}

static void watch_vfs_install(void)
{
	g_io = (sqlite3_io_methods){ 3, w_close, w_read, w_write, w_truncate,
		w_sync, w_size, w_lock, w_unlock, w_reserved, w_fcntl, w_sector,
		w_devchar, w_shm_map, w_shm_lock, w_shm_barrier, w_shm_unmap,
		w_fetch, w_unfetch };
	g_real = sqlite3_vfs_find(NULL);
	g_vfs = *g_real;
	g_vfs.zName = "watch";
	g_vfs.pNext = NULL;
	g_vfs.szOsFile = (int)sizeof(struct wfile) + g_real->szOsFile;
	g_vfs.xOpen = w_open;
	sqlite3_vfs_register(&g_vfs, 1);
}

static int wal_syncs(void)
{
	return __atomic_load_n(&g_wal_syncs, __ATOMIC_SEQ_CST);
}

static bool wal_dirty(void)
{
	return __atomic_load_n(&g_dirty[1], __ATOMIC_SEQ_CST);
}

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
	assert_int_equal(store_journal_committed(f->st), 3);
	assert_int_equal(store_journal_synced(f->st), 3);
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
		assert_int_equal(r->ctime_ns, 6);
	}
	(*n)++;
	return 0;
}

static void test_snapshot(void **state)
{
	struct fx *f = *state;
	struct store_snap_row a = { "a", STORE_FT_FILE, 10, 0100644, 4, 76, 0 };
	struct store_snap_row b = { "b", STORE_FT_DIR, 0, 040755, 5, 77, 6 };
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

static int snap_first(const struct store_snap_row *r, void *arg)
{
	*(struct store_snap_row *)arg = *r;
	((struct store_snap_row *)arg)->path = NULL;	/* not ours to keep */
	return 0;
}

/* A store written by schema 1 (no ctime in the snapshot) opens at the
 * current version with its snapshot rows intact and their ctime unknown. */
static void test_snapshot_migration(void **state)
{
	struct fx *f = *state;
	struct store_snap_row a = { "a", STORE_FT_FILE, 10, 0100644, 4, 76, 9 };
	struct store_snap_row got = { 0 };
	sqlite3 *db = NULL;
	int v = 0;

	assert_int_equal(store_snapshot_begin(f->st), 0);
	assert_int_equal(store_snapshot_put(f->st, &a), 0);
	assert_int_equal(store_snapshot_commit(f->st), 0);
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "ALTER TABLE snapshot DROP COLUMN"
				      " ctime_ns; PRAGMA user_version=1",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(store_schema_version(f->st, &v), 0);
	assert_int_equal(v, STORE_SCHEMA_VERSION);
	assert_int_equal(store_snapshot_foreach(f->st, snap_first, &got), 0);
	assert_int_equal(got.size, 10);
	assert_int_equal(got.mtime_ns, 4);
	assert_int_equal(got.ino, 76);
	assert_int_equal(got.ctime_ns, 0);
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

/* ---- committed vs synced ---------------------------------------------- */

/* Commits reach the WAL unsynced; a durability wait returns only once the
 * WAL holds no byte written since its last fdatasync. */
static void test_wait_syncs_wal(void **state)
{
	struct fx *f = *state;
	struct store_journal_stats s;
	int64_t seq = 0;
	int i, w0;

	for (i = 0; i < 10; i++)
		seq = append(f->st, STORE_OP_WRITE, "a", NULL);
	assert_int_equal(store_journal_flush(f->st), 0);
	assert_int_equal(store_journal_committed(f->st), seq);
	assert_true(store_journal_synced(f->st) < seq);
	assert_true(wal_dirty());		/* committed without a sync */
	w0 = wal_syncs();
	seq = append(f->st, STORE_OP_WRITE, "b", NULL);
	assert_int_equal(store_journal_wait(f->st, seq), 0);
	assert_false(wal_dirty());
	assert_true(wal_syncs() > w0);
	assert_true(store_journal_synced(f->st) >= seq);
	store_journal_stats(f->st, &s);
	assert_int_equal(s.syncs, 1);
	assert_int_equal(s.synced, seq);
	assert_int_equal(s.committed, seq);
}

struct waitarg {
	struct store *st;
	int64_t seq;
	int r;
};

static void *wait_main(void *arg)
{
	struct waitarg *w = arg;

	w->r = store_journal_wait(w->st, w->seq);
	return NULL;
}

/* store_journal_wait() in a thread; fails instead of hanging the suite. */
static int wait_bounded(struct store *st, int64_t seq)
{
	struct waitarg w = { st, seq, -1 };
	struct timespec ts;
	pthread_t t;

	assert_int_equal(pthread_create(&t, NULL, wait_main, &w), 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	assert_int_equal(pthread_timedjoin_np(t, NULL, &ts), 0);
	return w.r;
}

/* 3,000 batches without a durability waiter: no sync of the store's own,
 * and the only WAL syncs are SQLite's checkpoints (about one per 1000
 * frames), not one per batch. */
static void test_no_sync_per_batch(void **state)
{
	struct fx *f = *state;
	struct store_journal_stats s0, s1;
	int64_t seq;
	int i, w0;

	store_journal_stats(f->st, &s0);
	w0 = wal_syncs();
	for (i = 0; i < 3000; i++) {
		seq = append(f->st, STORE_OP_CREATE, "f", NULL);
		assert_int_equal(store_journal_wait_committed(f->st, seq), 0);
		assert_true(store_journal_committed(f->st) >= seq);
	}
	store_journal_stats(f->st, &s1);
	assert_int_equal(s1.commits - s0.commits, 3000);
	assert_int_equal(s1.syncs, s0.syncs);
	assert_true(wal_syncs() - w0 < 3000 / 100);
	assert_int_equal(wait_bounded(f->st, seq), 0);
	store_journal_stats(f->st, &s1);
	assert_int_equal(s1.syncs - s0.syncs, 1);
	assert_int_equal(s1.synced, 3000);
	assert_false(wal_dirty());
}

/* Nothing queued, the entries committed but not synced: the committer
 * still syncs for the waiter. A seq past the head waits for the head. */
static void test_wait_committed_seq(void **state)
{
	struct fx *f = *state;
	int i;

	for (i = 0; i < 5; i++)
		append(f->st, STORE_OP_WRITE, "a", NULL);
	assert_int_equal(store_journal_flush(f->st), 0);
	assert_true(store_journal_synced(f->st) < 5);
	assert_int_equal(wait_bounded(f->st, 3), 0);
	assert_int_equal(store_journal_synced(f->st), 5);
	assert_false(wal_dirty());
	assert_int_equal(wait_bounded(f->st, 5), 0);	/* already synced */
	append(f->st, STORE_OP_WRITE, "b", NULL);
	assert_int_equal(wait_bounded(f->st, 1000), 0);
	assert_int_equal(store_journal_synced(f->st), 6);
	assert_false(wal_dirty());
}

#define WTHREADS 6
#define WPER 1500

struct wstat {
	struct store *st;
	int id;
	int durable_waits;
	bool ok;
};

/* Odd threads wait for durability every 50 entries, even ones for
 * visibility every 7: each check is made right after its wait. */
static void *waiter_appender(void *arg)
{
	struct wstat *w = arg;
	struct store_entry e = { .op = STORE_OP_WRITE, .path = "w" };
	int64_t seq;
	int i;

	w->ok = true;
	for (i = 1; i <= WPER && w->ok; i++) {
		if (store_journal_append(w->st, &e, &seq) != 0)
			w->ok = false;
		else if (w->id % 2 && i % 50 == 0) {
			w->durable_waits++;
			w->ok = store_journal_wait(w->st, seq) == 0 &&
			    store_journal_synced(w->st) >= seq &&
			    store_journal_committed(w->st) >= seq;
		} else if (w->id % 2 == 0 && i % 7 == 0) {
			w->ok = store_journal_wait_committed(w->st, seq) == 0 &&
			    store_journal_committed(w->st) >= seq;
		}
	}
	return NULL;
}

static void test_waiters_concurrent(void **state)
{
	struct fx *f = *state;
	struct wstat w[WTHREADS];
	struct seqcheck c = { 0, 0, true };
	struct store_journal_stats s;
	pthread_t t[WTHREADS];
	int i, durable_waits = 0;

	for (i = 0; i < WTHREADS; i++) {
		w[i] = (struct wstat){ .st = f->st, .id = i };
		assert_int_equal(pthread_create(&t[i], NULL, waiter_appender,
		    &w[i]), 0);
	}
	for (i = 0; i < WTHREADS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		assert_true(w[i].ok);
		durable_waits += w[i].durable_waits;
	}
	assert_int_equal(durable_waits, WTHREADS / 2 * WPER / 50);
	store_journal_stats(f->st, &s);
	assert_true(s.syncs >= 1);
	assert_true(s.syncs <= durable_waits);	/* shared, never per batch */
	assert_int_equal(store_journal_flush(f->st), 0);
	assert_int_equal(store_journal_foreach(f->st, 0, 0, seqcheck_fn, &c), 0);
	assert_true(c.ok);
	assert_int_equal(c.n, WTHREADS * WPER);
}

/* Entries arriving one by one, 200 us apart, with nobody waiting: a round
 * collects those of a couple of ms (fewer WAL frames per entry), instead of
 * one round each. */
static void test_rounds_gather(void **state)
{
	struct fx *f = *state;
	struct store_journal_stats s;
	int i;

	for (i = 0; i < 400; i++) {
		append(f->st, STORE_OP_WRITE, "g", NULL);
		nanosleep(&(struct timespec){ 0, 200 * 1000 }, NULL);
	}
	assert_int_equal(store_journal_flush(f->st), 0);
	store_journal_stats(f->st, &s);
	assert_int_equal(s.committed, 400);
	assert_true(s.commits <= 400 / 3);
	assert_int_equal(s.syncs, 0);
}

static void copy_file(const char *from, const char *to, int64_t len)
{
	char buf[65536];
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	while (len != 0 && (n = fread(buf, 1, len > 0 && len < (int64_t)sizeof(buf)
	    ? (size_t)len : sizeof(buf), in)) > 0) {
		assert_int_equal(fwrite(buf, 1, n, out), n);
		if (len > 0)
			len -= (int64_t)n;
	}
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* What a power loss now would leave: the database file and the WAL up to
 * its last sync (nothing here checkpoints: a few dozen frames). */
static struct store *power_loss_copy(struct fx *f, const char *name)
{
	char db[128], wal[160], from[160];
	struct store *st = NULL;

	snprintf(db, sizeof(db), "%s/%s", f->dir, name);
	snprintf(wal, sizeof(wal), "%s-wal", db);
	snprintf(from, sizeof(from), "%s-wal", f->path);
	copy_file(f->path, db, -1);
	copy_file(from, wal, __atomic_load_n(&g_wal_synced_size, __ATOMIC_SEQ_CST));
	assert_int_equal(store_open(db, &st), 0);
	return st;
}

/* The unclean flag is synced before any entry it covers, waited entries
 * survive, unsynced ones may go; "clean" only once everything is synced;
 * a clean close leaves nothing unsynced. */
static void test_power_loss(void **state)
{
	struct fx *f = *state;
	struct store *pl;
	bool clean = true;
	int i;

	assert_int_equal(store_clean_set(f->st, false), 0);
	for (i = 0; i < 20; i++)
		append(f->st, STORE_OP_WRITE, "synced", NULL);
	assert_int_equal(store_journal_wait(f->st, 20), 0);
	for (i = 0; i < 30; i++) {
		append(f->st, STORE_OP_WRITE, "lost", NULL);
		assert_int_equal(store_journal_wait_committed(f->st, 21 + i), 0);
	}
	assert_true(wal_dirty());
	pl = power_loss_copy(f, "pl1.db");
	assert_int_equal(store_journal_head(pl), 20);
	assert_int_equal(store_clean_get(pl, &clean), 0);
	assert_false(clean);			/* the next mount rescans */
	store_close(pl);

	assert_int_equal(store_clean_set(f->st, true), 0);
	pl = power_loss_copy(f, "pl2.db");
	assert_int_equal(store_journal_head(pl), 50);
	assert_int_equal(store_clean_get(pl, &clean), 0);
	assert_true(clean);
	store_close(pl);

	/* Another connection keeps SQLite from checkpointing at close: the
	 * store syncs the WAL itself. */
	assert_int_equal(store_open(f->path, &pl), 0);
	append(f->st, STORE_OP_WRITE, "at close", NULL);
	assert_int_equal(store_journal_flush(f->st), 0);
	assert_true(wal_dirty());
	store_close(f->st);
	f->st = NULL;
	assert_false(wal_dirty());
	store_close(pl);
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(store_journal_head(f->st), 51);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
		T(test_schema_and_reopen),
		T(test_snapshot_migration),
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
		T(test_wait_syncs_wal),
		T(test_no_sync_per_batch),
		T(test_wait_committed_seq),
		T(test_waiters_concurrent),
		T(test_rounds_gather),
		T(test_power_loss),
	};

	watch_vfs_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
