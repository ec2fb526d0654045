/*
 * push_map.c — a chained string hash map for the planner (dirty paths and
 * the virtual ledger). Prefix queries scan: they run once per rename or
 * rescan, not per path.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "sync/push_int.h"

static size_t slot(const struct push_map *m, const char *key)
{
	return (size_t)(XXH3_64bits(key, strlen(key)) & (m->nb - 1));
}

static struct push_mapent *find(const struct push_map *m, const char *key)
{
	struct push_mapent *e;

	if (!m->nb)
		return NULL;
	for (e = m->b[slot(m, key)]; e; e = e->next)
		if (!strcmp(e->key, key))
			return e;
	return NULL;
}

void *push_map_get(const struct push_map *m, const char *key, bool *found)
{
	struct push_mapent *e = find(m, key);

	if (found)
		*found = e != NULL;
	return e ? e->val : NULL;
}

static int grow(struct push_map *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct push_mapent **b = calloc(nb, sizeof(*b));
	struct push_map nm = { .b = b, .nb = nb, .n = m->n };

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		struct push_mapent *e = m->b[i], *next;

		for (; e; e = next) {
			size_t s = slot(&nm, e->key);

			next = e->next;
			e->next = b[s];
			b[s] = e;
		}
	}
	free(m->b);
	*m = nm;
	return 0;
}

int push_map_put(struct push_map *m, const char *key, void *val)
{
	struct push_mapent *e = find(m, key);
	size_t s;

	if (e) {
		e->val = val;
		return 0;
	}
	if (m->n >= m->nb && grow(m) < 0)
		return -ENOMEM;
	e = malloc(sizeof(*e));
	if (!e || !(e->key = strdup(key))) {
		free(e);
		return -ENOMEM;
	}
	e->val = val;
	s = slot(m, key);
	e->next = m->b[s];
	m->b[s] = e;
	m->n++;
	return 0;
}

void *push_map_del(struct push_map *m, const char *key)
{
	struct push_mapent **pp;

	if (!m->nb)
		return NULL;
	for (pp = &m->b[slot(m, key)]; *pp; pp = &(*pp)->next) {
		struct push_mapent *e = *pp;
		void *v;

		if (strcmp(e->key, key))
			continue;
		*pp = e->next;
		v = e->val;
		free(e->key);
		free(e);
		m->n--;
		return v;
	}
	return NULL;
}

bool push_path_under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	if (!n)
		return true;
	return !strncmp(path, prefix, n) && (path[n] == '\0' || path[n] == '/');
}

static int strp_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int push_map_prefix(const struct push_map *m, const char *prefix,
		    const char ***out, size_t *n)
{
	const char **v = malloc((m->n + 1) * sizeof(*v));
	size_t k = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < m->nb; i++)
		for (struct push_mapent *e = m->b[i]; e; e = e->next)
			if (push_path_under(e->key, prefix))
				v[k++] = e->key;
	qsort(v, k, sizeof(*v), strp_cmp);
	*out = v;
	*n = k;
	return 0;
}

void push_map_clear(struct push_map *m, void (*free_val)(void *))
{
	for (size_t i = 0; i < m->nb; i++) {
		struct push_mapent *e = m->b[i], *next;

		for (; e; e = next) {
			next = e->next;
			if (free_val)
				free_val(e->val);
			free(e->key);
			free(e);
		}
	}
	free(m->b);
	memset(m, 0, sizeof(*m));
}
