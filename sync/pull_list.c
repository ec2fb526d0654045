/*
 * pull_list.c — the remote listing: one sh script (GNU find -printf, or a
 * portable find + stat loop for BSD and busybox userlands) printing
 * NUL-separated records, and a parser that treats them as hostile.
 *
 * Records, each field ended by NUL:
 *   N                              the root could not be entered
 *   M<marker content>              the root marker, when a regular file
 *   G<y> <octal mode> <size> <mtime[.frac]> <path>   then <link target>
 *   S<hex st_mode> <size> <mtime> ./<path>            then <link target>
 *   E                              end of listing (absent = truncated)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "sync/pull_int.h"

static char *quote(const char *s)
{
	size_t n = 3;
	char *q, *o;

	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	q = o = malloc(n);
	if (!q)
		return NULL;
	*o++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o++ = '\'';
	*o = '\0';
	return q;
}

char *pull_list_script(const char *root, bool portable)
{
	static const char fmt[] =
		"cd %s 2>/dev/null || { printf 'N\\000'; exit 0; }\n"
		"if [ -f ./" SYNC_MARKER_NAME " ] && [ ! -L ./" SYNC_MARKER_NAME " ]; then\n"
		"  printf 'M%%s\\000' \"$(cat ./" SYNC_MARKER_NAME ")\"\n"
		"fi\n"
		"if [ -z '%s' ] && find . -maxdepth 0 -printf '' >/dev/null 2>&1; then\n"
		"  find . -path ./" SYNC_STAGE_DIR " -prune -o ! -path . "
		"-printf 'G%%y %%m %%s %%T@ %%P\\000%%l\\000' || exit 1\n"
		"else\n"
		"  find . -path ./" SYNC_STAGE_DIR " -prune -o ! -path . -exec sh -c '\n"
		"for f do\n"
		"  if m=$(stat -c \"%%f %%s %%Y\" \"$f\" 2>/dev/null); then :\n"
		"  else m=$(stat -f \"%%Xp %%z %%m\" \"$f\" 2>/dev/null) || continue; fi\n"
		"  t=; if [ -L \"$f\" ]; then t=$(readlink \"$f\"); fi\n"
		"  printf \"S%%s %%s\\000%%s\\000\" \"$m\" \"$f\" \"$t\"\n"
		"done' sh {} + || exit 1\n"
		"fi\n"
		"printf 'E\\000'\n";
	char *q = quote(root), *s = NULL;

	if (q && asprintf(&s, fmt, q, portable ? "p" : "") < 0)
		s = NULL;
	free(q);
	return s;
}

/* Strict unsigned decimal (or hex) number ending at a space. */
static int parse_num(const char **pp, int base, int64_t *out)
{
	const char *p = *pp;
	int64_t v = 0;
	int d;

	if (*p == ' ' || !*p)
		return -EINVAL;
	for (; *p && *p != ' ' && *p != '.'; p++) {
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (base == 16 && *p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (base == 16 && *p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			return -EINVAL;
		if (d >= base || v > (INT64_MAX - d) / base)
			return -EINVAL;
		v = v * base + d;
	}
	*out = v;
	*pp = p;
	return 0;
}

/* "<sec>[.<frac>] " -> ns; negative times are clamped to 0. */
static int parse_mtime(const char **pp, int64_t *ns)
{
	const char *p = *pp;
	bool neg = false;
	int64_t sec, frac = 0;
	int digits = 0;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (parse_num(&p, 10, &sec) < 0 || sec > INT64_MAX / 1000000000)
		return -EINVAL;
	if (*p == '.') {
		for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
			if (digits < 9)
				frac = frac * 10 + (*p - '0');
		}
		for (; digits < 9; digits++)
			frac *= 10;
	}
	if (*p != ' ')
		return -EINVAL;
	*ns = neg ? 0 : sec * 1000000000 + frac;
	*pp = p + 1;
	return 0;
}

static int type_of_mode(uint32_t m)
{
	if (S_ISREG(m))
		return STORE_FT_FILE;
	if (S_ISDIR(m))
		return STORE_FT_DIR;
	if (S_ISLNK(m))
		return STORE_FT_SYMLINK;
	return 0;
}

/* Header fields of a G or S record; *path points into h. */
static int parse_header(const char *h, struct pull_entry *e, const char **path)
{
	const char *p = h + 1;
	int64_t mode, size;

	if (h[0] == 'G') {
		char y = *p++;

		if (*p++ != ' ' || parse_num(&p, 8, &mode) < 0 || *p++ != ' ')
			return -EINVAL;
		mode &= 07777;
		mode |= y == 'f' ? S_IFREG : y == 'd' ? S_IFDIR :
			y == 'l' ? S_IFLNK : 0;
	} else {
		if (parse_num(&p, 16, &mode) < 0 || *p++ != ' ' ||
		    mode > 0xffffffffLL)
			return -EINVAL;
	}
	if (parse_num(&p, 10, &size) < 0 || *p++ != ' ' ||
	    parse_mtime(&p, &e->mtime_ns) < 0)
		return -EINVAL;
	e->mode = (uint32_t)mode;
	e->size = size;
	e->type = type_of_mode(e->mode);
	*path = p;
	return 0;
}

static void refuse(struct pull_list *l, struct pull_report *rep,
		   const char *path, const char *why)
{
	char **v;
	char line[160];

	snprintf(line, sizeof(line), ": %s\n", why);
	pull_report_add_path(rep, "refused ", path, line);
	v = realloc(l->refused, (l->nrefused + 1) * sizeof(*v));
	if (!v)
		return;
	l->refused = v;
	v[l->nrefused] = strdup(path);
	if (v[l->nrefused])
		l->nrefused++;
}

static void entry_release(struct pull_entry *e)
{
	free(e->path);
	free(e->target);
	memset(e, 0, sizeof(*e));
}

struct list_filter {
	bool (*ignore)(const char *relpath, bool is_dir, void *arg);
	void *arg;
};

/* One G/S record: validated and appended, or refused; 1 when ignored. */
static int add_record(struct pull_list *l, const char *h, const char *target,
		      const struct list_filter *f, struct pull_report *rep)
{
	struct pull_entry e = { 0 };
	const char *raw, *why;
	int r;

	if (parse_header(h, &e, &raw) < 0) {
		pull_report_add_path(rep, "refused unparseable listing record ",
				     h, "\n");
		return 0;
	}
	r = pull_path_check(raw, &e.path, &why);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		refuse(l, rep, raw, why);
		return 0;
	}
	if (pull_path_excluded(e.path)) {
		entry_release(&e);
		return 0;
	}
	if (f->ignore && f->ignore(e.path, e.type == STORE_FT_DIR, f->arg)) {
		entry_release(&e);
		return 1;
	}
	if (!e.type) {
		refuse(l, rep, e.path, "not a regular file, directory or symlink");
		entry_release(&e);
		return 0;
	}
	if (e.type == STORE_FT_SYMLINK) {
		if (pull_symlink_check(e.path, target, &why) < 0) {
			refuse(l, rep, e.path, why);
			entry_release(&e);
			return 0;
		}
		e.target = strdup(target);
		if (!e.target) {
			entry_release(&e);
			return -ENOMEM;
		}
		e.size = (int64_t)strlen(target);
	} else if (e.type == STORE_FT_DIR) {
		e.size = 0;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct pull_entry *v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			entry_release(&e);
			return -ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = e;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pull_entry *)a)->path,
		      ((const struct pull_entry *)b)->path);
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct pull_entry *pull_list_find(const struct pull_list *l, const char *p)
{
	struct pull_entry key = { .path = (char *)p };

	if (!l->n)
		return NULL;
	return bsearch(&key, l->v, l->n, sizeof(key), entry_cmp);
}

