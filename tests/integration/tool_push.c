/*
 * tool_push — driver for shell integration tests and benchmarks of sync/.
 *
 *   tool_push run URL SCRIPT          stdin -> command, stdout <- command,
 *                                     exits with its status (transport_run)
 *   tool_push stream URL SCRIPT N     run SCRIPT N times over one transport,
 *                                     print the median latency in ms
 *
 * Errors go to stderr as one line; exit 2 on a transport failure.
 */
#include <errno.h>
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

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "run"))
		return cmd_run(argv[2], argv[3]);
	if (argc == 5 && !strcmp(argv[1], "stream"))
		return cmd_stream(argv[2], argv[3], atoi(argv[4]));
	fprintf(stderr, "usage: tool_push run URL SCRIPT | stream URL SCRIPT N\n");
	return 2;
}
