/*
 * push_guard.c — a push never destroys a sandbox-side change that was not
 * pulled yet. Before the apply script overwrites, deletes or renames over
 * a path, it compares what the sandbox holds there with what the ledger
 * says it holds (type, size, whole-second mtime: the pull's listing test,
 * see entry_changed() in pull.c; a directory: its whole subtree). When
 * they differ, the sandbox's version is moved aside to
 * NAME.conflict-<sandbox>-<UTC stamp>[-N] (the pull's conflict copy name)
 * right before the host version is put in place, and reported on stdout;
 * the next pull brings it to the host as a new file.
 *
 * The check runs inside the apply script, right before each mv/rm: the
 * window between check and change is one shell step (not a network round
 * trip plus the whole upload, as a listing call before the apply would
 * be), and it costs no extra remote call. In the common case (nothing
 * changed remotely) one `stat` per batch of files checks them all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sync/push_int.h"

static int64_t secs(int64_t ns)
{
	return ns >= 0 ? ns / 1000000000 : -((-ns + 999999999) / 1000000000);
}

void push_guard_sig(const struct store_ledger_row *row, char *buf, size_t n)
{
	if (!row)
		snprintf(buf, n, "-");
	else if (row->type == STORE_FT_DIR)
		snprintf(buf, n, "d");
	else if (row->type == STORE_FT_SYMLINK)
		snprintf(buf, n, "l %lld", (long long)row->size);
	else
		snprintf(buf, n, "f %lld %lld", (long long)row->size,
			 (long long)secs(row->mtime_ns));
}

void push_guard_release(struct push_guard *g)
{
	if (!g)
		return;
	free(g->sig);
	free(g->manifest);
	g->sig = g->manifest = NULL;
}

/*
 * hs P   what the sandbox holds at P, in the sig format ("o": other type)
 * st P.. "SIZE MTIME" per file (GNU, then BSD stat)
 * k P    move P aside to a free conflict name, report it
 * g P E  keep P aside unless it is absent or E
 * gu P E N   the same, unless P already holds the new version N
 * gd P M keep directory P aside unless its subtree listing is file M
 * gm P   keep P aside if it is there and not a directory (mkdir -p)
 */
const char *push_guard_prelude(void)
{
	return
"LC_ALL=C; export LC_ALL\n"
"st() { stat -c '%s %Y' \"$@\" 2>/dev/null || stat -f '%z %m' \"$@\" 2>/dev/null; }\n"
"hs() {\n"
" if [ -L \"$1\" ]; then t=$(readlink \"$1\") || t=; printf 'l %s\\n' \"${#t}\"\n"
" elif [ -d \"$1\" ]; then echo d\n"
" elif [ -f \"$1\" ]; then printf 'f %s\\n' \"$(st \"$1\")\"\n"
" elif [ -e \"$1\" ]; then echo o\n"
" else echo -; fi\n"
"}\n"
"k() {\n"
" p=$1; b=${p##*/}\n"
" [ ${#b} -le 150 ] || p=\"${p%/*}/$(printf '%.150s' \"$b\")\"\n"
" c=\"$p$X\"; n=0\n"
" while [ -e \"$c\" ] || [ -L \"$c\" ]; do n=$((n+1)); c=\"$p$X-$n\"; done\n"
" mv -f \"$1\" \"$c\"\n"
" printf 'K%s\\000%s\\000' \"$1\" \"$c\"\n"
"}\n"
"g() { s=$(hs \"$1\"); [ \"$s\" = - ] || [ \"$s\" = \"$2\" ] || k \"$1\"; }\n"
"same() {\n"
" if [ -L \"$1\" ]; then [ -L \"$2\" ] && [ \"$(readlink \"$1\")\" = \"$(readlink \"$2\")\" ]\n"
" else [ -f \"$2\" ] && [ ! -L \"$2\" ] && cmp -s \"$1\" \"$2\"; fi\n"
"}\n"
"gu() { s=$(hs \"$1\"); [ \"$s\" = - ] || [ \"$s\" = \"$2\" ] || same \"$3\" \"$1\" || k \"$1\"; }\n"
"gd() {\n"
" if [ -d \"$1\" ] && [ ! -L \"$1\" ]; then\n"
"  find \"$1\" | sort | while IFS= read -r f; do printf '%s %s\\n' \"$(hs \"$f\")\" \"$f\"; done > \"$S/cur\"\n"
"  cmp -s \"$S/cur\" \"$2\" || k \"$1\"\n"
" else g \"$1\" d; fi\n"
"}\n"
"gm() { if [ -L \"$1\" ] || { [ -e \"$1\" ] && [ ! -d \"$1\" ]; }; then k \"$1\"; fi; }\n";
}

static int kept_add(struct push_plan *p, const char *path, const char *copy)
{
	struct push_kept *v = realloc(p->kept, (p->nkept + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	p->kept = v;
	if (!strncmp(path, "./", 2))
		path += 2;
	if (!strncmp(copy, "./", 2))
		copy += 2;
	v[p->nkept].path = strdup(path);
	v[p->nkept].copy = strdup(copy);
	if (!v[p->nkept].path || !v[p->nkept].copy) {
		free(v[p->nkept].path);
		free(v[p->nkept].copy);
		return -ENOMEM;
	}
	p->nkept++;
	return 0;
}

int push_guard_parse(struct push_plan *p, const char *out, size_t len)
{
	size_t pos = 0;
	int r = 0;

	while (r == 0 && pos < len) {
		const char *a = out + pos, *an = memchr(a, '\0', len - pos), *b, *bn;

		if (!an || *a != 'K')
			break;	/* not ours (a command's chatter): stop */
		b = an + 1;
		bn = b < out + len ? memchr(b, '\0', (size_t)(out + len - b)) : NULL;
		if (!bn)
			break;
		r = kept_add(p, a + 1, b);
		pos = (size_t)(bn - out) + 1;
	}
	return r;
}

int push_guard_suffix(struct store *st, int64_t sb, char **out)
{
	struct store_sandbox sbx;
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	int r = store_sandbox_get_by_id(st, sb, &sbx);

	if (r < 0)
		return r;
	/* Sanitized as the pull does for its conflict copies. */
	for (char *q = sbx.name; *q; q++)
		if (*q == '/' || (unsigned char)*q < 0x20 || *q == 0x7f)
			*q = '_';
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	if (asprintf(out, ".conflict-%.64s-%s", sbx.name, stamp) < 0) {
		*out = NULL;
		r = -ENOMEM;
	}
	store_sandbox_release(&sbx);
	return r;
}
