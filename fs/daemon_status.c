/*
 * daemon_status.c — what the user sees of sync: `status`, the summaries of
 * `sync`, `pull` and `flush`, and a progress bar for long pushes and pulls.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fs/ctl_int.h"
#include "fs/daemon_int.h"
#include "fs/fs.h"
#include "store/store.h"
#include "sync/sync.h"

/* ---- progress ------------------------------------------------------- */

/*
 * One bar for pushes and pulls, drawn into the client's stderr (passed over
 * the control socket, so isatty() tells whether the user sees a terminal).
 * On a terminal: a bar redrawn in place at most 5 times a second, cut to
 * the terminal's width so "\r" + erase-line always wipes all of it. Not on
 * a terminal (logs, CI): a plain line after 1 s, then every 5 s, and one
 * at 100%. Nothing at all for work done within a second.
 * HERMES_PROGRESS_ALWAYS=1 in the daemon's environment shows progress from
 * the start, however short the work (tests, demos).
 */
#define PROGRESS_EVERY_NS 200000000LL	/* terminal: redraw at most 5/s */
#define PROGRESS_LINE_NS 5000000000LL	/* otherwise: a line every 5 s */
#define PROGRESS_AFTER_NS 1000000000LL	/* only for work longer than 1 s */
#define PROGRESS_BAR_MAX 30		/* bar cells, at most */
#define PROGRESS_BAR_MIN 5		/* fewer: no bar */

struct progress_counts {
	int64_t files_done, files_total, bytes_done, bytes_total;
	bool applying;			/* pulls, after the fetch */
	int64_t applied, apply_total;
};

struct progress {
	int fd;
	bool tty, drawn, always;
	bool shown, finished;		/* of this phase: any draw; the 100% one */
	const char *what, *name;	/* "push" / "pull"; the sandbox */
	int attempt;			/* pulls: a retry restarts the bar */
	bool applying;			/* pulls: the apply part */
	int64_t t0, last;
	int64_t part_t0;		/* of the fetch or the apply: the rate */
};

static struct progress *progress_new(int fd)
{
	struct progress *pg = calloc(1, sizeof(*pg));
	const char *always = getenv("HERMES_PROGRESS_ALWAYS");

