/*
 * push.c — one push: plan, send in one remote call, then commit ledger rows
 * and cursor in one store transaction. Retried (re-planned) with backoff.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sync/fault_int.h"
#include "sync/push_int.h"

/*
 * Set when an attempt may have changed the sandbox without committing:
 * the next plan then re-sends every dirty path instead of trusting the
 * ledger (e.g. a file moved into place before the connection dropped,
 * then reverted on the host to what the ledger says).
 */
static void uncertain_key(int64_t sb, char *key, size_t n)
{
	snprintf(key, n, "sandbox.%lld.push_uncertain", (long long)sb);
}

static bool is_uncertain(struct store *st, int64_t sb)
{
	char key[64], *v = NULL;
	bool on;

	uncertain_key(sb, key, sizeof(key));
	on = store_meta_get(st, key, &v) == 0;
	free(v);
	return on;
}

/* Before the sandbox is touched: the paths this attempt may change are
 * not guarded next time, and the next plan does not trust the ledger. */
static int mark_attempt(struct store *st, int64_t sb, const struct push_plan *p)
{
	char key[64];
	int r = push_attempted_save(st, sb, p);

	uncertain_key(sb, key, sizeof(key));
	if (r == 0)
		r = store_meta_set(st, key, "1");
	return r;
}

static int commit_ops(struct store *st, int64_t sb, const struct push_plan *p)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < p->nops; i++) {
		const struct push_op *o = &p->ops[i];

		if (o->kind == PUSH_OP_RM)
			r = store_ledger_delete(st, sb, o->a, true);
		else
			r = store_ledger_rename(st, sb, o->a, o->b);
		if (r == -ENOENT)
			r = 0;
	}
	return r;
}

static int commit_items(struct store *st, int64_t sb, const struct push_plan *p)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < p->nitems; i++) {
		const struct push_item *it = &p->items[i];
		struct store_ledger_row row = it->row;

		if (it->act == PUSH_DELETE) {
			r = store_ledger_delete(st, sb, it->path, true);
			if (r == -ENOENT)
				r = 0;
			continue;
		}
		if (it->torn)
			continue;	/* remote unchanged: its row still holds */
		row.path = it->path;
		r = store_ledger_put(st, sb, &row);
	}
	return r;
}

static int commit(struct store *st, int64_t sb, const struct push_plan *p,
		  bool uncertain, const struct push_retry *retry)
{
	char key[64];
	int r = store_tx_begin(st);

	if (r < 0)
		return r;
	r = commit_ops(st, sb, p);
	if (r == 0)
		r = push_retry_save(st, sb, retry);
	for (size_t i = 0; r == 0 && i < p->nkept; i++)
		r = store_conflict_add(st, sb, p->kept[i].path, p->kept[i].copy, NULL);
	if (r == 0)
		r = commit_items(st, sb, p);
	if (r == 0)
		r = store_sandbox_cursor_set(st, sb, p->cursor);
	if (r == 0 && p->marker) {
		snprintf(key, sizeof(key), "sandbox.%lld.marker", (long long)sb);
		r = store_meta_set(st, key, p->marker);
	}
	if (r == 0 && uncertain) {
		uncertain_key(sb, key, sizeof(key));
		r = store_meta_set(st, key, NULL);
		if (r == 0)
			r = push_attempted_clear(st, sb);
	}
	if (r == 0 && !push_plan_empty(p))
		sync_crash_point("push-applied");	/* tests: remote applied, not committed */
	if (r == 0)
		return store_tx_commit(st);
	store_tx_rollback(st);
	return r;
}

static int delay_ms(const struct sync_push_config *cfg, int retry);

/*
 * Uploads torn or unreadable while sent join the paths the plan skipped.
 * The new retry set: those, plus the old paths when they were not due.
 * Paths skipped again back off (the push schedule, capped); a path
 * skipped for the first time is tried by the next push.
 */
static int retry_next(const struct sync_push_config *cfg, struct push_plan *p,
		      struct push_retry *nw)
{
	bool again = false, fresh = false;
	int r = 0;

	for (size_t i = 0; r == 0 && i < p->nitems; i++)
		if (p->items[i].act == PUSH_UPLOAD && p->items[i].torn)
			r = push_plan_skip(p, p->items[i].path,
					   p->items[i].unreadable ? -EACCES : 0);
	for (size_t i = 0; r == 0 && i < p->skip.n; i++) {
		r = push_retry_add(nw, p->skip.paths[i]);
		if (push_retry_has(&p->old, p->skip.paths[i]))
			again = true;
		else
			fresh = true;
	}
	for (size_t i = 0; r == 0 && !p->old_due && i < p->old.n; i++)
		r = push_retry_add(nw, p->old.paths[i]);
	if (r < 0 || !nw->n)
		return r;
	if (fresh || (p->old_due && !again)) {
		nw->tries = 0;
		nw->due_ns = store_now_ns();
	} else if (p->old_due) {
		int ms = delay_ms(cfg, p->old.tries);

		nw->tries = p->old.tries + 1;
		nw->due_ns = store_now_ns() +
			(int64_t)(ms < PUSH_RETRY_MAX_MS ? ms : PUSH_RETRY_MAX_MS) * 1000000;
	} else {
		nw->tries = p->old.tries;	/* carried, not due yet */
		nw->due_ns = p->old.due_ns;
	}
	return 0;
}

