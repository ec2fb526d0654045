/*
 * hermesfs — mount BACKING (at MOUNTPOINT, default BACKING itself) as a
 * journaled passthrough overlay and serve it until unmounted.
 *
 *   hermesfs [-f] [--state DIR] [--sandbox NAME=URL]... [-o debug] BACKING [MOUNTPOINT]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs/ctl_int.h"
#include "fs/daemon_int.h"
#include "fs/fs.h"
#include "store/store.h"
#include "sync/sync.h"

struct opts {
	bool foreground, debug, no_journal, writeback, no_passthrough;
	enum hlog_level log_level;
	const char *state;
	char **sandboxes;
	int nsandboxes;
	char **settings;	/* -o KEY=VALUE: beats the config file everywhere */
	int nsettings;
	char backing[PATH_MAX], mountpoint[PATH_MAX], state_dir[PATH_MAX];
};

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("hermesfs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void usage(FILE *f)
{
	fputs("usage: hermesfs [-f] [--state DIR] [--sandbox NAME=URL]... [--log-level LEVEL]\n"
	      "                [-o OPT,...] BACKING [MOUNTPOINT]\n"
	      "  -f                 stay in the foreground\n"
	      "  --state DIR        state directory (store, control socket); default\n"
	      "                     ${XDG_STATE_HOME:-~/.local/state}/hermesfs/<id>\n"
	      "  --sandbox NAME=URL add a sandbox (local:/path, ssh://user@host[:port]/root, cmd:PREFIX)\n"
	      "  --log-level LEVEL  error, warning, info (default) or debug; to stderr\n"
	      "                     with -f, else to syslog (facility daemon)\n"
	      "  -o debug           print every FUSE request\n"
	      "  -o writeback_cache kernel writeback cache (faster small writes; files\n"
	      "                     open while sync-back changes them may show a stale size;\n"
	      "                     turns passthrough off)\n"
	      "  -o no_passthrough  serve file data through the daemon; by default (as\n"
	      "                     root, Linux >= 6.9) the kernel reads and writes the\n"
	      "                     backing files itself\n"
	      "  -o KEY=VALUE       override a setting of ~/.config/hermesfs/config (in\n"
	      "                     [defaults] and every [sandbox NAME] section)\n"
	      "MOUNTPOINT defaults to BACKING (mount in place). Unmount: fusermount3 -u MOUNTPOINT\n", f);
}

static enum hlog_level parse_level(const char *s)
{
	static const struct { const char *name; enum hlog_level lvl; } v[] = {
		{ "error", HLOG_ERR }, { "warning", HLOG_WARN },
		{ "info", HLOG_INFO }, { "debug", HLOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (strcmp(s, v[i].name) == 0)
			return v[i].lvl;
	die(CTL_EXIT_USAGE, "--log-level %s: expected error, warning, info or"
	    " debug", s);
	return HLOG_INFO;
}

static void parse_o(struct opts *o, const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;

	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (strcmp(tok, "debug") == 0) {
			o->debug = true;
		} else if (strcmp(tok, "writeback_cache") == 0) {
			o->writeback = true;
		} else if (strcmp(tok, "no_passthrough") == 0) {
			o->no_passthrough = true;
		} else if (strchr(tok, '=')) {
			o->settings = realloc(o->settings, (o->nsettings + 1) * sizeof(char *));
			o->settings[o->nsettings++] = strdup(tok);
		} else {
			die(CTL_EXIT_USAGE, "unknown option '%s' (-o debug, -o writeback_cache,"
			    " -o no_passthrough or -o KEY=VALUE with a config key, see hermes-fsctl(1))", tok);
		}
	}
	free(copy);
}

static void parse_args(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "state", required_argument, NULL, 'S' },
		{ "sandbox", required_argument, NULL, 'B' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "no-journal", no_argument, NULL, 'J' },	/* hidden: benchmarks */
		{ 0 }
	};
	const char *why = NULL;
	char *eq;
	int c;

	while ((c = getopt_long(argc, argv, "hfo:", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': usage(stdout); exit(0);
		case 'f': o->foreground = true; break;
		case 'o': parse_o(o, optarg); break;
		case 'S': o->state = optarg; break;
		case 'J': o->no_journal = true; break;
		case 'L': o->log_level = parse_level(optarg); break;
		case 'B':
			eq = strchr(optarg, '=');
			if (!eq || eq == optarg)
				die(CTL_EXIT_USAGE, "--sandbox wants NAME=URL, got '%s'", optarg);
			*eq = '\0';
			if (!config_sandbox_name_ok(optarg))
				die(CTL_EXIT_USAGE, "bad sandbox name '%s': use letters,"
				    " digits, '.', '_' or '-'", optarg);
			*eq = '=';
			if (transport_url_check(eq + 1, &why) < 0)
				die(CTL_EXIT_USAGE, "bad URL for sandbox '%.*s': %s",
				    (int)(eq - optarg), optarg, why ? why : "invalid");
			o->sandboxes = realloc(o->sandboxes, (o->nsandboxes + 1) * sizeof(char *));
			o->sandboxes[o->nsandboxes++] = optarg;
			break;
		default: usage(stderr); exit(CTL_EXIT_USAGE);
		}
	}
	if (optind >= argc || argc - optind > 2) {
		usage(stderr);
		exit(CTL_EXIT_USAGE);
	}
	if (!realpath(argv[optind], o->backing))
		die(1, "backing directory %s: %s", argv[optind], strerror(errno));
	const char *mp = argc - optind == 2 ? argv[optind + 1] : argv[optind];

	if (!realpath(mp, o->mountpoint))
		die(1, "mountpoint %s: %s", mp, strerror(errno));
}

/* mkdir -p with mode 0700 for every directory created. *created gets the
 * length of the first directory created (longer than path: none). */
static int mkdirs(const char *path, size_t *created)
{
	char buf[PATH_MAX], *p;

	*created = strlen(path) + 1;
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (p = buf + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(buf, 0700) == 0) {
				if ((size_t)(p - buf) < *created)
					*created = (size_t)(p - buf);
			} else if (errno != EEXIST) {
				return -errno;
			}
			if (!(*p = c))
				break;
		}
	}
	return 0;
}

