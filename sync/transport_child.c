/*
 * transport_child.c — local: and cmd: commands as child processes with
 * pipes, each in its own process group so a kill reaches the whole tree.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sync/transport_int.h"

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* In the child between fork and exec: only async-signal-safe calls. */
static void child_exec(char *const argv[], const char *cwd, int in, int out,
		       int err)
{
	sigset_t none;
	int s;

	setpgid(0, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
		_exit(127);
	if (!cwd || chdir(cwd) != 0)
		if (chdir("/") != 0)
			_exit(127);
	execvp(argv[0], argv);
	_exit(127);
}

int child_spawn(struct transport *t, char *const argv[], const char *cwd,
		struct proc_child *c)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	int rc = 0;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) ||
	    pipe2(err, O_CLOEXEC)) {
		rc = -errno;
		transport_set_error(t, "pipe: %s", strerror(errno));
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		transport_set_error(t, "fork: %s", strerror(errno));
		goto out;
	}
	if (pid == 0)
		child_exec(argv, cwd, in[0], out[1], err[1]);
	setpgid(pid, pid);	/* also here: no race with an early killpg */
	c->pid = pid;
	c->reaped = false;
	c->in_fd = in[1];
	c->out_fd = out[0];
	c->err_fd = err[0];
	in[1] = out[0] = err[0] = -1;	/* transferred */
out:
	close_fd(&in[0]); close_fd(&in[1]);
	close_fd(&out[0]); close_fd(&out[1]);
	close_fd(&err[0]); close_fd(&err[1]);
	return rc;
}

/* Write with SIGPIPE blocked in this thread so a dead reader gives -EPIPE
 * instead of killing the process; a pending SIGPIPE is consumed. */
int child_write(struct transport *t, struct proc_child *c, const void *buf,
		size_t n)
{
	const char *p = buf;
	sigset_t pipe_set, old;
	struct timespec zero = { 0, 0 };
	int rc = 0;

	if (c->in_fd < 0)
		return -EPIPE;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	while (n > 0) {
		ssize_t w = write(c->in_fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rc = -errno;
			break;
		}
		p += w;
		n -= (size_t)w;
	}
	if (rc == -EPIPE) {
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
		transport_set_error(t, "command closed its input early");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

ssize_t child_read(struct proc_child *c, void *buf, size_t n, int *stream,
		   int timeout_ms)
{
	int64_t deadline = timeout_ms >= 0 ? sync_mono_ms() + timeout_ms : 0;

	for (;;) {
		struct pollfd pf[2] = { { c->out_fd, POLLIN, 0 },
					{ c->err_fd, POLLIN, 0 } };
		int wait_ms = -1, i, r;

		if (c->out_fd < 0 && c->err_fd < 0)
			return 0;
		if (timeout_ms >= 0) {
			int64_t left = deadline - sync_mono_ms();

			wait_ms = left > 0 ? (int)left : 0;
		}
		r = poll(pf, 2, wait_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		for (i = 0; i < 2; i++) {
			int *fd = i ? &c->err_fd : &c->out_fd;
			ssize_t got;

			if (*fd < 0 || !pf[i].revents)
				continue;
			got = read(*fd, buf, n);
			if (got < 0 && errno == EINTR)
				break;
			if (got < 0)
				return -errno;
			if (got == 0) {
				close_fd(fd);
				continue;
			}
			if (stream)
				*stream = i + 1;
			return got;
		}
	}
}

int child_wait(struct proc_child *c, int *status)
{
	int ws;

	close_fd(&c->in_fd);
	if (!c->reaped) {
		while (waitpid(c->pid, &ws, 0) < 0) {
			if (errno != EINTR)
				return -errno;
		}
		c->reaped = true;
		c->status = WIFEXITED(ws) ? WEXITSTATUS(ws)
			  : WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : 255;
	}
	if (status)
		*status = c->status;
	return 0;
}

int child_kill(struct proc_child *c, int sig)
{
	if (c->pid <= 0 || c->reaped)
		return -ESRCH;
	if (killpg(c->pid, sig) < 0 && kill(c->pid, sig) < 0)
		return -errno;
	return 0;
}

void child_release(struct proc_child *c)
{
	close_fd(&c->in_fd);
	close_fd(&c->out_fd);
	close_fd(&c->err_fd);
	if (c->pid > 0 && !c->reaped) {
		killpg(c->pid, SIGKILL);
		kill(c->pid, SIGKILL);
		while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
			;
		c->reaped = true;
	}
}
