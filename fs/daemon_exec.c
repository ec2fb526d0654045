/*
 * daemon_exec.c — `hermes-fsctl exec`: one exec session per sandbox (env,
 * functions, aliases and cwd persist across calls), plus a local session
 * (`-s -`, or no -s while there is no sandbox) whose cwd is the mountpoint,
 * so local commands' writes go through the mount and are journaled.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/exec.h"
#include "fs/ctl_int.h"
#include "fs/daemon_int.h"
#include "store/store.h"
#include "sync/sync.h"

#define STDIN_CAP (64u << 20)

struct xsess {
	struct xsess *next;
	char *name;		/* "" = local session on the mount */
	struct transport *t;
	struct exec_session *s;
	struct daemon *d;
	pthread_mutex_t run;	/* one command at a time per session */
	struct ctl_req *req;	/* daemon_exec.lock: the command running */
};

struct daemon_exec {
	pthread_mutex_t lock;	/* guards list, stopping, every xsess.req */
	struct xsess *list;
	bool stopping;		/* shutting down: no new command */
};

struct xargs {
	const char *name;
	const char *dir;
	int timeout_s;
	char *command;
};

int daemon_exec_init(struct daemon *d)
{
	struct daemon_exec *x = calloc(1, sizeof(*x));

	if (!x)
		return -ENOMEM;
	pthread_mutex_init(&x->lock, NULL);
	d->exec = x;
	return 0;
}

static void xsess_free(struct xsess *xs)
{
	if (!xs)
		return;
	exec_session_free(xs->s);
	transport_close(xs->t);
	pthread_mutex_destroy(&xs->run);
	free(xs->name);
	free(xs);
}

void daemon_exec_release(struct daemon *d)
{
	struct xsess *xs, *next;

	if (!d->exec)
		return;
	for (xs = d->exec->list; xs; xs = next) {
		next = xs->next;
		xsess_free(xs);
	}
	pthread_mutex_destroy(&d->exec->lock);
	free(d->exec);
	d->exec = NULL;
}

void daemon_exec_interrupt(struct daemon *d)
{
	struct xsess *xs;

	if (!d->exec)
		return;
	pthread_mutex_lock(&d->exec->lock);
	d->exec->stopping = true;
	for (xs = d->exec->list; xs; xs = xs->next)
		if (xs->req)
			__atomic_store_n(&xs->req->cancelled, 1, __ATOMIC_SEQ_CST);
	pthread_mutex_unlock(&d->exec->lock);
}

/* Mark req as running in xs; false once the daemon is shutting down. */
static bool xsess_enter(struct xsess *xs, struct ctl_req *req)
{
	struct daemon_exec *x = xs->d->exec;
	bool ok;

	pthread_mutex_lock(&x->lock);
	ok = !x->stopping;
	xs->req = ok ? req : NULL;
	pthread_mutex_unlock(&x->lock);
	return ok;
}

/* Done with req; true if it was interrupted by the shutdown. */
static bool xsess_leave(struct xsess *xs)
{
	struct daemon_exec *x = xs->d->exec;
	bool stopping;

	pthread_mutex_lock(&x->lock);
	xs->req = NULL;
	stopping = x->stopping;
	pthread_mutex_unlock(&x->lock);
	return stopping;
}

void daemon_exec_forget(struct daemon *d, const char *name)
{
	struct xsess **pp, *xs;

	pthread_mutex_lock(&d->exec->lock);
	for (pp = &d->exec->list; (xs = *pp); pp = &xs->next) {
		if (strcmp(xs->name, name) == 0) {
			*pp = xs->next;
			/* Wait for a command still running in it. */
			pthread_mutex_lock(&xs->run);
			pthread_mutex_unlock(&xs->run);
			xsess_free(xs);
			break;
		}
	}
	pthread_mutex_unlock(&d->exec->lock);
}

/* The remote sees every host change made before the command. */
static int before_remote(void *arg)
{
	struct xsess *xs = arg;

	return daemon_engine_push_if_needed(xs->d, xs->name);
}

