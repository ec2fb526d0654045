/*
 * engine.c — every sandbox of the store: lazily opened transports, push
 * fan-out on a bounded pool, serialized pulls, status, and the background
 * thread that follows the journal head.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sync/sync.h"

struct eng_sb {
	char *name, *url;
	int64_t id;
	bool gone;			/* removed from the store */
	pthread_mutex_t op;		/* held for a whole push or pull */
	struct transport *t;		/* used under op only */
	/* Below: under engine->mu. */
	enum sync_sandbox_state state;
	char err[256];
	int64_t last_push_ns, last_push_dur_ns, last_pull_ns, last_pull_dur_ns;
	struct sync_push_progress progress;
	struct sync_push_stats last_push;
	int64_t pull_applied, pull_conflicts, pull_refused;
	int64_t next_try_ns;		/* background backoff */
	int fails;			/* background failures in a row */
	int64_t retry_at_ns;		/* skipped files due (wall clock); 0 = none */
};

struct sync_engine {
	struct store *st;
	int root_fd;
	struct sync_engine_config cfg;
	pthread_mutex_t mu;		/* the list and every status field */
	struct eng_sb **v, **graveyard;
	size_t n, ngrave;
	pthread_mutex_t pull_mu;	/* pulls one at a time */
	volatile int cancel;		/* stop requested */
	volatile int draining;		/* no new background push starts */
	bool bg_running;		/* bg_mu: the loop should go on */
	bool bg_joinable;		/* bg_mu: bg started, not joined yet */
	pthread_t bg;
	pthread_mutex_t bg_mu;
	pthread_cond_t bg_cv;
	bool kicked;			/* bg_mu: re-check even if the head stayed */
};

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

const char *sync_sandbox_state_name(enum sync_sandbox_state s)
{
	static const char *const names[] = { "idle", "pushing", "pulling", "error" };

	return (unsigned)s < 4 ? names[s] : "?";
}

/* ---- the sandbox list ----------------------------------------------------- */

static void sb_free(struct eng_sb *s)
{
	if (!s)
		return;
	transport_close(s->t);
	pthread_mutex_destroy(&s->op);
	free(s->name);
	free(s->url);
	free(s);
}

static struct eng_sb *sb_new(const struct store_sandbox *row)
{
	struct eng_sb *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->name = strdup(row->name);
	s->url = strdup(row->url);
	s->id = row->id;
	pthread_mutex_init(&s->op, NULL);
	if (!s->name || !s->url) {
		sb_free(s);
		return NULL;
	}
	return s;
}

static struct eng_sb *find_old(struct sync_engine *e, const struct store_sandbox *row)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->v[i] && e->v[i]->id == row->id && !strcmp(e->v[i]->url, row->url))
			return e->v[i];
	return NULL;
}

/* Re-read the sandboxes from the store; removed ones are kept aside (a
 * thread may still be using them) until the engine is freed. */
static int refresh(struct sync_engine *e)
{
	struct store_sandbox *rows;
	struct eng_sb **nv, **g;
	size_t n;
	int r = store_sandbox_list(e->st, &rows, &n);

	if (r < 0)
		return r;
	nv = calloc(n + 1, sizeof(*nv));
	pthread_mutex_lock(&e->mu);
	g = realloc(e->graveyard, (e->ngrave + e->n + 1) * sizeof(*g));
	if (g)
		e->graveyard = g;
	for (size_t i = 0; nv && g && i < n; i++) {
		nv[i] = find_old(e, &rows[i]);
		if (!nv[i] && (nv[i] = sb_new(&rows[i])))	/* a restart too */
			nv[i]->retry_at_ns = sync_push_retry_at(e->st, rows[i].id);
		else if (!nv[i])
			r = -ENOMEM;
	}
	if (nv && g && r == 0) {
		for (size_t i = 0; i < e->n; i++) {
			bool kept = false;

			for (size_t j = 0; j < n; j++)
				kept |= nv[j] == e->v[i];
			if (!kept) {
				e->v[i]->gone = true;
				e->graveyard[e->ngrave++] = e->v[i];
			}
		}
		free(e->v);
		e->v = nv;
		e->n = n;
		nv = NULL;
	} else if (r == 0) {
		r = -ENOMEM;
	}
	pthread_mutex_unlock(&e->mu);
	if (nv)
		for (size_t i = 0; i < n; i++)
			if (nv[i] && !find_old(e, &rows[i]))
				sb_free(nv[i]);
	free(nv);
	store_sandbox_list_free(rows, n);
	return r;
}

