/*
 * config.c — the ini configuration file and gitignore-style ignore rules.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <pwd.h>
#include <unistd.h>

#include "fs/ctl_int.h"
#include "sync/sync.h"

struct config_item {
	char *section;		/* NULL = defaults, else sandbox name */
	char *key;
	char *value;
	bool override;		/* from the command line: beats every section */
};

struct config {
	struct config_item *items;
	size_t n;
};

static const char *const known_keys[] = {
	"retry", "conflict", "max-total-bytes", "max-files", "max-file-size",
	"parallel", "auto-push", "accept-new-host-keys", "identity", "known-hosts",
	"ignore", "shutdown-grace", NULL,
};

static bool key_known(const char *k)
{
	int i;

	for (i = 0; known_keys[i]; i++)
		if (strcmp(known_keys[i], k) == 0)
			return true;
	return false;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Path-valued keys: a leading "~/" (or "~" alone) is $HOME, as in a shell;
 * libssh2 would otherwise read a literal "~" directory. malloc'd. */
static char *expand_value(const char *key, const char *value)
{
	const char *home;
	struct passwd *pw;
	char *p = NULL;

	if ((strcmp(key, "identity") && strcmp(key, "known-hosts")) ||
	    value[0] != '~' || (value[1] != '\0' && value[1] != '/'))
		return strdup(value);
	home = getenv("HOME");
	if ((!home || !*home) && (pw = getpwuid(getuid())))
		home = pw->pw_dir;
	if (!home || !*home)
		return strdup(value);
	return asprintf(&p, "%s%s", home, value + 1) < 0 ? NULL : p;
}

static int item_add(struct config *c, const char *sandbox, const char *key,
		    const char *value, bool override)
{
	struct config_item *n, *it;

	if (!key_known(key))
		return -EINVAL;
	if ((n = realloc(c->items, (c->n + 1) * sizeof(*n))) == NULL)
		return -ENOMEM;
	c->items = n;
	it = &c->items[c->n];
	it->section = sandbox ? strdup(sandbox) : NULL;
	it->key = strdup(key);
	it->value = expand_value(key, value);
	it->override = override;
	if ((sandbox && !it->section) || !it->key || !it->value) {
		free(it->section);
		free(it->key);
		free(it->value);
		return -ENOMEM;
	}
	c->n++;
	return 0;
}

int config_set(struct config *c, const char *sandbox, const char *key,
	       const char *value)
{
	return item_add(c, sandbox, key, value, false);
}

int config_override(struct config *c, const char *key, const char *value)
{
	return item_add(c, NULL, key, value, true);
}

static bool is_key(const char *key, const char *a, const char *b,
		   const char *c)
{
	return !strcmp(key, a) || (b && !strcmp(key, b)) || (c && !strcmp(key, c));
}

const char *config_value_check(const char *key, const char *value)
{
	enum sync_conflict_policy pol;
	int ms[16], n = 0;
	int64_t v = 0;
	bool b;

	if (is_key(key, "retry", NULL, NULL))
		return config_parse_retry(value, ms, 16, &n) == 0 && n > 0 ? NULL :
		    "a list of delays in seconds, e.g. 2,4,8";
	if (is_key(key, "conflict", NULL, NULL))
		return sync_conflict_policy_parse(value, &pol) == 0 ? NULL :
		    "conflict-copy, host-wins or remote-wins";
	if (is_key(key, "max-total-bytes", "max-files", "max-file-size"))
		return config_parse_size(value, &v) == 0 ? NULL :
		    "a number with an optional K, M, G or T suffix";
	if (is_key(key, "parallel", NULL, NULL))
		return config_parse_size(value, &v) == 0 && v >= 1 && v <= 64 ?
		    NULL : "a number from 1 to 64";
	if (is_key(key, "shutdown-grace", NULL, NULL))
		return config_parse_size(value, &v) == 0 && v <= 86400 ? NULL :
		    "seconds, from 0 to 86400";
	if (is_key(key, "auto-push", "accept-new-host-keys", NULL))
		return config_parse_bool(value, &b) == 0 ? NULL : "yes or no";
	return *value ? NULL : "a value";
}

static int bad(char *err, size_t len, const char *path, int line,
	       const char *fmt, const char *arg)
{
	char what[160];

	snprintf(what, sizeof(what), fmt, arg);
	snprintf(err, len, "%s:%d: %s", path, line, what);
	return -EINVAL;
}

/* "[defaults]" -> NULL section; "[sandbox NAME]" -> NAME. */
static int parse_section(char *s, char **section)
{
	char *e = strchr(s, ']');

	if (e == NULL || trim(e + 1)[0] != '\0')
		return -EINVAL;
	*e = '\0';
	s = trim(s + 1);
	free(*section);
	*section = NULL;
	if (strcmp(s, "defaults") == 0)
		return 0;
	if (strncmp(s, "sandbox", 7) != 0 || !isspace((unsigned char)s[7]))
		return -EINVAL;
	s = trim(s + 7);
	if (*s == '\0' || (*section = strdup(s)) == NULL)
		return -EINVAL;
	return 0;
}

static int parse_file(FILE *f, const char *path, struct config *c,
		      char *err, size_t errlen)
{
	char *line = NULL, *s, *eq, *section = NULL, msg[128];
	const char *what;
	size_t cap = 0;
	int lineno = 0, r = 0;

	while (r == 0 && getline(&line, &cap, f) > 0) {
		lineno++;
		s = trim(line);
		if (*s == '\0' || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			if (parse_section(s, &section) < 0)
				r = bad(err, errlen, path, lineno, "bad section"
				    " header '%s' (want [defaults] or [sandbox"
				    " NAME])", s);
			continue;
		}
		if ((eq = strchr(s, '=')) == NULL) {
			r = bad(err, errlen, path, lineno, "expected 'key = value',"
			    " got '%s'", s);
			continue;
		}
		*eq = '\0';
		if (!key_known(trim(s))) {
			r = bad(err, errlen, path, lineno, "unknown key '%s'", trim(s));
			continue;
		}
		if ((what = config_value_check(trim(s), trim(eq + 1)))) {
			snprintf(msg, sizeof(msg), "%s = '%%s': expected %s",
			    trim(s), what);
			r = bad(err, errlen, path, lineno, msg, trim(eq + 1));
			continue;
		}
		r = config_set(c, section, trim(s), trim(eq + 1));
	}
	free(line);
	free(section);
	return r;
}

int config_load(const char *path, struct config **out, char *err,
		size_t errlen)
{
	struct config *c;
	FILE *f;
	int r = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	if (path && (f = fopen(path, "re")) != NULL) {
		r = parse_file(f, path, c, err, errlen);
		fclose(f);
	} else if (path && errno != ENOENT) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
	}
	if (r < 0) {
		config_free(c);
		return r;
	}
	*out = c;
	return 0;
}

