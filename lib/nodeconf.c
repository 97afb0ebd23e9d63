/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "nodeconf.h"
#include "util.h"

#define NODECONF_FILE_MAX (256 * 1024)

int auto_attach_from_string(const char *s)
{
	if (streq(s, "declared"))
		return AUTO_ATTACH_DECLARED;
	if (streq(s, "all"))
		return AUTO_ATTACH_ALL;
	if (streq(s, "none"))
		return AUTO_ATTACH_NONE;
	return -EINVAL;
}

static char *strip(char *s)
{
	char *e;

	s += strspn(s, " \t\r");
	e = s + strlen(s);
	while (e > s && strchr(" \t\r", e[-1]))
		*--e = '\0';
	return s;
}

static void apply(struct nodeconf *c, const char *key, const char *value)
{
	int a;

	if (streq(key, "barbican-url"))
		c->remote = value[0] != '\0';
	else if (streq(key, "state-dir") && value[0] == '/' && strlen(value) < sizeof(c->state_dir))
		snprintf(c->state_dir, sizeof(c->state_dir), "%s", value);
	else if (streq(key, "auto-attach") && (a = auto_attach_from_string(value)) >= 0)
		c->auto_attach = (enum auto_attach) a;
}

int nodeconf_read(const char *path, struct nodeconf *ret)
{
	_cleanup_free_ char *buf = NULL;
	struct nodeconf c = { .auto_attach = AUTO_ATTACH_DECLARED };
	char *save = NULL;
	size_t len;
	int r;

	snprintf(c.state_dir, sizeof(c.state_dir), "%s", NODECONF_STATE_DIR);
	r = read_config_file(path, NODECONF_FILE_MAX, &buf, &len);
	if (r < 0 && r != -ENOENT)
		return r;
	for (char *l = r < 0 ? NULL : strtok_r(buf, "\n", &save); l;
	     l = strtok_r(NULL, "\n", &save)) {
		char *eq = strchr(l, '='), *k;

		k = strip(l);
		if (!eq || k[0] == '#' || k[0] == ';' || k[0] == '[')
			continue;
		*eq = '\0';
		apply(&c, strip(k), strip(eq + 1));
	}
	/* the old switch: still turns automatic opening off for the whole node */
	if (access(NODECONF_NO_AUTO_ATTACH, F_OK) == 0)
		c.auto_attach = AUTO_ATTACH_NONE;
	*ret = c;
	return 0;
}
