/*
 * test_fsctl.c — unit tests for the control plane pieces of fs/: the
 * control socket (real AF_UNIX socket, real threads, a real second uid),
 * the config parser and the ignore rules.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "fs/ctl_int.h"
#include "fs/log_int.h"

struct seen {
	pthread_mutex_t lock;
	int calls;
	char argv1[64];
	int argc;
};

static int handler(struct ctl_req *req, void *arg)
{
	struct seen *s = arg;

	pthread_mutex_lock(&s->lock);
	s->calls++;
	s->argc = req->argc;
	snprintf(s->argv1, sizeof(s->argv1), "%s", req->argc > 1 ? req->argv[1] : "");
	pthread_mutex_unlock(&s->lock);
	if (strcmp(req->argv[0], "sleep") == 0)
		usleep(300 * 1000);
	return atoi(req->argv[0]);
}

static void test_ctl_roundtrip(void **state)
{
	char dir[] = "/tmp/test_ctl.XXXXXX", path[128];
	struct seen s = { PTHREAD_MUTEX_INITIALIZER, 0, "", 0 };
	struct ctl_server *srv = NULL;
	char *argv[] = { "7", "hello world", "" };
	struct stat sb;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	assert_int_equal(ctl_server_start(path, handler, &s, &srv), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(ctl_client_call(path, 3, argv), 7);
	assert_int_equal(s.calls, 1);
	assert_int_equal(s.argc, 3);
	assert_string_equal(s.argv1, "hello world");
	ctl_server_stop(srv);
	assert_int_equal(stat(path, &sb), -1);	/* socket removed */
	argv[0] = "0";
	assert_true(ctl_client_call(path, 1, argv) < 0);	/* nobody there */
	rmdir(dir);
}

struct conc {
	const char *path;
	int rc;
};

static void *call_thread(void *arg)
{
	struct conc *c = arg;
	char *argv[] = { "sleep" };

	c->rc = ctl_client_call(c->path, 1, argv);
	return NULL;
}

