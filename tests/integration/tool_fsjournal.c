/*
 * tool_fsjournal — print a store's journal, one entry per line:
 *   SEQ OP PATH [PATH2]
 * (OP as store_op_name(), PATH "" shown as "."). For shell tests.
 *
 *   tool_fsjournal STORE.DB [SINCE]     entries with seq > SINCE
 *   tool_fsjournal STORE.DB --head      the head seq
 *   tool_fsjournal STORE.DB --clean     "clean" or "unclean"
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

static int print_entry(const struct store_entry *e, void *arg)
{
	(void)arg;
	printf("%lld %s %s", (long long)e->seq, store_op_name(e->op),
	       e->path[0] ? e->path : ".");
	if (e->path2)
		printf(" %s", e->path2);
	putchar('\n');
	return 0;
}

int main(int argc, char **argv)
{
	struct store *st = NULL;
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: tool_fsjournal STORE.DB [SINCE|--head|--clean]\n");
		return 2;
	}
	if ((r = store_open(argv[1], &st)) < 0) {
		fprintf(stderr, "tool_fsjournal: %s: %s\n", argv[1], strerror(-r));
		return 1;
	}
	if (argc > 2 && strcmp(argv[2], "--head") == 0) {
		int64_t n = 0;

		r = store_journal_count(st, 0, &n);
		printf("%lld\n", (long long)store_journal_head(st));
	} else if (argc > 2 && strcmp(argv[2], "--clean") == 0) {
		bool clean = false;

		r = store_clean_get(st, &clean);
		printf("%s\n", clean ? "clean" : "unclean");
	} else {
		r = store_journal_foreach(st, argc > 2 ? atoll(argv[2]) : 0, 0,
					  print_entry, NULL);
	}
	store_close(st);
	return r < 0 ? 1 : 0;
}
