/*
 * exec_script.c — the shell scripts a session sends to the sandbox.
 *
 * One command is `sh -c` -> `exec bash -c OUTER hermes-exec CMD`, or a
 * spare (exec_script_spare: the same OUTER behind a boot that reads the
 * call's state from stdin). OUTER itself is the same for every call of a
 * session: the call's state comes in variables set before it (put_state:
 * __h_cmd, __h_cwd, __h_ov, __h_cur, __h_nx). OUTER cds
 * to the tracked cwd (126 and a G marker if it is gone), reports
 * "pgid outer-pid" in a P marker before the command can write anything,
 * clears the inherited environment, sources the snapshot, sets an EXIT
 * trap and evals the command. The trap saves exported variables,
 * functions and aliases to the other snapshot generation and reports
 * "status:flags:cwd" (flags: S = state saved, G = cwd gone, O = override
 * cwd unusable, - = nothing saved) in an E marker.
 *
 * Two shapes:
 *  - flat (local:, ssh://): bash itself is the leader of its process group
 *    (the local transport makes it one, sshd starts sessions with setsid),
 *    so it runs the command directly; the E marker goes to fd 99, a copy of
 *    the original stdout, so a command redirecting its stdout cannot lose it.
 *  - nested (cmd:, where the group is unknown): the command runs in a
 *    background subshell under `set -m`, which then leads its own group;
 *    the trap writes the cwd to a file and the outer bash, which survives
 *    `exit`, prints the E marker after `wait`.
 * In both, `exit`, `set -e` and `set -u` still run the trap; `exec prog`
 * or a command's own EXIT trap skip it: the status then comes from the
 * transport and the cwd and environment stay as they were. Only builtins
 * run in the common path: forks are what a call costs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/exec_int.h"
#include "sync/sync.h"

/* printf-append to a memstream, quoting %s arguments is the caller's job. */
static char *q(const char *s)
{
	return sync_shell_quote(s ? s : "");
}

