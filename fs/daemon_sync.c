/*
 * daemon_sync.c — the daemon's sync scheduling: per-sandbox runtime state
 * and transport, a background pusher that follows the journal, the
 * `sync`, `pull` and `flush` commands, and the pre-exec push.
 *
 * Locking: eng->lock guards the sandbox list and every status field;
 * sb->op serializes push and pull of one sandbox; eng->pull_lock
 * serializes pulls across sandboxes (they all write the host tree).
 * Order: pull_lock, then sb->op, then eng->lock (held only briefly).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/ctl_int.h"
#include "fs/daemon_sync_int.h"
#include "fs/fs.h"

#define BG_POLL_MS 200
#define BG_ERROR_DELAY_NS (30LL * 1000000000)

static struct dsb *dsb_find_locked(struct daemon_engine *e, const char *name)
{
	struct dsb *sb;

	for (sb = e->list; sb; sb = sb->next)
		if (!sb->removed && strcmp(sb->name, name) == 0)
			return sb;
	return NULL;
}

/* Runtime state of sandbox `name`, created from the store on first use;
 * -ENOENT when the store does not know it. Lives until engine stop. */
int dsb_get(struct daemon *d, const char *name, struct dsb **out)
{
	struct daemon_engine *e = d->eng;
	struct store_sandbox row = { 0 };
	struct dsb *sb;
	const char *v;
	int r;

	pthread_mutex_lock(&e->lock);
	if ((sb = dsb_find_locked(e, name)))
		goto found;
	if ((r = store_sandbox_get(d->st, name, &row)) < 0)
		goto fail;
	r = -ENOMEM;
	if (!(sb = calloc(1, sizeof(*sb))) || !(sb->name = strdup(row.name)) ||
	    !(sb->url = strdup(row.url)) ||
	    ignore_from_config(d->cfg, name, &sb->ignore) < 0) {
		dsb_free(sb);
		store_sandbox_release(&row);
		goto fail;
	}
	sb->id = row.id;
	sb->state = "idle";
	sb->auto_push = true;
	if ((v = config_get(d->cfg, name, "auto-push")))
		config_parse_bool(v, &sb->auto_push);
	pthread_mutex_init(&sb->op, NULL);
	store_sandbox_release(&row);
	sb->next = e->list;
	e->list = sb;
found:
	*out = sb;
	pthread_mutex_unlock(&e->lock);
	return 0;
fail:
	pthread_mutex_unlock(&e->lock);
	return r;
}

void dsb_free(struct dsb *sb)
{
	if (!sb)
		return;
	transport_close(sb->t);
	ignore_free(sb->ignore);
	free(sb->name);
	free(sb->url);
	free(sb);
}

void dsb_set_state(struct daemon *d, struct dsb *sb, const char *state,
		   const char *err)
{
	pthread_mutex_lock(&d->eng->lock);
	sb->state = state;
	if (err)
		snprintf(sb->last_error, sizeof(sb->last_error), "%s", err);
	pthread_mutex_unlock(&d->eng->lock);
}

void daemon_transport_opts(struct daemon *d, const char *name,
			   struct transport_opts *o)
{
	const char *v;
	bool yes = false;

	memset(o, 0, sizeof(*o));
	o->identity = config_get(d->cfg, name, "identity");
	o->known_hosts = config_get(d->cfg, name, "known-hosts");
	if ((v = config_get(d->cfg, name, "accept-new-host-keys")) &&
	    config_parse_bool(v, &yes) == 0)
		o->accept_new = yes;
}

/* Open sb's transport if it is not (sb->op held). */
static int dsb_connect(struct daemon *d, struct dsb *sb)
{
	struct transport_opts o;
	char err[256];
	int r;

	if (sb->t)
		return 0;
	daemon_transport_opts(d, sb->name, &o);
	if ((r = transport_open(sb->url, &o, &sb->t)) < 0) {
		snprintf(err, sizeof(err), "cannot connect: %s",
		    transport_open_error());
		dsb_set_state(d, sb, "error", err);
		hlog(HLOG_WARN, "sandbox %s: %s", sb->name, err);
	}
	return r;
}

int daemon_sandbox_probe(struct daemon *d, const char *name, const char *url,
			 int errfd)
{
	struct transport_opts o;
	struct transport *t = NULL;
	char *out = NULL;
	size_t outlen = 0;
	int r, status = -1;

	daemon_transport_opts(d, name, &o);
	if ((r = transport_open(url, &o, &t)) < 0) {
		dprintf(errfd, "hermes-fsctl: cannot connect to %s: %s\n", url,
		    transport_open_error());
		return r;
	}
	r = transport_run(t, "command -v tar >/dev/null && command -v sh >/dev/null",
	    NULL, 0, &out, &outlen, &status);
	if (r == 0 && status != 0)
		r = -ENOEXEC;
	if (r < 0)
		dprintf(errfd, "hermes-fsctl: %s answered but cannot run sh and"
		    " tar there (%s)\n", url, r == -ENOEXEC ? "tar missing" :
		    transport_error(t));
	free(out);
	transport_close(t);
	return r;
}

/* "retry = 2,4,8" (seconds) from the config; default 2 s doubling. */
static int retry_list(struct daemon *d, const char *name, int *ms, int max)
{
	const char *v = config_get(d->cfg, name, "retry");
	int n = 0;

	if (!v || config_parse_retry(v, ms, max, &n) < 0)
		return 0;
	return n;
}

static bool push_ignore(const char *relpath, bool is_dir, void *arg)
{
	return ignore_match(arg, relpath, is_dir);
}

