/*
 * pull.c — one pull: list the sandbox, compare with its ledger, fetch the
 * changed files into an anonymous stage, decide three-way per path, apply,
 * then record the ledger in one transaction. Retried on transport errors.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sync/fault_int.h"
#include "sync/pull_int.h"

/* Pulls write the host tree directly: one at a time, process-wide. */
static pthread_mutex_t pull_lock = PTHREAD_MUTEX_INITIALIZER;

struct ledger_vec {
	struct store_ledger_row *v;
	size_t n, cap;
};

struct pull_run {
	struct pull_list list;
	struct ledger_vec ledger;
	struct pull_item *items;
	size_t nitems, capitems;
	struct pull_fetch *want;
	size_t nwant, capwant;
	size_t *want_of;		/* item index -> want index + 1 (0 = none) */
};

static int ledger_collect(const struct store_ledger_row *row, void *arg)
{
	struct ledger_vec *l = arg;

	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 256;
		struct store_ledger_row *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n] = *row;
	l->v[l->n].path = strdup(row->path);
	if (!l->v[l->n].path)
		return -ENOMEM;
	l->n++;
	return 0;
}

static int row_cmp(const void *a, const void *b)
{
	return strcmp(((const struct store_ledger_row *)a)->path,
		      ((const struct store_ledger_row *)b)->path);
}

static struct store_ledger_row *ledger_find(struct ledger_vec *l, const char *p)
{
	struct store_ledger_row key = { .path = (char *)p };

	return l->n ? bsearch(&key, l->v, l->n, sizeof(key), row_cmp) : NULL;
}

static void run_release(struct pull_run *r)
{
	pull_list_release(&r->list);
	for (size_t i = 0; i < r->ledger.n; i++)
		free(r->ledger.v[i].path);
	free(r->ledger.v);
	free(r->items);
	free(r->want);
	free(r->want_of);
	memset(r, 0, sizeof(*r));
}

static int64_t secs(int64_t ns)
{
	return ns >= 0 ? ns / 1000000000 : -((-ns + 999999999) / 1000000000);
}

static void ver_from_row(const struct store_ledger_row *l, struct pull_ver *v)
{
	memset(v, 0, sizeof(*v));
	if (!l)
		return;
	v->present = true;
	v->type = l->type;
	v->mode = l->mode;
	memcpy(v->sha, l->sha256, sizeof(v->sha));
}

/* What the listing alone says about the remote (files get their hash
 * once fetched). */
static void ver_from_entry(const struct pull_entry *e, struct pull_ver *v)
{
	memset(v, 0, sizeof(*v));
	v->present = true;
	v->type = e->type;
	v->mode = e->mode;
	if (e->type == STORE_FT_SYMLINK)
		pull_sha_buf(e->target, strlen(e->target), v->sha);
}

static bool entry_changed(const struct pull_entry *e, const struct pull_ver *rv,
			  const struct store_ledger_row *l)
{
	/* The ledger holds the mode applied (setuid/setgid stripped), so a
	 * sandbox's setuid bit alone is no change: it would never converge. */
	if (!l || l->type != e->type ||
	    (l->mode & PULL_MODE_MASK) != (e->mode & PULL_MODE_MASK))
		return true;
	if (e->type == STORE_FT_SYMLINK)
		return memcmp(rv->sha, l->sha256, sizeof(rv->sha)) != 0;
	if (e->type == STORE_FT_FILE)
		return l->size != e->size || secs(l->mtime_ns) != secs(e->mtime_ns);
	return false;
}

