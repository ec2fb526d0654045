/*
 * fs_mount.c — lifecycle of the mount: open the backing directory, mount,
 * serve on a thread pool, stop, unmount; and the default state directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <xxhash.h>

#include "fs/fs_int.h"

/* Option values are comma-separated: escape ',' and '\' for fuse_opt. */
static char *opt_escape(const char *s)
{
	char *out = malloc(strlen(s) * 2 + 1), *w = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		if (*s == ',' || *s == '\\')
			*w++ = '\\';
		*w++ = *s;
	}
	*w = '\0';
	return out;
}

static int build_args(const struct fs_config *cfg, bool as_root, int root_fd,
		      struct fuse_args *args)
{
	char *name = opt_escape(cfg->fsname ? cfg->fsname : "hermesfs");
	char *opts = NULL;
	struct statvfs sv;
	int r = -ENOMEM;

	if (!name)
		return -ENOMEM;
	if (fstatvfs(root_fd, &sv) < 0) {
		r = -errno;
		goto out;
	}
	/* default_permissions on every mount, a user's too: without it the
	 * backing file system checks the daemon's calls, which carry the
	 * daemon's groups and capabilities rather than the caller's, and open
	 * for reading where the caller asked to execute. For that same read,
	 * a noexec backing file system makes the mount noexec too (FUSE
	 * mounts are nosuid and nodev; file systems mounted further down:
	 * exec_refused() in fs_llio.c). */
	if (asprintf(&opts, "fsname=%s,subtype=hermesfs,default_permissions,"
		     "max_read=%u%s%s", name, FS_MAX_READ,
		     as_root ? ",allow_other" : "",
		     (sv.f_flag & ST_NOEXEC) ? ",noexec" : "") < 0)
		opts = NULL;
	if (!opts || fuse_opt_add_arg(args, "hermesfs") ||
	    fuse_opt_add_arg(args, "-o") || fuse_opt_add_arg(args, opts) ||
	    (cfg->debug && fuse_opt_add_arg(args, "-d")))
		goto out;
	r = 0;
out:
	free(name);
	free(opts);
	return r;
}

/* The root inode: the backing directory itself, never forgotten. */
static int root_init(struct fs *fs, const char *backing)
{
	char proc[64], buf[PATH_MAX + 1];
	struct stat st;
	ssize_t n;

	fs->root_fd = open(backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->root_fd < 0 || fstat(fs->root_fd, &st) < 0)
		return -errno;
	n = readlink(fs_proc_path(proc, fs->root_fd), buf, sizeof(buf) - 1);
	if (n <= 0 || (size_t)n >= sizeof(buf) - 1)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	if (!(fs->root_path = strdup(buf)))
		return -ENOMEM;
	fs->root_len = (size_t)n;
	fs->root = (struct fs_inode){ .fd = fs->root_fd, .dev = st.st_dev,
		.ino = st.st_ino, .type = S_IFDIR, .nlookup = 1 };
	return 0;
}

/* Every inode the kernel knows holds an O_PATH fd: lift the soft limit to
 * the hard one, and (as root) both to the system's nr_open. */
