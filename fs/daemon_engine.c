/*
 * daemon_engine.c — background pushes that follow the journal, fan-out
 * over a bounded pool, and the `sync`, `pull` and `flush` commands.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/ctl_int.h"
#include "fs/daemon_sync_int.h"

#define BG_POLL_MS 200
#define BG_ERROR_DELAY_NS (20LL * 1000000000)

struct push_job {
	struct daemon *d;
	struct dsb *sb;
	struct ctl_req *req;
	struct sync_push_stats stats;
	int r;
	pthread_t th;
};

static void *push_job_run(void *arg)
{
	struct push_job *j = arg;

	j->r = dsb_push(j->d, j->sb, j->req, &j->stats);
	if (j->r < 0 && !j->req) {
		pthread_mutex_lock(&j->d->eng->lock);
		j->sb->retry_after_ns = store_now_ns() + BG_ERROR_DELAY_NS;
		pthread_mutex_unlock(&j->d->eng->lock);
	}
	return NULL;
}

/* Push every job, at most eng->parallel at a time. */
static void push_jobs(struct daemon *d, struct push_job *jobs, size_t n)
{
	size_t i, start;
	int par = d->eng->parallel > 0 ? d->eng->parallel : 4;

	for (start = 0; start < n; start += (size_t)par) {
		size_t end = start + (size_t)par < n ? start + (size_t)par : n;

		for (i = start; i < end; i++)
			if (pthread_create(&jobs[i].th, NULL, push_job_run, &jobs[i]))
				push_job_run(&jobs[i]), jobs[i].th = 0;
		for (i = start; i < end; i++)
			if (jobs[i].th)
				pthread_join(jobs[i].th, NULL);
	}
}

/* Runtime states of all sandboxes in the store (or just `name`). */
static int dsb_all(struct daemon *d, const char *name, struct dsb ***out,
		   size_t *n)
{
	struct store_sandbox *l = NULL;
	struct dsb **v = NULL;
	size_t cnt = 0, i;
	int r;

	*n = 0;
	if (name) {
		if (!(v = calloc(1, sizeof(*v))))
			return -ENOMEM;
		if ((r = dsb_get(d, name, &v[0])) < 0) {
			free(v);
			return r;
		}
		*out = v;
		*n = 1;
		return 0;
	}
	if ((r = store_sandbox_list(d->st, &l, &cnt)) < 0)
		return r;
	if (cnt && !(v = calloc(cnt, sizeof(*v))))
		r = -ENOMEM;
	for (i = 0; r == 0 && i < cnt; i++)
		if (dsb_get(d, l[i].name, &v[*n]) == 0)
			(*n)++;
	store_sandbox_list_free(l, cnt);
	*out = v;
	return r;
}

static void bg_round(struct daemon *d)
{
	struct push_job *jobs = NULL;
	struct dsb **v = NULL;
	size_t n = 0, nj = 0, i;
	int64_t now = store_now_ns();
	bool needed;

	if (dsb_all(d, NULL, &v, &n) < 0 || n == 0)
		goto out;
	if (!(jobs = calloc(n, sizeof(*jobs))))
		goto out;
	for (i = 0; i < n; i++) {
		if (!v[i]->auto_push ||
		    store_sandbox_needs_push(d->st, v[i]->id, &needed) < 0 ||
		    !needed || now < v[i]->retry_after_ns)
			continue;
		jobs[nj].d = d;
		jobs[nj++].sb = v[i];
	}
	push_jobs(d, jobs, nj);
out:
	free(jobs);
	free(v);
}

static void *bg_main(void *arg)
{
	struct daemon *d = arg;
	struct daemon_engine *e = d->eng;
	struct timespec ts;

	while (!e->stop) {
		pthread_mutex_lock(&e->lock);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += BG_POLL_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!e->stop)
			pthread_cond_timedwait(&e->kick, &e->lock, &ts);
		pthread_mutex_unlock(&e->lock);
		if (!e->stop)
			bg_round(d);
	}
	return NULL;
}

int daemon_engine_start(struct daemon *d)
{
	struct daemon_engine *e = calloc(1, sizeof(*e));
	const char *v;
	int64_t par = 4;

	if (!e)
		return -ENOMEM;
	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->kick, NULL);
	pthread_mutex_init(&e->pull_lock, NULL);
	if ((v = config_get(d->cfg, NULL, "parallel")))
		config_parse_size(v, &par);
	e->parallel = par > 0 && par < 64 ? (int)par : 4;
	d->eng = e;
	if (pthread_create(&e->bg, NULL, bg_main, d) == 0)
		e->bg_running = true;
	return e->bg_running ? 0 : -EAGAIN;
}

void daemon_engine_stop(struct daemon *d)
{
	struct daemon_engine *e = d->eng;
	struct dsb *sb, *next;

	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	e->stop = 1;
	for (sb = e->list; sb; sb = sb->next)
		sb->cancel = 1;
	pthread_cond_broadcast(&e->kick);
	pthread_mutex_unlock(&e->lock);
	if (e->bg_running)
		pthread_join(e->bg, NULL);
	for (sb = e->list; sb; sb = next) {
		next = sb->next;
		pthread_mutex_destroy(&sb->op);
		dsb_free(sb);
	}
	pthread_mutex_destroy(&e->pull_lock);
	pthread_cond_destroy(&e->kick);
	pthread_mutex_destroy(&e->lock);
	free(e);
	d->eng = NULL;
}

void daemon_engine_kick(struct daemon *d)
{
	pthread_mutex_lock(&d->eng->lock);
	pthread_cond_broadcast(&d->eng->kick);
	pthread_mutex_unlock(&d->eng->lock);
}

void daemon_engine_forget(struct daemon *d, const char *name)
{
	struct dsb *sb;

	daemon_exec_forget(d, name);
	pthread_mutex_lock(&d->eng->lock);
	for (sb = d->eng->list; sb; sb = sb->next)
		if (!sb->removed && strcmp(sb->name, name) == 0)
			break;
	if (sb) {
		sb->removed = true;
		sb->cancel = 1;
	}
	pthread_mutex_unlock(&d->eng->lock);
	if (!sb)
		return;
	/* Let a push or pull in progress finish before the rows go. */
	pthread_mutex_lock(&sb->op);
	transport_close(sb->t);
	sb->t = NULL;
	pthread_mutex_unlock(&sb->op);
}

int daemon_engine_push_if_needed(struct daemon *d, const char *name)
{
	struct sync_push_stats stats;
	struct dsb *sb;
	bool needed = false;
	int r;

	if ((r = dsb_get(d, name, &sb)) < 0 ||
	    (r = store_sandbox_needs_push(d->st, sb->id, &needed)) < 0 || !needed)
		return r;
	return dsb_push(d, sb, NULL, &stats);
}