static void warn_skipped(const struct push_plan *p, struct sync_push_stats *s)
{
	s->unreadable = p->unreadable;
	s->conflicts = (int64_t)p->nkept;
	if (p->nkept)
		snprintf(s->error, sizeof(s->error),
			 "kept %zu sandbox change%s aside (not pulled yet): %s -> %s%s",
			 p->nkept, p->nkept == 1 ? "" : "s", p->kept[0].path,
			 p->kept[0].copy, p->nkept > 1 ? ", ..." : "");
	else if (p->unreadable)
		snprintf(s->error, sizeof(s->error),
			 "skipped %lld unreadable file%s (tried again later): %s",
			 (long long)p->unreadable, p->unreadable == 1 ? "" : "s",
			 p->why);
	else if (s->changed_during_upload)
		snprintf(s->error, sizeof(s->error),
			 "%lld file%s changed while sent (tried again later)",
			 (long long)s->changed_during_upload,
			 s->changed_during_upload == 1 ? "" : "s");
}

static void count(struct sync_push_stats *s, const struct push_plan *p)
{
	s->entries = p->entries;
	s->skipped = p->skipped;
	s->renamed = p->renamed;
	for (size_t i = 0; i < p->nitems; i++) {
		switch (p->items[i].act) {
		case PUSH_DELETE: s->deleted++; break;
		case PUSH_MKDIR: s->mkdirs++; break;
		case PUSH_CHMOD: s->chmods++; break;
		default: break;
		}
	}
}

static int attempt(struct store *st, int64_t sb, struct transport *t,
		   int root_fd, const struct sync_push_config *cfg,
		   struct sync_push_stats *stats)
{
	struct push_plan p;
	struct push_retry retry = { 0 };
	bool uncertain = is_uncertain(st, sb), started = false;
	int r;

	/* The planner reads committed entries only, while "push if needed"
	 * counts queued ones: a write made just before a command must be in
	 * this push, so wait until everything appended so far is committed
	 * (visible; no fsync needed for that). */
	r = store_journal_flush(st);
	if (r < 0) {
		snprintf(stats->error, sizeof(stats->error),
			 "journal not committed: %s", strerror(-r));
		return r;
	}
	r = push_plan_build(st, sb, root_fd, cfg, uncertain, &p);
	if (r < 0) {
		snprintf(stats->error, sizeof(stats->error), "planning failed: %s",
			 strerror(-r));
		return r;
	}
	count(stats, &p);
	if (!push_plan_empty(&p)) {
		/* Written ahead, not after a failure: a daemon killed while
		 * the sandbox applies must not take its own half-done work
		 * for sandbox edits at the next push (false conflict copies). */
		r = mark_attempt(st, sb, &p);
		if (r == 0) {
			uncertain = true;
			r = push_send(t, root_fd, &p, cfg, stats, &started);
		}
	}
	if (r == 0)
		r = retry_next(cfg, &p, &retry);
	if (r == 0)
		r = commit(st, sb, &p, uncertain, &retry);
	if (r == 0) {
		stats->cursor = p.cursor;
		stats->retry_at_ns = retry.n ? retry.due_ns : 0;
		warn_skipped(&p, stats);
	}
	push_retry_release(&retry);
	push_plan_release(&p);
	return r;
}

static int delay_ms(const struct sync_push_config *cfg, int retry)
{
	int ms = cfg->backoff_ms > 0 ? cfg->backoff_ms : 2000;

	if (cfg->backoff_list && cfg->backoff_count)
		return cfg->backoff_list[(size_t)retry < cfg->backoff_count ?
					 (size_t)retry : cfg->backoff_count - 1];
	for (int i = 0; i < retry && ms < 3600 * 1000; i++)
		ms *= 2;
	return ms;
}

static bool is_cancelled(const struct sync_push_config *cfg)
{
	return cfg->cancel && *cfg->cancel;
}

static void sleep_ms(const struct sync_push_config *cfg, int ms)
{
	for (int t = 0; t < ms && !is_cancelled(cfg); t += 20)
		usleep(20 * 1000);
}

static bool retryable(int r)
{
	return r != -EINTR && r != -ENOMEM && r != -EINVAL && r != -ENOENT;
}

int sync_push_run(struct store *st, int64_t sandbox_id, struct transport *t,
		  int root_fd, const struct sync_push_config *cfg,
		  struct sync_push_stats *stats)
{
	static const struct sync_push_config defaults;
	struct sync_push_stats local;
	int retries, r;

	if (!cfg)
		cfg = &defaults;
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	retries = cfg->retries == 0 ? 3 : cfg->retries < 0 ? 0 : cfg->retries;
	for (int i = 0;; i++) {
		int64_t bytes_out = stats->bytes_out, bytes_sent = stats->bytes_sent;

		memset(stats, 0, sizeof(*stats));
		stats->bytes_out = bytes_out;	/* traffic adds up over attempts */
		stats->bytes_sent = bytes_sent;
		stats->attempts = i + 1;
		r = attempt(st, sandbox_id, t, root_fd, cfg, stats);
		if (r == 0 || !retryable(r) || i >= retries || is_cancelled(cfg))
			break;
		sleep_ms(cfg, delay_ms(cfg, i));
	}
	if (r < 0 && !stats->error[0])
		snprintf(stats->error, sizeof(stats->error), "%s", strerror(-r));
	if (is_cancelled(cfg) && r < 0)
		r = -EINTR;
	if (r < 0)
		store_sandbox_cursor_get(st, sandbox_id, &stats->cursor);
	return r;
}
