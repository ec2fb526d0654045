/*
 * hermes-fsctl — the command-line client of a hermesfs daemon.
 *
 * Arguments are checked here (usage errors never reach the daemon), then
 * the command is sent over the mount's control socket together with our
 * stdin/stdout/stderr; the daemon writes the output and returns the exit
 * status, which becomes ours.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "fs/ctl_int.h"

static const char usage_text[] =
"usage: hermes-fsctl [-m MOUNTPOINT] COMMAND [ARGS]\n"
"\n"
"Control a hermesfs mount. -m defaults to the mount containing the current\n"
"directory.\n"
"\n"
"commands:\n"
"  status [--json]                 sandboxes, pending changes, conflicts\n"
"  sandbox add NAME URL            add a sandbox (connects once to check it)\n"
"  sandbox rm NAME                 remove a sandbox and its ledger\n"
"  sandbox list [--json]           list sandboxes\n"
"  sync [NAME]                     push pending changes (all sandboxes by default)\n"
"  pull [NAME]                     sync-back: apply what the sandbox changed\n"
"  flush [NAME]                    push, then pull: the teardown call\n"
"  log [--since SEQ] [--json]      show journal entries\n"
"  exec [-s NAME] [-t SECONDS] [-C DIR] -- COMMAND...\n"
"                                  run a command in sandbox NAME (default: the first;\n"
"                                  '-s -': here, in the mount); exits with its status\n"
"  umount                          unmount cleanly and stop the daemon\n"
"\n"
"URLs: local:/path  ssh://[user@]host[:port]/root  cmd:PREFIX[#/root]\n"
"Exit status: 0 ok, 1 failed, 2 usage, 3 no mount/daemon, 4 unknown sandbox,\n"
"5 conflicts kept, 6 permission denied; exec: the command's own status\n"
"(124 timeout, 126 cwd gone, 130 interrupted).\n"
"See hermes-fsctl(1).\n";

/* `hermes-fsctl COMMAND --help`: the command's own usage (stdout, exit 0). */
static const struct {
	const char *name, *text;
} cmd_help[] = {
	{ "status", "status [--json]\n"
	  "Per sandbox: URL, state and last error, pending journal entries, last\n"
	  "push and pull, unresolved conflicts.\n" },
	{ "sandbox", "sandbox add NAME URL | sandbox rm NAME | sandbox list [--json]\n"
	  "add checks the URL and connects once before saving the sandbox; rm forgets\n"
	  "it and its ledger (nothing is deleted on the sandbox).\n"
	  "URLs: local:/path  ssh://[user@]host[:port]/root  cmd:PREFIX[#/root]\n" },
	{ "sync", "sync [NAME]\n"
	  "Push pending changes to NAME (default: every sandbox).\n" },
	{ "pull", "pull [NAME]\n"
	  "Sync-back: apply what NAME changed, three-way against its ledger\n"
	  "(exit 5 when conflict copies were kept).\n" },
	{ "flush", "flush [NAME]\n"
	  "Push, then pull: the teardown call.\n" },
	{ "log", "log [--since SEQ] [--json]\n"
	  "Journal entries not yet applied by every sandbox.\n" },
	{ "exec", "exec [-s NAME] [-t SECONDS] [-C DIR] -- COMMAND...\n"
	  "Run COMMAND with bash in sandbox NAME (default: the first; '-s -': here,\n"
	  "in the mount), after pushing pending changes. -t kills it after SECONDS\n"
	  "(exit 124); -C runs it in DIR, relative to the synced tree. Exits with\n"
	  "the command's status (126 cwd gone, 130 interrupted).\n" },
	{ "umount", "umount\n"
	  "Unmount cleanly and stop the daemon.\n" },
};

/* True when argv asks for help: for exec only among its own options
 * (before "--" or the COMMAND, which may take --help itself). */
