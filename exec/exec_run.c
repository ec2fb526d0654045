/*
 * exec_run.c — one command: spawn the wrapper, feed stdin, collect output
 * through the marker filter, enforce the timeout and cancellation by
 * killing the command's process group (directly when local, through a
 * second transport call otherwise), and update the session's cwd and
 * snapshot generation from the E marker.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/exec_int.h"
#include "sync/sync.h"

#define SLICE_MS 50		/* how often cancel and the deadline are polled */
#define LINGER_MS 250		/* after the E marker: wait for EOF this long */
#define DRAIN_MS 3000		/* after a kill: wait for EOF this long */
#define KILL_GRACE_MS 500	/* TERM -> KILL */
#define KILL_GIVEUP_MS 3000
#define KILL_REMOTE_MS 15000

struct run_ctx {
	struct capbuf all, out, err;
	bool separate;
	int oom;
	struct mfilter mf;
	bool has_p, has_e;
	long pgid, outer;
	int64_t e_time;
	int e_status;
	char e_flag;
	char *e_cwd;
};

static void add(struct run_ctx *c, struct capbuf *b, const char *p, size_t n)
{
	if (capbuf_add(&c->all, p, n) || (c->separate && capbuf_add(b, p, n)))
		c->oom = -ENOMEM;
}

static void on_text(void *arg, const char *p, size_t n)
{
	struct run_ctx *c = arg;

	add(c, &c->out, p, n);
}

/* E payload: "status:flag:cwd". */
static void on_e(struct run_ctx *c, const char *p, size_t n)
{
	const char *end = p + n, *a, *b;
	char *cwd;
	size_t cl;

	a = memchr(p, ':', n);
	if (!a || a + 2 >= end || a[2] != ':')
		return;
	b = a + 3;
	cl = (size_t)(end - b);
	cwd = strndup(b, cl);
	if (!cwd || strlen(cwd) != cl) {	/* no NUL can be in a path */
		free(cwd);
		return;
	}
	free(c->e_cwd);
	c->e_cwd = cwd;
	c->e_status = atoi(p);
	c->e_flag = a[1];
	c->has_e = true;
	c->e_time = exec_mono_ms();
}

static void on_marker(void *arg, char type, const char *p, size_t n)
{
	struct run_ctx *c = arg;
	long pg, outer;

	if (type == 'P' && !c->has_p && sscanf(p, "%ld %ld", &pg, &outer) == 2 &&
	    pg > 1 && outer > 1) {
		c->has_p = true;
		c->pgid = pg;
		c->outer = outer;
	} else if (type == 'E') {
		on_e(c, p, n);
	}
}

/* Is any live (non-zombie) process in group pgid? Orphaned zombies wait
 * for init to reap them; they are gone for every practical purpose. */
static bool group_alive(long pgid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	bool alive = false;

	if (!d)
		return kill(-(pid_t)pgid, 0) == 0;
	while (!alive && (e = readdir(d))) {
		char path[300], buf[512], *r;
		FILE *f;
		long pg;
		char st;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f) && (r = strrchr(buf, ')')) &&
		    sscanf(r + 1, " %c %*d %ld", &st, &pg) == 2 && pg == pgid &&
		    st != 'Z')
			alive = true;
		fclose(f);
	}
	closedir(d);
	return alive;
}

static bool kill_local(long pgid)
{
	int64_t start = exec_mono_ms();
	bool killed = false;

	killpg((pid_t)pgid, SIGTERM);
	while (group_alive(pgid)) {
		int64_t el = exec_mono_ms() - start;

		if (el >= KILL_GIVEUP_MS)
			return false;
		if (el >= KILL_GRACE_MS && !killed) {
			killpg((pid_t)pgid, SIGKILL);
			killed = true;
		}
		usleep(20000);
	}
	return true;
}

