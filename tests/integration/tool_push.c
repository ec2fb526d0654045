/*
 * tool_push — driver for shell integration tests and benchmarks of sync/.
 *
 *   tool_push run URL SCRIPT          stdin -> command, stdout <- command,
 *                                     exits with its status (transport_run)
 *   tool_push stream URL SCRIPT N     run SCRIPT N times over one transport,
 *                                     print the median latency in ms
 *
 *   tool_push sandbox DB NAME URL     add a sandbox to the store at DB
 *   tool_push j DB OP PATH [PATH2]    append one journal entry (op names as
 *                                     `hermes-fsctl log`: write, rename, ...)
 *   tool_push j DB -                  the same, one "OP\tPATH[\tPATH2]" per
 *                                     line of stdin
 *   tool_push push DB NAME ROOT [--retries N] [--backoff MS]
 *                  [--mutate RELPATH] [--ignore BASENAME]
 *                                     sync_push_run; prints its stats as
 *                                     key=value; exit 1 on failure.
 *                                     --mutate appends to RELPATH (and
 *                                     journals it) while it is being sent.
 *   tool_push ledger DB NAME          ledger rows: type mode size sha path
 *   tool_push cursor DB NAME          the sandbox's cursor
 *   tool_push bench DB NAME ROOT RELPATH N
 *                                     over one open transport, N times:
 *                                     rewrite RELPATH, journal it, push;
 *                                     prints the median push time in ms
 *   tool_push engine DB ROOT ACTION [NAME]
 *                                     the sync engine: ACTION is push, pull,
 *                                     flush or ifneeded; or `bg MS`: run the
 *                                     background thread until every sandbox
 *                                     is caught up or in error, or MS ms
 *                                     passed; or `bgfor MS`: run it for MS
 *                                     ms and print pushes=N (pushes done).
 *                                     Prints one status line per sandbox.
 *
 * Errors go to stderr as one line; exit 2 on a transport failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "sync/sync.h"

static char *read_all(int fd, size_t *len)
{
	size_t cap = 65536, n = 0;
	char *b = malloc(cap);
	ssize_t r;

	while (b && (r = read(fd, b + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap) {
			char *nb = realloc(b, cap *= 2);

			if (!nb) {
				free(b);
				return NULL;
			}
			b = nb;
		}
	}
	*len = n;
	return b;
}

static int cmd_run(const char *url, const char *script)
{
	struct transport *t;
	char *in, *out = NULL;
	size_t inlen = 0, outlen = 0;
	int rc, status = 0;

	rc = transport_open(url, NULL, &t);
	if (rc) {
		fprintf(stderr, "tool_push: open %s: %s\n", url,
			transport_open_error());
		return 2;
	}
	in = isatty(0) ? NULL : read_all(0, &inlen);
	rc = transport_run(t, script, in, inlen, &out, &outlen, &status);
	if (rc) {
		fprintf(stderr, "tool_push: run: %s (%s)\n", transport_error(t),
			strerror(-rc));
		status = 2;
	} else {
		fwrite(out, 1, outlen, stdout);
		if (status)
			fprintf(stderr, "%s\n", transport_error(t));
	}
	free(in);
	free(out);
	transport_close(t);
	return status;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmd_stream(const char *url, const char *script, int n)
{
	struct transport *t;
	int64_t *us = calloc((size_t)n, sizeof(*us));
	int i, rc, status;

	rc = transport_open(url, NULL, &t);
	if (rc || !us) {
		fprintf(stderr, "tool_push: open %s: %s\n", url,
			transport_open_error());
		return 2;
	}
	for (i = 0; i < n; i++) {
		int64_t t0 = now_us();

		rc = transport_run(t, script, NULL, 0, NULL, NULL, &status);
		if (rc) {
			fprintf(stderr, "tool_push: run: %s\n", transport_error(t));
			return 2;
		}
		us[i] = now_us() - t0;
	}
	qsort(us, (size_t)n, sizeof(*us), cmp_i64);
	printf("%.3f\n", us[n / 2] / 1000.0);
	free(us);
	transport_close(t);
	return 0;
}

static struct store *open_store(const char *db)
{
	struct store *st;
	int r = store_open(db, &st);

	if (r < 0) {
		fprintf(stderr, "tool_push: store %s: %s\n", db, strerror(-r));
		return NULL;
	}
	return st;
}

static int64_t sandbox_id(struct store *st, const char *name)
{
	struct store_sandbox sb;
	int64_t id;

	if (store_sandbox_get(st, name, &sb) < 0) {
		fprintf(stderr, "tool_push: no sandbox %s\n", name);
		return -1;
	}
	id = sb.id;
	store_sandbox_release(&sb);
	return id;
}

static int journal_one(struct store *st, char *op, char *path, char *path2)
{
	struct store_entry e = { .op = store_op_from_name(op), .path = path,
				 .path2 = path2, .time_ns = store_now_ns() };

	if (!e.op) {
		fprintf(stderr, "tool_push: unknown op %s\n", op);
		return -EINVAL;
	}
	return store_journal_append(st, &e, NULL);
}

static int cmd_journal(struct store *st, int argc, char **argv)
{
	char line[8192];
	int r = 0;

	if (argc >= 5)
		r = journal_one(st, argv[3], argv[4], argc > 5 ? argv[5] : NULL);
	else
		while (r == 0 && fgets(line, sizeof(line), stdin)) {
			char *op, *p1, *p2, *save = NULL;

			line[strcspn(line, "\n")] = '\0';
			op = strtok_r(line, "\t", &save);
			p1 = strtok_r(NULL, "\t", &save);
			p2 = strtok_r(NULL, "\t", &save);
			if (op && p1)
				r = journal_one(st, op, p1, p2);
		}
	return r ? r : store_journal_sync(st);
}

struct push_opts {
	int root_fd;
	const char *mutate;
	bool mutated;
	const char *ignore;
	struct store *st;
};

static void on_progress(const struct sync_push_progress *p, void *arg)
{
	struct push_opts *o = arg;
	struct store_entry e = { .op = STORE_OP_WRITE };
	int fd;

	if (!o->mutate || o->mutated || !p->path || strcmp(p->path, o->mutate))
		return;
	o->mutated = true;
	fd = openat(o->root_fd, o->mutate, O_WRONLY | O_APPEND);
	if (fd < 0 || write(fd, "mutated\n", 8) != 8)
		fprintf(stderr, "tool_push: mutate %s failed\n", o->mutate);
	if (fd >= 0)
		close(fd);
	e.path = o->mutate;
	e.time_ns = store_now_ns();
	store_journal_append(o->st, &e, NULL);
}

static bool on_ignore(const char *rel, bool is_dir, void *arg)
{
	const struct push_opts *o = arg;
	const char *base = strrchr(rel, '/');

	return o->ignore && !strcmp(base ? base + 1 : rel, o->ignore);
}

static void print_stats(int r, const struct sync_push_stats *s)
{
	printf("rc=%d entries=%lld uploaded=%lld skipped=%lld renamed=%lld "
	       "deleted=%lld mkdirs=%lld chmods=%lld changed=%lld bytes_sent=%lld "
	       "bytes_out=%lld attempts=%d cursor=%lld unreadable=%lld retry=%d conflicts=%lld\n", r,
	       (long long)s->entries, (long long)s->uploaded, (long long)s->skipped,
	       (long long)s->renamed, (long long)s->deleted, (long long)s->mkdirs,
	       (long long)s->chmods, (long long)s->changed_during_upload,
	       (long long)s->bytes_sent, (long long)s->bytes_out, s->attempts,
	       (long long)s->cursor, (long long)s->unreadable, s->retry_at_ns != 0,
	       (long long)s->conflicts);
	if (r)
		fprintf(stderr, "tool_push: push failed: %s\n", s->error);
	else if (s->error[0])
		fprintf(stderr, "tool_push: warning: %s\n", s->error);
}

static int cmd_push(struct store *st, int argc, char **argv)
{
	struct sync_push_config cfg = { .retries = -1, .backoff_ms = 50 };
	struct push_opts o = { .st = st };
	struct sync_push_stats stats;
	struct store_sandbox sb;
	struct transport *t = NULL;
	int r;

	for (int i = 5; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--retries"))
			cfg.retries = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--backoff"))
			cfg.backoff_ms = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--mutate"))
			o.mutate = argv[i + 1];
		else if (!strcmp(argv[i], "--ignore"))
			o.ignore = argv[i + 1];
	}
	cfg.progress = on_progress;
	cfg.progress_arg = &o;
	cfg.ignore = on_ignore;
	cfg.ignore_arg = &o;
	if (store_sandbox_get(st, argv[3], &sb) < 0) {
		fprintf(stderr, "tool_push: no sandbox %s\n", argv[3]);
		return -ENOENT;
	}
	o.root_fd = open(argv[4], O_RDONLY | O_DIRECTORY);
	r = o.root_fd < 0 ? -errno : transport_open(sb.url, NULL, &t);
	if (r < 0) {
		fprintf(stderr, "tool_push: open %s: %s\n", sb.url,
			transport_open_error());
		print_stats(r, &(struct sync_push_stats){ .attempts = 0 });
	} else {
		r = sync_push_run(st, sb.id, t, o.root_fd, &cfg, &stats);
		print_stats(r, &stats);
	}
	transport_close(t);
	if (o.root_fd >= 0)
		close(o.root_fd);
	store_sandbox_release(&sb);
	return r;
}

static int print_row(const struct store_ledger_row *row, void *arg)
{
	printf("%d %o %lld ", row->type, row->mode, (long long)row->size);
	for (int i = 0; i < STORE_SHA256_LEN; i++)
		printf("%02x", row->sha256[i]);
	printf(" %s\n", row->path);
	return 0;
}

static void print_status(struct sync_engine *e)
{
	struct sync_sandbox_status *v;
	size_t n;

	if (sync_engine_status(e, &v, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++)
		printf("%s state=%s pending=%lld cursor=%lld uploaded=%lld "
		       "bytes_sent=%lld pulled=%lld error=%s\n", v[i].name,
		       sync_sandbox_state_name(v[i].state), (long long)v[i].pending,
		       (long long)v[i].cursor, (long long)v[i].last_push.uploaded,
		       (long long)v[i].last_push.bytes_sent,
		       (long long)v[i].last_pull_applied, v[i].last_error);
	sync_engine_status_free(v, n);
}

/* Background until every sandbox is caught up or in error (or ms passed). */
static int engine_bg(struct sync_engine *e, int ms)
{
	int r = sync_engine_start_background(e);

	for (int waited = 0; r == 0 && waited < ms; waited += 50) {
		struct sync_sandbox_status *v;
		size_t n, busy = 0;

		usleep(50 * 1000);
		if (sync_engine_status(e, &v, &n) < 0)
			continue;
		for (size_t i = 0; i < n; i++)
			busy += (v[i].pending > 0 && v[i].state != SYNC_SB_ERROR) ||
				v[i].state == SYNC_SB_PUSHING;
		sync_engine_status_free(v, n);
		if (!busy)
			break;
	}
	sync_engine_stop(e);
	return r;
}

