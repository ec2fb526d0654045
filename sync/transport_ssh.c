/*
 * transport_ssh.c — ssh:// connection: TCP connect, handshake, host key
 * verification against known_hosts, authentication, keepalive, reconnect.
 * Channels (one per command) are in transport_ssh_chan.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sync/transport_ssh_int.h"

static pthread_once_t ssh_once = PTHREAD_ONCE_INIT;
static int ssh_init_rc;

static void ssh_global_init(void)
{
	ssh_init_rc = libssh2_init(0);
}

int ssh_err(struct transport *t, struct ssh_sess *s, int rc, const char *what)
{
	char *msg = NULL;

	if (s && s->s)
		libssh2_session_last_error(s->s, &msg, NULL, 0);
	transport_set_error(t, "ssh: %s: %s", what, msg && *msg ? msg : "failed");
	switch (rc) {
	case LIBSSH2_ERROR_SOCKET_SEND:
	case LIBSSH2_ERROR_SOCKET_RECV:
	case LIBSSH2_ERROR_SOCKET_DISCONNECT:
	case LIBSSH2_ERROR_SOCKET_TIMEOUT:
	case LIBSSH2_ERROR_TIMEOUT:
	case LIBSSH2_ERROR_BAD_SOCKET:
	case LIBSSH2_ERROR_DECRYPT:
	case LIBSSH2_ERROR_BANNER_RECV:
		if (s)
			s->dead = true;
		return -ECONNRESET;
	default:
		return -EIO;
	}
}

int ssh_sess_wait(struct ssh_conn *c, struct ssh_sess *s, int dirs,
		  int timeout_ms)
{
	struct pollfd pf = { s->sock, 0, 0 };
	int r;

	if (dirs & LIBSSH2_SESSION_BLOCK_INBOUND)
		pf.events |= POLLIN;
	if (dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND)
		pf.events |= POLLOUT;
	if (!pf.events)
		pf.events = POLLIN;
	r = poll(&pf, 1, timeout_ms);
	if (r < 0 && errno != EINTR)
		return -errno;
	return 0;
}

static int tcp_connect(struct transport *t, struct ssh_conn *c)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL, *ai;
	char port[16];
	int fd = -1, rc, one = 1;

	snprintf(port, sizeof(port), "%d", c->port);
	rc = getaddrinfo(c->host, port, &hints, &res);
	if (rc) {
		transport_set_error(t, "ssh: cannot resolve %s: %s", c->host,
				    gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pf;
		int err = 0;
		socklen_t el = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC |
			    SOCK_NONBLOCK, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 &&
		    errno != EINPROGRESS)
			err = errno;
		pf = (struct pollfd){ fd, POLLOUT, 0 };
		if (!err && poll(&pf, 1, c->connect_timeout_ms) != 1)
			err = ETIMEDOUT;
		if (!err)
			getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		if (!err)
			break;
		errno = err;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		transport_set_error(t, "ssh: cannot connect to %s port %d: %s",
				    c->host, c->port, strerror(errno));
		return -errno ? -errno : -ECONNREFUSED;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	return fd;
}

static const char *kh_key_name(int typemask)
{
	switch (typemask & LIBSSH2_KNOWNHOST_KEY_MASK) {
	case LIBSSH2_KNOWNHOST_KEY_ED25519: return "ssh-ed25519";
	case LIBSSH2_KNOWNHOST_KEY_ECDSA_256: return "ecdsa-sha2-nistp256";
	case LIBSSH2_KNOWNHOST_KEY_ECDSA_384: return "ecdsa-sha2-nistp384";
	case LIBSSH2_KNOWNHOST_KEY_ECDSA_521: return "ecdsa-sha2-nistp521";
	case LIBSSH2_KNOWNHOST_KEY_SSHRSA: return "rsa-sha2-512,rsa-sha2-256,ssh-rsa";
	}
	return NULL;
}

static int hostkey_to_kh(int type)
{
	switch (type) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
	}
	return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
}

/* "[host]:port" as known_hosts spells non-default ports. */
static void kh_hostname(const struct ssh_conn *c, char *buf, size_t n)
{
	if (c->port == 22)
		snprintf(buf, n, "%s", c->host);
	else
		snprintf(buf, n, "[%s]:%d", c->host, c->port);
}

