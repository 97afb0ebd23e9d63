/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keyring.h"
#include "log.h"
#include "util.h"

#define CONFIG_MAX_SIZE (64 * 1024)

void config_init(struct config *c)
{
	*c = (struct config) {
		.socket_path = strdup(KEYSCOPE_SOCKET_PATH),
		.state_dir = strdup(KEYSCOPE_STATE_DIR),
		.keyring = strdup("@u"),
		.log_level = LOG_INFO,
		.max_clients = 256,
		.client_timeout_sec = 30,
		.request_key_uids = { 0 },
		.n_request_key_uids = 1,
		.request_key_timeout_sec = 300,
		.expected_scopes = 256,
		.volumes = true,
	};
}

void config_done(struct config *c)
{
	free(c->socket_path);
	free(c->state_dir);
	free(c->keyring);
	*c = (struct config) {};
}

static int set_string(char **dst, const char *value)
{
	char *s = strdup(value);

	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int set_read_group(struct config *c, const char *value)
{
	struct group *g;
	unsigned gid;

	if (isempty(value)) {
		c->have_read_group = false;
		return 0;
	}
	if (parse_uint(value, 0, (unsigned) INT32_MAX, &gid) >= 0) {
		c->read_group = gid;
	} else {
		g = getgrnam(value);
		if (!g)
			return -EINVAL;
		c->read_group = g->gr_gid;
	}
	c->have_read_group = true;
	return 0;
}

/* "0, 1000 backup": uids or user names, separated by commas or spaces; empty: nobody. */
static int set_uid_list(struct config *c, const char *value)
{
	_cleanup_free_ char *copy = strdup(value);
	uid_t uids[CONFIG_UIDS_MAX];
	unsigned n = 0, u;
	char *p, *w;

	if (!copy)
		return -ENOMEM;
	p = copy;
	while ((w = strsep(&p, ", \t"))) {
		struct passwd *pw;

		if (!*w)
			continue;
		if (n >= CONFIG_UIDS_MAX)
			return -EINVAL;
		if (parse_uint(w, 0, (unsigned) INT32_MAX - 1, &u) >= 0)
			uids[n++] = u;
		else if ((pw = getpwnam(w)))
			uids[n++] = pw->pw_uid;
		else
			return -EINVAL;
	}
	memcpy(c->request_key_uids, uids, n * sizeof(uid_t));
	c->n_request_key_uids = n;
	return 0;
}

int config_set(struct config *c, const char *key, const char *value)
{
	key_serial_t k;
	int r;

	if (streq(key, "socket"))
		return value[0] == '/' ? set_string(&c->socket_path, value) : -EINVAL;
	if (streq(key, "state-dir"))
		return value[0] == '/' ? set_string(&c->state_dir, value) : -EINVAL;
	if (streq(key, "keyring"))
		return keyring_parse_spec(value, &k) < 0 ? -EINVAL : set_string(&c->keyring, value);
	if (streq(key, "linger"))
		return parse_uint(value, 0, 86400, &c->linger_sec);
	if (streq(key, "max-clients"))
		return parse_uint(value, 1, 65536, &c->max_clients);
	if (streq(key, "client-timeout"))
		return parse_uint(value, 1, 3600, &c->client_timeout_sec);
	if (streq(key, "read-group"))
		return set_read_group(c, value);
	if (streq(key, "request-key-uids"))
		return set_uid_list(c, value);
	if (streq(key, "request-key-timeout"))
		return parse_uint(value, 1, 604800, &c->request_key_timeout_sec);
	if (streq(key, "expected-scopes"))
		return parse_uint(value, 1, 1000000, &c->expected_scopes);
	if (streq(key, "volumes"))
		return parse_bool(value, &c->volumes);
	if (streq(key, "log-level")) {
		r = log_level_from_string(value);
		if (r < 0)
			return r;
		c->log_level = r;
		return 0;
	}
	return -ENOENT;
}

static char *strip(char *s)
{
	char *e;

	s += strspn(s, " \t");
	e = s + strlen(s);
	while (e > s && strchr(" \t\r", e[-1]))
		*--e = 0;
	return s;
}

int config_load(struct config *c, const char *path, bool must_exist)
{
	_cleanup_free_ char *text = NULL;
	char *line, *p;
	unsigned n = 0;
	int r;

	r = read_full_file(path, CONFIG_MAX_SIZE, &text, NULL);
	if (r == -ENOENT && !must_exist)
		return 0;
	if (r == -EFBIG)
		return log_error_errno(r, "Config file %s is larger than %d bytes.", path,
				       CONFIG_MAX_SIZE);
	if (r < 0)
		return log_error_errno(r, "Failed to read config file %s: %m", path);

	p = text;
	while ((line = strsep(&p, "\n"))) {
		char *eq, *key, *value;

		n++;
		line = strip(line);
		if (!*line || *line == '#' || *line == ';')
			continue;
		if (*line == '[')	/* "[keyscoped]" section headers are accepted and ignored */
			continue;
		eq = strchr(line, '=');
		if (!eq)
			return log_error_errno(-EINVAL, "%s:%u: expected 'key = value'.", path, n);
		*eq = 0;
		key = strip(line);
		value = strip(eq + 1);
		r = config_set(c, key, value);
		if (r == -ENOENT)
			return log_error_errno(-EINVAL, "%s:%u: unknown option '%s'.", path, n,
					       key);
		if (r < 0)
			return log_error_errno(-EINVAL, "%s:%u: invalid value for '%s'.", path,
					       n, key);
	}
	return 0;
}
