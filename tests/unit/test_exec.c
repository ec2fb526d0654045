/*
 * test_exec.c — exec/ against the real local transport and real bash in a
 * temporary directory: snapshot persistence, cwd tracking, exit paths,
 * timeouts and cancellation (with the process group checked gone), binary
 * and bounded output, forged markers, stdin; plus the output buffers and
 * marker filter on their own.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "exec/exec.h"
#include "exec/exec_int.h"
#include "sync/sync.h"

struct fx {
	char root[64];
	bool no_spare;
	char *url;
	struct transport *t;
	struct exec_session *s;
	int before_calls;
	int before_rc;
};

static int before(void *arg)
{
	struct fx *f = arg;

	f->before_calls++;
	return f->before_rc;
}

static int fx_open(struct fx *f, size_t cap)
{
	struct exec_config cfg = { 0 };

	cfg.t = f->t;
	cfg.cwd = f->root;	/* for cmd:, whose root is "/" */
	cfg.before_run = before;
	cfg.arg = f;
	cfg.output_cap = cap;
	cfg.no_spare = f->no_spare;
	return exec_session_new(&cfg, &f->s);
}

/* local: runs bash as the group leader (flat), on spares unless
 * no_spare; cmd:env runs the same commands through the nested shape with
 * kills through the transport. */
static int setup_url(void **state, bool cmd, bool no_spare)
{
	struct fx *f = calloc(1, sizeof(*f));

	f->no_spare = no_spare;
	strcpy(f->root, "/tmp/hermes-exec-unit.XXXXXX");
	if (!mkdtemp(f->root))
		return -1;
	if ((cmd ? asprintf(&f->url, "cmd:env")
		 : asprintf(&f->url, "local:%s", f->root)) < 0)
		return -1;
	if (transport_open(f->url, NULL, &f->t) || fx_open(f, 0))
		return -1;
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_url(state, false, false);
}

/* local: with every call on a fresh bash (the path calls with stdin take) */
static int setup_fresh(void **state)
{
	return setup_url(state, false, true);
}

static int setup_cmd(void **state)
{
	return setup_url(state, true, false);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char *cmd;

	exec_session_free(f->s);
	transport_close(f->t);
	if (asprintf(&cmd, "rm -rf '%s'", f->root) >= 0) {
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup failed\n");
		free(cmd);
	}
	free(f->url);
	free(f);
	return 0;
}

static int run_ex(struct fx *f, const char *cmd, const char *in, bool *spare,
		  char **out)
{
	struct exec_request rq = { .command = cmd, .stdin_buf = in,
				   .stdin_len = in ? strlen(in) : 0 };
	struct exec_result res;
	int status;

	assert_int_equal(exec_run(f->s, &rq, &res), 0);
	*spare = res.spare;
	if (out) {
		*out = res.output;
		res.output = NULL;
	}
	status = res.status;
	exec_result_release(&res);
	return status;
}

/* Run cmd; returns the status; output in *out (caller frees) if out. */
static int run(struct fx *f, const char *cmd, char **out)
{
	bool spare;

	return run_ex(f, cmd, NULL, &spare, out);
}

static void assert_cwd(struct fx *f, const char *rel)
{
	char *c = exec_session_cwd(f->s), want[256];

	snprintf(want, sizeof(want), "%s%s%s", f->root, *rel ? "/" : "", rel);
	assert_string_equal(c, want);
	free(c);
}

