/*
 * fuzz_pull_path.c — the sync-back path and symlink checks (pull_path.c).
 * Input: PATH NUL TARGET. Oracles: an accepted path has no absolute,
 * empty, "." or ".." component and is stable under a second check; an
 * accepted symlink target never climbs above the root when resolved
 * lexically from the link's directory; a reported name carries no
 * control byte (no forged report lines or terminal sequences).
 */
#include <errno.h>
#include <limits.h>

#include "sync/pull_int.h"
#include "tests/fuzz/fuzz_common.h"

static void check_normalized(const char *in, const char *out)
{
	size_t n = strlen(out), ni = strlen(in);
	const char *c = out;
	char *again = NULL;
	const char *why = NULL;

	FZ_CHECK(n > 0 && n < PATH_MAX, "length %zu", n);
	FZ_CHECK(out[0] != '/', "absolute: %s", out);
	FZ_CHECK(out[n - 1] != '/', "trailing slash: %s", out);
	FZ_CHECK(ni >= n && strcmp(in + ni - n, out) == 0,
		 "output is not a suffix of the input");
	for (;;) {
		const char *e = strchr(c, '/');
		size_t k = e ? (size_t)(e - c) : strlen(c);

		FZ_CHECK(k > 0 && k <= NAME_MAX, "component length %zu", k);
		FZ_CHECK(!(k == 1 && c[0] == '.'), "'.' component");
		FZ_CHECK(!(k == 2 && c[0] == '.' && c[1] == '.'), "'..' component");
		if (!e)
			break;
		c = e + 1;
	}
	FZ_CHECK(pull_path_check(out, &again, &why) == 0 &&
		 strcmp(again, out) == 0, "not idempotent: %s", out);
	free(again);
}

/* Lexical resolution of target from linkpath's directory: must stay at
 * depth >= 0 all along (the root is depth 0). */
static void check_symlink_inside(const char *linkpath, const char *target)
{
	long depth = 0;
	const char *c = target;

	for (const char *s = linkpath; *s; s++)
		depth += *s == '/';
	for (;;) {
		const char *e = strchr(c, '/');
		size_t k = e ? (size_t)(e - c) : strlen(c);

		if (k == 2 && c[0] == '.' && c[1] == '.')
			depth--;
		else if (k && !(k == 1 && c[0] == '.'))
			depth++;
		FZ_CHECK(depth >= 0, "symlink %s -> %s escapes the root",
			 linkpath, target);
		if (!e)
			break;
		c = e + 1;
	}
}

static void check_report(const char *path)
{
	struct pull_report rep = { 0 };

	pull_report_add_path(&rep, "refused ", path, ": why\n");
	FZ_CHECK(rep.buf && rep.len == strlen(rep.buf), "report length");
	FZ_CHECK(fz_text_clean(rep.buf, rep.len), "control byte in report");
	FZ_CHECK(memchr(rep.buf, '\n', rep.len) == rep.buf + rep.len - 1,
		 "report has more than one line");
	FZ_CHECK(rep.lines == 1, "report counted %lld lines", (long long)rep.lines);
	pull_report_release(&rep);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fz_cstr(data, size), *out = NULL;
	const char *target = in + strlen(in), *why = NULL;
	int r;

	if ((size_t)(target - in) < size)
		target++;	/* after the first NUL */
	r = pull_path_check(in, &out, &why);
	FZ_CHECK(r == 0 || (r == -EINVAL && why && !out), "r=%d", r);
	if (r == 0) {
		check_normalized(in, out);
		(void)pull_path_excluded(out);
		why = NULL;
		r = pull_symlink_check(out, target, &why);
		FZ_CHECK(r == 0 || (r == -EINVAL && why), "symlink r=%d", r);
		if (r == 0)
			check_symlink_inside(out, target);
	}
	check_report(in);
	free(out);
	free(in);
	return 0;
}