static bool kill_remote(struct exec_session *s, long pgid, long outer)
{
	struct transport_proc *p = NULL;
	char *script = exec_script_kill(pgid, outer);
	int status = -1;
	bool ok = false;

	if (!script || transport_spawn(s->t, script, &p))
		goto out;
	ok = exec_proc_drain(p, KILL_REMOTE_MS) == 0 &&
	     transport_proc_wait(p, &status) == 0 && status == 0;
out:
	transport_proc_free(p);
	free(script);
	return ok;
}

/* Kill the command's process group; true once it was seen gone. */
static bool kill_command(struct exec_session *s, struct run_ctx *c,
			 struct transport_proc *p)
{
	if (!c->has_p) {	/* the wrapper had not started it yet */
		transport_proc_kill(p, SIGTERM);
		usleep(100000);
		transport_proc_kill(p, SIGKILL);
		return false;
	}
	if (s->local)
		return kill_local(c->pgid);
	if (kill_remote(s, c->pgid, c->outer))
		return true;
	transport_proc_kill(p, SIGKILL);	/* best effort */
	return false;
}

struct writer {
	struct transport_proc *p;
	const char *buf;
	size_t len;
	int rc;
	pthread_t th;
	bool started;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	w->rc = transport_proc_write(w->p, w->buf, w->len);
	transport_proc_close_stdin(w->p);
	return NULL;
}

static int writer_start(struct writer *w, struct transport_proc *p,
			const struct exec_request *req)
{
	memset(w, 0, sizeof(*w));
	w->p = p;
	if (!req->stdin_buf || !req->stdin_len)
		return transport_proc_close_stdin(p);
	w->buf = req->stdin_buf;
	w->len = req->stdin_len;
	if (pthread_create(&w->th, NULL, writer_main, w))
		return -EAGAIN;
	w->started = true;
	return 0;
}

static void writer_join(struct writer *w)
{
	if (w->started)
		pthread_join(w->th, NULL);
	w->started = false;
}

static bool cancelled(struct exec_session *s, const struct exec_request *req)
{
	return s->cancel || (req->cancel && *req->cancel);
}

/* The read loop. Returns 0, or a negative errno from the transport. */
static int collect(struct exec_session *s, const struct exec_request *req,
		   struct run_ctx *c, struct transport_proc *p,
		   struct exec_result *res, bool *eof)
{
	int64_t deadline = req->timeout_s > 0
			 ? exec_mono_ms() + (int64_t)req->timeout_s * 1000 : 0;
	int64_t drain_until = 0, p_wait_until = 0;
	char *chunk = malloc(65536);
	int stream, rc = 0;

	if (!chunk)
		return -ENOMEM;
	for (;;) {
		int64_t now = exec_mono_ms();
		int wait_ms = SLICE_MS;
		ssize_t r;

		if (drain_until && now >= drain_until)
			break;
		if (!drain_until && c->has_e && now - c->e_time >= LINGER_MS)
			break;	/* background processes hold the output open */
		if (!p_wait_until && (cancelled(s, req) ||
				      (deadline && now >= deadline))) {
			if (cancelled(s, req))
				res->interrupted = true;
			else
				res->timed_out = true;
			/* The P marker follows the fork at once: wait for it so
			 * the group is known (the wrapper may be just starting). */
			p_wait_until = now + KILL_GRACE_MS * 4;
		}
		if (p_wait_until && !drain_until &&
		    (c->has_p || now >= p_wait_until)) {
			res->killed_verified = kill_command(s, c, p);
			drain_until = exec_mono_ms() + DRAIN_MS;
			continue;
		}
		if (deadline && !p_wait_until && deadline - now < wait_ms)
			wait_ms = (int)(deadline - now);
		r = transport_proc_read(p, chunk, 65536, &stream, wait_ms);
		if (r > 0) {
			if (stream == 1)
				mfilter_feed(&c->mf, chunk, (size_t)r);
			else
				add(c, &c->err, chunk, (size_t)r);
		} else if (r == 0) {
			*eof = true;
			break;
		} else if (r != -ETIMEDOUT) {
			rc = (int)r;
			break;
		}
	}
	mfilter_flush(&c->mf);
	free(chunk);
	return rc;
}

