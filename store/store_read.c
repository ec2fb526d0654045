/*
 * store_read.c — journal reads, pruning, sandboxes and conflicts.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_int.h"

/* Rows are read in chunks and the lock dropped around callbacks, so a slow
 * consumer (a push hashing files) never stalls the group committer. */
#define CHUNK 512

struct chunk {
	struct store_entry e[CHUNK];
	size_t n;
};

static void chunk_release(struct chunk *c)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		free((char *)c->e[i].path);
		free((char *)c->e[i].path2);
	}
	c->n = 0;
}

static char *col_strdup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? strdup((const char *)t) : NULL;
}

static int chunk_load(struct store *st, struct chunk *c, int64_t since,
		      int64_t max_seq, int64_t want)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO, rc;

	store_lock(st);
	if (store_prepare(st, "SELECT seq,op,path,path2,mode,time_ns,origin FROM"
	    " journal WHERE seq>? AND seq<=? ORDER BY seq LIMIT ?", &s) < 0)
		goto out;
	sqlite3_bind_int64(s, 1, since);
	sqlite3_bind_int64(s, 2, max_seq);
	sqlite3_bind_int64(s, 3, want);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_entry *e = &c->e[c->n];

		e->seq = sqlite3_column_int64(s, 0);
		e->op = sqlite3_column_int(s, 1);
		e->path = col_strdup(s, 2);
		e->path2 = col_strdup(s, 3);
		e->mode = (uint32_t)sqlite3_column_int64(s, 4);
		e->time_ns = sqlite3_column_int64(s, 5);
		e->origin = sqlite3_column_int64(s, 6);
		c->n++;
		if (e->path == NULL)
			goto out;
	}
	if (rc == SQLITE_DONE)
		r = 0;
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_journal_foreach(struct store *st, int64_t since, int64_t limit,
			  store_entry_fn fn, void *arg)
{
	struct chunk *c;
	int64_t done = 0, max_seq = store_journal_committed(st);
	size_t i;
	int r = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	for (;;) {
		int64_t want = CHUNK;

		if (limit > 0 && limit - done < want)
			want = limit - done;
		if (want <= 0)
			break;
		if ((r = chunk_load(st, c, since, max_seq, want)) < 0 || c->n == 0)
			break;
		for (i = 0; i < c->n && r == 0; i++)
			r = fn(&c->e[i], arg);
		since = c->e[c->n - 1].seq;
		done += (int64_t)c->n;
		chunk_release(c);
		if (r != 0)
			break;
	}
	chunk_release(c);
	free(c);
	return r;
}

/* Run a query yielding one integer (bound to up to three int64 params). */
static int query_int64(struct store *st, const char *sql, int nparams,
		       int64_t p1, int64_t p2, int64_t p3, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO, rc;

	store_lock(st);
	if (store_prepare(st, sql, &s) < 0)
		goto out;
	if (nparams > 0)
		sqlite3_bind_int64(s, 1, p1);
	if (nparams > 1)
		sqlite3_bind_int64(s, 2, p2);
	if (nparams > 2)
		sqlite3_bind_int64(s, 3, p3);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		r = 0;
	} else if (rc == SQLITE_DONE) {
		r = -ENOENT;
	}
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

/* Run a statement with up to two int64 params; *changes gets the count. */
static int exec_int64(struct store *st, const char *sql, int nparams,
		      int64_t p1, int64_t p2, int64_t *changes)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO;

	store_lock(st);
	if (store_prepare(st, sql, &s) < 0)
		goto out;
	if (nparams > 0)
		sqlite3_bind_int64(s, 1, p1);
	if (nparams > 1)
		sqlite3_bind_int64(s, 2, p2);
	if (sqlite3_step(s) != SQLITE_DONE)
		goto out;
	if (changes)
		*changes = sqlite3_changes(st->db);
	r = 0;
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_journal_count(struct store *st, int64_t since, int64_t *count)
{
	return query_int64(st, "SELECT count(*) FROM journal WHERE seq>? AND"
	    " seq<=?", 2, since, store_journal_committed(st), 0, count);
}

int store_journal_pending(struct store *st, int64_t since, int64_t sandbox,
			  int64_t *count)
{
	return query_int64(st, "SELECT count(*) FROM journal WHERE seq>? AND"
	    " seq<=? AND origin<>?", 3, since, store_journal_committed(st), sandbox,
	    count);
}

