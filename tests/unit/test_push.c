/*
 * test_push.c — unit tests of the push planner (sync/push_plan.c) and its
 * helpers: a real store and a real host tree in a temp dir; the sandbox is a
 * local: directory where a push is needed to set up a ledger.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "sync/push_int.h"

struct fx {
	char dir[64];
	char host[96], remote[96];
	struct store *st;
	int64_t sb;
	int root_fd;
	struct transport *t;
};

static void sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char db[128], url[128];

	strcpy(f->dir, "/tmp/test_push.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->host, sizeof(f->host), "%s/host", f->dir);
	snprintf(f->remote, sizeof(f->remote), "%s/remote", f->dir);
	snprintf(db, sizeof(db), "%s/store.db", f->dir);
	snprintf(url, sizeof(url), "local:%s", f->remote);
	sh("mkdir -p %s/d/e %s && echo one > %s/d/a && echo two > %s/d/e/b && "
	   "ln -s ../a %s/d/e/l && chmod 600 %s/d/a", f->host, f->remote,
	   f->host, f->host, f->host, f->host);
	assert_int_equal(store_open(db, &f->st), 0);
	assert_int_equal(store_sandbox_add(f->st, "s", url, &f->sb), 0);
	f->root_fd = open(f->host, O_RDONLY | O_DIRECTORY);
	assert_true(f->root_fd >= 0);
	assert_int_equal(transport_open(url, NULL, &f->t), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	transport_close(f->t);
	store_close(f->st);
	close(f->root_fd);
	sh("rm -rf %s", f->dir);
	free(f);
	return 0;
}

static void jr(struct fx *f, int op, const char *p, const char *p2)
{
	struct store_entry e = { .op = op, .path = p, .path2 = p2 };

	assert_int_equal(store_journal_append(f->st, &e, NULL), 0);
	assert_int_equal(store_journal_sync(f->st), 0);
}

static void push_ok(struct fx *f)
{
	struct sync_push_stats s;

	assert_int_equal(sync_push_run(f->st, f->sb, f->t, f->root_fd, NULL, &s), 0);
}

static const struct push_item *item(const struct push_plan *p, const char *path,
				    int act)
{
	for (size_t i = 0; i < p->nitems; i++)
		if (!strcmp(p->items[i].path, path) && p->items[i].act == act)
			return &p->items[i];
	return NULL;
}

static void plan(struct fx *f, struct push_plan *p)
{
	assert_int_equal(push_plan_build(f->st, f->sb, f->root_fd,
					 &(struct sync_push_config){ 0 }, false, p), 0);
}

static void test_cold_plan(void **state)
{
	struct fx *f = *state;
	struct push_plan p;

	plan(f, &p);	/* cursor 0: the whole tree, without any journal */
	assert_non_null(p.marker);
	assert_non_null(item(&p, "d", PUSH_MKDIR));
	assert_non_null(item(&p, "d/e", PUSH_MKDIR));
	assert_int_equal(item(&p, "d/a", PUSH_UPLOAD)->row.mode & 07777, 0600);
	assert_string_equal(item(&p, "d/e/l", PUSH_UPLOAD)->target, "../a");
	assert_int_equal(p.files_total, 3);
	assert_int_equal(p.bytes_total, 8);
	assert_int_equal(p.nops, 0);
	push_plan_release(&p);
}

static void test_incremental(void **state)
{
	struct fx *f = *state;
	struct push_plan p;

	push_ok(f);
	plan(f, &p);
	assert_true(push_plan_empty(&p));	/* nothing journaled since */
	push_plan_release(&p);

	/* Same bytes rewritten: hashed, skipped. Mode change: chmod only. */
	sh("echo one > %s/d/a && chmod 640 %s/d/e/b", f->host, f->host);
	jr(f, STORE_OP_WRITE, "d/a", NULL);
	jr(f, STORE_OP_CHMOD, "d/e/b", NULL);
	plan(f, &p);
	assert_int_equal(p.skipped, 1);
	assert_null(item(&p, "d/a", PUSH_UPLOAD));
	assert_non_null(item(&p, "d/e/b", PUSH_CHMOD));
	assert_int_equal(p.files_total, 0);
	push_plan_release(&p);
}