static void count_done(const char *name, bool is_pull, int rc,
		       const char *error, void *arg)
{
	if (!is_pull)
		__atomic_add_fetch((int *)arg, 1, __ATOMIC_RELAXED);
}

static int engine_bgfor(struct sync_engine *e, int ms, int *pushes)
{
	int r = sync_engine_start_background(e);

	if (r == 0)
		usleep((useconds_t)ms * 1000);
	sync_engine_stop(e);
	printf("pushes=%d\n", __atomic_load_n(pushes, __ATOMIC_RELAXED));
	return r;
}

static int cmd_engine(struct store *st, int argc, char **argv)
{
	int pushes = 0;
	struct sync_engine_config cfg = { .push = { .retries = -1 },
					  .pull = { .retries = -1 },
					  .on_done = count_done,
					  .on_done_arg = &pushes };
	const char *act = argv[4], *name = argc > 5 ? argv[5] : NULL;
	struct sync_engine *e;
	char err[256];
	int fd = open(argv[3], O_RDONLY | O_DIRECTORY), r;

	if (fd < 0)
		return -errno;
	cfg.push.backoff_ms = 100;
	r = sync_engine_new(st, fd, &cfg, &e);
	if (r < 0)
		return r;
	if (!strcmp(act, "push"))
		r = sync_engine_push(e, name);
	else if (!strcmp(act, "pull"))
		r = sync_engine_pull(e, name);
	else if (!strcmp(act, "flush"))
		r = sync_engine_flush(e, name);
	else if (!strcmp(act, "ifneeded") && name)
		r = sync_engine_push_if_needed(e, name);
	else if (!strcmp(act, "bg") && name)
		r = engine_bg(e, atoi(name));
	else if (!strcmp(act, "bgfor") && name)
		r = engine_bgfor(e, atoi(name), &pushes);
	else
		r = -EINVAL;
	printf("rc=%d\n", r);
	if (r < 0 && sync_engine_error(e, strncmp(act, "bg", 2) ? name : NULL,
				       err, sizeof(err)) == 0)
		fprintf(stderr, "tool_push: engine %s: %s\n", act, err);
	print_status(e);
	sync_engine_free(e);
	close(fd);
	return r;
}

