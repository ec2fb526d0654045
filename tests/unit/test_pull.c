/*
 * test_pull.c — the pull engine's pure pieces: path and symlink checks, the
 * three-way decision table, the listing (crafted and produced by the real
 * script on a real directory, both variants), the hostile tar reader
 * (crafted archives written with libarchive), the O_NOFOLLOW host walk,
 * and the progress of a real pull from a local: sandbox.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "sync/pull_int.h"

/* ---- scratch dir ------------------------------------------------------- */

static char *scratch(void)
{
	char tmpl[] = "/tmp/hermes-pull-unit.XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return strdup(d);
}

static void rm_rf(const char *d)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
}

/* ---- paths ------------------------------------------------------------- */

static void test_path_check(void **state)
{
	static const struct { const char *in, *out; } ok[] = {
		{ "a", "a" }, { "./a/b", "a/b" }, { "a b/c\nd", "a b/c\nd" },
		{ "..a", "..a" }, { "a/.b", "a/.b" }, { "././x", "x" },
	};
	static const char *const bad[] = {
		"", ".", "./", "/etc/passwd", "..", "../x", "a/../../x", "a/..",
		"a//b", "a/", "a/./b", "/", "./..",
	};
	const char *why;
	char *out;

	for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++) {
		assert_int_equal(pull_path_check(ok[i].in, &out, &why), 0);
		assert_string_equal(out, ok[i].out);
		free(out);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		why = NULL;
		assert_int_equal(pull_path_check(bad[i], &out, &why), -EINVAL);
		assert_null(out);
		assert_non_null(why);
	}
	char longname[300];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(pull_path_check(longname, &out, &why), -EINVAL);

	assert_true(pull_path_excluded(SYNC_MARKER_NAME));
	assert_true(pull_path_excluded(SYNC_STAGE_DIR));
	assert_true(pull_path_excluded(SYNC_STAGE_DIR "/x"));
	assert_false(pull_path_excluded(SYNC_STAGE_DIR "x"));
	assert_false(pull_path_excluded("a/" SYNC_MARKER_NAME));
}

static void test_symlink_check(void **state)
{
	static const struct { const char *link, *target; int ok; } t[] = {
		{ "l", "a", 1 }, { "l", "a/b/c", 1 }, { "d/l", "../a", 1 },
		{ "d/e/l", "../../a", 1 }, { "l", "./a", 1 }, { "d/l", "./../x", 1 },
		{ "l", "../a", 0 }, { "l", "/etc/passwd", 0 }, { "l", "", 0 },
		{ "d/l", "../../x", 0 }, { "l", "a/../../x", 0 },
		/* in-root lexically, but through a link b may climb out */
		{ "l", "b/../x", 0 }, { "d/l", "x/..", 0 }, { "l", "..", 0 },
	};
	const char *why;

	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		int r = pull_symlink_check(t[i].link, t[i].target, &why);

		if (t[i].ok != (r == 0))
			fail_msg("symlink %s -> '%s': got %d", t[i].link, t[i].target, r);
	}
}

static void test_report_escapes(void **state)
{
	struct pull_report r = { 0 };

	pull_report_add_path(&r, "refused ", "a\nfake line\x1b[2J\\", ": x\n");
	assert_string_equal(r.buf, "refused a\\x0afake line\\x1b[2J\\\\: x\n");
	assert_int_equal(r.lines, 1);
	pull_report_release(&r);

	/* a failed pull's report starts with why it failed */
	pull_report_add(&r, "refused x: fifo\n");
	pull_report_fatal(&r);
	pull_report_add(&r, "refused pull: %s\n", "root wiped");
	pull_report_fatal(&r);		/* only the first one counts */
	pull_report_add(&r, "later\n");
	pull_report_fatal_first(&r);
	assert_string_equal(r.buf, "refused pull: root wiped\nrefused x: fifo\nlater\n");
	pull_report_release(&r);
}

/* ---- three-way table --------------------------------------------------- */

static struct pull_ver V(char c)
{
	struct pull_ver v = { 0 };

	if (c == '-')
		return v;
	v.present = true;
	v.type = c == 'D' ? STORE_FT_DIR : c == 'L' ? STORE_FT_SYMLINK : STORE_FT_FILE;
	v.mode = c == 'm' ? 0755 : 0644;
	memset(v.sha, c == 'm' ? 'a' : c, sizeof(v.sha));
	return v;
}