static void test_persist(void **state)
{
	struct fx *f = *state;
	char *out;

	assert_true(exec_session_snapshot_ok(f->s));
	assert_int_equal(run(f, "echo $HX_PROFILE; hx_prof_fn 1; hx_prof_al", &out), 0);
	assert_string_equal(out, "from-profile\nprof:1\nprofal\n");
	free(out);
	assert_int_equal(run(f, "export HX_VAR='a b'; hx_fn() { echo \"fn:$1\"; }; "
			 "alias hx_al='echo aliased'; mkdir -p d1/d2; cd d1/d2", NULL), 0);
	assert_cwd(f, "d1/d2");
	assert_int_equal(run(f, "echo \"$HX_VAR\"; hx_fn x; hx_al", &out), 0);
	assert_string_equal(out, "a b\nfn:x\naliased\n");
	free(out);
	assert_int_equal(run(f, "pwd", &out), 0);
	assert_true(strstr(out, "/d1/d2\n") != NULL);
	free(out);
	/* unset and unalias persist too; a non-exported var does not */
	assert_int_equal(run(f, "unset HX_VAR; unalias hx_al; unset -f hx_fn; "
			 "HX_LOCAL=1; cd ..", NULL), 0);
	assert_int_equal(run(f, "echo \"[${HX_VAR-}][${HX_LOCAL-}]\"; type hx_fn "
			 "hx_al >/dev/null 2>&1 || echo gone", &out), 0);
	assert_string_equal(out, "[][]\ngone\n");
	free(out);
	assert_cwd(f, "d1");
	assert_int_equal(f->before_calls, 6);
}

static void test_exit_paths(void **state)
{
	struct fx *f = *state;
	char *out;

	assert_int_equal(run(f, "mkdir -p a b c; cd a; exit 3", NULL), 3);
	assert_cwd(f, "a");
	/* bash -c exits 127 here, a subshell 1: either way not 0 */
	assert_int_not_equal(run(f, "cd ../b; set -u; echo $HX_UNSET_VAR; echo no", &out), 0);
	assert_non_null(strstr(out, "unbound variable"));
	assert_null(strstr(out, "no\n"));
	free(out);
	assert_cwd(f, "b");
	assert_int_equal(run(f, "set -e; cd ../c; false; echo no", NULL), 1);
	assert_cwd(f, "c");
	assert_int_equal(run(f, "exec true", NULL), 0);
	assert_cwd(f, "c");
	assert_int_equal(run(f, "exec sh -c 'exit 7'", NULL), 7);
	assert_cwd(f, "c");
	assert_int_equal(run(f, "kill -TERM $BASHPID", NULL), 143);
	assert_int_equal(run(f, "if then", NULL), 2);	/* syntax error */
	assert_int_equal(run(f, "pwd", &out), 0);	/* still usable */
	assert_true(strstr(out, "/c\n") != NULL);
	free(out);
}

/* Quick commands leave nothing of the wrapper in the output (the nested
 * shape once leaked a job-control "Done" line when the job won a race). */
static void test_no_wrapper_noise(void **state)
{
	struct fx *f = *state;
	char *out;
	int i;

	for (i = 0; i < 8; i++) {
		assert_int_equal(run(f, "true", &out), 0);
		assert_string_equal(out, "");
		free(out);
	}
}

static void test_cwd_gone(void **state)
{
	struct fx *f = *state;
	struct exec_request rq = { .command = "echo hi" };
	struct exec_result res;

	assert_int_equal(run(f, "mkdir -p gone; cd gone", NULL), 0);
	assert_cwd(f, "gone");
	assert_int_equal(run(f, "rmdir ../gone", NULL), 0);
	assert_int_equal(exec_run(f->s, &rq, &res), 0);
	assert_int_equal(res.status, 126);
	assert_true(res.cwd_reset);
	assert_non_null(strstr(res.output, "no longer exists"));
	assert_null(strstr(res.output, "hi"));
	exec_result_release(&res);
	assert_cwd(f, "");
	assert_int_equal(run(f, "true", NULL), 0);
}

static void test_cwd_override(void **state)
{
	struct fx *f = *state;
	struct exec_request rq = { .command = "pwd; export HX_OV=1",
				   .cwd_override = "sub" };
	struct exec_result res;
	char *out;

	assert_int_equal(run(f, "mkdir sub", NULL), 0);
	assert_int_equal(exec_run(f->s, &rq, &res), 0);
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(res.output, "/sub\n"));
	exec_result_release(&res);
	assert_cwd(f, "");
	assert_int_equal(run(f, "echo $HX_OV", &out), 0);
	assert_string_equal(out, "1\n");
	free(out);
	rq.cwd_override = "/nonexistent-hx";
	assert_int_equal(exec_run(f->s, &rq, &res), 0);
	assert_int_equal(res.status, 126);
	exec_result_release(&res);
}

