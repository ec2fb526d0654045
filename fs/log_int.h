/*
 * log_int.h — the daemon's log (fs/log.c): stderr in the foreground,
 * syslog once daemonized. Shared by the filesystem and the daemon.
 */
#ifndef HERMES_FS_LOG_INT_H
#define HERMES_FS_LOG_INT_H

#include <stdbool.h>

enum hlog_level { HLOG_ERR = 3, HLOG_WARN = 4, HLOG_INFO = 6, HLOG_DEBUG = 7 };

/* to_syslog: after daemonizing (else stderr); when this machine has no
 * syslog socket, lines go to the file `fallback` instead (rotated to
 * FILE.1 past 4 MiB). Messages above max are dropped. Never log file
 * contents or credentials. */
void hlog_init(const char *ident, bool to_syslog, const char *fallback,
	       enum hlog_level max);
/* The fallback file in use, or NULL (stderr or syslog). */
const char *hlog_file(void);
void hlog(enum hlog_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
