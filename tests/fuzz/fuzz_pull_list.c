/*
 * fuzz_pull_list.c — the remote listing parser (pull_list.c). Input: the
 * raw output of the listing script (NUL-separated records, both the GNU
 * find and the portable stat formats). Oracles on success: entries sorted
 * and unique, every path valid and normalized, every ancestor listed as a
 * directory, only file/dir/symlink types, symlink targets inside the root,
 * lookups consistent; on every outcome the report has no control bytes.
 */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>

#include "sync/pull_int.h"
#include "tests/fuzz/fuzz_common.h"

#define MAX_FILES 64

static void check_entry(const struct pull_list *l, const struct pull_entry *e)
{
	const char *why = NULL;
	char *norm = NULL, buf[PATH_MAX];
	size_t n = strlen(e->path);

	FZ_CHECK(pull_path_check(e->path, &norm, &why) == 0 &&
		 strcmp(norm, e->path) == 0, "bad path kept: %s", e->path);
	free(norm);
	FZ_CHECK(!pull_path_excluded(e->path), "excluded name kept: %s", e->path);
	FZ_CHECK(pull_list_find(l, e->path) == e, "lookup of %s", e->path);
	(void)pull_list_is_refused(l, e->path);	/* a duplicate is both */
	switch (e->type) {
	case STORE_FT_FILE:
		FZ_CHECK(S_ISREG(e->mode) && e->size >= 0 && !e->target, "file");
		break;
	case STORE_FT_DIR:
		FZ_CHECK(S_ISDIR(e->mode) && e->size == 0 && !e->target, "dir");
		break;
	case STORE_FT_SYMLINK:
		FZ_CHECK(S_ISLNK(e->mode) && e->target, "symlink");
		FZ_CHECK(pull_symlink_check(e->path, e->target, &why) == 0,
			 "escaping symlink kept: %s -> %s", e->path, e->target);
		FZ_CHECK(e->size == (int64_t)strlen(e->target), "symlink size");
		break;
	default:
		FZ_CHECK(0, "type %d kept for %s", e->type, e->path);
	}
	FZ_CHECK(e->mtime_ns >= 0, "negative mtime");
	FZ_CHECK(n < sizeof(buf), "path length");
	memcpy(buf, e->path, n + 1);
	for (char *s = strrchr(buf, '/'); s; s = strrchr(buf, '/')) {
		const struct pull_entry *a;

		*s = '\0';
		a = pull_list_find(l, buf);
		FZ_CHECK(a && a->type == STORE_FT_DIR,
			 "%s kept below %s which is not a listed directory",
			 e->path, buf);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pull_list l;
	struct pull_report rep = { 0 };
	int r;

	r = pull_list_parse((const char *)data, size, MAX_FILES, &l, &rep);
	FZ_CHECK(r == 0 || r == -EPROTO || r == -EFBIG, "r=%d", r);
	FZ_CHECK(l.n <= MAX_FILES, "%zu entries over the cap", l.n);
	if (r == 0) {
		for (size_t i = 0; i < l.n; i++) {
			if (i)
				FZ_CHECK(strcmp(l.v[i - 1].path, l.v[i].path) < 0,
					 "not sorted/unique at %zu", i);
			check_entry(&l, &l.v[i]);
		}
		for (size_t i = 1; i < l.nrefused; i++)
			FZ_CHECK(strcmp(l.refused[i - 1], l.refused[i]) <= 0,
				 "refused list not sorted");
		FZ_CHECK(!l.have_marker || l.marker, "marker flag without text");
	}
	FZ_CHECK(!rep.buf || (rep.len == strlen(rep.buf) &&
			      fz_text_clean(rep.buf, rep.len)),
		 "control byte in the report: %s", rep.buf);
	pull_list_release(&l);
	pull_report_release(&rep);
	return 0;
}