static int xsess_open(struct daemon *d, const char *name, const char *url,
		      struct xsess **out, int errfd)
{
	struct exec_config cfg = { 0 };
	struct transport_opts o;
	struct xsess *xs = calloc(1, sizeof(*xs));
	int r = -ENOMEM;

	if (!xs || !(xs->name = strdup(name)))
		goto out;
	xs->d = d;
	pthread_mutex_init(&xs->run, NULL);
	daemon_transport_opts(d, name, &o);
	if ((r = transport_open(url, &o, &xs->t)) < 0) {
		dprintf(errfd, "hermes-fsctl: cannot reach sandbox %s: %s\n",
		    name[0] ? name : "(local)", transport_open_error());
		goto out;
	}
	cfg.t = xs->t;
	if (name[0]) {
		cfg.before_run = before_remote;
		cfg.arg = xs;
	}
	if ((r = exec_session_new(&cfg, &xs->s)) < 0) {
		dprintf(errfd, "hermes-fsctl: cannot start a shell session in %s:"
		    " %s\n", name[0] ? name : "the mount", exec_new_error());
		goto out;
	}
	*out = xs;
	xs = NULL;	/* transferred */
out:
	xsess_free(xs);
	return r;
}

/* The session of sandbox `name` ("" = local), created on first use. */
static int xsess_get(struct daemon *d, struct ctl_req *req, const char *name,
		     struct xsess **out)
{
	struct store_sandbox sb = { 0 };
	struct xsess *xs;
	char *url = NULL;
	int r = 0;

	pthread_mutex_lock(&d->exec->lock);
	for (xs = d->exec->list; xs; xs = xs->next)
		if (strcmp(xs->name, name) == 0)
			goto found;
	if (name[0] == '\0') {
		if (asprintf(&url, "local:%s", d->mountpoint) < 0)
			url = NULL;
	} else if ((r = store_sandbox_get(d->st, name, &sb)) == 0) {
		url = strdup(sb.url);
		store_sandbox_release(&sb);
	} else {
		dprintf(req->err, "hermes-fsctl: unknown sandbox '%s' (see:"
		    " hermes-fsctl sandbox list)\n", name);
		goto out;
	}
	if (!url) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = xsess_open(d, name, url, &xs, req->err)) < 0)
		goto out;
	xs->next = d->exec->list;
	d->exec->list = xs;
found:
	*out = xs;
out:
	pthread_mutex_unlock(&d->exec->lock);
	free(url);
	return r;
}

/* argv: exec [-s NAME] [-t SECONDS] [-C DIR] [--] COMMAND... (checked by
 * the client). Words of COMMAND are joined with spaces, as ssh does. */
static int xargs_parse(struct ctl_req *req, struct xargs *a)
{
	size_t len = 0;
	int i, j;

	for (i = 1; i < req->argc; i++) {
		const char *o = req->argv[i];

		if (strcmp(o, "--") == 0) {
			i++;
			break;
		}
		if (o[0] != '-' || i + 1 == req->argc)
			break;
		if (strcmp(o, "-s") == 0)
			a->name = req->argv[++i];
		else if (strcmp(o, "-C") == 0)
			a->dir = req->argv[++i];
		else if (strcmp(o, "-t") == 0)
			a->timeout_s = (int)ceil(strtod(req->argv[++i], NULL));
	}
	for (j = i; j < req->argc; j++)
		len += strlen(req->argv[j]) + 1;
	if (i == req->argc || !(a->command = calloc(1, len + 1)))
		return -EINVAL;
	for (j = i; j < req->argc; j++) {
		if (j > i)
			strcat(a->command, " ");
		strcat(a->command, req->argv[j]);
	}
	return 0;
}

/* The caller's stdin when it is a pipe or a file (never a terminal, which
 * would wait for the user). */
static int read_stdin(int fd, char **buf, size_t *len)
{
	struct stat st;
	size_t cap = 0, n = 0;
	ssize_t r;
	char *p = NULL, *q;

	*buf = NULL;
	*len = 0;
	if (fstat(fd, &st) < 0 || !(S_ISFIFO(st.st_mode) || S_ISREG(st.st_mode)))
		return 0;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > STDIN_CAP || !(q = realloc(p, cap))) {
				free(p);
				return cap > STDIN_CAP ? -EFBIG : -ENOMEM;
			}
			p = q;
		}
		r = read(fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	*buf = p;
	*len = n;
	return 0;
}

