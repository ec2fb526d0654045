/*
 * ctl.c — the control socket: server (in the daemon) and client
 * (hermes-fsctl). See ctl_int.h for the protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fs/ctl_int.h"

struct ctl_server {
	int lfd;
	int wake[2];		/* wakes the acceptor to stop */
	char *path;
	ctl_handler_fn fn;
	void *arg;
	pthread_t acceptor;
	pthread_mutex_t lock;	/* guards active, stopping */
	pthread_cond_t idle;
	int active;
	bool stopping;
};

struct ctl_conn {
	struct ctl_server *srv;
	int sock;
	int done[2];		/* ends the watcher when the request ends */
	pthread_mutex_t lock;	/* guards req.on_cancel* */
	struct ctl_req req;
};

static int write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t n)
{
	char *p = buf;
	ssize_t r;

	while (n > 0) {
		r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EPIPE;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

static int sockaddr_fill(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* ---- server ----------------------------------------------------------- */

void ctl_req_on_cancel(struct ctl_req *req, void (*fn)(void *), void *arg)
{
	struct ctl_conn *c = req->conn;
	bool now;

	pthread_mutex_lock(&c->lock);
	req->on_cancel = fn;
	req->on_cancel_arg = arg;
	now = fn && __atomic_load_n(&req->cancelled, __ATOMIC_ACQUIRE);
	pthread_mutex_unlock(&c->lock);
	if (now)
		fn(arg);
}

bool ctl_req_cancelled(const struct ctl_req *req)
{
	return __atomic_load_n(&req->cancelled, __ATOMIC_ACQUIRE) != 0;
}

static void *watcher_main(void *arg)
{
	struct ctl_conn *c = arg;
	struct pollfd p[2] = { { c->sock, POLLIN, 0 }, { c->done[0], POLLIN, 0 } };
	char b;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (p[1].revents)
			return NULL;
		/* A cancel byte, EOF or a reset all mean: stop this request. */
		if (p[0].revents && (read(c->sock, &b, 1) <= 0 || b == CTL_CANCEL))
			break;
	}
	pthread_mutex_lock(&c->lock);
	__atomic_store_n(&c->req.cancelled, 1, __ATOMIC_RELEASE);
	if (c->req.on_cancel)
		c->req.on_cancel(c->req.on_cancel_arg);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static int recv_hdr(int sock, struct ctl_hdr *h, int fds[3])
{
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { h, sizeof(*h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	ssize_t n;

	n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	if (n != (ssize_t)sizeof(*h) || h->magic != CTL_MAGIC)
		return -EPROTO;
	cm = CMSG_FIRSTHDR(&m);
	if (cm == NULL || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(3 * sizeof(int)))
		return -EPROTO;
	memcpy(fds, CMSG_DATA(cm), 3 * sizeof(int));
	return 0;
}

/* Split the NUL-separated payload into argv (pointers into buf). */
static int parse_argv(char *buf, uint32_t len, uint32_t argc, char ***out)
{
	char **argv, *p = buf, *end = buf + len;
	uint32_t i;

	if (argc == 0 || argc > 65536 || len == 0 || buf[len - 1] != '\0')
		return -EPROTO;
	if ((argv = calloc(argc + 1, sizeof(*argv))) == NULL)
		return -ENOMEM;
	for (i = 0; i < argc; i++) {
		if (p >= end) {
			free(argv);
			return -EPROTO;
		}
		argv[i] = p;
		p += strlen(p) + 1;
	}
	*out = argv;
	return 0;
}

static void conn_serve(struct ctl_conn *c)
{
	struct ctl_hdr h;
	char *payload = NULL, rep[5];
	int fds[3] = { -1, -1, -1 }, status, i;
	pthread_t w;
	bool watching = false;

	if (recv_hdr(c->sock, &h, fds) < 0 || h.len > CTL_MAX_PAYLOAD)
		goto out;
	if ((payload = malloc(h.len + 1)) == NULL ||
	    read_all(c->sock, payload, h.len) < 0)
		goto out;
	if (parse_argv(payload, h.len, h.argc, &c->req.argv) < 0)
		goto out;
	c->req.argc = (int)h.argc;
	c->req.in = fds[0];
	c->req.out = fds[1];
	c->req.err = fds[2];
	if (pipe2(c->done, O_CLOEXEC) == 0 &&
	    pthread_create(&w, NULL, watcher_main, c) == 0)
		watching = true;
	status = c->srv->fn(&c->req, c->srv->arg);
	rep[0] = CTL_EXIT;
	memcpy(rep + 1, &(int32_t){ status }, 4);
	write_all(c->sock, rep, sizeof(rep));
	if (watching) {
		write_all(c->done[1], "", 1);
		pthread_join(w, NULL);
	}
 out:
	for (i = 0; i < 3; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (c->done[0] >= 0) {
		close(c->done[0]);
		close(c->done[1]);
	}
	free(c->req.argv);
	free(payload);
}

static void *conn_main(void *arg)
{
	struct ctl_conn *c = arg;
	struct ctl_server *srv = c->srv;

	conn_serve(c);
	close(c->sock);
	pthread_mutex_destroy(&c->lock);
	free(c);
	pthread_mutex_lock(&srv->lock);
	if (--srv->active == 0)
		pthread_cond_broadcast(&srv->idle);
	pthread_mutex_unlock(&srv->lock);
	return NULL;
}

static bool peer_allowed(int sock, struct ucred *cr)
{
	socklen_t len = sizeof(*cr);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, cr, &len) < 0)
		return false;
	return cr->uid == geteuid();
}

static void conn_start(struct ctl_server *srv, int sock)
{
	struct ctl_conn *c;
	struct ucred cr;
	pthread_attr_t at;
	pthread_t t;
	char rep[5] = { CTL_DENIED };

	if (!peer_allowed(sock, &cr)) {
		memcpy(rep + 1, &(int32_t){ CTL_EXIT_DENIED }, 4);
		write_all(sock, rep, sizeof(rep));
		close(sock);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(sock);
		return;
	}
	c->srv = srv;
	c->sock = sock;
	c->done[0] = c->done[1] = -1;
	c->req.conn = c;
	c->req.uid = cr.uid;
	c->req.pid = cr.pid;
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_lock(&srv->lock);
	srv->active++;
	pthread_mutex_unlock(&srv->lock);
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &at, conn_main, c) != 0)
		conn_main(c);	/* serve inline rather than drop it */
	pthread_attr_destroy(&at);
}

static void *acceptor_main(void *arg)
{
	struct ctl_server *srv = arg;
	struct pollfd p[2] = { { srv->lfd, POLLIN, 0 }, { srv->wake[0], POLLIN, 0 } };
	int s;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		s = accept4(srv->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (s >= 0)
			conn_start(srv, s);
	}
	return NULL;
}

static int listen_on(const char *path, int *out)
{
	struct sockaddr_un sa;
	mode_t old;
	int fd, r;

	if ((r = sockaddr_fill(&sa, path)) < 0)
		return r;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	unlink(path);	/* a stale socket from a crashed daemon */
	old = umask(0177);	/* born 0600: no window where others connect */
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || listen(fd, 64) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	*out = fd;
	return 0;
}

int ctl_server_start(const char *path, ctl_handler_fn fn, void *arg,
		     struct ctl_server **out)
{
	struct ctl_server *srv;
	int r;

	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return -ENOMEM;
	srv->lfd = srv->wake[0] = srv->wake[1] = -1;
	srv->fn = fn;
	srv->arg = arg;
	pthread_mutex_init(&srv->lock, NULL);
	pthread_cond_init(&srv->idle, NULL);
	if ((srv->path = strdup(path)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = listen_on(path, &srv->lfd)) < 0)
		goto out;
	if (pipe2(srv->wake, O_CLOEXEC) < 0 ||
	    pthread_create(&srv->acceptor, NULL, acceptor_main, srv) != 0) {
		r = -errno ? -errno : -EAGAIN;
		goto out;
	}
	*out = srv;
	srv = NULL; /* transferred */
 out:
	if (srv) {
		if (srv->lfd >= 0) {
			close(srv->lfd);
			unlink(path);
		}
		if (srv->wake[0] >= 0) {
			close(srv->wake[0]);
			close(srv->wake[1]);
		}
		free(srv->path);
		free(srv);
	}
	return r;
}

void ctl_server_stop(struct ctl_server *srv)
{
	if (srv == NULL)
		return;
	write_all(srv->wake[1], "", 1);
	pthread_join(srv->acceptor, NULL);
	close(srv->lfd);
	unlink(srv->path);
	pthread_mutex_lock(&srv->lock);
	srv->stopping = true;
	while (srv->active > 0)
		pthread_cond_wait(&srv->idle, &srv->lock);
	pthread_mutex_unlock(&srv->lock);
	close(srv->wake[0]);
	close(srv->wake[1]);
	pthread_cond_destroy(&srv->idle);
	pthread_mutex_destroy(&srv->lock);
	free(srv->path);
	free(srv);
}

/* ---- client ----------------------------------------------------------- */

static volatile sig_atomic_t client_sock = -1;

static void client_sigint(int sig)
{
	char b = CTL_CANCEL;

	(void)sig;
	if (client_sock >= 0 && write(client_sock, &b, 1) < 0) {
		/* nothing to do: the daemon sees EOF when we exit */
	}
}

static int send_request(int sock, int argc, char **argv)
{
	union {
		char buf[CMSG_SPACE(3 * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct ctl_hdr h = { CTL_MAGIC, (uint32_t)argc, 0 };
	struct iovec iov = { &h, sizeof(h) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
	    .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *cm;
	int fds[3] = { 0, 1, 2 }, i, r;
	size_t len = 0, off = 0;
	char *payload;

	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	if (len > CTL_MAX_PAYLOAD)
		return -E2BIG;
	if ((payload = malloc(len ? len : 1)) == NULL)
		return -ENOMEM;
	for (i = 0; i < argc; i++) {
		memcpy(payload + off, argv[i], strlen(argv[i]) + 1);
		off += strlen(argv[i]) + 1;
	}
	h.len = (uint32_t)len;
	memset(&u, 0, sizeof(u));
	cm = CMSG_FIRSTHDR(&m);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(cm), fds, sizeof(fds));
	r = sendmsg(sock, &m, MSG_NOSIGNAL) == (ssize_t)sizeof(h) ? 0 : -errno;
	if (r == 0)
		r = write_all(sock, payload, len);
	free(payload);
	return r;
}

int ctl_client_call(const char *sock_path, int argc, char **argv)
{
	struct sockaddr_un sa;
	struct sigaction act = { .sa_handler = client_sigint };
	char rep[5];
	int32_t status;
	int sock, r;

	if ((r = sockaddr_fill(&sa, sock_path)) < 0)
		return r;
	if ((sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		goto out;
	}
	signal(SIGPIPE, SIG_IGN);
	if ((r = send_request(sock, argc, argv)) < 0) {
		/* A refused peer gets its verdict before we finish sending. */
		if (read_all(sock, rep, sizeof(rep)) == 0 && rep[0] == CTL_DENIED)
			r = -EACCES;
		goto out;
	}
	client_sock = sock;
	sigemptyset(&act.sa_mask);
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGTERM, &act, NULL);
	r = read_all(sock, rep, sizeof(rep));
	client_sock = -1;
	if (r == 0 && rep[0] == CTL_DENIED)
		r = -EACCES;
	else if (r == 0 && rep[0] != CTL_EXIT)
		r = -EPROTO;
	if (r == 0) {
		memcpy(&status, rep + 1, 4);
		r = status;
	}
 out:
	close(sock);
	return r;
}
