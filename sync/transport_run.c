/*
 * transport_run.c — run-to-completion helper and shell-like word splitting.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sync/transport_int.h"

struct feeder {
	struct transport_proc *p;
	const void *in;
	size_t inlen;
	int rc;
};

/* Input goes from its own thread: a command that writes a lot before it
 * reads all of its input must not deadlock against us. */
static void *feed_input(void *arg)
{
	struct feeder *f = arg;

	f->rc = f->inlen ? transport_proc_write(f->p, f->in, f->inlen) : 0;
	transport_proc_close_stdin(f->p);
	return NULL;
}

struct growbuf {
	char *data;
	size_t len, cap;
};

static int growbuf_add(struct growbuf *b, const void *d, size_t n, size_t max)
{
	if (b->len + n > max)
		n = max > b->len ? max - b->len : 0;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *nd;

		while (cap < b->len + n + 1)
			cap *= 2;
		nd = realloc(b->data, cap);
		if (!nd)
			return -ENOMEM;
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->len, d, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

static int collect(struct transport_proc *p, struct growbuf *out,
		   struct growbuf *err, bool keep_out)
{
	char buf[65536];
	int stream, rc;
	ssize_t n;

	while ((n = transport_proc_read(p, buf, sizeof(buf), &stream, -1)) > 0) {
		if (stream == 1 && keep_out)
			rc = growbuf_add(out, buf, (size_t)n, SIZE_MAX / 2);
		else if (stream == 2)
			rc = growbuf_add(err, buf, (size_t)n, 4096);
		else
			rc = 0;
		if (rc)
			return rc;
	}
	return (int)n;
}

static void trim_error(struct transport *t, struct growbuf *err, int status)
{
	char *s = err->data ? err->data : "";
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	/* Keep the last line: that is where sh and tar put the reason. */
	if (strrchr(s, '\n'))
		s = strrchr(s, '\n') + 1;
	transport_set_error(t, "command exited with status %d%s%s", status,
			    *s ? ": " : "", s);
}

int transport_run(struct transport *t, const char *script,
		  const void *in, size_t inlen,
		  char **out, size_t *outlen, int *status)
{
	struct growbuf ob = { 0 }, eb = { 0 };
	struct transport_proc *p = NULL;
	struct feeder f = { 0 };
	pthread_t th;
	bool fed = false;
	int rc, st = 0;

	if (out)
		*out = NULL;
	if (outlen)
		*outlen = 0;
	rc = transport_spawn(t, script, &p);
	if (rc)
		return rc;
	f.p = p;
	f.in = in;
	f.inlen = in ? inlen : 0;
	if (f.inlen) {
		rc = -pthread_create(&th, NULL, feed_input, &f);
		if (rc)
			goto out;
		fed = true;
	} else {
		transport_proc_close_stdin(p);
	}
	rc = collect(p, &ob, &eb, out != NULL);
	if (fed) {
		pthread_join(th, NULL);
		fed = false;
	}
	if (!rc)
		rc = transport_proc_wait(p, &st);
	if (rc)
		goto out;
	if (st != 0)
		trim_error(t, &eb, st);
	if (status)
		*status = st;
	else if (st != 0)
		rc = -EIO;
	if (out && !rc) {
		if (!ob.data && !(ob.data = strdup("")))
			rc = -ENOMEM;
		*out = ob.data;
		if (outlen)
			*outlen = ob.len;
		ob.data = NULL;	/* transferred */
	}
out:
	if (fed) {
		transport_proc_kill(p, 9);
		pthread_join(th, NULL);
	}
	transport_proc_free(p);
	free(ob.data);
	free(eb.data);
	return rc;
}

void argv_free(char **v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; v[i]; i++)
		free(v[i]);
	free(v);
}

/* Append one word (len bytes of w) to the vector. */
static int words_push(char ***v, size_t *n, const char *w, size_t len)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (!(nv[*n] = strndup(w, len)))
		return -ENOMEM;
	nv[++*n] = NULL;
	return 0;
}

int sync_split_words(const char *s, char ***out)
{
	size_t n = 0, len = 0, cap = strlen(s) + 1;
	char **v = calloc(1, sizeof(*v)), *w = malloc(cap);
	bool in_word = false;
	int rc = 0;
	char q = 0;

	if (!v || !w) {
		rc = -ENOMEM;
		goto out;
	}
	for (; *s && !rc; s++) {
		if (q == '\'' && *s != '\'') {
			w[len++] = *s;
		} else if (q == '"' && *s == '\\' && s[1] &&
			   strchr("\"\\$`", s[1])) {
			w[len++] = *++s;
		} else if ((q && *s == q) || (!q && (*s == '\'' || *s == '"'))) {
			q = q ? 0 : *s;
			in_word = true;
		} else if (q) {
			w[len++] = *s;
		} else if (*s == '\\' && s[1]) {
			w[len++] = *++s;
			in_word = true;
		} else if (*s == ' ' || *s == '\t' || *s == '\n') {
			if (in_word)
				rc = words_push(&v, &n, w, len);
			in_word = false;
			len = 0;
		} else {
			w[len++] = *s;
			in_word = true;
		}
	}
	if (!rc && q)
		rc = -EINVAL;
	if (!rc && in_word)
		rc = words_push(&v, &n, w, len);
	if (!rc) {
		*out = v;
		v = NULL;	/* transferred */
	}
out:
	argv_free(v);
	free(w);
	return rc;
}
