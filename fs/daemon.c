/*
 * daemon.c — the hermesfs daemon's control-plane services: the control
 * socket dispatcher and the commands that need only the store (sandbox,
 * log, umount). status, sync/pull/flush and exec live in daemon_sync.c and
 * daemon_exec.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/ctl_int.h"
#include "fs/daemon_int.h"
#include "fs/fs.h"
#include "store/store.h"
#include "sync/sync.h"

static int fail(struct ctl_req *req, int code, const char *fmt, const char *a,
		const char *b)
{
	dprintf(req->err, "hermes-fsctl: ");
	dprintf(req->err, fmt, a, b);
	dprintf(req->err, "\n");
	return code;
}

/* ---- sandbox add | rm | list ---------------------------------------- */

static int sandbox_add(struct daemon *d, struct ctl_req *req,
		       const char *name, const char *url)
{
	const char *why = NULL;
	int r;

	if (!config_sandbox_name_ok(name))
		return fail(req, CTL_EXIT_USAGE, "bad sandbox name '%s'%s: use"
		    " letters, digits, '.', '_' or '-'", name, "");
	if (transport_url_check(url, &why) < 0)
		return fail(req, CTL_EXIT_USAGE, "bad URL '%s': %s", url,
		    why ? why : "unsupported");
	r = daemon_sandbox_probe(d, name, url, req->err);
	if (r < 0)
		return CTL_EXIT_FAIL;
	r = store_sandbox_add(d->st, name, url, NULL);
	if (r == -EEXIST)
		return fail(req, CTL_EXIT_FAIL, "sandbox '%s' already exists%s"
		    " (remove it first with: hermes-fsctl sandbox rm NAME)",
		    name, "");
	if (r < 0)
		return fail(req, CTL_EXIT_FAIL, "cannot save sandbox '%s': %s",
		    name, strerror(-r));
	hlog(HLOG_INFO, "sandbox %s added (%s)", name, url);
	dprintf(req->out, "added sandbox %s (%s); pushing in the background\n",
	    name, url);
	daemon_engine_kick(d);
	return CTL_EXIT_OK;
}

static int sandbox_rm(struct daemon *d, struct ctl_req *req, const char *name)
{
	int r;

	daemon_engine_forget(d, name);
	r = store_sandbox_remove(d->st, name);
	if (r == -ENOENT)
		return fail(req, CTL_EXIT_NOENT, "unknown sandbox '%s'%s (see:"
		    " hermes-fsctl sandbox list)", name, "");
	if (r < 0)
		return fail(req, CTL_EXIT_FAIL, "cannot remove '%s': %s", name,
		    strerror(-r));
	hlog(HLOG_INFO, "sandbox %s removed", name);
	dprintf(req->out, "removed sandbox %s\n", name);
	return CTL_EXIT_OK;
}

static int sandbox_list(struct daemon *d, struct ctl_req *req, bool json)
{
	struct store_sandbox *l = NULL;
	size_t n = 0, i;
	int r;

	if ((r = store_sandbox_list(d->st, &l, &n)) < 0)
		return fail(req, CTL_EXIT_FAIL, "cannot list sandboxes: %s%s",
		    strerror(-r), "");
	if (json)
		dprintf(req->out, "[");
	for (i = 0; i < n; i++) {
		if (!json) {
			dprintf(req->out, "%s\t%s\n", l[i].name, l[i].url);
			continue;
		}
		dprintf(req->out, "%s{\"name\":", i ? "," : "");
		json_put_str(req->out, l[i].name);
		dprintf(req->out, ",\"url\":");
		json_put_str(req->out, l[i].url);
		dprintf(req->out, ",\"cursor\":%lld}", (long long)l[i].cursor);
	}
	if (json)
		dprintf(req->out, "]\n");
	store_sandbox_list_free(l, n);
	return CTL_EXIT_OK;
}

int daemon_cmd_sandbox(struct daemon *d, struct ctl_req *req)
{
	const char *sub = req->argv[1];

	if (strcmp(sub, "add") == 0)
		return sandbox_add(d, req, req->argv[2], req->argv[3]);
	if (strcmp(sub, "rm") == 0)
		return sandbox_rm(d, req, req->argv[2]);
	return sandbox_list(d, req, req->argc > 2);
}

/* ---- log ------------------------------------------------------------ */

struct log_ctx {
	int fd;
	bool json;
	int64_t n;
};