/* Apply the E marker to the session and pick the status. */
static void finish(struct exec_session *s, const struct exec_request *req,
		   struct run_ctx *c, int next, bool eof, int proc_status,
		   struct exec_result *res)
{
	/* The wrapper's own exit status is the command's (in the flat shape a
	 * signal death still runs the trap, whose $? is then stale); the E
	 * marker's only counts when background holders kept EOF away. */
	res->status = proc_status;
	if (res->timed_out)
		res->status = EXEC_STATUS_TIMEOUT;
	else if (res->interrupted)
		res->status = EXEC_STATUS_INTERRUPT;
	else if (c->has_e && (!eof || proc_status < 0))
		res->status = c->e_status;
	if (res->timed_out || res->interrupted || !c->has_e)
		return;
	pthread_mutex_lock(&s->lock);
	if (c->e_flag == 'S') {
		s->gen = next;
		s->snapshot = true;
		if (!req->cwd_override && c->e_cwd[0] == '/') {
			free(s->cwd);
			s->cwd = c->e_cwd;
			c->e_cwd = NULL;	/* transferred */
		}
	} else if (c->e_flag == 'G') {
		char *ic = strdup(s->initial_cwd);

		if (ic) {
			free(s->cwd);
			s->cwd = ic;
			res->cwd_reset = true;
		}
	}
	pthread_mutex_unlock(&s->lock);
}

static int results(struct run_ctx *c, struct exec_result *res)
{
	int rc = capbuf_take(&c->all, &res->output, &res->output_len,
			     &res->truncated);

	if (!rc && c->separate)
		rc = capbuf_take(&c->out, &res->out, &res->out_len,
				 &res->truncated);
	if (!rc && c->separate)
		rc = capbuf_take(&c->err, &res->err, &res->err_len,
				 &res->truncated);
	return rc;
}

static char *build_script(struct exec_session *s, const struct exec_request *req,
			  int *next,
			  char *(*make)(const struct exec_script_args *))
{
	struct exec_script_args a = { 0 };
	char *script;

	pthread_mutex_lock(&s->lock);
	a.dir = s->dir;
	a.nonce = s->nonce;
	a.cur = s->gen;
	a.next = *next = 1 - s->gen;
	a.snapshot = s->snapshot;
	a.flat = s->flat;
	a.cwd = s->cwd;
	a.initial_cwd = s->initial_cwd;
	a.override = req->cwd_override && *req->cwd_override
		   ? req->cwd_override : NULL;
	a.command = req->command;
	script = make(&a);
	pthread_mutex_unlock(&s->lock);
	return script;
}

/* Hand the call to a ready spare: send its state, then EOF (a spare's
 * stdin is the state only; calls with stdin bytes start fresh). */
static int start_spare(struct exec_session *s, const struct exec_request *req,
		       int *next, struct transport_proc **out)
{
	struct transport_proc *p = exec_spare_take(s, req);
	char *blob;
	int rc;

	if (!p)
		return -ENOENT;
	blob = build_script(s, req, next, exec_script_blob);
	rc = blob ? transport_proc_write(p, blob, strlen(blob)) : -ENOMEM;
	if (!rc)
		rc = transport_proc_close_stdin(p);
	free(blob);
	if (rc) {	/* it died idle (or the connection did): start fresh */
		transport_proc_free(p);
		exec_spare_failed(s);
		return rc;
	}
	*out = p;
	return 0;
}

/* Start the command (on a spare when allowed and one is ready) and feed
 * its stdin. *spared tells which. */
static int start(struct exec_session *s, const struct exec_request *req,
		 bool allow_spare, int *next, struct transport_proc **out,
		 struct writer *w, bool *spared)
{
	struct transport_proc *p = NULL;
	char *script;
	int rc;