static pid_t read_pid(struct fx *f, const char *name)
{
	char path[256];
	FILE *fp;
	long v = 0;

	snprintf(path, sizeof(path), "%s/%s", f->root, name);
	fp = fopen(path, "r");
	assert_non_null(fp);
	assert_int_equal(fscanf(fp, "%ld", &v), 1);
	fclose(fp);
	return (pid_t)v;
}

/* The group is gone once no process is left in it; orphans killed with
 * it are reaped by init, which may take a moment. */
static void assert_group_gone(pid_t pg)
{
	int i;

	for (i = 0; i < 200 && kill(-pg, 0) == 0; i++)
		usleep(50000);
	assert_int_equal(kill(-pg, 0), -1);
	assert_int_equal(errno, ESRCH);
}

static void test_timeout(void **state)
{
	struct fx *f = *state;
	struct exec_request rq = {
		.command = "echo $BASHPID > pg; echo partial; sleep 60 & "
			   "echo $! > bg; sleep 60; echo never",
		.timeout_s = 1,
	};
	struct exec_result res;

	assert_int_equal(exec_run(f->s, &rq, &res), 0);
	assert_int_equal(res.status, 124);
	assert_true(res.timed_out);
	assert_true(res.killed_verified);
	/* local: the first call waits for the session's first spare */
	assert_int_equal(res.spare, !f->no_spare && !strncmp(f->url, "local:", 6));
	assert_string_equal(res.output, "partial\n");
	exec_result_release(&res);
	assert_group_gone(read_pid(f, "pg"));
	assert_int_equal(run(f, "true", NULL), 0);
}

static bool pid_live(pid_t pid)
{
	char path[64], buf[512], *r;
	bool live = false;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (!fp)
		return false;
	if (fgets(buf, sizeof(buf), fp) && (r = strrchr(buf, ')')))
		live = r[1] == ' ' && r[2] != 'Z';
	fclose(fp);
	return live;
}

/* A command's background jobs outlive it, also when they keep the output
 * open, and the call still returns. */
static void test_background_survives(void **state)
{
	struct fx *f = *state;
	pid_t a, b;
	char *out;

	assert_int_equal(run(f, "sleep 30 >/dev/null 2>&1 & echo $! > bg1; "
			 "sleep 30 & echo $! > bg2; echo started", &out), 0);
	assert_string_equal(out, "started\n");
	free(out);
	a = read_pid(f, "bg1");
	b = read_pid(f, "bg2");
	assert_int_equal(run(f, "true", NULL), 0);
	assert_true(pid_live(a));
	assert_true(pid_live(b));
	kill(a, SIGKILL);
	kill(b, SIGKILL);
}

static void *cancel_later(void *arg)
{
	struct fx *f = arg;

	usleep(300000);
	exec_cancel(f->s);
	return NULL;
}

static void test_cancel(void **state)
{
	struct fx *f = *state;
	struct exec_request rq = {
		.command = "echo $BASHPID > pg; echo started; "
			   "trap '' TERM; sleep 60",	/* TERM ignored: KILL needed */
	};
	struct exec_result res;
	volatile int flag = 1;
	pthread_t th;

	pthread_create(&th, NULL, cancel_later, f);
	assert_int_equal(exec_run(f->s, &rq, &res), 0);
	pthread_join(th, NULL);
	assert_int_equal(res.status, 130);
	assert_true(res.interrupted);
	assert_string_equal(res.output, "started\n");
	exec_result_release(&res);
	assert_group_gone(read_pid(f, "pg"));
	/* the request's own flag, set before the start */
	rq.command = "sleep 60";
	rq.cancel = &flag;
	assert_int_equal(exec_run(f->s, &rq, &res), 0);
	assert_int_equal(res.status, 130);
	assert_true(res.killed_verified);
	exec_result_release(&res);
}