static void test_decide_table(void **state)
{
	/* base host remote (a letter = a content, '-' = absent, 'm' = content
	 * a with another mode, 'D' = directory), expected action per policy:
	 * conflict-copy, host-wins, remote-wins. */
	static const struct {
		const char *what;
		char b, h, r;
		enum pull_action copy, hostw, remw;
	} t[] = {
		{ "nothing changed", 'a', 'a', 'a', PULL_NONE, PULL_NONE, PULL_NONE },
		{ "remote only", 'a', 'a', 'b', PULL_APPLY, PULL_APPLY, PULL_APPLY },
		{ "host only", 'a', 'b', 'a', PULL_NONE, PULL_NONE, PULL_NONE },
		{ "both, same", 'a', 'b', 'b', PULL_LEDGER, PULL_LEDGER, PULL_LEDGER },
		{ "both, different", 'a', 'b', 'c', PULL_CONFLICT, PULL_HOST_WINS, PULL_APPLY },
		{ "remote mode only", 'a', 'a', 'm', PULL_APPLY, PULL_APPLY, PULL_APPLY },
		{ "remote deleted, host same", 'a', 'a', '-', PULL_DELETE, PULL_DELETE, PULL_DELETE },
		{ "remote deleted, host modified", 'a', 'b', '-', PULL_KEEP_HOST, PULL_KEEP_HOST, PULL_KEEP_HOST },
		{ "both deleted", 'a', '-', '-', PULL_LEDGER, PULL_LEDGER, PULL_LEDGER },
		{ "host deleted, remote same", 'a', '-', 'a', PULL_NONE, PULL_NONE, PULL_NONE },
		{ "host deleted, remote modified", 'a', '-', 'b', PULL_RESTORE_COPY, PULL_RESTORE_COPY, PULL_RESTORE_COPY },
		{ "new remote", '-', '-', 'a', PULL_APPLY, PULL_APPLY, PULL_APPLY },
		{ "new both, same", '-', 'a', 'a', PULL_LEDGER, PULL_LEDGER, PULL_LEDGER },
		{ "new both, different", '-', 'a', 'b', PULL_CONFLICT, PULL_HOST_WINS, PULL_APPLY },
		{ "new host only", '-', 'a', '-', PULL_NONE, PULL_NONE, PULL_NONE },
		{ "file replaced by dir remotely", 'a', 'a', 'D', PULL_APPLY, PULL_APPLY, PULL_APPLY },
		{ "dir on host, file remotely, new", '-', 'D', 'a', PULL_CONFLICT, PULL_HOST_WINS, PULL_APPLY },
		{ "dir new both sides", '-', 'D', 'D', PULL_LEDGER, PULL_LEDGER, PULL_LEDGER },
		{ "dir deleted remotely", 'D', 'D', '-', PULL_DELETE, PULL_DELETE, PULL_DELETE },
		{ "symlink retargeted", 'L', 'L', 'a', PULL_APPLY, PULL_APPLY, PULL_APPLY },
		/* same content on both sides, modes differ: never a copy */
		{ "same content, host mode", 'b', 'm', 'a', PULL_LEDGER, PULL_LEDGER, PULL_LEDGER },
		{ "same content, remote mode", 'b', 'a', 'm', PULL_APPLY, PULL_HOST_WINS, PULL_APPLY },
		{ "new both, same content, modes differ", '-', 'a', 'm', PULL_APPLY, PULL_HOST_WINS, PULL_APPLY },
		{ "host mode only", 'a', 'm', 'a', PULL_NONE, PULL_NONE, PULL_NONE },
		{ "mode changed both sides, differently", 'a', 'm', 'b', PULL_CONFLICT, PULL_HOST_WINS, PULL_APPLY },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(*t); i++) {
		struct pull_ver b = V(t[i].b), h = V(t[i].h), r = V(t[i].r);
		enum pull_action want[3] = { t[i].copy, t[i].hostw, t[i].remw };
		enum sync_conflict_policy pol[3] = {
			SYNC_CONFLICT_COPY, SYNC_CONFLICT_HOST_WINS, SYNC_CONFLICT_REMOTE_WINS,
		};

		for (int p = 0; p < 3; p++) {
			enum pull_action a = pull_decide(&b, &h, &r, pol[p]);

			if (a != want[p])
				fail_msg("%s (%s): got %s, want %s", t[i].what,
					 sync_conflict_policy_name(pol[p]),
					 pull_action_name(a), pull_action_name(want[p]));
		}
	}
}