static void push_progress(const struct sync_push_progress *p, void *arg)
{
	struct dsb *sb = arg;

	/* Torn reads of these counters only make status approximate. */
	sb->progress = *p;
	sb->progress.path = NULL;
}

struct push_cb {
	struct dsb *sb;
	struct progress *pg;
};

static void push_progress_both(const struct sync_push_progress *p, void *arg)
{
	struct push_cb *cb = arg;

	push_progress(p, cb->sb);
	progress_update(p, cb->pg);
}

static void dsb_record(struct daemon *d, struct dsb *sb, bool push, int64_t t0,
		       int r, const char *err)
{
	int64_t now = store_now_ns();

	pthread_mutex_lock(&d->eng->lock);
	if (push) {
		sb->last_push_ns = now;
		sb->last_push_dur_ns = now - t0;
	} else {
		sb->last_pull_ns = now;
		sb->last_pull_dur_ns = now - t0;
	}
	sb->state = r < 0 && r != -EINTR ? "error" : "idle";
	if (r < 0 && r != -EINTR)
		snprintf(sb->last_error, sizeof(sb->last_error), "%s",
		    err && err[0] ? err : strerror(-r));
	else if (r == 0)
		sb->last_error[0] = '\0';
	memset(&sb->progress, 0, sizeof(sb->progress));
	pthread_mutex_unlock(&d->eng->lock);
	if (r < 0 && r != -EINTR && sb->t) {
		/* Reconnect next time: the connection may be what failed. */
		transport_close(sb->t);
		sb->t = NULL;
	}
}

int dsb_push(struct daemon *d, struct dsb *sb, struct ctl_req *req,
	     struct sync_push_stats *stats)
{
	int backoff[8];
	struct sync_push_config cfg = {
		.ignore = push_ignore, .ignore_arg = sb->ignore,
		.progress = push_progress, .progress_arg = sb,
		.cancel = req ? &req->cancelled : &sb->cancel,
	};
	struct push_cb cb = { .sb = sb };
	int64_t t0 = store_now_ns();
	int r;

	cfg.backoff_count = (size_t)retry_list(d, sb->name, backoff, 8);
	cfg.backoff_list = cfg.backoff_count ? backoff : NULL;
	if (cfg.backoff_count)
		cfg.retries = (int)cfg.backoff_count;
	memset(stats, 0, sizeof(*stats));
	pthread_mutex_lock(&sb->op);
	if ((r = dsb_connect(d, sb)) < 0)
		goto out;
	if (req && (cb.pg = progress_new(req->err, "push", sb->name))) {
		cfg.progress = push_progress_both;
		cfg.progress_arg = &cb;
	}
	dsb_set_state(d, sb, "pushing", NULL);
	r = sync_push_run(d->st, sb->id, sb->t, d->root_fd, &cfg, stats);
	progress_free(cb.pg);
	dsb_record(d, sb, true, t0, r, stats->error);
	if (r < 0 && r != -EINTR)
		hlog(HLOG_WARN, "push to %s failed: %s", sb->name, sb->last_error);
out:
	pthread_mutex_unlock(&sb->op);
	if (r == 0)
		store_journal_prune(d->st, NULL);
	return r;
}

static void pull_invalidate(const char *relpath, void *arg)
{
	fs_invalidate(arg, relpath);
}

static void pull_config(struct daemon *d, const char *name,
			struct sync_pull_config *cfg)
{
	int backoff[8], n;
	const char *v;

	if ((v = config_get(d->cfg, name, "conflict")))
		sync_conflict_policy_parse(v, &cfg->policy);
	if ((v = config_get(d->cfg, name, "max-total-bytes")))
		config_parse_size(v, &cfg->max_total_bytes);
	if ((v = config_get(d->cfg, name, "max-files")))
		config_parse_size(v, &cfg->max_files);
	if ((v = config_get(d->cfg, name, "max-file-size")))
		config_parse_size(v, &cfg->max_file_size);
	if ((n = retry_list(d, name, backoff, 8)) > 0) {
		cfg->retries = n;
		cfg->backoff_ms = backoff[0];
	}
	cfg->invalidate = pull_invalidate;
	cfg->invalidate_arg = d->fs;
}

int dsb_pull(struct daemon *d, struct dsb *sb, struct ctl_req *req,
	     struct sync_pull_stats *stats)
{
	struct sync_pull_config cfg = { 0 };
	int64_t t0 = store_now_ns();
	const char *why;
	int r;

	pull_config(d, sb->name, &cfg);
	cfg.cancel = req ? &req->cancelled : &sb->cancel;
	memset(stats, 0, sizeof(*stats));
	pthread_mutex_lock(&d->eng->pull_lock);
	pthread_mutex_lock(&sb->op);
	if ((r = dsb_connect(d, sb)) < 0)
		goto out;
	dsb_set_state(d, sb, "pulling", NULL);
	r = sync_pull_run(d->st, sb->id, sb->t, d->root_fd, &cfg, stats);
	why = r < 0 ? transport_error(sb->t) : NULL;
	dsb_record(d, sb, false, t0, r, why);
	if (r < 0 && r != -EINTR)
		hlog(HLOG_WARN, "pull from %s failed: %s", sb->name, sb->last_error);
	if (stats->conflicts > 0)
		hlog(HLOG_WARN, "pull from %s kept %lld conflict copies", sb->name,
		    (long long)stats->conflicts);
out:
	pthread_mutex_unlock(&sb->op);
	pthread_mutex_unlock(&d->eng->pull_lock);
	return r;
}
