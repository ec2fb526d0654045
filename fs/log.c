/*
 * log.c — daemon logging: stderr in the foreground, syslog once daemonized,
 * or a file in the state directory where there is no syslog (containers
 * often have no /dev/log, and syslog(3) would drop every line silently).
 */
#include <fcntl.h>
#include <paths.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fs/daemon_int.h"

#define LOG_FILE_MAX (4 << 20)	/* then daemon.log -> daemon.log.1 */

static bool log_syslog;
static enum hlog_level log_max = HLOG_INFO;
static const char *log_ident = "hermesfs";
static pthread_mutex_t file_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = -1;		/* file_mu: the fallback file, else -1 */
static char *log_path;		/* file_mu */

static bool syslog_there(void)
{
	struct stat st;

	return stat(_PATH_LOG, &st) == 0 && S_ISSOCK(st.st_mode);
}

void hlog_init(const char *ident, bool to_syslog, const char *fallback,
	       enum hlog_level max)
{
	log_ident = ident;
	log_max = max;
	if (!to_syslog)
		return;
	if (syslog_there() || !fallback) {
		log_syslog = true;
		openlog(ident, LOG_PID, LOG_DAEMON);
		return;
	}
	log_path = strdup(fallback);
	log_fd = open(fallback, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	hlog(HLOG_INFO, "no syslog here (%s): logging to %s", _PATH_LOG,
	    fallback);
}

const char *hlog_file(void)
{
	return log_fd >= 0 ? log_path : NULL;
}

/* One line per write(2), rotated once past LOG_FILE_MAX. */
static void file_line(enum hlog_level lvl, const char *lname, const char *msg)
{
	char ts[32];
	struct stat st;
	struct timespec now;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	pthread_mutex_lock(&file_mu);
	if (log_fd >= 0 && fstat(log_fd, &st) == 0 && st.st_size > LOG_FILE_MAX) {
		char old[4096];

		snprintf(old, sizeof(old), "%s.1", log_path);
		if (rename(log_path, old) == 0) {
			close(log_fd);
			log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT |
				      O_CLOEXEC, 0600);
		}
	}
	if (log_fd >= 0)
		dprintf(log_fd, "%s %s[%d]: %s: %s\n", ts, log_ident,
			(int)getpid(), lname, msg);
	pthread_mutex_unlock(&file_mu);
	(void)lvl;
}

static const char *level_name(enum hlog_level lvl)
{
	switch (lvl) {
	case HLOG_ERR: return "error";
	case HLOG_WARN: return "warning";
	case HLOG_INFO: return "info";
	default: return "debug";
	}
}

void hlog(enum hlog_level lvl, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	if (lvl > log_max)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_syslog) {
		syslog((int)lvl, "%s", msg);
		return;
	}
	if (log_fd >= 0) {
		file_line(lvl, level_name(lvl), msg);
		return;
	}
	/* One write per line so lines from several threads do not interleave. */
	dprintf(STDERR_FILENO, "%s: %s: %s\n", log_ident, level_name(lvl), msg);
}

void json_put_str(int fd, const char *s)
{
	char buf[512];
	size_t n = 0;

	buf[n++] = '"';
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (n > sizeof(buf) - 8) {
			(void)!write(fd, buf, n);
			n = 0;
		}
		if (c == '"' || c == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)c;
		} else if (c < 0x20) {
			n += (size_t)snprintf(buf + n, 8, "\\u%04x", c);
		} else {
			buf[n++] = (char)c;
		}
	}
	buf[n++] = '"';
	(void)!write(fd, buf, n);
}

void fmt_time_ns(int64_t ns, char *buf, size_t len)
{
	time_t t = (time_t)(ns / 1000000000);
	struct tm tm;

	if (ns <= 0) {
		snprintf(buf, len, "-");
		return;
	}
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