/* Requests run concurrently: 4 x 300 ms finish well under 4 x 300 ms. */
static void test_ctl_concurrent(void **state)
{
	char dir[] = "/tmp/test_ctl.XXXXXX", path[128];
	struct seen s = { PTHREAD_MUTEX_INITIALIZER, 0, "", 0 };
	struct ctl_server *srv = NULL;
	struct conc c[4];
	pthread_t t[4];
	struct timespec a, b;
	int i;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	assert_int_equal(ctl_server_start(path, handler, &s, &srv), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < 4; i++) {
		c[i].path = path;
		pthread_create(&t[i], NULL, call_thread, &c[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(c[i].rc, 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_true((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < 1000);
	assert_int_equal(s.calls, 4);
	ctl_server_stop(srv);
	rmdir(dir);
}

/* Even with the socket made world-accessible, another uid is refused by
 * SO_PEERCRED and the handler never runs. */
static void test_ctl_other_uid_refused(void **state)
{
	char dir[] = "/tmp/test_ctl.XXXXXX", path[128];
	struct seen s = { PTHREAD_MUTEX_INITIALIZER, 0, "", 0 };
	struct ctl_server *srv = NULL;
	int status;
	pid_t pid;

	(void)state;
	if (geteuid() != 0)
		skip();
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	assert_int_equal(ctl_server_start(path, handler, &s, &srv), 0);
	chmod(dir, 0755);
	chmod(path, 0666);
	pid = fork();
	if (pid == 0) {
		char *argv[] = { "0" };

		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(99);
		_exit(ctl_client_call(path, 1, argv) == -EACCES ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(s.calls, 0);
	ctl_server_stop(srv);
	rmdir(dir);
}

static char *write_tmp(const char *text)
{
	static char path[64];
	FILE *f;

	strcpy(path, "/tmp/test_cfg.XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_config(void **state)
{
	struct config *c = NULL;
	char err[256] = "", *p;
	int64_t v;
	int ms[8], n;
	bool b;

	(void)state;
	p = write_tmp("# c\n[defaults]\nretry = 1, 2.5,4\nconflict = host-wins\n"
	    "max-file-size = 2M\nignore = *.sock\n\n[sandbox box 1]\n"
	    "conflict = remote-wins\nignore = build/\n");
	assert_int_equal(config_load(p, &c, err, sizeof(err)), 0);
	unlink(p);
	assert_string_equal(config_get(c, NULL, "conflict"), "host-wins");
	assert_string_equal(config_get(c, "box 1", "conflict"), "remote-wins");
	assert_string_equal(config_get(c, "other", "conflict"), "host-wins");
	assert_null(config_get(c, NULL, "parallel"));
	assert_int_equal(config_parse_retry(config_get(c, NULL, "retry"), ms, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(ms[1], 2500);
	assert_int_equal(config_parse_size(config_get(c, NULL, "max-file-size"), &v), 0);
	assert_int_equal(v, 2 << 20);
	assert_int_equal(config_set(c, NULL, "conflict", "remote-wins"), 0);
	assert_int_equal(config_set(c, NULL, "no-such-key", "1"), -EINVAL);
	assert_string_equal(config_get(c, NULL, "conflict"), "remote-wins");
	config_free(c);

	assert_int_equal(config_parse_size("12x", &v), -EINVAL);
	assert_int_equal(config_parse_bool("yes", &b), 0);
	assert_true(b);
	assert_int_equal(config_parse_bool("maybe", &b), -EINVAL);
	assert_int_equal(config_parse_retry("2,x", ms, 8, &n), -EINVAL);

	p = write_tmp("[defaults]\nbogus = 1\n");
	assert_int_equal(config_load(p, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: unknown key 'bogus'"));
	unlink(p);
	p = write_tmp("[weird]\n");
	assert_int_equal(config_load(p, &c, err, sizeof(err)), -EINVAL);
	unlink(p);
	assert_int_equal(config_load("/nonexistent/config", &c, err, sizeof(err)), 0);
	assert_null(config_get(c, NULL, "retry"));
	config_free(c);
	config_free(NULL);
}

static void test_ignore(void **state)
{
	struct ignore *ig = NULL;
	struct config *c = NULL;
	char err[128], *p;

	(void)state;
	p = write_tmp("ignore = *.sock\nignore = __pycache__/\nignore = /top.txt\n"
	    "ignore = venvs/\nignore = logs/**/*.log\nignore = *.tmp\n"
	    "ignore = !keep.tmp\nignore = data/[0-9]*.bin\n"
	    "[sandbox s]\nignore = only-s\n");
	assert_int_equal(config_load(p, &c, err, sizeof(err)), 0);
	unlink(p);
	assert_int_equal(ignore_from_config(c, "s", &ig), 0);
	assert_true(ignore_match(ig, "a.sock", false));
	assert_true(ignore_match(ig, "deep/er/x.sock", false));
	assert_false(ignore_match(ig, "a.socket", false));
	assert_true(ignore_match(ig, "pkg/__pycache__", true));
	assert_true(ignore_match(ig, "pkg/__pycache__/m.pyc", false));
	assert_false(ignore_match(ig, "pkg/__pycache__", false));	/* dir only */
	assert_true(ignore_match(ig, "top.txt", false));
	assert_false(ignore_match(ig, "sub/top.txt", false));	/* anchored */
	assert_true(ignore_match(ig, "venvs/py/bin/python", false));
	assert_true(ignore_match(ig, "logs/a.log", false));	/* ** = zero dirs */
	assert_true(ignore_match(ig, "logs/x/y/a.log", false));
	assert_false(ignore_match(ig, "logs/a.txt", false));
	assert_true(ignore_match(ig, "x.tmp", false));
	assert_false(ignore_match(ig, "keep.tmp", false));	/* negated */
	assert_true(ignore_match(ig, "data/1x.bin", false));
	assert_false(ignore_match(ig, "data/x1.bin", false));
	assert_true(ignore_match(ig, "only-s", false));
	assert_false(ignore_match(ig, "skills/run.sh", false));
	ignore_free(ig);
	assert_int_equal(ignore_from_config(c, "t", &ig), 0);
	assert_false(ignore_match(ig, "only-s", false));	/* other sandbox */
	assert_int_equal(ignore_add(ig, "/"), -EINVAL);
	ignore_free(ig);
	config_free(c);
}

/* Without a syslog socket a daemonized log goes to a file, one line per
 * message, rotated to FILE.1 past 4 MiB (so it never fills the disk). */
static void test_log_file(void **state)
{
	char dir[] = "/tmp/hermes-log.XXXXXX", path[64], old[80], msg[2001];
	struct stat st, st1;
	FILE *f;
	char line[4096];
	int lines = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/daemon.log", dir);
	snprintf(old, sizeof(old), "%s.1", path);
	hlog_init("t", true, path, HLOG_INFO);
	if (stat("/dev/log", &st) == 0 && S_ISSOCK(st.st_mode)) {
		assert_null(hlog_file());	/* syslog is there: used */
		return;
	}
	assert_string_equal(hlog_file(), path);
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	hlog(HLOG_DEBUG, "dropped: above the level");
	for (int i = 0; i < 2200; i++)	/* ~4.5 MiB */
		hlog(HLOG_WARN, "%d %s", i, msg);
	assert_int_equal(stat(old, &st1), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(st1.st_size > (4 << 20));
	assert_true(st.st_size < st1.st_size);
	assert_non_null(f = fopen(old, "r"));
	while (fgets(line, sizeof(line), f)) {
		assert_non_null(strstr(line, " t["));
		if (lines == 0 && strstr(line, "]: info: no syslog here"))
			continue;	/* the first line says where logs go */
		assert_non_null(strstr(line, "]: warning: "));
		assert_null(strstr(line, "dropped"));
		lines++;
	}
	fclose(f);
	assert_true(lines > 2000);
	unlink(path);
	unlink(old);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ctl_roundtrip),
		cmocka_unit_test(test_ctl_concurrent),
		cmocka_unit_test(test_ctl_other_uid_refused),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_ignore),
		cmocka_unit_test(test_log_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
