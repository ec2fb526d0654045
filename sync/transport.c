/*
 * transport.c — URL parsing and the kind-independent half of the transport
 * API: dispatch to local/cmd children or ssh channels, transport_run, quoting.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sync/transport_int.h"

int64_t sync_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void transport_set_error(struct transport *t, const char *fmt, ...)
{
	va_list ap;

	if (!t)
		return;
	pthread_mutex_lock(&t->err_lock);
	va_start(ap, fmt);
	vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&t->err_lock);
}

const char *transport_error(const struct transport *t)
{
	/* Returned unlocked by design: callers read it right after the failing
	 * call on the same thread; the buffer is never freed before close. */
	return t ? t->err : "";
}

const char *transport_root(const struct transport *t)
{
	return t->root;
}

const char *transport_kind(const struct transport *t)
{
	switch (t->kind) {
	case TK_LOCAL: return "local";
	case TK_CMD: return "cmd";
	case TK_SSH: return "ssh";
	}
	return "?";
}

void url_parts_release(struct url_parts *p)
{
	if (!p)
		return;
	free(p->user);
	free(p->host);
	free(p->root);
	free(p->cmd);
	memset(p, 0, sizeof(*p));
}

static bool root_ok(const char *r)
{
	size_t n = r ? strlen(r) : 0;

	return n && r[0] == '/' && !strstr(r, "/../") &&
	       !(n >= 3 && !strcmp(r + n - 3, "/.."));
}

/* Canonical root: strip trailing slashes except for "/" itself. */
static char *root_dup(const char *r)
{
	char *s = strdup(r);
	size_t n;

	if (!s)
		return NULL;
	n = strlen(s);
	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

static int parse_ssh(const char *rest, struct url_parts *p, const char **why)
{
	const char *slash = strchr(rest, '/'), *at, *hp, *colon, *end;
	char *endp;
	long port;

	if (!slash || !root_ok(slash)) {
		*why = "ssh URL needs an absolute remote root: ssh://[user@]host[:port]/root";
		return -EINVAL;
	}
	at = memchr(rest, '@', (size_t)(slash - rest));
	hp = at ? at + 1 : rest;
	if (at && !(p->user = strndup(rest, (size_t)(at - rest))))
		return -ENOMEM;
	end = slash;
	if (*hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(slash - hp));

		if (!rb) {
			*why = "unterminated [ in ssh host";
			return -EINVAL;
		}
		p->host = strndup(hp + 1, (size_t)(rb - hp - 1));
		colon = rb[1] == ':' ? rb + 1 : NULL;
	} else {
		colon = memchr(hp, ':', (size_t)(slash - hp));
		p->host = strndup(hp, (size_t)((colon ? colon : end) - hp));
	}
	if (!p->host)
		return -ENOMEM;
	if (!p->host[0] || (p->user && !p->user[0])) {
		*why = "empty host or user in ssh URL";
		return -EINVAL;
	}
	p->port = 22;
	if (colon) {
		errno = 0;
		port = strtol(colon + 1, &endp, 10);
		if (endp != end || port < 1 || port > 65535 || errno) {
			*why = "bad port in ssh URL";
			return -EINVAL;
		}
		p->port = (int)port;
	}
	p->root = root_dup(slash);
	return p->root ? 0 : -ENOMEM;
}

static int parse_cmd(const char *rest, struct url_parts *p, const char **why)
{
	const char *hash = strrchr(rest, '#');
	char **words = NULL;
	int rc;

	if (hash && hash[1] != '/')
		hash = NULL;	/* a '#' inside the command, not a root */
	p->cmd = hash ? strndup(rest, (size_t)(hash - rest)) : strdup(rest);
	p->root = root_dup(hash ? hash + 1 : "/");
	if (!p->cmd || !p->root)
		return -ENOMEM;
	if (hash && !root_ok(p->root)) {
		*why = "cmd URL root must be absolute: cmd:PREFIX#/root";
		return -EINVAL;
	}
	rc = sync_split_words(p->cmd, &words);
	if (rc == -EINVAL)
		*why = "unbalanced quotes in cmd prefix";
	else if (rc == 0 && !words[0]) {
		*why = "empty cmd prefix";
		rc = -EINVAL;
	}
	argv_free(words);
	return rc;
}

int url_parts_parse(const char *url, struct url_parts *p, const char **why)
{
	const char *dummy;
	int rc;

	if (!why)
		why = &dummy;
	*why = NULL;
	memset(p, 0, sizeof(*p));
	if (!url) {
		*why = "no URL";
		return -EINVAL;
	}
	if (!strncmp(url, "local:", 6)) {
		p->kind = TK_LOCAL;
		if (!root_ok(url + 6)) {
			*why = "local URL needs an absolute path: local:/path";
			return -EINVAL;
		}
		p->root = root_dup(url + 6);
		return p->root ? 0 : -ENOMEM;
	}
	if (!strncmp(url, "ssh://", 6)) {
		p->kind = TK_SSH;
		rc = parse_ssh(url + 6, p, why);
	} else if (!strncmp(url, "cmd:", 4)) {
		p->kind = TK_CMD;
		rc = parse_cmd(url + 4, p, why);
	} else {
		*why = "unknown URL scheme (expected local:, ssh:// or cmd:)";
		return -EINVAL;
	}
	if (rc)
		url_parts_release(p);
	return rc;
}