/* Every ancestor of e must be listed as a directory (a name "through" a
 * symlink or a file, or below nothing, is forged). Entries in sorted order
 * so a refused parent (type 0) refuses its children. */
static bool ancestors_ok(struct pull_list *l, const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return false;
	memcpy(buf, path, n + 1);
	for (char *s = strchr(buf, '/'); s; s = strchr(s + 1, '/')) {
		struct pull_entry *a;

		*s = '\0';
		a = pull_list_find(l, buf);
		*s = '/';
		if (!a || a->type != STORE_FT_DIR)
			return false;
	}
	return true;
}

static void list_finish(struct pull_list *l, struct pull_report *rep)
{
	size_t i, o = 0;

	if (l->n > 1)	/* qsort(NULL, 0) is undefined */
		qsort(l->v, l->n, sizeof(*l->v), entry_cmp);
	for (i = 1; i < l->n; i++) {
		if (strcmp(l->v[i].path, l->v[i - 1].path) == 0)
			l->v[i].type = -1;	/* duplicate: keep the first */
	}
	for (i = 0; i < l->n; i++) {
		if (l->v[i].type == -1) {
			refuse(l, rep, l->v[i].path, "listed twice");
			l->v[i].type = 0;
		} else if (!ancestors_ok(l, l->v[i].path)) {
			refuse(l, rep, l->v[i].path,
			       "parent is not a listed directory (path through a symlink?)");
			l->v[i].type = 0;
		}
	}
	for (i = 0; i < l->n; i++) {
		if (l->v[i].type == 0)
			entry_release(&l->v[i]);
		else
			l->v[o++] = l->v[i];
	}
	l->n = o;
	if (l->nrefused > 1)
		qsort(l->refused, l->nrefused, sizeof(*l->refused), str_cmp);
}