void config_free(struct config *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n; i++) {
		free(c->items[i].section);
		free(c->items[i].key);
		free(c->items[i].value);
	}
	free(c->items);
	free(c);
}

char *config_default_path(void)
{
	const char *x = getenv("XDG_CONFIG_HOME"), *h = getenv("HOME");
	char *p = NULL;

	if (x && *x)
		return asprintf(&p, "%s/hermesfs/config", x) < 0 ? NULL : p;
	return asprintf(&p, "%s/.config/hermesfs/config", h ? h : "/") < 0 ?
	    NULL : p;
}

static bool section_is(const struct config_item *it, const char *sandbox)
{
	if (sandbox == NULL)
		return it->section == NULL;
	return it->section && strcmp(it->section, sandbox) == 0;
}

const char *config_get(const struct config *c, const char *sandbox,
		       const char *key)
{
	const char *v = NULL;
	size_t i;
	int pass;

	/* Command-line overrides, then the sandbox section, then defaults;
	 * within one, the last assignment wins. */
	for (pass = 0; pass < 3 && v == NULL; pass++) {
		if (pass == 1 && !sandbox)
			continue;
		for (i = 0; i < c->n; i++) {
			const struct config_item *it = &c->items[i];

			if (pass == 0 ? it->override : (!it->override &&
			    section_is(it, pass == 1 ? sandbox : NULL))) {
				if (strcmp(it->key, key) == 0)
					v = it->value;
			}
		}
	}
	return v;
}

bool config_sandbox_name_ok(const char *name)
{
	return name[0] != '\0' && name[0] != '-' && !strpbrk(name, "/ \t\n=]");
}