/* Sandboxes to work on: `name` or all. *out malloc'd (borrowed entries). */
static int targets(struct sync_engine *e, const char *name,
		   struct eng_sb ***out, size_t *n)
{
	int r = refresh(e);

	*out = NULL;
	*n = 0;
	if (r < 0)
		return r;
	pthread_mutex_lock(&e->mu);
	*out = calloc(e->n + 1, sizeof(**out));
	for (size_t i = 0; *out && i < e->n; i++)
		if (!name || !strcmp(e->v[i]->name, name))
			(*out)[(*n)++] = e->v[i];
	pthread_mutex_unlock(&e->mu);
	if (!*out)
		return -ENOMEM;
	return name && !*n ? -ENOENT : 0;
}

/* ---- one push / one pull ---------------------------------------------------- */

static int ensure_transport(struct sync_engine *e, struct eng_sb *s, char *err,
			    size_t len)
{
	struct transport_opts o = e->cfg.topts;
	int r;

	if (s->t)
		return 0;
	if (e->cfg.configure_transport)
		e->cfg.configure_transport(s->name, &o, e->cfg.configure_arg);
	r = transport_open(s->url, &o, &s->t);
	if (r < 0)
		snprintf(err, len, "cannot open %s: %s", s->url, transport_open_error());
	return r;
}

static void set_state(struct sync_engine *e, struct eng_sb *s,
		      enum sync_sandbox_state st)
{
	pthread_mutex_lock(&e->mu);
	s->state = st;
	pthread_mutex_unlock(&e->mu);
}

struct prog_arg {
	struct sync_engine *e;
	struct eng_sb *s;
	const struct sync_push_config *user;
	const struct sync_engine_call *call;
};

static void on_progress(const struct sync_push_progress *p, void *arg)
{
	struct prog_arg *a = arg;

	pthread_mutex_lock(&a->e->mu);
	a->s->progress = *p;
	a->s->progress.path = NULL;
	pthread_mutex_unlock(&a->e->mu);
	if (a->user->progress)
		a->user->progress(p, a->user->progress_arg);
	if (a->call && a->call->progress)
		a->call->progress(a->s->name, p, a->call->arg);
}

struct pull_prog_arg {
	struct sync_engine *e;
	struct eng_sb *s;
	const struct sync_pull_config *user;
	const struct sync_engine_call *call;
};

/* The fetch's counts also feed `status` (same fields as a push's). */
static void on_pull_progress(const struct sync_pull_progress *p, void *arg)
{
	struct pull_prog_arg *a = arg;

	pthread_mutex_lock(&a->e->mu);
	a->s->progress = (struct sync_push_progress){
		.files_done = p->files_done, .files_total = p->files_total,
		.bytes_done = p->bytes_done, .bytes_total = p->bytes_total,
	};
	pthread_mutex_unlock(&a->e->mu);
	if (a->user->progress)
		a->user->progress(p, a->user->progress_arg);
	if (a->call && a->call->pull_progress)
		a->call->pull_progress(a->s->name, p, a->call->arg);
}

