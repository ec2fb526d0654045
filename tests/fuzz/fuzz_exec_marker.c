/*
 * fuzz_exec_marker.c — the exec marker filter (exec/exec_out.c: mfilter_*)
 * that splits a remote command's stdout into the user's text and the
 * session markers (env, cwd, status). Input: the stdout stream. Oracles:
 * the events (text bytes, markers) do not depend on how the stream is cut
 * into reads (whole, byte by byte, uneven chunks); a stream without the
 * marker lead byte passes through unchanged; no marker payload is over
 * EXEC_MARKER_MAX and text never outgrows the input.
 */
#include "exec/exec_int.h"
#include "tests/fuzz/fuzz_common.h"

static const char nonce[] = "0123456789abcdef0123456789abcdef";

/* Every event, serialized: 'T' text bytes are merged; 'M' type len payload. */
struct events {
	char *buf;
	size_t len, cap;
	size_t text;
	int in_text;
};

static void ev_put(struct events *e, const void *p, size_t n)
{
	if (e->len + n > e->cap) {
		e->cap = (e->len + n) * 2 + 64;
		e->buf = realloc(e->buf, e->cap);
		FZ_CHECK(e->buf, "oom");
	}
	memcpy(e->buf + e->len, p, n);
	e->len += n;
}

static void on_text(void *arg, const char *p, size_t n)
{
	struct events *e = arg;

	FZ_CHECK(n > 0, "empty text event");
	if (!e->in_text)
		ev_put(e, "T", 1);
	e->in_text = 1;
	ev_put(e, p, n);
	e->text += n;
}

static void on_marker(void *arg, char type, const char *p, size_t n)
{
	struct events *e = arg;
	char hdr[32];

	FZ_CHECK(n <= EXEC_MARKER_MAX, "marker of %zu bytes", n);
	FZ_CHECK(p[n] == '\0', "payload not terminated");
	e->in_text = 0;
	snprintf(hdr, sizeof(hdr), "M%c%zu:", type, n);
	ev_put(e, hdr, strlen(hdr));
	ev_put(e, p, n);
}

/* Feed in chunks: step 0 = whole, else sizes from a small LCG. */
static void run(const uint8_t *d, size_t n, unsigned step, struct events *e)
{
	struct mfilter f;
	size_t pos = 0;
	unsigned seed = step;

	FZ_CHECK(mfilter_init(&f, nonce) == 0, "mfilter_init");
	f.on_text = on_text;
	f.on_marker = on_marker;
	f.arg = e;
	while (pos < n) {
		size_t k = n - pos;

		if (step == 1) {
			k = 1;
		} else if (step > 1) {
			seed = seed * 1103515245u + 12345u;
			k = 1 + (seed >> 16) % 64;
			if (k > n - pos)
				k = n - pos;
		}
		mfilter_feed(&f, (const char *)d + pos, k);
		pos += k;
	}
	mfilter_flush(&f);
	mfilter_release(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct events a = { 0 }, b = { 0 }, c = { 0 };

	run(data, size, 0, &a);
	run(data, size, 1, &b);
	run(data, size, 7 + (unsigned)size, &c);
	FZ_CHECK(a.len == b.len && (!a.len || !memcmp(a.buf, b.buf, a.len)),
		 "whole vs byte-by-byte feeding differ");
	FZ_CHECK(a.len == c.len && (!a.len || !memcmp(a.buf, c.buf, a.len)),
		 "whole vs chunked feeding differ");
	FZ_CHECK(a.text <= size, "more text out than in");
	if (!memchr(data, '\036', size))
		FZ_CHECK(a.text == size && (!size || (a.buf[0] == 'T' &&
			 !memcmp(a.buf + 1, data, size))),
			 "plain text not passed through unchanged");
	free(a.buf);
	free(b.buf);
	free(c.buf);
	return 0;
}