/* Remove the directories mkdirs() created in path (deepest first). */
static void rmdirs(const char *path, size_t created)
{
	char buf[PATH_MAX], *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return;
	while (strlen(buf) >= created && rmdir(buf) == 0 && (p = strrchr(buf, '/')))
		*p = '\0';
}

static bool inside(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	return strcmp(dir, "/") == 0 ||
	       (strncmp(dir, path, n) == 0 && (path[n] == '\0' || path[n] == '/'));
}

static void setup_state_dir(struct opts *o)
{
	char *def = NULL;
	const char *want = o->state;
	size_t created;
	int r;

	if (!want && !(want = def = fs_state_dir_default(o->mountpoint)))
		die(1, "cannot find a state directory (set HOME or use --state DIR)");
	if ((r = mkdirs(want, &created)) < 0 || !realpath(want, o->state_dir))
		die(1, "state directory %s: %s", want, strerror(r < 0 ? -r : errno));
	if (inside(o->mountpoint, o->state_dir) || inside(o->backing, o->state_dir)) {
		rmdirs(want, created);	/* refused: leave the tree as it was */
		die(CTL_EXIT_USAGE, "state directory %s must be outside the mounted tree",
		    o->state_dir);
	}
	free(def);
}

/*
 * One daemon per state directory: it holds CTL_LOCK_NAME locked until it
 * exits (the store, the socket and the clean flag are its alone), and
 * `hermes-fsctl umount` waits on that lock so it returns only once the
 * work in progress is finished and the store is clean. The lock file
 * holds the daemon's pid, for the error message.
 */
static int lock_state_dir(const struct opts *o)
{
	char path[PATH_MAX + 16], pid[32] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", o->state_dir, CTL_LOCK_NAME);
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		die(1, "%s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) == 0)
		return fd;
	if (errno != EWOULDBLOCK)
		die(1, "locking %s: %s", path, strerror(errno));
	n = pread(fd, pid, sizeof(pid) - 1, 0);
	pid[n > 0 ? strcspn(pid, "\n") : 0] = '\0';
	die(1, "state directory %s is in use by another hermesfs (pid %s);"
	    " unmount that one first (hermes-fsctl umount) or use another"
	    " --state", o->state_dir, pid[0] ? pid : "?");
	return -1;
}

/* After detaching: the pid that holds the lock. */
static void lock_note_pid(int fd)
{
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());

	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		hlog(HLOG_WARN, "cannot record the pid in the state lock: %s",
		    strerror(errno));
}

