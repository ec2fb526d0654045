/*
 * ctl_mount.c — find the hermesfs mount (and so its daemon's state
 * directory) that contains a path. The daemon mounts with
 * fsname "hermesfs:<state dir>", which /proc/self/mountinfo shows as the
 * mount source, so even a custom --state is found without a registry.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/ctl_int.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s)
{
	char *w = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 3;
		} else {
			*w++ = *s;
		}
	}
	*w = '\0';
}

/* Is `mp` path itself or one of its ancestors? */
static bool contains(const char *mp, const char *path)
{
	size_t n = strlen(mp);

	if (strcmp(mp, "/") == 0)
		return true;
	return strncmp(mp, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* Fields: id parent maj:min root mountpoint opts [optional...] - fstype source super */
static int parse_line(char *line, char **mp, char **src)
{
	char *save = NULL, *tok, *fields[5] = { 0 };
	int i = 0;
	bool dash = false;

	*mp = *src = NULL;
	for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		if (!dash && i < 5) {
			fields[i++] = tok;
		} else if (!dash && strcmp(tok, "-") == 0) {
			dash = true;
			i = 0;
		} else if (dash) {
			if (++i == 2)
				*src = tok;
		}
	}
	*mp = fields[4];
	return *mp && *src ? 0 : -EINVAL;
}

int ctl_mount_find(const char *path, char **mountpoint, char **state_dir)
{
	char *line = NULL, *mp, *src, *best_mp = NULL, *best_src = NULL;
	size_t cap = 0, plen = strlen(CTL_FSNAME_PREFIX);
	FILE *f;
	int r = -ENOENT;

	if ((f = fopen("/proc/self/mountinfo", "re")) == NULL)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		if (parse_line(line, &mp, &src) < 0 ||
		    strncmp(src, CTL_FSNAME_PREFIX, plen) != 0)
			continue;
		unescape(mp);
		unescape(src);
		if (!contains(mp, path) ||
		    (best_mp && strlen(best_mp) >= strlen(mp)))
			continue;
		free(best_mp);
		free(best_src);
		best_mp = strdup(mp);
		best_src = strdup(src + plen);
	}
	fclose(f);
	free(line);
	if (best_mp && best_src) {
		*mountpoint = best_mp;
		*state_dir = best_src;
		return 0;
	}
	free(best_mp);
	free(best_src);
	return r;
}
