/*
 * daemon_sync.c — the daemon's use of the sync engine (sync/sync.h): the
 * engine's settings from the config file (per sandbox: retry schedule,
 * ignore patterns for push and pull, conflict policy, caps, auto-push, SSH
 * options), the connection check of `sandbox add`, and the pre-exec push.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/ctl_int.h"
#include "fs/daemon_int.h"
#include "fs/fs.h"
#include "store/store.h"
#include "sync/sync.h"

#define RETRY_MAX 8

/* What the config says for one sandbox, kept for the engine's lifetime:
 * the engine borrows the ignore rules and the retry list. */
struct sb_settings {
	struct sb_settings *next;
	char *name;
	struct ignore *ignore;
	int retry_ms[RETRY_MAX];
	int nretry;
	bool auto_push;
};

static void settings_free(struct sb_settings *s)
{
	if (!s)
		return;
	ignore_free(s->ignore);
	free(s->name);
	free(s);
}

static struct sb_settings *settings_load(struct daemon *d, const char *name)
{
	struct sb_settings *s = calloc(1, sizeof(*s));
	const char *v;

	if (!s || !(s->name = strdup(name)) ||
	    ignore_from_config(d->cfg, name, &s->ignore) < 0) {
		settings_free(s);
		return NULL;
	}
	if ((v = config_get(d->cfg, name, "retry")) &&
	    config_parse_retry(v, s->retry_ms, RETRY_MAX, &s->nretry) < 0)
		s->nretry = 0;
	s->auto_push = true;
	if ((v = config_get(d->cfg, name, "auto-push")))
		config_parse_bool(v, &s->auto_push);
	return s;
}

/* Settings of sandbox `name`, read from the config on first use. */
static struct sb_settings *settings_get(struct daemon *d, const char *name)
{
	struct sb_settings *s;

	pthread_mutex_lock(&d->settings_lock);
	for (s = d->settings; s; s = s->next)
		if (strcmp(s->name, name) == 0)
			break;
	if (!s && (s = settings_load(d, name))) {
		s->next = d->settings;
		d->settings = s;
	}
	pthread_mutex_unlock(&d->settings_lock);
	return s;
}

static bool push_ignore(const char *relpath, bool is_dir, void *arg)
{
	return ignore_match(arg, relpath, is_dir);
}

static void configure(const char *name, struct sync_push_config *push,
		      struct sync_pull_config *pull, void *arg)
{
	struct daemon *d = arg;
	struct sb_settings *s = settings_get(d, name);
	const char *v;

	if (s) {
		push->ignore = push_ignore;
		push->ignore_arg = s->ignore;
		pull->ignore = push_ignore;
		pull->ignore_arg = s->ignore;
		if (s->nretry > 0) {
			push->backoff_list = s->retry_ms;
			push->backoff_count = (size_t)s->nretry;
			push->retries = s->nretry;
			pull->retries = s->nretry;
			pull->backoff_list = s->retry_ms;
			pull->backoff_count = (size_t)s->nretry;
		}
	}
	if ((v = config_get(d->cfg, name, "conflict")))
		sync_conflict_policy_parse(v, &pull->policy);
	if ((v = config_get(d->cfg, name, "max-total-bytes")))
		config_parse_size(v, &pull->max_total_bytes);
	if ((v = config_get(d->cfg, name, "max-files")))
		config_parse_size(v, &pull->max_files);
	if ((v = config_get(d->cfg, name, "max-file-size")))
		config_parse_size(v, &pull->max_file_size);
}

static void configure_transport(const char *name, struct transport_opts *o,
				void *arg)
{
	daemon_transport_opts(arg, name, o);
}

static bool follow(const char *name, void *arg)
{
	struct sb_settings *s = settings_get(arg, name);

	return !s || s->auto_push;
}

static void pull_invalidate(const char *relpath, void *arg)
{
	fs_invalidate(arg, relpath);
}

static void on_done(const char *name, bool is_pull, int rc, const char *error,
		    void *arg)
{
	if (rc < 0 && rc != -EINTR)
		hlog(HLOG_WARN, "%s %s failed: %s", is_pull ? "pull from" :
		    "push to", name, error && error[0] ? error : strerror(-rc));
	else if (rc == 0 && !is_pull && error && error[0])
		hlog(HLOG_WARN, "push to %s: %s", name, error);
	else
		hlog(HLOG_DEBUG, "%s %s %s", is_pull ? "pull from" : "push to",
		    name, rc == 0 ? "done" : "cancelled");
}

