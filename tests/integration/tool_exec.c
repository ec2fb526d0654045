/*
 * tool_exec — drive one exec session from the command line (tests, bench).
 *
 *   tool_exec URL [-t S] [-C DIR] [-i FILE] [-c MS] [-n N] [-p MS] [-S] [-q]
 *             -- CMD...
 *
 * Runs each CMD in turn in one session; with no CMD, each line of stdin is
 * a command. Output of each command goes to stdout as is; after each one a
 * line "status=N cwd=DIR timed_out=B interrupted=B truncated=B verified=B"
 * goes to stderr. -i gives FILE's bytes as every command's stdin; -c MS
 * cancels each command after MS ms; SIGINT cancels the running command.
 * -n N runs the single CMD N times and prints the median latency in ms;
 * -p MS idles that long before each timed call (an agent's think time; not
 * timed). -S turns spares off (exec_config.no_spare). -q drops the output. Exit status: the last command's status.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "exec/exec.h"
#include "sync/sync.h"

static struct exec_session *g_sess;

static void on_sigint(int sig)
{
	(void)sig;
	exec_cancel(g_sess);
}

struct canceller {
	int ms;
	volatile int flag;
};

static void *cancel_main(void *arg)
{
	struct canceller *c = arg;

	usleep((useconds_t)c->ms * 1000);
	c->flag = 1;
	return NULL;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *b = NULL;
	size_t cap = 0, n = 0, r;

	if (!f)
		return NULL;
	do {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			b = realloc(b, cap);
			if (!b)
				break;
		}
		r = fread(b + n, 1, cap - n, f);
		n += r;
	} while (r > 0);
	fclose(f);
	*len = n;
	return b;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int run_one(struct exec_request *rq, int cancel_ms, bool quiet)
{
	struct exec_result res;
	struct canceller c = { cancel_ms, 0 };
	pthread_t th;
	char *cwd;
	int rc;

	if (cancel_ms > 0) {
		rq->cancel = &c.flag;
		pthread_create(&th, NULL, cancel_main, &c);
	}
	rc = exec_run(g_sess, rq, &res);
	if (cancel_ms > 0)
		pthread_join(th, NULL);
	if (rc) {
		fprintf(stderr, "tool_exec: %s (%s)\n", exec_session_error(g_sess),
			strerror(-rc));
		return 255;
	}
	if (!quiet)
		fwrite(res.output, 1, res.output_len, stdout);
	fflush(stdout);
	cwd = exec_session_cwd(g_sess);
	fprintf(stderr, "status=%d cwd=%s timed_out=%d interrupted=%d "
		"truncated=%d verified=%d spare=%d\n", res.status, cwd,
		res.timed_out, res.interrupted, res.truncated,
		res.killed_verified, res.spare);
	free(cwd);
	rc = res.status;
	exec_result_release(&res);
	return rc;
}

static int bench(struct exec_request *rq, int n, int pause_ms)
{
	double *t = calloc((size_t)n, sizeof(*t));
	struct exec_result res;
	int i;

	for (i = 0; t && i < n; i++) {
		double s;

		if (pause_ms > 0)
			usleep((useconds_t)pause_ms * 1000);
		s = now_ms();

		if (exec_run(g_sess, rq, &res))
			return 255;
		t[i] = now_ms() - s;
		exec_result_release(&res);
	}
	if (!t)
		return 255;
	qsort(t, (size_t)n, sizeof(*t), cmp_d);
	printf("%.3f\n", t[n / 2]);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	struct exec_config cfg = { 0 };
	struct exec_request rq = { 0 };
	struct transport *t = NULL;
	const char *url, *infile = NULL;
	char *in = NULL, line[65536];
	int opt, cancel_ms = 0, reps = 0, pause_ms = 0, rc = 0;
	bool quiet = false;
	size_t inlen = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: tool_exec URL [-t S] [-C DIR] [-i FILE] "
			"[-c MS] [-n N] [-p MS] [-S] [-q] -- CMD...\n");
		return 2;
	}
	url = argv[1];
	optind = 2;
	while ((opt = getopt(argc, argv, "t:C:i:c:n:p:Sq")) != -1) {
		switch (opt) {
		case 't': rq.timeout_s = atoi(optarg); break;
		case 'C': rq.cwd_override = optarg; break;
		case 'i': infile = optarg; break;
		case 'c': cancel_ms = atoi(optarg); break;
		case 'n': reps = atoi(optarg); break;
		case 'p': pause_ms = atoi(optarg); break;
		case 'S': cfg.no_spare = true; break;
		case 'q': quiet = true; break;
		default: return 2;
		}
	}
	if (infile && !(in = slurp(infile, &inlen))) {
		perror(infile);
		return 2;
	}
	rq.stdin_buf = in;
	rq.stdin_len = inlen;
	if (transport_open(url, NULL, &t)) {
		fprintf(stderr, "tool_exec: %s\n", transport_open_error());
		return 2;
	}
	cfg.t = t;
	if ((rc = exec_session_new(&cfg, &g_sess))) {
		fprintf(stderr, "tool_exec: %s\n", exec_new_error());
		transport_close(t);
		return 2;
	}
	if (!exec_session_snapshot_ok(g_sess))
		fprintf(stderr, "tool_exec: snapshot failed, using bash -l\n");
	signal(SIGINT, on_sigint);
	if (reps > 0 && optind < argc) {
		rq.command = argv[optind];
		rc = bench(&rq, reps, pause_ms);
	} else if (optind < argc) {
		for (; optind < argc; optind++) {
			rq.command = argv[optind];
			rc = run_one(&rq, cancel_ms, quiet);
		}
	} else {
		while (fgets(line, sizeof(line), stdin)) {
			line[strcspn(line, "\n")] = '\0';
			rq.command = line;
			rc = run_one(&rq, cancel_ms, quiet);
		}
	}
	exec_session_free(g_sess);
	transport_close(t);
	free(in);
	return rc;
}
