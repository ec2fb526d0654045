/*
 * push_plan.c — turn "journal since the cursor + ledger + host tree" into
 * a push plan. Renames are replayed in journal order on a virtual ledger
 * (the real one, overlaid in memory) and become ordered remote renames;
 * every other entry only marks its path dirty. Dirty paths are then
 * compared, in path order, between the host and the virtual ledger. Only
 * the paths the journal names are looked at (cost follows changes, not
 * tree size), except for full walks (first push, RESCAN).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "sync/push_int.h"

enum { DIRTY_SELF = 1, DIRTY_TREE = 2 };

/* A virtual ledger row: live, or known absent. */
struct vrow {
	bool live;
	struct store_ledger_row row;	/* row.path unused (NULL) */
};

struct plan_ctx {
	struct store *st;
	int64_t sb;
	const struct sync_push_config *cfg;
	bool force;
	struct push_host host;
	struct push_map vl;		/* path -> struct vrow * */
	struct push_map loaded;		/* subtrees fully read from the store */
	struct push_map dirty;		/* path -> flags (uintptr_t) */
	struct push_map attempted;	/* force: paths a failed attempt touched */
	struct push_plan *p;
	int64_t last_seq;
};

/* ---- virtual ledger ------------------------------------------------------ */

static bool prefix_loaded(struct plan_ctx *c, const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	bool found;

	push_map_get(&c->loaded, "", &found);
	if (found || n >= sizeof(buf))
		return found;
	memcpy(buf, path, n + 1);
	for (;;) {
		char *s;

		push_map_get(&c->loaded, buf, &found);
		if (found)
			return true;
		s = strrchr(buf, '/');
		if (!s)
			return false;
		*s = '\0';
	}
}

static int vl_set(struct plan_ctx *c, const char *path,
		  const struct store_ledger_row *row)
{
	struct vrow *v = push_map_get(&c->vl, path, NULL);
	int r;

	if (!v) {
		v = calloc(1, sizeof(*v));
		if (!v)
			return -ENOMEM;
		r = push_map_put(&c->vl, path, v);
		if (r < 0) {
			free(v);
			return r;
		}
	}
	v->live = row != NULL;
	if (row) {
		v->row = *row;
		v->row.path = NULL;
	}
	return 0;
}

/* The virtual ledger row at path, or NULL when absent. */
static int vl_get(struct plan_ctx *c, const char *path,
		  const struct store_ledger_row **out)
{
	struct vrow *v = push_map_get(&c->vl, path, NULL);
	struct store_ledger_row row = { 0 };
	int r;

	*out = NULL;
	if (!v && !prefix_loaded(c, path)) {
		r = store_ledger_get(c->st, c->sb, path, &row);
		if (r < 0 && r != -ENOENT)
			return r;
		r = vl_set(c, path, r == 0 ? &row : NULL);
		store_ledger_row_release(&row);
		if (r < 0)
			return r;
		v = push_map_get(&c->vl, path, NULL);
	}
	if (v && v->live)
		*out = &v->row;
	return 0;
}

static int load_row(const struct store_ledger_row *row, void *arg)
{
	struct plan_ctx *c = arg;
	bool found;

	push_map_get(&c->vl, row->path, &found);
	return found ? 0 : vl_set(c, row->path, row);
}

static int vl_load(struct plan_ctx *c, const char *prefix)
{
	int r;

	if (prefix_loaded(c, prefix))
		return 0;
	r = store_ledger_foreach(c->st, c->sb, prefix, load_row, c);
	return r < 0 ? r : push_map_put(&c->loaded, prefix, (void *)1);
}