static void test_policy_names(void **state)
{
	enum sync_conflict_policy p;

	assert_int_equal(sync_conflict_policy_parse("host-wins", &p), 0);
	assert_int_equal(p, SYNC_CONFLICT_HOST_WINS);
	assert_int_equal(sync_conflict_policy_parse("remote-wins", &p), 0);
	assert_int_equal(p, SYNC_CONFLICT_REMOTE_WINS);
	assert_int_equal(sync_conflict_policy_parse("conflict-copy", &p), 0);
	assert_int_equal(p, SYNC_CONFLICT_COPY);
	assert_int_equal(sync_conflict_policy_parse("bogus", &p), -EINVAL);
	assert_string_equal(sync_conflict_policy_name(SYNC_CONFLICT_COPY), "conflict-copy");
}

/* ---- listing ----------------------------------------------------------- */

/* Build a listing from "|"-separated fields ('|' stands for NUL). */
static size_t mklist(char *buf, const char *spec)
{
	size_t n = strlen(spec);

	memcpy(buf, spec, n);
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '|')
			buf[i] = '\0';
	return n;
}

static void test_list_parse_crafted(void **state)
{
	struct pull_list l;
	struct pull_report rep = { 0 };
	char buf[2048];
	size_t n = mklist(buf,
		"Mabc123\n|"
		"Gd 755 4096 1700000000.5 d||"
		"Gf 644 5 1700000001.25 d/a b||"
		"Gf 4755 1 1700000001 suid||"
		"Gl 777 3 1 d/ok|../x|"
		"Gl 777 3 1 esc|../x|"
		"Gl 777 3 1 abs|/etc|"
		"Gf 644 1 1 /etc/passwd||"
		"Gf 644 1 1 ../up||"
		"Gf 644 1 1 d/../../up2||"
		"Gp 644 0 1 fifo||"
		"S21a4 0 1 ./sock||"
		"Gl 777 1 1 link|d|"
		"Gf 644 1 1 link/through||"
		"Gf 644 1 1 nodir/x||"
		"Gf 644 9 1 d/a b||"
		"Gf 6x4 1 1 junk||"
		"Gf 644 1 1 " SYNC_MARKER_NAME "||"
		"Gd 755 1 1 " SYNC_STAGE_DIR "||"
		"S81a4 7 1700000002 ./new\nline||"
		"E|");

	assert_int_equal(pull_list_parse(buf, n, 1000, &l, &rep), 0);
	assert_true(l.have_marker);
	assert_string_equal(l.marker, "abc123");
	assert_false(l.root_missing);
	/* accepted, sorted: d, d/a b, d/ok, link, new\nline, suid */
	assert_int_equal(l.n, 6);
	assert_string_equal(l.v[0].path, "d");
	assert_int_equal(l.v[0].type, STORE_FT_DIR);
	assert_int_equal(l.v[0].mtime_ns, 1700000000500000000LL);
	assert_string_equal(l.v[1].path, "d/a b");
	assert_int_equal(l.v[1].size, 5);
	assert_int_equal(l.v[1].mode, S_IFREG | 0644);
	assert_string_equal(l.v[2].path, "d/ok");
	assert_string_equal(l.v[2].target, "../x");
	assert_string_equal(l.v[3].path, "link");
	assert_string_equal(l.v[4].path, "new\nline");
	assert_int_equal(l.v[4].mode, S_IFREG | 0644);
	assert_int_equal(l.v[4].mtime_ns, 1700000002000000000LL);
	assert_string_equal(l.v[5].path, "suid");
	assert_int_equal(l.v[5].mode, S_IFREG | 04755);
	assert_non_null(strstr(rep.buf, "refused esc"));
	assert_non_null(strstr(rep.buf, "refused abs"));
	assert_non_null(strstr(rep.buf, "refused /etc/passwd"));
	assert_non_null(strstr(rep.buf, "refused ../up"));
	assert_non_null(strstr(rep.buf, "refused fifo"));
	assert_non_null(strstr(rep.buf, "refused sock"));
	assert_non_null(strstr(rep.buf, "refused link/through"));
	assert_non_null(strstr(rep.buf, "refused nodir/x"));
	assert_non_null(strstr(rep.buf, "refused d/a b: listed twice"));
	assert_non_null(strstr(rep.buf, "unparseable"));
	assert_null(strstr(rep.buf, SYNC_MARKER_NAME));
	assert_true(pull_list_is_refused(&l, "esc"));
	assert_true(pull_list_is_refused(&l, "link/through/deeper"));
	assert_false(pull_list_is_refused(&l, "d"));
	assert_non_null(pull_list_find(&l, "d/ok"));
	assert_null(pull_list_find(&l, "esc"));
	pull_list_release(&l);
	pull_report_release(&rep);
}