	if (!pg)
		return NULL;
	pg->fd = fd;
	pg->tty = isatty(fd);
	pg->always = always && !strcmp(always, "1");
	pg->what = "";
	pg->name = "";
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

/* Wipe the bar before a line of output. */
static void progress_clear(struct progress *pg)
{
	if (pg && pg->drawn && pg->tty)
		dprintf(pg->fd, "\r\033[K");
	if (pg)
		pg->drawn = false;
}

/* A new push or pull phase (or a pull's retry): the clock restarts. */
static void progress_begin(struct progress *pg, const char *what,
			   const char *name, int attempt)
{
	progress_clear(pg);
	pg->what = what;
	pg->name = name;
	pg->attempt = attempt;
	pg->t0 = pg->part_t0 = store_now_ns();
	pg->shown = pg->finished = pg->applying = false;
}

/* A pull's fetch is over, its apply starts: same bar, own 100%. */
static void progress_applying(struct progress *pg)
{
	pg->applying = true;
	pg->part_t0 = store_now_ns();
	pg->finished = false;
}

static int term_cols(int fd)
{
	struct winsize ws;

	return ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
}

/* "70/200 files, 7.0 MiB/20.0 MiB, 3.4 MiB/s, ETA 4 s", or
 * "applying 150/201 changes, ETA 1 s" */
static void progress_text(const struct progress_counts *p, double secs,
			  char *buf, size_t len)
{
	char done[32], total[32], rate[32] = "--", eta[32] = "ETA --";
	/* Too early for a meaningful rate (the first draw of a short one). */
	bool known = secs >= 0.1 && p->bytes_done > 0;

	if (p->applying) {
		if (secs >= 0.1 && p->applied > 0)
			snprintf(eta, sizeof(eta), "ETA %.0f s", secs *
			    (double)(p->apply_total - p->applied) /
			    (double)p->applied);
		snprintf(buf, len, "applying %lld/%lld changes, %s",
		    (long long)p->applied, (long long)p->apply_total, eta);
		return;
	}
	human(p->bytes_done, done, sizeof(done));
	human(p->bytes_total, total, sizeof(total));
	if (known)
		human((int64_t)((double)p->bytes_done / secs), rate, sizeof(rate));
	if (known && p->bytes_done <= p->bytes_total)
		snprintf(eta, sizeof(eta), "ETA %.0f s", secs *
		    (double)(p->bytes_total - p->bytes_done) /
		    (double)p->bytes_done);
	snprintf(buf, len, "%lld/%lld files, %s/%s, %s/s, %s",
	    (long long)p->files_done, (long long)p->files_total, done, total,
	    rate, eta);
}

/* "pull NAME [#####.....]  50% TEXT" as wide as the terminal allows: the
 * bar shrinks first, then goes, then the line is cut (never wrapped: "\r"
 * only returns to the start of the last row). */
static void progress_draw_tty(struct progress *pg, int pct, const char *text)
{
	char line[512], bar[PROGRESS_BAR_MAX + 3] = "";
	int cols = term_cols(pg->fd) - 1, n, w, i;

	n = snprintf(line, sizeof(line), "%s %s %3d%% %s", pg->what, pg->name,
	    pct, text);
	w = cols - n - 3;
	if (w > PROGRESS_BAR_MAX)
		w = PROGRESS_BAR_MAX;
	if (w >= PROGRESS_BAR_MIN) {
		bar[0] = '[';
		for (i = 0; i < w; i++)
			bar[i + 1] = i < pct * w / 100 ? '#' : '.';
		bar[w + 1] = ']';
		bar[w + 2] = '\0';
		n = snprintf(line, sizeof(line), "%s %s %s %3d%% %s", pg->what,
		    pg->name, bar, pct, text);
	}
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	if (n > cols && cols > 0) {
		n = cols;
		while (n > 0 && ((unsigned char)line[n] & 0xc0) == 0x80)
			n--;	/* not inside a UTF-8 sequence */
	}
	dprintf(pg->fd, "\r\033[K%.*s", n, line);
	pg->drawn = true;
}

static void progress_draw(struct progress *pg, const struct progress_counts *p,
			  double secs)
{
	char text[160];
	int pct = 100;

	if (p->applying && p->apply_total > 0)
		pct = (int)(100 * p->applied / p->apply_total);
	else if (p->applying)
		pct = 100;
	else if (p->bytes_total > 0)
		pct = (int)(100 * p->bytes_done / p->bytes_total);
	else if (p->files_total > 0)
		pct = (int)(100 * p->files_done / p->files_total);
	if (pct > 100)
		pct = 100;	/* a push sends what it finds, may be more */
	progress_text(p, secs, text, sizeof(text));
	if (pg->tty)
		progress_draw_tty(pg, pct, text);
	else
		dprintf(pg->fd, "%s %s: %3d%%, %s\n", pg->what, pg->name, pct,
		    text);
}

static void progress_update(struct progress *pg, const struct progress_counts *p)
{
	int64_t now = store_now_ns(), el = now - pg->t0;
	int64_t every = pg->tty ? PROGRESS_EVERY_NS : PROGRESS_LINE_NS;
	bool done = p->applying ? p->applied >= p->apply_total :
		    p->files_done == p->files_total &&
		    p->bytes_done == p->bytes_total;

	if (pg->finished)
		return;
	/* The 100% state is shown once when anything was: a log ends with it. */
	if (!(done && pg->shown) && ((!pg->always && el < PROGRESS_AFTER_NS) ||
	    (pg->shown && now - pg->last < every)))
		return;
	pg->last = now;
	pg->shown = true;
	pg->finished = done;
	progress_draw(pg, p, (double)(now - pg->part_t0) / 1e9);
}

static void progress_free(struct progress *pg)
{
	progress_clear(pg);
	free(pg);
}

/* ---- sync / pull / flush ---------------------------------------------- */

struct sync_req {
	struct ctl_req *req;
	pthread_mutex_t lock;		/* pushes report from several threads */
	struct progress *pg;		/* one bar: the sandbox pushing last */
	int64_t conflicts;
	bool failed;
};

/* Pushes of several sandboxes share the bar (it names the last one). */
static void on_progress(const char *name, const struct sync_push_progress *p,
			void *arg)
{
	struct sync_req *sr = arg;
	struct progress_counts c = { .files_done = p->files_done,
		.files_total = p->files_total, .bytes_done = p->bytes_done,
		.bytes_total = p->bytes_total };

	pthread_mutex_lock(&sr->lock);
	if (!sr->pg)
		sr->pg = progress_new(sr->req->err);
	if (sr->pg) {
		if (strcmp(sr->pg->what, "push"))
			progress_begin(sr->pg, "push", name, 0);
		if (sr->pg->finished && strcmp(sr->pg->name, name))
			sr->pg->finished = false;	/* another one still runs */
		sr->pg->name = name;
		progress_update(sr->pg, &c);
	}
	pthread_mutex_unlock(&sr->lock);
}

static void on_pull_progress(const char *name, const struct sync_pull_progress *p,
			     void *arg)
{
	struct sync_req *sr = arg;
	struct progress_counts c = { p->files_done, p->files_total,
				     p->bytes_done, p->bytes_total, p->applying,
				     p->applied, p->apply_total };

	pthread_mutex_lock(&sr->lock);
	if (!sr->pg)
		sr->pg = progress_new(sr->req->err);
	if (sr->pg) {
		if (strcmp(sr->pg->what, "pull") || strcmp(sr->pg->name, name) ||
		    sr->pg->attempt != p->attempt)
			progress_begin(sr->pg, "pull", name, p->attempt);
		if (p->applying && !sr->pg->applying)
			progress_applying(sr->pg);
		progress_update(sr->pg, &c);
	}
	pthread_mutex_unlock(&sr->lock);
}

static void on_push(const char *name, int rc, const struct sync_push_stats *s,
		    void *arg)
{
	struct sync_req *sr = arg;
	struct ctl_req *req = sr->req;
	char b[32];

	pthread_mutex_lock(&sr->lock);
	progress_clear(sr->pg);
	if (rc < 0 && rc != -EINTR) {
		sr->failed = true;
		dprintf(req->err, "hermes-fsctl: push to %s failed after %d"
		    " attempt%s: %s\n", name, s->attempts,
		    s->attempts == 1 ? "" : "s", s->error[0] ? s->error :
		    strerror(-rc));
	} else if (rc == 0 && (s->entries || s->uploaded || s->deleted)) {
		human(s->bytes_sent, b, sizeof(b));
		dprintf(req->out, "%s: pushed %lld file%s (%s), %lld unchanged,"
		    " %lld renamed, %lld deleted\n", name,
		    (long long)s->uploaded, s->uploaded == 1 ? "" : "s", b,
		    (long long)s->skipped, (long long)s->renamed,
		    (long long)s->deleted);
	} else if (rc == 0) {
		dprintf(req->out, "%s: up to date\n", name);
	}
	if (rc == 0 && s->error[0])	/* files skipped, conflicts kept aside */
		dprintf(req->err, "hermes-fsctl: %s: warning: %s\n", name, s->error);
	pthread_mutex_unlock(&sr->lock);
}

static void on_pull(const char *name, int rc, const struct sync_pull_stats *s,
		    const char *error, void *arg)
{
	struct sync_req *sr = arg;
	struct ctl_req *req = sr->req;

	pthread_mutex_lock(&sr->lock);
	progress_clear(sr->pg);
	if (s->report && s->report[0])
		dprintf(req->err, "%s", s->report);
	if (rc < 0 && rc != -EINTR) {
		sr->failed = true;
		dprintf(req->err, "hermes-fsctl: pull from %s failed: %s\n", name,
		    error && error[0] ? error : strerror(-rc));
	} else if (rc == 0) {
		sr->conflicts += s->conflicts;
		dprintf(req->out, "%s: pulled %lld changed, %lld deleted, %lld"
		    " conflict%s kept aside, %lld refused\n", name,
		    (long long)s->applied, (long long)s->deleted,
		    (long long)s->conflicts, s->conflicts == 1 ? "" : "s",
		    (long long)s->refused);
	}
	pthread_mutex_unlock(&sr->lock);
}

int daemon_cmd_sync(struct daemon *d, struct ctl_req *req)
{
	const char *verb = req->argv[0];
	const char *name = req->argc > 1 ? req->argv[1] : NULL;
	struct sync_req sr = { .req = req };
	struct sync_engine_call call = {
		.cancel = &req->cancelled, .progress = on_progress,
		.on_push = on_push, .on_pull = on_pull, .arg = &sr,
		.pull_progress = on_pull_progress,
	};
	enum sync_engine_op op = !strcmp(verb, "sync") ? SYNC_ENGINE_PUSH :
				 !strcmp(verb, "pull") ? SYNC_ENGINE_PULL :
				 SYNC_ENGINE_FLUSH;
	int r;

	pthread_mutex_init(&sr.lock, NULL);
	fs_settle_open(d->fs);	/* files closed just before are in it */
	r = sync_engine_run(d->eng, op, name, &call);
	progress_free(sr.pg);
	pthread_mutex_destroy(&sr.lock);
	if (r == -ENOENT && name) {
		dprintf(req->err, "hermes-fsctl: unknown sandbox '%s' (see:"
		    " hermes-fsctl sandbox list)\n", name);
		return CTL_EXIT_NOENT;
	}
	if (r == -EINTR) {
		dprintf(req->err, "hermes-fsctl: %s interrupted; nothing half-done"
		    " was kept\n", verb);
		return CTL_EXIT_FAIL;
	}
	if (r < 0 || sr.failed) {
		if (!sr.failed)
			dprintf(req->err, "hermes-fsctl: %s failed: %s\n", verb,
			    strerror(-r));
		return CTL_EXIT_FAIL;
	}
	if (op != SYNC_ENGINE_PUSH)
		daemon_engine_kick(d);	/* pulled changes fan out */
	return sr.conflicts > 0 ? CTL_EXIT_CONFLICT : CTL_EXIT_OK;
}

/* ---- status ------------------------------------------------------------ */

struct conflicts {
	size_t n;		/* unresolved, first in v */
	size_t all;		/* length of v */
	struct store_conflict *v;
};

/* A conflict is resolved once the user removed its copy. A copy a push
 * kept on the sandbox reaches the host with the next pull: until a pull
 * ended after it was recorded, its absence means nothing. */
static void conflicts_get(struct daemon *d, int64_t id, int64_t last_pull_ns,
			  struct conflicts *c)
{
	size_t i, o = 0;