static void configure(struct sync_engine *e, struct eng_sb *s,
		      struct sync_push_config *push, struct sync_pull_config *pull,
		      const struct sync_engine_call *call)
{
	const volatile int *cancel = call && call->cancel ? call->cancel :
				     &e->cancel;

	*push = e->cfg.push;
	*pull = e->cfg.pull;
	if (e->cfg.configure)
		e->cfg.configure(s->name, push, pull, e->cfg.configure_arg);
	push->cancel = cancel;
	pull->cancel = cancel;
}

static void finish(struct sync_engine *e, struct eng_sb *s, bool is_pull,
		   int r, const char *err, int64_t t0)
{
	int64_t dur = mono_ns() - t0;

	if (r < 0) {
		transport_close(s->t);	/* reopened on the next call */
		s->t = NULL;
	}
	pthread_mutex_lock(&e->mu);
	s->state = r < 0 ? SYNC_SB_ERROR : SYNC_SB_IDLE;
	/* A push that succeeded may still warn (files skipped, conflicts). */
	snprintf(s->err, sizeof(s->err), "%s", r < 0 || !is_pull ? err : "");
	if (is_pull) {
		s->last_pull_ns = store_now_ns();
		s->last_pull_dur_ns = dur;
	} else {
		s->last_push_ns = store_now_ns();
		s->last_push_dur_ns = dur;
	}
	memset(&s->progress, 0, sizeof(s->progress));
	pthread_mutex_unlock(&e->mu);
	if (e->cfg.on_done)
		e->cfg.on_done(s->name, is_pull, r, err, e->cfg.on_done_arg);
}

/* Files a push skipped are due for another try (even with no new entry). */
static bool retry_due(struct sync_engine *e, struct eng_sb *s)
{
	bool due;

	pthread_mutex_lock(&e->mu);
	due = s->retry_at_ns && store_now_ns() >= s->retry_at_ns;
	pthread_mutex_unlock(&e->mu);
	return due;
}

/* retries: -2 = as configured; else override (background: one attempt). */
static int do_push(struct sync_engine *e, struct eng_sb *s, bool only_if_needed,
		   int retries, const struct sync_engine_call *call)
{
	struct sync_push_config push;
	struct sync_pull_config pull;
	struct sync_push_stats stats = { 0 };
	struct prog_arg pa = { e, s, &e->cfg.push, call };
	int64_t t0;
	bool needed = true;
	int r;

	pthread_mutex_lock(&s->op);
	if (only_if_needed && store_sandbox_needs_push(e->st, s->id, &needed) == 0 &&
	    !needed && !retry_due(e, s)) {
		pthread_mutex_unlock(&s->op);
		return 0;
	}
	t0 = mono_ns();
	set_state(e, s, SYNC_SB_PUSHING);
	configure(e, s, &push, &pull, call);
	pa.user = &push;
	if (retries != -2)
		push.retries = retries;
	r = ensure_transport(e, s, stats.error, sizeof(stats.error));
	if (r == 0) {
		struct sync_push_config run = push;

		run.progress = on_progress;
		run.progress_arg = &pa;
		r = sync_push_run(e->st, s->id, s->t, e->root_fd, &run, &stats);
	}
	if (r == 0)
		store_journal_prune(e->st, NULL);
	pthread_mutex_lock(&e->mu);
	s->last_push = stats;
	if (r == 0)
		s->retry_at_ns = stats.retry_at_ns;
	pthread_mutex_unlock(&e->mu);
	finish(e, s, false, r, stats.error, t0);
	pthread_mutex_unlock(&s->op);
	if (call && call->on_push)
		call->on_push(s->name, r, &stats, call->arg);
	return r;
}