/* Prefer the host key types known_hosts already has for this host, as
 * OpenSSH does, so a multi-key server is matched on the recorded type. */
static void prefer_known_types(struct ssh_conn *c, LIBSSH2_SESSION *s,
			       LIBSSH2_KNOWNHOSTS *kh)
{
	struct libssh2_knownhost *e = NULL;
	char name[300], pref[512] = "";

	kh_hostname(c, name, sizeof(name));
	while (libssh2_knownhost_get(kh, &e, e) == 0) {
		const char *k = kh_key_name(e->typemask);

		if (!e->name || strcmp(e->name, name) || !k || strstr(pref, k))
			continue;
		if (strlen(pref) + strlen(k) + 2 < sizeof(pref)) {
			if (*pref)
				strcat(pref, ",");
			strcat(pref, k);
		}
	}
	if (*pref)
		libssh2_session_method_pref(s, LIBSSH2_METHOD_HOSTKEY, pref);
}

static void fingerprint(LIBSSH2_SESSION *s, char *out, size_t n)
{
	const unsigned char *h = (const unsigned char *)
		libssh2_hostkey_hash(s, LIBSSH2_HOSTKEY_HASH_SHA256);
	unsigned char b64[64];
	int len;

	if (!h) {
		snprintf(out, n, "?");
		return;
	}
	len = EVP_EncodeBlock(b64, h, 32);
	while (len > 0 && b64[len - 1] == '=')
		b64[--len] = '\0';
	snprintf(out, n, "SHA256:%s", b64);
}

