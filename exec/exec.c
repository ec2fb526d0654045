/*
 * exec.c — sessions: the private directory and login-shell snapshot on the
 * sandbox, the tracked cwd, and the accessors. One command is exec_run()
 * in exec_run.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "exec/exec_int.h"
#include "sync/sync.h"

#define SNAP_TIMEOUT_MS_DEFAULT 15000

static __thread char new_err[512];

const char *exec_new_error(void)
{
	return new_err;
}

int64_t exec_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int exec_proc_drain(struct transport_proc *p, int timeout_ms)
{
	int64_t deadline = exec_mono_ms() + timeout_ms;
	char buf[512];
	int stream;
	ssize_t r;

	transport_proc_close_stdin(p);
	do {
		int64_t left = deadline - exec_mono_ms();

		r = transport_proc_read(p, buf, sizeof(buf), &stream,
					left > 0 ? (int)left : 0);
	} while (r > 0);
	return (int)r;
}

void exec_set_error(struct exec_session *s, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&s->lock);
	va_start(ap, fmt);
	vsnprintf(s->err, sizeof(s->err), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&s->lock);
}

static int nonce_make(char out[EXEC_NONCE_HEX + 1])
{
	unsigned char r[EXEC_NONCE_HEX / 2];
	size_t got = 0, i;

	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		got += (size_t)n;
	}
	for (i = 0; i < sizeof(r); i++)
		snprintf(out + 2 * i, 3, "%02x", r[i]);
	return 0;
}

/* Run a short script with a deadline, collecting stdout (NUL-terminated). */
static int run_capture(struct transport *t, const char *script, int timeout_ms,
		       char **out, int *status)
{
	struct transport_proc *p = NULL;
	int64_t deadline = exec_mono_ms() + timeout_ms;
	char *buf = NULL, chunk[4096];
	size_t len = 0;
	int rc, stream;

	*out = NULL;
	rc = transport_spawn(t, script, &p);
	if (rc)
		return rc;
	transport_proc_close_stdin(p);
	for (;;) {
		int64_t left = deadline - exec_mono_ms();
		ssize_t r = transport_proc_read(p, chunk, sizeof(chunk), &stream,
						left > 0 ? (int)left : 0);
		char *nb;

		if (r == 0)
			break;
		if (r < 0) {
			rc = (int)r;
			goto out;
		}
		if (stream != 1 || len + (size_t)r > 65536)
			continue;
		nb = realloc(buf, len + (size_t)r + 1);
		if (!nb) {
			rc = -ENOMEM;
			goto out;
		}
		buf = nb;
		memcpy(buf + len, chunk, (size_t)r);
		len += (size_t)r;
		buf[len] = '\0';
	}
	rc = transport_proc_wait(p, status);
out:
	if (rc) {
		transport_proc_kill(p, SIGKILL);
		/* Keep what arrived: the first line may already be there. */
	}
	transport_proc_free(p);
	*out = buf;
	return rc;
}

/* Create the private directory and the snapshot (or note the fallback). */
static int session_start(struct exec_session *s)
{
	char *script = exec_script_start(), *out = NULL, *nl;
	int rc, status = -1;

	if (!script)
		return -ENOMEM;
	rc = run_capture(s->t, script, s->snap_timeout_ms, &out, &status);
	free(script);
	nl = out ? strchr(out, '\n') : NULL;
	if (!nl || out[0] != '/') {
		snprintf(new_err, sizeof(new_err), "cannot create a private "
			 "directory on the sandbox (status %d%s%s)", status,
			 rc ? ": " : "", rc ? transport_error(s->t) : "");
		rc = rc ? rc : -EIO;
		goto out;
	}
	*nl = '\0';
	s->dir = strdup(out);
	if (!s->dir) {
		rc = -ENOMEM;
		goto out;
	}
	/* A timed-out or failed login shell is not fatal: bash -l fallback. */
	s->snapshot = !rc && status == 0 && !strncmp(nl + 1, "ok\n", 3);
	rc = 0;
out:
	free(out);
	return rc;
}

int exec_session_new(const struct exec_config *cfg, struct exec_session **out)
{
	struct exec_session *s = NULL;
	const char *cwd;
	int rc;

	*out = NULL;
	new_err[0] = '\0';
	if (!cfg || !cfg->t)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	pthread_mutex_init(&s->run_lock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	s->t = cfg->t;
	s->before_run = cfg->before_run;
	s->arg = cfg->arg;
	s->cap = cfg->output_cap ? cfg->output_cap : EXEC_OUTPUT_CAP_DEFAULT;
	s->snap_timeout_ms = cfg->snapshot_timeout_s > 0
			   ? cfg->snapshot_timeout_s * 1000 : SNAP_TIMEOUT_MS_DEFAULT;
	s->local = !strcmp(transport_kind(cfg->t), "local");
	s->ssh = !strcmp(transport_kind(cfg->t), "ssh");
	s->flat = s->local || s->ssh;
	cwd = cfg->cwd ? cfg->cwd : transport_root(cfg->t);
	s->cwd = strdup(cwd);
	s->initial_cwd = strdup(cwd);
	if (!s->cwd || !s->initial_cwd) {
		rc = -ENOMEM;
		goto out;
	}
	rc = nonce_make(s->nonce);
	if (!rc)
		rc = session_start(s);
	if (rc)
		goto out;
	/* Spares need the flat shape (bash leads its group) and a snapshot;
	 * without a thread the session just spawns fresh every time. */
	if (s->flat && s->snapshot && !cfg->no_spare)
		exec_spare_start(s);
	*out = s;
	s = NULL;	/* transferred */
out:
	if (s) {
		s->dir = NULL;
		exec_session_free(s);
	}
	return rc;
}

void exec_session_free(struct exec_session *s)
{
	char *qd, *script = NULL;

	if (!s)
		return;
	exec_spare_stop(s);
	if (s->dir && (qd = sync_shell_quote(s->dir))) {
		if (asprintf(&script, "rm -rf %s", qd) >= 0) {
			char *out = NULL;
			int st;

			run_capture(s->t, script, 5000, &out, &st);
			free(out);
			free(script);
		}
		free(qd);
	}
	free(s->dir);
	free(s->cwd);
	free(s->initial_cwd);
	pthread_mutex_destroy(&s->run_lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void exec_cancel(struct exec_session *s)
{
	if (s && s->running)
		s->cancel = 1;
}

char *exec_session_cwd(struct exec_session *s)
{
	char *c;

	pthread_mutex_lock(&s->lock);
	c = strdup(s->cwd);
	pthread_mutex_unlock(&s->lock);
	return c;
}

bool exec_session_snapshot_ok(struct exec_session *s)
{
	bool b;

	pthread_mutex_lock(&s->lock);
	b = s->snapshot;
	pthread_mutex_unlock(&s->lock);
	return b;
}

const char *exec_session_error(struct exec_session *s)
{
	/* Read right after the failing call by the caller of that call. */
	return s ? s->err : "";
}

void exec_result_release(struct exec_result *res)
{
	if (!res)
		return;
	free(res->output);
	free(res->out);
	free(res->err);
	memset(res, 0, sizeof(*res));
}