void daemon_transport_opts(struct daemon *d, const char *name,
			   struct transport_opts *o)
{
	const char *v;
	bool yes = false;

	memset(o, 0, sizeof(*o));
	o->identity = config_get(d->cfg, name, "identity");
	o->known_hosts = config_get(d->cfg, name, "known-hosts");
	if ((v = config_get(d->cfg, name, "accept-new-host-keys")) &&
	    config_parse_bool(v, &yes) == 0)
		o->accept_new = yes;
}

int daemon_engine_start(struct daemon *d)
{
	struct sync_engine_config ec = {
		.configure = configure, .configure_arg = d,
		.configure_transport = configure_transport,
		.follow = follow, .follow_arg = d,
		.on_done = on_done, .on_done_arg = d,
	};
	const char *v;
	int64_t par = 4;
	int r;

	pthread_mutex_init(&d->settings_lock, NULL);
	if ((v = config_get(d->cfg, NULL, "parallel")) &&
	    config_parse_size(v, &par) == 0 && par > 0 && par <= 64)
		ec.pool_size = (int)par;
	daemon_transport_opts(d, NULL, &ec.topts);
	ec.pull.invalidate = pull_invalidate;
	ec.pull.invalidate_arg = d->fs;
	if ((r = sync_engine_new(d->st, d->root_fd, &ec, &d->eng)) < 0)
		return r;
	return sync_engine_start_background(d->eng);
}

void daemon_engine_stop(struct daemon *d)
{
	struct sb_settings *s, *next;
	const char *v = d->cfg ? config_get(d->cfg, NULL, "shutdown-grace") : NULL;
	int64_t grace = 60;

	if (v && (config_parse_size(v, &grace) < 0 || grace > 86400))
		grace = 60;	/* checked at load; belt and braces */
	if (d->eng && sync_engine_busy(d->eng))
		hlog(HLOG_INFO, "finishing the push in progress before exiting (at"
		    " most %lld s; send SIGTERM again to stop at once)",
		    (long long)grace);
	if (d->eng && sync_engine_drain(d->eng, (int)grace * 1000) < 0)
		hlog(HLOG_WARN, "the push in progress took longer than %lld s"
		    " (shutdown-grace): cancelled, nothing half-applied; it"
		    " resumes on the next mount", (long long)grace);
	sync_engine_free(d->eng);
	d->eng = NULL;
	for (s = d->settings; s; s = next) {
		next = s->next;
		settings_free(s);
	}
	d->settings = NULL;
	pthread_mutex_destroy(&d->settings_lock);
}

void daemon_engine_kick(struct daemon *d)
{
	sync_engine_kick(d->eng);
}

void daemon_engine_forget(struct daemon *d, const char *name)
{
	/* The engine re-reads the store on every call; only exec keeps a
	 * connection of its own. */
	daemon_exec_forget(d, name);
}

int daemon_engine_push_if_needed(struct daemon *d, const char *name)
{
	/* A file written and closed just before the command is in the push
	 * (its RELEASE may not have arrived yet). */
	fs_settle_open(d->fs);
	return sync_engine_push_if_needed(d->eng, name);
}

int daemon_sandbox_probe(struct daemon *d, const char *name, const char *url,
			 int errfd)
{
	struct transport_opts o;
	struct transport *t = NULL;
	char *out = NULL;
	size_t outlen = 0;
	int r, status = -1;

	daemon_transport_opts(d, name, &o);
	if ((r = transport_open(url, &o, &t)) < 0) {
		dprintf(errfd, "hermes-fsctl: cannot connect to %s: %s\n", url,
		    transport_open_error());
		return r;
	}
	r = transport_run(t, "command -v tar >/dev/null && command -v sh >/dev/null",
	    NULL, 0, &out, &outlen, &status);
	if (r == 0 && status != 0)
		r = -ENOEXEC;
	if (r < 0)
		dprintf(errfd, "hermes-fsctl: %s answered but cannot run sh and"
		    " tar there (%s)\n", url, r == -ENOEXEC ? "tar missing" :
		    transport_error(t));
	free(out);
	transport_close(t);
	return r;
}