static int do_pull(struct sync_engine *e, struct eng_sb *s,
		   const struct sync_engine_call *call)
{
	struct sync_push_config push;
	struct sync_pull_config pull;
	struct sync_pull_stats stats = { 0 };
	struct pull_prog_arg pa = { e, s, &pull, call };
	char err[256] = "";
	int64_t t0;
	int r;

	pthread_mutex_lock(&e->pull_mu);
	pthread_mutex_lock(&s->op);
	t0 = mono_ns();
	set_state(e, s, SYNC_SB_PULLING);
	configure(e, s, &push, &pull, call);
	r = ensure_transport(e, s, err, sizeof(err));
	if (r == 0) {
		struct sync_pull_config run = pull;

		run.progress = on_pull_progress;
		run.progress_arg = &pa;
		r = sync_pull_run(e->st, s->id, s->t, e->root_fd, &run, &stats);
		if (r < 0) {
			const char *rep = stats.report ? stats.report : "";
			const char *te = transport_error(s->t);

			snprintf(err, sizeof(err), "%s", *te ? te : strerror(-r));
			if (r == -ESTALE || r == -EFBIG)
				snprintf(err, sizeof(err), "%.*s", (int)strcspn(rep, "\n"), rep);
		}
	}
	pthread_mutex_lock(&e->mu);
	s->pull_applied = stats.applied + stats.deleted;
	s->pull_conflicts = stats.conflicts;
	s->pull_refused = stats.refused;
	pthread_mutex_unlock(&e->mu);
	finish(e, s, true, r, err, t0);
	pthread_mutex_unlock(&s->op);
	pthread_mutex_unlock(&e->pull_mu);
	if (call && call->on_pull)
		call->on_pull(s->name, r, &stats, err, call->arg);
	sync_pull_stats_release(&stats);
	return r;
}

/* ---- fan-out --------------------------------------------------------------- */

struct fan {
	struct sync_engine *e;
	struct eng_sb **v;
	size_t n;
	atomic_size_t next;
	atomic_int first_err;
	int retries;
	bool bg;
	const struct sync_engine_call *call;
	int *rcs;			/* optional: each sandbox's result */
};

static void *fan_worker(void *arg)
{
	struct fan *f = arg;
	size_t i;

	while ((i = atomic_fetch_add(&f->next, 1)) < f->n) {
		int r, zero = 0;

		if (f->bg && f->e->draining)
			break;	/* shutting down: finish what runs, start nothing */
		r = do_push(f->e, f->v[i], f->bg, f->retries, f->call);

		if (f->rcs)
			f->rcs[i] = r;
		if (r < 0)
			atomic_compare_exchange_strong(&f->first_err, &zero, r);
	}
	return NULL;
}

