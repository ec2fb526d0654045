/*
 * fuzz_pull_tar.c — the hostile tar reader of sync-back (pull_tar.c).
 * Input: a tar stream as the sandbox would send it, read back through the
 * pull callback in uneven chunks. A fixed set of files is requested.
 * Oracles: only requested regular files are staged, each at most once,
 * within the caps, in disjoint stage ranges whose bytes hash to the
 * recorded SHA-256; the result is 0, -EPROTO or -EFBIG; the report has no
 * control bytes.
 */
#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sync/pull_int.h"
#include "tests/fuzz/fuzz_common.h"

/* Sorted (strcmp), as pull_tar_read wants. The seed corpus uses them. */
static const char *const wanted[] = {
	"a", "b.txt", "big", "d/e", "d/f/g", "dup", "empty", "x y", "z",
};
#define NWANT (sizeof(wanted) / sizeof(*wanted))

static const struct pull_caps caps = {
	.max_total_bytes = 40 * 1024,
	.max_files = 6,
	.max_file_size = 16 * 1024,
};

struct src {
	const uint8_t *p;
	size_t len, pos;
	unsigned seed;
};

/* Chunk sizes vary (1 .. 8 KiB) so libarchive's buffering is exercised. */
static ssize_t src_read(void *arg, void *buf, size_t n)
{
	struct src *s = arg;
	size_t k;

	s->seed = s->seed * 1103515245u + 12345u;
	k = 1 + (s->seed >> 16) % 8192;
	if (k > n)
		k = n;
	if (k > s->len - s->pos)
		k = s->len - s->pos;
	memcpy(buf, s->p + s->pos, k);
	s->pos += k;
	return (ssize_t)k;
}

static int stage_fd = -1;

static void check_fetched(const struct pull_fetch *want, int64_t stage_len)
{
	int64_t total = 0, files = 0;
	uint8_t sha[STORE_SHA256_LEN];

	for (size_t i = 0; i < NWANT; i++) {
		const struct pull_fetch *f = &want[i];
		char *buf;

		if (!f->got)
			continue;
		files++;
		total += f->size;
		FZ_CHECK(f->size >= 0 && f->size <= caps.max_file_size,
			 "%s: size %lld", f->path, (long long)f->size);
		FZ_CHECK(S_ISREG(f->mode), "%s: mode %o", f->path, f->mode);
		FZ_CHECK(f->off >= 0 && f->off + f->size <= stage_len,
			 "%s: range outside the stage", f->path);
		for (size_t j = 0; j < i; j++)
			FZ_CHECK(!want[j].got || f->size == 0 || want[j].size == 0 ||
				 f->off >= want[j].off + want[j].size ||
				 want[j].off >= f->off + f->size,
				 "%s and %s overlap in the stage", f->path, want[j].path);
		buf = malloc((size_t)f->size + 1);
		FZ_CHECK(buf && pread(stage_fd, buf, (size_t)f->size, f->off) == f->size,
			 "stage read");
		FZ_CHECK(pull_sha_buf(buf, (size_t)f->size, sha) == 0 &&
			 memcmp(sha, f->sha, sizeof(sha)) == 0,
			 "%s: staged bytes do not match the recorded hash", f->path);
		free(buf);
	}
	FZ_CHECK(files <= caps.max_files, "%lld files", (long long)files);
	FZ_CHECK(total <= caps.max_total_bytes, "%lld bytes", (long long)total);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pull_fetch want[NWANT];
	struct pull_report rep = { 0 };
	struct src s = { .p = data, .len = size, .seed = (unsigned)size };
	struct stat st;
	int64_t refused = 0;
	int r;

	if (stage_fd < 0) {
		stage_fd = memfd_create("fuzz-stage", MFD_CLOEXEC);
		FZ_CHECK(stage_fd >= 0, "memfd_create");
	}
	FZ_CHECK(ftruncate(stage_fd, 0) == 0 && lseek(stage_fd, 0, SEEK_SET) == 0,
		 "stage reset");
	memset(want, 0, sizeof(want));
	for (size_t i = 0; i < NWANT; i++)
		want[i].path = wanted[i];
	r = pull_tar_read(src_read, &s, stage_fd, want, NWANT, &caps, &rep,
			  &refused);
	FZ_CHECK(r == 0 || r == -EPROTO || r == -EFBIG, "r=%d", r);
	/* Every refusal is reported on its own line. */
	FZ_CHECK(refused >= 0 && refused <= rep.lines, "%lld refused, %lld lines",
		 (long long)refused, (long long)rep.lines);
	FZ_CHECK(fstat(stage_fd, &st) == 0, "fstat");
	check_fetched(want, (int64_t)st.st_size);
	FZ_CHECK(!rep.buf || (rep.len == strlen(rep.buf) &&
			      fz_text_clean(rep.buf, rep.len)),
		 "control byte in the report: %s", rep.buf);
	pull_report_release(&rep);
	return 0;
}