static void test_list_parse_truncated(void **state)
{
	struct pull_list l;
	struct pull_report rep = { 0 };
	char buf[256];
	size_t n = mklist(buf, "Gf 644 1 1 a||Gf 644 1 1 b||");

	assert_int_equal(pull_list_parse(buf, n, 1000, &l, &rep), -EPROTO);
	pull_list_release(&l);
	n = mklist(buf, "Gf 644 1 1 a||Gf 644 1 1 b|");
	assert_int_equal(pull_list_parse(buf, n, 1000, &l, &rep), -EPROTO);
	pull_list_release(&l);
	n = mklist(buf, "Gf 644 1 1 a||Gf 644 1 1 b||E|Gf 644 1 1 c||");
	assert_int_equal(pull_list_parse(buf, n, 1000, &l, &rep), -EPROTO);
	pull_list_release(&l);
	n = mklist(buf, "Gf 644 1 1 a||Gf 644 1 1 b||Gf 644 1 1 c||E|");
	assert_int_equal(pull_list_parse(buf, n, 2, &l, &rep), -EFBIG);
	pull_list_release(&l);
	n = mklist(buf, "N|");
	assert_int_equal(pull_list_parse(buf, n, 2, &l, &rep), 0);
	assert_true(l.root_missing);
	pull_list_release(&l);
	pull_report_release(&rep);
}

/* Run the real listing script on a real directory with sh. */
static int run_script(const char *script, char **out, size_t *len)
{
	char path[] = "/tmp/hermes-pull-script.XXXXXX";
	char cmd[128];
	int fd = mkstemp(path);
	FILE *f;
	size_t cap = 1 << 16;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, script, strlen(script)), (ssize_t)strlen(script));
	close(fd);
	snprintf(cmd, sizeof(cmd), "sh %s", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	*out = malloc(cap);
	*len = fread(*out, 1, cap, f);
	pclose(f);
	unlink(path);
	return 0;
}

static void check_real_listing(bool portable)
{
	char *d = scratch(), *script, *out, cmd[1024];
	struct pull_list l;
	struct pull_report rep = { 0 };
	struct pull_entry *e;
	size_t len;

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && mkdir -p 'sub dir/deep' " SYNC_STAGE_DIR " && "
		 "printf hello > 'sub dir/f 1' && printf x > \"$(printf 'nl\\nname')\" && "
		 "chmod 600 'sub dir/f 1' && ln -s 'sub dir/f 1' ok-link && "
		 "ln -s /etc bad-link && mkfifo fifo && printf id42 > " SYNC_MARKER_NAME
		 " && touch -d @1700000000 'sub dir/f 1' && touch " SYNC_STAGE_DIR "/x", d);
	assert_int_equal(system(cmd), 0);
	script = pull_list_script(d, portable);
	assert_non_null(script);
	run_script(script, &out, &len);
	assert_int_equal(pull_list_parse(out, len, 1000, &l, &rep), 0);
	assert_true(l.have_marker);
	assert_string_equal(l.marker, "id42");
	/* nl\nname, ok-link, sub dir, sub dir/deep, sub dir/f 1 */
	assert_int_equal(l.n, 5);
	e = pull_list_find(&l, "sub dir/f 1");
	assert_non_null(e);
	assert_int_equal(e->type, STORE_FT_FILE);
	assert_int_equal(e->size, 5);
	assert_int_equal(e->mode & 07777, 0600);
	assert_int_equal(e->mtime_ns / 1000000000, 1700000000);
	e = pull_list_find(&l, "nl\nname");
	assert_non_null(e);
	e = pull_list_find(&l, "ok-link");
	assert_non_null(e);
	assert_string_equal(e->target, "sub dir/f 1");
	assert_non_null(pull_list_find(&l, "sub dir/deep"));
	assert_non_null(strstr(rep.buf, "refused bad-link"));
	assert_non_null(strstr(rep.buf, "refused fifo"));
	pull_list_release(&l);
	pull_report_release(&rep);
	free(out);
	free(script);
	/* a missing root says so */
	snprintf(cmd, sizeof(cmd), "%s/nonexistent", d);
	script = pull_list_script(cmd, portable);
	run_script(script, &out, &len);
	assert_int_equal(pull_list_parse(out, len, 1000, &l, &rep), 0);
	assert_true(l.root_missing);
	pull_list_release(&l);
	pull_report_release(&rep);
	free(out);
	free(script);
	rm_rf(d);
	free(d);
}

