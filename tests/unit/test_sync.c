/*
 * test_sync.c — unit tests of sync/: URL parsing, quoting, word splitting,
 * local and cmd transports (real child processes), SHA-256 helpers.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sync/sync.h"

static void test_url_check(void **state)
{
	const char *why;

	assert_int_equal(transport_url_check("local:/tmp/x", &why), 0);
	assert_int_equal(transport_url_check("local:rel", &why), -EINVAL);
	assert_non_null(why);
	assert_int_equal(transport_url_check("ssh://u@h:2222/r", &why), 0);
	assert_int_equal(transport_url_check("ssh://h/r", NULL), 0);
	assert_int_equal(transport_url_check("ssh://[::1]:22/r", NULL), 0);
	assert_int_equal(transport_url_check("ssh://h", NULL), -EINVAL);
	assert_int_equal(transport_url_check("ssh://h:0/r", NULL), -EINVAL);
	assert_int_equal(transport_url_check("ssh://h:x/r", NULL), -EINVAL);
	assert_int_equal(transport_url_check("ssh://@h/r", NULL), -EINVAL);
	assert_int_equal(transport_url_check("cmd:docker exec -i c", NULL), 0);
	assert_int_equal(transport_url_check("cmd:env#/srv/r", NULL), 0);
	assert_int_equal(transport_url_check("cmd:", NULL), -EINVAL);
	assert_int_equal(transport_url_check("cmd:sh 'unbalanced", NULL), -EINVAL);
	assert_int_equal(transport_url_check("ftp://h/r", &why), -EINVAL);
	assert_int_equal(transport_url_check("local:/a/../b", NULL), -EINVAL);
}

static void test_shell_quote(void **state)
{
	struct transport *t;
	char *q = sync_shell_quote("it's $HOME `x` \"y\"");
	char *script, *out;
	size_t len;

	assert_string_equal(q, "'it'\\''s $HOME `x` \"y\"'");
	assert_int_equal(transport_open("local:/", NULL, &t), 0);
	assert_int_equal(asprintf(&script, "printf %%s %s", q), (int)strlen(q) + 10);
	assert_int_equal(transport_run(t, script, NULL, 0, &out, &len, NULL), 0);
	assert_string_equal(out, "it's $HOME `x` \"y\"");
	free(out);
	free(script);
	free(q);
	transport_close(t);
}

static void test_local_run(void **state)
{
	char dir[] = "/tmp/hermes-unit.XXXXXX";
	struct transport *t;
	char *url, *out;
	size_t len;
	int status;

	assert_non_null(mkdtemp(dir));
	assert_true(asprintf(&url, "local:%s/", dir) > 0);
	assert_int_equal(transport_open(url, NULL, &t), 0);
	assert_string_equal(transport_root(t), dir);
	assert_string_equal(transport_kind(t), "local");
	assert_int_equal(transport_run(t, "pwd; cat; echo err >&2; exit 3",
				       "in", 2, &out, &len, &status), 0);
	assert_int_equal(status, 3);
	assert_non_null(strstr(out, "in"));
	assert_non_null(strstr(transport_error(t), "err"));
	free(out);
	assert_int_equal(transport_run(t, "exit 4", NULL, 0, NULL, NULL, NULL), -EIO);
	assert_int_equal(transport_run(t, "kill -9 $$", NULL, 0, NULL, NULL, &status), 0);
	assert_int_equal(status, 128 + 9);
	transport_close(t);
	rmdir(dir);
	free(url);
}

/* Large input and output at once: the writer thread must avoid deadlock. */
static void test_local_bulk(void **state)
{
	size_t n = 8 << 20, len, i;
	char *in = malloc(n), *out;
	struct transport *t;

	for (i = 0; i < n; i++)
		in[i] = (char)(i * 7);
	assert_int_equal(transport_open("local:/tmp", NULL, &t), 0);
	assert_int_equal(transport_run(t, "cat", in, n, &out, &len, NULL), 0);
	assert_int_equal(len, n);
	assert_memory_equal(in, out, n);
	free(out);
	free(in);
	transport_close(t);
}

static void test_proc_stream_kill(void **state)
{
	struct transport *t;
	struct transport_proc *p;
	char buf[64];
	int stream, status;
	ssize_t n;

	assert_int_equal(transport_open("local:/tmp", NULL, &t), 0);
	assert_int_equal(transport_spawn(t, "read x; echo got $x; sleep 30 & wait", &p), 0);
	assert_int_equal(transport_proc_write(p, "hi\n", 3), 0);
	n = transport_proc_read(p, buf, sizeof(buf), &stream, 5000);
	assert_int_equal(n, 7);
	assert_int_equal(stream, 1);
	assert_memory_equal(buf, "got hi\n", 7);
	assert_int_equal(transport_proc_read(p, buf, sizeof(buf), &stream, 50), -ETIMEDOUT);
	assert_int_equal(transport_proc_kill(p, SIGTERM), 0);
	/* The group kill reaches the backgrounded sleep too: EOF comes fast. */
	assert_int_equal(transport_proc_read(p, buf, sizeof(buf), &stream, 5000), 0);
	assert_int_equal(transport_proc_wait(p, &status), 0);
	assert_int_equal(status, 128 + SIGTERM);
	transport_proc_free(p);
	/* Writing to a command that exited gives -EPIPE, not a SIGPIPE death. */
	assert_int_equal(transport_spawn(t, "exec 0<&-; exit 0", &p), 0);
	assert_int_equal(transport_proc_wait(p, &status), 0);
	assert_int_equal(transport_proc_write(p, "x", 1), -EPIPE);
	transport_proc_free(p);
	transport_close(t);
}

static void test_cmd_transport(void **state)
{
	struct transport *t;
	char *out;
	size_t len;

	assert_int_equal(transport_open("cmd:env 'HX=a b' \"HY=c\\\"d\"#/tmp/", NULL, &t), 0);
	assert_string_equal(transport_root(t), "/tmp");
	assert_string_equal(transport_kind(t), "cmd");
	assert_int_equal(transport_run(t, "printf '%s|%s' \"$HX\" \"$HY\"", NULL, 0,
				       &out, &len, NULL), 0);
	assert_string_equal(out, "a b|c\"d");
	free(out);
	transport_close(t);
	assert_int_equal(transport_open("cmd:/nonexistent/binary", NULL, &t), 0);
	assert_int_equal(transport_run(t, "true", NULL, 0, NULL, NULL, NULL), -EIO);
	transport_close(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_check),
		cmocka_unit_test(test_shell_quote),
		cmocka_unit_test(test_local_run),
		cmocka_unit_test(test_local_bulk),
		cmocka_unit_test(test_proc_stream_kill),
		cmocka_unit_test(test_cmd_transport),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
