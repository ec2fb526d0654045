/*
 * pull_tar.c — the hostile tar reader: libarchive over a pull callback,
 * only requested regular files kept, caps enforced on headers and on the
 * bytes actually read, content hashed while it is staged.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "sync/pull_int.h"

struct pull_sha {
	EVP_MD_CTX *ctx;
};

int pull_sha_new(struct pull_sha **out)
{
	struct pull_sha *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->ctx = EVP_MD_CTX_new();
	if (!s->ctx || EVP_DigestInit_ex(s->ctx, EVP_sha256(), NULL) != 1) {
		pull_sha_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

int pull_sha_update(struct pull_sha *s, const void *p, size_t n)
{
	return EVP_DigestUpdate(s->ctx, p, n) == 1 ? 0 : -EIO;
}

int pull_sha_final(struct pull_sha *s, uint8_t out[STORE_SHA256_LEN])
{
	unsigned int n = 0;

	return EVP_DigestFinal_ex(s->ctx, out, &n) == 1 ? 0 : -EIO;
}

void pull_sha_free(struct pull_sha *s)
{
	if (!s)
		return;
	EVP_MD_CTX_free(s->ctx);
	free(s);
}

int pull_sha_buf(const void *p, size_t n, uint8_t out[STORE_SHA256_LEN])
{
	struct pull_sha *s = NULL;
	int r = pull_sha_new(&s);

	if (r == 0)
		r = pull_sha_update(s, p, n);
	if (r == 0)
		r = pull_sha_final(s, out);
	pull_sha_free(s);
	return r;
}

int pull_fetch_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pull_fetch *)a)->path,
		      ((const struct pull_fetch *)b)->path);
}

struct tar_ctx {
	pull_read_fn rd;
	void *rd_arg;
	int err;		/* first error from rd */
	char buf[64 * 1024];	/* the read callback's: libarchive reads from it */
	char data[64 * 1024];	/* entry data copied out */
	struct archive *a;
	int stage_fd;
	int64_t stage_off;
	int64_t total, files;
	const struct pull_caps *caps;
	struct pull_report *rep;
	int64_t refused;
	const struct pull_tar_hook *hook;
	int64_t staged;		/* files completed */
};

static void tar_tell(struct tar_ctx *c)
{
	if (c->hook && c->hook->staged)
		c->hook->staged(c->staged, c->total, c->hook->arg);
}

static ssize_t tar_read_cb(struct archive *a, void *arg, const void **out)
{
	struct tar_ctx *c = arg;
	ssize_t n = c->rd(c->rd_arg, c->buf, sizeof(c->buf));

	if (n < 0) {
		c->err = (int)n;
		archive_set_error(a, (int)-n, "stream read failed");
		return -1;
	}
	*out = c->buf;
	return n;
}

static int cap_exceeded(struct tar_ctx *c, const char *path, const char *what)
{
	pull_report_fatal(c->rep);
	pull_report_add_path(c->rep, "refused pull: ", path, "");
	pull_report_add(c->rep, ": %s cap exceeded (nothing applied)\n", what);
	return -EFBIG;
}

/* Copy one entry's data into the stage, hashing; caps on real bytes. */
static int tar_stage_data(struct tar_ctx *c, struct pull_fetch *f)
{
	struct pull_sha *sha = NULL;
	int64_t size = 0;
	int r;

	r = pull_sha_new(&sha);
	if (r < 0)
		return r;
	for (;;) {
		ssize_t n = archive_read_data(c->a, c->data, sizeof(c->data));

		if (n == 0)
			break;
		if (n < 0) {
			r = c->err ? c->err : -EPROTO;
			goto out;
		}
		size += n;
		c->total += n;
		if (size > c->caps->max_file_size) {
			r = cap_exceeded(c, f->path, "single file size");
			goto out;
		}
		if (c->total > c->caps->max_total_bytes) {
			r = cap_exceeded(c, f->path, "total bytes");
			goto out;
		}
		r = pull_sha_update(sha, c->data, (size_t)n);
		if (r < 0)
			goto out;
		if (pwrite(c->stage_fd, c->data, (size_t)n,
			   c->stage_off + size - n) != n) {
			r = errno ? -errno : -EIO;
			goto out;
		}
		tar_tell(c);
	}
	r = pull_sha_final(sha, f->sha);
	if (r < 0)
		goto out;
	f->off = c->stage_off;
	f->size = size;
	f->got = true;
	c->stage_off += size;
	c->staged++;
	tar_tell(c);
out:
	pull_sha_free(sha);
	return r;
}

