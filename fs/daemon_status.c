/*
 * daemon_status.c — what the user sees of sync: `status`, the summaries of
 * `sync`, `pull` and `flush`, and a progress bar for long pushes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/ctl_int.h"
#include "fs/daemon_sync_int.h"

/* ---- progress ------------------------------------------------------- */

#define PROGRESS_EVERY_NS 200000000LL	/* redraw at most 5 times a second */
#define PROGRESS_AFTER_NS 1000000000LL	/* only for pushes longer than 1 s */

struct progress {
	int fd;
	bool tty, drawn;
	const char *what, *name;
	int64_t t0, last;
};

struct progress *progress_new(int fd, const char *what, const char *name)
{
	struct progress *pg = calloc(1, sizeof(*pg));

	if (!pg)
		return NULL;
	pg->fd = fd;
	pg->tty = isatty(fd);
	pg->what = what;
	pg->name = name;
	pg->t0 = pg->last = store_now_ns();
	return pg;
}

static void human(int64_t b, char *buf, size_t len)
{
	const char *u = "BKMGT";
	double v = (double)b;

	while (v >= 1024 && u[1]) {
		v /= 1024;
		u++;
	}
	snprintf(buf, len, *u == 'B' ? "%.0f %c" : "%.1f %ciB", v, *u);
}

void progress_update(const struct sync_push_progress *p, void *arg)
{
	struct progress *pg = arg;
	int64_t now = store_now_ns(), el = now - pg->t0;
	char done[32], total[32], rate[32];
	double secs = (double)el / 1e9, eta;

	if (!pg || el < PROGRESS_AFTER_NS || now - pg->last < PROGRESS_EVERY_NS *
	    (pg->tty ? 1 : 25))
		return;
	pg->last = now;
	human(p->bytes_done, done, sizeof(done));
	human(p->bytes_total, total, sizeof(total));
	human((int64_t)((double)p->bytes_done / secs), rate, sizeof(rate));
	eta = p->bytes_done > 0 ? secs * (double)(p->bytes_total - p->bytes_done) /
	    (double)p->bytes_done : 0;
	dprintf(pg->fd, "%s%s %s: %lld/%lld files, %s/%s, %s/s, ETA %.0f s%s",
	    pg->tty ? "\r\033[K" : "", pg->what, pg->name,
	    (long long)p->files_done, (long long)p->files_total, done, total,
	    rate, eta, pg->tty ? "" : "\n");
	pg->drawn = true;
}

void progress_free(struct progress *pg)
{
	if (pg && pg->drawn && pg->tty)
		dprintf(pg->fd, "\r\033[K");
	free(pg);
}

/* ---- sync / pull / flush ---------------------------------------------- */

static void push_summary(struct ctl_req *req, struct dsb *sb, int r,
			 const struct sync_push_stats *s)
{
	char b[32];

	if (r < 0) {
		dprintf(req->err, "hermes-fsctl: push to %s failed after %d"
		    " attempt%s: %s\n", sb->name, s->attempts,
		    s->attempts == 1 ? "" : "s", sb->last_error);
		return;
	}
	human(s->bytes_sent, b, sizeof(b));
	dprintf(req->out, "%s: pushed %lld file%s (%s), %lld unchanged, %lld"
	    " renamed, %lld deleted\n", sb->name, (long long)s->uploaded,
	    s->uploaded == 1 ? "" : "s", b, (long long)s->skipped,
	    (long long)s->renamed, (long long)s->deleted);
}

static void pull_summary(struct ctl_req *req, struct dsb *sb, int r,
			 const struct sync_pull_stats *s)
{
	if (s->report && s->report[0])
		dprintf(req->err, "%s", s->report);
	if (r < 0) {
		dprintf(req->err, "hermes-fsctl: pull from %s failed: %s\n",
		    sb->name, sb->last_error[0] ? sb->last_error : strerror(-r));
		return;
	}
	dprintf(req->out, "%s: pulled %lld changed, %lld deleted, %lld"
	    " conflict%s kept aside, %lld refused\n", sb->name,
	    (long long)s->applied, (long long)s->deleted,
	    (long long)s->conflicts, s->conflicts == 1 ? "" : "s",
	    (long long)s->refused);
}