static int fan_out(struct sync_engine *e, struct eng_sb **v, size_t n,
		   int retries, bool bg, const struct sync_engine_call *call,
		   int *rcs)
{
	struct fan f = { .e = e, .v = v, .n = n, .retries = retries, .bg = bg,
			 .call = call, .rcs = rcs };
	size_t pool = e->cfg.pool_size > 0 ? (size_t)e->cfg.pool_size : 4;
	pthread_t th[64];
	size_t nth = 0;

	atomic_init(&f.next, 0);
	atomic_init(&f.first_err, 0);
	if (pool > 64)
		pool = 64;
	while (nth + 1 < pool && nth + 1 < n &&
	       pthread_create(&th[nth], NULL, fan_worker, &f) == 0)
		nth++;
	fan_worker(&f);
	for (size_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	return atomic_load(&f.first_err);
}

/* ---- public API -------------------------------------------------------------- */

int sync_engine_new(struct store *st, int root_fd,
		    const struct sync_engine_config *cfg,
		    struct sync_engine **out)
{
	struct sync_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->st = st;
	e->root_fd = root_fd;
	if (cfg)
		e->cfg = *cfg;
	pthread_mutex_init(&e->mu, NULL);
	pthread_mutex_init(&e->pull_mu, NULL);
	pthread_mutex_init(&e->bg_mu, NULL);
	pthread_cond_init(&e->bg_cv, NULL);
	*out = e;
	return 0;
}

void sync_engine_free(struct sync_engine *e)
{
	if (!e)
		return;
	sync_engine_stop(e);
	e->cancel = 1;
	for (size_t i = 0; i < e->n; i++) {
		pthread_mutex_lock(&e->v[i]->op);	/* wait for running work */
		pthread_mutex_unlock(&e->v[i]->op);
		sb_free(e->v[i]);
	}
	for (size_t i = 0; i < e->ngrave; i++)
		sb_free(e->graveyard[i]);
	free(e->v);
	free(e->graveyard);
	pthread_mutex_destroy(&e->mu);
	pthread_mutex_destroy(&e->pull_mu);
	pthread_mutex_destroy(&e->bg_mu);
	pthread_cond_destroy(&e->bg_cv);
	free(e);
}

int sync_engine_run(struct sync_engine *e, enum sync_engine_op op,
		    const char *name, const struct sync_engine_call *call)
{
	struct eng_sb **v = NULL;
	size_t n = 0;
	int r = targets(e, name, &v, &n), r1, *rcs = NULL;

	if (r == 0 && n && !(rcs = calloc(n, sizeof(*rcs))))
		r = -ENOMEM;
	if (r == 0 && op != SYNC_ENGINE_PULL)
		r = fan_out(e, v, n, -2, false, call, rcs);
	/* A flush pulls even after a failed push: nothing the sandbox holds
	 * is left behind at teardown. */
	for (size_t i = 0; rcs && op != SYNC_ENGINE_PUSH && i < n; i++)
		if ((r1 = do_pull(e, v[i], call)) < 0 && !r)
			r = r1;
	/* Host versions the pull kept (host-wins, refused deletions) go back
	 * out, so a flushed sandbox ends equal to the host. A sandbox whose
	 * push just failed is not tried again: it would fail the same way
	 * and report the same error twice. */
	for (size_t i = 0; rcs && op == SYNC_ENGINE_FLUSH && i < n; i++)
		if (rcs[i] == 0 &&
		    (r1 = do_push(e, v[i], true, -2, call)) < 0 && !r)
			r = r1;
	free(rcs);
	free(v);
	return r;
}

int sync_engine_push(struct sync_engine *e, const char *name)
{
	return sync_engine_run(e, SYNC_ENGINE_PUSH, name, NULL);
}

int sync_engine_pull(struct sync_engine *e, const char *name)
{
	return sync_engine_run(e, SYNC_ENGINE_PULL, name, NULL);
}

int sync_engine_flush(struct sync_engine *e, const char *name)
{
	return sync_engine_run(e, SYNC_ENGINE_FLUSH, name, NULL);
}

int sync_engine_push_if_needed(struct sync_engine *e, const char *name)
{
	struct eng_sb *s = NULL;
	int r = 0;

	pthread_mutex_lock(&e->mu);
	for (size_t i = 0; i < e->n && !s; i++)
		if (!strcmp(e->v[i]->name, name))
			s = e->v[i];
	pthread_mutex_unlock(&e->mu);
	if (!s) {
		struct eng_sb **v;
		size_t n;

		r = targets(e, name, &v, &n);
		s = r == 0 ? v[0] : NULL;
		free(v);
	}
	return s ? do_push(e, s, true, -2, NULL) : r;
}

int sync_engine_error(struct sync_engine *e, const char *name, char *buf,
		      size_t len)
{
	int r = name ? -ENOENT : 0;

	if (len)
		buf[0] = '\0';
	pthread_mutex_lock(&e->mu);
	for (size_t i = 0; i < e->n; i++) {
		struct eng_sb *s = e->v[i];

		if (name ? strcmp(s->name, name) : !s->err[0])
			continue;
		snprintf(buf, len, "%s", s->err);
		r = 0;
		break;
	}
	pthread_mutex_unlock(&e->mu);
	return r;
}

static void status_of(struct sync_engine *e, struct eng_sb *s,
		      struct sync_sandbox_status *o)
{
	o->id = s->id;
	o->state = s->state;
	o->last_push_ns = s->last_push_ns;
	o->last_push_dur_ns = s->last_push_dur_ns;
	o->last_pull_ns = s->last_pull_ns;
	o->last_pull_dur_ns = s->last_pull_dur_ns;
	o->progress = s->progress;
	o->last_push = s->last_push;
	o->last_pull_applied = s->pull_applied;
	o->last_pull_conflicts = s->pull_conflicts;
	o->last_pull_refused = s->pull_refused;
	o->next_retry_ns = s->next_try_ns ?
		store_now_ns() + (s->next_try_ns - mono_ns()) : 0;
	o->name = strdup(s->name);
	o->url = strdup(s->url);
	o->last_error = strdup(s->err);
}

int sync_engine_status(struct sync_engine *e,
		       struct sync_sandbox_status **out, size_t *n)
{
	struct sync_sandbox_status *v;
	int r = refresh(e);

	if (r < 0)
		return r;
	pthread_mutex_lock(&e->mu);
	v = calloc(e->n + 1, sizeof(*v));
	for (size_t i = 0; v && i < e->n; i++)
		status_of(e, e->v[i], &v[i]);
	*n = v ? e->n : 0;
	pthread_mutex_unlock(&e->mu);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < *n; i++) {
		if (!v[i].name || !v[i].url || !v[i].last_error)
			r = -ENOMEM;
		store_sandbox_cursor_get(e->st, v[i].id, &v[i].cursor);
		store_journal_pending(e->st, v[i].cursor, v[i].id, &v[i].pending);
	}
	*out = v;
	if (r < 0) {
		sync_engine_status_free(v, *n);
		*out = NULL;
	}
	return r;
}

