/*
 * pull_remote.c — the two remote calls of a pull: the listing (read with a
 * size cap) and one tar stream of the wanted files (several `tar -c` in a
 * row to stay under argument limits), both counted byte for byte.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sync/pull_int.h"

#define LIST_MAX_BYTES (512LL << 20)
#define TAR_ARGS_MAX (64 * 1024)	/* bytes of names per tar command */
#define POLL_MS 200			/* how often a cancel is noticed */

bool pull_retryable(int err)
{
	switch (-err) {
	case EIO: case EPIPE: case ECONNRESET: case ECONNABORTED:
	case ECONNREFUSED: case ETIMEDOUT: case ENOTCONN: case EHOSTUNREACH:
	case ENETUNREACH: case ENETDOWN: case EAGAIN: case ESHUTDOWN:
		return true;
	}
	return false;
}

/* The command's stderr, kept up to a bound (the fetch parses it). */
struct errbuf {
	char *s;
	size_t n, max;
};

static void errbuf_add(struct errbuf *e, const char *p, size_t n)
{
	char *ns;

	if (n > e->max - e->n)
		n = e->max - e->n;
	if (!n)
		return;
	ns = realloc(e->s, e->n + n + 1);
	if (!ns)
		return;
	e->s = ns;
	memcpy(e->s + e->n, p, n);
	e->n += n;
	e->s[e->n] = '\0';
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Rate bound: true when the callback is to be called now. */
static bool progress_due(struct pull_ctx *c, bool force)
{
	int64_t now = mono_ns();

	if (!force && now - c->prog_ns < (int64_t)SYNC_PULL_PROGRESS_MS * 1000000)
		return false;
	c->prog_ns = now;
	return true;
}

void pull_progress_start(struct pull_ctx *c, int64_t files, int64_t bytes)
{
	memset(&c->prog, 0, sizeof(c->prog));
	c->prog.files_total = files;
	c->prog.bytes_total = bytes;
	c->prog.attempt = c->stats->attempts;
	if (c->cfg->progress && files > 0 && progress_due(c, true))
		c->cfg->progress(&c->prog, c->cfg->progress_arg);
}

void pull_progress_apply(struct pull_ctx *c, int64_t done, int64_t total)
{
	if (!c->cfg->progress || total <= 0)
		return;
	c->prog.applying = true;
	c->prog.applied = done;
	c->prog.apply_total = total;
	if (progress_due(c, done == 0 || done >= total))
		c->cfg->progress(&c->prog, c->cfg->progress_arg);
}

void pull_progress_report(struct pull_ctx *c, int64_t files, int64_t bytes,
			  bool last)
{
	struct sync_pull_progress *p = &c->prog;

	if (!c->cfg->progress)
		return;
	/* The tar may hold more than the listing said (a file grew since):
	 * the totals follow, so done never passes total. */
	p->files_done = files > p->files_done ? files : p->files_done;
	p->bytes_done = bytes > p->bytes_done ? bytes : p->bytes_done;
	if (p->files_done > p->files_total)
		p->files_total = p->files_done;
	if (p->bytes_done > p->bytes_total)
		p->bytes_total = p->bytes_done;
	if (last) {
		p->files_done = p->files_total;
		p->bytes_done = p->bytes_total;
	}
	if (progress_due(c, last))
		c->cfg->progress(p, c->cfg->progress_arg);
}

static void on_staged(int64_t files, int64_t bytes, void *arg)
{
	pull_progress_report(arg, files, bytes, false);
}

static bool cancelled(struct pull_ctx *c)
{
	return c->cfg->cancel && *c->cfg->cancel;
}

/* Next stdout bytes; stderr goes to err. Polls the cancel flag. */
static ssize_t proc_stdout(struct pull_ctx *c, struct transport_proc *p,
			   struct errbuf *err, void *buf, size_t n)
{
	for (;;) {
		int stream = 0;
		ssize_t r = transport_proc_read(p, buf, n, &stream, POLL_MS);

		if (r == -ETIMEDOUT) {
			if (cancelled(c))
				return -EINTR;
			continue;
		}
		if (r <= 0)
			return r;
		if (stream == 1) {
			c->stats->bytes_in += r;
			return r;
		}
		errbuf_add(err, buf, (size_t)r);
	}
}

static void report_failure(struct pull_ctx *c, const char *what, int status,
			   const struct errbuf *err)
{
	char line[64];

	snprintf(line, sizeof(line), "%s failed (exit %d): ", what, status);
	/* The first lines say why; the report clips long paths anyway. */
	pull_report_fatal(&c->rep);
	pull_report_add_path(&c->rep, line, err->n ? err->s : transport_error(c->t),
			     "\n");
}

int pull_remote_list(struct pull_ctx *c, struct pull_list *out)
{
	struct transport_proc *p = NULL;
	struct errbuf err = { .max = 4096 };
	char *script, *buf = NULL;
	size_t len = 0, cap = 0;
	int status = 0, r;

	memset(out, 0, sizeof(*out));
	script = pull_list_script(transport_root(c->t), c->cfg->portable_listing);
	if (!script)
		return -ENOMEM;
	r = transport_spawn(c->t, script, &p);
	free(script);
	if (r < 0)
		goto out;
	transport_proc_close_stdin(p);
	for (;;) {
		ssize_t n;

		if (cap - len < 65536) {
			char *nb;

			cap = cap ? 2 * cap : 1 << 20;
			nb = realloc(buf, cap);
			if (!nb) {
				r = -ENOMEM;
				goto out;
			}
			buf = nb;
		}
		n = proc_stdout(c, p, &err, buf + len, cap - len);
		if (n < 0) {
			r = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if ((long long)len > LIST_MAX_BYTES) {
			pull_report_fatal(&c->rep);
			pull_report_add(&c->rep, "listing larger than %lld bytes: refused\n",
					LIST_MAX_BYTES);
			r = -EFBIG;
			goto out;
		}
	}
	r = transport_proc_wait(p, &status);
	if (r == 0 && status != 0) {
		report_failure(c, "listing", status, &err);
		r = -EIO;
	}
	if (r == 0)
		r = pull_list_parse_ignoring(buf, len, c->caps.max_files,
		    c->cfg->ignore, c->cfg->ignore_arg, out, &c->rep);
out:
	transport_proc_free(p);
	free(buf);
	free(err.s);
	return r;
}

/*
 * cd ROOT, then one `tar -cf - './a' './b'...` for want[from..*next): as
 * many names as fit in TAR_ARGS_MAX bytes, since the whole script is one
 * argument of `sh -c` (128 KiB at most on Linux). Names get "./" so none
 * can look like an option.
 */
static char *fetch_script(struct pull_ctx *c, const struct pull_fetch *want,
			  size_t from, size_t n, size_t *next)
{
	char *root = sync_shell_quote(transport_root(c->t)), *s = NULL;
	size_t len = 0, chunk = 0, i;
	FILE *f;

	if (!root)
		return NULL;
	f = open_memstream(&s, &len);
	if (!f) {
		free(root);
		return NULL;
	}
	/* GNU tar sends a second hard link as a link entry, which the reader
	 * refuses: have it send the content again where it can. */
	fprintf(f, "cd %s || exit 3\nh=\n"
		"tar --hard-dereference -cf - -T /dev/null >/dev/null 2>&1 && "
		"h=--hard-dereference\nexec tar $h -cf -", root);
	for (i = from; i < n && (i == from || chunk < TAR_ARGS_MAX); i++) {
		char *dot = NULL, *q;

		if (asprintf(&dot, "./%s", want[i].path) < 0)
			break;
		q = sync_shell_quote(dot);
		free(dot);
		if (!q)
			break;
		fprintf(f, " %s", q);
		chunk += strlen(q) + 1;
		free(q);
	}
	fputc('\n', f);
	*next = i;
	if (fclose(f) != 0 || i == from) {
		free(s);
		s = NULL;
	}
	free(root);
	return s;
}

/* The tar streams of the chunks read back to back, as one stream of
 * concatenated archives; the worst exit status is kept. */
struct fetch_rd {
	struct pull_ctx *c;
	struct pull_fetch *want;
	size_t n, next;
	struct transport_proc *p;
	struct errbuf err;
	int status;		/* first non-zero exit status */
};

static int fetch_finish_proc(struct fetch_rd *f)
{
	int status = 0, r = transport_proc_wait(f->p, &status);

	transport_proc_free(f->p);
	f->p = NULL;
	if (r == 0 && status != 0 && f->status == 0)
		f->status = status;
	return r;
}

static ssize_t fetch_read(void *arg, void *buf, size_t n)
{
	struct fetch_rd *f = arg;

	for (;;) {
		ssize_t r;

		if (!f->p) {
			char *script;
			int e;

			if (f->next >= f->n || f->status == 3)
				return 0;
			script = fetch_script(f->c, f->want, f->next, f->n, &f->next);
			if (!script)
				return -ENOMEM;
			e = transport_spawn(f->c->t, script, &f->p);
			free(script);
			if (e < 0)
				return e;
			transport_proc_close_stdin(f->p);
		}
		r = proc_stdout(f->c, f->p, &f->err, buf, n);
		if (r != 0)
			return r;
		r = fetch_finish_proc(f);
		if (r < 0)
			return r;
	}
}

/*
 * GNU tar warns "tar: ./NAME: file changed as we read it" (exit 1) or
 * "File shrank by N bytes; padding with zeros" (exit 2) when the sandbox is
 * still writing a file: its staged copy may be torn. Mark those files
 * unstable; a warning naming nothing we asked for (tar quotes odd names)
 * makes every fetched file unstable. Returns true if any warning was seen.
 */
static bool mark_unstable(const char *err, struct pull_fetch *want, size_t n)
{
	static const char *const sigs[] = { ": file changed as we read it",
					    ": File shrank by " };
	bool seen = false;

	for (const char *l = err; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		const char *e = strchr(l, '\n'), *hit = NULL;
		size_t len = e ? (size_t)(e - l) : strlen(l);

		struct pull_fetch key = { 0 }, *f = NULL;
		const char *name;
		char *path = NULL;

		for (size_t k = 0; k < 2 && !hit; k++)
			hit = memmem(l, len, sigs[k], strlen(sigs[k]));
		if (!hit)
			continue;
		seen = true;
		name = memmem(l, (size_t)(hit - l), ": ./", 4);
		if (name)
			path = strndup(name + 4, (size_t)(hit - name - 4));
		if (path) {
			key.path = path;
			f = bsearch(&key, want, n, sizeof(*want), pull_fetch_cmp);
			free(path);
		}
		if (f) {
			f->unstable = true;
			continue;
		}
		for (size_t i = 0; i < n; i++)
			want[i].unstable = true;
	}
	return seen;
}

int pull_remote_fetch(struct pull_ctx *c, struct pull_fetch *want, size_t n,
		      bool *changed_while_read)
{
	struct fetch_rd rd = { .c = c, .want = want, .n = n, .err = { .max = 1 << 20 } };
	struct pull_tar_hook hook = { on_staged, c };
	char drain[4096];
	int r;

	*changed_while_read = false;
	r = pull_tar_read_hooked(fetch_read, &rd, c->stage_fd, want, n, &c->caps,
				 &c->rep, &c->stats->refused, &hook);
	if (r < 0) {
		if (rd.p) {
			transport_proc_kill(rd.p, 9);
			fetch_finish_proc(&rd);
		}
		/* A stream cut short by a dying remote is a transport failure. */
		if (r == -EPROTO && rd.status != 0) {
			report_failure(c, "fetch (tar)", rd.status, &rd.err);
			r = -EIO;
		}
		goto out;
	}
	while (fetch_read(&rd, drain, sizeof(drain)) > 0)
		;	/* the rest of the last record, and any later chunk */
	if (rd.p)
		r = fetch_finish_proc(&rd);
	if (r < 0)
		goto out;
	if (rd.status == 3) {
		r = -ESTALE;
		goto out;
	}
	if (rd.status != 0) {
		if (rd.err.n && mark_unstable(rd.err.s, want, n))
			*changed_while_read = true;
		else
			report_failure(c, "fetch (tar)", rd.status, &rd.err);
	}
	pull_progress_report(c, 0, 0, true);	/* complete: done = total */
out:
	free(rd.err.s);
	return r;
}
