/*
 * transport_ssh_chan.c — one SSH channel per command on the shared session.
 *
 * The session runs non-blocking so several channels can progress. On
 * EAGAIN: an outbound stall (a half-sent packet) is waited out holding the
 * lock, because libssh2 must finish that packet before anyone sends another;
 * an inbound wait (data, window adjust, replies) releases the lock.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/transport_ssh_int.h"

#define SSH_STALL_MS (120 * 1000)	/* no progress at all: give up */
#define SSH_WINDOW (4u << 20)

/* With c->lock held; returns -ETIMEDOUT once deadline (ms, 0 = none) passed. */
static int eagain_wait(struct ssh_conn *c, struct ssh_sess *s, int64_t deadline)
{
	int dirs = libssh2_session_block_directions(s->s);
	int64_t now = sync_mono_ms();
	int ms = 1000, nchan = c->nchan;

	if (deadline && now >= deadline) {
		/* A half-sent packet cannot be abandoned: the session is lost. */
		if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
			s->dead = true;
		return -ETIMEDOUT;
	}
	if (deadline && deadline - now < ms)
		ms = (int)(deadline - now);
	if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND) {
		struct pollfd pf = { s->sock, POLLOUT, 0 };

		poll(&pf, 1, ms);
		return 0;
	}
	pthread_mutex_unlock(&c->lock);
	/* Another thread may consume the packets we wait for (they are queued
	 * per channel), so poll briefly when others share the session. */
	ssh_sess_wait(c, s, dirs, nchan > 1 && ms > 5 ? 5 : ms);
	pthread_mutex_lock(&c->lock);
	return 0;
}

static int64_t stall_deadline(void)
{
	return sync_mono_ms() + SSH_STALL_MS;
}

static int dead_err(struct transport *t)
{
	transport_set_error(t, "ssh: connection lost");
	return -ECONNRESET;
}

/* Open a channel and start the command on session s (lock held). */
static int chan_start(struct transport *t, struct ssh_conn *c,
		      struct ssh_sess *s, const char *cmd, LIBSSH2_CHANNEL **out)
{
	LIBSSH2_CHANNEL *ch = NULL;
	int64_t dl = sync_mono_ms() + c->connect_timeout_ms;
	int rc;

	while (!(ch = libssh2_channel_open_ex(s->s, "session", 7, SSH_WINDOW,
					      LIBSSH2_CHANNEL_PACKET_DEFAULT,
					      NULL, 0))) {
		rc = libssh2_session_last_errno(s->s);
		if (rc != LIBSSH2_ERROR_EAGAIN)
			return ssh_err(t, s, rc, "open channel");
		if (s->dead || eagain_wait(c, s, dl))
			return s->dead ? dead_err(t) : -ETIMEDOUT;
	}
	while ((rc = libssh2_channel_exec(ch, cmd)) == LIBSSH2_ERROR_EAGAIN)
		if (s->dead || eagain_wait(c, s, dl))
			break;
	if (rc) {
		rc = rc == LIBSSH2_ERROR_EAGAIN ? -ETIMEDOUT
						 : ssh_err(t, s, rc, "exec");
		libssh2_channel_free(ch);
		return rc;
	}
	*out = ch;
	return 0;
}

/* The current session, reconnecting if it died (lock held). */
static int conn_session(struct transport *t, struct ssh_conn *c, bool force)
{
	if (c->cur && (c->cur->dead || force)) {
		c->cur->dead = true;
		ssh_sess_unref(c, c->cur);
		c->cur = NULL;
	}
	if (c->cur)
		return 0;
	return ssh_sess_connect(t, c, &c->cur);
}

int ssh_chan_spawn(struct transport *t, const char *script,
		   struct ssh_chan **out)
{
	struct ssh_conn *c = t->ssh;
	struct ssh_chan *ch = calloc(1, sizeof(*ch));
	char *q = sync_shell_quote(script), *cmd = NULL;
	int rc, attempt;