/*
 * Detach before anything starts threads (SQLite, FUSE): the parent waits
 * for a byte from the child once it serves (exit 0) or for EOF if the child
 * failed (it has printed why), so errors still reach the terminal.
 */
static int detach(void)
{
	int p[2];
	char ok;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC) < 0 || (pid = fork()) < 0)
		die(1, "fork: %s", strerror(errno));
	if (pid > 0) {
		int st = 0;

		close(p[1]);
		if (read(p[0], &ok, 1) == 1)
			exit(0);
		/* The child died before serving: pass its status on (2 for a
		 * usage error found after detaching, such as --sandbox). */
		exit(waitpid(pid, &st, 0) == pid && WIFEXITED(st) &&
		     WEXITSTATUS(st) ? WEXITSTATUS(st) : 1);
	}
	close(p[0]);
	setsid();
	return p[1];
}

static void detach_done(int fd)
{
	int null = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	(void)!write(fd, "1", 1);
	close(fd);
}

static void load_config(struct opts *o, struct config **cfg)
{
	char err[512], *path = config_default_path(), *eq;
	const char *what;
	int r, i;

	if (!path)
		die(1, "cannot locate the config file (set HOME)");
	r = config_load(path, cfg, err, sizeof(err));
	free(path);
	if (r < 0)
		die(CTL_EXIT_USAGE, "%s", err);
	for (i = 0; i < o->nsettings; i++) {
		eq = strchr(o->settings[i], '=');
		*eq++ = '\0';
		if (config_override(*cfg, o->settings[i], eq) < 0)
			die(CTL_EXIT_USAGE, "-o %s: unknown setting (see the"
			    " CONFIGURATION section of hermes-fsctl(1))", o->settings[i]);
		if ((what = config_value_check(o->settings[i], eq)))
			die(CTL_EXIT_USAGE, "-o %s=%s: expected %s", o->settings[i],
			    eq, what);
		free(o->settings[i]);
	}
	free(o->settings);
}

/*
 * SIGTERM, SIGINT, SIGHUP. libfuse's own handler only flags the session,
 * which wakes nobody when the kernel delivers the signal to one of our
 * threads (engine, control socket, journal committer) instead of a FUSE
 * one: the daemon then sat mounted until the next request. fs_stop() also
 * wakes the loop (flags and pthread_kill: async-signal-safe), and works
 * before fs_run() too (a signal during the startup rescan). A second
 * SIGTERM or SIGINT stops at once; SIGHUP never does (fs_stop itself
 * sends one to wake the loop). Installed only where the signal is not
 * ignored (nohup).
 */
static struct fs *stop_fs;
static volatile sig_atomic_t stopping, term_seen;

static void on_stop_signal(int sig)
{
	if (sig != SIGHUP && term_seen) {
		signal(sig, SIG_DFL);	/* the second SIGTERM or SIGINT */
		raise(sig);
		return;
	}
	if (sig != SIGHUP)
		term_seen = 1;
	if (!stopping) {
		stopping = 1;	/* before: fs_stop sends us a SIGHUP */
		fs_stop(stop_fs);
	}
}

static void stop_signals_init(struct fs *fs)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };
	struct sigaction sa = { .sa_handler = on_stop_signal }, old;

	stop_fs = fs;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], NULL, &old) == 0 &&
		    old.sa_handler == SIG_DFL)
			sigaction(sigs[i], &sa, NULL);
}

static void request_stop(struct daemon *d)
{
	fs_stop(d->fs);
}

/*
 * --sandbox NAME=URL adds NAME, or keeps it when the store already has it
 * with the same URL (scripts repeat the flag on every mount). The same
 * name with another URL is refused: the ledger and cursor describe what
 * the old sandbox holds, so silently re-pointing them would skip files on
 * the new one and mistake its root for a wiped one.
 */
static void add_sandboxes(struct opts *o, struct store *st)
{
	struct store_sandbox sb;
	int r, i;

	for (i = 0; i < o->nsandboxes; i++) {
		char *name = strdup(o->sandboxes[i]), *url = strchr(name, '=');

		*url++ = '\0';
		if (store_sandbox_get(st, name, &sb) == 0) {
			if (strcmp(sb.url, url) != 0)
				die(CTL_EXIT_USAGE, "sandbox '%s' already exists with URL"
				    " %s, not %s (remove it first: hermes-fsctl sandbox"
				    " rm %s, or pick another name)", name, sb.url, url,
				    name);
			store_sandbox_release(&sb);
		} else if ((r = store_sandbox_add(st, name, url, NULL)) < 0) {
			die(1, "adding sandbox %s: %s", name, strerror(-r));
		}
		free(name);
	}
}