static bool wants_help(int argc, char **argv)
{
	bool exec = strcmp(argv[0], "exec") == 0;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
		if (!exec)
			continue;
		if (!strcmp(argv[i], "--") || argv[i][0] != '-')
			return false;
		if (!strcmp(argv[i], "-s") || !strcmp(argv[i], "-C") ||
		    !strcmp(argv[i], "-t"))
			i++;	/* its value */
	}
	return false;
}

/* Print COMMAND's usage if it is known and help was asked for. */
static bool command_help(int argc, char **argv)
{
	size_t i;

	if (!wants_help(argc, argv))
		return false;
	for (i = 0; i < sizeof(cmd_help) / sizeof(cmd_help[0]); i++) {
		if (strcmp(cmd_help[i].name, argv[0]) == 0) {
			printf("usage: hermes-fsctl [-m MOUNTPOINT] %s",
			    cmd_help[i].text);
			return true;
		}
	}
	return false;
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "hermes-fsctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see hermes-fsctl --help)\n");
	return CTL_EXIT_USAGE;
}

static bool is_flag(const char *a, const char *flag)
{
	return strcmp(a, flag) == 0;
}

/* Commands taking at most one optional NAME and no flags. */
static int check_opt_name(int argc, char **argv)
{
	if (argc > 2)
		return usage_error("%s takes at most one sandbox NAME", argv[0]);
	if (argc == 2 && argv[1][0] == '-')
		return usage_error("unknown option '%s'", argv[1]);
	return 0;
}

static int check_flags(int argc, char **argv, int first, const char *ok)
{
	int i;

	for (i = first; i < argc; i++) {
		if (strcmp(argv[i], ok) != 0)
			return usage_error("unexpected argument '%s'", argv[i]);
	}
	return 0;
}

static int check_sandbox(int argc, char **argv)
{
	if (argc < 2)
		return usage_error("sandbox needs a subcommand: %s", "add, rm or list");
	if (is_flag(argv[1], "add"))
		return argc == 4 ? 0 :
		    usage_error("usage: %s NAME URL", "sandbox add");
	if (is_flag(argv[1], "rm"))
		return argc == 3 ? 0 : usage_error("usage: %s NAME", "sandbox rm");
	if (is_flag(argv[1], "list"))
		return check_flags(argc, argv, 2, "--json");
	return usage_error("unknown sandbox subcommand '%s'", argv[1]);
}

static int check_log(int argc, char **argv)
{
	char *end;
	int i;

	for (i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--json"))
			continue;
		if (!is_flag(argv[i], "--since") || i + 1 == argc)
			return usage_error("unexpected argument '%s'", argv[i]);
		strtoll(argv[++i], &end, 10);
		if (*argv[i] == '\0' || *end != '\0')
			return usage_error("--since wants a number, not '%s'", argv[i]);
	}
	return 0;
}

static int check_exec(int argc, char **argv)
{
	char *end;
	int i;

	for (i = 1; i < argc; i++) {
		if (is_flag(argv[i], "--"))
			return i + 1 < argc ? 0 :
			    usage_error("exec needs a COMMAND after %s", "--");
		if (is_flag(argv[i], "-s") || is_flag(argv[i], "-C")) {
			if (++i == argc)
				return usage_error("%s needs a value", argv[i - 1]);
		} else if (is_flag(argv[i], "-t")) {
			if (++i == argc)
				return usage_error("%s needs a value", "-t");
			if (strtod(argv[i], &end) <= 0 || *end != '\0')
				return usage_error("-t wants seconds > 0, not '%s'",
				    argv[i]);
		} else if (argv[i][0] == '-') {
			return usage_error("unknown exec option '%s'", argv[i]);
		} else {
			return 0;	/* COMMAND without "--" */
		}
	}
	return usage_error("exec needs a COMMAND%s", "");
}

static int check_command(int argc, char **argv)
{
	const char *c = argv[0];

	if (is_flag(c, "status"))
		return check_flags(argc, argv, 1, "--json");
	if (is_flag(c, "sandbox"))
		return check_sandbox(argc, argv);
	if (is_flag(c, "sync") || is_flag(c, "pull") || is_flag(c, "flush"))
		return check_opt_name(argc, argv);
	if (is_flag(c, "log"))
		return check_log(argc, argv);
	if (is_flag(c, "exec"))
		return check_exec(argc, argv);
	if (is_flag(c, "umount"))
		return check_flags(argc, argv, 1, "");
	return usage_error("unknown command '%s'", c);
}

