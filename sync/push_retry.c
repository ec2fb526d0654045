/*
 * push_retry.c — the retry set of a sandbox: host paths a push skipped
 * (unreadable, or changed while they were sent). They are not journaled
 * again (that made the background thread push every poll, forever): the
 * set is kept in store meta "sandbox.<id>.push_retry" as
 *     "<due wall-clock ns> <tries>\n<path>\n<path>\n..."
 * and its paths are compared again by the first push after the due time.
 * The delay grows with the tries: 0 (next push), then the push backoff
 * schedule, capped at PUSH_RETRY_MAX_MS.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sync/push_int.h"

static void retry_key(int64_t sb, char *key, size_t n)
{
	snprintf(key, n, "sandbox.%lld.push_retry", (long long)sb);
}

int push_retry_add(struct push_retry *r, const char *path)
{
	char **v;

	if (strchr(path, '\n'))
		return 0;	/* not storable: retried when it changes again */
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->paths[i], path))
			return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 8;

		v = realloc(r->paths, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		r->paths = v;
		r->cap = cap;
	}
	r->paths[r->n] = strdup(path);
	if (!r->paths[r->n])
		return -ENOMEM;
	r->n++;
	return 0;
}

bool push_retry_has(const struct push_retry *r, const char *path)
{
	for (size_t i = 0; i < r->n; i++)
		if (!strcmp(r->paths[i], path))
			return true;
	return false;
}

static int load_key(struct store *st, const char *key, struct push_retry *out)
{
	char *v = NULL, *line, *save = NULL;
	long long due = 0;
	int tries = 0, r;

	memset(out, 0, sizeof(*out));
	r = store_meta_get(st, key, &v);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return r;
	line = strtok_r(v, "\n", &save);
	if (line && sscanf(line, "%lld %d", &due, &tries) == 2) {
		out->due_ns = due;
		out->tries = tries;
		while (r == 0 && (line = strtok_r(NULL, "\n", &save)))
			r = push_retry_add(out, line);
	}
	free(v);
	if (r < 0)
		push_retry_release(out);
	return r;
}

int push_retry_load(struct store *st, int64_t sb, struct push_retry *out)
{
	char key[64];

	retry_key(sb, key, sizeof(key));
	return load_key(st, key, out);
}

static int save_key(struct store *st, const char *key, const struct push_retry *r)
{
	char *v = NULL;
	size_t len = 64;
	int rc;

	if (!r->n)
		return store_meta_set(st, key, NULL);
	for (size_t i = 0; i < r->n; i++)
		len += strlen(r->paths[i]) + 1;
	v = malloc(len);
	if (!v)
		return -ENOMEM;
	len = (size_t)sprintf(v, "%lld %d\n", (long long)r->due_ns, r->tries);
	for (size_t i = 0; i < r->n; i++)
		len += (size_t)sprintf(v + len, "%s\n", r->paths[i]);
	rc = store_meta_set(st, key, v);
	free(v);
	return rc;
}

int push_retry_save(struct store *st, int64_t sb, const struct push_retry *r)
{
	char key[64];

	retry_key(sb, key, sizeof(key));
	return save_key(st, key, r);
}

/*
 * The paths a failed attempt may have changed on the sandbox without a
 * ledger commit ("sandbox.<id>.push_attempted"): what the sandbox holds
 * there may be that attempt's own work, so the next (forced) push does not
 * guard them. Paths only; the set grows until a push commits.
 */
static void attempted_key(int64_t sb, char *key, size_t n)
{
	snprintf(key, n, "sandbox.%lld.push_attempted", (long long)sb);
}

int push_attempted_load(struct store *st, int64_t sb, struct push_map *out)
{
	char key[64], *v = NULL, *line, *save = NULL;
	int r;

	attempted_key(sb, key, sizeof(key));
	r = store_meta_get(st, key, &v);
	if (r == -ENOENT)
		return 0;
	line = r == 0 ? strtok_r(v, "\n", &save) : NULL;	/* header */
	while (r == 0 && line && (line = strtok_r(NULL, "\n", &save)))
		r = push_map_put(out, line, (void *)1);
	free(v);
	return r;
}

static void put_line(FILE *f, const char *path)
{
	if (!strchr(path, '\n'))
		fprintf(f, "%s\n", path);
}

int push_attempted_save(struct store *st, int64_t sb, const struct push_plan *p)
{
	char key[64], *old = NULL, *v = NULL;
	size_t len = 0;
	FILE *f;
	int rc;

	attempted_key(sb, key, sizeof(key));
	rc = store_meta_get(st, key, &old);
	if (rc < 0 && rc != -ENOENT)
		return rc;
	f = open_memstream(&v, &len);
	if (!f) {
		free(old);
		return -ENOMEM;
	}
	fputs(old ? old : "0 0\n", f);	/* the retry set's format */
	for (size_t i = 0; i < p->nitems; i++)
		if (p->items[i].act != PUSH_CHMOD)
			put_line(f, p->items[i].path);
	for (size_t i = 0; i < p->nops; i++)
		if (p->ops[i].b)
			put_line(f, p->ops[i].b);
	free(old);
	if (fclose(f) != 0) {
		free(v);
		return -ENOMEM;
	}
	rc = store_meta_set(st, key, v);
	free(v);
	return rc;
}

int push_attempted_clear(struct store *st, int64_t sb)
{
	char key[64];

	attempted_key(sb, key, sizeof(key));
	return store_meta_set(st, key, NULL);
}

void push_retry_release(struct push_retry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->paths[i]);
	free(r->paths);
	memset(r, 0, sizeof(*r));
}

int64_t sync_push_retry_at(struct store *st, int64_t sandbox_id)
{
	struct push_retry r;
	int64_t at = 0;

	if (push_retry_load(st, sandbox_id, &r) == 0 && r.n)
		at = r.due_ns > 0 ? r.due_ns : 1;
	push_retry_release(&r);
	return at;
}