int config_parse_size(const char *s, int64_t *out)
{
	char *end;
	long long v;
	int shift = 0;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || v < 0)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	}
	if (v > (INT64_MAX >> shift))
		return -EINVAL;	/* would overflow */
	v <<= shift;
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		return -EINVAL;
	*out = v;
	return 0;
}

int config_parse_bool(const char *s, bool *out)
{
	if (!strcasecmp(s, "yes") || !strcasecmp(s, "true") || !strcmp(s, "1") ||
	    !strcasecmp(s, "on"))
		*out = true;
	else if (!strcasecmp(s, "no") || !strcasecmp(s, "false") ||
	    !strcmp(s, "0") || !strcasecmp(s, "off"))
		*out = false;
	else
		return -EINVAL;
	return 0;
}

int config_parse_retry(const char *s, int *ms, int max, int *n)
{
	const char *p = s;
	char *end;
	double v;
	int k = 0;

	while (*p) {
		v = strtod(p, &end);
		if (end == p || v < 0 || v > 3600 || k == max)
			return -EINVAL;
		ms[k++] = (int)(v * 1000);
		p = end;
		while (*p == ' ')
			p++;
		if (*p == ',')
			p++;
		else if (*p != '\0')
			return -EINVAL;
	}
	*n = k;
	return 0;
}

/* ---- ignore rules ----------------------------------------------------- */

struct ignore_rule {
	char *pat;
	bool negate, dir_only, anchored;
};

struct ignore {
	struct ignore_rule *rules;
	size_t n;
};

/*
 * Matching context: "**" may try every split of the name, and nested ones
 * would multiply; remembering which (pattern, name) positions already
 * failed bounds the work by pattern length x name length.
 */
struct glob {
	const char *p0, *s0;
	size_t plen, slen;
	uint8_t *failed;	/* bitmap, allocated at the first "**" */
	bool oom;
};

static bool glob_match(struct glob *g, const char *p, const char *s);

static bool glob_try(struct glob *g, const char *p, const char *s)
{
	size_t bit;

	if (!g->failed && !g->oom &&
	    !(g->failed = calloc(((g->plen + 1) * (g->slen + 1) + 7) / 8, 1)))
		g->oom = true;
	if (g->oom)
		return glob_match(g, p, s);
	bit = (size_t)(p - g->p0) * (g->slen + 1) + (size_t)(s - g->s0);
	if (g->failed[bit / 8] & (1u << (bit % 8)))
		return false;
	if (glob_match(g, p, s))
		return true;
	g->failed[bit / 8] |= (uint8_t)(1u << (bit % 8));
	return false;
}

/* "**": any run of characters, '/' included. */
static bool match_double_star(struct glob *g, const char *p, const char *s)
{
	const char *t;

	if (*p == '/') {	/* "**" "/": zero or more whole directories */
		for (t = s;; t++) {
			if ((t == s || t[-1] == '/') && glob_try(g, p + 1, t))
				return true;
			if (*t == '\0')
				return false;
		}
	}
	for (t = s;; t++) {
		if (glob_try(g, p, t))
			return true;
		if (*t == '\0')
			return false;
	}
}

/* A bracket expression matches one character; fnmatch does the class. */
static bool match_class(const char **pp, char c)
{
	const char *p = *pp, *e = p + 1;
	char cls[128], str[2] = { c, '\0' };

	if (*e == '!' || *e == '^')
		e++;
	if (*e == ']')
		e++;
	while (*e && *e != ']')
		e++;
	if (*e != ']' || (size_t)(e - p + 2) > sizeof(cls))
		return c == '[';	/* no closing bracket: literal '[' */
	memcpy(cls, p, (size_t)(e - p + 1));
	cls[e - p + 1] = '\0';
	*pp = e + 1;
	return c != '/' && fnmatch(cls, str, 0) == 0;
}

/* One pattern character (literal, '?', '\\x' or a bracket expression)
 * against *s, which is not NUL; advances *pp past it on a match. */
static bool match_one(const char **pp, char c)
{
	const char *p = *pp, *q = p;

	if (*p == '[') {
		if (!match_class(&q, c))
			return false;
		*pp = q == p ? p + 1 : q;	/* q == p: literal '[' */
		return true;
	}
	if (*p == '\\' && p[1])
		p++;
	if (*p == '?' ? c == '/' : *p != c)
		return false;
	*pp = p + 1;
	return true;
}

