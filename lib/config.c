/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keyring.h"
#include "kvfile.h"
#include "log.h"
#include "nodeconf.h"
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
		.unlock_concurrency = 1,
		.client_timeout_sec = 30,
		.request_key_uids = { 0 },
		.n_request_key_uids = 1,
		.request_key_timeout_sec = 300,
		.expected_scopes = 256,
		.volumes = true,
		.barbican_auth = 1,	/* app-credential: never the development mode by default */
		.barbican_roles = strdup("creator"),
		.barbican_connect_timeout_sec = 5,
		.barbican_timeout_sec = 10,
		.barbican_deadline_sec = 20,
		.barbican_retries = 4,
		.barbican_concurrency = 8,
		.barbican_cache_ttl_sec = 7 * 86400,
		.barbican_consumer_service = strdup("keyscope"),
		.barbican_consumer_grace_sec = 300,
	};
}

void config_done(struct config *c)
{
	free(c->socket_path);
	free(c->state_dir);
	free(c->keyring);
	free(c->barbican_url);
	free(c->barbican_ca_file);
	free(c->barbican_ca_dir);
	free(c->barbican_client_cert);
	free(c->barbican_client_key);
	free(c->barbican_project_id);
	free(c->barbican_user_id);
	free(c->barbican_roles);
	free(c->keystone_url);
	free(c->app_credential_file);
	free(c->barbican_consumer_service);
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

/* An optional string: empty unsets it. */
static int set_optional(char **dst, const char *value)
{
	if (isempty(value)) {
		*dst = mfree(*dst);
		return 0;
	}
	return set_string(dst, value);
}

static int set_url(char **dst, const char *value)
{
	if (!isempty(value) && !strneq(value, "https://", 8) && !strneq(value, "http://", 7))
		return -EINVAL;
	return set_optional(dst, value);
}

static int set_path(char **dst, const char *value)
{
	if (!isempty(value) && value[0] != '/')
		return -EINVAL;
	return set_optional(dst, value);
}

/* Barbican's keys (docs/keyscoped.conf.5). Returns -ENOENT for a key that is not one. */
static int config_set_barbican(struct config *c, const char *key, const char *value)
{
	if (streq(key, "barbican-url"))
		return set_url(&c->barbican_url, value);
	if (streq(key, "barbican-ca-file"))
		return set_path(&c->barbican_ca_file, value);
	if (streq(key, "barbican-ca-dir"))
		return set_path(&c->barbican_ca_dir, value);
	if (streq(key, "barbican-client-cert"))
		return set_path(&c->barbican_client_cert, value);
	if (streq(key, "barbican-client-key"))
		return set_path(&c->barbican_client_key, value);
	if (streq(key, "barbican-auth")) {
		if (streq(value, "none"))
			c->barbican_auth = 0;
		else if (streq(value, "app-credential"))
			c->barbican_auth = 1;
		else
			return -EINVAL;
		return 0;
	}
	if (streq(key, "barbican-project-id"))
		return set_optional(&c->barbican_project_id, value);
	if (streq(key, "barbican-user-id"))
		return set_optional(&c->barbican_user_id, value);
	if (streq(key, "barbican-roles"))
		return set_optional(&c->barbican_roles, value);
	if (streq(key, "keystone-url"))
		return set_url(&c->keystone_url, value);
	if (streq(key, "app-credential-file"))
		return set_path(&c->app_credential_file, value);
	if (streq(key, "barbican-connect-timeout"))
		return parse_uint(value, 1, 600, &c->barbican_connect_timeout_sec);
	if (streq(key, "barbican-timeout"))
		return parse_uint(value, 1, 3600, &c->barbican_timeout_sec);
	if (streq(key, "barbican-deadline"))
		return parse_uint(value, 1, 86400, &c->barbican_deadline_sec);
	if (streq(key, "barbican-retries"))
		return parse_uint(value, 0, 100, &c->barbican_retries);
	if (streq(key, "barbican-concurrency"))
		return parse_uint(value, 1, 256, &c->barbican_concurrency);
	if (streq(key, "barbican-cache"))
		return parse_bool(value, &c->barbican_cache);
	if (streq(key, "barbican-cache-ttl"))
		return parse_uint(value, 1, 365 * 86400, &c->barbican_cache_ttl_sec);
	if (streq(key, "barbican-prefetch"))
		return parse_bool(value, &c->barbican_prefetch);
	if (streq(key, "barbican-consumer-service"))
		return isempty(value) || strlen(value) > 255 ? -EINVAL
			: set_string(&c->barbican_consumer_service, value);
	if (streq(key, "barbican-consumer-grace"))
		return parse_uint(value, 0, 7 * 86400, &c->barbican_consumer_grace_sec);
	return -ENOENT;
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
	if (streq(key, "unlock-concurrency"))
		return parse_uint(value, 1, 64, &c->unlock_concurrency);
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
	/* read by udev's keyscopectl probe (lib/nodeconf.c), validated here at start */
	if (streq(key, "auto-attach"))
		return auto_attach_from_string(value) < 0 ? -EINVAL : 0;
	if (streq(key, "log-level")) {
		r = log_level_from_string(value);
		if (r < 0)
			return r;
		c->log_level = r;
		return 0;
	}
	return config_set_barbican(c, key, value);
}

struct config_load_ctx {
	struct config *c;
	const char *path;
};

static int config_load_pair(void *userdata, unsigned line, const char *key, char *value)
{
	struct config_load_ctx *x = userdata;
	int r = config_set(x->c, key, value);

	if (r == -ENOENT)
		return log_error_errno(-EINVAL, "%s:%u: unknown option '%s'.", x->path, line, key);
	if (r < 0)
		return log_error_errno(-EINVAL, "%s:%u: invalid value for '%s'.", x->path, line,
				       key);
	return 0;
}

int config_load(struct config *c, const char *path, bool must_exist)
{
	struct config_load_ctx x = { .c = c, .path = path };
	_cleanup_free_ char *text = NULL;
	unsigned line;
	size_t size;
	int r;

	r = read_full_file(path, CONFIG_MAX_SIZE, &text, &size);
	if (r == -ENOENT && !must_exist)
		return 0;
	if (r == -EFBIG)
		return log_error_errno(r, "Config file %s is larger than %d bytes.", path,
				       CONFIG_MAX_SIZE);
	if (r < 0)
		return log_error_errno(r, "Failed to read config file %s: %m", path);
	r = kvfile_parse(text, size, CONFIG_MAX_SIZE, KVFILE_SECTIONS, config_load_pair, &x,
			 &line);
	if (r == -EBADMSG && line == 0)
		return log_error_errno(r, "Config file %s holds a NUL byte: not a text file.",
				       path);
	if (r == -EBADMSG)
		return log_error_errno(-EINVAL, "%s:%u: expected 'key = value'.", path, line);
	return r;
}
