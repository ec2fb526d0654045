/*
 * fault.c — HERMES_CRASH_AT crash points (see fault_int.h): tests kill the
 * daemon at an exact step instead of hoping a timer lands there.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sync/fault_int.h"

static pthread_once_t crash_once = PTHREAD_ONCE_INIT;
static char crash_name[64];		/* "" = no crash point armed */
static long crash_nth;
static atomic_long crash_hits;

static void crash_init(void)
{
	const char *e = getenv("HERMES_CRASH_AT"), *colon;
	size_t n;

	if (!e || !*e)
		return;
	colon = strchr(e, ':');
	n = colon ? (size_t)(colon - e) : strlen(e);
	if (n >= sizeof(crash_name))
		return;
	memcpy(crash_name, e, n);
	crash_name[n] = '\0';
	crash_nth = colon ? atol(colon + 1) : 1;
}

void sync_crash_point(const char *point)
{
	char line[160];
	int len;

	pthread_once(&crash_once, crash_init);
	if (!crash_name[0] || strcmp(point, crash_name) != 0 ||
	    atomic_fetch_add(&crash_hits, 1) + 1 != crash_nth)
		return;
	len = snprintf(line, sizeof(line), "hermesfs: HERMES_CRASH_AT=%s:%ld: "
		       "killed at %s\n", crash_name, crash_nth, point);
	if (len > 0 && write(STDERR_FILENO, line, (size_t)len) < 0)
		len = 0;	/* dying anyway */
	raise(SIGKILL);
}

void sync_pause_point(const char *point)
{
	static atomic_int done;
	const char *at = getenv("HERMES_PAUSE_AT");
	const char *file = getenv("HERMES_PAUSE_FILE");
	int fd;

	if (!at || !file || strcmp(at, point) != 0 ||
	    atomic_exchange(&done, 1))
		return;
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	close(fd);
	for (int i = 0; i < 6000 && access(file, F_OK) == 0; i++)
		usleep(10000);
}