static void write_all_fd(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0 && (w = write(fd, p, n)) > 0) {
		p += w;
		n -= (size_t)w;
	}
}

/* -C DIR: relative to the tree root (not to the tracked cwd). */
static char *resolve_dir(struct xsess *xs, const char *dir)
{
	char *p = NULL;

	if (!dir || dir[0] == '/')
		return dir ? strdup(dir) : NULL;
	if (asprintf(&p, "%s/%s", transport_root(xs->t), dir) < 0)
		return NULL;
	return p;
}

static int run_one(struct ctl_req *req, struct xsess *xs, struct xargs *a,
		   const char *in, size_t inlen)
{
	struct exec_request er = {
		.command = a->command, .stdin_buf = in, .stdin_len = inlen,
		.timeout_s = a->timeout_s, .separate_streams = true,
		.cancel = &req->cancelled,
	};
	struct exec_result res = { 0 };
	char *dir = resolve_dir(xs, a->dir);
	bool stopping;
	int r;

	er.cwd_override = dir;
	pthread_mutex_lock(&xs->run);
	if (!xsess_enter(xs, req)) {
		pthread_mutex_unlock(&xs->run);
		free(dir);
		dprintf(req->err, "hermes-fsctl: the hermesfs daemon is shutting"
		    " down; run the command after the next mount\n");
		return CTL_EXIT_FAIL;
	}
	r = exec_run(xs->s, &er, &res);
	stopping = xsess_leave(xs);
	pthread_mutex_unlock(&xs->run);
	free(dir);
	if (r == 0 && stopping && res.status == 130)
		dprintf(req->err, "hermes-fsctl: interrupted: the hermesfs daemon"
		    " is shutting down (the command and its process group were"
		    " killed)\n");
	if (r < 0) {
		dprintf(req->err, "hermes-fsctl: exec failed: %s\n",
		    exec_session_error(xs->s));
		return CTL_EXIT_FAIL;
	}
	write_all_fd(req->out, res.out, res.out_len);
	write_all_fd(req->err, res.err, res.err_len);
	if (res.timed_out)
		dprintf(req->err, "hermes-fsctl: timed out after %d s; the command"
		    " and its process group were killed\n", a->timeout_s);
	r = res.status;
	exec_result_release(&res);
	return r;
}

/* Without -s: the first sandbox by name; -ENOENT when there is none. */
static int first_sandbox(struct daemon *d, char **name)
{
	struct store_sandbox *l = NULL;
	size_t n = 0;
	int r;

	if ((r = store_sandbox_list(d->st, &l, &n)) < 0)
		return r;
	*name = n ? strdup(l[0].name) : NULL;
	store_sandbox_list_free(l, n);
	return n == 0 ? -ENOENT : *name ? 0 : -ENOMEM;
}

int daemon_cmd_exec(struct daemon *d, struct ctl_req *req)
{
	struct xargs a = { .name = "" };
	struct xsess *xs = NULL;
	char *in = NULL, *first = NULL;
	size_t inlen = 0;
	int r;

	if (xargs_parse(req, &a) < 0) {
		dprintf(req->err, "hermes-fsctl: exec needs a COMMAND\n");
		return CTL_EXIT_USAGE;
	}
	if (strcmp(a.name, "-") == 0)
		a.name = "";
	else if (!a.name[0] && (r = first_sandbox(d, &first)) == 0)
		a.name = first;
	if ((r = xsess_get(d, req, a.name, &xs)) < 0) {
		r = r == -ENOENT ? CTL_EXIT_NOENT : CTL_EXIT_FAIL;
		goto out;
	}
	if (read_stdin(req->in, &in, &inlen) < 0) {
		dprintf(req->err, "hermes-fsctl: stdin is larger than %u MiB\n",
		    STDIN_CAP >> 20);
		r = CTL_EXIT_FAIL;
		goto out;
	}
	r = run_one(req, xs, &a, in, inlen);
out:
	free(in);
	free(first);
	free(a.command);
	return r;
}