void sync_engine_status_free(struct sync_sandbox_status *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].name);
		free(v[i].url);
		free(v[i].last_error);
	}
	free(v);
}

/* ---- background ------------------------------------------------------------------ */

/* Background delay after the sandbox's n-th failure in a row (n >= 1):
 * its own retry schedule, as an explicit push would use it. */
static int bg_delay_ms(struct sync_engine *e, struct eng_sb *s, int n)
{
	int cap = e->cfg.max_backoff_ms > 0 ? e->cfg.max_backoff_ms : 60000;
	struct sync_push_config push;
	struct sync_pull_config pull;
	int d;

	configure(e, s, &push, &pull, NULL);
	if (push.backoff_list && push.backoff_count) {
		d = push.backoff_list[(size_t)n <= push.backoff_count ?
				      (size_t)n - 1 : push.backoff_count - 1];
	} else {
		d = push.backoff_ms > 0 ? push.backoff_ms : 2000;
		while (--n > 0 && d <= cap / 2)
			d *= 2;
	}
	return d < cap ? d : cap;
}

/* One pass: push every sandbox that is behind and not backing off. */
static void bg_round(struct sync_engine *e, bool *all_ok)
{
	struct eng_sb **v, **due;
	size_t n, k = 0;
	int64_t now = mono_ns();

	*all_ok = true;
	if (targets(e, NULL, &v, &n) < 0)
		return;
	due = calloc(n + 1, sizeof(*due));
	pthread_mutex_lock(&e->mu);
	for (size_t i = 0; due && i < n; i++) {
		if (v[i]->next_try_ns && v[i]->next_try_ns > now) {
			*all_ok = false;	/* come back when it is due */
			continue;
		}
		if (e->cfg.follow && !e->cfg.follow(v[i]->name, e->cfg.follow_arg))
			continue;
		due[k++] = v[i];
	}
	pthread_mutex_unlock(&e->mu);
	fan_out(e, due, k, -1, true, NULL, NULL);
	for (size_t i = 0; i < k; i++) {
		struct eng_sb *s = due[i];
		bool failed;
		int nf, delay = 0;

		pthread_mutex_lock(&e->mu);
		if (s->retry_at_ns)
			*all_ok = false;	/* come back for the skipped files */
		failed = s->state == SYNC_SB_ERROR;
		nf = s->fails = failed ? s->fails + 1 : 0;
		pthread_mutex_unlock(&e->mu);
		if (failed)	/* outside mu: configure may take other locks */
			delay = bg_delay_ms(e, s, nf);
		pthread_mutex_lock(&e->mu);
		s->next_try_ns = failed ? now + (int64_t)delay * 1000000 : 0;
		pthread_mutex_unlock(&e->mu);
		if (failed)
			*all_ok = false;
	}
	free(due);
	free(v);
}

