/*
 * store_ledger.c — per-sandbox ledger and the host snapshot.
 *
 * A subtree is the row at P plus the rows in [P "/", P "0"): '0' is the byte
 * after '/', so the range is one index scan under the BINARY collation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

#define SUBTREE(col, p) "(" col "=" p " OR (" col ">=" p "||'/' AND " col "<" p "||'0'))"

static int ledger_row(sqlite3_stmt *s, struct store_ledger_row *row, bool dup)
{
	const void *h = sqlite3_column_blob(s, 2);

	memset(row, 0, sizeof(*row));
	row->path = (char *)sqlite3_column_text(s, 0);
	if (dup && (row->path = strdup(row->path)) == NULL)
		return -ENOMEM;
	row->type = sqlite3_column_int(s, 1);
	if (h && sqlite3_column_bytes(s, 2) == STORE_SHA256_LEN)
		memcpy(row->sha256, h, STORE_SHA256_LEN);
	row->size = sqlite3_column_int64(s, 3);
	row->mode = (uint32_t)sqlite3_column_int64(s, 4);
	row->mtime_ns = sqlite3_column_int64(s, 5);
	return 0;
}

#define LEDGER_COLS "SELECT path,type,sha256,size,mode,mtime_ns FROM ledger "

int store_ledger_get(struct store *st, int64_t sandbox, const char *path,
		     struct store_ledger_row *out)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO, rc;

	store_lock(st);
	if (store_prepare(st, LEDGER_COLS "WHERE sandbox=? AND path=?", &s) < 0)
		goto out;
	sqlite3_bind_int64(s, 1, sandbox);
	sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = ledger_row(s, out, true);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_ledger_put(struct store *st, int64_t sandbox,
		     const struct store_ledger_row *row)
{
	sqlite3_stmt *s;
	int r = -EIO;

	store_lock(st);
	if (st->ledger_put == NULL && store_prepare(st, "INSERT OR REPLACE INTO"
	    " ledger(sandbox,path,type,sha256,size,mode,mtime_ns)"
	    " VALUES(?,?,?,?,?,?,?)", &st->ledger_put) < 0)
		goto out;
	s = st->ledger_put;
	sqlite3_bind_int64(s, 1, sandbox);
	sqlite3_bind_text(s, 2, row->path, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 3, row->type);
	sqlite3_bind_blob(s, 4, row->sha256, STORE_SHA256_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 5, row->size);
	sqlite3_bind_int64(s, 6, row->mode);
	sqlite3_bind_int64(s, 7, row->mtime_ns);
	if (sqlite3_step(s) == SQLITE_DONE)
		r = 0;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
 out:
	store_unlock(st);
	return r;
}

static int exec_paths(struct store *st, const char *sql, int64_t sandbox,
		      const char *p1, const char *p2)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO;

	store_lock(st);
	if (store_prepare(st, sql, &s) < 0)
		goto out;
	sqlite3_bind_int64(s, 1, sandbox);
	sqlite3_bind_text(s, 2, p1, -1, SQLITE_STATIC);
	if (p2)
		sqlite3_bind_text(s, 3, p2, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_DONE)
		r = 0;
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_ledger_delete(struct store *st, int64_t sandbox, const char *path,
			bool recursive)
{
	if (path == NULL)
		return -EINVAL;
	if (recursive && *path == '\0')
		return exec_paths(st, "DELETE FROM ledger WHERE sandbox=?1 AND"
		    " ?2=''", sandbox, path, NULL);
	return exec_paths(st, recursive ?
	    "DELETE FROM ledger WHERE sandbox=?1 AND " SUBTREE("path", "?2") :
	    "DELETE FROM ledger WHERE sandbox=?1 AND path=?2",
	    sandbox, path, NULL);
}

int store_ledger_rename(struct store *st, int64_t sandbox, const char *from,
			const char *to)
{
	int r;

	if (from == NULL || to == NULL || *from == '\0' || *to == '\0')
		return -EINVAL;
	if (strcmp(from, to) == 0)
		return 0;
	store_lock(st);
	if (sqlite3_exec(st->db, "SAVEPOINT lren", NULL, NULL, NULL) != SQLITE_OK) {
		store_unlock(st);
		return -EIO;
	}
	/* Whatever stood at the destination is replaced, as rename(2) does. */
	r = exec_paths(st, "DELETE FROM ledger WHERE sandbox=?1 AND "
	    SUBTREE("path", "?2"), sandbox, to, NULL);
	if (r == 0)
		r = exec_paths(st, "UPDATE ledger SET path=?3||substr(path,"
		    "length(?2)+1) WHERE sandbox=?1 AND " SUBTREE("path", "?2"),
		    sandbox, from, to);
	sqlite3_exec(st->db, r == 0 ? "RELEASE lren" :
	    "ROLLBACK TO lren; RELEASE lren", NULL, NULL, NULL);
	store_unlock(st);
	return r;
}