static void raise_nofile(void)
{
	struct rlimit rl;
	unsigned long nr = 0;
	FILE *f = fopen("/proc/sys/fs/nr_open", "re");

	if (f) {
		if (fscanf(f, "%lu", &nr) != 1)
			nr = 0;
		fclose(f);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (nr > rl.rlim_max) {
		struct rlimit big = { .rlim_cur = nr, .rlim_max = nr };

		if (setrlimit(RLIMIT_NOFILE, &big) == 0)
			return;
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* A path as /proc/self/mountinfo shows it (space, tab, newline and
 * backslash as octal escapes) into out (size n); false if too long. */
static bool mountinfo_escape(const char *s, char *out, size_t n)
{
	size_t w = 0;

	for (; *s; s++) {
		if (w + 5 > n)
			return false;
		if (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\\')
			w += (size_t)sprintf(out + w, "\\%03o", (unsigned char)*s);
		else
			out[w++] = *s;
	}
	out[w] = '\0';
	return true;
}

/* FUSE's readahead is capped at 128 KiB unless root raises it in sysfs:
 * larger READs halve the round trips of a sequential read. Best effort. */
static void readahead_raise(struct fs *fs)
{
	char want[PATH_MAX * 4 + 1], line[PATH_MAX * 4 + 256], dev[32] = "";
	char path[96], mp[sizeof(line)];
	unsigned maj, min;
	FILE *f;

	if (!fs->as_root || !mountinfo_escape(fs->mountpoint, want, sizeof(want)))
		return;
	if (!(f = fopen("/proc/self/mountinfo", "re")))
		return;
	/* The last match is ours (a mount over the same path stacks on top). */
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*u %*u %u:%u / %s", &maj, &min, mp) == 3 &&
		    strcmp(mp, want) == 0 && strstr(line, " - fuse.hermesfs "))
			snprintf(dev, sizeof(dev), "%u:%u", maj, min);
	fclose(f);
	if (!*dev)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", dev);
	if ((f = fopen(path, "we"))) {
		fprintf(f, "%d\n", FS_READAHEAD_KB);
		fclose(f);
	}
}

int fs_new(const struct fs_config *cfg, struct fs **out)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fs *fs = calloc(1, sizeof(*fs));
	int r = -ENOMEM;

	if (!fs)
		return -ENOMEM;
	fs->root_fd = -1;
	fs->proc_fd = -1;
	fs->store = cfg->store;
	fs->as_root = geteuid() == 0;
	fs->writeback = cfg->writeback_cache;
	fs->no_passthrough = cfg->no_passthrough;
	/* Each journaled change reads its path from /proc/self/fd/N: looked
	 * up from this directory, that is one component, not four. */
	fs->proc_fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fs->proc_fd < 0) {
		r = -errno;
		goto out;
	}
	if (!(fs->mountpoint = strdup(cfg->mountpoint)) ||
	    (r = fs_itab_init(fs)) < 0 || (r = root_init(fs, cfg->backing)) < 0 ||
	    (r = build_args(cfg, fs->as_root, fs->root_fd, &args)) < 0)
		goto out;
	umask(0);	/* callers' umasks: fs_umask_push() */
	raise_nofile();
	fs->se = fuse_session_new(&args, &fs_ll_ops, sizeof(fs_ll_ops), fs);
	if (!fs->se) {
		r = -EINVAL;
		goto out;
	}
	if (fuse_session_mount(fs->se, fs->mountpoint) != 0) {
		r = -EIO;
		goto out;
	}
	fs->mounted = true;
	if ((r = fs_pt_setup(fs)) < 0)
		goto out;
	readahead_raise(fs);
	*out = fs;
	fs = NULL;	/* transferred */
	r = 0;
out:
	fuse_opt_free_args(&args);
	fs_free(fs);
	return r;
}

static void wake(int sig)
{
	(void)sig;	/* only there to interrupt blocking calls */
}

int fs_run(struct fs *fs)
{
	struct fuse_loop_config lc = { .clone_fd = 1, .max_idle_threads = 16 };
	struct fuse_session *se = fs->se;
	struct sigaction sa = { .sa_handler = wake }, old;
	bool own_hup;
	int r;

	if (fs->stop)
		goto done;
	fs->run_thread = pthread_self();
	/* SIGINT/SIGTERM/SIGHUP end the session (only where still default). */
	if (fuse_set_signal_handlers(se) != 0)
		return -EIO;
	sigaction(SIGHUP, NULL, &old);
	own_hup = old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN;
	if (own_hup)
		sigaction(SIGHUP, &sa, NULL);
	__atomic_store_n(&fs->running, 1, __ATOMIC_SEQ_CST);
	if (fs->stop)
		fuse_session_exit(se);
	r = fuse_session_loop_mt(se, &lc);
	__atomic_store_n(&fs->running, 0, __ATOMIC_SEQ_CST);
	fuse_remove_signal_handlers(se);
	if (own_hup)
		sigaction(SIGHUP, &old, NULL);
	/* A signal or fs_stop() is a normal end too. */
	if (r > 0 || fuse_session_exited(se))
		r = 0;
	fs_fh_drain(fs);
	if (r < 0 && r != -ENODEV)
		return r;
done:
	if (fs->mounted) {
		fuse_session_unmount(se);
		fs->mounted = false;
	}
	return 0;
}

void fs_stop(struct fs *fs)
{
	if (!fs)
		return;
	fs->stop = 1;
	if (fs->se)
		fuse_session_exit(fs->se);
	/* Interrupt the thread waiting inside fuse_loop_mt(). */
	if (__atomic_load_n(&fs->running, __ATOMIC_SEQ_CST))
		pthread_kill(fs->run_thread, SIGHUP);
}

int fs_root_fd(const struct fs *fs)
{
	return fs->root_fd;
}

/* The kernel's inode for a backing path, if it holds one. */
static fuse_ino_t known_ino(struct fs *fs, const char *rel)
{
	struct stat st;

	if (fstatat(fs->root_fd, *rel ? rel : ".", &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return fs_itab_find(fs, st.st_dev, st.st_ino);
}

void fs_invalidate(struct fs *fs, const char *relpath)
{
	char parent[PATH_MAX];
	const char *slash, *name;
	fuse_ino_t ino;

	if (!fs || !fs->se || !fs->mounted || strlen(relpath) >= PATH_MAX)
		return;
	if ((ino = known_ino(fs, relpath)) != 0)
		fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	if (!*relpath)
		return;
	slash = strrchr(relpath, '/');
	name = slash ? slash + 1 : relpath;
	snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - relpath) : 0, relpath);
	if ((ino = known_ino(fs, parent)) != 0) {
		fuse_lowlevel_notify_inval_entry(fs->se, ino, name, strlen(name));
		fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0);
	}
}

bool fs_journal_lost(const struct fs *fs)
{
	return __atomic_load_n(&fs->journal_lost, __ATOMIC_ACQUIRE);
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	if (fs->se) {
		if (fs->mounted)
			fuse_session_unmount(fs->se);
		fuse_session_destroy(fs->se);
	}
	fs_itab_free(fs);
	if (fs->root_fd >= 0)
		close(fs->root_fd);
	if (fs->proc_fd >= 0)
		close(fs->proc_fd);
	free(fs->root_path);
	free(fs->mountpoint);
	free(fs);
}

char *fs_state_dir_default(const char *mountpoint)
{
	char abs[PATH_MAX], *out = NULL;
	const char *base = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (!realpath(mountpoint, abs))
		return NULL;
	if (base && base[0] == '/') {
		if (asprintf(&out, "%s/hermesfs/%016llx", base,
			     (unsigned long long)XXH3_64bits(abs, strlen(abs))) < 0)
			out = NULL;
	} else if (home && home[0] == '/') {
		if (asprintf(&out, "%s/.local/state/hermesfs/%016llx", home,
			     (unsigned long long)XXH3_64bits(abs, strlen(abs))) < 0)
			out = NULL;
	} else {
		errno = ENOENT;
	}
	return out;
}