int store_journal_prune(struct store *st, int64_t *pruned)
{
	int64_t low, n = 0;
	int r;

	r = query_int64(st, "SELECT min(cursor) FROM sandboxes"
	    " HAVING count(*)>0", 0, 0, 0, 0, &low);
	if (r == -ENOENT) {
		r = 0;	/* no sandbox: keep the log */
	} else if (r == 0) {
		/* The journal's last seq is its max(seq) or, once pruned
		 * empty, the one kept here (seqs never go back). */
		r = exec_int64(st, "INSERT OR REPLACE INTO meta(key,value)"
		    " SELECT 'head',max(seq) FROM journal WHERE seq<=?"
		    " HAVING count(*)>0", 1, low, 0, NULL);
		if (r == 0)
			r = exec_int64(st, "DELETE FROM journal WHERE seq<=?", 1,
			    low, 0, &n);
	}
	if (pruned)
		*pruned = n;
	return r;
}

/* ---- sandboxes -------------------------------------------------------- */

int store_sandbox_add(struct store *st, const char *name, const char *url,
		      int64_t *id_out)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO, rc;

	if (name == NULL || *name == '\0' || url == NULL)
		return -EINVAL;
	store_lock(st);
	if (store_prepare(st, "INSERT INTO sandboxes(name,url,created_ns)"
	    " VALUES(?,?,?)", &s) < 0)
		goto out;
	sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, url, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, store_now_ns());
	rc = sqlite3_step(s);
	if (rc == SQLITE_CONSTRAINT) {
		r = -EEXIST;
	} else if (rc == SQLITE_DONE) {
		if (id_out)
			*id_out = sqlite3_last_insert_rowid(st->db);
		r = 0;
	}
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_sandbox_remove(struct store *st, const char *name)
{
	struct store_sandbox sb;
	int64_t n;
	int r;

	if ((r = store_sandbox_get(st, name, &sb)) < 0)
		return r;
	store_lock(st);
	if (sqlite3_exec(st->db, "SAVEPOINT sbrm", NULL, NULL, NULL) != SQLITE_OK) {
		r = -EIO;
		goto out;
	}
	r = exec_int64(st, "DELETE FROM ledger WHERE sandbox=?", 1, sb.id, 0, &n);
	if (r == 0)
		r = exec_int64(st, "DELETE FROM conflicts WHERE sandbox=?", 1,
		    sb.id, 0, &n);
	if (r == 0)
		r = exec_int64(st, "DELETE FROM sandboxes WHERE id=?", 1, sb.id,
		    0, &n);
	sqlite3_exec(st->db, r == 0 ? "RELEASE sbrm" :
	    "ROLLBACK TO sbrm; RELEASE sbrm", NULL, NULL, NULL);
 out:
	store_unlock(st);
	store_sandbox_release(&sb);
	return r;
}

static int sandbox_row(sqlite3_stmt *s, struct store_sandbox *sb)
{
	sb->id = sqlite3_column_int64(s, 0);
	sb->name = col_strdup(s, 1);
	sb->url = col_strdup(s, 2);
	sb->cursor = sqlite3_column_int64(s, 3);
	sb->created_ns = sqlite3_column_int64(s, 4);
	if (sb->name == NULL || sb->url == NULL) {
		store_sandbox_release(sb);
		return -ENOMEM;
	}
	return 0;
}

#define SB_COLS "SELECT id,name,url,cursor,created_ns FROM sandboxes "

static int sandbox_get(struct store *st, const char *sql, const char *name,
		       int64_t id, struct store_sandbox *out)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO, rc;

	memset(out, 0, sizeof(*out));
	store_lock(st);
	if (store_prepare(st, sql, &s) < 0)
		goto out;
	if (name)
		sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
	else
		sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = sandbox_row(s, out);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_sandbox_get(struct store *st, const char *name,
		      struct store_sandbox *out)
{
	return sandbox_get(st, SB_COLS "WHERE name=?", name, 0, out);
}

int store_sandbox_get_by_id(struct store *st, int64_t id,
			    struct store_sandbox *out)
{
	return sandbox_get(st, SB_COLS "WHERE id=?", NULL, id, out);
}

void store_sandbox_release(struct store_sandbox *sb)
{
	if (sb == NULL)
		return;
	free(sb->name);
	free(sb->url);
	sb->name = sb->url = NULL;
}