bool pull_list_is_refused(const struct pull_list *l, const char *p)
{
	char buf[4096];
	size_t n = strlen(p);

	if (!l->nrefused || n >= sizeof(buf))
		return l->nrefused > 0;
	memcpy(buf, p, n + 1);
	for (;;) {
		const char *k = buf;
		char *s;

		if (bsearch(&k, l->refused, l->nrefused, sizeof(char *), str_cmp))
			return true;
		s = strrchr(buf, '/');
		if (!s)
			return false;
		*s = '\0';
	}
}

static void trim(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' ||
		     s[n - 1] == '\r' || s[n - 1] == '\t'))
		s[--n] = '\0';
}

static int parse(const char *buf, size_t len, int64_t max_files,
		 const struct list_filter *filter, struct pull_list *out,
		 struct pull_report *rep)
{
	size_t pos = 0;
	int64_t records = 0;
	bool end = false;
	int r = 0;

	memset(out, 0, sizeof(*out));
	while (pos < len && !end) {
		const char *f = buf + pos, *nul = memchr(f, '\0', len - pos);
		const char *t, *tnul;

		if (!nul)
			break;
		pos = (size_t)(nul - buf) + 1;
		switch (f[0]) {
		case 'E':
			end = true;
			break;
		case 'N':
			out->root_missing = true;
			break;
		case 'M':
			if (out->have_marker)
				break;	/* a second one is forged: keep the first */
			free(out->marker);
			out->marker = strdup(f + 1);
			if (!out->marker)
				return -ENOMEM;
			trim(out->marker);
			out->have_marker = true;
			break;
		case 'G':
		case 'S':
			t = buf + pos;
			tnul = pos < len ? memchr(t, '\0', len - pos) : NULL;
			if (!tnul)
				goto truncated;
			pos = (size_t)(tnul - buf) + 1;
			r = add_record(out, f, t, filter, rep);
			if (r < 0)
				return r;
			if (r == 0 && ++records > max_files) {
				pull_report_fatal(rep);
				pull_report_add(rep, "listing has more than %lld entries (cap)\n",
						(long long)max_files);
				return -EFBIG;
			}
			break;
		default:
			pull_report_add_path(rep, "refused unknown listing record ", f, "\n");
		}
	}
	if (!end && !out->root_missing)
		goto truncated;
	if (pos != len && !out->root_missing) {
		pull_report_fatal(rep);
		pull_report_add(rep, "listing has data after its end record\n");
		return -EPROTO;
	}
	list_finish(out, rep);
	return 0;
truncated:
	pull_report_fatal(rep);
	pull_report_add(rep, "listing truncated (no end record): not trusted\n");
	return -EPROTO;
}

int pull_list_parse(const char *buf, size_t len, int64_t max_files,
		    struct pull_list *out, struct pull_report *rep)
{
	static const struct list_filter none;

	return parse(buf, len, max_files, &none, out, rep);
}

int pull_list_parse_ignoring(const char *buf, size_t len, int64_t max_files,
			     bool (*ignore)(const char *relpath, bool is_dir,
					    void *arg),
			     void *ignore_arg, struct pull_list *out,
			     struct pull_report *rep)
{
	struct list_filter f = { ignore, ignore_arg };

	return parse(buf, len, max_files, &f, out, rep);
}

void pull_list_release(struct pull_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		entry_release(&l->v[i]);
	free(l->v);
	for (size_t i = 0; i < l->nrefused; i++)
		free(l->refused[i]);
	free(l->refused);
	free(l->marker);
	memset(l, 0, sizeof(*l));
}