static int cmd_bench(struct store *st, int argc, char **argv)
{
	struct sync_push_config cfg = { .retries = -1 };
	struct sync_push_stats stats;
	struct store_sandbox sb;
	struct transport *t = NULL;
	int n = atoi(argv[6]), r, fd = -1;
	int64_t *us = calloc((size_t)n + 1, sizeof(*us));
	int root = open(argv[4], O_RDONLY | O_DIRECTORY);

	if (!us || root < 0 || store_sandbox_get(st, argv[3], &sb) < 0)
		return -EINVAL;
	r = transport_open(sb.url, NULL, &t);
	for (int i = 0; r == 0 && i < n; i++) {
		struct store_entry e = { .op = STORE_OP_WRITE, .path = argv[5] };
		char buf[64];
		int64_t t0;

		fd = openat(root, argv[5], O_WRONLY | O_TRUNC);
		snprintf(buf, sizeof(buf), "bench round %d\n", i);
		if (fd < 0 || write(fd, buf, strlen(buf)) < 0)
			r = -errno;
		if (fd >= 0)
			close(fd);
		e.time_ns = store_now_ns();
		if (r == 0)
			r = store_journal_append(st, &e, NULL);
		if (r == 0)
			r = store_journal_sync(st);
		t0 = now_us();
		if (r == 0)
			r = sync_push_run(st, sb.id, t, root, &cfg, &stats);
		us[i] = now_us() - t0;
		if (r == 0 && stats.uploaded != 1)
			r = -EPROTO;
	}
	if (r == 0) {
		qsort(us, (size_t)n, sizeof(*us), cmp_i64);
		printf("%.1f\n", us[n / 2] / 1000.0);
	} else {
		fprintf(stderr, "tool_push: bench: %s (%s)\n", strerror(-r),
			t ? transport_error(t) : transport_open_error());
	}
	transport_close(t);
	store_sandbox_release(&sb);
	close(root);
	free(us);
	return r;
}

