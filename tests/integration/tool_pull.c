/*
 * tool_pull — drives the pull engine for shell tests, with a real store and
 * a real transport.
 *   tool_pull seed DB NAME URL REMOTE_DIR [--no-marker]
 *       as if a push had just happened: add the sandbox, record REMOTE_DIR
 *       (the sandbox root, reachable here) in its ledger, write the marker
 *   tool_pull pull DB NAME URL HOSTROOT [--policy P] [--portable]
 *       [--max-total N] [--max-files N] [--max-file N] [--retries N]
 *       [--backoff MS]     SIGINT/SIGTERM set the cancel flag
 *       [--slow-apply MS] [--ready-file F]   after each host change: sleep
 *       MS; the first one creates F (so a test can signal mid-apply)
 *   tool_pull journal DB   one line per entry: seq op origin path [path2]
 *   tool_pull ledger DB NAME
 *   tool_pull conflicts DB
 *   tool_pull mktar OUT SPEC...   write a crafted tar (libarchive) to OUT:
 *       f:PATH:CONTENT[:OCTAL_MODE]  regular file
 *       F:PATH:SIZE:N    header claims SIZE; N bytes of 'x' (libarchive
 *                        pads or cuts them to SIZE)
 *       l:PATH:TARGET  symlink      h:PATH:TARGET  hard link
 *       c:PATH  b:PATH  char/block device      p:PATH  fifo
 *       d:PATH  directory
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "store/store.h"
#include "sync/pull_int.h"

static volatile int cancel_flag;
static struct store *g_st;
static int64_t g_sb;
static size_t g_rootlen;

static void on_signal(int sig)
{
	cancel_flag = 1;
}

static int die(const char *what, int r)
{
	fprintf(stderr, "tool_pull: %s: %s\n", what, strerror(-r));
	return 2;
}

static int hash_file(const char *p, uint8_t *sha)
{
	char buf[65536];
	struct pull_sha *s;
	ssize_t n;
	int fd = open(p, O_RDONLY), r;

	if (fd < 0)
		return -errno;
	r = pull_sha_new(&s);
	while (r == 0 && (n = read(fd, buf, sizeof(buf))) > 0)
		r = pull_sha_update(s, buf, (size_t)n);
	if (r == 0)
		r = pull_sha_final(s, sha);
	pull_sha_free(s);
	close(fd);
	return r;
}

static int seed_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	struct store_ledger_row row = { 0 };
	char target[4096];
	ssize_t n;

	if (strlen(p) <= g_rootlen)
		return 0;
	row.path = (char *)p + g_rootlen + 1;
	if (pull_path_excluded(row.path))
		return 0;
	row.mode = st->st_mode;
	row.size = st->st_size;
	row.mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	if (S_ISDIR(st->st_mode)) {
		row.type = STORE_FT_DIR;
		row.size = 0;
	} else if (S_ISLNK(st->st_mode)) {
		row.type = STORE_FT_SYMLINK;
		n = readlink(p, target, sizeof(target));
		if (n < 0)
			return -errno;
		pull_sha_buf(target, (size_t)n, row.sha256);
	} else if (S_ISREG(st->st_mode)) {
		row.type = STORE_FT_FILE;
		if (hash_file(p, row.sha256) < 0)
			return -EIO;
	} else {
		return 0;
	}
	return store_ledger_put(g_st, g_sb, &row);
}

static int cmd_seed(int argc, char **argv)
{
	char key[64], path[4096];
	bool marker = !(argc > 6 && strcmp(argv[6], "--no-marker") == 0);
	struct store_sandbox sb;
	int r;

	r = store_sandbox_get(g_st, argv[3], &sb);
	if (r == 0) {
		g_sb = sb.id;
		store_sandbox_release(&sb);
	} else if ((r = store_sandbox_add(g_st, argv[3], argv[4], &g_sb)) < 0) {
		return die("sandbox add", r);
	}
	g_rootlen = strlen(argv[5]);
	store_ledger_delete(g_st, g_sb, "", true);
	r = nftw(argv[5], seed_one, 32, FTW_PHYS);
	if (r != 0)
		return die("seed", r < 0 ? r : -EIO);
	if (marker) {
		FILE *f;

		snprintf(key, sizeof(key), "sandbox.%lld.marker", (long long)g_sb);
		snprintf(path, sizeof(path), "%s/%s", argv[5], SYNC_MARKER_NAME);
		f = fopen(path, "w");
		if (!f)
			return die("marker", -errno);
		fprintf(f, "id-%lld-%d\n", (long long)g_sb, (int)getpid());
		fclose(f);
		snprintf(path, sizeof(path), "id-%lld-%d", (long long)g_sb, (int)getpid());
		store_meta_set(g_st, key, path);
	}
	return 0;
}

static int g_slow_ms;
static const char *g_ready_file;

static void on_invalidate(const char *rel, void *arg)
{
	if ((*(int *)arg)++ == 0 && g_ready_file) {
		int fd = open(g_ready_file, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);

		if (fd >= 0)
			close(fd);
	}
	if (g_slow_ms)
		usleep((useconds_t)g_slow_ms * 1000);
}

static int cmd_pull(int argc, char **argv)
{
	struct sync_pull_config cfg = { .cancel = &cancel_flag, .backoff_ms = 100 };
	struct sync_pull_stats stats;
	struct store_sandbox sb;
	struct transport *t = NULL;
	int root, r, inval = 0;

	for (int i = 6; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "0";

		if (!strcmp(a, "--portable"))
			cfg.portable_listing = true;
		else if (!strcmp(a, "--policy") && ++i)
			sync_conflict_policy_parse(v, &cfg.policy);
		else if (!strcmp(a, "--max-total") && ++i)
			cfg.max_total_bytes = atoll(v);
		else if (!strcmp(a, "--max-files") && ++i)
			cfg.max_files = atoll(v);
		else if (!strcmp(a, "--max-file") && ++i)
			cfg.max_file_size = atoll(v);
		else if (!strcmp(a, "--retries") && ++i)
			cfg.retries = atoi(v);
		else if (!strcmp(a, "--backoff") && ++i)
			cfg.backoff_ms = atoi(v);
		else if (!strcmp(a, "--slow-apply") && ++i)
			g_slow_ms = atoi(v);
		else if (!strcmp(a, "--ready-file") && ++i)
			g_ready_file = v;
	}
	cfg.invalidate = on_invalidate;
	cfg.invalidate_arg = &inval;
	r = store_sandbox_get(g_st, argv[3], &sb);
	if (r < 0)
		return die("sandbox", r);
	g_sb = sb.id;
	store_sandbox_release(&sb);
	r = transport_open(argv[4], NULL, &t);
	if (r < 0)
		return die("transport", r);
	root = open(argv[5], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return die("host root", -errno);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	r = sync_pull_run(g_st, g_sb, t, root, &cfg, &stats);
	printf("rc=%d (%s) listed=%lld fetched=%lld applied=%lld deleted=%lld "
	       "conflicts=%lld refused=%lld kept=%lld bytes_in=%lld attempts=%d "
	       "invalidated=%d\n", r, r ? strerror(-r) : "ok",
	       (long long)stats.listed, (long long)stats.fetched,
	       (long long)stats.applied, (long long)stats.deleted,
	       (long long)stats.conflicts, (long long)stats.refused,
	       (long long)stats.kept, (long long)stats.bytes_in, stats.attempts, inval);
	if (stats.report)
		fputs(stats.report, stdout);
	sync_pull_stats_release(&stats);
	close(root);
	transport_close(t);
	return r == 0 ? 0 : 1;
}

static int print_entry(const struct store_entry *e, void *arg)
{
	printf("%lld %s %lld %s%s%s\n", (long long)e->seq, store_op_name(e->op),
	       (long long)e->origin, e->path, e->path2 ? " " : "",
	       e->path2 ? e->path2 : "");
	return 0;
}

static int print_row(const struct store_ledger_row *row, void *arg)
{
	printf("%s %d %lld %o %02x%02x%02x%02x\n", row->path, row->type,
	       (long long)row->size, row->mode, row->sha256[0], row->sha256[1],
	       row->sha256[2], row->sha256[3]);
	return 0;
}

/* One crafted entry: "t:path[:a[:b]]" (see the usage comment). */
static int mktar_entry(struct archive *a, char *spec)
{
	char *type = strtok(spec, ":"), *path = strtok(NULL, ":");
	char *a1 = strtok(NULL, ":"), *a2 = strtok(NULL, ":");
	struct archive_entry *ae = archive_entry_new();
	int64_t claim = 0, send = 0;
	int r;

	if (!type || !path)
		return -EINVAL;
	archive_entry_set_pathname(ae, path);
	archive_entry_set_mtime(ae, 1700000000, 0);
	archive_entry_set_perm(ae, 0644);
	switch (type[0]) {
	case 'f':
		send = a1 ? (int64_t)strlen(a1) : 0;
		claim = send;
		archive_entry_set_filetype(ae, AE_IFREG);
		if (a2)
			archive_entry_set_perm(ae, (mode_t)strtol(a2, NULL, 8));
		break;
	case 'F':
		claim = a1 ? atoll(a1) : 0;
		send = a2 ? atoll(a2) : 0;
		archive_entry_set_filetype(ae, AE_IFREG);
		break;
	case 'l':
		archive_entry_set_filetype(ae, AE_IFLNK);
		archive_entry_set_symlink(ae, a1 ? a1 : "");
		break;
	case 'h':
		archive_entry_set_filetype(ae, AE_IFREG);
		archive_entry_set_hardlink(ae, a1 ? a1 : "");
		break;
	case 'c':
	case 'b':
		archive_entry_set_filetype(ae, type[0] == 'c' ? AE_IFCHR : AE_IFBLK);
		archive_entry_set_rdev(ae, makedev(1, 3));
		break;
	case 'p':
		archive_entry_set_filetype(ae, AE_IFIFO);
		break;
	case 'd':
		archive_entry_set_filetype(ae, AE_IFDIR);
		archive_entry_set_perm(ae, 0755);
		break;
	default:
		archive_entry_free(ae);
		return -EINVAL;
	}
	archive_entry_set_size(ae, claim);
	r = archive_write_header(a, ae) == ARCHIVE_OK ? 0 : -EIO;
	if (r == 0 && type[0] == 'f' && send)
		r = archive_write_data(a, a1, (size_t)send) == send ? 0 : -EIO;
	for (char buf[4096]; r == 0 && type[0] == 'F' && send > 0;) {
		size_t n = send < (int64_t)sizeof(buf) ? (size_t)send : sizeof(buf);

		memset(buf, 'x', n);
		if (archive_write_data(a, buf, n) < 0)
			r = -EIO;
		send -= (int64_t)n;
	}
	archive_entry_free(ae);
	return r;
}