/* bash: unset every exported variable (builtins only: ${!X@} per letter). */
static void put_env_clear(FILE *f)
{
	static const char letters[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
	const char *c;

	fputs("for __h_n in", f);
	for (c = letters; *c; c++)
		fprintf(f, " ${!%c@}", *c);
	fputs("; do [[ ${__h_n@a} == *x* ]] && \\builtin unset \"$__h_n\" "
	      "2>/dev/null; done; \\builtin unset __h_n\n", f);
}

/* bash: print an E marker with payload "$1" built from literal text. */
static void put_marker_e(FILE *f, const char *nonce, const char *payload)
{
	fprintf(f, "LC_ALL=C; __h_x=%s; \\builtin printf '\\036HERMES:%s:E%%d:%%s' "
		"${#__h_x} \"$__h_x\"", payload, nonce);
}

#define DUMP "\\builtin set +eu; \\builtin umask 077; { \\builtin export -p; " \
	"\\builtin declare -f; \\builtin alias -p; \\builtin printf " \
	"'%%s\\n' 'shopt -s expand_aliases' 'set +e' 'set +u'; } > %s 2>/dev/null"

/* EXIT trap code. nested: dump, then the cwd to a file for the outer bash.
 * flat: dump, then the E marker to fd 99. */
static char *save_code(const struct exec_script_args *a, const char *next,
		       const char *cwdf)
{
	char *qn = q(next), *qc = q(cwdf), *s = NULL;
	int r = -1;

	if (qn && qc && !a->flat)
		r = asprintf(&s, DUMP " && \\builtin printf '%%s' \"$PWD\" > %s "
			     "2>/dev/null", qn, qc);
	else if (qn && qc)
		r = asprintf(&s, "__h_rc=$?; __h_f=-; " DUMP " && __h_f=S; "
			     "LC_ALL=C; __h_x=\"$__h_rc:$__h_f:$PWD\"; "
			     "\\builtin printf '\\036HERMES:%s:E%%d:%%s' "
			     "${#__h_x} \"$__h_x\" >&99", qn, a->nonce);
	if (r < 0)
		s = NULL;
	free(qn);
	free(qc);
	return s;
}

/* The cds: tracked cwd $__h_cwd (126 + G if gone) unless the override
 * $__h_ov is absolute, then the override (126 + O if unusable). */
static void put_cd(FILE *f, const struct exec_script_args *a)
{
	char *msg = NULL, *qmsg = NULL;

	if (asprintf(&msg, "; the session goes back to %s", a->initial_cwd) < 0)
		msg = NULL;
	qmsg = q(msg ? msg : "");
	fprintf(f, "if [[ $__h_ov != /* ]]; then \\builtin cd -- \"$__h_cwd\" "
		"2>/dev/null || { \\builtin printf '%%s%%s\\n' \"hermes: working "
		"directory $__h_cwd no longer exists\" %s >&2; ", qmsg);
	put_marker_e(f, a->nonce, "'126:G:'");
	fputs("; exit 126; }; fi\n"
	      "if [[ -n $__h_ov ]]; then \\builtin cd -- \"$__h_ov\" || { ", f);
	put_marker_e(f, a->nonce, "'126:O:'");
	fputs("; exit 126; }; fi\n", f);
	free(msg);
	free(qmsg);
}

/* Clear the environment, source snapshot generation $__h_cur, re-cd (the
 * snapshot's PWD becomes OLDPWD), trap (saving to generation $__h_nx),
 * eval. One { } so that aliases from the snapshot cannot change how our
 * own lines parse: the group is parsed whole first. */
static int put_body(FILE *f, const struct exec_script_args *a)
{
	char *p[2] = { NULL, NULL }, *qp[2] = { NULL, NULL };
	char *sv[2] = { NULL, NULL }, *qsv[2] = { NULL, NULL }, *cwdf = NULL;
	int g, rc = -1;

	if (asprintf(&cwdf, "%s/cwd", a->dir) < 0)
		cwdf = NULL;
	for (g = 0; g < 2; g++) {
		if (asprintf(&p[g], EXEC_SNAP_FMT, a->dir, g) < 0)
			p[g] = NULL;
		qp[g] = p[g] ? q(p[g]) : NULL;
		sv[g] = p[g] && cwdf ? save_code(a, p[g], cwdf) : NULL;
		qsv[g] = sv[g] ? q(sv[g]) : NULL;
		if (!qp[g] || !qsv[g])
			goto out;
	}
	fputs("{\n", f);
	if (a->snapshot && !a->env_cleared)
		put_env_clear(f);
	else if (a->snapshot)	/* same line numbers in errors either way */
		fputs("\n", f);
	if (a->snapshot) {
		fprintf(f, "case $__h_cur in 0) \\builtin source %s >/dev/null 2>&1;; "
			"*) \\builtin source %s >/dev/null 2>&1;; esac\n", qp[0], qp[1]);
	}
	fprintf(f, "\\builtin cd -- \"$__h_pwd\" 2>/dev/null; \\builtin unset "
		"__h_pwd __h_cwd __h_ov __h_cur\n"
		"case $__h_nx in 0) \\builtin trap -- %s EXIT;; "
		"*) \\builtin trap -- %s EXIT;; esac; \\builtin unset __h_nx\n"
		"\\builtin eval \"\\\\builtin unset __h_cmd\n$__h_cmd\"\n}",
		qsv[0], qsv[1]);
	rc = 0;
out:
	for (g = 0; g < 2; g++) {
		free(p[g]);
		free(qp[g]);
		free(sv[g]);
		free(qsv[g]);
	}
	free(cwdf);
	return rc;
}

/* The part of a command's script that does not depend on the call: it
 * reads the call's state from __h_cmd, __h_cwd, __h_ov (override, "" for
 * none), __h_cur and __h_nx (snapshot generations to source and save). */
static int put_outer(FILE *f, const struct exec_script_args *a)
{
	char *cwdf = NULL, *qcwdf = NULL;
	int rc = -1;

	put_cd(f, a);
	fputs("__h_pwd=$PWD\n", f);
	if (a->flat) {
		fprintf(f, "exec 99>&1\n__h_x=\"$$ $$\"; \\builtin printf "
			"'\\036HERMES:%s:P%%d:%%s' ${#__h_x} \"$__h_x\"; "
			"\\builtin unset __h_x\n", a->nonce);
		rc = put_body(f, a);
		fputs("\n", f);
		return rc;
	}
	if (asprintf(&cwdf, "%s/cwd", a->dir) < 0 || !(qcwdf = q(cwdf)))
		goto out;
	/* Job control would print "[1]+ Done" on stderr if the job ended
	 * before `set +m`: stderr is muted for that stretch, and the subshell
	 * gets the real one back from fd 98. */
	fprintf(f, ": > %s\nexec 98>&2\n{ set -m\n(\nexec 2>&98 98>&-\nset +m\n",
		qcwdf);
	if (put_body(f, a))
		goto out;
	fprintf(f, "\n) &\n__h_p=$!\nset +m\n} 2>/dev/null\nexec 98>&-\n"
		"LC_ALL=C\n__h_x=\"$__h_p $$\"\n"
		"\\builtin printf '\\036HERMES:%s:P%%d:%%s' ${#__h_x} \"$__h_x\"\n"
		"wait \"$__h_p\" 2>/dev/null; __h_rc=$?\n__h_c= __h_f=-\n"
		"if [ -s %s ]; then IFS= read -r -d '' __h_c < %s; __h_f=S; fi\n",
		a->nonce, qcwdf, qcwdf);
	put_marker_e(f, a->nonce, "\"$__h_rc:$__h_f:$__h_c\"");
	fputs("\nexit $__h_rc\n", f);
	rc = 0;
out:
	free(cwdf);
	free(qcwdf);
	return rc;
}

/* The call's state as shell assignments (see put_outer); cmd: include
 * __h_cmd (the spare's blob) or take it from $1 (a fresh bash -c). */
static int put_state(FILE *f, const struct exec_script_args *a, bool cmd)
{
	char *qcwd = q(a->cwd), *qov = q(a->override), *qcmd = NULL;
	int rc = -1;

	if (!qcwd || !qov || (cmd && !(qcmd = q(a->command))))
		goto out;
	if (cmd)
		fprintf(f, "__h_cmd=%s\n", qcmd);
	else
		fputs("__h_cmd=$1; set --\n", f);
	fprintf(f, "__h_cwd=%s __h_ov=%s __h_cur=%d __h_nx=%d\n", qcwd, qov,
		a->cur, a->next);
	rc = 0;
out:
	free(qcwd);
	free(qov);
	free(qcmd);
	return rc;
}

/* Run f's writer into a malloc'd string (NULL on failure). */
static char *mem_build(const struct exec_script_args *a, bool cmd,
		       int (*put)(FILE *, const struct exec_script_args *, bool))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int rc;

	if (!f)
		return NULL;
	rc = put(f, a, cmd);
	if (fclose(f) != 0 || rc) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int put_fresh(FILE *f, const struct exec_script_args *a, bool unused)
{
	(void)unused;
	return put_state(f, a, false) || put_outer(f, a) ? -1 : 0;
}

char *exec_script_run(const struct exec_script_args *a)
{
	char *outer = mem_build(a, false, put_fresh), *qouter = NULL,
	     *qcmd = NULL, *res = NULL;

	if (outer && (qouter = q(outer)) && (qcmd = q(a->command)) &&
	    asprintf(&res, "exec bash %s -c %s hermes-exec %s",
		     a->snapshot ? "--noprofile --norc" : "-l", qouter, qcmd) < 0)
		res = NULL;
	free(outer);
	free(qouter);
	free(qcmd);
	return res;
}

/*
 * A spare: bash started ahead of a call. It announces itself (R marker),
 * then `source`s its stdin, which reads everything up to EOF before it
 * runs any of it: the call's state (put_state) ending in __h_ok=1. A
 * spare that gets EOF without that trailer (discarded, or a transfer cut
 * short) exits 0 having run nothing. Then it goes on as a fresh bash -c.
 * It waits in / so it never holds a mount busy.
 */
static int put_spare(FILE *f, const struct exec_script_args *a, bool unused)
{
	(void)unused;
	/* The inherited environment is cleared now: it is the process's, the
	 * same at spawn time as at run time. */
	put_env_clear(f);
	fprintf(f, "__h_x=1; \\builtin printf '\\036HERMES:%s:R%%d:%%s' "
		"${#__h_x} \"$__h_x\"; \\builtin unset __h_x; "
		"\\builtin source /dev/stdin >/dev/null 2>&1; "
		"[[ ${__h_ok-} == 1 ]] || exit 0; "
		"\\builtin unset __h_ok; SECONDS=0\n", a->nonce);
	return put_outer(f, a);
}

char *exec_script_spare(const struct exec_script_args *a)
{
	char *boot = mem_build(a, false, put_spare), *qboot = NULL,
	     *res = NULL;

	if (boot && (qboot = q(boot)) &&
	    asprintf(&res, "cd / && exec bash --noprofile --norc -c %s "
		     "hermes-exec", qboot) < 0)
		res = NULL;
	free(boot);
	free(qboot);
	return res;
}

static int put_blob(FILE *f, const struct exec_script_args *a, bool unused)
{
	(void)unused;
	if (put_state(f, a, true))
		return -1;
	fputs("__h_ok=1\n", f);
	return 0;
}

char *exec_script_blob(const struct exec_script_args *a)
{
	return mem_build(a, true, put_blob);
}

char *exec_script_start(void)
{
	return strdup(
		"umask 077\n"
		"d=$(mktemp -d \"${TMPDIR:-/tmp}/hermes-exec.XXXXXXXXXX\") || exit 90\n"
		"printf '%s\\n' \"$d\"\n"
		"t=$(mktemp \"$d/snap.XXXXXXXXXX\") || exit 91\n"
		"if bash -l -c '{ export -p; declare -f; alias -p; printf \"%s\\n\" "
		"\"shopt -s expand_aliases\" \"set +e\" \"set +u\"; } > \"$1\"' "
		"hermes-snapshot \"$t\" </dev/null >/dev/null 2>&1 && "
		"mv -f \"$t\" \"$d/snap.0\"; then echo ok; "
		"else rm -f \"$t\"; echo fallback; fi\n");
}

char *exec_script_kill(long pgid, long outer)
{
	char *s = NULL;

	/* A zombie still counts for kill -0: with /proc, only live members of
	 * the group count (orphans may wait a while for init to reap them). */
	if (asprintf(&s,
		"P=%ld O=%ld\n"
		"live() {\n"	/* live PID: a process that is not a zombie */
		"  if [ -r /proc/self/stat ]; then\n"
		"    read -r l 2>/dev/null < /proc/$1/stat || return 1\n"
		"    l=${l##*) }; set -- $l; [ \"$1\" != Z ]; return\n"
		"  fi\n"
		"  kill -0 $1 2>/dev/null\n"
		"}\n"
		"alive() {\n"	/* a live member of group $P */
		"  if [ -r /proc/self/stat ]; then\n"
		"    for f in /proc/[0-9]*/stat; do\n"
		"      read -r l 2>/dev/null < \"$f\" || continue\n"
		"      l=${l##*) }; set -- $l\n"
		"      [ \"$3\" = \"$P\" ] && [ \"$1\" != Z ] && return 0\n"
		"    done\n"
		"    return 1\n"
		"  fi\n"
		"  kill -0 -$P 2>/dev/null\n"
		"}\n"
		"kill -TERM -$P 2>/dev/null\n"
		"i=0\n"
		"while alive; do\n"
		"  i=$((i+1))\n"
		"  [ $i -eq 10 ] && kill -KILL -$P 2>/dev/null\n"
		"  [ $i -ge 60 ] && exit 1\n"
		"  sleep 0.05 2>/dev/null || sleep 1\n"
		"done\n"
		/* The outer bash of the nested shape exits by itself once its
		 * subshell is reaped; one that does not is killed. */
		"i=0\n"
		"while live $O && [ $i -lt 20 ]; do i=$((i+1)); "
		"sleep 0.05 2>/dev/null || sleep 1; done\n"
		"live $O && kill -KILL $O 2>/dev/null\n"
		"exit 0\n", pgid, outer) < 0)
		return NULL;
	return s;
}