int store_ledger_foreach(struct store *st, int64_t sandbox, const char *prefix,
			 store_ledger_fn fn, void *arg)
{
	sqlite3_stmt *s = NULL;
	struct store_ledger_row row;
	int r = -EIO, rc;

	if (prefix == NULL)
		prefix = "";
	store_lock(st);
	if (store_prepare(st, LEDGER_COLS "WHERE sandbox=?1 AND (?2='' OR "
	    SUBTREE("path", "?2") ") ORDER BY path", &s) < 0)
		goto out;
	sqlite3_bind_int64(s, 1, sandbox);
	sqlite3_bind_text(s, 2, prefix, -1, SQLITE_STATIC);
	r = 0;
	while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		ledger_row(s, &row, false);
		r = fn(&row, arg);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = -EIO;
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_ledger_count(struct store *st, int64_t sandbox, int64_t *count)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO;

	store_lock(st);
	if (store_prepare(st, "SELECT count(*) FROM ledger WHERE sandbox=?", &s) < 0)
		goto out;
	sqlite3_bind_int64(s, 1, sandbox);
	if (sqlite3_step(s) == SQLITE_ROW) {
		*count = sqlite3_column_int64(s, 0);
		r = 0;
	}
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

void store_ledger_row_release(struct store_ledger_row *row)
{
	if (row == NULL)
		return;
	free(row->path);
	row->path = NULL;
}

/* ---- host snapshot ---------------------------------------------------- */

int store_snapshot_begin(struct store *st)
{
	int r = store_tx_begin(st);

	if (r == 0 && sqlite3_exec(st->db, "DELETE FROM snapshot", NULL, NULL,
	    NULL) != SQLITE_OK) {
		store_tx_rollback(st);
		r = -EIO;
	}
	return r;
}

int store_snapshot_put(struct store *st, const struct store_snap_row *row)
{
	sqlite3_stmt *s;
	int r = -EIO;

	store_lock(st);
	if (st->snap_put == NULL && store_prepare(st, "INSERT OR REPLACE INTO"
	    " snapshot VALUES(?,?,?,?,?,?,?)", &st->snap_put) < 0)
		goto out;
	s = st->snap_put;
	sqlite3_bind_text(s, 1, row->path, -1, SQLITE_STATIC);
	sqlite3_bind_int(s, 2, row->type);
	sqlite3_bind_int64(s, 3, row->size);
	sqlite3_bind_int64(s, 4, row->mode);
	sqlite3_bind_int64(s, 5, row->mtime_ns);
	sqlite3_bind_int64(s, 6, row->ino);
	sqlite3_bind_int64(s, 7, row->ctime_ns);
	if (sqlite3_step(s) == SQLITE_DONE)
		r = 0;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
 out:
	store_unlock(st);
	return r;
}

int store_snapshot_commit(struct store *st)
{
	return store_tx_commit(st);
}

int store_snapshot_foreach(struct store *st, store_snap_fn fn, void *arg)
{
	sqlite3_stmt *s = NULL;
	struct store_snap_row row;
	int r = -EIO, rc;

	store_lock(st);
	if (store_prepare(st, "SELECT path,type,size,mode,mtime_ns,ino,ctime_ns"
	    " FROM snapshot ORDER BY path", &s) < 0)
		goto out;
	r = 0;
	while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		row.path = (const char *)sqlite3_column_text(s, 0);
		row.type = sqlite3_column_int(s, 1);
		row.size = sqlite3_column_int64(s, 2);
		row.mode = (uint32_t)sqlite3_column_int64(s, 3);
		row.mtime_ns = sqlite3_column_int64(s, 4);
		row.ino = sqlite3_column_int64(s, 5);
		row.ctime_ns = sqlite3_column_int64(s, 6);
		r = fn(&row, arg);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = -EIO;
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_snapshot_count(struct store *st, int64_t *count)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO;

	store_lock(st);
	if (store_prepare(st, "SELECT count(*) FROM snapshot", &s) < 0)
		goto out;
	if (sqlite3_step(s) == SQLITE_ROW) {
		*count = sqlite3_column_int64(s, 0);
		r = 0;
	}
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}