static int find_socket(const char *mp_arg, char *sock, size_t len, char **mp_out)
{
	char path[PATH_MAX], *mp = NULL, *state = NULL;
	int r;

	if (realpath(mp_arg ? mp_arg : ".", path) == NULL) {
		fprintf(stderr, "hermes-fsctl: %s: %s\n", mp_arg ? mp_arg : ".",
		    strerror(errno));
		return CTL_EXIT_NOMOUNT;
	}
	if ((r = ctl_mount_find(path, &mp, &state)) < 0) {
		fprintf(stderr, "hermes-fsctl: %s is not inside a hermesfs mount"
		    " (mount one with hermesfs, or pass -m MOUNTPOINT)\n", path);
		return CTL_EXIT_NOMOUNT;
	}
	snprintf(sock, len, "%s/%s", state, CTL_SOCK_NAME);
	*mp_out = mp;
	free(state);
	return 0;
}

/*
 * The daemon holds the state directory's lock until it exits: after an
 * umount it may still finish a push (SIGTERM semantics), and scripts that
 * remount or read the store next need it gone.
 */
static void wait_daemon_exit(const char *sock)
{
	char path[PATH_MAX + 16];
	const char *slash = strrchr(sock, '/');
	int fd, tries = 0;

	if (!slash)
		return;
	snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - sock), sock,
		 CTL_LOCK_NAME);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;		/* an older daemon: nothing to wait on */
	while (flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK) {
		if (tries++ == 20)
			fprintf(stderr, "hermes-fsctl: waiting for the daemon to"
			    " finish the work in progress...\n");
		usleep(50 * 1000);
	}
	close(fd);
}

/*
 * The mount appears a moment before the control socket (the daemon
 * rescans the tree in between), so a script that starts `hermesfs -f &`
 * and calls us as soon as the mount is there would fail. A missing or
 * refusing socket under a live mount is retried for a few seconds;
 * nothing was sent yet, so the retry is safe.
 */
static int call_daemon(const char *sock, int argc, char **argv)
{
	int r;

	for (int i = 0;; i++) {
		r = ctl_client_call(sock, argc, argv);
		if ((r != -ENOENT && r != -ECONNREFUSED) || i >= 100)
			return r;
		usleep(50 * 1000);
	}
}

static int report(int r, const char *mp, const char *sock)
{
	if (r >= 0)
		return r;
	if (r == -EACCES || r == -EPERM) {
		fprintf(stderr, "hermes-fsctl: permission denied: the daemon of %s"
		    " belongs to another user\n", mp);
		return CTL_EXIT_DENIED;
	}
	fprintf(stderr, "hermes-fsctl: cannot reach the hermesfs daemon of %s"
	    " (%s: %s); is it still running?\n", mp, sock, strerror(-r));
	return CTL_EXIT_NOMOUNT;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "mount", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	const char *mp_arg = NULL;
	char sock[PATH_MAX + 16], *mp = NULL;
	int c, r;

	/* '+': stop at the command, so its own options are left alone. */
	while ((c = getopt_long(argc, argv, "+hm:", lopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'm':
			mp_arg = optarg;
			break;
		default:
			fprintf(stderr, "(see hermes-fsctl --help)\n");
			return CTL_EXIT_USAGE;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return usage_error("missing COMMAND%s", "");
	if (command_help(argc, argv))
		return 0;
	if ((r = check_command(argc, argv)) != 0)
		return r;
	if ((r = find_socket(mp_arg, sock, sizeof(sock), &mp)) != 0)
		return r;
	r = report(call_daemon(sock, argc, argv), mp, sock);
	if (r == CTL_EXIT_OK && strcmp(argv[0], "umount") == 0)
		wait_daemon_exit(sock);
	free(mp);
	return r;
}