static int log_one(const struct store_entry *e, void *arg)
{
	struct log_ctx *c = arg;
	char when[32];

	fmt_time_ns(e->time_ns, when, sizeof(when));
	if (!c->json) {
		dprintf(c->fd, "%lld\t%s\t%-8s\t%s%s%s%s\n", (long long)e->seq,
		    when, store_op_name(e->op), e->path[0] ? e->path : ".",
		    e->path2 ? " -> " : "", e->path2 ? e->path2 : "",
		    e->origin ? " (from sandbox)" : "");
		return 0;
	}
	dprintf(c->fd, "%s{\"seq\":%lld,\"time\":\"%s\",\"op\":\"%s\",\"path\":",
	    c->n++ ? "," : "", (long long)e->seq, when, store_op_name(e->op));
	json_put_str(c->fd, e->path);
	if (e->path2) {
		dprintf(c->fd, ",\"path2\":");
		json_put_str(c->fd, e->path2);
	}
	dprintf(c->fd, ",\"mode\":%u,\"origin\":%lld}", e->mode,
	    (long long)e->origin);
	return 0;
}

int daemon_cmd_log(struct daemon *d, struct ctl_req *req)
{
	struct log_ctx c = { .fd = req->out };
	int64_t since = 0;
	int i, r;

	for (i = 1; i < req->argc; i++) {
		if (strcmp(req->argv[i], "--json") == 0)
			c.json = true;
		else if (strcmp(req->argv[i], "--since") == 0 && i + 1 < req->argc)
			since = strtoll(req->argv[++i], NULL, 10);
	}
	/* Show what is durable and queued alike: a log right after a write
	 * should list it. */
	fs_settle_open(d->fs);
	store_journal_flush(d->st);
	if (c.json)
		dprintf(req->out, "[");
	r = store_journal_foreach(d->st, since, 0, log_one, &c);
	if (c.json)
		dprintf(req->out, "]\n");
	if (r < 0)
		return fail(req, CTL_EXIT_FAIL, "cannot read the journal: %s%s",
		    strerror(-r), "");
	return CTL_EXIT_OK;
}

/* ---- dispatch -------------------------------------------------------- */

static int cmd_umount(struct daemon *d, struct ctl_req *req)
{
	hlog(HLOG_INFO, "unmount requested by pid %d", (int)req->pid);
	dprintf(req->out, "unmounting %s\n", d->mountpoint);
	d->request_stop(d);
	return CTL_EXIT_OK;
}

static int dispatch(struct ctl_req *req, void *arg)
{
	struct daemon *d = arg;
	const char *c = req->argc > 0 ? req->argv[0] : "";

	hlog(HLOG_DEBUG, "request '%s' from pid %d", c, (int)req->pid);

	if (strcmp(c, "status") == 0)
		return daemon_cmd_status(d, req);
	if (strcmp(c, "sandbox") == 0 && req->argc >= 2)
		return daemon_cmd_sandbox(d, req);
	if (strcmp(c, "log") == 0)
		return daemon_cmd_log(d, req);
	if (strcmp(c, "sync") == 0 || strcmp(c, "pull") == 0 ||
	    strcmp(c, "flush") == 0)
		return daemon_cmd_sync(d, req);
	if (strcmp(c, "exec") == 0)
		return daemon_cmd_exec(d, req);
	if (strcmp(c, "umount") == 0)
		return cmd_umount(d, req);
	/* The client validates arguments; this is a version mismatch. */
	return fail(req, CTL_EXIT_USAGE, "the daemon does not know '%s'%s;"
	    " is hermes-fsctl the same version as hermesfs?", c, "");
}

int daemon_services_start(struct daemon *d)
{
	char path[4096];
	int r;

	if ((r = daemon_engine_start(d)) < 0)
		return r;
	if ((r = daemon_exec_init(d)) < 0)
		return r;
	snprintf(path, sizeof(path), "%s/%s", d->state_dir, CTL_SOCK_NAME);
	if ((r = ctl_server_start(path, dispatch, d, &d->ctl)) < 0) {
		hlog(HLOG_ERR, "cannot listen on %s: %s", path, strerror(-r));
		return r;
	}
	return 0;
}

void daemon_services_stop(struct daemon *d)
{
	/* Requests first: a running flush finishes its transaction before
	 * ctl_server_stop returns, then nothing new can start. Commands run
	 * by exec are interrupted instead. */
	daemon_exec_interrupt(d);
	ctl_server_stop(d->ctl);
	d->ctl = NULL;
	daemon_exec_release(d);
	daemon_engine_stop(d);
}