	memset(c, 0, sizeof(*c));
	if (store_conflict_list(d->st, id, &c->v, &c->all) < 0)
		return;
	for (i = 0; i < c->all; i++) {
		if (c->v[i].time_ns < last_pull_ns &&
		    faccessat(d->root_fd, c->v[i].copy_path, F_OK,
		    AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT) {
			store_conflict_resolve(d->st, c->v[i].id);
			continue;
		}
		if (o != i) {
			struct store_conflict t = c->v[o];

			c->v[o] = c->v[i];
			c->v[i] = t;
		}
		o++;
	}
	c->n = o;
}

static void status_one_text(int fd, const struct sync_sandbox_status *s,
			    const struct conflicts *c)
{
	char lp[32], ll[32];
	size_t i;

	fmt_time_ns(s->last_push_ns, lp, sizeof(lp));
	fmt_time_ns(s->last_pull_ns, ll, sizeof(ll));
	dprintf(fd, "%s  %s\n  state: %s%s%s\n  pending: %lld journal entries\n"
	    "  last push: %s (%.2f s)   last pull: %s (%.2f s)\n",
	    s->name, s->url, sync_sandbox_state_name(s->state),
	    s->last_error[0] ? " - last error: " : "", s->last_error,
	    (long long)s->pending, lp, (double)s->last_push_dur_ns / 1e9,
	    ll, (double)s->last_pull_dur_ns / 1e9);
	if (s->next_retry_ns > store_now_ns())
		dprintf(fd, "  next retry: in %.0f s (background push)\n",
		    ceil((double)(s->next_retry_ns - store_now_ns()) / 1e9));
	if ((s->state == SYNC_SB_PUSHING || s->state == SYNC_SB_PULLING) &&
	    s->progress.files_total) {
		char done[32], total[32];

		human(s->progress.bytes_done, done, sizeof(done));
		human(s->progress.bytes_total, total, sizeof(total));
		dprintf(fd, "  progress: %lld/%lld files, %s/%s\n",
		    (long long)s->progress.files_done,
		    (long long)s->progress.files_total, done, total);
	}
	for (i = 0; i < c->n; i++)
		dprintf(fd, "  conflict: %s (host version kept as %s)\n",
		    c->v[i].path, c->v[i].copy_path);
}

static void status_one_json(int fd, const struct sync_sandbox_status *s,
			    const struct conflicts *c, bool first)
{
	char lp[32], ll[32], nr[32];
	size_t i;

	fmt_time_ns(s->last_push_ns, lp, sizeof(lp));
	fmt_time_ns(s->last_pull_ns, ll, sizeof(ll));
	dprintf(fd, "%s{\"name\":", first ? "" : ",");
	json_put_str(fd, s->name);
	dprintf(fd, ",\"url\":");
	json_put_str(fd, s->url);
	dprintf(fd, ",\"state\":\"%s\",\"last_error\":",
	    sync_sandbox_state_name(s->state));
	json_put_str(fd, s->last_error);
	fmt_time_ns(s->next_retry_ns, nr, sizeof(nr));
	dprintf(fd, ",\"pending\":%lld,\"last_push\":\"%s\",\"last_push_s\":%.3f,"
	    "\"last_pull\":\"%s\",\"last_pull_s\":%.3f,\"next_retry\":\"%s\","
	    "\"conflicts\":%zu,\"conflict_copies\":[", (long long)s->pending, lp,
	    (double)s->last_push_dur_ns / 1e9, ll,
	    (double)s->last_pull_dur_ns / 1e9, nr, c->n);
	for (i = 0; i < c->n; i++) {
		dprintf(fd, "%s{\"path\":", i ? "," : "");
		json_put_str(fd, c->v[i].path);
		dprintf(fd, ",\"copy\":");
		json_put_str(fd, c->v[i].copy_path);
		dprintf(fd, "}");
	}
	dprintf(fd, "]}");
}

static void status_header(struct daemon *d, struct ctl_req *req, bool json,
			  size_t n)
{
	if (json) {
		dprintf(req->out, "{\"mountpoint\":");
		json_put_str(req->out, d->mountpoint);
		dprintf(req->out, ",\"state_dir\":");
		json_put_str(req->out, d->state_dir);
		dprintf(req->out, ",\"journal_head\":%lld,\"passthrough\":%s,"
		    "\"sandboxes\":[", (long long)store_journal_head(d->st),
		    fs_passthrough(d->fs) ? "true" : "false");
		return;
	}
	dprintf(req->out, "hermesfs on %s (state %s), journal head %lld\n",
	    d->mountpoint, d->state_dir, (long long)store_journal_head(d->st));
	dprintf(req->out, "file data: %s\n", fs_passthrough(d->fs) ?
	    "kernel passthrough (the kernel reads and writes the backing files)" :
	    "through the daemon (passthrough needs Linux >= 6.9 and root)");
	if (n == 0)
		dprintf(req->out, "no sandboxes (add one with: hermes-fsctl"
		    " sandbox add NAME URL)\n");
}

int daemon_cmd_status(struct daemon *d, struct ctl_req *req)
{
	bool json = req->argc > 1;
	struct sync_sandbox_status *v = NULL;
	struct conflicts c;
	size_t n = 0, i;
	int r;

	/* pending counts what open files hold and what was just closed
	 * (a RELEASE may have appended it a moment ago, on another thread) */
	fs_settle_open(d->fs);
	store_journal_flush(d->st);
	if ((r = sync_engine_status(d->eng, &v, &n)) < 0) {
		dprintf(req->err, "hermes-fsctl: cannot read the store: %s\n",
		    strerror(-r));
		return CTL_EXIT_FAIL;
	}
	status_header(d, req, json, n);
	for (i = 0; i < n; i++) {
		conflicts_get(d, v[i].id, v[i].last_pull_ns, &c);
		if (json)
			status_one_json(req->out, &v[i], &c, i == 0);
		else
			status_one_text(req->out, &v[i], &c);
		store_conflict_list_free(c.v, c.all);
	}
	if (json)
		dprintf(req->out, "]}\n");
	sync_engine_status_free(v, n);
	return CTL_EXIT_OK;
}
