/*
 * fuzz_config.c — the ini configuration parser (fs/config.c: config_load,
 * config_get and the value parsers) and the ignore rules built from it.
 * Input: a config file. Oracles: an error message is a bounded C string;
 * values read back are the trimmed ones the file set; every value parser
 * and ignore matcher runs without memory errors.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fs/ctl_int.h"
#include "tests/fuzz/fuzz_common.h"

static const char *const keys[] = {
	"retry", "conflict", "max-total-bytes", "max-files", "max-file-size",
	"parallel", "accept-new-host-keys", "identity", "known-hosts",
	"ignore", "nope",
};
static const char *const sandboxes[] = { NULL, "box", "s1" };
static const char *const paths[] = {
	"a", "a/b", "x.sock", "cache/tmp/f", ".git/config", "d/e/f.log",
};

static void use_value(const char *v)
{
	int64_t sz;
	bool b;
	int ms[8], n = 0;

	FZ_CHECK(strlen(v) < 1 << 20, "value length");
	/* Overflow on a K/M/G/T suffix is UBSan's to report (shift-base). */
	(void)config_parse_size(v, &sz);
	(void)config_parse_bool(v, &b);
	if (config_parse_retry(v, ms, 8, &n) == 0) {
		FZ_CHECK(n >= 0 && n <= 8, "retry count %d", n);
		for (int i = 0; i < n; i++)
			FZ_CHECK(ms[i] >= 0 && ms[i] <= 3600 * 1000, "retry %d", ms[i]);
	}
}

static void use_config(struct config *c, bool match)
{
	for (size_t s = 0; s < sizeof(sandboxes) / sizeof(*sandboxes); s++) {
		struct ignore *ig = NULL;

		for (size_t k = 0; k < sizeof(keys) / sizeof(*keys); k++) {
			const char *v = config_get(c, sandboxes[s], keys[k]);

			if (v)
				use_value(v);
		}
		if (match && ignore_from_config(c, sandboxes[s], &ig) == 0) {
			for (size_t i = 0; i < sizeof(paths) / sizeof(*paths); i++) {
				(void)ignore_match(ig, paths[i], false);
				(void)ignore_match(ig, paths[i], true);
			}
		}
		ignore_free(ig);
	}
	FZ_CHECK(config_set(c, "box", "retry", "1,2") == 0, "config_set");
	/* The last assignment wins. */
	FZ_CHECK(strcmp(config_get(c, "box", "retry"), "1,2") == 0,
		 "config_set value not the one read back");
}

static int mfd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL;
	char err[256];
	int r;

	if (mfd < 0) {
		mfd = memfd_create("fuzz-config", MFD_CLOEXEC);
		FZ_CHECK(mfd >= 0, "memfd_create");
		snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	}
	FZ_CHECK(ftruncate(mfd, 0) == 0 &&
		 pwrite(mfd, data, size, 0) == (ssize_t)size, "write input");
	memset(err, 'X', sizeof(err));
	err[0] = '\0';
	r = config_load(path, &c, err, sizeof(err));
	FZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM, "r=%d", r);
	FZ_CHECK(memchr(err, '\0', sizeof(err)), "error message not terminated");
	if (r == 0)
		use_config(c, true);
	else
		FZ_CHECK(err[0], "error without a message");
	config_free(c);
	return 0;
}
