/*
 * fuzz_ignore.c — the gitignore-style matcher (fs/config.c: ignore_add,
 * ignore_match). Input: patterns, one a line, then a NUL, then paths, one
 * a line. Oracles: no memory error or runaway time on any pattern; a
 * pattern without wildcards matches exactly its own name (or path when
 * anchored); a file below an ignored directory is ignored.
 */
#include <errno.h>

#include "fs/ctl_int.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_LINES 16
static size_t split_lines(char *s, char **v, size_t max)
{
	size_t n = 0;

	while (s && n < max) {
		char *nl = strchr(s, '\n');

		if (nl)
			*nl = '\0';
		v[n++] = s;
		s = nl ? nl + 1 : NULL;
	}
	return n;
}

/* A plain pattern (no wildcard, escape, '!' or '/') matches by name. */
static void check_plain(const char *pat, const char *path)
{
	struct ignore *ig = NULL;
	const char *base = strrchr(path, '/');
	bool want;

	if (!*pat || strpbrk(pat, "*?[\\!/") || !*path || path[0] == '/' ||
	    strlen(path) >= 4096)
		return;
	FZ_CHECK(ignore_from_config(NULL, NULL, &ig) == 0 &&
		 ignore_add(ig, pat) == 0, "plain pattern refused: %s", pat);
	base = base ? base + 1 : path;
	want = strcmp(base, pat) == 0;
	/* A parent directory of the same name also ignores the path. */
	for (const char *c = path; !want && c < base; ) {
		const char *e = strchr(c, '/');

		want = (size_t)(e - c) == strlen(pat) && !strncmp(c, pat, strlen(pat));
		c = e + 1;
	}
	FZ_CHECK(ignore_match(ig, path, false) == want,
		 "pattern '%s' on '%s': expected %d", pat, path, want);
	ignore_free(ig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = fz_cstr(data, size), *rest, *pats[MAX_LINES], *paths[MAX_LINES];
	size_t np, nq, plen = strlen(in);
	struct ignore *ig = NULL;

	/* fz_cstr copies every byte: what follows the first NUL is there. */
	rest = plen < size ? in + plen + 1 : NULL;
	np = split_lines(in, pats, MAX_LINES);
	nq = rest ? split_lines(rest, paths, MAX_LINES) : 0;
	FZ_CHECK(ignore_from_config(NULL, NULL, &ig) == 0, "empty rules");
	for (size_t i = 0; i < np; i++) {
		int r;

		r = ignore_add(ig, pats[i]);

		FZ_CHECK(r == 0 || r == -EINVAL, "ignore_add r=%d", r);
	}
	for (size_t j = 0; j < nq; j++) {
		bool f = ignore_match(ig, paths[j], false);
		bool d = ignore_match(ig, paths[j], true);

		(void)f;
		(void)d;
		for (size_t i = 0; i < np; i++)
			check_plain(pats[i], paths[j]);
	}
	ignore_free(ig);
	free(in);
	return 0;
}
