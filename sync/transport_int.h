/*
 * transport_int.h — private to sync/: the transport object and the
 * per-kind operations behind the public API in sync.h.
 */
#ifndef HERMES_TRANSPORT_INT_H
#define HERMES_TRANSPORT_INT_H

#include <pthread.h>

#include "sync/sync.h"

enum transport_kind_id { TK_LOCAL = 1, TK_CMD, TK_SSH };

struct ssh_conn;

struct transport {
	enum transport_kind_id kind;
	char *url;
	char *root;		/* absolute, no trailing '/' unless "/" */
	char **prefix;		/* cmd: argv prefix, NULL-terminated */
	struct ssh_conn *ssh;	/* ssh: connection state */
	pthread_mutex_t err_lock;
	char err[512];		/* guarded by err_lock */
};

/* A child process (local, cmd). */
struct proc_child {
	pid_t pid;
	int in_fd, out_fd, err_fd;	/* -1 once closed */
	bool reaped;
	int status;
};

struct ssh_chan;

struct transport_proc {
	struct transport *t;
	struct proc_child child;	/* local, cmd */
	struct ssh_chan *chan;		/* ssh */
};

/* Parsed URL pieces (all malloc'd; free with url_parts_release). */
struct url_parts {
	enum transport_kind_id kind;
	char *user, *host, *root, *cmd;
	int port;
};
int url_parts_parse(const char *url, struct url_parts *p, const char **why);
void url_parts_release(struct url_parts *p);

void transport_set_error(struct transport *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Split a command prefix like sh would (quotes, backslashes; no
 * expansions). NULL-terminated malloc'd vector; free with argv_free. */
int sync_split_words(const char *s, char ***out);
void argv_free(char **v);

/* Child processes (transport_child.c). */
int child_spawn(struct transport *t, char *const argv[], const char *cwd,
		struct proc_child *c);
int child_write(struct transport *t, struct proc_child *c,
		const void *buf, size_t n);
ssize_t child_read(struct proc_child *c, void *buf, size_t n, int *stream,
		   int timeout_ms);
int child_wait(struct proc_child *c, int *status);
int child_kill(struct proc_child *c, int sig);
void child_release(struct proc_child *c);

/* SSH (transport_ssh.c). */
int ssh_conn_open(struct transport *t, const struct url_parts *u,
		  const struct transport_opts *opts);
void ssh_conn_close(struct ssh_conn *c);
int ssh_chan_spawn(struct transport *t, const char *script,
		   struct ssh_chan **out);
int ssh_chan_write(struct transport *t, struct ssh_chan *ch,
		   const void *buf, size_t n);
int ssh_chan_close_stdin(struct transport *t, struct ssh_chan *ch);
ssize_t ssh_chan_read(struct transport *t, struct ssh_chan *ch, void *buf,
		      size_t n, int *stream, int timeout_ms);
int ssh_chan_wait(struct transport *t, struct ssh_chan *ch, int *status);
int ssh_chan_kill(struct transport *t, struct ssh_chan *ch, int sig);
void ssh_chan_free(struct transport *t, struct ssh_chan *ch);

int64_t sync_mono_ms(void);

#endif /* HERMES_TRANSPORT_INT_H */
