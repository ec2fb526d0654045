/*
 * transport_ssh_int.h — private to the ssh transport files.
 *
 * Locking: conn->lock guards every libssh2 call on any session of the
 * connection and every field marked below. It is never held while waiting
 * on the socket, so several channels (commands) can progress at once.
 */
#ifndef HERMES_TRANSPORT_SSH_INT_H
#define HERMES_TRANSPORT_SSH_INT_H

#include <libssh2.h>

#include "sync/transport_int.h"

/* One TCP connection + SSH session. Refcounted: channels keep the session
 * they were opened on alive across a reconnect. */
struct ssh_sess {
	LIBSSH2_SESSION *s;	/* conn->lock */
	int sock;
	int refs;		/* conn->lock */
	bool dead;		/* conn->lock: socket error seen */
};

struct ssh_conn {
	pthread_mutex_t lock;
	struct ssh_sess *cur;	/* lock; NULL until (re)connected */
	int nchan;		/* lock: channels open */
	char *host, *user, *key, *known_hosts;
	int port;
	bool accept_new;
	int keepalive_s, connect_timeout_ms;
	pthread_t ka_thread;
	bool ka_running;
	bool ka_stop;		/* lock */
	pthread_cond_t ka_cond;	/* with lock */
};

struct ssh_chan {
	struct ssh_sess *sess;
	LIBSSH2_CHANNEL *ch;	/* conn->lock */
	bool out_eof, err_eof, eof_sent, closed;
	int status;
};

/* transport_ssh.c */
int ssh_sess_connect(struct transport *t, struct ssh_conn *c,
		     struct ssh_sess **out);
void ssh_sess_unref(struct ssh_conn *c, struct ssh_sess *s); /* lock held */
/* Wait (lock NOT held) until the session's socket may make progress. */
int ssh_sess_wait(struct ssh_conn *c, struct ssh_sess *s, int dirs,
		  int timeout_ms);
/* Map a libssh2 error to -errno, marking the session dead on socket errors. */
int ssh_err(struct transport *t, struct ssh_sess *s, int rc, const char *what);

#endif /* HERMES_TRANSPORT_SSH_INT_H */