int transport_url_check(const char *url, const char **why)
{
	struct url_parts p;
	int rc = url_parts_parse(url, &p, why);

	url_parts_release(&p);
	return rc;
}

void transport_close(struct transport *t)
{
	if (!t)
		return;
	ssh_conn_close(t->ssh);
	argv_free(t->prefix);
	free(t->url);
	free(t->root);
	pthread_mutex_destroy(&t->err_lock);
	free(t);
}

static __thread char open_err[512];

int transport_open(const char *url, const struct transport_opts *opts,
		   struct transport **out)
{
	struct transport_opts defaults = { 0 };
	struct transport *t = NULL;
	struct url_parts u;
	const char *why = NULL;
	int rc;

	*out = NULL;
	open_err[0] = '\0';
	rc = url_parts_parse(url, &u, &why);
	if (rc)
		goto out;
	t = calloc(1, sizeof(*t));
	if (!t) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&t->err_lock, NULL);
	t->kind = u.kind;
	t->url = strdup(url);
	t->root = strdup(u.root);
	if (!t->url || !t->root) {
		rc = -ENOMEM;
		goto out;
	}
	if (t->kind == TK_CMD)
		rc = sync_split_words(u.cmd, &t->prefix);
	else if (t->kind == TK_SSH)
		rc = ssh_conn_open(t, &u, opts ? opts : &defaults);
	if (rc)
		goto out;
	*out = t;
	t = NULL;	/* transferred */
out:
	if (rc)
		snprintf(open_err, sizeof(open_err), "%s",
			 t && t->err[0] ? t->err : why ? why : strerror(-rc));
	transport_close(t);
	url_parts_release(&u);
	return rc;
}

const char *transport_open_error(void)
{
	return open_err;
}

/* HERMES_FAULT_TRANSPORT_FAIL_AT=N: the Nth spawn of this process fails. */
static bool fault_hit(void)
{
	static atomic_long calls;
	const char *e = getenv("HERMES_FAULT_TRANSPORT_FAIL_AT");
	long n = atomic_fetch_add(&calls, 1) + 1;

	return e && *e && atol(e) == n;
}

static int spawn_child(struct transport *t, const char *script,
		       struct proc_child *c)
{
	char *local_argv[] = { "/bin/sh", "-c", (char *)script, NULL };
	char **argv;
	size_t n = 0, i;
	int rc;

	if (t->kind == TK_LOCAL)
		return child_spawn(t, local_argv, t->root, c);
	while (t->prefix[n])
		n++;
	argv = calloc(n + 4, sizeof(*argv));
	if (!argv)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		argv[i] = t->prefix[i];
	argv[n] = "sh";
	argv[n + 1] = "-c";
	argv[n + 2] = (char *)script;
	rc = child_spawn(t, argv, NULL, c);
	free(argv);
	return rc;
}

int transport_spawn(struct transport *t, const char *script,
		    struct transport_proc **out)
{
	struct transport_proc *p;
	int rc;

	*out = NULL;
	if (fault_hit()) {
		transport_set_error(t, "injected fault (HERMES_FAULT_TRANSPORT_FAIL_AT)");
		return -EIO;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->t = t;
	p->child.pid = -1;
	p->child.in_fd = p->child.out_fd = p->child.err_fd = -1;
	if (t->kind == TK_SSH)
		rc = ssh_chan_spawn(t, script, &p->chan);
	else
		rc = spawn_child(t, script, &p->child);
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int transport_proc_write(struct transport_proc *p, const void *buf, size_t n)
{
	if (p->chan)
		return ssh_chan_write(p->t, p->chan, buf, n);
	return child_write(p->t, &p->child, buf, n);
}

int transport_proc_close_stdin(struct transport_proc *p)
{
	if (p->chan)
		return ssh_chan_close_stdin(p->t, p->chan);
	if (p->child.in_fd >= 0) {
		close(p->child.in_fd);
		p->child.in_fd = -1;
	}
	return 0;
}

ssize_t transport_proc_read(struct transport_proc *p, void *buf, size_t n,
			    int *stream, int timeout_ms)
{
	if (p->chan)
		return ssh_chan_read(p->t, p->chan, buf, n, stream, timeout_ms);
	return child_read(&p->child, buf, n, stream, timeout_ms);
}

int transport_proc_wait(struct transport_proc *p, int *status)
{
	if (p->chan)
		return ssh_chan_wait(p->t, p->chan, status);
	return child_wait(&p->child, status);
}

int transport_proc_kill(struct transport_proc *p, int sig)
{
	if (p->chan)
		return ssh_chan_kill(p->t, p->chan, sig);
	return child_kill(&p->child, sig);
}

void transport_proc_free(struct transport_proc *p)
{
	if (!p)
		return;
	if (p->chan)
		ssh_chan_free(p->t, p->chan);
	else
		child_release(&p->child);
	free(p);
}

char *sync_shell_quote(const char *s)
{
	size_t n = 2, i;
	char *q, *o;

	for (i = 0; s[i]; i++)
		n += s[i] == '\'' ? 4 : 1;
	q = malloc(n + 1);
	if (!q)
		return NULL;
	o = q;
	*o++ = '\'';
	for (i = 0; s[i]; i++) {
		if (s[i] == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = s[i];
		}
	}
	*o++ = '\'';
	*o = '\0';
	return q;
}
