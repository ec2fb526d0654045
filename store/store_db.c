/*
 * store_db.c — opening, schema migrations, locking and transactions.
 *
 * One SQLite connection per store, serialized by a recursive mutex so the
 * thread inside store_tx_begin() can keep calling store functions. The
 * journal's group-commit thread lives in store_journal.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_int.h"

/* Each entry migrates from version i to i+1; never edit a shipped one. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE journal(seq INTEGER PRIMARY KEY, op INTEGER NOT NULL,"
	"  path TEXT NOT NULL, path2 TEXT, mode INTEGER NOT NULL DEFAULT 0,"
	"  time_ns INTEGER NOT NULL, origin INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE sandboxes(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
	"  url TEXT NOT NULL, cursor INTEGER NOT NULL DEFAULT 0,"
	"  created_ns INTEGER NOT NULL);"
	"CREATE TABLE ledger(sandbox INTEGER NOT NULL, path TEXT NOT NULL,"
	"  type INTEGER NOT NULL, sha256 BLOB, size INTEGER NOT NULL,"
	"  mode INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
	"  PRIMARY KEY(sandbox, path)) WITHOUT ROWID;"
	"CREATE TABLE snapshot(path TEXT PRIMARY KEY, type INTEGER NOT NULL,"
	"  size INTEGER NOT NULL, mode INTEGER NOT NULL,"
	"  mtime_ns INTEGER NOT NULL, ino INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE conflicts(id INTEGER PRIMARY KEY, sandbox INTEGER NOT NULL,"
	"  path TEXT NOT NULL, copy_path TEXT NOT NULL, time_ns INTEGER NOT NULL);",
	/* 1 -> 2: a write that keeps the size and puts the mtime back (cp -p,
	 * rsync -t, touch -r) still moves the ctime, which no caller can set */
	"ALTER TABLE snapshot ADD COLUMN ctime_ns INTEGER NOT NULL DEFAULT 0;",
};
#define N_MIGRATIONS (sizeof(migrations) / sizeof(migrations[0]))

int64_t store_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int store_exec(struct store *st, const char *sql)
{
	int r;

	store_lock(st);
	r = sqlite3_exec(st->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
	store_unlock(st);
	return r;
}

int store_prepare(struct store *st, const char *sql, sqlite3_stmt **out)
{
	return sqlite3_prepare_v2(st->db, sql, -1, out, NULL) == SQLITE_OK ?
	    0 : -EIO;
}

void store_lock(struct store *st)
{
	pthread_mutex_lock(&st->lock);
}

void store_unlock(struct store *st)
{
	pthread_mutex_unlock(&st->lock);
}

static int user_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO;

	if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(s) != SQLITE_ROW)
		goto out;
	*v = sqlite3_column_int(s, 0);
	r = 0;
 out:
	sqlite3_finalize(s);
	return r;
}

static int migrate(sqlite3 *db)
{
	char sql[64];
	int v, r;

	if ((r = user_version(db, &v)) < 0)
		return r;
	if (v > (int)N_MIGRATIONS)
		return -EPROTO;	/* written by a newer hermesfs */
	for (; v < (int)N_MIGRATIONS; v++) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", v + 1);
		if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			return -EIO;
		if (sqlite3_exec(db, migrations[v], NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return -EIO;
		}
	}
	return 0;
}

static int db_open(const char *path, sqlite3 **out)
{
	sqlite3 *db = NULL;
	int r = -EIO;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		r = access(path, W_OK) == 0 || errno == ENOENT ? -EIO : -errno;
		goto out;
	}
	sqlite3_busy_timeout(db, 10000);
	/* FULL: in WAL mode each commit fsyncs the WAL, so every write outside
	 * the journal is durable when its function returns. Journal rounds
	 * run at NORMAL and sync only for a durability waiter: see
	 * store_journal.c. */
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL;"
	    "PRAGMA synchronous=FULL;"
	    "PRAGMA foreign_keys=ON;", NULL, NULL, NULL) != SQLITE_OK)
		goto out;
	if ((r = migrate(db)) < 0)
		goto out;
	*out = db;
	db = NULL; /* transferred */
	r = 0;
 out:
	sqlite3_close(db);
	return r;
}

int store_open(const char *path, struct store **out)
{
	struct store *st = NULL;
	pthread_mutexattr_t ma;
	int r;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return -ENOMEM;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&st->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	if ((r = db_open(path, &st->db)) < 0)
		goto out;
	if ((r = store_journal_start(st)) < 0)
		goto out;
	*out = st;
	st = NULL; /* transferred */
 out:
	if (st != NULL) {
		sqlite3_close(st->db);
		pthread_mutex_destroy(&st->lock);
		free(st);
	}
	return r;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	store_journal_stop(st);
	sqlite3_finalize(st->ledger_put);
	sqlite3_finalize(st->snap_put);
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

int store_schema_version(struct store *st, int *version)
{
	int r;

	store_lock(st);
	r = user_version(st->db, version);
	store_unlock(st);
	return r;
}

int store_tx_begin(struct store *st)
{
	store_lock(st);
	if (st->in_tx) {
		store_unlock(st);
		return -EBUSY;
	}
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		store_unlock(st);
		return -EIO;
	}
	st->in_tx = true;
	return 0;	/* lock stays held until commit/rollback */
}

static int tx_end(struct store *st, const char *sql)
{
	int r = 0;

	if (!st->in_tx)
		return -EINVAL;
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		r = -EIO;
	}
	st->in_tx = false;
	store_unlock(st);
	return r;
}

int store_tx_commit(struct store *st)
{
	return tx_end(st, "COMMIT");
}

int store_tx_rollback(struct store *st)
{
	return tx_end(st, "ROLLBACK");
}

int store_meta_get(struct store *st, const char *key, char **value)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO, rc;

	store_lock(st);
	if (store_prepare(st, "SELECT value FROM meta WHERE key=?", &s) < 0)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_DONE) {
		r = -ENOENT;
	} else if (rc == SQLITE_ROW) {
		*value = strdup((const char *)sqlite3_column_text(s, 0));
		r = *value ? 0 : -ENOMEM;
	}
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_meta_set(struct store *st, const char *key, const char *value)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO;

	store_lock(st);
	if (store_prepare(st, value ? "INSERT OR REPLACE INTO meta VALUES(?,?)" :
	    "DELETE FROM meta WHERE key=?", &s) < 0)
		goto out;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	if (value)
		sqlite3_bind_text(s, 2, value, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_DONE)
		r = 0;
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_clean_get(struct store *st, bool *was_clean)
{
	char *v = NULL;
	int r = store_meta_get(st, "clean", &v);

	if (r == -ENOENT) {
		*was_clean = true;	/* never mounted: nothing to rescan */
		return 0;
	}
	if (r == 0)
		*was_clean = strcmp(v, "1") == 0;
	free(v);
	return r;
}

int store_clean_set(struct store *st, bool clean)
{
	int r;

	/* The flag must not claim "clean" before every entry is on disk; the
	 * meta write itself is a FULL commit (synced), "unclean" included. */
	if (clean && (r = store_journal_sync(st)) < 0)
		return r;
	return store_meta_set(st, "clean", clean ? "1" : "0");
}