/* Mark path and everything below absent. */
static int vl_delete(struct plan_ctx *c, const char *path)
{
	const char **keys;
	size_t n;
	int r = vl_load(c, path);

	if (r == 0)
		r = push_map_prefix(&c->vl, path, &keys, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		((struct vrow *)push_map_get(&c->vl, keys[i], NULL))->live = false;
	free(keys);
	return vl_set(c, path, NULL);
}

static char *rebase(const char *path, const char *from, const char *to)
{
	char *s;

	return asprintf(&s, "%s%s", to, path + strlen(from)) < 0 ? NULL : s;
}

static int vl_rename(struct plan_ctx *c, const char *from, const char *to)
{
	const char **keys;
	size_t n;
	int r = vl_delete(c, to);

	if (r == 0)
		r = vl_load(c, from);
	if (r == 0)
		r = push_map_prefix(&c->vl, from, &keys, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct vrow *v = push_map_get(&c->vl, keys[i], NULL);
		char *dst;

		if (!v->live)
			continue;
		dst = rebase(keys[i], from, to);
		r = dst ? vl_set(c, dst, &v->row) : -ENOMEM;
		v->live = false;
		free(dst);
	}
	free(keys);
	return r;
}

/* ---- dirty set ------------------------------------------------------------ */

static int dirty_add(struct plan_ctx *c, const char *path, uintptr_t flags)
{
	uintptr_t old = (uintptr_t)push_map_get(&c->dirty, path, NULL);

	if (!path)
		return 0;
	return push_map_put(&c->dirty, path, (void *)(old | flags));
}

/* Dirty marks below `from` follow a rename to `to`. */
static int dirty_move(struct plan_ctx *c, const char *from, const char *to)
{
	const char **keys;
	char **nk = NULL;
	uintptr_t *fl = NULL;
	size_t n, i;
	int r = push_map_prefix(&c->dirty, from, &keys, &n);

	if (r < 0)
		return r;
	nk = calloc(n + 1, sizeof(*nk));
	fl = calloc(n + 1, sizeof(*fl));
	if (!nk || !fl)
		r = -ENOMEM;
	for (i = 0; r == 0 && i < n; i++) {
		fl[i] = (uintptr_t)push_map_get(&c->dirty, keys[i], NULL);
		nk[i] = rebase(keys[i], from, to);
		if (!nk[i])
			r = -ENOMEM;
	}
	for (i = 0; r == 0 && i < n; i++)
		push_map_del(&c->dirty, keys[i]);	/* keys[i] freed: not used after */
	for (i = 0; r == 0 && i < n; i++)
		r = dirty_add(c, nk[i], fl[i]);
	for (i = 0; nk && i < n; i++)
		free(nk[i]);
	free(nk);
	free(fl);
	free(keys);
	return r;
}

/* ---- plan building ---------------------------------------------------------- */

static int add_op(struct push_plan *p, int kind, const char *a, const char *b,
		  bool mkparent)
{
	struct push_op *o;

	if (p->nops == p->capops) {
		size_t cap = p->capops ? 2 * p->capops : 16;

		o = realloc(p->ops, cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		p->ops = o;
		p->capops = cap;
	}
	o = &p->ops[p->nops];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->a = strdup(a);
	o->b = b ? strdup(b) : NULL;
	o->mkparent = mkparent;
	if (!o->a || (b && !o->b)) {
		free(o->a);
		free(o->b);
		return -ENOMEM;
	}
	p->nops++;
	return 0;
}

static int add_item(struct push_plan *p, const char *path, int act,
		    const struct store_ledger_row *row, char *target)
{
	struct push_item *it;

	if (p->nitems == p->capitems) {
		size_t cap = p->capitems ? 2 * p->capitems : 64;

		it = realloc(p->items, cap * sizeof(*it));
		if (!it)
			return -ENOMEM;
		p->items = it;
		p->capitems = cap;
	}
	it = &p->items[p->nitems];
	memset(it, 0, sizeof(*it));
	it->path = strdup(path);
	if (!it->path)
		return -ENOMEM;
	it->act = act;
	if (row)
		it->row = *row;
	it->row.path = NULL;
	it->target = target;
	p->nitems++;
	return 0;
}

/* The subtree at path in the virtual ledger, as push_guard.manifest. */
static int manifest_of(struct plan_ctx *c, const char *path, char **out)
{
	const char **keys;
	size_t n, len = 0;
	FILE *f;
	int r = vl_load(c, path);

	*out = NULL;
	if (r == 0)
		r = push_map_prefix(&c->vl, path, &keys, &n);
	if (r < 0)
		return r;
	f = open_memstream(out, &len);
	for (size_t i = 0; f && i < n; i++) {
		struct vrow *v = push_map_get(&c->vl, keys[i], NULL);
		char sig[64];

		if (!v->live)
			continue;
		push_guard_sig(&v->row, sig, sizeof(sig));
		fprintf(f, "%s ./%s\n", sig, keys[i]);
	}
	free(keys);
	if (!f || fclose(f) != 0) {
		free(*out);
		*out = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* What the sandbox holds at path per the virtual ledger (its guard). */
static int guard_of(struct plan_ctx *c, const char *path, struct push_guard *g)
{
	const struct store_ledger_row *l;
	const char **keys;
	char sig[64];
	size_t n = 0;
	int r = vl_get(c, path, &l);

	if (r == 0 && c->attempted.n)
		r = push_map_prefix(&c->attempted, path, &keys, &n);
	if (r < 0)
		return r;
	if (c->attempted.n)
		free(keys);
	if (n)
		return 0;	/* may hold a failed attempt's own work: no guard */
	push_guard_sig(l, sig, sizeof(sig));
	g->sig = strdup(sig);
	if (!g->sig)
		return -ENOMEM;
	return l && l->type == STORE_FT_DIR ? manifest_of(c, path, &g->manifest) : 0;
}

/* Anything at or below path in the virtual ledger? */
static int vl_has_tree(struct plan_ctx *c, const char *path, bool *has)
{
	const struct store_ledger_row *l;
	const char **keys;
	size_t n;
	int r = vl_get(c, path, &l);

	*has = l != NULL;
	if (r < 0 || *has)
		return r;
	r = vl_load(c, path);
	if (r == 0)
		r = push_map_prefix(&c->vl, path, &keys, &n);
	for (size_t i = 0; r == 0 && i < n && !*has; i++)
		*has = ((struct vrow *)push_map_get(&c->vl, keys[i], NULL))->live;
	if (r == 0)
		free(keys);
	return r;
}

/*
 * The remote `mkdir -p` before a rename makes the missing parents of `to`:
 * they enter the virtual ledger as directories of unknown mode (0), so a
 * later rename of them moves them remotely, and their compare sets the mode.
 */
static int make_parents(struct plan_ctx *c, const char *to, bool *made)
{
	struct store_ledger_row dir = { .type = STORE_FT_DIR, .mode = S_IFDIR };
	const struct store_ledger_row *l;
	char buf[PATH_MAX];
	int r = 0;

	*made = false;
	if (strlen(to) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, to);
	for (char *s = strchr(buf, '/'); r == 0 && s; s = strchr(s + 1, '/')) {
		*s = '\0';
		r = vl_get(c, buf, &l);
		if (r == 0 && !l) {
			*made = true;
			r = vl_set(c, buf, &dir);
		}
		*s = '/';
	}
	return r;
}

static int replay_rename(struct plan_ctx *c, const char *from, const char *to)
{
	bool has, made;
	int r;

	r = vl_has_tree(c, from, &has);
	if (r == 0 && has) {
		r = make_parents(c, to, &made);
		if (r == 0)
			r = add_op(c->p, PUSH_OP_MV, from, to, made);
		if (r == 0)
			r = guard_of(c, to, &c->p->ops[c->p->nops - 1].g);
		if (r == 0)
			r = vl_rename(c, from, to);
		c->p->renamed++;
	} else if (r == 0) {
		r = dirty_add(c, to, DIRTY_TREE);
	}
	if (r == 0)
		r = dirty_move(c, from, to);
	if (r == 0)
		r = dirty_add(c, to, DIRTY_SELF);
	return r == 0 ? dirty_add(c, from, DIRTY_SELF) : r;
}

static int on_entry(const struct store_entry *e, void *arg)
{
	struct plan_ctx *c = arg;
	int r = 0;

	c->last_seq = e->seq;
	c->p->entries++;
	switch (e->op) {
	case STORE_OP_RENAME:
		if (e->path2 && strcmp(e->path, e->path2))
			return replay_rename(c, e->path, e->path2);
		break;
	case STORE_OP_EXCHANGE:
		r = dirty_add(c, e->path2, DIRTY_TREE);
		return r ? r : dirty_add(c, e->path, DIRTY_TREE);
	case STORE_OP_RESCAN:
		return dirty_add(c, e->path, DIRTY_TREE);
	case STORE_OP_SYMLINK:
		return dirty_add(c, e->path, DIRTY_SELF);
	default:
		break;
	}
	r = dirty_add(c, e->path, DIRTY_SELF);
	if (r == 0 && e->path2)
		r = dirty_add(c, e->path2, DIRTY_SELF);
	return r;
}

/* ---- comparing dirty paths ------------------------------------------------- */

static bool excluded(const char *path)
{
	return !*path || push_path_under(path, SYNC_STAGE_DIR) ||
		!strcmp(path, SYNC_MARKER_NAME);
}

static bool ignored(struct plan_ctx *c, const char *path, bool is_dir)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);

	if (!c->cfg->ignore)
		return false;
	if (c->cfg->ignore(path, is_dir, c->cfg->ignore_arg))
		return true;
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, path, n + 1);
	for (char *s = strchr(buf, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (c->cfg->ignore(buf, true, c->cfg->ignore_arg))
			return true;
		*s = '/';
	}
	return false;
}

int push_plan_skip(struct push_plan *p, const char *path, int err)
{
	if (err < 0) {
		p->unreadable++;
		if (!p->why[0])
			snprintf(p->why, sizeof(p->why), "%s: %s", path,
				 strerror(-err));
	}
	return push_retry_add(&p->skip, path);
}

static bool unreadable(int r)
{
	return r == -EACCES || r == -EPERM || r == -EIO;
}

static int walk_add(const char *rel, const struct stat *st, void *arg)
{
	struct plan_ctx *c = arg;

	if (excluded(rel))
		return 1;
	if (!st)	/* a directory that could not be entered */
		return push_plan_skip(c->p, rel, -EACCES);
	if (c->cfg->ignore && c->cfg->ignore(rel, S_ISDIR(st->st_mode),
					     c->cfg->ignore_arg))
		return 1;	/* neither it nor its subtree */
	return dirty_add(c, rel, DIRTY_SELF);
}

/* DIRTY_TREE paths: everything below them on the host or in the ledger. */
static int expand_trees(struct plan_ctx *c)
{
	const char **keys, **lk, *last = NULL;
	size_t n, nl;
	int r = push_map_prefix(&c->dirty, "", &keys, &n);

	for (size_t i = 0; r == 0 && i < n; i++) {
		uintptr_t f = (uintptr_t)push_map_get(&c->dirty, keys[i], NULL);

		if (!(f & DIRTY_TREE) || (last && push_path_under(keys[i], last)))
			continue;
		last = keys[i];
		r = push_host_walk(&c->host, keys[i], walk_add, c);
		if (r == -ENOENT || r == -ENOTDIR)
			r = 0;
		else if (unreadable(r))
			r = push_plan_skip(c->p, keys[i], r);
		if (r == 0)
			r = vl_load(c, keys[i]);
		if (r == 0)
			r = push_map_prefix(&c->vl, keys[i], &lk, &nl);
		for (size_t j = 0; r == 0 && j < nl; j++)
			if (((struct vrow *)push_map_get(&c->vl, lk[j], NULL))->live)
				r = dirty_add(c, lk[j], DIRTY_SELF);
		if (r == 0)
			free(lk);
	}
	free(keys);
	return r;
}

/* Parents the sandbox may lack are compared too (so they get made). */
static int add_parents(struct plan_ctx *c)
{
	const char **keys;
	size_t n;
	int r = push_map_prefix(&c->dirty, "", &keys, &n);

	for (size_t i = 0; r == 0 && i < n; i++) {
		char buf[PATH_MAX];
		const struct store_ledger_row *l;

		if (strlen(keys[i]) >= sizeof(buf))
			continue;
		strcpy(buf, keys[i]);
		for (char *s = strrchr(buf, '/'); r == 0 && s; s = strrchr(buf, '/')) {
			bool found;

			*s = '\0';
			push_map_get(&c->dirty, buf, &found);
			if (found)
				break;
			r = vl_get(c, buf, &l);
			if (r == 0 && !l)
				r = dirty_add(c, buf, DIRTY_SELF);
		}
	}
	free(keys);
	return r;
}

static void row_of(const struct stat *st, int type, struct store_ledger_row *row)
{
	memset(row, 0, sizeof(*row));
	row->type = type;
	row->mode = st->st_mode;
	row->size = type == STORE_FT_DIR ? 0 : st->st_size;
	row->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000;
}

static int upload(struct plan_ctx *c, const char *path,
		  const struct store_ledger_row *row, char *target)
{
	int r = add_item(c->p, path, PUSH_UPLOAD, row, target);

	if (r < 0) {
		free(target);
		return r;
	}
	/* The ledger row is not a directory here (compare deleted it). */
	r = guard_of(c, path, &c->p->items[c->p->nitems - 1].g);
	if (r < 0)
		return r;
	c->p->files_total++;
	if (!target)
		c->p->bytes_total += row->size;
	return 0;
}

static int cmp_file(struct plan_ctx *c, const char *path, const struct stat *st,
		    const struct store_ledger_row *l)
{
	struct store_ledger_row row;
	int64_t size;
	int fd, r;

	row_of(st, STORE_FT_FILE, &row);
	if (c->force || !l || l->type != STORE_FT_FILE || l->size != st->st_size)
		return upload(c, path, &row, NULL);
	r = push_host_open(&c->host, path, &fd);
	if (r < 0 && unreadable(r))
		return push_plan_skip(c->p, path, r);
	if (r < 0)
		return r == -ENOENT || r == -ELOOP ? 0 : r;
	r = push_sha_fd(fd, row.sha256, &size);
	close(fd);
	if (r < 0)
		return unreadable(r) ? push_plan_skip(c->p, path, r) : r;
	if (size != l->size || memcmp(row.sha256, l->sha256, sizeof(row.sha256)))
		return upload(c, path, &row, NULL);
	if ((l->mode & 07777) == (st->st_mode & 07777)) {
		c->p->skipped++;
		return 0;
	}
	row = *l;
	row.mode = st->st_mode;
	return add_item(c->p, path, PUSH_CHMOD, &row, NULL);
}

static int cmp_link(struct plan_ctx *c, const char *path, const struct stat *st,
		    const struct store_ledger_row *l)
{
	struct store_ledger_row row;
	char *target;
	int r = push_host_readlink(&c->host, path, &target);

	if (r < 0)
		return r == -ENOENT || r == -EINVAL ? 0 : r;
	row_of(st, STORE_FT_SYMLINK, &row);
	row.size = (int64_t)strlen(target);
	push_sha_buf(target, strlen(target), row.sha256);
	if (!c->force && l && l->type == STORE_FT_SYMLINK &&
	    !memcmp(row.sha256, l->sha256, sizeof(row.sha256))) {
		free(target);
		c->p->skipped++;
		return 0;
	}
	return upload(c, path, &row, target);
}

static int cmp_dir(struct plan_ctx *c, const char *path, const struct stat *st,
		   const struct store_ledger_row *l)
{
	struct store_ledger_row row;
	int r;

	row_of(st, STORE_FT_DIR, &row);
	if (!l || l->type != STORE_FT_DIR) {
		r = add_item(c->p, path, PUSH_MKDIR, &row, NULL);
		if (r == 0)
			r = guard_of(c, path, &c->p->items[c->p->nitems - 1].g);
	}
	else if (c->force || (l->mode & 07777) != (st->st_mode & 07777))
		r = add_item(c->p, path, PUSH_CHMOD, &row, NULL);
	else
		return 0;
	return r < 0 ? r : vl_set(c, path, &row);
}

static int compare(struct plan_ctx *c, const char *path)
{
	const struct store_ledger_row *l;
	struct stat st;
	int r;

	if (excluded(path))
		return 0;
	r = push_host_lstat(&c->host, path, &st);
	if (r < 0 && r != -ENOENT)	/* leave the sandbox as it is */
		return r == -ENOMEM ? r : push_plan_skip(c->p, path, r);
	if (ignored(c, path, r == 0 && S_ISDIR(st.st_mode)))
		return 0;
	r = r == -ENOENT ? 1 : 0;
	if (vl_get(c, path, &l) < 0)
		return -EIO;
	/* Gone on the host, or a directory <-> non-directory swap. */
	if ((r && (l || c->force)) ||
	    (!r && l && (l->type == STORE_FT_DIR) != !!S_ISDIR(st.st_mode))) {
		int k = add_item(c->p, path, PUSH_DELETE, NULL, NULL);

		if (k == 0)
			k = guard_of(c, path, &c->p->items[c->p->nitems - 1].g);
		if (k == 0 && l)
			k = vl_delete(c, path);
		if (k < 0)
			return k;
		l = NULL;
	}
	if (r)
		return 0;
	if (S_ISDIR(st.st_mode))
		return cmp_dir(c, path, &st, l);
	if (S_ISREG(st.st_mode))
		return cmp_file(c, path, &st, l);
	if (S_ISLNK(st.st_mode))
		return cmp_link(c, path, &st, l);
	return 0;	/* fifos, sockets, devices are not pushed */
}

static int compare_all(struct plan_ctx *c)
{
	const char **keys;
	size_t n;
	int r = push_map_prefix(&c->dirty, "", &keys, &n);

	for (size_t i = 0; r == 0 && i < n; i++)
		r = compare(c, keys[i]);
	free(keys);
	return r;
}

static int marker_init(struct plan_ctx *c, int64_t cursor)
{
	char key[64], *val = NULL;
	uint8_t rnd[16];
	int r;

	snprintf(key, sizeof(key), "sandbox.%lld.marker", (long long)c->sb);
	r = store_meta_get(c->st, key, &val);
	free(val);
	if (r == 0 && cursor == 0) {
		int64_t rows = 0;

		/* A marker left by a removed sandbox whose id was reused. */
		r = store_ledger_count(c->st, c->sb, &rows);
		if (r == 0 && rows == 0)
			r = -ENOENT;
	}
	if (r != -ENOENT)
		return r;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	c->p->marker = malloc(2 * sizeof(rnd) + 1);
	if (!c->p->marker)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(rnd); i++)
		sprintf(c->p->marker + 2 * i, "%02x", rnd[i]);
	return 0;
}

/* Paths skipped before are compared again once their delay is over. */
static int retry_due(struct plan_ctx *c)
{
	struct push_plan *p = c->p;
	int r = push_retry_load(c->st, c->sb, &p->old);

	if (r < 0 || !p->old.n || store_now_ns() < p->old.due_ns)
		return r;
	p->old_due = true;
	for (size_t i = 0; r == 0 && i < p->old.n; i++)
		r = dirty_add(c, p->old.paths[i], DIRTY_SELF | DIRTY_TREE);
	return r;
}

static void vrow_free(void *v)
{
	free(v);
}

int push_plan_build(struct store *st, int64_t sb, int root_fd,
		    const struct sync_push_config *cfg, bool force,
		    struct push_plan *out)
{
	struct plan_ctx c = { .st = st, .sb = sb, .cfg = cfg, .force = force,
			      .p = out };
	int64_t cursor;
	int r;

	memset(out, 0, sizeof(*out));
	push_host_init(&c.host, root_fd);
	r = store_sandbox_cursor_get(st, sb, &cursor);
	if (r == 0)
		r = marker_init(&c, cursor);
	if (r == 0)
		r = push_guard_suffix(st, sb, &out->copy_suffix);
	if (r == 0 && force)
		r = push_attempted_load(st, sb, &c.attempted);
	c.last_seq = cursor;
	/* Never pushed (no marker yet): compare the whole tree. */
	if (r == 0 && out->marker)
		r = dirty_add(&c, "", DIRTY_TREE);
	if (r == 0)
		r = retry_due(&c);
	if (r == 0)
		r = store_journal_foreach(st, cursor, 0, on_entry, &c);
	if (r == 0)
		r = expand_trees(&c);
	if (r == 0)
		r = add_parents(&c);
	if (r == 0)
		r = compare_all(&c);
	out->cursor = c.last_seq;
	push_host_release(&c.host);
	push_map_clear(&c.vl, vrow_free);
	push_map_clear(&c.loaded, NULL);
	push_map_clear(&c.dirty, NULL);
	push_map_clear(&c.attempted, NULL);
	if (r < 0)
		push_plan_release(out);
	return r;
}

bool push_plan_empty(const struct push_plan *p)
{
	return !p->nops && !p->nitems && !p->marker;
}

void push_plan_release(struct push_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nops; i++) {
		free(p->ops[i].a);
		free(p->ops[i].b);
		push_guard_release(&p->ops[i].g);
	}
	for (size_t i = 0; i < p->nitems; i++) {
		free(p->items[i].path);
		free(p->items[i].target);
		push_guard_release(&p->items[i].g);
	}
	for (size_t i = 0; i < p->nkept; i++) {
		free(p->kept[i].path);
		free(p->kept[i].copy);
	}
	free(p->kept);
	free(p->copy_suffix);
	free(p->ops);
	free(p->items);
	free(p->marker);
	push_retry_release(&p->old);
	push_retry_release(&p->skip);
	memset(p, 0, sizeof(*p));
}