static void test_dir_rename(void **state)
{
	struct fx *f = *state;
	struct push_plan p;

	push_ok(f);
	sh("mv %s/d %s/d2", f->host, f->host);
	jr(f, STORE_OP_RENAME, "d", "d2");
	plan(f, &p);
	assert_int_equal(p.nops, 1);
	assert_int_equal(p.ops[0].kind, PUSH_OP_MV);
	assert_string_equal(p.ops[0].a, "d");
	assert_string_equal(p.ops[0].b, "d2");
	assert_int_equal(p.files_total, 0);	/* content not re-sent */
	assert_null(item(&p, "d", PUSH_DELETE));
	push_plan_release(&p);
	push_ok(f);
	assert_int_equal(access("/dev/null", F_OK), 0);
	{
		struct store_ledger_row row;

		assert_int_equal(store_ledger_get(f->st, f->sb, "d2/e/b", &row), 0);
		store_ledger_row_release(&row);
		assert_int_equal(store_ledger_get(f->st, f->sb, "d/e/b", &row), -ENOENT);
	}
}

static void test_rename_into_new_dir_then_move_it(void **state)
{
	struct fx *f = *state;
	struct push_plan p;

	push_ok(f);
	/* mkdir n; mv d/e n/e; mv n m: the remote `mkdir -p n` must follow. */
	sh("mkdir %s/n && mv %s/d/e %s/n/e && mv %s/n %s/m", f->host, f->host,
	   f->host, f->host, f->host);
	jr(f, STORE_OP_MKDIR, "n", NULL);
	jr(f, STORE_OP_RENAME, "d/e", "n/e");
	jr(f, STORE_OP_RENAME, "n", "m");
	plan(f, &p);
	assert_int_equal(p.nops, 2);
	assert_true(p.ops[0].mkparent);
	assert_string_equal(p.ops[1].a, "n");
	assert_string_equal(p.ops[1].b, "m");
	assert_non_null(item(&p, "m", PUSH_CHMOD));	/* mode of the made dir */
	assert_int_equal(p.files_total, 0);
	push_plan_release(&p);
	push_ok(f);
	sh("diff -r --no-dereference -x .hermesfs-sandbox %s %s", f->host, f->remote);
}

static void test_new_then_renamed_and_deleted(void **state)
{
	struct fx *f = *state;
	struct push_plan p;

	push_ok(f);
	sh("echo x > %s/tmp && mv %s/tmp %s/final && rm -r %s/d/e", f->host,
	   f->host, f->host, f->host);
	jr(f, STORE_OP_CREATE, "tmp", NULL);
	jr(f, STORE_OP_RENAME, "tmp", "final");
	jr(f, STORE_OP_UNLINK, "d/e/b", NULL);
	jr(f, STORE_OP_UNLINK, "d/e/l", NULL);
	jr(f, STORE_OP_RMDIR, "d/e", NULL);
	plan(f, &p);
	assert_int_equal(p.nops, 0);	/* never on the sandbox: no remote mv */
	assert_non_null(item(&p, "final", PUSH_UPLOAD));
	assert_null(item(&p, "tmp", PUSH_DELETE));
	assert_non_null(item(&p, "d/e", PUSH_DELETE));
	assert_null(item(&p, "d/e/b", PUSH_DELETE));	/* covered by d/e */
	push_plan_release(&p);
}

static void test_type_change(void **state)
{
	struct fx *f = *state;
	struct push_plan p;

	push_ok(f);
	sh("rm -r %s/d/e && echo f > %s/d/e", f->host, f->host);
	jr(f, STORE_OP_RMDIR, "d/e", NULL);
	jr(f, STORE_OP_CREATE, "d/e", NULL);
	plan(f, &p);
	assert_non_null(item(&p, "d/e", PUSH_DELETE));
	assert_non_null(item(&p, "d/e", PUSH_UPLOAD));
	push_plan_release(&p);
}

static bool ign(const char *rel, bool is_dir, void *arg)
{
	return is_dir && !strcmp(rel, "d/e");
}

static void test_ignore(void **state)
{
	struct fx *f = *state;
	struct sync_push_config cfg = { .ignore = ign };
	struct push_plan p;

	assert_int_equal(push_plan_build(f->st, f->sb, f->root_fd, &cfg, false, &p), 0);
	assert_non_null(item(&p, "d/a", PUSH_UPLOAD));
	assert_null(item(&p, "d/e", PUSH_MKDIR));
	assert_null(item(&p, "d/e/b", PUSH_UPLOAD));
	push_plan_release(&p);
}