static void test_list_real_gnu(void **state) { check_real_listing(false); }
static void test_list_real_portable(void **state) { check_real_listing(true); }

/* ---- tar reader ---------------------------------------------------------- */

struct mem {
	char buf[1 << 20];
	size_t used, pos;
	size_t chunk;		/* read granularity */
};

static ssize_t mem_read(void *arg, void *buf, size_t n)
{
	struct mem *m = arg;

	if (n > m->chunk)
		n = m->chunk;
	if (n > m->used - m->pos)
		n = m->used - m->pos;
	memcpy(buf, m->buf + m->pos, n);
	m->pos += n;
	return (ssize_t)n;
}

struct tent {
	const char *path;
	int type;		/* AE_IF* */
	const char *data;
	const char *link;	/* symlink target or hard link source */
	int64_t claim;		/* header size if > 0 */
};

static void mktar(struct mem *m, const struct tent *e, size_t n)
{
	struct archive *a = archive_write_new();

	archive_write_set_format_pax_restricted(a);
	assert_int_equal(archive_write_open_memory(a, m->buf, sizeof(m->buf), &m->used),
			 ARCHIVE_OK);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *ae = archive_entry_new();
		size_t dl = e[i].data ? strlen(e[i].data) : 0;

		archive_entry_set_pathname(ae, e[i].path);
		archive_entry_set_filetype(ae, (unsigned)e[i].type);
		archive_entry_set_perm(ae, e[i].type == AE_IFREG ? 0644 : 0755);
		archive_entry_set_mtime(ae, 1700000000, 0);
		if (e[i].type == AE_IFREG)
			archive_entry_set_size(ae, e[i].claim ? e[i].claim : (int64_t)dl);
		if (e[i].type == AE_IFLNK)
			archive_entry_set_symlink(ae, e[i].link);
		if (e[i].type == AE_IFREG && e[i].link) {
			archive_entry_set_hardlink(ae, e[i].link);
			archive_entry_set_size(ae, 0);
		}
		if (e[i].type == AE_IFCHR)
			archive_entry_set_rdev(ae, makedev(1, 3));
		assert_int_equal(archive_write_header(a, ae), ARCHIVE_OK);
		if (dl && !e[i].link)
			archive_write_data(a, e[i].data, dl);
		archive_entry_free(ae);
	}
	archive_write_close(a);
	archive_write_free(a);
	m->pos = 0;
	m->chunk = 777;		/* odd reads: exercise buffering */
}

static void read_stage(int fd, const struct pull_fetch *f, char *out)
{
	assert_int_equal(pread(fd, out, (size_t)f->size, f->off), f->size);
	out[f->size] = '\0';
}

static void test_tar_hostile(void **state)
{
	static struct mem m;
	static const struct tent ents[] = {
		{ "good", AE_IFREG, "good data", NULL, 0 },
		{ "/etc/passwd", AE_IFREG, "root::0:0", NULL, 0 },
		{ "../escape", AE_IFREG, "x", NULL, 0 },
		{ "d/../../escape2", AE_IFREG, "x", NULL, 0 },
		{ "hard", AE_IFREG, NULL, "/etc/shadow", 0 },
		{ "sym", AE_IFLNK, NULL, "/etc", 0 },
		{ "dev", AE_IFCHR, NULL, NULL, 0 },
		{ "fifo", AE_IFIFO, NULL, NULL, 0 },
		{ "unasked", AE_IFREG, "y", NULL, 0 },
		{ "./d/second", AE_IFREG, "second!", NULL, 0 },
		{ "good", AE_IFREG, "evil twin", NULL, 0 },
	};
	struct pull_fetch want[] = {
		{ .path = "d/second" }, { .path = "dev" }, { .path = "fifo" },
		{ .path = "good" }, { .path = "hard" }, { .path = "never-sent" },
		{ .path = "sym" },
	};
	struct pull_caps caps = { 1 << 20, 100, 1 << 20 };
	struct pull_report rep = { 0 };
	uint8_t sha[STORE_SHA256_LEN];
	char *d = scratch(), out[64];
	int dfd = open(d, O_RDONLY | O_DIRECTORY), sfd;

	sfd = pull_stage_open(dfd);
	assert_true(sfd >= 0);
	mktar(&m, ents, sizeof(ents) / sizeof(*ents));
	int64_t refused = 0;

	assert_int_equal(pull_tar_read(mem_read, &m, sfd, want, 7, &caps, &rep,
				       &refused), 0);
	assert_int_equal(refused, 9);
	assert_true(want[0].got);
	read_stage(sfd, &want[0], out);
	assert_string_equal(out, "second!");
	assert_true(want[3].got);
	read_stage(sfd, &want[3], out);
	assert_string_equal(out, "good data");
	pull_sha_buf("good data", 9, sha);
	assert_memory_equal(want[3].sha, sha, sizeof(sha));
	assert_int_equal(want[3].mode & 07777, 0644);
	assert_int_equal(want[3].mtime_ns, 1700000000LL * 1000000000);
	for (int i = 1; i < 7; i++)
		if (i != 3)
			assert_false(want[i].got);
	assert_non_null(strstr(rep.buf, "refused tar entry /etc/passwd: absolute path"));
	assert_non_null(strstr(rep.buf, "refused tar entry ../escape"));
	assert_non_null(strstr(rep.buf, "refused tar entry d/../../escape2"));
	assert_non_null(strstr(rep.buf, "refused tar entry hard: hard link"));
	assert_non_null(strstr(rep.buf, "refused tar entry sym: not a regular"));
	assert_non_null(strstr(rep.buf, "refused tar entry dev: not a regular"));
	assert_non_null(strstr(rep.buf, "refused tar entry fifo: not a regular"));
	assert_non_null(strstr(rep.buf, "refused tar entry unasked: not requested"));
	assert_non_null(strstr(rep.buf, "refused tar entry good: sent twice"));
	/* nothing was created in the directory */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", d);
	assert_int_equal(system(cmd), 0);
	pull_report_release(&rep);
	close(sfd);
	close(dfd);
	rm_rf(d);
	free(d);
}

