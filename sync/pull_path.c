/*
 * pull_path.c — checks on names and symlink targets sent by the sandbox,
 * and the pull report (escaped so a hostile name cannot forge lines).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/pull_int.h"

static int report_reserve(struct pull_report *r, size_t more)
{
	size_t want = r->len + more + 1;
	char *p;

	if (want <= r->cap)
		return 0;
	if (want < 2 * r->cap)
		want = 2 * r->cap;
	if (want < 256)
		want = 256;
	p = realloc(r->buf, want);
	if (!p)
		return -ENOMEM;
	r->buf = p;
	r->cap = want;
	return 0;
}

static void report_vadd(struct pull_report *r, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || report_reserve(r, (size_t)n) < 0)
		return;
	vsnprintf(r->buf + r->len, r->cap - r->len, fmt, ap);
	r->len += (size_t)n;
}

void pull_report_add(struct pull_report *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	report_vadd(r, fmt, ap);
	va_end(ap);
	if (r->len && r->buf[r->len - 1] == '\n')
		r->lines++;
}

void pull_report_add_path(struct pull_report *r, const char *prefix,
			  const char *path, const char *suffix)
{
	size_t i, n = strlen(path);

	/* Worst case 4 bytes per input byte; paths are capped upstream but
	 * unparseable listing fragments may be long: clip them. */
	if (n > 1024)
		n = 1024;
	if (report_reserve(r, strlen(prefix) + 4 * n + 8) < 0)
		return;
	r->len += (size_t)sprintf(r->buf + r->len, "%s", prefix);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)path[i];

		if (c == '\\')
			r->len += (size_t)sprintf(r->buf + r->len, "\\\\");
		else if (c < 0x20 || c == 0x7f)
			r->len += (size_t)sprintf(r->buf + r->len, "\\x%02x", c);
		else
			r->buf[r->len++] = (char)c;
	}
	r->buf[r->len] = '\0';
	if (n < strlen(path))
		pull_report_add(r, "...");
	pull_report_add(r, "%s", suffix);
}

void pull_report_fatal(struct pull_report *r)
{
	if (!r->has_fatal) {
		r->has_fatal = true;
		r->fatal_at = r->len;
	}
}

void pull_report_fatal_first(struct pull_report *r)
{
	char *nl, *line;
	size_t n;

	if (!r->has_fatal || r->fatal_at == 0 || r->fatal_at >= r->len)
		return;
	nl = memchr(r->buf + r->fatal_at, '\n', r->len - r->fatal_at);
	n = nl ? (size_t)(nl - (r->buf + r->fatal_at)) + 1 : r->len - r->fatal_at;
	line = malloc(n);
	if (!line)
		return;
	memcpy(line, r->buf + r->fatal_at, n);
	memmove(r->buf + n, r->buf, r->fatal_at);
	memcpy(r->buf, line, n);
	free(line);
	r->fatal_at = 0;
}

void pull_report_release(struct pull_report *r)
{
	if (!r)
		return;
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

int pull_path_check(const char *in, char **out, const char **why)
{
	const char *p = in, *c;
	char *dup;

	*out = NULL;
	while (p[0] == '.' && p[1] == '/')
		p += 2;
	if (in[0] == '/') {
		*why = "absolute path";
		return -EINVAL;
	}
	if (!*p) {
		*why = "empty path";
		return -EINVAL;
	}
	if (strlen(p) >= PATH_MAX) {
		*why = "path too long";
		return -EINVAL;
	}
	for (c = p; ; ) {
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);

		if (n == 0) {
			*why = "empty path component";
			return -EINVAL;
		}
		if ((n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.')) {
			*why = "'.' or '..' component";
			return -EINVAL;
		}
		if (n > NAME_MAX) {
			*why = "name too long";
			return -EINVAL;
		}
		if (!e)
			break;
		c = e + 1;
	}
	dup = strdup(p);
	if (!dup)
		return -ENOMEM;
	*out = dup;
	return 0;
}

bool pull_path_excluded(const char *rel)
{
	size_t n = strlen(SYNC_STAGE_DIR);

	if (strcmp(rel, SYNC_MARKER_NAME) == 0)
		return true;
	return strncmp(rel, SYNC_STAGE_DIR, n) == 0 &&
	       (rel[n] == '\0' || rel[n] == '/');
}

int pull_symlink_check(const char *linkpath, const char *target,
		       const char **why)
{
	const char *c = target;
	size_t depth = 0, ups = 0;
	bool leading = true;

	if (!*target) {
		*why = "empty symlink target";
		return -EINVAL;
	}
	if (target[0] == '/') {
		*why = "absolute symlink target";
		return -EINVAL;
	}
	if (strlen(target) >= PATH_MAX) {
		*why = "symlink target too long";
		return -EINVAL;
	}
	for (const char *s = linkpath; *s; s++)
		depth += (*s == '/');
	for (;;) {
		const char *e = strchr(c, '/');
		size_t n = e ? (size_t)(e - c) : strlen(c);

		if (n == 2 && c[0] == '.' && c[1] == '.') {
			/* ".." after a real name may climb out of the directory a
			 * symlink named there points to: only leading ones. */
			if (!leading) {
				*why = "symlink target with '..' after a name";
				return -EINVAL;
			}
			ups++;
		} else if (n && !(n == 1 && c[0] == '.')) {
			leading = false;
		}
		if (!e)
			break;
		c = e + 1;
	}
	if (ups > depth) {
		*why = "symlink target outside the root";
		return -EINVAL;
	}
	return 0;
}