static void test_force_resends(void **state)
{
	struct fx *f = *state;
	struct push_plan p;

	push_ok(f);
	jr(f, STORE_OP_WRITE, "d/a", NULL);
	jr(f, STORE_OP_UNLINK, "gone", NULL);
	assert_int_equal(push_plan_build(f->st, f->sb, f->root_fd,
					 &(struct sync_push_config){ 0 }, true, &p), 0);
	assert_non_null(item(&p, "d/a", PUSH_UPLOAD));	/* equal, sent anyway */
	assert_non_null(item(&p, "gone", PUSH_DELETE));
	push_plan_release(&p);
}

static void test_script_quoting(void **state)
{
	struct push_plan p = { 0 };
	struct push_item it[2] = {
		{ .path = "a'b c/-x", .act = PUSH_UPLOAD },
		{ .path = "a'b c", .act = PUSH_MKDIR, .row = { .mode = 040700 } },
	};
	char *s;

	p.items = it;
	p.nitems = 2;
	s = push_script(&p, ".hermesfs-tmp/p-1");
	assert_non_null(s);
	if (getenv("SHOW_SCRIPT"))
		fputs(s, stderr);
	assert_non_null(strstr(s, "mkdir -p './a'\\''b c'\n"));
	assert_non_null(strstr(s, "mv -f './.hermesfs-tmp/p-1/t/a'\\''b c/-x' './a'\\''b c'/\n"));
	assert_non_null(strstr(s, "chmod 700 './a'\\''b c'\n"));
	free(s);
}

/* New directories whose staged subtree holds only new directories move
 * whole (children along with their parent); one with a directory the
 * sandbox already has (no mkdir item) does not; torn files are unstaged. */
static void test_script_dirmove(void **state)
{
	struct push_plan p = { 0 };
	struct push_item it[] = {	/* sorted by path, as planned */
		{ .path = "a", .act = PUSH_MKDIR, .row = { .mode = 040755 } },
		{ .path = "a/b", .act = PUSH_MKDIR, .row = { .mode = 040700 } },
		{ .path = "a/b/f", .act = PUSH_UPLOAD },
		{ .path = "a/g", .act = PUSH_UPLOAD, .torn = true },
		{ .path = "c", .act = PUSH_MKDIR, .row = { .mode = 040755 } },
		{ .path = "old/n", .act = PUSH_MKDIR, .row = { .mode = 040755 } },
		{ .path = "old/n/f", .act = PUSH_UPLOAD },
		{ .path = "x", .act = PUSH_MKDIR, .row = { .mode = 040755 } },
		{ .path = "x/y/z", .act = PUSH_UPLOAD },
	};
	char *s;

	p.items = it;
	p.nitems = sizeof(it) / sizeof(*it);
	s = push_script(&p, ".hermesfs-tmp/p-1");
	assert_non_null(s);
	if (getenv("SHOW_SCRIPT"))
		fputs(s, stderr);
	assert_non_null(strstr(s, "\nrm -f './.hermesfs-tmp/p-1/t/a/g'\n"));
	assert_non_null(strstr(s, "\ndm './' './a' './c'\n"));
	assert_non_null(strstr(s, "\ndm './old' './old/n'\n"));
	assert_null(strstr(s, "dm './a'"));		/* a/b moves with a */
	assert_null(strstr(s, "dm './' './x'"));	/* x/y is not new */
	assert_non_null(strstr(s, "if [ -d './.hermesfs-tmp/p-1/t/x/y' ]; then\n"
			       "mv -f './.hermesfs-tmp/p-1/t/x/y/z' './x/y'/\nfi\n"));
	assert_non_null(strstr(s, "chmod 700 './a/b'\n"));
	free(s);
}

/* Guards carry what the ledger says the sandbox holds; a push keeps the
 * sandbox's own changes aside and records them as conflicts. */
