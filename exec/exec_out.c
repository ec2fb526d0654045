/*
 * exec_out.c — output of a command: buffers bounded to a cap that keep the
 * head and the tail, and the filter that lifts nonce markers off stdout.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec_int.h"

int capbuf_init(struct capbuf *b, size_t cap)
{
	memset(b, 0, sizeof(*b));
	if (cap < 2)
		cap = 2;
	b->cap = cap;
	b->hcap = cap / 2;
	b->tcap = cap - b->hcap;
	return 0;
}

int capbuf_add(struct capbuf *b, const void *p, size_t n)
{
	const char *s = p;
	size_t take;

	b->total += n;
	if (b->head_len < b->hcap) {
		take = b->hcap - b->head_len < n ? b->hcap - b->head_len : n;
		if (!b->head && !(b->head = malloc(b->hcap)))
			return -ENOMEM;
		memcpy(b->head + b->head_len, s, take);
		b->head_len += take;
		s += take;
		n -= take;
	}
	if (!n)
		return 0;
	if (!b->tail && !(b->tail = malloc(b->tcap)))
		return -ENOMEM;
	if (n > b->tcap) {	/* only the last tcap bytes can survive */
		s += n - b->tcap;
		n = b->tcap;
	}
	while (n) {
		size_t w = (b->tail_pos + b->tail_len) % b->tcap;

		take = b->tcap - w < n ? b->tcap - w : n;
		memcpy(b->tail + w, s, take);
		if (b->tail_len + take > b->tcap) {	/* overwrote the oldest */
			b->tail_pos = (b->tail_pos + b->tail_len + take - b->tcap) %
				      b->tcap;
			b->tail_len = b->tcap;
		} else {
			b->tail_len += take;
		}
		s += take;
		n -= take;
	}
	return 0;
}

int capbuf_take(struct capbuf *b, char **out, size_t *len, bool *truncated)
{
	uint64_t omitted = b->total - b->head_len - b->tail_len;
	char notice[96];
	size_t nl = 0, first, n;
	char *r;

	if (omitted)
		nl = (size_t)snprintf(notice, sizeof(notice),
				      "\n[hermes: %" PRIu64 " bytes of output omitted]\n",
				      omitted);
	n = b->head_len + nl + b->tail_len;
	r = malloc(n + 1);
	if (!r)
		return -ENOMEM;
	memcpy(r, b->head ? b->head : "", b->head_len);
	memcpy(r + b->head_len, notice, nl);
	first = b->tcap - b->tail_pos < b->tail_len ? b->tcap - b->tail_pos
						     : b->tail_len;
	if (b->tail_len) {
		memcpy(r + b->head_len + nl, b->tail + b->tail_pos, first);
		memcpy(r + b->head_len + nl + first, b->tail, b->tail_len - first);
	}
	r[n] = '\0';
	*out = r;
	*len = n;
	if (omitted && truncated)
		*truncated = true;
	return 0;
}

void capbuf_release(struct capbuf *b)
{
	if (!b)
		return;
	free(b->head);
	free(b->tail);
	memset(b, 0, sizeof(*b));
}

/* ---- marker filter ---- */

int mfilter_init(struct mfilter *f, const char *nonce)
{
	memset(f, 0, sizeof(*f));
	f->patlen = (size_t)snprintf(f->pat, sizeof(f->pat), "\036HERMES:%s:",
				     nonce);
	f->payload = malloc(EXEC_MARKER_MAX + 1);
	return f->payload ? 0 : -ENOMEM;
}

void mfilter_release(struct mfilter *f)
{
	if (f) {
		free(f->payload);
		f->payload = NULL;
	}
}

static void text(struct mfilter *f, const char *p, size_t n)
{
	if (n && f->on_text)
		f->on_text(f->arg, p, n);
}

/* Inside a marker (the pattern matched): one byte of type, length, payload. */
static void marker_byte(struct mfilter *f, char c)
{
	switch (f->state) {
	case 1:
		f->type = c;
		f->len = 0;
		f->got = 0;
		f->state = 2;
		return;
	case 2:
		/* f->got counts digits here; at most 9 keep len from overflowing */
		if (c >= '0' && c <= '9' && f->got < 9) {
			f->len = f->len * 10 + (size_t)(c - '0');
			f->got++;
			return;
		}
		if (c != ':' || !f->got || f->len > EXEC_MARKER_MAX) {
			f->state = 0;	/* malformed: dropped */
			return;
		}
		f->got = 0;
		f->state = 3;
		break;
	case 3:
		f->payload[f->got++] = c;
		break;
	}
	if (f->state == 3 && f->got == f->len) {
		f->payload[f->got] = '\0';
		f->state = 0;
		if (f->on_marker)
			f->on_marker(f->arg, f->type, f->payload, f->len);
	}
}

void mfilter_feed(struct mfilter *f, const char *p, size_t n)
{
	size_t i = 0, start = 0;

	while (i < n) {
		if (f->state) {
			marker_byte(f, p[i++]);
			start = i;
			continue;
		}
		if (p[i] == f->pat[f->m]) {
			if (f->m == 0)	/* text before a possible marker */
				text(f, p + start, i - start);
			f->m++;
			i++;
			start = i;
			if (f->m == f->patlen) {
				f->m = 0;
				f->state = 1;
			}
			continue;
		}
		if (f->m) {
			/* Mismatch: the held bytes were text. '\036' occurs in
			 * the pattern only first, so matching restarts here. */
			text(f, f->pat, f->m);
			f->m = 0;
			start = i;
			continue;
		}
		i++;
	}
	if (!f->state && !f->m)
		text(f, p + start, n - start);
}

void mfilter_flush(struct mfilter *f)
{
	if (!f->state && f->m)
		text(f, f->pat, f->m);
	f->m = 0;
	f->state = 0;
}