/* Decide about one header: 1 = stage it into *fp, 0 = skip, <0 = fatal. */
static int tar_check_entry(struct tar_ctx *c, struct archive_entry *ae,
			   struct pull_fetch *want, size_t nwant,
			   struct pull_fetch **fp)
{
	const char *raw = archive_entry_pathname(ae), *why;
	struct pull_fetch key, *f;
	char *path = NULL;
	int r;

	if (!raw)
		raw = "";
	r = pull_path_check(raw, &path, &why);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		pull_report_add_path(c->rep, "refused tar entry ", raw, "");
		pull_report_add(c->rep, ": %s\n", why);
		c->refused++;
		return 0;
	}
	key.path = path;
	f = nwant ? bsearch(&key, want, nwant, sizeof(*want), pull_fetch_cmp) : NULL;
	why = NULL;
	if (archive_entry_hardlink(ae))
		why = "hard link";
	else if (archive_entry_filetype(ae) != AE_IFREG)
		why = "not a regular file (link, device, fifo, socket or directory)";
	else if (!f)
		why = "not requested";
	else if (f->got)
		why = "sent twice";
	if (why) {
		pull_report_add_path(c->rep, "refused tar entry ", path, "");
		pull_report_add(c->rep, ": %s\n", why);
		c->refused++;
		free(path);
		return 0;
	}
	free(path);
	if (++c->files > c->caps->max_files)
		return cap_exceeded(c, f->path, "file count");
	if (archive_entry_size_is_set(ae)) {
		int64_t sz = archive_entry_size(ae);

		if (sz > c->caps->max_file_size)
			return cap_exceeded(c, f->path, "single file size");
		if (sz > c->caps->max_total_bytes - c->total)
			return cap_exceeded(c, f->path, "total bytes");
	}
	f->mode = (uint32_t)archive_entry_mode(ae);
	f->mtime_ns = (int64_t)archive_entry_mtime(ae) * 1000000000 +
		      archive_entry_mtime_nsec(ae);
	*fp = f;
	return 1;
}

static int tar_loop(struct tar_ctx *c, struct pull_fetch *want, size_t nwant)
{
	struct archive_entry *ae;
	int r;

	for (;;) {
		struct pull_fetch *f = NULL;

		r = archive_read_next_header(c->a, &ae);
		if (r == ARCHIVE_EOF)
			return 0;
		if (r < ARCHIVE_WARN) {
			if (c->err)
				return c->err;
			pull_report_fatal(c->rep);
			pull_report_add(c->rep, "bad tar stream: %s\n",
					archive_error_string(c->a) ?
					archive_error_string(c->a) : "?");
			return -EPROTO;
		}
		r = tar_check_entry(c, ae, want, nwant, &f);
		if (r < 0)
			return r;
		if (r == 0)
			continue;	/* libarchive skips unread data itself */
		r = tar_stage_data(c, f);
		if (r < 0)
			return r;
	}
}

int pull_tar_read(pull_read_fn rd, void *rd_arg, int stage_fd,
		  struct pull_fetch *want, size_t nwant,
		  const struct pull_caps *caps, struct pull_report *rep,
		  int64_t *refused)
{
	return pull_tar_read_hooked(rd, rd_arg, stage_fd, want, nwant, caps, rep,
				    refused, NULL);
}

int pull_tar_read_hooked(pull_read_fn rd, void *rd_arg, int stage_fd,
			 struct pull_fetch *want, size_t nwant,
			 const struct pull_caps *caps, struct pull_report *rep,
			 int64_t *refused, const struct pull_tar_hook *hook)
{
	struct tar_ctx *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	c->hook = hook;
	c->rd = rd;
	c->rd_arg = rd_arg;
	c->stage_fd = stage_fd;
	c->caps = caps;
	c->rep = rep;
	c->stage_off = lseek(stage_fd, 0, SEEK_END);
	if (c->stage_off < 0)
		c->stage_off = 0;
	c->a = archive_read_new();
	if (!c->a) {
		free(c);
		return -ENOMEM;
	}
	/* tar only: no other format or compression parser faces the sandbox. */
	archive_read_support_format_tar(c->a);
	/* The fetch runs several tar commands in a row (argument limits). */
	archive_read_set_option(c->a, "tar", "read_concatenated_archives", "1");
	if (archive_read_open(c->a, c, NULL, tar_read_cb, NULL) != ARCHIVE_OK) {
		r = c->err ? c->err : -EPROTO;
		if (r == -EPROTO) {
			pull_report_fatal(rep);
			pull_report_add(rep, "bad tar stream: %s\n",
					archive_error_string(c->a) ?
					archive_error_string(c->a) : "?");
		}
		goto out;
	}
	r = tar_loop(c, want, nwant);
	if (refused)
		*refused += c->refused;
out:
	archive_read_free(c->a);
	free(c);
	return r;
}
