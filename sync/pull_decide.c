/*
 * pull_decide.c — the three-way decision for one path, as a pure function
 * of (ledger, host, remote, policy), and the conflict policy names.
 */
#include <errno.h>
#include <string.h>

#include "sync/pull_int.h"

static const char *const policy_names[] = {
	[SYNC_CONFLICT_COPY] = "conflict-copy",
	[SYNC_CONFLICT_HOST_WINS] = "host-wins",
	[SYNC_CONFLICT_REMOTE_WINS] = "remote-wins",
};

int sync_conflict_policy_parse(const char *s, enum sync_conflict_policy *out)
{
	for (size_t i = 0; i < sizeof(policy_names) / sizeof(*policy_names); i++) {
		if (s && strcmp(s, policy_names[i]) == 0) {
			*out = (enum sync_conflict_policy)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *sync_conflict_policy_name(enum sync_conflict_policy p)
{
	if ((size_t)p >= sizeof(policy_names) / sizeof(*policy_names))
		return "?";
	return policy_names[p];
}

const char *pull_action_name(enum pull_action a)
{
	switch (a) {
	case PULL_NONE: return "none";
	case PULL_LEDGER: return "ledger";
	case PULL_APPLY: return "apply";
	case PULL_DELETE: return "delete";
	case PULL_CONFLICT: return "conflict";
	case PULL_HOST_WINS: return "host-wins";
	case PULL_RESTORE_COPY: return "restore-copy";
	case PULL_KEEP_HOST: return "keep-host";
	}
	return "?";
}

bool pull_ver_equal(const struct pull_ver *a, const struct pull_ver *b)
{
	if (a->present != b->present)
		return false;
	if (!a->present)
		return true;
	if (a->type != b->type)
		return false;
	if (a->type == STORE_FT_SYMLINK)
		return memcmp(a->sha, b->sha, sizeof(a->sha)) == 0;
	if ((a->mode & 0777) != (b->mode & 0777))
		return false;
	return a->type == STORE_FT_DIR ||
	       memcmp(a->sha, b->sha, sizeof(a->sha)) == 0;
}

/* Both sides changed, differently, and both still exist. */
static enum pull_action both_changed(const struct pull_ver *base,
				     const struct pull_ver *host,
				     const struct pull_ver *remote,
				     enum sync_conflict_policy policy)
{
	/* Two directories only differ in mode: nothing is lost either way,
	 * and a directory new on both sides is the same directory. */
	if (host->type == STORE_FT_DIR && remote->type == STORE_FT_DIR) {
		if (!base->present)
			return PULL_LEDGER;
		return policy == SYNC_CONFLICT_HOST_WINS ? PULL_HOST_WINS : PULL_APPLY;
	}
	/* Same content, modes differ: no content to lose, so no copy. A mode
	 * only the host changed stays (its own chmod is pushed); otherwise
	 * the policy picks a mode. */
	if (host->type == STORE_FT_FILE && remote->type == STORE_FT_FILE &&
	    memcmp(host->sha, remote->sha, sizeof(host->sha)) == 0) {
		if (base->present && base->type == STORE_FT_FILE &&
		    (remote->mode & 0777) == (base->mode & 0777))
			return PULL_LEDGER;
		return policy == SYNC_CONFLICT_HOST_WINS ? PULL_HOST_WINS : PULL_APPLY;
	}
	switch (policy) {
	case SYNC_CONFLICT_HOST_WINS:
		return PULL_HOST_WINS;
	case SYNC_CONFLICT_REMOTE_WINS:
		return PULL_APPLY;
	case SYNC_CONFLICT_COPY:
	default:
		return PULL_CONFLICT;
	}
}

enum pull_action pull_decide(const struct pull_ver *base,
			     const struct pull_ver *host,
			     const struct pull_ver *remote,
			     enum sync_conflict_policy policy)
{
	if (pull_ver_equal(remote, base))
		return PULL_NONE;
	if (pull_ver_equal(host, remote))
		return PULL_LEDGER;
	if (pull_ver_equal(host, base))
		return remote->present ? PULL_APPLY : PULL_DELETE;
	if (!remote->present)
		return PULL_KEEP_HOST;
	if (!host->present)
		return PULL_RESTORE_COPY;
	return both_changed(base, host, remote, policy);
}
