/*
 * push_send.c — the one remote call of a push attempt: a tar (libarchive)
 * streamed straight from the host files into `tar -x` in a fresh stage
 * directory on the sandbox, hashing while streaming, followed by the apply
 * script as the tar's last member. The script runs only once tar has read
 * the whole archive, so a broken stream applies nothing.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <archive.h>
#include <archive_entry.h>
#include <openssl/evp.h>

#include "sync/fault_int.h"
#include "sync/push_int.h"

#define CHUNK (1 << 18)
#define LINE_MAX_ARGS 16384	/* bytes of arguments per batched command */

/* ---- the apply script -------------------------------------------------- */

struct sbuf {
	char *s;
	size_t n, cap;
	bool oom;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->n + n + 1 > b->cap) {
		size_t cap = (b->cap ? b->cap * 2 : 4096) + n;
		char *p = realloc(b->s, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* pre + s, quoted for sh. */
static void sb_quoted(struct sbuf *b, const char *pre, const char *s)
{
	char *full, *q;

	if (asprintf(&full, "%s%s", pre, s) < 0) {
		b->oom = true;
		return;
	}
	q = sync_shell_quote(full);
	free(full);
	if (!q) {
		b->oom = true;
		return;
	}
	sb_str(b, q);
	free(q);
}

/* ' ./PATH' quoted (a leading '-' can never look like an option). */
static void sb_path(struct sbuf *b, const char *pre, const char *path)
{
	sb_str(b, " ");
	sb_quoted(b, pre, path);
}

/* Batch `cmd` over items with act (and a filter), splitting long lines. */
static void batch(struct sbuf *b, const struct push_plan *p, const char *cmd,
		  int act, const char *pre)
{
	size_t start = 0;

	for (size_t i = 0; i < p->nitems; i++) {
		if (p->items[i].act != act)
			continue;
		if (start == 0 || b->n - start > LINE_MAX_ARGS) {
			if (start)
				sb_str(b, "\n");
			sb_str(b, cmd);
			start = b->n;
		}
		sb_path(b, pre, p->items[i].path);
	}
	if (start)
		sb_str(b, "\n");
}

static void dir_of(const char *path, char *buf, size_t n)
{
	const char *s = strrchr(path, '/');
	size_t k = s ? (size_t)(s - path) : 0;

	snprintf(buf, n, "%.*s", (int)k, path);
}

/* ---- guards (see push_guard.c) ---------------------------------------- */

static void sb_sig(struct sbuf *b, const char *sig)
{
	char *q = sync_shell_quote(sig);

	if (!q) {
		b->oom = true;
		return;
	}
	sb_str(b, " ");
	sb_str(b, q);
	free(q);
}

/* One guard alone: g (delete, rename target), gu (upload), gm (mkdir). */
static void guard_one(struct sbuf *b, const char *path, const struct push_guard *g,
		      int act, const char *stage, int *mid)
{
	bool none = !strcmp(g->sig, "-");
	char m[64];

	if (g->manifest) {
		snprintf(m, sizeof(m), " \"$S/x/%d\"\n", (*mid)++);
		sb_str(b, "gd");
		sb_path(b, "./", path);
		sb_str(b, m);
		return;
	}
	if (act == PUSH_MKDIR) {
		sb_str(b, "gm");
		sb_path(b, "./", path);
		sb_str(b, "\n");
		return;
	}
	if (none) {	/* builtins only, no fork, when nothing is there */
		sb_str(b, "if [ -e");
		sb_path(b, "./", path);
		sb_str(b, " ] || [ -L");
		sb_path(b, "./", path);
		sb_str(b, " ]; then ");
	}
	sb_str(b, act == PUSH_UPLOAD ? "gu" : "g");
	sb_path(b, "./", path);
	sb_sig(b, g->sig);
	if (act == PUSH_UPLOAD) {
		char pre[PATH_MAX];

		snprintf(pre, sizeof(pre), "./%s/t/", stage);
		sb_path(b, pre, path);
	}
	sb_str(b, none ? "; fi\n" : "\n");
}

static bool movable(const struct push_item *it)
{
	return it->act == PUSH_UPLOAD && !it->torn;
}

static bool guarded(const struct push_item *it, int act)
{
	return it->act == act && it->g.sig && (act != PUSH_UPLOAD || movable(it));
}

/*
 * Guards of items [from, to) with act. Files the ledger holds are checked
 * together by one `st` whose output must be exactly the ledger's sizes and
 * mtimes; only when it is not, each is checked alone.
 */
static void guards(struct sbuf *b, const struct push_plan *p, size_t from,
		   size_t to, int act, const char *stage, int *mid)
{
	size_t nf = 0, start = 0;

	for (size_t i = from; i < to; i++) {
		const struct push_item *it = &p->items[i];

		if (!guarded(it, act))
			continue;
		if (it->g.manifest || strncmp(it->g.sig, "f ", 2))
			guard_one(b, it->path, &it->g, act, stage, mid);
		else
			nf++;
	}
	for (size_t i = from; nf && i < to; i = start) {
		size_t n = 0, line = b->n;

		sb_str(b, "if [ \"$(st");
		for (start = i; start < to && b->n - line < LINE_MAX_ARGS; start++) {
			const struct push_item *it = &p->items[start];

			if (!guarded(it, act) || it->g.manifest ||
			    strncmp(it->g.sig, "f ", 2))
				continue;
			sb_path(b, "./", it->path);
			n++;
		}
		sb_str(b, ")\" != '");
		for (size_t k = i, first = 1; k < start; k++) {
			const struct push_item *it = &p->items[k];

			if (!guarded(it, act) || it->g.manifest ||
			    strncmp(it->g.sig, "f ", 2))
				continue;
			if (!first)
				sb_str(b, "\n");
			sb_str(b, it->g.sig + 2);
			first = 0;
		}
		sb_str(b, "' ]; then\n");
		for (size_t k = i; k < start; k++) {
			const struct push_item *it = &p->items[k];

			if (guarded(it, act) && !it->g.manifest &&
			    !strncmp(it->g.sig, "f ", 2))
				guard_one(b, it->path, &it->g, act, stage, mid);
		}
		sb_str(b, "fi\n");
		nf -= n;
	}
}

/* ---- new directories move whole ----------------------------------------- */

/*
 * A directory new to the sandbox (a PUSH_MKDIR item) whose staged subtree
 * holds only what the plan puts there is renamed into place whole when the
 * sandbox has nothing at its path: a cold push of 10,000 files in 100
 * directories renames 100 directories (one mv) instead of 10,000 files
 * after 10,000 guards. When the sandbox has something there, or the parent
 * is missing, the per-file moves below apply as before: each of their
 * batches runs only while its staged directory is still there.
 *
 * dm PARENT PATH...: one mv of every staged PATH whose place is free.
 */
static const char dm_prelude[] =
"dm() {\n"
" t=$1; shift; n=$#\n"
" for p do\n"
"  if [ -d \"$S/t/${p#./}\" ] && [ -d \"$t\" ] && [ ! -L \"$t\" ] && [ ! -e \"$p\" ] && [ ! -L \"$p\" ]\n"
"  then set -- \"$@\" \"$S/t/${p#./}\"; fi\n"
" done\n"
" shift $n\n"
" [ $# -eq 0 ] || mv -f \"$@\" \"$t/\"\n"
"}\n";

/* First item whose path is >= key (items are sorted by path). */
static size_t lower(const struct push_plan *p, const char *key)
{
	size_t lo = 0, hi = p->nitems;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(p->items[mid].path, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool is_mkdir(const struct push_plan *p, const char *path)
{
	for (size_t k = lower(p, path); k < p->nitems &&
	     !strcmp(p->items[k].path, path); k++)
		if (p->items[k].act == PUSH_MKDIR)
			return true;
	return false;
}

/* Every directory of item i's staged subtree is new too (its mode is set
 * by chmods()), and nothing below it but uploads, mkdirs and deletions. */
static bool whole(const struct push_plan *p, size_t i)
{
	char key[PATH_MAX], anc[PATH_MAX];
	size_t n = strlen(p->items[i].path);

	if (p->items[i].act != PUSH_MKDIR || n + 2 > sizeof(key))
		return false;
	snprintf(key, sizeof(key), "%s/", p->items[i].path);
	for (size_t k = lower(p, key); k < p->nitems &&
	     !strncmp(p->items[k].path, key, n + 1); k++) {
		const struct push_item *it = &p->items[k];
		char *s;

		if (it->act == PUSH_CHMOD)
			return false;
		if (it->act != PUSH_UPLOAD)
			continue;
		snprintf(anc, sizeof(anc), "%s", it->path);
		while ((s = strrchr(anc, '/')) && (size_t)(s - anc) > n) {
			*s = '\0';
			if (!is_mkdir(p, anc))
				return false;
		}
	}
	return true;
}

/* Staged files that must not be applied (changed while read) go first:
 * a directory moved whole must not carry them. */
static void unstage_torn(struct sbuf *b, const struct push_plan *p,
			 const char *stage)
{
	char pre[PATH_MAX];
	size_t start = 0;

	snprintf(pre, sizeof(pre), "./%s/t/", stage);
	for (size_t i = 0; i < p->nitems; i++) {
		const struct push_item *it = &p->items[i];

		if (it->act != PUSH_UPLOAD || !it->torn || it->target)
			continue;
		if (start && b->n - start > LINE_MAX_ARGS) {
			sb_str(b, "\n");
			start = 0;
		}
		if (!start) {
			sb_str(b, "rm -f");
			start = b->n;
		}
		sb_path(b, pre, it->path);
	}
	if (start)
		sb_str(b, "\n");
}

static bool whole_parent(const struct push_plan *p, const bool *ok,
			 const char *par)
{
	for (size_t k = lower(p, par); *par && k < p->nitems &&
	     !strcmp(p->items[k].path, par); k++)
		if (ok[k])
			return true;
	return false;
}

/* dm lines for the topmost whole directories (a whole parent moves its
 * children along), one per run of siblings. */
static void dm_lines(struct sbuf *b, const struct push_plan *p, bool *ok)
{
	char par[PATH_MAX], cur[PATH_MAX] = "";
	size_t start = 0;

	for (size_t i = 0; i < p->nitems; i++) {
		ok[i] = whole(p, i);
		dir_of(p->items[i].path, par, sizeof(par));
		if (!ok[i] || whole_parent(p, ok, par))
			continue;
		if (start && (strcmp(par, cur) || b->n - start > LINE_MAX_ARGS)) {
			sb_str(b, "\n");
			start = 0;
		}
		if (!start) {
			sb_str(b, "dm");
			sb_path(b, "./", par);
			snprintf(cur, sizeof(cur), "%s", par);
			start = b->n;
		}
		sb_path(b, "./", p->items[i].path);
	}
	if (start)
		sb_str(b, "\n");
}

/* The prelude and dm lines, when there is a whole directory. Returns
 * whether there is one. */
static bool dir_moves(struct sbuf *b, const struct push_plan *p)
{
	bool *ok = calloc(p->nitems ? p->nitems : 1, sizeof(*ok));
	struct sbuf dm = { 0 };
	bool any;

	if (!ok) {
		b->oom = true;
		return false;
	}
	dm_lines(&dm, p, ok);
	any = dm.n > 0;
	if (any) {
		sb_str(b, dm_prelude);
		sb_add(b, dm.s, dm.n);
	}
	b->oom |= dm.oom;
	free(dm.s);
	free(ok);
	return any;
}

/* Staged files move into place with one `mv` per destination directory,
 * each batch right after its guards; after dir_moves(), only while the
 * staged directory was not moved whole. */
static void moves(struct sbuf *b, const struct push_plan *p, const char *stage,
		  bool maybe_moved)
{
	char d[PATH_MAX], d2[PATH_MAX], pre[PATH_MAX];
	size_t i = 0, j;

	snprintf(pre, sizeof(pre), "./%s/t/", stage);
	while (i < p->nitems) {
		size_t bytes = 0;

		if (!movable(&p->items[i])) {
			i++;
			continue;
		}
		dir_of(p->items[i].path, d, sizeof(d));
		for (j = i; j < p->nitems && bytes < LINE_MAX_ARGS; j++) {
			if (!movable(&p->items[j]))
				continue;
			dir_of(p->items[j].path, d2, sizeof(d2));
			if (strcmp(d, d2))
				break;
			bytes += strlen(pre) + strlen(p->items[j].path) + 4;
		}
		if (maybe_moved) {
			sb_str(b, "if [ -d");
			sb_path(b, pre, d);
			sb_str(b, " ]; then\n");
		}
		guards(b, p, i, j, PUSH_UPLOAD, stage, NULL);
		sb_str(b, "mv -f");
		for (size_t k = i; k < j; k++)
			if (movable(&p->items[k]))
				sb_path(b, pre, p->items[k].path);
		sb_path(b, "./", d);
		sb_str(b, maybe_moved ? "/\nfi\n" : "/\n");
		i = j;
	}
}

/* Modes last, children first (a 0500 directory still takes its files). */
static void chmods(struct sbuf *b, const struct push_plan *p)
{
	uint32_t cur = 0;
	size_t start = 0;

	for (size_t i = p->nitems; i-- > 0;) {
		const struct push_item *it = &p->items[i];
		uint32_t m = it->row.mode & 07777;

		if (it->act != PUSH_MKDIR && it->act != PUSH_CHMOD)
			continue;
		if (start && (m != cur || b->n - start > LINE_MAX_ARGS)) {
			sb_str(b, "\n");
			start = 0;
		}
		if (!start) {
			char cmd[32];

			snprintf(cmd, sizeof(cmd), "chmod %o", m);
			sb_str(b, cmd);
			start = b->n;
			cur = m;
		}
		sb_path(b, "./", it->path);
	}
	if (start)
		sb_str(b, "\n");
}

static void ops(struct sbuf *b, const struct push_plan *p, const char *stage,
		int *mid)
{
	for (size_t i = 0; i < p->nops; i++) {
		const struct push_op *o = &p->ops[i];
		char par[PATH_MAX];

		if (o->kind == PUSH_OP_RM) {
			sb_str(b, "rm -rf");
			sb_path(b, "./", o->a);
			sb_str(b, "\n");
			continue;
		}
		/* Idempotent: a redone attempt finds it already moved. */
		sb_str(b, "if [ -e");
		sb_path(b, "./", o->a);
		sb_str(b, " ] || [ -L");
		sb_path(b, "./", o->a);
		sb_str(b, " ]; then\n");
		if (o->mkparent) {
			dir_of(o->b, par, sizeof(par));
			sb_str(b, " mkdir -p");
			sb_path(b, "./", par);
			sb_str(b, "\n");
		}
		if (o->g.sig)
			guard_one(b, o->b, &o->g, PUSH_DELETE, stage, mid);
		sb_str(b, " if [ -d");
		sb_path(b, "./", o->b);
		sb_str(b, " ] && [ ! -L");
		sb_path(b, "./", o->b);
		sb_str(b, " ]; then rm -rf");
		sb_path(b, "./", o->b);
		sb_str(b, "; fi\n mv -f");
		sb_path(b, "./", o->a);
		sb_path(b, "./", o->b);
		sb_str(b, "\nfi\n");
	}
}

char *push_script(const struct push_plan *p, const char *stage)
{
	struct sbuf b = { 0 };
	bool moved;
	int mid = 0;

	sb_str(&b, "set -e\n");
	sb_str(&b, push_guard_prelude());
	sb_str(&b, "S=");
	sb_quoted(&b, "./", stage);
	sb_str(&b, "\nX=");
	sb_quoted(&b, "", p->copy_suffix ? p->copy_suffix : ".conflict");
	sb_str(&b, "\n");
	ops(&b, p, stage, &mid);
	guards(&b, p, 0, p->nitems, PUSH_DELETE, stage, &mid);
	batch(&b, p, "rm -rf", PUSH_DELETE, "./");
	unstage_torn(&b, p, stage);
	moved = dir_moves(&b, p);
	guards(&b, p, 0, p->nitems, PUSH_MKDIR, stage, NULL);
	batch(&b, p, "mkdir -p", PUSH_MKDIR, "./");
	moves(&b, p, stage, moved);
	chmods(&b, p);
	if (p->marker) {
		char m[PATH_MAX];

		snprintf(m, sizeof(m), "./%s/m/%s", stage, SYNC_MARKER_NAME);
		sb_str(&b, "mv -f");
		sb_path(&b, "", m);
		sb_str(&b, " ./\n");
	}
	sb_str(&b, "exit 0\n");
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* ---- streaming ------------------------------------------------------------ */

struct send_ctx {
	struct transport_proc *proc;
	struct push_host host;
	const struct sync_push_config *cfg;
	struct sync_push_stats *stats;
	struct sync_push_progress prog;
	char *buf;
	int err;
};

static la_ssize_t write_cb(struct archive *a, void *arg, const void *buf,
			   size_t n)
{
	struct send_ctx *c = arg;
	int r = transport_proc_write(c->proc, buf, n);

	if (r < 0) {
		c->err = r;
		archive_set_error(a, -r, "transport write failed");
		return -1;
	}
	c->stats->bytes_out += (int64_t)n;
	return (la_ssize_t)n;
}

static bool cancelled(const struct send_ctx *c)
{
	return c->cfg->cancel && *c->cfg->cancel;
}

static void progress(struct send_ctx *c, const char *path)
{
	c->prog.path = path;
	if (c->cfg->progress)
		c->cfg->progress(&c->prog, c->cfg->progress_arg);
}

static int put_header(struct archive *a, const char *name, mode_t type,
		      uint32_t perm, int64_t size, int64_t mtime_ns,
		      const char *target)
{
	struct archive_entry *e = archive_entry_new();
	int r;

	if (!e)
		return -ENOMEM;
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, perm & 07777);
	archive_entry_set_size(e, size);
	archive_entry_set_mtime(e, mtime_ns / 1000000000, 0);
	if (target)
		archive_entry_set_symlink(e, target);
	r = archive_write_header(a, e);
	archive_entry_free(e);
	return r == ARCHIVE_OK ? 0 : -EIO;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_ino == b->st_ino &&
		a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
		a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
		a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
		a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* One regular file: header from fstat, content hashed as it goes out. */
static int send_file(struct send_ctx *c, struct archive *a,
		     struct push_item *it, const char *name)
{
	EVP_MD_CTX *md = NULL;
	struct stat st0, st1;
	int64_t off = 0;
	unsigned len;
	int fd = -1, r;

	r = push_host_open(&c->host, it->path, &fd);
	if (r < 0 || fstat(fd, &st0) < 0 || !S_ISREG(st0.st_mode)) {
		it->torn = true;	/* vanished or replaced since planning */
		it->unreadable = r == -EACCES || r == -EPERM;
		r = r == -ENOMEM ? r : 0;
		goto out;
	}
	it->row.size = st0.st_size;
	it->row.mode = st0.st_mode;
	it->row.mtime_ns = (int64_t)st0.st_mtim.tv_sec * 1000000000;
	r = put_header(a, name, AE_IFREG, st0.st_mode, st0.st_size,
		       it->row.mtime_ns, NULL);
	md = EVP_MD_CTX_new();
	if (r == 0 && (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1))
		r = -ENOMEM;
	while (r == 0 && off < st0.st_size) {
		size_t want = st0.st_size - off < CHUNK ? (size_t)(st0.st_size - off) : CHUNK;
		ssize_t n = pread(fd, c->buf, want, off);

		if (n <= 0) {
			it->torn = true;	/* shrank: tar pads the rest */
			break;
		}
		EVP_DigestUpdate(md, c->buf, (size_t)n);
		if (archive_write_data(a, c->buf, (size_t)n) != n)
			r = c->err ? c->err : -EIO;
		off += n;
		c->prog.bytes_done += n;
		c->stats->bytes_sent += n;
		progress(c, it->path);
		if (cancelled(c))
			r = -EINTR;
	}
	if (r == 0 && (fstat(fd, &st1) < 0 || !same_file(&st0, &st1)))
		it->torn = true;
	if (r == 0 && EVP_DigestFinal_ex(md, it->row.sha256, &len) != 1)
		r = -EIO;
out:
	EVP_MD_CTX_free(md);
	if (fd >= 0)
		close(fd);
	return r;
}

static int send_link(struct send_ctx *c, struct archive *a,
		     struct push_item *it, const char *name)
{
	char *now = NULL;
	int r = push_host_readlink(&c->host, it->path, &now);

	if (r < 0 || strcmp(now, it->target)) {
		it->torn = true;	/* changed since planning: next push */
		free(now);
		return r == -ENOMEM ? r : 0;
	}
	free(now);
	return put_header(a, name, AE_IFLNK, 0777, 0, it->row.mtime_ns,
			  it->target);
}

static int send_items(struct send_ctx *c, struct archive *a, struct push_plan *p)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < p->nitems; i++) {
		struct push_item *it = &p->items[i];
		char *name;

		if (it->act != PUSH_UPLOAD)
			continue;
		if (asprintf(&name, "t/%s", it->path) < 0)
			return -ENOMEM;
		r = it->target ? send_link(c, a, it, name) : send_file(c, a, it, name);
		free(name);
		if (r == 0 && !it->torn)
			c->stats->uploaded++;
		else if (r == 0 && !it->unreadable)
			c->stats->changed_during_upload++;
		c->prog.files_done++;
		progress(c, NULL);
		sync_pause_point("push-sending");	/* tests: mid-stream */
		if (r == 0 && cancelled(c))
			r = -EINTR;
	}
	return r;
}

static int send_blob(struct archive *a, const char *name, const char *s,
		     uint32_t perm)
{
	size_t n = strlen(s);
	int r = put_header(a, name, AE_IFREG, perm, (int64_t)n, store_now_ns(), NULL);

	if (r == 0 && archive_write_data(a, s, n) != (la_ssize_t)n)
		r = -EIO;
	return r;
}

/* Directory guards' expected listings, x/0, x/1, ... in the order the
 * script uses them: rename targets, then deletions. */
static int send_manifests(struct archive *a, const struct push_plan *p)
{
	char name[32];
	int k = 0, r = 0;

	for (size_t i = 0; r == 0 && i < p->nops; i++) {
		if (!p->ops[i].g.manifest)
			continue;
		snprintf(name, sizeof(name), "x/%d", k++);
		r = send_blob(a, name, p->ops[i].g.manifest, 0600);
	}
	for (size_t i = 0; r == 0 && i < p->nitems; i++) {
		if (p->items[i].act != PUSH_DELETE || !p->items[i].g.manifest)
			continue;
		snprintf(name, sizeof(name), "x/%d", k++);
		r = send_blob(a, name, p->items[i].g.manifest, 0600);
	}
	return r;
}

/* Everything after the items: marker, then the script (last member). */
static int send_tail(struct send_ctx *c, struct archive *a,
		     struct push_plan *p, const char *stage)
{
	char *script, *marker = NULL, name[64];
	int r = 0;

	if (p->marker) {
		snprintf(name, sizeof(name), "m/%s", SYNC_MARKER_NAME);
		if (asprintf(&marker, "%s\n", p->marker) < 0)
			return -ENOMEM;
		r = send_blob(a, name, marker, 0644);
		free(marker);
	}
	r = r < 0 ? r : send_manifests(a, p);
	script = push_script(p, stage);
	if (!script)
		return -ENOMEM;
	if (r == 0)
		r = send_blob(a, "apply", script, 0600);
	free(script);
	return r;
}

static char *outer_command(const char *root, const char *stage)
{
	char *qr = sync_shell_quote(root), *qs = sync_shell_quote(stage), *s = NULL;

	if (qr && qs &&
	    asprintf(&s, "umask 077; cd %s 2>/dev/null || mkdir -p %s && cd %s || exit 3\n"
		     "mkdir -p %s && tar -xpf - -C %s && sh %s/apply; rc=$?\n"
		     "rm -rf %s; rmdir %s 2>/dev/null; exit $rc\n",
		     qr, qr, qr, qs, qs, qs, qs, SYNC_STAGE_DIR) < 0)
		s = NULL;
	free(qr);
	free(qs);
	return s;
}

/* Read the command's output to the end; keep stderr's tail for errors. */
static void drain(struct transport_proc *proc, char *tail, size_t cap,
		  struct sbuf *out)
{
	char buf[4096];
	size_t used = 0;
	ssize_t n;
	int stream;

	tail[0] = '\0';
	while ((n = transport_proc_read(proc, buf, sizeof(buf), &stream, 60000)) > 0) {
		if (stream != 2) {
			if (out && out->n < (16u << 20))	/* kept-aside reports */
				sb_add(out, buf, (size_t)n);
			continue;
		}
		if ((size_t)n >= cap)
			used = 0;
		else if (used + (size_t)n >= cap)
			used = 0;
		memcpy(tail + used, buf, (size_t)n < cap - 1 ? (size_t)n : cap - 1);
		used += (size_t)n < cap - 1 ? (size_t)n : cap - 1;
		tail[used] = '\0';
	}
}

static int stream_all(struct send_ctx *c, struct push_plan *p, const char *stage)
{
	struct archive *a = archive_write_new();
	int r;

	if (!a)
		return -ENOMEM;
	archive_write_set_format_pax_restricted(a);
	archive_write_set_bytes_per_block(a, 65536);
	archive_write_set_bytes_in_last_block(a, 1);
	if (archive_write_open(a, c, NULL, write_cb, NULL) != ARCHIVE_OK) {
		archive_write_free(a);
		return c->err ? c->err : -EIO;
	}
	r = send_items(c, a, p);
	if (r == 0)
		r = send_tail(c, a, p, stage);
	if (r == 0 && archive_write_close(a) != ARCHIVE_OK)
		r = c->err ? c->err : -EIO;
	if (r < 0 && c->err)
		r = c->err;
	archive_write_free(a);
	return r;
}

int push_send(struct transport *t, int root_fd, struct push_plan *p,
	      const struct sync_push_config *cfg, struct sync_push_stats *stats,
	      bool *started)
{
	struct send_ctx c = { .cfg = cfg, .stats = stats };
	struct sbuf out = { 0 };
	char stage[96], *cmd = NULL, tail[200];
	uint8_t rnd[8];
	int r, status = 0;

	*started = false;
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		return -EIO;
	snprintf(stage, sizeof(stage), "%s/p-%02x%02x%02x%02x%02x%02x%02x%02x",
		 SYNC_STAGE_DIR, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5],
		 rnd[6], rnd[7]);
	c.prog.files_total = p->files_total;
	c.prog.bytes_total = p->bytes_total;
	push_host_init(&c.host, root_fd);
	c.buf = malloc(CHUNK);
	cmd = outer_command(transport_root(t), stage);
	if (!c.buf || !cmd) {
		r = -ENOMEM;
		goto out;
	}
	r = transport_spawn(t, cmd, &c.proc);
	if (r < 0) {
		snprintf(stats->error, sizeof(stats->error), "%s", transport_error(t));
		goto out;
	}
	*started = true;
	r = stream_all(&c, p, stage);
	if (r == -EPIPE) {
		/* The remote command ended early: its stderr says why. */
		transport_proc_close_stdin(c.proc);
		drain(c.proc, tail, sizeof(tail), NULL);
		if (transport_proc_wait(c.proc, &status) == 0 && tail[0]) {
			tail[strcspn(tail, "\n")] = '\0';
			snprintf(stats->error, sizeof(stats->error),
				 "remote command exited with status %d: %s", status, tail);
			r = -EIO;
			goto out;
		}
	}
	if (r < 0) {
		transport_proc_kill(c.proc, SIGKILL);
		snprintf(stats->error, sizeof(stats->error), "%s",
			 r == -EINTR ? "cancelled" : *transport_error(t) ?
			 transport_error(t) : strerror(-r));
		goto out;
	}
	transport_proc_close_stdin(c.proc);
	drain(c.proc, tail, sizeof(tail), &out);
	r = transport_proc_wait(c.proc, &status);
	if (r == 0 && status == 0 && out.oom)
		r = -ENOMEM;
	else if (r == 0 && status == 0 && out.n)
		r = push_guard_parse(p, out.s, out.n);
	if (r == 0 && status != 0) {
		char *nl;

		while ((nl = strrchr(tail, '\n')) && !nl[1])
			*nl = '\0';
		nl = strrchr(tail, '\n');
		snprintf(stats->error, sizeof(stats->error),
			 "remote apply exited with status %d: %s", status,
			 nl ? nl + 1 : tail);
		r = -EIO;
	} else if (r < 0) {
		snprintf(stats->error, sizeof(stats->error), "%s", transport_error(t));
	}
out:
	transport_proc_free(c.proc);
	push_host_release(&c.host);
	free(c.buf);
	free(cmd);
	free(out.s);
	return r;
}