static void check_cap(const struct tent *ents, size_t n, struct pull_fetch *want,
		      size_t nwant, struct pull_caps caps, const char *what)
{
	static struct mem m;
	struct pull_report rep = { 0 };
	char *d = scratch();
	int dfd = open(d, O_RDONLY | O_DIRECTORY), sfd = pull_stage_open(dfd);

	mktar(&m, ents, n);
	assert_int_equal(pull_tar_read(mem_read, &m, sfd, want, nwant, &caps, &rep,
				       NULL), -EFBIG);
	assert_non_null(strstr(rep.buf, what));
	pull_report_release(&rep);
	close(sfd);
	close(dfd);
	rm_rf(d);
	free(d);
}

static void test_tar_caps(void **state)
{
	static const struct tent two[] = {
		{ "a", AE_IFREG, "0123456789", NULL, 0 },
		{ "b", AE_IFREG, "0123456789", NULL, 0 },
	};
	struct pull_fetch want[] = { { .path = "a" }, { .path = "b" } };

	check_cap(two, 2, want, 2, (struct pull_caps){ 1000, 100, 5 },
		  "single file size");
	memset(want, 0, sizeof(want));
	want[0].path = "a", want[1].path = "b";
	check_cap(two, 2, want, 2, (struct pull_caps){ 15, 100, 100 },
		  "total bytes");
	memset(want, 0, sizeof(want));
	want[0].path = "a", want[1].path = "b";
	check_cap(two, 2, want, 2, (struct pull_caps){ 1000, 1, 100 },
		  "file count");
}

static void test_tar_garbage(void **state)
{
	static struct mem m;
	struct pull_fetch want[] = { { .path = "a" } };
	struct pull_caps caps = { 1000, 100, 100 };
	struct pull_report rep = { 0 };
	char *d = scratch();
	int dfd = open(d, O_RDONLY | O_DIRECTORY), sfd = pull_stage_open(dfd);

	memset(m.buf, 'Z', 4096);
	m.used = 4096;
	m.pos = 0;
	m.chunk = 512;
	assert_int_equal(pull_tar_read(mem_read, &m, sfd, want, 1, &caps, &rep, NULL), -EPROTO);
	/* truncated archive: header claims more than is sent */
	static const struct tent one[] = { { "a", AE_IFREG, "0123456789", NULL, 0 } };
	mktar(&m, one, 1);
	m.used = 600;
	want[0].got = false;
	assert_true(pull_tar_read(mem_read, &m, sfd, want, 1, &caps, &rep, NULL) < 0);
	pull_report_release(&rep);
	close(sfd);
	close(dfd);
	rm_rf(d);
	free(d);
}

/* ---- progress of a real pull ---------------------------------------------- */

#define NPROG 200		/* files the sandbox writes */
#define PROG_SIZE(i) (3000 + 700 * (i))	/* ~14 MiB in all, uneven sizes */