static int cmd_mktar(int argc, char **argv)
{
	struct archive *a = archive_write_new();
	int r = 0;

	archive_write_set_format_pax_restricted(a);
	if (archive_write_open_filename(a, argv[2]) != ARCHIVE_OK) {
		fprintf(stderr, "tool_pull: mktar: %s\n", archive_error_string(a));
		archive_write_free(a);
		return 2;
	}
	for (int i = 3; r == 0 && i < argc; i++) {
		r = mktar_entry(a, argv[i]);
		if (r < 0)
			fprintf(stderr, "tool_pull: mktar %s: %s\n", argv[i],
				archive_error_string(a) ? archive_error_string(a) : "bad spec");
	}
	archive_write_close(a);
	archive_write_free(a);
	return r == 0 ? 0 : 2;
}

int main(int argc, char **argv)
{
	int r, rc = 2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "mktar"))
		return cmd_mktar(argc, argv);
	if (argc < 3) {
		fprintf(stderr, "usage: see the source\n");
		return 2;
	}
	r = store_open(argv[2], &g_st);
	if (r < 0)
		return die("store", r);
	if (!strcmp(argv[1], "seed") && argc >= 6) {
		rc = cmd_seed(argc, argv);
	} else if (!strcmp(argv[1], "pull") && argc >= 6) {
		rc = cmd_pull(argc, argv);
	} else if (!strcmp(argv[1], "journal")) {
		store_journal_sync(g_st);
		rc = store_journal_foreach(g_st, 0, 0, print_entry, NULL) ? 1 : 0;
	} else if (!strcmp(argv[1], "ledger") && argc >= 4) {
		struct store_sandbox sb;

		if (store_sandbox_get(g_st, argv[3], &sb) == 0) {
			rc = store_ledger_foreach(g_st, sb.id, NULL, print_row, NULL) ? 1 : 0;
			store_sandbox_release(&sb);
		}
	} else if (!strcmp(argv[1], "conflicts")) {
		struct store_conflict *c;
		size_t n;

		if (store_conflict_list(g_st, -1, &c, &n) == 0) {
			for (size_t i = 0; i < n; i++)
				printf("%lld %s %s\n", (long long)c[i].sandbox, c[i].path,
				       c[i].copy_path);
			store_conflict_list_free(c, n);
			rc = 0;
		}
	}
	store_close(g_st);
	return rc;
}