	if (!ch || !q || asprintf(&cmd, "exec sh -c %s", q) < 0) {
		rc = -ENOMEM;
		cmd = NULL;
		goto out;
	}
	pthread_mutex_lock(&c->lock);
	/* A connection dropped while idle shows up here: reconnect once. */
	for (attempt = 0; attempt < 2; attempt++) {
		rc = conn_session(t, c, attempt > 0);
		if (rc)
			break;
		rc = chan_start(t, c, c->cur, cmd, &ch->ch);
		if (rc != -ECONNRESET && rc != -EIO)
			break;
	}
	if (!rc) {
		ch->sess = c->cur;
		c->cur->refs++;
		c->nchan++;
	}
	pthread_mutex_unlock(&c->lock);
	if (!rc) {
		*out = ch;
		ch = NULL;	/* transferred */
	}
out:
	free(ch);
	free(q);
	free(cmd);
	return rc;
}

int ssh_chan_write(struct transport *t, struct ssh_chan *ch, const void *buf,
		   size_t n)
{
	struct ssh_conn *c = t->ssh;
	const char *p = buf;
	int64_t dl = stall_deadline();
	ssize_t w;
	int rc = 0;

	if (ch->eof_sent)
		return -EPIPE;
	pthread_mutex_lock(&c->lock);
	while (n > 0 && !rc) {
		if (ch->sess->dead) {
			rc = dead_err(t);
			break;
		}
		w = libssh2_channel_write_ex(ch->ch, 0, p, n);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			dl = stall_deadline();
		} else if (w == LIBSSH2_ERROR_EAGAIN || w == 0) {
			if (libssh2_channel_eof(ch->ch) == 1) {
				transport_set_error(t, "command closed its input early");
				rc = -EPIPE;
			} else {
				rc = eagain_wait(c, ch->sess, dl);
			}
		} else {
			rc = ssh_err(t, ch->sess, (int)w, "write");
		}
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

int ssh_chan_close_stdin(struct transport *t, struct ssh_chan *ch)
{
	struct ssh_conn *c = t->ssh;
	int64_t dl = stall_deadline();
	int rc;

	if (ch->eof_sent)
		return 0;
	pthread_mutex_lock(&c->lock);
	while ((rc = libssh2_channel_send_eof(ch->ch)) == LIBSSH2_ERROR_EAGAIN)
		if (ch->sess->dead || eagain_wait(c, ch->sess, dl))
			break;
	if (rc)
		rc = ch->sess->dead ? dead_err(t) : ssh_err(t, ch->sess, rc, "eof");
	ch->eof_sent = true;
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* One non-blocking read attempt on a stream (lock held): >0 data, 0 EOF,
 * LIBSSH2_ERROR_EAGAIN nothing yet, other <0 errors. */
static ssize_t try_read(struct ssh_chan *ch, int id, void *buf, size_t n,
			bool *eof)
{
	ssize_t r;

	if (*eof)
		return LIBSSH2_ERROR_EAGAIN;
	r = libssh2_channel_read_ex(ch->ch, id, buf, n);
	if (r == 0)
		*eof = true;
	return r == 0 ? LIBSSH2_ERROR_EAGAIN : r;
}

ssize_t ssh_chan_read(struct transport *t, struct ssh_chan *ch, void *buf,
		      size_t n, int *stream, int timeout_ms)
{
	struct ssh_conn *c = t->ssh;
	int64_t dl = timeout_ms >= 0 ? sync_mono_ms() + timeout_ms : 0;
	ssize_t r = 0;
	int i;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		for (i = 0; i < 2; i++) {
			r = try_read(ch, i, buf, n, i ? &ch->err_eof : &ch->out_eof);
			if (r != LIBSSH2_ERROR_EAGAIN)
				break;
		}
		if (r > 0 && stream)
			*stream = i + 1;
		if (r != LIBSSH2_ERROR_EAGAIN)
			break;
		if (ch->out_eof && ch->err_eof) {
			r = 0;
			break;
		}
		if (ch->sess->dead) {
			r = dead_err(t);
			break;
		}
		if (eagain_wait(c, ch->sess, dl)) {
			r = -ETIMEDOUT;
			break;
		}
	}
	if (r < 0 && r != -ETIMEDOUT && r != -ECONNRESET)
		r = ssh_err(t, ch->sess, (int)r, "read");
	pthread_mutex_unlock(&c->lock);
	return r;
}

static int signal_number(const char *name)
{
	int s;

	for (s = 1; s < NSIG; s++) {
		const char *a = sigabbrev_np(s);

		if (a && !strcmp(a, name))
			return s;
	}
	return 0;
}

/* Close and collect the exit status (lock held). */
static int chan_finish(struct transport *t, struct ssh_conn *c,
		       struct ssh_chan *ch)
{
	int64_t dl = stall_deadline();
	char *sig = NULL;
	size_t siglen = 0;
	int rc;

	while ((rc = libssh2_channel_close(ch->ch)) == LIBSSH2_ERROR_EAGAIN)
		if (ch->sess->dead || eagain_wait(c, ch->sess, dl))
			break;
	while (!rc && (rc = libssh2_channel_wait_closed(ch->ch)) ==
		      LIBSSH2_ERROR_EAGAIN)
		if (ch->sess->dead || eagain_wait(c, ch->sess, dl))
			break;
	if (rc)
		return ch->sess->dead ? dead_err(t) : ssh_err(t, ch->sess, rc, "close");
	ch->closed = true;
	ch->status = libssh2_channel_get_exit_status(ch->ch);
	libssh2_channel_get_exit_signal(ch->ch, &sig, &siglen, NULL, NULL,
					NULL, NULL);
	if (sig) {
		ch->status = 128 + signal_number(sig);
		libssh2_free(ch->sess->s, sig);
	}
	return 0;
}

int ssh_chan_wait(struct transport *t, struct ssh_chan *ch, int *status)
{
	struct ssh_conn *c = t->ssh;
	char buf[16384];
	ssize_t r;
	int rc;

	if (!ch->closed) {
		rc = ssh_chan_close_stdin(t, ch);
		/* The exit status comes after the output: drain what is unread. */
		while (!rc && (r = ssh_chan_read(t, ch, buf, sizeof(buf), NULL,
						 -1)) != 0)
			if (r < 0)
				rc = (int)r;
		if (rc)
			return rc;
		pthread_mutex_lock(&c->lock);
		rc = chan_finish(t, c, ch);
		pthread_mutex_unlock(&c->lock);
		if (rc)
			return rc;
	}
	if (status)
		*status = ch->status;
	return 0;
}

/* Best effort: OpenSSH delivers "signal" requests to the session's command. */
int ssh_chan_kill(struct transport *t, struct ssh_chan *ch, int sig)
{
	struct ssh_conn *c = t->ssh;
	const char *name = sigabbrev_np(sig);
	int64_t dl = sync_mono_ms() + 5000;
	int rc;

	if (!name || ch->closed)
		return ch->closed ? -ESRCH : -EINVAL;
	pthread_mutex_lock(&c->lock);
	while ((rc = libssh2_channel_process_startup(ch->ch, "signal", 6, name,
			(unsigned)strlen(name))) == LIBSSH2_ERROR_EAGAIN)
		if (ch->sess->dead || eagain_wait(c, ch->sess, dl))
			break;
	pthread_mutex_unlock(&c->lock);
	return rc == 0 ? 0 : -ENOTSUP;
}

void ssh_chan_free(struct transport *t, struct ssh_chan *ch)
{
	struct ssh_conn *c = t->ssh;
	int64_t dl = sync_mono_ms() + 2000;

	if (!ch)
		return;
	pthread_mutex_lock(&c->lock);
	if (!ch->closed && !ch->sess->dead)
		while (libssh2_channel_close(ch->ch) == LIBSSH2_ERROR_EAGAIN)
			if (ch->sess->dead || eagain_wait(c, ch->sess, dl))
				break;
	while (ch->ch && libssh2_channel_free(ch->ch) == LIBSSH2_ERROR_EAGAIN)
		if (ch->sess->dead || eagain_wait(c, ch->sess, dl))
			break;	/* leaked with its session, which is dead */
	c->nchan--;
	ssh_sess_unref(c, ch->sess);
	pthread_mutex_unlock(&c->lock);
	free(ch);
}