struct prog_log {
	struct sync_pull_progress v[4096];
	size_t n;
};

static void prog_cb(const struct sync_pull_progress *p, void *arg)
{
	struct prog_log *l = arg;

	if (l->n < sizeof(l->v) / sizeof(l->v[0]))
		l->v[l->n] = *p;
	l->n++;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sh_ok(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_int_equal(system(cmd), 0);
}

/* Files written by the sandbox come back with progress that starts at 0
 * of the totals from the listing, only grows, is reported at a bounded
 * rate (not per chunk or per file) and ends at the totals; then the apply
 * counts every changed path the same way. */
static void test_pull_progress(void **state)
{
	static struct prog_log log;
	char *d = scratch(), path[512], url[512];
	struct store *st;
	struct transport *t;
	struct sync_pull_config cfg = { .progress = prog_cb, .progress_arg = &log };
	struct sync_pull_stats ps;
	int64_t sb, bytes = 0, t0, ms;
	int root;
	FILE *f;

	sh_ok("mkdir -p '%s/host' '%s/sb' && echo base > '%s/host/base'", d, d, d);
	snprintf(path, sizeof(path), "%s/store.db", d);
	assert_int_equal(store_open(path, &st), 0);
	snprintf(url, sizeof(url), "local:%s/sb", d);
	assert_int_equal(store_sandbox_add(st, "s", url, &sb), 0);
	assert_int_equal(transport_open(url, NULL, &t), 0);
	snprintf(path, sizeof(path), "%s/host", d);
	root = open(path, O_RDONLY | O_DIRECTORY);
	assert_true(root >= 0);
	assert_int_equal(sync_push_run(st, sb, t, root, NULL, NULL), 0);

	/* nothing to fetch: no progress at all */
	assert_int_equal(sync_pull_run(st, sb, t, root, &cfg, &ps), 0);
	sync_pull_stats_release(&ps);
	assert_int_equal(log.n, 0);

	sh_ok("mkdir '%s/sb/new'", d);
	for (int i = 0; i < NPROG; i++) {
		snprintf(path, sizeof(path), "%s/sb/new/f%03d", d, i);
		assert_non_null(f = fopen(path, "w"));
		for (int k = 0; k < PROG_SIZE(i); k++)
			fputc('a' + (i + k) % 26, f);
		fclose(f);
		bytes += PROG_SIZE(i);
	}
	t0 = now_ms();
	assert_int_equal(sync_pull_run(st, sb, t, root, &cfg, &ps), 0);
	ms = now_ms() - t0;
	assert_int_equal(ps.fetched, NPROG);
	assert_int_equal(ps.attempts, 1);
	sync_pull_stats_release(&ps);
	sh_ok("cmp '%s/sb/new/f123' '%s/host/new/f123'", d, d);

	assert_true(log.n >= 4);
	assert_true(log.n <= sizeof(log.v) / sizeof(log.v[0]));
	assert_int_equal(log.v[0].files_done, 0);
	assert_int_equal(log.v[0].bytes_done, 0);
	assert_false(log.v[0].applying);
	for (size_t i = 0; i < log.n; i++) {
		const struct sync_pull_progress *p = &log.v[i], *q = &log.v[i ? i - 1 : 0];

		assert_int_equal(p->attempt, 1);
		assert_int_equal(p->files_total, NPROG);
		assert_int_equal(p->bytes_total, bytes);
		assert_true(p->files_done <= p->files_total);
		assert_true(p->bytes_done <= p->bytes_total);
		if (i && !q->applying && p->applying) {
			/* the fetch ended at its totals; the apply starts at 0 */
			assert_int_equal(q->files_done, NPROG);
			assert_int_equal(q->bytes_done, bytes);
			assert_int_equal(p->applied, 0);
		}
		if (p->applying) {
			assert_int_equal(p->files_done, NPROG);
			assert_int_equal(p->apply_total, NPROG + 1);	/* + new/ */
			assert_true(p->applied <= p->apply_total);
		}
		if (i) {
			assert_true(p->applying >= q->applying);
			assert_true(p->files_done >= q->files_done);
			assert_true(p->bytes_done >= q->bytes_done);
			assert_true(p->applied >= q->applied);
		}
	}
	assert_true(log.v[log.n - 1].applying);
	assert_int_equal(log.v[log.n - 1].applied, NPROG + 1);
	/* bounded rate: per phase the first, the last, and one per interval */
	assert_true((int64_t)log.n <= 4 + 2 * (ms / SYNC_PULL_PROGRESS_MS + 1));

	close(root);
	transport_close(t);
	store_close(st);
	rm_rf(d);
	free(d);
}

/* The tar reader's hook: files completed and bytes staged only grow and
 * end at what was staged. */
static void tar_hook_cb(int64_t files, int64_t bytes, void *arg)
{
	int64_t *last = arg;

	assert_true(files >= last[0]);
	assert_true(bytes >= last[1]);
	last[0] = files;
	last[1] = bytes;
	last[2]++;
}

static void test_tar_hook(void **state)
{
	static struct mem m;
	static const struct tent ents[] = {
		{ "a", AE_IFREG, "0123456789", NULL, 0 },
		{ "b", AE_IFREG, "xyz", NULL, 0 },
		{ "skip", AE_IFREG, "not asked for", NULL, 0 },
	};
	struct pull_fetch want[] = { { .path = "a" }, { .path = "b" } };
	struct pull_caps caps = { 1 << 20, 100, 1 << 20 };
	struct pull_report rep = { 0 };
	struct pull_tar_hook hook = { tar_hook_cb, NULL };
	int64_t last[3] = { 0 };
	char *d = scratch();
	int dfd = open(d, O_RDONLY | O_DIRECTORY), sfd = pull_stage_open(dfd);

	assert_true(sfd >= 0);
	hook.arg = last;
	mktar(&m, ents, 3);
	m.chunk = 5;
	assert_int_equal(pull_tar_read_hooked(mem_read, &m, sfd, want, 2, &caps,
					      &rep, NULL, &hook), 0);
	assert_int_equal(last[0], 2);
	assert_int_equal(last[1], 13);
	assert_true(last[2] >= 2);
	pull_report_release(&rep);
	close(sfd);
	close(dfd);
	rm_rf(d);
	free(d);
}

/* ---- host walk ----------------------------------------------------------- */

static void test_host_walk(void **state)
{
	char *d = scratch(), cmd[1024];
	int dfd, pfd;
	const char *base;
	struct pull_ver v;
	uint8_t sha[STORE_SHA256_LEN];

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && mkdir -p in/sub out && printf abc > in/sub/f && "
		 "ln -s ../out in/esc && ln -s sub/f in/flink", d);
	assert_int_equal(system(cmd), 0);
	dfd = open(d, O_RDONLY | O_DIRECTORY);
	snprintf(cmd, sizeof(cmd), "%s/in", d);
	int root = open(cmd, O_RDONLY | O_DIRECTORY);

	assert_int_equal(pull_host_version(root, "sub/f", &v), 0);
	assert_true(v.present);
	assert_int_equal(v.type, STORE_FT_FILE);
	pull_sha_buf("abc", 3, sha);
	assert_memory_equal(v.sha, sha, sizeof(sha));
	assert_int_equal(pull_host_version(root, "flink", &v), 0);
	assert_int_equal(v.type, STORE_FT_SYMLINK);
	pull_sha_buf("sub/f", 5, sha);
	assert_memory_equal(v.sha, sha, sizeof(sha));
	assert_int_equal(pull_host_version(root, "nope/x", &v), 0);
	assert_false(v.present);
	/* through a symlink: refused, and never created on the other side */
	assert_true(pull_host_version(root, "esc/x", &v) < 0);
	assert_true(pull_host_parent(root, "esc/new/x", true, NULL, NULL, &pfd, &base) < 0);
	snprintf(cmd, sizeof(cmd), "test ! -e '%s/out/new'", d);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(pull_host_parent(root, "a/b/c", true, NULL, NULL, &pfd, &base), 0);
	assert_string_equal(base, "c");
	close(pfd);
	snprintf(cmd, sizeof(cmd), "test -d '%s/in/a/b'", d);
	assert_int_equal(system(cmd), 0);
	close(root);
	close(dfd);
	rm_rf(d);
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_check),
		cmocka_unit_test(test_symlink_check),
		cmocka_unit_test(test_report_escapes),
		cmocka_unit_test(test_decide_table),
		cmocka_unit_test(test_policy_names),
		cmocka_unit_test(test_list_parse_crafted),
		cmocka_unit_test(test_list_parse_truncated),
		cmocka_unit_test(test_list_real_gnu),
		cmocka_unit_test(test_list_real_portable),
		cmocka_unit_test(test_tar_hostile),
		cmocka_unit_test(test_tar_caps),
		cmocka_unit_test(test_tar_garbage),
		cmocka_unit_test(test_host_walk),
		cmocka_unit_test(test_tar_hook),
		cmocka_unit_test(test_pull_progress),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