int store_sandbox_list(struct store *st, struct store_sandbox **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct store_sandbox *v = NULL, *nv;
	size_t len = 0;
	int r = -EIO, rc;

	store_lock(st);
	if (store_prepare(st, SB_COLS "ORDER BY name", &s) < 0)
		goto out;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((nv = realloc(v, (len + 1) * sizeof(*v))) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		v = nv;
		if ((r = sandbox_row(s, &v[len])) < 0)
			goto out;
		len++;
	}
	r = rc == SQLITE_DONE ? 0 : -EIO;
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	if (r < 0) {
		store_sandbox_list_free(v, len);
		return r;
	}
	*out = v;
	*n = len;
	return 0;
}

void store_sandbox_list_free(struct store_sandbox *list, size_t n)
{
	size_t i;

	for (i = 0; list && i < n; i++)
		store_sandbox_release(&list[i]);
	free(list);
}

int store_sandbox_cursor_get(struct store *st, int64_t id, int64_t *cursor)
{
	return query_int64(st, "SELECT cursor FROM sandboxes WHERE id=?", 1, id,
	    0, 0, cursor);
}

int store_sandbox_cursor_set(struct store *st, int64_t id, int64_t cursor)
{
	int64_t n = 0;
	int r = exec_int64(st, "UPDATE sandboxes SET cursor=? WHERE id=?", 2,
	    cursor, id, &n);

	return r < 0 ? r : n == 0 ? -ENOENT : 0;
}

int store_sandbox_needs_push(struct store *st, int64_t id, bool *needed)
{
	int64_t cursor;
	int r = store_sandbox_cursor_get(st, id, &cursor);

	if (r == 0)
		*needed = store_journal_head(st) > cursor;
	return r;
}

/* ---- conflicts -------------------------------------------------------- */

int store_conflict_add(struct store *st, int64_t sandbox, const char *path,
		       const char *copy_path, int64_t *id_out)
{
	sqlite3_stmt *s = NULL;
	int r = -EIO;

	store_lock(st);
	if (store_prepare(st, "INSERT INTO conflicts(sandbox,path,copy_path,"
	    "time_ns) VALUES(?,?,?,?)", &s) < 0)
		goto out;
	sqlite3_bind_int64(s, 1, sandbox);
	sqlite3_bind_text(s, 2, path, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 3, copy_path, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, store_now_ns());
	if (sqlite3_step(s) == SQLITE_DONE) {
		if (id_out)
			*id_out = sqlite3_last_insert_rowid(st->db);
		r = 0;
	}
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	return r;
}

int store_conflict_list(struct store *st, int64_t sandbox,
			struct store_conflict **out, size_t *n)
{
	sqlite3_stmt *s = NULL;
	struct store_conflict *v = NULL, *nv, *c;
	size_t len = 0;
	int r = -EIO, rc;

	store_lock(st);
	if (store_prepare(st, "SELECT id,sandbox,path,copy_path,time_ns FROM"
	    " conflicts WHERE ?<0 OR sandbox=? ORDER BY id", &s) < 0)
		goto out;
	sqlite3_bind_int64(s, 1, sandbox);
	sqlite3_bind_int64(s, 2, sandbox);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if ((nv = realloc(v, (len + 1) * sizeof(*v))) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		v = nv;
		c = &v[len++];
		c->id = sqlite3_column_int64(s, 0);
		c->sandbox = sqlite3_column_int64(s, 1);
		c->path = col_strdup(s, 2);
		c->copy_path = col_strdup(s, 3);
		c->time_ns = sqlite3_column_int64(s, 4);
	}
	r = rc == SQLITE_DONE ? 0 : -EIO;
 out:
	sqlite3_finalize(s);
	store_unlock(st);
	if (r < 0) {
		store_conflict_list_free(v, len);
		return r;
	}
	*out = v;
	*n = len;
	return 0;
}

void store_conflict_list_free(struct store_conflict *list, size_t n)
{
	size_t i;

	for (i = 0; list && i < n; i++) {
		free(list[i].path);
		free(list[i].copy_path);
	}
	free(list);
}

int store_conflict_resolve(struct store *st, int64_t id)
{
	int64_t n = 0;
	int r = exec_int64(st, "DELETE FROM conflicts WHERE id=?", 1, id, 0, &n);

	return r < 0 ? r : n == 0 ? -ENOENT : 0;
}
