/*
 * exec_spare.c — a warm spare: the next call's fresh bash, started ahead
 * of time by a per-session thread so that a call pays only for sending
 * its state and running it (see exec.h for the trade-off).
 *
 * A spare is a transport process running exec_script_spare(): bash has
 * started (for ssh: the channel is open, sshd has forked, the login shell
 * has exec'd sh and bash), printed its R marker, and waits in `source
 * /dev/stdin`. Nothing of the session is read at that point: the call's
 * state, the snapshot and the cwd are read once the call sends its blob.
 * One spare serves one call; the next is started after the call ends.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec_int.h"
#include "sync/sync.h"

#define SPARE_READY_MS 10000	/* a spare not ready by then is dropped */
#define SPARE_SLICE_MS 100	/* how often a waiting start checks stop */
#define SPARE_MAX_FAILS 3	/* in a row: spares off for the session */
#define SPARE_END_MS 2000	/* at stop: wait this long for it to exit */

struct exec_spare {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t th;
	char *script;			/* exec_script_spare() */
	struct transport_proc *ready;	/* mu */
	bool want, busy, stop, off;	/* mu */
	int fails;			/* mu */
};

static void on_ready(void *arg, char type, const char *p, size_t n)
{
	(void)p;
	(void)n;
	if (type == 'R')
		*(bool *)arg = true;
}

/* Wait for the R marker; false on EOF, error, timeout or stop. */
static bool spare_wait_ready(struct exec_session *s, struct exec_spare *sp,
			     struct transport_proc *p)
{
	int64_t deadline = exec_mono_ms() + SPARE_READY_MS;
	struct mfilter mf;
	bool ready = false, stop = false;
	char buf[512];
	int stream;

	if (mfilter_init(&mf, s->nonce))
		return false;
	mf.on_marker = on_ready;
	mf.arg = &ready;
	while (!ready && !stop && exec_mono_ms() < deadline) {
		ssize_t r = transport_proc_read(p, buf, sizeof(buf), &stream,
						SPARE_SLICE_MS);

		if (r > 0 && stream == 1)
			mfilter_feed(&mf, buf, (size_t)r);
		else if (r <= 0 && r != -ETIMEDOUT)
			break;
		pthread_mutex_lock(&sp->mu);
		stop = sp->stop;
		pthread_mutex_unlock(&sp->mu);
	}
	mfilter_release(&mf);
	return ready && !stop;
}

/* Close stdin (the spare exits, having run nothing), reap, free. */
static void spare_end(struct transport_proc *p)
{
	if (!p)
		return;
	if (exec_proc_drain(p, SPARE_END_MS) == 0)
		transport_proc_wait(p, NULL);
	transport_proc_free(p);	/* kills it if it is still there */
}

static struct transport_proc *spare_make(struct exec_session *s,
					 struct exec_spare *sp)
{
	struct transport_proc *p = NULL;

	if (transport_spawn(s->t, sp->script, &p))
		return NULL;
	if (!spare_wait_ready(s, sp, p)) {
		spare_end(p);
		return NULL;
	}
	return p;
}

static void *spare_main(void *arg)
{
	struct exec_session *s = arg;
	struct exec_spare *sp = s->spare;

	pthread_mutex_lock(&sp->mu);
	while (!sp->stop) {
		struct transport_proc *p;

		if (!sp->want || sp->ready || sp->off) {
			pthread_cond_wait(&sp->cv, &sp->mu);
			continue;
		}
		sp->want = false;
		sp->busy = true;
		pthread_mutex_unlock(&sp->mu);
		p = spare_make(s, sp);
		pthread_mutex_lock(&sp->mu);
		sp->busy = false;
		if (p && !sp->stop) {
			sp->ready = p;
			p = NULL;	/* transferred */
			sp->fails = 0;
			sp->want = false;	/* asked for while busy: done */
		} else if (!p && ++sp->fails >= SPARE_MAX_FAILS) {
			sp->off = true;
		}
		pthread_cond_broadcast(&sp->cv);
		if (p) {
			pthread_mutex_unlock(&sp->mu);
			spare_end(p);
			pthread_mutex_lock(&sp->mu);
		}
	}
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

int exec_spare_start(struct exec_session *s)
{
	struct exec_script_args a = { 0 };
	struct exec_spare *sp = calloc(1, sizeof(*sp));

	if (!sp)
		return -ENOMEM;
	a.dir = s->dir;
	a.nonce = s->nonce;
	a.snapshot = true;
	a.flat = true;
	a.env_cleared = true;
	a.initial_cwd = s->initial_cwd;
	sp->script = exec_script_spare(&a);
	if (!sp->script) {
		free(sp);
		return -ENOMEM;
	}
	pthread_mutex_init(&sp->mu, NULL);
	pthread_cond_init(&sp->cv, NULL);
	sp->want = true;
	s->spare = sp;
	if (pthread_create(&sp->th, NULL, spare_main, s)) {
		s->spare = NULL;
		pthread_mutex_destroy(&sp->mu);
		pthread_cond_destroy(&sp->cv);
		free(sp->script);
		free(sp);
		return -EAGAIN;
	}
	return 0;
}

void exec_spare_stop(struct exec_session *s)
{
	struct exec_spare *sp = s ? s->spare : NULL;

	if (!sp)
		return;
	pthread_mutex_lock(&sp->mu);
	sp->stop = true;
	pthread_cond_broadcast(&sp->cv);
	pthread_mutex_unlock(&sp->mu);
	pthread_join(sp->th, NULL);
	spare_end(sp->ready);
	pthread_mutex_destroy(&sp->mu);
	pthread_cond_destroy(&sp->cv);
	free(sp->script);
	free(sp);
	s->spare = NULL;
}

struct transport_proc *exec_spare_take(struct exec_session *s,
				       const struct exec_request *req)
{
	struct exec_spare *sp = s->spare;
	struct transport_proc *p;

	if (!sp || (req->stdin_buf && req->stdin_len) ||
	    !exec_session_snapshot_ok(s))
		return NULL;
	pthread_mutex_lock(&sp->mu);
	/* One being started is ready sooner than a fresh start would be. */
	while (!sp->stop && !sp->ready && (sp->busy || (sp->want && !sp->off)))
		pthread_cond_wait(&sp->cv, &sp->mu);
	p = sp->ready;
	sp->ready = NULL;
	pthread_mutex_unlock(&sp->mu);
	return p;
}

void exec_spare_refill(struct exec_session *s)
{
	struct exec_spare *sp = s->spare;

	if (!sp)
		return;
	pthread_mutex_lock(&sp->mu);
	if (!sp->ready && !sp->off) {
		sp->want = true;
		pthread_cond_signal(&sp->cv);
	}
	pthread_mutex_unlock(&sp->mu);
}

void exec_spare_failed(struct exec_session *s)
{
	struct exec_spare *sp = s->spare;

	if (!sp)
		return;
	pthread_mutex_lock(&sp->mu);
	if (++sp->fails >= SPARE_MAX_FAILS)
		sp->off = true;
	pthread_mutex_unlock(&sp->mu);
}