static int kh_record(struct transport *t, struct ssh_conn *c,
		     LIBSSH2_KNOWNHOSTS *kh, const char *key, size_t len,
		     int typemask)
{
	struct libssh2_knownhost *e;
	char name[300], line[8192];
	size_t ll;
	int fd, rc = 0;

	kh_hostname(c, name, sizeof(name));
	if (libssh2_knownhost_addc(kh, name, NULL, key, len, NULL, 0,
				   typemask, &e) ||
	    libssh2_knownhost_writeline(kh, e, line, sizeof(line), &ll,
					LIBSSH2_KNOWNHOST_FILE_OPENSSH)) {
		transport_set_error(t, "ssh: cannot format known_hosts line");
		return -EIO;
	}
	fd = open(c->known_hosts, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, line, ll) != (ssize_t)ll) {
		rc = -errno;
		transport_set_error(t, "ssh: cannot record host key in %s: %s",
				    c->known_hosts, strerror(errno));
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

static int hostkey_verify(struct transport *t, struct ssh_conn *c,
			  LIBSSH2_SESSION *s, LIBSSH2_KNOWNHOSTS *kh)
{
	struct libssh2_knownhost *found = NULL;
	size_t len;
	int type, mask, r;
	const char *key = libssh2_session_hostkey(s, &len, &type);
	char fp[128];

	if (!key) {
		transport_set_error(t, "ssh: server sent no host key");
		return -EPROTO;
	}
	fingerprint(s, fp, sizeof(fp));
	mask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW |
	       hostkey_to_kh(type);
	r = libssh2_knownhost_checkp(kh, c->host, c->port, key, len, mask, &found);
	if (r == LIBSSH2_KNOWNHOST_CHECK_MATCH)
		return 0;
	if (r == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		transport_set_error(t, "ssh: host key for %s port %d has CHANGED "
				    "(now %s); refusing to connect: fix %s",
				    c->host, c->port, fp, c->known_hosts);
		return -EACCES;
	}
	if (r == LIBSSH2_KNOWNHOST_CHECK_NOTFOUND && c->accept_new)
		return kh_record(t, c, kh, key, len, mask);
	transport_set_error(t, "ssh: unknown host key for %s port %d (%s) "
			    "not in %s; refusing (add it there or enable accept-new)",
			    c->host, c->port, fp, c->known_hosts);
	return -EACCES;
}

static int auth_keyfile(struct ssh_conn *c, LIBSSH2_SESSION *s, const char *f)
{
	if (!f || access(f, R_OK) != 0)
		return -1;
	return libssh2_userauth_publickey_fromfile_ex(s, c->user,
		(unsigned)strlen(c->user), NULL, f, NULL) == 0 ? 0 : -1;
}

static int auth_agent(struct ssh_conn *c, LIBSSH2_SESSION *s)
{
	struct libssh2_agent_publickey *id = NULL;
	LIBSSH2_AGENT *a;
	int rc = -1;

	if (!getenv("SSH_AUTH_SOCK"))
		return -1;
	a = libssh2_agent_init(s);
	if (!a)
		return -1;
	if (libssh2_agent_connect(a) == 0 && libssh2_agent_list_identities(a) == 0) {
		while (rc && libssh2_agent_get_identity(a, &id, id) == 0)
			rc = libssh2_agent_userauth(a, c->user, id) == 0 ? 0 : -1;
		libssh2_agent_disconnect(a);
	}
	libssh2_agent_free(a);
	return rc;
}

static int authenticate(struct transport *t, struct ssh_conn *c,
			LIBSSH2_SESSION *s)
{
	static const char *const defaults[] = { "id_ed25519", "id_rsa", "id_ecdsa" };
	const char *home = getenv("HOME");
	char path[4096];
	size_t i;

	libssh2_userauth_list(s, c->user, (unsigned)strlen(c->user));
	if (libssh2_userauth_authenticated(s))
		return 0;
	if (auth_keyfile(c, s, c->key) == 0 || auth_agent(c, s) == 0)
		return 0;
	for (i = 0; home && i < sizeof(defaults) / sizeof(*defaults); i++) {
		snprintf(path, sizeof(path), "%s/.ssh/%s", home, defaults[i]);
		if (auth_keyfile(c, s, path) == 0)
			return 0;
	}
	transport_set_error(t, "ssh: authentication failed for %s@%s "
			    "(tried %s%sssh-agent and ~/.ssh/id_*)", c->user,
			    c->host, c->key ? c->key : "", c->key ? ", " : "");
	return -EACCES;
}

static int handshake(struct transport *t, struct ssh_conn *c, struct ssh_sess *ss)
{
	LIBSSH2_KNOWNHOSTS *kh = NULL;
	int rc;

	kh = libssh2_knownhost_init(ss->s);
	if (!kh)
		return -ENOMEM;
	libssh2_knownhost_readfile(kh, c->known_hosts,
				   LIBSSH2_KNOWNHOST_FILE_OPENSSH);
	prefer_known_types(c, ss->s, kh);
	libssh2_session_set_blocking(ss->s, 1);
	libssh2_session_set_timeout(ss->s, c->connect_timeout_ms);
	rc = libssh2_session_handshake(ss->s, ss->sock);
	if (rc) {
		rc = ssh_err(t, ss, rc, "handshake");
		goto out;
	}
	rc = hostkey_verify(t, c, ss->s, kh);
	if (!rc)
		rc = authenticate(t, c, ss->s);
	if (rc)
		goto out;
	libssh2_keepalive_config(ss->s, 1, (unsigned)c->keepalive_s);
	libssh2_session_set_timeout(ss->s, 0);
	libssh2_session_set_blocking(ss->s, 0);
out:
	libssh2_knownhost_free(kh);
	return rc;
}

static void sess_free(struct ssh_sess *s)
{
	if (!s)
		return;
	if (s->s) {
		if (!s->dead)
			libssh2_session_disconnect(s->s, "bye");
		libssh2_session_free(s->s);
	}
	if (s->sock >= 0)
		close(s->sock);
	free(s);
}

/* Called with c->lock held (or before the connection is shared). */
int ssh_sess_connect(struct transport *t, struct ssh_conn *c,
		     struct ssh_sess **out)
{
	struct ssh_sess *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	s->refs = 1;
	s->sock = tcp_connect(t, c);
	if (s->sock < 0) {
		rc = s->sock;
		s->sock = -1;
		goto out;
	}
	s->s = libssh2_session_init();
	if (!s->s) {
		rc = -ENOMEM;
		goto out;
	}
	rc = handshake(t, c, s);
	if (rc)
		goto out;
	*out = s;
	s = NULL;	/* transferred */
out:
	if (s)
		s->dead = true;
	sess_free(s);
	return rc;
}

void ssh_sess_unref(struct ssh_conn *c, struct ssh_sess *s)
{
	if (s && --s->refs == 0)
		sess_free(s);
}

/* With c->lock held. A half-sent keepalive is finished before returning:
 * libssh2 resumes a pending packet for whoever sends next. */
static void ka_send(struct ssh_conn *c, struct ssh_sess *s)
{
	int64_t dl = sync_mono_ms() + 10000;
	struct pollfd pf = { s->sock, POLLOUT, 0 };
	int next, rc;

	while ((rc = libssh2_keepalive_send(s->s, &next)) == LIBSSH2_ERROR_EAGAIN &&
	       (libssh2_session_block_directions(s->s) &
		LIBSSH2_SESSION_BLOCK_OUTBOUND) && sync_mono_ms() < dl)
		poll(&pf, 1, 100);
	if (rc < 0 && rc != LIBSSH2_ERROR_EAGAIN)
		s->dead = true;
	else if (rc == LIBSSH2_ERROR_EAGAIN && (libssh2_session_block_directions(s->s) &
		 LIBSSH2_SESSION_BLOCK_OUTBOUND))
		s->dead = true;
}

/* Keepalives keep NATs and idle-killing servers from dropping the one
 * connection between commands; a failure marks it dead for reconnect. */
static void *keepalive_main(void *arg)
{
	struct ssh_conn *c = arg;
	struct timespec ts;

	pthread_mutex_lock(&c->lock);
	while (!c->ka_stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += c->keepalive_s;
		pthread_cond_timedwait(&c->ka_cond, &c->lock, &ts);
		if (c->ka_stop || !c->cur || c->cur->dead)
			continue;
		ka_send(c, c->cur);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static char *env_or(const char *v, const char *env)
{
	const char *e = v ? v : getenv(env);

	return e && *e ? strdup(e) : NULL;
}

static int conn_setup(struct ssh_conn *c, const struct url_parts *u,
		      const struct transport_opts *o)
{
	const char *user = u->user ? u->user : getenv("USER");
	const char *home = getenv("HOME");
	const char *acc = getenv("HERMES_SSH_ACCEPT_NEW");
	char kh[4096];

	c->host = strdup(u->host);
	c->user = strdup(user ? user : "root");
	c->port = u->port;
	c->key = env_or(o->identity, "HERMES_SSH_KEY");
	c->known_hosts = env_or(o->known_hosts, "HERMES_SSH_KNOWN_HOSTS");
	if (!c->known_hosts) {
		snprintf(kh, sizeof(kh), "%s/.ssh/known_hosts", home ? home : "");
		c->known_hosts = strdup(kh);
	}
	c->accept_new = o->accept_new || (acc && !strcmp(acc, "1"));
	c->keepalive_s = o->keepalive_s > 0 ? o->keepalive_s : 15;
	c->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
	return c->host && c->user && c->known_hosts ? 0 : -ENOMEM;
}

int ssh_conn_open(struct transport *t, const struct url_parts *u,
		  const struct transport_opts *opts)
{
	struct ssh_conn *c;
	int rc;

	pthread_once(&ssh_once, ssh_global_init);
	if (ssh_init_rc) {
		transport_set_error(t, "ssh: libssh2_init failed");
		return -EIO;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->ka_cond, NULL);
	t->ssh = c;	/* freed by transport_close on failure */
	rc = conn_setup(c, u, opts);
	if (!rc)
		rc = ssh_sess_connect(t, c, &c->cur);
	if (!rc && pthread_create(&c->ka_thread, NULL, keepalive_main, c) == 0)
		c->ka_running = true;
	return rc;
}

void ssh_conn_close(struct ssh_conn *c)
{
	if (!c)
		return;
	if (c->ka_running) {
		pthread_mutex_lock(&c->lock);
		c->ka_stop = true;
		pthread_cond_signal(&c->ka_cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->ka_thread, NULL);
	}
	ssh_sess_unref(c, c->cur);
	pthread_cond_destroy(&c->ka_cond);
	pthread_mutex_destroy(&c->lock);
	free(c->host);
	free(c->user);
	free(c->key);
	free(c->known_hosts);
	free(c);
}