static void open_store(struct opts *o, struct store **st)
{
	char path[PATH_MAX + 16];
	int r;

	snprintf(path, sizeof(path), "%s/store.db", o->state_dir);
	if ((r = store_open(path, st)) < 0)
		die(1, "store %s: %s", path, strerror(-r));
	add_sandboxes(o, *st);
}

/* Journal what changed while nobody was watching (crash, offline edits). */
static int catch_up(struct store *st, struct fs *fs)
{
	bool clean = true;
	int64_t snap = 0, changes = 0;
	int r;

	if ((r = store_clean_get(st, &clean)) < 0 ||
	    (r = store_snapshot_count(st, &snap)) < 0)
		return r;
	if ((!clean || snap > 0) && (r = fs_rescan(st, fs_root_fd(fs), &changes)) < 0)
		return r;
	if (!clean)
		fprintf(stderr, "hermesfs: previous run did not unmount cleanly; "
			"rescan journaled %lld changes\n", (long long)changes);
	return store_clean_set(st, false);
}

int main(int argc, char **argv)
{
	struct opts o = { .log_level = HLOG_INFO };
	struct store *st = NULL;
	struct fs *fs = NULL;
	struct config *conf = NULL;
	struct daemon d = { .request_stop = request_stop };
	char fsname[PATH_MAX + 16], logfile[PATH_MAX + 16];
	int r, notify = -1, lock_fd;

	parse_args(argc, argv, &o);
	load_config(&o, &conf);
	setup_state_dir(&o);
	lock_fd = lock_state_dir(&o);
	if (chdir("/") < 0)
		die(1, "chdir /: %s", strerror(errno));
	if (!o.foreground)
		notify = detach();
	lock_note_pid(lock_fd);
	if (!o.no_journal)
		open_store(&o, &st);

	snprintf(fsname, sizeof(fsname), "%s%s", CTL_FSNAME_PREFIX, o.state_dir);
	struct fs_config cfg = { .backing = o.backing, .mountpoint = o.mountpoint,
				 .fsname = fsname, .store = st, .debug = o.debug,
				 .writeback_cache = o.writeback,
				 .no_passthrough = o.no_passthrough };
	if ((r = fs_new(&cfg, &fs)) < 0)
		die(1, "cannot mount %s: %s", o.mountpoint, strerror(-r));
	stop_signals_init(fs);
	if (st && (r = catch_up(st, fs)) < 0) {
		fs_free(fs);
		die(1, "rescanning the backing tree: %s", strerror(-r));
	}

	/* Control socket and background pushes (they need the journal). */
	d.state_dir = o.state_dir;
	d.mountpoint = o.mountpoint;
	d.backing = o.backing;
	d.st = st;
	d.fs = fs;
	d.root_fd = fs_root_fd(fs);
	d.cfg = conf;
	snprintf(logfile, sizeof(logfile), "%s/%s", o.state_dir, LOG_FILE_NAME);
	hlog_init("hermesfs", !o.foreground, logfile, o.log_level);
	if (st && (r = daemon_services_start(&d)) < 0) {
		daemon_services_stop(&d);
		fs_free(fs);
		die(1, "starting the control socket in %s: %s", o.state_dir,
		    strerror(-r));
	}
	hlog(HLOG_INFO, "serving %s (backing %s, state %s)", o.mountpoint,
	    o.backing, o.state_dir);

	detach_done(notify);
	r = fs_run(fs);

	/* The mount is gone: finish requests in flight (a flush completes its
	 * transaction), then stop pushing. The store is still open. */
	if (st)
		daemon_services_stop(&d);
	hlog(HLOG_INFO, "unmounted %s", o.mountpoint);

	/* Clean only if every change is durably journaled; otherwise the old
	 * snapshot stays and the next mount's rescan finds what is missing. */
	if (st && r == 0 && !fs_journal_lost(fs) && store_journal_sync(st) == 0 &&
	    fs_snapshot_save(st, fs_root_fd(fs)) == 0)
		store_clean_set(st, true);
	fs_free(fs);
	store_close(st);
	config_free(conf);
	free(o.sandboxes);
	return r < 0 ? 1 : 0;
}