static void *bg_main(void *arg)
{
	struct sync_engine *e = arg;
	int poll = e->cfg.poll_ms > 0 ? e->cfg.poll_ms : 200;
	int64_t seen = -1;

	pthread_mutex_lock(&e->bg_mu);
	while (e->bg_running) {
		int64_t head = store_journal_durable(e->st);
		struct timespec ts;
		bool ok = true;

		if (head != seen || e->kicked) {
			e->kicked = false;
			pthread_mutex_unlock(&e->bg_mu);
			bg_round(e, &ok);
			pthread_mutex_lock(&e->bg_mu);
			if (ok)
				seen = head;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)poll * 1000000;
		ts.tv_sec += ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		if (e->bg_running)
			pthread_cond_timedwait(&e->bg_cv, &e->bg_mu, &ts);
	}
	pthread_mutex_unlock(&e->bg_mu);
	return NULL;
}

int sync_engine_start_background(struct sync_engine *e)
{
	int r = 0;

	pthread_mutex_lock(&e->bg_mu);
	if (!e->bg_joinable) {
		e->bg_running = true;
		e->draining = 0;
		e->cancel = 0;
		r = -pthread_create(&e->bg, NULL, bg_main, e);
		e->bg_running = e->bg_joinable = r == 0;
	}
	pthread_mutex_unlock(&e->bg_mu);
	return r;
}

void sync_engine_stop(struct sync_engine *e)
{
	bool joinable;

	pthread_mutex_lock(&e->bg_mu);
	joinable = e->bg_joinable;
	e->bg_running = false;
	e->bg_joinable = false;
	if (joinable)
		e->cancel = 1;
	pthread_cond_broadcast(&e->bg_cv);
	pthread_mutex_unlock(&e->bg_mu);
	if (joinable) {
		pthread_join(e->bg, NULL);
		e->cancel = 0;
	}
}

int sync_engine_drain(struct sync_engine *e, int grace_ms)
{
	struct timespec ts;
	bool joinable;

	pthread_mutex_lock(&e->bg_mu);
	joinable = e->bg_joinable;
	e->bg_running = false;
	e->draining = 1;
	pthread_cond_broadcast(&e->bg_cv);
	pthread_mutex_unlock(&e->bg_mu);
	if (!joinable)
		return 0;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += grace_ms / 1000;
	ts.tv_nsec += (long)(grace_ms % 1000) * 1000000;
	ts.tv_sec += ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	if (pthread_timedjoin_np(e->bg, NULL, &ts) == 0) {
		pthread_mutex_lock(&e->bg_mu);
		e->bg_joinable = false;
		pthread_mutex_unlock(&e->bg_mu);
		return 0;
	}
	e->cancel = 1;	/* rolled back; sync_engine_stop() waits for it */
	return -ETIMEDOUT;
}

bool sync_engine_busy(struct sync_engine *e)
{
	bool busy = false;

	pthread_mutex_lock(&e->mu);
	for (size_t i = 0; i < e->n; i++)
		busy |= e->v[i]->state == SYNC_SB_PUSHING ||
			e->v[i]->state == SYNC_SB_PULLING;
	pthread_mutex_unlock(&e->mu);
	return busy;
}

void sync_engine_kick(struct sync_engine *e)
{
	pthread_mutex_lock(&e->bg_mu);
	e->kicked = true;
	pthread_cond_broadcast(&e->bg_cv);
	pthread_mutex_unlock(&e->bg_mu);
}