static void test_guard(void **state)
{
	struct fx *f = *state;
	struct sync_push_stats s;
	struct store_conflict *cv;
	const struct push_item *it;
	struct push_plan p;
	size_t n;

	push_ok(f);
	sh("echo remote > %s/d/a && touch -d '+5 seconds' %s/d/a && echo n > %s/d/e/new",
	   f->remote, f->remote, f->remote);
	sh("echo host > %s/d/a && rm -r %s/d/e", f->host, f->host);
	jr(f, STORE_OP_WRITE, "d/a", NULL);
	jr(f, STORE_OP_UNLINK, "d/e/b", NULL);
	jr(f, STORE_OP_UNLINK, "d/e/l", NULL);
	jr(f, STORE_OP_RMDIR, "d/e", NULL);
	plan(f, &p);
	it = item(&p, "d/a", PUSH_UPLOAD);
	assert_non_null(it);
	assert_non_null(it->g.sig);
	assert_int_equal(strncmp(it->g.sig, "f 4 ", 4), 0);
	it = item(&p, "d/e", PUSH_DELETE);
	assert_non_null(it);
	assert_non_null(it->g.manifest);
	assert_non_null(strstr(it->g.manifest, "d ./d/e\nf 4 "));
	assert_non_null(strstr(it->g.manifest, " ./d/e/b\nl 4 ./d/e/l\n"));
	push_plan_release(&p);
	assert_int_equal(sync_push_run(f->st, f->sb, f->t, f->root_fd, NULL, &s), 0);
	assert_int_equal(s.conflicts, 2);
	assert_non_null(strstr(s.error, "aside"));
	sh("test \"$(cat %s/d/a)\" = host && test \"$(cat %s/d/a.conflict-s-*)\" = remote && "
	   "test -f %s/d/e.conflict-s-*/new && test ! -e %s/d/e",
	   f->remote, f->remote, f->remote, f->remote);
	assert_int_equal(store_conflict_list(f->st, f->sb, &cv, &n), 0);
	assert_int_equal(n, 2);
	store_conflict_list_free(cv, n);
	/* Nothing changed on the sandbox since: no guard fires. */
	sh("echo host2 > %s/d/a", f->host);
	jr(f, STORE_OP_WRITE, "d/a", NULL);
	assert_int_equal(sync_push_run(f->st, f->sb, f->t, f->root_fd, NULL, &s), 0);
	assert_int_equal(s.conflicts, 0);
	assert_string_equal(s.error, "");
}

static void test_guard_parse(void **state)
{
	static const char out[] = "K./a b\0./a b.conflict-s-1\0K./c\0./c.x\0junk";
	struct push_plan p = { 0 };

	assert_int_equal(push_guard_parse(&p, out, sizeof(out) - 1), 0);
	assert_int_equal(p.nkept, 2);
	assert_string_equal(p.kept[0].path, "a b");
	assert_string_equal(p.kept[0].copy, "a b.conflict-s-1");
	assert_string_equal(p.kept[1].copy, "c.x");
	push_plan_release(&p);
}

static void test_map(void **state)
{
	struct push_map m = { 0 };
	const char **keys;
	size_t n;
	bool found;

	for (int i = 0; i < 1000; i++) {
		char k[32];

		snprintf(k, sizeof(k), "d%d/f%d", i % 10, i);
		assert_int_equal(push_map_put(&m, k, (void *)(intptr_t)(i + 1)), 0);
	}
	assert_int_equal(push_map_put(&m, "d1", NULL), 0);
	assert_int_equal(push_map_put(&m, "d10", NULL), 0);
	assert_int_equal((intptr_t)push_map_get(&m, "d3/f13", &found), 14);
	assert_true(found);
	assert_int_equal(push_map_prefix(&m, "d1", &keys, &n), 0);
	assert_int_equal(n, 101);	/* d1 and its 100 files, not d10 */
	assert_string_equal(keys[0], "d1");
	free(keys);
	assert_int_equal((intptr_t)push_map_del(&m, "d3/f13"), 14);
	push_map_get(&m, "d3/f13", &found);
	assert_false(found);
	assert_true(push_path_under("a/b", "a"));
	assert_false(push_path_under("ab", "a"));
	assert_true(push_path_under("x", ""));
	push_map_clear(&m, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cold_plan, setup, teardown),
		cmocka_unit_test_setup_teardown(test_incremental, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_rename, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rename_into_new_dir_then_move_it,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_then_renamed_and_deleted,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_type_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ignore, setup, teardown),
		cmocka_unit_test_setup_teardown(test_force_resends, setup, teardown),
		cmocka_unit_test(test_script_quoting),
		cmocka_unit_test(test_script_dirmove),
		cmocka_unit_test_setup_teardown(test_guard, setup, teardown),
		cmocka_unit_test(test_guard_parse),
		cmocka_unit_test(test_map),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