/* One sandbox: push and/or pull as the verb says. Returns an exit code. */
static int sync_one(struct daemon *d, struct ctl_req *req, struct dsb *sb,
		    const char *verb)
{
	struct sync_push_stats ps;
	struct sync_pull_stats ls = { 0 };
	bool push = strcmp(verb, "pull") != 0, pull = strcmp(verb, "sync") != 0;
	bool needed = false;
	int r = 0, code = CTL_EXIT_OK;

	if (push) {
		r = dsb_push(d, sb, req, &ps);
		push_summary(req, sb, r, &ps);
		if (r < 0)
			return CTL_EXIT_FAIL;
	}
	if (!pull)
		return code;
	r = dsb_pull(d, sb, req, &ls);
	pull_summary(req, sb, r, &ls);
	if (r < 0)
		code = CTL_EXIT_FAIL;
	else if (ls.conflicts > 0 || ls.kept > 0)
		code = ls.conflicts > 0 ? CTL_EXIT_CONFLICT : CTL_EXIT_OK;
	sync_pull_stats_release(&ls);
	/* flush: what the pull decided to keep from the host (host-wins,
	 * kept files) goes back out, so both sides end equal. */
	if (code != CTL_EXIT_FAIL && push &&
	    store_sandbox_needs_push(d->st, sb->id, &needed) == 0 && needed) {
		r = dsb_push(d, sb, req, &ps);
		if (r < 0) {
			push_summary(req, sb, r, &ps);
			code = CTL_EXIT_FAIL;
		}
	}
	daemon_engine_kick(d);	/* pulled changes fan out to the others */
	return code;
}

int daemon_cmd_sync(struct daemon *d, struct ctl_req *req)
{
	const char *verb = req->argv[0];
	const char *name = req->argc > 1 ? req->argv[1] : NULL;
	struct store_sandbox *l = NULL;
	size_t n = 0, i;
	struct dsb *sb;
	int r, code = CTL_EXIT_OK, c;

	if (name) {
		if ((r = dsb_get(d, name, &sb)) == -ENOENT) {
			dprintf(req->err, "hermes-fsctl: unknown sandbox '%s' (see:"
			    " hermes-fsctl sandbox list)\n", name);
			return CTL_EXIT_NOENT;
		}
		return r < 0 ? CTL_EXIT_FAIL : sync_one(d, req, sb, verb);
	}
	if ((r = store_sandbox_list(d->st, &l, &n)) < 0)
		return CTL_EXIT_FAIL;
	if (n == 0)
		dprintf(req->err, "hermes-fsctl: no sandboxes yet (add one with:"
		    " hermes-fsctl sandbox add NAME URL)\n");
	/* One at a time keeps the output readable; the background pusher
	 * already fans out in parallel. */
	for (i = 0; i < n && !ctl_req_cancelled(req); i++) {
		if (dsb_get(d, l[i].name, &sb) < 0)
			continue;
		c = sync_one(d, req, sb, verb);
		if (c == CTL_EXIT_FAIL || code == CTL_EXIT_OK)
			code = c;
	}
	store_sandbox_list_free(l, n);
	return code;
}

/* ---- status ------------------------------------------------------------ */

struct sb_status {
	struct dsb snap;	/* copy of the status fields */
	int64_t pending;
	size_t nconf;		/* unresolved, first in conf */
	size_t nconf_all;	/* length of conf */
	struct store_conflict *conf;
};