static void test_binary_and_streams(void **state)
{
	struct fx *f = *state;
	unsigned char data[70000];
	char path[256];
	struct exec_request rq = { .command = "cat bin.dat; printf E >&2",
				   .separate_streams = true };
	struct exec_result res;
	size_t i;
	FILE *fp;

	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)((i * 7919) ^ (i >> 5));
	memcpy(data + 1000, "\036HERMES:", 8);	/* a marker start, wrong nonce */
	data[5000] = 0x1e;
	snprintf(path, sizeof(path), "%s/bin.dat", f->root);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, sizeof(data), fp), sizeof(data));
	fclose(fp);
	assert_int_equal(exec_run(f->s, &rq, &res), 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.out_len, sizeof(data));
	assert_memory_equal(res.out, data, sizeof(data));
	assert_int_equal(res.err_len, 1);
	assert_int_equal(res.err[0], 'E');
	assert_int_equal(res.output_len, sizeof(data) + 1);
	exec_result_release(&res);
}

static void test_huge_output(void **state)
{
	struct fx *f = *state;
	struct exec_session *big = f->s;
	struct exec_request rq = { .command = "seq 1 300000" };
	struct exec_result res;

	assert_int_equal(fx_open(f, 65536), 0);
	assert_int_equal(exec_run(f->s, &rq, &res), 0);
	assert_int_equal(res.status, 0);
	assert_true(res.truncated);
	assert_true(res.output_len < 65536 + 100);
	assert_memory_equal(res.output, "1\n2\n3\n", 6);
	assert_string_equal(res.output + res.output_len - 14, "299999\n300000\n");
	assert_non_null(strstr(res.output, "bytes of output omitted]"));
	exec_result_release(&res);
	exec_session_free(f->s);
	f->s = big;
}

static void test_forged_marker(void **state)
{
	struct fx *f = *state;
	char *out;

	assert_int_equal(run(f, "mkdir -p here; cd here", NULL), 0);
	assert_int_equal(run(f, "printf '\\036HERMES:0123456789abcdef0123456789abcdef:"
			 "E9:0:S:/etc\\n'; printf '\\036HERMES:'", &out), 0);
	assert_string_equal(out, "\036HERMES:0123456789abcdef0123456789abcdef:"
			    "E9:0:S:/etc\n\036HERMES:");
	free(out);
	assert_cwd(f, "here");
}

static void test_stdin(void **state)
{
	struct fx *f = *state;
	static const char in[] = "line1\n\0bin\377ary\n";
	struct exec_request rq = { .command = "cat; echo; cat </dev/null",
				   .stdin_buf = in, .stdin_len = sizeof(in) - 1 };
	struct exec_result res;

	assert_int_equal(exec_run(f->s, &rq, &res), 0);
	assert_int_equal(res.status, 0);
	assert_int_equal(res.output_len, sizeof(in));
	assert_memory_equal(res.output, in, sizeof(in) - 1);
	exec_result_release(&res);
	/* no stdin given: EOF at once, never a hang */
	rq.stdin_buf = NULL;
	rq.stdin_len = 0;
	rq.command = "cat; echo done";
	assert_int_equal(exec_run(f->s, &rq, &res), 0);
	assert_string_equal(res.output, "done\n");
	exec_result_release(&res);
}

static void test_before_run_fails(void **state)
{
	struct fx *f = *state;
	struct exec_request rq = { .command = "touch ran" };
	struct exec_result res;
	char path[256];

	f->before_rc = -EIO;
	assert_int_equal(exec_run(f->s, &rq, &res), -EIO);
	assert_non_null(strstr(exec_session_error(f->s), "before-run"));
	snprintf(path, sizeof(path), "%s/ran", f->root);
	assert_int_equal(access(path, F_OK), -1);
	f->before_rc = 0;
}