/*
 * '*' keeps only its latest backtracking point (extend the last star by
 * one character and retry), so matching stays polynomial: a pattern like
 * "*a*a*a*b" against a long run of 'a's no longer explodes.
 */
static bool glob_match(struct glob *g, const char *p, const char *s)
{
	const char *star_p = NULL, *star_s = NULL;

	for (;;) {
		if (p[0] == '*' && p[1] == '*') {
			if (match_double_star(g, p + 2, s))
				return true;
		} else if (*p == '*') {
			star_p = ++p;
			star_s = s;
			continue;
		} else if (*p == '\0' && *s == '\0') {
			return true;
		} else if (*p && *s && match_one(&p, *s)) {
			s++;
			continue;
		}
		/* Mismatch: let the last '*' eat one more character. */
		if (!star_p || *star_s == '\0' || *star_s == '/')
			return false;
		p = star_p;
		s = ++star_s;
	}
}

int ignore_add(struct ignore *ig, const char *pattern)
{
	struct ignore_rule r = { 0 }, *n;
	char *p;
	size_t len;

	if ((p = strdup(pattern)) == NULL)
		return -ENOMEM;
	r.pat = p;
	if (*p == '!') {
		r.negate = true;
		memmove(p, p + 1, strlen(p));
	}
	len = strlen(p);
	while (len > 0 && p[len - 1] == '/') {
		r.dir_only = true;
		p[--len] = '\0';
	}
	r.anchored = strchr(p, '/') != NULL;
	if (*p == '/')
		memmove(p, p + 1, len);
	if (*p == '\0') {
		free(p);
		return -EINVAL;
	}
	if ((n = realloc(ig->rules, (ig->n + 1) * sizeof(*n))) == NULL) {
		free(p);
		return -ENOMEM;
	}
	ig->rules = n;
	ig->rules[ig->n++] = r;
	return 0;
}

static int add_section(struct ignore *ig, const struct config *c,
		       const char *sandbox)
{
	size_t i;
	int r;

	for (i = 0; i < c->n; i++)
		if (section_is(&c->items[i], sandbox) &&
		    strcmp(c->items[i].key, "ignore") == 0 &&
		    (r = ignore_add(ig, c->items[i].value)) < 0)
			return r;
	return 0;
}

int ignore_from_config(const struct config *c, const char *sandbox,
		       struct ignore **out)
{
	struct ignore *ig;
	int r;

	if ((ig = calloc(1, sizeof(*ig))) == NULL)
		return -ENOMEM;
	if (c && ((r = add_section(ig, c, NULL)) < 0 ||
	    (sandbox && (r = add_section(ig, c, sandbox)) < 0))) {
		ignore_free(ig);
		return r;
	}
	*out = ig;
	return 0;
}

void ignore_free(struct ignore *ig)
{
	size_t i;

	if (ig == NULL)
		return;
	for (i = 0; i < ig->n; i++)
		free(ig->rules[i].pat);
	free(ig->rules);
	free(ig);
}

/* Verdict of the rules for one path (the last matching rule wins). */
static bool pattern_matches(const char *pat, const char *name)
{
	struct glob g = { .p0 = pat, .s0 = name, .plen = strlen(pat),
			  .slen = strlen(name) };
	bool m = glob_match(&g, pat, name);

	free(g.failed);
	return m;
}

static bool rules_say_ignored(const struct ignore *ig, const char *path,
			      bool is_dir)
{
	const char *base = strrchr(path, '/');
	bool ignored = false;
	size_t i;

	base = base ? base + 1 : path;
	for (i = 0; i < ig->n; i++) {
		const struct ignore_rule *r = &ig->rules[i];

		if (r->dir_only && !is_dir)
			continue;
		if (pattern_matches(r->pat, r->anchored ? path : base))
			ignored = !r->negate;
	}
	return ignored;
}

bool ignore_match(const struct ignore *ig, const char *relpath, bool is_dir)
{
	char buf[4096];
	size_t i, len = strlen(relpath);

	if (ig == NULL || ig->n == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, relpath, len + 1);
	/* A file below an ignored directory is ignored, as in git. */
	for (i = 0; i < len; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (rules_say_ignored(ig, buf, true))
			return true;
		buf[i] = '/';
	}
	return rules_say_ignored(ig, buf, is_dir);
}