/* A conflict is resolved once the user removed its copy. */
static void conflicts_refresh(struct daemon *d, struct sb_status *s)
{
	size_t i, o = 0;

	if (store_conflict_list(d->st, s->snap.id, &s->conf, &s->nconf) < 0)
		return;
	s->nconf_all = s->nconf;
	for (i = 0; i < s->nconf; i++) {
		if (faccessat(d->root_fd, s->conf[i].copy_path, F_OK,
		    AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
			store_conflict_resolve(d->st, s->conf[i].id);
			continue;
		}
		if (o != i) {
			struct store_conflict t = s->conf[o];

			s->conf[o] = s->conf[i];
			s->conf[i] = t;
		}
		o++;
	}
	s->nconf = o;	/* resolved ones stay at the end of the list */
}

static void status_one_text(int fd, const struct sb_status *s)
{
	char lp[32], ll[32];
	size_t i;

	fmt_time_ns(s->snap.last_push_ns, lp, sizeof(lp));
	fmt_time_ns(s->snap.last_pull_ns, ll, sizeof(ll));
	dprintf(fd, "%s  %s\n  state: %s%s%s\n  pending: %lld journal entries\n"
	    "  last push: %s (%.2f s)   last pull: %s (%.2f s)\n",
	    s->snap.name, s->snap.url, s->snap.state,
	    s->snap.last_error[0] ? " — last error: " : "", s->snap.last_error,
	    (long long)s->pending, lp, (double)s->snap.last_push_dur_ns / 1e9,
	    ll, (double)s->snap.last_pull_dur_ns / 1e9);
	if (!strcmp(s->snap.state, "pushing") && s->snap.progress.files_total)
		dprintf(fd, "  progress: %lld/%lld files\n",
		    (long long)s->snap.progress.files_done,
		    (long long)s->snap.progress.files_total);
	for (i = 0; i < s->nconf; i++)
		dprintf(fd, "  conflict: %s (host version kept as %s)\n",
		    s->conf[i].path, s->conf[i].copy_path);
}

static void status_one_json(int fd, const struct sb_status *s, bool first)
{
	char lp[32], ll[32];
	size_t i;

	fmt_time_ns(s->snap.last_push_ns, lp, sizeof(lp));
	fmt_time_ns(s->snap.last_pull_ns, ll, sizeof(ll));
	dprintf(fd, "%s{\"name\":", first ? "" : ",");
	json_put_str(fd, s->snap.name);
	dprintf(fd, ",\"url\":");
	json_put_str(fd, s->snap.url);
	dprintf(fd, ",\"state\":\"%s\",\"last_error\":", s->snap.state);
	json_put_str(fd, s->snap.last_error);
	dprintf(fd, ",\"pending\":%lld,\"last_push\":\"%s\",\"last_push_s\":%.3f,"
	    "\"last_pull\":\"%s\",\"last_pull_s\":%.3f,\"conflicts\":%zu,"
	    "\"conflict_copies\":[", (long long)s->pending, lp,
	    (double)s->snap.last_push_dur_ns / 1e9, ll,
	    (double)s->snap.last_pull_dur_ns / 1e9, s->nconf);
	for (i = 0; i < s->nconf; i++) {
		dprintf(fd, "%s{\"path\":", i ? "," : "");
		json_put_str(fd, s->conf[i].path);
		dprintf(fd, ",\"copy\":");
		json_put_str(fd, s->conf[i].copy_path);
		dprintf(fd, "}");
	}
	dprintf(fd, "]}");
}

static int status_gather(struct daemon *d, struct dsb *sb, struct sb_status *s)
{
	int64_t cursor = 0;

	pthread_mutex_lock(&d->eng->lock);
	s->snap = *sb;
	pthread_mutex_unlock(&d->eng->lock);
	if (store_sandbox_cursor_get(d->st, sb->id, &cursor) == 0)
		store_journal_count(d->st, cursor, &s->pending);
	conflicts_refresh(d, s);
	return 0;
}

int daemon_cmd_status(struct daemon *d, struct ctl_req *req)
{
	bool json = req->argc > 1;
	struct store_sandbox *l = NULL;
	struct sb_status s;
	size_t n = 0, i;
	struct dsb *sb;
	int r;

	if ((r = store_sandbox_list(d->st, &l, &n)) < 0) {
		dprintf(req->err, "hermes-fsctl: cannot read the store: %s\n",
		    strerror(-r));
		return CTL_EXIT_FAIL;
	}
	if (json) {
		dprintf(req->out, "{\"mountpoint\":");
		json_put_str(req->out, d->mountpoint);
		dprintf(req->out, ",\"state_dir\":");
		json_put_str(req->out, d->state_dir);
		dprintf(req->out, ",\"journal_head\":%lld,\"sandboxes\":[",
		    (long long)store_journal_head(d->st));
	} else {
		dprintf(req->out, "hermesfs on %s (state %s), journal head %lld\n",
		    d->mountpoint, d->state_dir,
		    (long long)store_journal_head(d->st));
		if (n == 0)
			dprintf(req->out, "no sandboxes (add one with: hermes-fsctl"
			    " sandbox add NAME URL)\n");
	}
	for (i = 0; i < n; i++) {
		memset(&s, 0, sizeof(s));
		if (dsb_get(d, l[i].name, &sb) < 0 || status_gather(d, sb, &s) < 0)
			continue;
		if (json)
			status_one_json(req->out, &s, i == 0);
		else
			status_one_text(req->out, &s);
		store_conflict_list_free(s.conf, s.nconf_all);
	}
	if (json)
		dprintf(req->out, "]}\n");
	store_sandbox_list_free(l, n);
	return CTL_EXIT_OK;
}
