/*
 * pull_int.h — private to the pull engine (sync/pull*.c): hostile-input
 * checks, the remote listing, the tar reader, the three-way decision and
 * the host-side apply. Everything the sandbox sends is untrusted.
 */
#ifndef HERMES_PULL_INT_H
#define HERMES_PULL_INT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "sync/sync.h"

/* Permission bits a pull may set (and records): no setuid/setgid from a
 * sandbox. */
#define PULL_MODE_MASK 01777

/* ---- report: one line per refusal, conflict, warning ------------------- */

struct pull_report {
	char *buf;		/* NUL-terminated, lines end in '\n' */
	size_t len, cap;
	int64_t lines;
	bool has_fatal;
	size_t fatal_at;	/* offset of the first line saying why a pull failed */
};
/* The next line added says why the pull fails: a failed pull's report
 * starts with it (callers show the first line as the error). */
void pull_report_fatal(struct pull_report *r);
/* Move the first fatal line (if any) to the front. */
void pull_report_fatal_first(struct pull_report *r);
void pull_report_add(struct pull_report *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Append `s` with control bytes and backslashes escaped (\n, \x1b...):
 * hostile names must not forge report lines or terminal sequences. */
void pull_report_add_path(struct pull_report *r, const char *prefix,
			  const char *path, const char *suffix);
void pull_report_release(struct pull_report *r);

/* ---- path checks (pull_path.c) ----------------------------------------- */

/*
 * Validate a path from the sandbox and normalize it: leading "./" dropped,
 * nothing else rewritten. Refused (-EINVAL, *why set): empty, absolute,
 * "." or ".." or empty components, trailing '/', components longer than
 * NAME_MAX, paths longer than PATH_MAX. *out is malloc'd.
 */
int pull_path_check(const char *in, char **out, const char **why);
/* True for the names a pull never touches (SYNC_STAGE_DIR and below,
 * SYNC_MARKER_NAME at the root). */
bool pull_path_excluded(const char *rel);
/*
 * A symlink at `linkpath` (normalized) with target `target` stays inside
 * the root: relative, no empty or "." tricks needed, and ".." only as
 * leading components, at most as many as linkpath has parent directories
 * (so no chain of in-root links can climb out either).
 */
int pull_symlink_check(const char *linkpath, const char *target,
		       const char **why);

/* ---- listing (pull_list.c) --------------------------------------------- */

struct pull_entry {
	char *path;		/* normalized, relative */
	int type;		/* enum store_ftype */
	uint32_t mode;		/* type bits + permission bits, as remote */
	int64_t size;
	int64_t mtime_ns;
	char *target;		/* symlinks only */
};

struct pull_list {
	struct pull_entry *v;	/* sorted by path (strcmp) */
	size_t n, cap;
	bool root_missing;	/* the remote root could not be entered */
	bool have_marker;
	char *marker;		/* its content, trailing whitespace trimmed */
	char **refused;		/* paths refused (normalized when possible) */
	size_t nrefused;
};

/* The remote script: lists `root` as NUL-separated records, GNU find
 * -printf when available, else a portable sh + stat loop (forced when
 * `portable`). malloc'd. */
char *pull_list_script(const char *root, bool portable);
/*
 * Parse the script's output. Entries that fail a check are dropped and
 * reported, never fatal; a listing without its end record (truncated) or
 * over max_files entries is -EPROTO / -EFBIG. Excluded names are dropped
 * silently (the marker is read from its own record).
 */
int pull_list_parse(const char *buf, size_t len, int64_t max_files,
		    struct pull_list *out, struct pull_report *rep);
/* The same, dropping silently every entry `ignore` (the sandbox's ignore
 * rules) says to skip, before any other check: ignored entries are neither
 * refused nor counted against max_files. */
int pull_list_parse_ignoring(const char *buf, size_t len, int64_t max_files,
			     bool (*ignore)(const char *relpath, bool is_dir,
					    void *arg),
			     void *ignore_arg, struct pull_list *out,
			     struct pull_report *rep);
void pull_list_release(struct pull_list *l);
/* Binary search by path; NULL if absent. */
struct pull_entry *pull_list_find(const struct pull_list *l, const char *p);
bool pull_list_is_refused(const struct pull_list *l, const char *p);

/* ---- three-way decision (pull_decide.c) --------------------------------- */

/* One side's version of a path. sha: file content or symlink target;
 * unused for directories. */
struct stat;

struct pull_ver {
	bool present;
	int type;			/* enum store_ftype */
	uint32_t mode;			/* only & 0777 is compared */
	uint8_t sha[STORE_SHA256_LEN];
	/* Host only: the identity hashed, to see a change made after. */
	uint64_t ino;
	int64_t size, ctime_ns;
};

enum pull_action {
	PULL_NONE = 0,		/* remote unchanged since the ledger */
	PULL_LEDGER,		/* nothing to do on the host: record remote */
	PULL_APPLY,		/* write the remote version at the path */
	PULL_DELETE,		/* remote deleted, host unchanged: delete */
	PULL_CONFLICT,		/* remote at the path, host kept as a copy */
	PULL_HOST_WINS,		/* keep host, record remote, re-push host */
	PULL_RESTORE_COPY,	/* host deleted, remote changed: remote as a copy */
	PULL_KEEP_HOST,		/* remote deleted, host changed: keep host */
};
const char *pull_action_name(enum pull_action a);
bool pull_ver_equal(const struct pull_ver *a, const struct pull_ver *b);
/* base = ledger, host = current host file, remote = sandbox. Pure. */
enum pull_action pull_decide(const struct pull_ver *base,
			     const struct pull_ver *host,
			     const struct pull_ver *remote,
			     enum sync_conflict_policy policy);

/* ---- SHA-256 (pull_tar.c) ----------------------------------------------- */

struct pull_sha;
int pull_sha_new(struct pull_sha **out);
int pull_sha_update(struct pull_sha *s, const void *p, size_t n);
int pull_sha_final(struct pull_sha *s, uint8_t out[STORE_SHA256_LEN]);
void pull_sha_free(struct pull_sha *s);
int pull_sha_buf(const void *p, size_t n, uint8_t out[STORE_SHA256_LEN]);

/* ---- tar reader (pull_tar.c) -------------------------------------------- */

struct pull_caps {
	int64_t max_total_bytes;
	int64_t max_files;
	int64_t max_file_size;
};

/* One file we asked for; filled in by pull_tar_read. */
struct pull_fetch {
	const char *path;		/* normalized; borrowed */
	bool got;
	int64_t off;			/* content at [off, off+size) of the stage */
	int64_t size;
	uint32_t mode;
	int64_t mtime_ns;
	uint8_t sha[STORE_SHA256_LEN];
	bool unstable;			/* tar saw it change while reading */
};

/* Pull bytes from the stream: >0 bytes, 0 at EOF, -errno. */
typedef ssize_t (*pull_read_fn)(void *arg, void *buf, size_t n);

/*
 * Read a tar stream, keeping only regular files listed in `want` (sorted by
 * path) and appending their content to `stage_fd` (an anonymous file).
 * Refused and reported, never written: unrequested names, bad paths,
 * duplicates, hard links, symlinks, devices, fifos, sockets. Caps are
 * enforced on header sizes and again on the bytes actually read:
 * exceeding one is -EFBIG (fatal). A malformed archive is -EPROTO.
 * Refused entries are added to *refused (may be NULL).
 */
int pull_tar_read(pull_read_fn rd, void *rd_arg, int stage_fd,
		  struct pull_fetch *want, size_t nwant,
		  const struct pull_caps *caps, struct pull_report *rep,
		  int64_t *refused);
/* Told after each chunk of content staged and each file completed: files
 * completed and content bytes staged so far (both only grow). */
struct pull_tar_hook {
	void (*staged)(int64_t files, int64_t bytes, void *arg);
	void *arg;
};
/* pull_tar_read with a progress hook (NULL = none). */
int pull_tar_read_hooked(pull_read_fn rd, void *rd_arg, int stage_fd,
			 struct pull_fetch *want, size_t nwant,
			 const struct pull_caps *caps, struct pull_report *rep,
			 int64_t *refused, const struct pull_tar_hook *hook);
int pull_fetch_cmp(const void *a, const void *b);

/* ---- host side (pull_host.c) ---------------------------------------------- */

/*
 * Open the directory holding `rel` under root_fd, component by component
 * with O_NOFOLLOW (a symlink anywhere on the way is -ELOOP/-ENOTDIR).
 * With `create`, missing directories are made (mode 0755) and each one
 * made is reported through *made (may be NULL) for journaling.
 * *base points into rel (last component).
 */
typedef void (*pull_mkdir_fn)(const char *rel, void *arg);
int pull_host_parent(int root_fd, const char *rel, bool create,
		     pull_mkdir_fn made, void *made_arg,
		     int *dirfd, const char **base);
/* Record st's identity (inode, size, ctime) in v. */
void pull_ver_stamp(struct pull_ver *v, const struct stat *st);
/* Whether dirfd/base is no longer what h recorded: written, replaced,
 * created or removed since (a host write racing the pull). */
bool pull_host_changed(int dirfd, const char *base, const struct pull_ver *h);
/* The host's current version of rel (not present on -ENOENT). */
int pull_host_version(int root_fd, const char *rel, struct pull_ver *out);
/* An anonymous staging file on root_fd's filesystem (O_TMPFILE, else a
 * named file unlinked at once). */
int pull_stage_open(int root_fd);


/* ---- one pull in progress (pull.c, pull_apply.c, pull_remote.c) --------- */

/* One path whose remote side changed since the ledger. */
struct pull_item {
	const char *path;		/* borrowed from entry or ledger row */
	struct pull_ver base, host, remote;
	const struct pull_entry *entry;	/* remote listing entry; NULL = deleted */
	const struct pull_fetch *fetch;	/* staged content (files) */
	enum pull_action action;
	bool skip;			/* not (stably) received: left for next time */
	bool ok;			/* host side done: update the ledger */
};

struct pull_ctx {
	struct store *st;
	int64_t sb;
	char *sbname;			/* sanitized for file names */
	struct transport *t;
	int root_fd;
	int stage_fd;
	const struct sync_pull_config *cfg;
	struct pull_caps caps;
	struct sync_pull_stats *stats;
	struct pull_report rep;
	char stamp[32];			/* UTC YYYYmmddTHHMMSSZ of this pull */
	unsigned tmpseq;
	bool last_attempt;		/* no retry left: apply what is stable */
	struct sync_pull_progress prog;	/* of the fetch of this attempt */
	int64_t prog_ns;		/* when cfg->progress was last called */
	struct pull_dirid {		/* directories swept of stale temps */
		uint64_t dev, ino;
	} *swept;
	size_t nswept, capswept;
};

/* Host side of one decided item; reports its own failures (returns <0
 * and leaves item->ok false: the ledger keeps the old row, so the next
 * pull tries again). */
int pull_apply_item(struct pull_ctx *c, struct pull_item *it);

/* Remote side: run the listing (bounded), fetch files into the stage.
 * Transport failures are negative errnos worth a retry (pull_retryable).
 * Files the sandbox was still writing are marked unstable in `want` and
 * *changed_while_read is set. */
int pull_remote_list(struct pull_ctx *c, struct pull_list *out);
int pull_remote_fetch(struct pull_ctx *c, struct pull_fetch *want, size_t n,
		      bool *changed_while_read);
bool pull_retryable(int err);
/* Progress of the fetch (cfg->progress, rate-bounded): start with the
 * totals (done = 0; no call when there are no files: a reset), then the
 * counts staged so far (`last`: the fetch is complete, done = total). */
void pull_progress_start(struct pull_ctx *c, int64_t files, int64_t bytes);
void pull_progress_report(struct pull_ctx *c, int64_t files, int64_t bytes,
			  bool last);
/* Progress of the apply: `done` of `total` changed paths handled. */
void pull_progress_apply(struct pull_ctx *c, int64_t done, int64_t total);

#endif /* HERMES_PULL_INT_H */