/* The store-backed commands; -ENOSYS when argv is none of them. */
static int store_cmd(int argc, char **argv)
{
	struct store *st;
	int64_t id, cur;
	int r = -ENOSYS;

	if (!strcmp(argv[1], "sandbox") && argc == 5) {
		if (!(st = open_store(argv[2])))
			return -EIO;
		r = store_sandbox_add(st, argv[3], argv[4], NULL);
	} else if (!strcmp(argv[1], "j") && argc >= 4) {
		if (!(st = open_store(argv[2])))
			return -EIO;
		r = cmd_journal(st, argc, argv);
	} else if (!strcmp(argv[1], "push") && argc >= 5) {
		if (!(st = open_store(argv[2])))
			return -EIO;
		r = cmd_push(st, argc, argv);
	} else if (!strcmp(argv[1], "bench") && argc == 7) {
		if (!(st = open_store(argv[2])))
			return -EIO;
		r = cmd_bench(st, argc, argv);
	} else if (!strcmp(argv[1], "engine") && argc >= 5) {
		if (!(st = open_store(argv[2])))
			return -EIO;
		r = cmd_engine(st, argc, argv);
	} else if ((!strcmp(argv[1], "ledger") || !strcmp(argv[1], "cursor")) &&
		   argc == 4) {
		if (!(st = open_store(argv[2])))
			return -EIO;
		r = id = sandbox_id(st, argv[3]);
		if (id >= 0 && argv[1][0] == 'l')
			r = store_ledger_foreach(st, id, NULL, print_row, NULL);
		else if (id >= 0 && (r = store_sandbox_cursor_get(st, id, &cur)) == 0)
			printf("%lld\n", (long long)cur);
	} else {
		return -ENOSYS;
	}
	store_close(st);
	return r < 0 ? r : 0;
}

int main(int argc, char **argv)
{
	int r;

	if (argc >= 3 && (r = store_cmd(argc, argv)) != -ENOSYS)
		return r < 0 ? 1 : 0;
	if (argc == 4 && !strcmp(argv[1], "run"))
		return cmd_run(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "stream"))
		return cmd_stream(argv[2], argv[3], atoi(argv[4]));
	fprintf(stderr, "usage: tool_push run URL SCRIPT | stream URL SCRIPT N | "
		"sandbox|j|push|ledger|cursor DB ... (see the source)\n");
	return 2;
}