static void test_snapshot_private(void **state)
{
	struct fx *f = *state;
	char path[512];
	struct stat st;

	assert_int_equal(stat(f->s->dir, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	snprintf(path, sizeof(path), "%s/snap.0", f->s->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(strncmp(f->s->dir, "/tmp/hermes-exec.", 17), 0);
	assert_true(strlen(f->s->dir) >= 27);	/* 10 random characters */
	assert_int_equal(run(f, "export HX_P=1", NULL), 0);
	snprintf(path, sizeof(path), "%s/snap.1", f->s->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

/* Live processes whose command line carries this session's nonce: a spare
 * (its boot script has it) or a running command. Up to max pids. */
static int nonce_procs(const char *nonce, pid_t *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[300], buf[65536];
		size_t len, i;
		FILE *fp;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		if (!(fp = fopen(path, "r")))
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, fp);
		fclose(fp);
		for (i = 0; i < len; i++)
			if (!buf[i])
				buf[i] = ' ';
		buf[len] = '\0';
		if (strstr(buf, nonce) && pid_live(atoi(e->d_name))) {
			if (n < max)
				pids[n] = atoi(e->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* Wait until exactly one spare is up (between calls nothing else runs). */
static pid_t wait_spare(struct fx *f)
{
	pid_t pid = 0;
	int i;

	for (i = 0; i < 200; i++) {
		if (nonce_procs(f->s->nonce, &pid, 1) == 1)
			return pid;
		usleep(25000);
	}
	fail_msg("no spare came up");
	return 0;
}

/*
 * Spares: a spare runs nothing until a call is sent to it and reads the
 * session state at that time (a change made after the spare started is
 * seen); calls with stdin start fresh; a spare that died idle is replaced
 * by a fresh start transparently; none is left after the session ends.
 */
static void test_spare(void **state)
{
	struct fx *f = *state;
	char nonce[EXEC_NONCE_HEX + 1], want[256], *out;
	pid_t p1, p2, p3, left[4];
	bool spare;

	assert_int_equal(run_ex(f, "true", NULL, &spare, NULL), 0);
	assert_true(spare);
	p1 = wait_spare(f);
	/* runs fresh (stdin): the idle spare p1 predates this change */
	assert_int_equal(run_ex(f, "read -r HX_LATE; export HX_LATE; "
				"hx_late() { echo fn; }; mkdir -p sub; cd sub",
				"late\n", &spare, NULL), 0);
	assert_false(spare);
	assert_int_equal(wait_spare(f), p1);
	usleep(2100000);	/* $SECONDS counts from the call, not the spare */
	assert_int_equal(run_ex(f, "echo \"$HX_LATE $BASHPID\"; hx_late; pwd; "
				"(( SECONDS < 2 )) && echo fresh", NULL, &spare,
				&out), 0);
	assert_true(spare);
	snprintf(want, sizeof(want), "late %d\nfn\n%s/sub\nfresh\n", (int)p1,
		 f->root);
	assert_string_equal(out, want);
	free(out);
	assert_cwd(f, "sub");
	/* the used spare is gone; the next one is another process */
	p2 = wait_spare(f);
	assert_int_not_equal(p2, p1);
	assert_false(pid_live(p1));
	/* a spare killed while idle: the call still runs, fresh */
	assert_int_equal(kill(p2, SIGKILL), 0);
	while (pid_live(p2))
		usleep(10000);
	assert_int_equal(run_ex(f, "echo ok", NULL, &spare, &out), 0);
	assert_string_equal(out, "ok\n");
	assert_false(spare);
	free(out);
	p3 = wait_spare(f);
	assert_int_equal(run_ex(f, "true", NULL, &spare, NULL), 0);
	assert_true(spare);
	assert_false(pid_live(p3));
	wait_spare(f);
	/* session end: the spare exits having run nothing, and is reaped */
	memcpy(nonce, f->s->nonce, sizeof(nonce));
	exec_session_free(f->s);
	f->s = NULL;
	assert_int_equal(nonce_procs(nonce, left, 4), 0);
}

/* A call with stdin right at the start (the first spare may still be
 * starting) runs fresh, and the calls after it get spares: a spare asked
 * for while one was starting once left `want` set with one ready, and the
 * next call waited forever (a race; this exercises it, not forces it). */
static void test_spare_stdin_first(void **state)
{
	struct fx *f = *state;
	bool spare;
	char *out;
	int i;

	for (i = 0; i < 3; i++) {
		exec_session_free(f->s);
		f->s = NULL;
		assert_int_equal(fx_open(f, 0), 0);
		assert_int_equal(run_ex(f, "cat", "in", &spare, &out), 0);
		assert_string_equal(out, "in");
		assert_false(spare);
		free(out);
		assert_int_equal(run_ex(f, "true", NULL, &spare, NULL), 0);
		assert_true(spare);
		assert_int_equal(run_ex(f, "true", NULL, &spare, NULL), 0);
		assert_true(spare);
	}
}

/* A spare never runs what it was not sent: EOF without a complete state
 * (session end, a cut transfer) ends it with nothing run. */
static void test_spare_partial(void **state)
{
	struct fx *f = *state;
	struct exec_script_args a = { .dir = f->s->dir, .nonce = f->s->nonce,
				      .snapshot = true, .flat = true,
				      .env_cleared = true,
				      .initial_cwd = f->root, .cwd = f->root,
				      .command = "touch ran" };
	char *boot = exec_script_spare(&a), *blob = exec_script_blob(&a);
	size_t cuts[] = { 0, 5, strlen(blob) / 2, strlen(blob) - 9 };
	char path[256], buf[4096];
	unsigned i;

	assert_non_null(boot);
	assert_non_null(blob);
	snprintf(path, sizeof(path), "%s/ran", f->root);
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		struct transport_proc *p = NULL;
		int status = -1, stream;
		size_t got = 0;
		ssize_t r;

		assert_int_equal(transport_spawn(f->t, boot, &p), 0);
		assert_int_equal(transport_proc_write(p, blob, cuts[i]), 0);
		assert_int_equal(transport_proc_close_stdin(p), 0);
		while ((r = transport_proc_read(p, buf + got, sizeof(buf) - 1 - got,
						&stream, 10000)) > 0)
			got += (size_t)r;
		assert_int_equal(r, 0);
		buf[got] = '\0';
		assert_int_equal(transport_proc_wait(p, &status), 0);
		transport_proc_free(p);
		assert_int_equal(status, 0);
		assert_null(strstr(buf, ":P"));	/* never reached the command */
		assert_int_equal(access(path, F_OK), -1);
	}
	free(boot);
	free(blob);
}

/* ---- buffers and filter without a shell ---- */

static char got_text[256];
static size_t got_len;
static char got_marker[64];

static void t_text(void *arg, const char *p, size_t n)
{
	memcpy(got_text + got_len, p, n);
	got_len += n;
}

static void t_marker(void *arg, char type, const char *p, size_t n)
{
	size_t l = strlen(got_marker);

	snprintf(got_marker + l, sizeof(got_marker) - l, "%c[%.*s]", type,
		 (int)n, p);
}

static void test_mfilter_split(void **state)
{
	static const char in[] = "a\036HERMES:n1:E3:x:yb\036HERMES:n\036c"
				 "\036HERMES:n1:Q:z\036HERMES:n1:E9999999:"
				 "\036HERM";
	struct mfilter mf;
	size_t step, i, n = sizeof(in) - 1;

	for (step = 1; step <= n; step++) {
		assert_int_equal(mfilter_init(&mf, "n1"), 0);
		mf.on_text = t_text;
		mf.on_marker = t_marker;
		got_len = 0;
		got_marker[0] = '\0';
		for (i = 0; i < n; i += step)
			mfilter_feed(&mf, in + i, i + step < n ? step : n - i);
		mfilter_flush(&mf);
		mfilter_release(&mf);
		got_text[got_len] = '\0';
		/* the over-long E marker is dropped */
		assert_string_equal(got_marker, "E[x:y]");
		assert_int_equal(got_len, 19);
		assert_memory_equal(got_text, "ab\036HERMES:n\036cz\036HERM", 19);
	}
}

static void test_capbuf(void **state)
{
	struct capbuf b;
	char *out, chunk[7];
	size_t len, i;
	bool trunc = false;

	capbuf_init(&b, 10);
	for (i = 0; i < 100; i++) {
		snprintf(chunk, sizeof(chunk), "%c", (int)('A' + i % 26));
		assert_int_equal(capbuf_add(&b, chunk, 1), 0);
	}
	assert_int_equal(capbuf_take(&b, &out, &len, &trunc), 0);
	assert_true(trunc);
	assert_memory_equal(out, "ABCDE", 5);
	assert_string_equal(out + len - 5, "RSTUV");
	assert_non_null(strstr(out, "[hermes: 90 bytes of output omitted]"));
	free(out);
	capbuf_release(&b);
	capbuf_init(&b, 10);
	trunc = false;
	assert_int_equal(capbuf_add(&b, "0123456789", 10), 0);
	assert_int_equal(capbuf_take(&b, &out, &len, &trunc), 0);
	assert_false(trunc);
	assert_int_equal(len, 10);
	assert_string_equal(out, "0123456789");
	free(out);
	assert_int_equal(capbuf_add(&b, "abcdefghijklmnop", 16), 0);
	assert_int_equal(capbuf_take(&b, &out, &len, &trunc), 0);
	assert_true(trunc);
	assert_memory_equal(out, "01234", 5);
	assert_string_equal(out + len - 5, "lmnop");
	free(out);
	capbuf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mfilter_split),
		cmocka_unit_test(test_capbuf),
		cmocka_unit_test_setup_teardown(test_persist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cwd_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cwd_override, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_background_survives, setup, teardown),
		cmocka_unit_test_setup_teardown(test_binary_and_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_marker, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_before_run_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_private, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spare, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spare_partial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spare_stdin_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persist, setup_fresh, teardown),
		cmocka_unit_test_setup_teardown(test_exit_paths, setup_fresh, teardown),
		cmocka_unit_test_setup_teardown(test_cwd_gone, setup_fresh, teardown),
		cmocka_unit_test_setup_teardown(test_cwd_override, setup_fresh, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup_fresh, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup_fresh, teardown),
		cmocka_unit_test_setup_teardown(test_persist, setup_cmd, teardown),
		cmocka_unit_test_setup_teardown(test_exit_paths, setup_cmd, teardown),
		cmocka_unit_test_setup_teardown(test_no_wrapper_noise, setup_cmd, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup_cmd, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup_cmd, teardown),
		cmocka_unit_test_setup_teardown(test_background_survives, setup_cmd, teardown),
	};

	char home[] = "/tmp/hermes-exec-home.XXXXXX", path[128], *cmd;
	FILE *fp;
	int rc;

	/* A known login environment: the snapshot must capture what the
	 * profile defines, and the test must not depend on the machine's. */
	if (!mkdtemp(home))
		return 1;
	snprintf(path, sizeof(path), "%s/.profile", home);
	fp = fopen(path, "w");
	if (!fp)
		return 1;
	fputs("export HX_PROFILE=from-profile\n"
	      "hx_prof_fn() { echo \"prof:$1\"; }\n"
	      "alias hx_prof_al='echo profal'\n", fp);
	fclose(fp);
	setenv("HOME", home, 1);
	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	if (asprintf(&cmd, "rm -rf '%s'", home) >= 0) {
		if (system(cmd) != 0)
			rc = 1;
		free(cmd);
	}
	return rc;
}