	*spared = allow_spare && start_spare(s, req, next, &p) == 0;
	if (*spared) {
		*out = p;
		memset(w, 0, sizeof(*w));	/* stdin already at EOF */
		return 0;
	}
	script = build_script(s, req, next, exec_script_run);
	if (!script)
		return -ENOMEM;
	rc = transport_spawn(s->t, script, &p);
	free(script);
	if (rc) {
		exec_set_error(s, "cannot start the command: %s",
			       transport_error(s->t));
		return rc;
	}
	*out = p;
	return writer_start(w, p, req);
}

/* -EAGAIN: a spare ended before it ran anything (no P or E marker, not
 * timed out or interrupted): the caller retries with a fresh start. */
static int run_locked(struct exec_session *s, const struct exec_request *req,
		      struct exec_result *res, struct run_ctx *c,
		      bool allow_spare)
{
	struct transport_proc *p = NULL;
	struct writer w = { 0 };
	int rc, next, status = -1;
	bool eof = false, spared = false;

	rc = start(s, req, allow_spare, &next, &p, &w, &spared);
	if (!rc)
		rc = collect(s, req, c, p, res, &eof);
	writer_join(&w);
	/* After the E marker the wrapper is exiting: reap it, so that freeing
	 * the proc does not kill its group, where a local command's background
	 * jobs live on. (Over ssh, waiting would wait for EOF: not then.) */
	if (p && (eof || (c->has_e && !s->ssh)) && transport_proc_wait(p, &status))
		status = -1;
	transport_proc_free(p);
	if (spared && (rc || eof) && !c->has_p && !c->has_e &&
	    !res->timed_out && !res->interrupted) {
		exec_spare_failed(s);
		return -EAGAIN;
	}
	if (rc) {
		if (p)
			exec_set_error(s, "command output: %s",
				       transport_error(s->t));
		return rc;
	}
	if (!eof && !c->has_e && !res->timed_out && !res->interrupted)
		return -EIO;
	finish(s, req, c, next, eof, status, res);
	res->spare = spared;
	return c->oom ? c->oom : results(c, res);
}

static int ctx_init(struct exec_session *s, const struct exec_request *req,
		    struct run_ctx *c)
{
	int rc;

	memset(c, 0, sizeof(*c));
	c->separate = req->separate_streams;
	capbuf_init(&c->all, s->cap);
	capbuf_init(&c->out, s->cap);
	capbuf_init(&c->err, s->cap);
	rc = mfilter_init(&c->mf, s->nonce);
	c->mf.on_text = on_text;
	c->mf.on_marker = on_marker;
	c->mf.arg = c;
	return rc;
}

static void ctx_release(struct run_ctx *c)
{
	capbuf_release(&c->all);
	capbuf_release(&c->out);
	capbuf_release(&c->err);
	mfilter_release(&c->mf);
	free(c->e_cwd);
	c->e_cwd = NULL;
}

int exec_run(struct exec_session *s, const struct exec_request *req,
	     struct exec_result *res)
{
	struct run_ctx c;
	int rc;

	memset(res, 0, sizeof(*res));
	if (!s || !req || !req->command)
		return -EINVAL;
	if (strlen(req->command) > 120 * 1024) {
		exec_set_error(s, "command too long (over 120 KiB)");
		return -E2BIG;
	}
	pthread_mutex_lock(&s->run_lock);
	s->cancel = 0;
	s->running = 1;
	if (s->before_run && (rc = s->before_run(s->arg)) < 0) {
		exec_set_error(s, "before-run hook failed: %s", strerror(-rc));
		goto out;
	}
	rc = ctx_init(s, req, &c);
	if (!rc)
		rc = run_locked(s, req, res, &c, true);
	if (rc == -EAGAIN) {
		ctx_release(&c);
		memset(res, 0, sizeof(*res));
		rc = ctx_init(s, req, &c);
		if (!rc)
			rc = run_locked(s, req, res, &c, false);
	}
	ctx_release(&c);
	/* The next call's spare starts now, off this call's path. */
	exec_spare_refill(s);
out:
	s->running = 0;
	s->cancel = 0;
	pthread_mutex_unlock(&s->run_lock);
	if (rc)
		exec_result_release(res);
	return rc;
}
