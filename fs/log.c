/*
 * log.c — daemon logging: stderr in the foreground, syslog once daemonized.
 */
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fs/daemon_int.h"

static bool log_syslog;
static enum hlog_level log_max = HLOG_INFO;
static const char *log_ident = "hermesfs";

void hlog_init(const char *ident, bool to_syslog, enum hlog_level max)
{
	log_ident = ident;
	log_syslog = to_syslog;
	log_max = max;
	if (to_syslog)
		openlog(ident, LOG_PID, LOG_DAEMON);
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
