/*
 * ctl_int.h — private to fs/: the control socket shared by the hermesfs
 * daemon and hermes-fsctl, and the daemon's configuration.
 *
 * Protocol (one request per connection, AF_UNIX stream):
 *   client -> server: struct ctl_hdr with SCM_RIGHTS carrying the client's
 *                     stdin, stdout and stderr, then hdr.len bytes of argv
 *                     (NUL-terminated strings);
 *   client -> server: at any time, CTL_CANCEL (one byte) on SIGINT; closing
 *                     the socket counts as a cancel too;
 *   server -> client: CTL_EXIT followed by a 4-byte exit status, then EOF
 *                     (CTL_DENIED instead when the peer's uid is refused).
 * The daemon writes output straight to the passed descriptors, so a
 * progress bar can tell whether the user's terminal is a tty.
 */
#ifndef HERMES_FS_CTL_INT_H
#define HERMES_FS_CTL_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_MAGIC 0x68666331u	/* "hfc1" */
#define CTL_CANCEL 'C'
#define CTL_EXIT 'X'
#define CTL_DENIED 'D'	/* peer refused; never confused with an exit status */
#define CTL_MAX_PAYLOAD (16u << 20)
#define CTL_SOCK_NAME "ctl.sock"
/* In the state directory, flock'ed by the daemon for its whole life. */
#define CTL_LOCK_NAME "lock"
/* The daemon's log when daemonized on a machine without syslog. */
#define LOG_FILE_NAME "daemon.log"

/* Exit statuses shared by both programs (documented in the man pages). */
enum {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAIL = 1,	/* the operation failed (see stderr) */
	CTL_EXIT_USAGE = 2,	/* bad arguments */
	CTL_EXIT_NOMOUNT = 3,	/* no hermesfs mount / daemon not reachable */
	CTL_EXIT_NOENT = 4,	/* unknown sandbox */
	CTL_EXIT_CONFLICT = 5,	/* flush/pull finished but left conflicts */
	CTL_EXIT_DENIED = 6,	/* the socket belongs to another user */
};

struct ctl_hdr {
	uint32_t magic;
	uint32_t argc;
	uint32_t len;
};

/* One request on the server side. */
struct ctl_req {
	int argc;
	char **argv;
	int in, out, err;	/* the client's stdin, stdout, stderr */
	uid_t uid;
	pid_t pid;
	/* Set once the client cancelled or went away (atomic). */
	int cancelled;
	void (*on_cancel)(void *arg);	/* req lock; called once */
	void *on_cancel_arg;
	struct ctl_conn *conn;
};

/* Register fn to run (on another thread) when the client cancels; if it
 * already did, fn runs at once. NULL fn unregisters. */
void ctl_req_on_cancel(struct ctl_req *req, void (*fn)(void *), void *arg);
bool ctl_req_cancelled(const struct ctl_req *req);

typedef int (*ctl_handler_fn)(struct ctl_req *req, void *arg);
struct ctl_server;

/* Listen on `path` (mode 0600; its directory should be 0700). Each request
 * runs on its own thread, so a long flush does not block status. Peers
 * whose uid differs from ours are refused. */
int ctl_server_start(const char *path, ctl_handler_fn fn, void *arg,
		     struct ctl_server **out);
/* Stop accepting, wait for running requests, remove the socket. NULL ok. */
void ctl_server_stop(struct ctl_server *srv);

/* Client: send argv with our stdio, forward SIGINT as a cancel, return the
 * server's exit status, -EACCES if refused, or -errno if unreachable. */
int ctl_client_call(const char *sock_path, int argc, char **argv);

/* ---- mounts: finding the daemon of a mountpoint ------------------------ */

/* The FUSE fsname the daemon mounts with: "hermesfs:<state dir>". */
#define CTL_FSNAME_PREFIX "hermesfs:"

/* Find the hermesfs mount containing `path` (the deepest one) in
 * /proc/self/mountinfo: *mountpoint and *state_dir are malloc'd. */
int ctl_mount_find(const char *path, char **mountpoint, char **state_dir);

/* ---- configuration: ~/.config/hermesfs/config (ini) -------------------- */

/*
 *   # comment
 *   [defaults]                 keys here apply to every sandbox
 *   retry = 2,4,8              push/pull retry delays, seconds
 *   conflict = conflict-copy   or host-wins, remote-wins
 *   max-total-bytes = 4G       pull caps (K, M, G suffixes)
 *   max-files = 200000
 *   max-file-size = 1G
 *   parallel = 4               sandboxes pushed at once
 *   auto-push = yes            push in the background as the journal grows
 *   accept-new-host-keys = no  record unknown SSH host keys (yes/no)
 *   identity = ~/.ssh/id_ed25519
 *   known-hosts = ~/.ssh/known_hosts
 *   ignore = *.sock            gitignore syntax; repeatable
 *   shutdown-grace = 60        SIGTERM: seconds a push in progress may take
 *   [sandbox NAME]             overrides for one sandbox (ignore adds)
 */
struct config;

/* Missing file = empty config. On a syntax error or unknown key: -EINVAL
 * with "PATH:LINE: reason" in err. */
int config_load(const char *path, struct config **out, char *err, size_t errlen);
void config_free(struct config *c);
/* Default path: $XDG_CONFIG_HOME/hermesfs/config or ~/.config/...; malloc'd. */
char *config_default_path(void);
/* The value for key: a command-line override (config_override), else
 * [sandbox NAME] (if sandbox given), else [defaults], else NULL. Values of
 * identity and known-hosts have a leading "~/" expanded to $HOME. */
const char *config_get(const struct config *c, const char *sandbox,
		       const char *key);
/* Set a value as if read from the file; sandbox NULL = defaults. -EINVAL
 * for an unknown key. */
int config_set(struct config *c, const char *sandbox, const char *key,
	       const char *value);
/* A command-line setting (hermesfs -o KEY=VALUE): beats the file's value
 * in every section; `ignore` patterns add to every sandbox's. */
int config_override(struct config *c, const char *key, const char *value);
/* A usable sandbox name (also a [sandbox NAME] section): not empty, no
 * leading '-', no '/', blanks, '=' or ']'. */
bool config_sandbox_name_ok(const char *name);
/* Parse helpers: -EINVAL on a malformed value. */
int config_parse_size(const char *s, int64_t *out);
/* NULL when value is valid for key, else what is expected ("yes or no"). */
const char *config_value_check(const char *key, const char *value);
int config_parse_bool(const char *s, bool *out);
/* "2,4,8" -> {2000,4000,8000}; at most max entries. */
int config_parse_retry(const char *s, int *ms, int max, int *n);

/* Ignore patterns (gitignore syntax: *, ?, [..], **, leading / anchors,
 * trailing / matches directories only, ! re-includes). */
struct ignore;
/* All `ignore` values of [defaults] plus those of [sandbox NAME]. */
int ignore_from_config(const struct config *c, const char *sandbox,
		       struct ignore **out);
int ignore_add(struct ignore *ig, const char *pattern);
void ignore_free(struct ignore *ig);
/* Is relpath (no leading '/') or any of its parent directories ignored? */
bool ignore_match(const struct ignore *ig, const char *relpath, bool is_dir);

#endif