static int add_item(struct pull_run *r, const struct pull_item *it, bool fetch)
{
	if (r->nitems == r->capitems) {
		size_t cap = r->capitems ? 2 * r->capitems : 64;
		struct pull_item *v = realloc(r->items, cap * sizeof(*v));
		size_t *w;

		if (!v)
			return -ENOMEM;
		r->items = v;
		w = realloc(r->want_of, cap * sizeof(*w));
		if (!w)
			return -ENOMEM;
		r->want_of = w;
		r->capitems = cap;
	}
	r->want_of[r->nitems] = 0;
	if (fetch) {
		if (r->nwant == r->capwant) {
			size_t cap = r->capwant ? 2 * r->capwant : 64;
			struct pull_fetch *v = realloc(r->want, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			r->want = v;
			r->capwant = cap;
		}
		memset(&r->want[r->nwant], 0, sizeof(*r->want));
		r->want[r->nwant].path = it->path;
		r->want_of[r->nitems] = ++r->nwant;
	}
	r->items[r->nitems++] = *it;
	return 0;
}

/* Items for everything the remote changed, in path order. */
static int plan(struct pull_ctx *c, struct pull_run *r)
{
	int rc;

	for (size_t i = 0; i < r->list.n; i++) {
		const struct pull_entry *e = &r->list.v[i];
		struct store_ledger_row *l = ledger_find(&r->ledger, e->path);
		struct pull_item it = { .path = e->path, .entry = e };

		ver_from_entry(e, &it.remote);
		if (!entry_changed(e, &it.remote, l))
			continue;
		ver_from_row(l, &it.base);
		rc = add_item(r, &it, e->type == STORE_FT_FILE);
		if (rc < 0)
			return rc;
	}
	for (size_t i = 0; i < r->ledger.n; i++) {
		const struct store_ledger_row *l = &r->ledger.v[i];
		struct pull_item it = { .path = l->path };

		if (!*l->path || pull_path_excluded(l->path) ||
		    pull_list_find(&r->list, l->path) ||
		    pull_list_is_refused(&r->list, l->path))
			continue;
		/* Not listed because ignored: not a remote deletion. */
		if (c->cfg->ignore && c->cfg->ignore(l->path,
		    l->type == STORE_FT_DIR, c->cfg->ignore_arg))
			continue;
		ver_from_row(l, &it.base);
		rc = add_item(r, &it, false);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Caps from the listing's sizes, before anything is fetched. */
static int check_caps(struct pull_ctx *c, struct pull_run *r, int64_t *bytes)
{
	int64_t total = 0;

	for (size_t i = 0; i < r->nwant; i++) {
		const struct pull_entry *e = pull_list_find(&r->list, r->want[i].path);

		if (e->size > c->caps.max_file_size) {
			pull_report_fatal(&c->rep);
			pull_report_add_path(&c->rep, "refused pull: ", e->path,
					     ": single file size cap exceeded (nothing applied)\n");
			return -EFBIG;
		}
		total += e->size;
	}
	if (total > c->caps.max_total_bytes || (int64_t)r->nwant > c->caps.max_files) {
		pull_report_fatal(&c->rep);
		pull_report_add(&c->rep, "refused pull: %zu files, %lld bytes to fetch: "
				"over the caps (nothing applied)\n", r->nwant, (long long)total);
		return -EFBIG;
	}
	*bytes = total;
	return 0;
}

/* The remote root must be the one we pushed to. */
static int check_root(struct pull_ctx *c, struct pull_run *r)
{
	char key[64], *want = NULL;
	int rc = 0;

	if (r->list.root_missing) {
		pull_report_fatal(&c->rep);
		pull_report_add(&c->rep, "refused pull: the sandbox root %s is missing; "
				"nothing changed\n", transport_root(c->t));
		return -ESTALE;
	}
	snprintf(key, sizeof(key), "sandbox.%lld.marker", (long long)c->sb);
	if (store_meta_get(c->st, key, &want) == 0) {
		size_t n = strlen(want);

		while (n && (want[n - 1] == '\n' || want[n - 1] == ' '))
			want[--n] = '\0';
		if (!r->list.have_marker || strcmp(r->list.marker, want) != 0) {
			pull_report_fatal(&c->rep);
			pull_report_add(&c->rep, "refused pull: the sandbox root marker %s is %s: "
					"the root was wiped or replaced; nothing changed\n",
					SYNC_MARKER_NAME,
					r->list.have_marker ? "different" : "missing");
			rc = -ESTALE;
		}
	} else if (r->list.n == 0 && r->ledger.n > 0) {
		pull_report_fatal(&c->rep);
		pull_report_add(&c->rep, "refused pull: the sandbox root is empty but %zu "
				"paths were pushed there; nothing changed\n", r->ledger.n);
		rc = -ESTALE;
	}
	free(want);
	return rc;
}

/* List, plan, fetch: everything remote. No host change yet. */
static int gather(struct pull_ctx *c, struct pull_run *r)
{
	bool changed = false;
	int64_t bytes = 0;
	int rc;

	rc = store_ledger_foreach(c->st, c->sb, NULL, ledger_collect, &r->ledger);
	if (rc < 0)
		return rc;
	if (r->ledger.n > 1)	/* qsort(NULL, 0) is undefined */
		qsort(r->ledger.v, r->ledger.n, sizeof(*r->ledger.v), row_cmp);
	rc = pull_remote_list(c, &r->list);
	if (rc < 0)
		return rc;
	c->stats->listed = (int64_t)r->list.n;
	c->stats->refused = (int64_t)r->list.nrefused;
	rc = check_root(c, r);
	if (rc == 0)
		rc = plan(c, r);
	if (rc == 0)
		rc = check_caps(c, r, &bytes);
	if (rc == 0)
		pull_progress_start(c, (int64_t)r->nwant, bytes);
	if (rc < 0 || !r->nwant)
		return rc;
	rc = pull_remote_fetch(c, r->want, r->nwant, &changed);
	if (rc == 0 && changed && !c->last_attempt) {
		pull_report_add(&c->rep, "a file changed on the sandbox while it was read: "
				"retrying\n");
		rc = -EAGAIN;
	}
	return rc;
}

/* What was fetched for each item: missing or torn copies are skipped
 * (the ledger keeps the old row, so the next pull tries again). */
static void check_fetched(struct pull_ctx *c, struct pull_run *r)
{
	for (size_t i = 0; i < r->nitems; i++) {
		struct pull_item *it = &r->items[i];
		const struct pull_fetch *f;

		it->skip = false;
		if (!r->want_of[i])
			continue;
		f = &r->want[r->want_of[i] - 1];
		it->skip = true;
		if (!f->got) {
			pull_report_add_path(&c->rep, "skipped ", it->path,
					     ": not received from the sandbox (vanished?)\n");
		} else if (f->unstable) {
			pull_report_add_path(&c->rep, "skipped ", it->path,
					     ": still being written on the sandbox "
					     "(pulled next time)\n");
			c->stats->kept++;
		} else {
			it->skip = false;
			it->fetch = f;
			c->stats->fetched++;
			memcpy(it->remote.sha, f->sha, sizeof(f->sha));
		}
	}
}

/* Three-way decision against the host as it is now (after the items
 * applied before this one: a parent replaced by a directory counts), then
 * the host side of it. */
static void decide_apply(struct pull_ctx *c, struct pull_item *it)
{
	int rc;

	it->action = PULL_NONE;
	if (it->skip)
		return;
	rc = pull_host_version(c->root_fd, it->path, &it->host);
	if (rc == -ENOTDIR) {
		/* A parent is a file on the host: nothing here yet; placing
		 * it reports the error if the parent was not replaced. */
		memset(&it->host, 0, sizeof(it->host));
	} else if (rc < 0) {
		pull_report_add_path(&c->rep, "refused ", it->path,
				     ": host path not reachable without following a symlink\n");
		c->stats->refused++;
		return;
	}
	it->action = pull_decide(&it->base, &it->host, &it->remote, c->cfg->policy);
	/* Remote unchanged (e.g. only touched) or already equal to the host:
	 * only the ledger row changes. */
	if (it->action == PULL_NONE || it->action == PULL_LEDGER)
		it->ok = true;
	else {
		sync_pause_point("pull-decided");
		pull_apply_item(c, it);
	}
}

/* Remote files, links and directories in path order (parents first), then
 * remote deletions children first. */
static void apply_all(struct pull_ctx *c, struct pull_run *r)
{
	int64_t n = (int64_t)r->nitems, done = 0;

	check_fetched(c, r);
	pull_progress_apply(c, 0, n);
	for (size_t i = 0; i < r->nitems; i++)
		if (r->items[i].entry) {
			decide_apply(c, &r->items[i]);
			pull_progress_apply(c, ++done, n);
		}
	for (size_t i = r->nitems; i-- > 0;)
		if (!r->items[i].entry) {
			decide_apply(c, &r->items[i]);
			pull_progress_apply(c, ++done, n);
		}
}

static void row_from_item(const struct pull_item *it, struct store_ledger_row *row)
{
	const struct pull_entry *e = it->entry;

	memset(row, 0, sizeof(*row));
	row->path = (char *)it->path;
	row->type = e->type;
	row->mode = e->mode & (S_IFMT | PULL_MODE_MASK);
	row->mtime_ns = e->mtime_ns;
	row->size = it->fetch ? it->fetch->size : e->size;
	memcpy(row->sha256, it->remote.sha, sizeof(row->sha256));
}

static int commit_ledger(struct pull_ctx *c, struct pull_run *r)
{
	int rc = store_tx_begin(c->st);

	for (size_t i = 0; rc == 0 && i < r->nitems; i++) {
		const struct pull_item *it = &r->items[i];
		struct store_ledger_row row;

		if (!it->ok)
			continue;
		if (it->entry) {
			if (it->entry->type == STORE_FT_FILE && !it->fetch)
				continue;
			row_from_item(it, &row);
			rc = store_ledger_put(c->st, c->sb, &row);
		} else {
			rc = store_ledger_delete(c->st, c->sb, it->path, false);
			if (rc == -ENOENT)
				rc = 0;
		}
	}
	if (rc == 0)
		return store_tx_commit(c->st);
	store_tx_rollback(c->st);
	return rc;
}

static int attempt(struct pull_ctx *c)
{
	struct pull_run r = { 0 };
	int rc;

	if (ftruncate(c->stage_fd, 0) < 0)
		return -errno;
	rc = gather(c, &r);
	if (rc == 0 && c->cfg->cancel && *c->cfg->cancel)
		rc = -EINTR;
	if (rc == -EINTR)
		pull_report_add(&c->rep, "pull cancelled before applying: nothing changed\n");
	if (rc == 0) {
		/* From here on the pull finishes: every step is a local rename. */
		apply_all(c, &r);
		/* Renames durable before the ledger says they happened. */
		if (syncfs(c->root_fd) < 0)
			pull_report_add(&c->rep, "warning: syncfs: %s\n", strerror(errno));
		rc = commit_ledger(c, &r);
		if (rc == 0)
			rc = store_journal_sync(c->st);
	}
	run_release(&r);
	return rc;
}

static void sleep_backoff(struct pull_ctx *c, int ms)
{
	for (int t = 0; t < ms; t += 50) {
		if (c->cfg->cancel && *c->cfg->cancel)
			return;
		usleep(50 * 1000);
	}
}

static int ctx_init(struct pull_ctx *c, struct store *st, int64_t sb,
		    struct transport *t, int root_fd)
{
	struct store_sandbox sbx;
	time_t now = time(NULL);
	struct tm tm;
	int r;

	c->st = st;
	c->sb = sb;
	c->t = t;
	c->root_fd = root_fd;
	c->caps.max_total_bytes = c->cfg->max_total_bytes > 0 ?
		c->cfg->max_total_bytes : SYNC_PULL_MAX_TOTAL_BYTES;
	c->caps.max_files = c->cfg->max_files > 0 ?
		c->cfg->max_files : SYNC_PULL_MAX_FILES;
	c->caps.max_file_size = c->cfg->max_file_size > 0 ?
		c->cfg->max_file_size : SYNC_PULL_MAX_FILE_SIZE;
	gmtime_r(&now, &tm);
	strftime(c->stamp, sizeof(c->stamp), "%Y%m%dT%H%M%SZ", &tm);
	r = store_sandbox_get_by_id(st, sb, &sbx);
	if (r < 0)
		return r;
	c->sbname = strdup(sbx.name);
	store_sandbox_release(&sbx);
	if (!c->sbname)
		return -ENOMEM;
	for (char *p = c->sbname; *p; p++)
		if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '_';
	c->stage_fd = pull_stage_open(root_fd);
	return c->stage_fd < 0 ? c->stage_fd : 0;
}

int sync_pull_run(struct store *st, int64_t sandbox_id, struct transport *t,
		  int root_fd, const struct sync_pull_config *cfg,
		  struct sync_pull_stats *stats)
{
	static const struct sync_pull_config defaults;
	struct sync_pull_stats local;
	struct pull_ctx c = { .cfg = cfg ? cfg : &defaults, .stage_fd = -1 };
	int retries = c.cfg->retries == 0 ? 3 : c.cfg->retries < 0 ? 0 : c.cfg->retries;
	int backoff = c.cfg->backoff_ms > 0 ? c.cfg->backoff_ms : 2000;
	int r;

	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	c.stats = stats;
	pthread_mutex_lock(&pull_lock);
	r = ctx_init(&c, st, sandbox_id, t, root_fd);
	for (int i = 0; r == 0; i++) {
		struct sync_pull_stats keep = *stats;

		stats->attempts = i + 1;
		c.last_attempt = i >= retries;
		r = attempt(&c);
		if (r == 0 || !pull_retryable(r) || i >= retries ||
		    (c.cfg->cancel && *c.cfg->cancel))
			break;
		/* Counters restart with the next attempt; bytes add up. */
		keep.bytes_in = stats->bytes_in;
		keep.attempts = stats->attempts;
		*stats = keep;
		if (c.cfg->backoff_list && c.cfg->backoff_count)
			backoff = c.cfg->backoff_list[(size_t)i < c.cfg->backoff_count ?
						      (size_t)i : c.cfg->backoff_count - 1];
		sleep_backoff(&c, backoff);
		backoff *= 2;
		r = 0;
	}
	if (c.stage_fd >= 0)
		close(c.stage_fd);
	pthread_mutex_unlock(&pull_lock);
	free(c.sbname);
	free(c.swept);
	if (r < 0)
		pull_report_fatal_first(&c.rep);
	stats->report = c.rep.buf;
	if (stats == &local)
		pull_report_release(&c.rep);
	return r;
}

void sync_pull_stats_release(struct sync_pull_stats *s)
{
	if (!s)
		return;
	free(s->report);
	s->report = NULL;
}
