/*
 * fuzz_url.c — the sandbox URL parser (transport_url_check, url_parts_parse)
 * and the shell word splitter and quoter the cmd: transport relies on.
 * Input: one URL. Oracles: a URL accepted has an absolute root without
 * ".." components or trailing '/', a non-empty ssh host, a port in range, a
 * non-empty cmd prefix; transport_url_check agrees with url_parts_parse; and
 * quoting any string then splitting it gives back exactly that string.
 */
#include <errno.h>

#include "sync/transport_int.h"
#include "tests/fuzz/fuzz_common.h"

static void check_root(const char *root)
{
	size_t n = strlen(root);

	FZ_CHECK(n && root[0] == '/', "root not absolute: %s", root);
	FZ_CHECK(n == 1 || root[n - 1] != '/', "trailing slash: %s", root);
	FZ_CHECK(!strstr(root, "/../") &&
		 !(n >= 3 && strcmp(root + n - 3, "/..") == 0),
		 "'..' in root: %s", root);
}

static void check_parts(const struct url_parts *p)
{
	char **w = NULL;

	check_root(p->root);
	switch (p->kind) {
	case TK_LOCAL:
		break;
	case TK_SSH:
		FZ_CHECK(p->host && p->host[0], "empty host");
		FZ_CHECK(!p->user || p->user[0], "empty user");
		FZ_CHECK(p->port >= 1 && p->port <= 65535, "port %d", p->port);
		break;
	case TK_CMD:
		FZ_CHECK(p->cmd, "no cmd");
		FZ_CHECK(sync_split_words(p->cmd, &w) == 0 && w && w[0],
			 "cmd prefix accepted but splits to nothing: %s", p->cmd);
		argv_free(w);
		break;
	default:
		FZ_CHECK(0, "kind %d", (int)p->kind);
	}
}

/* sync_split_words(sync_shell_quote(s)) == { s } for every s. */
static void check_quote_roundtrip(const char *s)
{
	char *q = sync_shell_quote(s), **w = NULL;

	FZ_CHECK(q, "quote");
	FZ_CHECK(sync_split_words(q, &w) == 0, "quoted string does not split: %s", q);
	FZ_CHECK(w[0] && !w[1] && strcmp(w[0], s) == 0,
		 "quote/split round trip changed %s", s);
	argv_free(w);
	free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *url = fz_cstr(data, size), **w = NULL;
	struct url_parts p;
	const char *why = NULL, *why2 = NULL;
	int r, r2;

	r = url_parts_parse(url, &p, &why);
	FZ_CHECK(r == 0 || (r == -EINVAL && why), "r=%d", r);
	if (r == 0)
		check_parts(&p);
	url_parts_release(&p);
	r2 = transport_url_check(url, &why2);
	FZ_CHECK(r2 == r, "transport_url_check %d, url_parts_parse %d", r2, r);
	r = sync_split_words(url, &w);
	FZ_CHECK(r == 0 || r == -EINVAL, "split r=%d", r);
	argv_free(w);
	check_quote_roundtrip(url);
	free(url);
	return 0;
}
