/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "config.h"
#include "keyring.h"
#include "kvfile.h"
#include "log.h"	/* log_level_from_string(); nothing here logs */
#include "nodeconf.h"
#include "util.h"

#define CONFIG_MAX_SIZE (64 * 1024)
#define KEYSCOPE_LOCAL_CONFDIR "/usr/local/lib/keyscope/keyscoped.conf.d"

/*
 * Every key keyscoped.conf(5) knows, with its default as it would be written and whether a
 * running keyscoped applies a change on reload (SIGHUP) or needs a restart: "live" keys are
 * read where they are used (timeouts, log level, request-key policy, cache age); the others
 * shape what is built at start (the socket, the keyring, the Barbican client, the cache).
 */
static const struct config_key {
	const char *name;
	bool live;
	const char *def;
} config_keys[] = {
	{ "socket", false, KEYSCOPE_SOCKET_PATH },
	{ "state-dir", false, KEYSCOPE_STATE_DIR },
	{ "keyring", false, "@u" },
	{ "linger", false, "0" },
	{ "max-clients", true, "256" },
	{ "unlock-concurrency", false, "1" },
	{ "client-timeout", true, "30" },
	{ "read-group", true, "" },
	{ "request-key-uids", true, "0" },
	{ "request-key-timeout", true, "300" },
	{ "expected-scopes", false, "256" },
	{ "volumes", false, "yes" },
	{ "log-level", true, "info" },
	{ "barbican-url", false, "" },
	{ "barbican-ca-file", false, "" },
	{ "barbican-ca-dir", false, "" },
	{ "barbican-client-cert", false, "" },
	{ "barbican-client-key", false, "" },
	{ "barbican-auth", false, "app-credential" },	/* never the development mode */
	{ "barbican-project-id", false, "" },
	{ "barbican-user-id", false, "" },
	{ "barbican-roles", false, "creator" },
	{ "keystone-url", false, "" },
	{ "app-credential-file", false, "" },
	{ "barbican-connect-timeout", true, "5" },
	{ "barbican-timeout", true, "10" },
	{ "barbican-deadline", true, "20" },
	{ "barbican-retries", true, "4" },
	{ "barbican-concurrency", false, "8" },
	{ "barbican-cache", false, "no" },
	{ "barbican-cache-ttl", true, "604800" },
	{ "barbican-prefetch", false, "no" },
	{ "barbican-consumer-service", false, "keyscope" },
	{ "barbican-consumer-grace", true, "300" },
	{ "metrics-file", false, "" },
	{ "metrics-interval", false, "60" },
	{ "auto-attach", true, "declared" },	/* read by keyscopectl probe, not keyscoped */
};

_Static_assert(ELEMENTSOF(config_keys) <= CONFIG_KEYS_MAX, "raw[] too small");

static int config_key_index(const char *key)
{
	for (unsigned i = 0; i < ELEMENTSOF(config_keys); i++)
		if (streq(config_keys[i].name, key))
			return (int) i;
	return -ENOENT;
}

const char *config_key(unsigned i)
{
	return i < ELEMENTSOF(config_keys) ? config_keys[i].name : NULL;
}

bool config_key_live(unsigned i)
{
	return i < ELEMENTSOF(config_keys) && config_keys[i].live;
}

const char *config_value(const struct config *c, unsigned i)
{
	if (i >= ELEMENTSOF(config_keys))
		return NULL;
	return c->raw[i] ?: config_keys[i].def;
}

static int config_apply(struct config *c, const char *key, const char *value);

int config_init(struct config *c)
{
	*c = (struct config) {};
	for (unsigned i = 0; i < ELEMENTSOF(config_keys); i++) {
		int r = config_apply(c, config_keys[i].name, config_keys[i].def);

		if (r < 0) {
			config_done(c);
			return r;
		}
	}
	return 0;
}

void config_done(struct config *c)
{
	for (unsigned i = 0; i < ELEMENTSOF(config_keys); i++)
		free(c->raw[i]);
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
	free(c->metrics_file);
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

static int config_apply(struct config *c, const char *key, const char *value)
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
	if (streq(key, "metrics-file"))
		return set_path(&c->metrics_file, value);
	if (streq(key, "metrics-interval"))
		return parse_uint(value, 1, 86400, &c->metrics_interval_sec);
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

int config_set(struct config *c, const char *key, const char *value)
{
	int i = config_key_index(key), r;
	char *copy;

	if (i < 0)
		return i;
	copy = strdup(value);
	if (!copy)
		return -ENOMEM;
	r = config_apply(c, key, value);
	if (r < 0) {
		free(copy);
		return r == -ENOENT ? -EINVAL : r;
	}
	free(c->raw[i]);
	c->raw[i] = copy;
	return 0;
}

static int config_error(struct config_error *err, int r, const char *path, unsigned line,
			const char *fmt, ...) _printf_(5, 6);

static int config_error(struct config_error *err, int r, const char *path, unsigned line,
			const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return r;
	snprintf(err->path, sizeof(err->path), "%s", path);
	err->line = line;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return r;
}

struct config_load_ctx {
	struct config *c;
	const char *path;
	struct config_error *err;
};

static int config_load_pair(void *userdata, unsigned line, const char *key, char *value)
{
	struct config_load_ctx *x = userdata;
	int r = config_set(x->c, key, value);

	if (r == -ENOENT)
		return config_error(x->err, -EINVAL, x->path, line, "unknown option '%s'", key);
	if (r == -ENOMEM)
		return config_error(x->err, r, x->path, line, "out of memory");
	if (r < 0)
		return config_error(x->err, -EINVAL, x->path, line, "invalid value for '%s'", key);
	return 0;
}

int config_load(struct config *c, const char *path, bool must_exist, struct config_error *err)
{
	struct config_load_ctx x = { .c = c, .path = path, .err = err };
	_cleanup_free_ char *text = NULL;
	unsigned line = 0;
	size_t size;
	int r;

	r = read_config_file(path, CONFIG_MAX_SIZE, &text, &size);
	if (r == -ENOENT && !must_exist)
		return 0;
	if (r == -EFBIG)
		return config_error(err, r, path, 0, "Config file %s is larger than %d bytes",
				    path, CONFIG_MAX_SIZE);
	if (r == -EBADFD)
		return config_error(err, r, path, 0, "Config file %s is not a regular file", path);
	if (r < 0)
		return config_error(err, r, path, 0, "Failed to read config file %s: %s", path,
				    strerror(-r));
	r = kvfile_parse(text, size, CONFIG_MAX_SIZE, KVFILE_SECTIONS, config_load_pair, &x,
			 &line);
	if (r == -EBADMSG && line == 0)
		return config_error(err, r, path, 0, "Config file %s holds a NUL byte: not a text "
				    "file", path);
	if (r == -EBADMSG)
		return config_error(err, -EINVAL, path, line, "expected 'key = value'");
	return r;
}

char **config_strv_free(char **l)
{
	for (char **p = l; p && *p; p++)
		free(*p);
	free(l);
	return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

static int cmp_basename(const void *a, const void *b)
{
	return strcmp(strrchr(*(char *const *) a, '/') + 1, strrchr(*(char *const *) b, '/') + 1);
}

static bool have_name(char **l, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (streq(strrchr(l[i], '/') + 1, name))
			return true;
	return false;
}

/* Adds dir's "*.conf" files whose names l does not hold yet. */
static int dropins_add(const char *dir, char ***l, size_t *n)
{
	_cleanup_(closedirp) DIR *d = opendir(dir);
	struct dirent *de;
	size_t len;

	if (!d)
		return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
	while ((errno = 0, de = readdir(d))) {
		char **m, *p;

		len = strlen(de->d_name);
		if (de->d_name[0] == '.' || len <= 5 || !streq(de->d_name + len - 5, ".conf") ||
		    have_name(*l, *n, de->d_name))
			continue;
		p = path_join(dir, de->d_name);
		m = p ? reallocarray(*l, *n + 2, sizeof(char *)) : NULL;
		if (!m) {
			free(p);
			return -ENOMEM;
		}
		*l = m;
		m[(*n)++] = p;
		m[*n] = NULL;
	}
	return errno ? -errno : 0;
}

/* A drop-in that is a link to /dev/null masks its name and is not read (systemd's way). */
static size_t drop_masked(char **l, size_t n)
{
	size_t k = 0;
	struct stat st;

	for (size_t i = 0; i < n; i++) {
		if (stat(l[i], &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3)) {
			free(l[i]);
			continue;
		}
		l[k++] = l[i];
	}
	l[k] = NULL;
	return k;
}

int config_dropins(const char *const *dirs, char ***ret, struct config_error *err)
{
	char **l = calloc(1, sizeof(char *));
	size_t n = 0;
	int r;

	if (!l)
		return -ENOMEM;
	for (const char *const *d = dirs; d && *d; d++) {
		r = dropins_add(*d, &l, &n);
		if (r < 0) {
			config_strv_free(l);
			return config_error(err, r, *d, 0, "Failed to read the drop-in folder %s: %s",
					    *d, strerror(-r));
		}
	}
	qsort(l, n, sizeof(char *), cmp_basename);
	n = drop_masked(l, n);
	*ret = l;
	return (int) n;
}

int config_dropin_dirs(const char *path, char *buf, size_t size, const char *dirs[static 5])
{
	int r;

	if (!path) {
		dirs[0] = KEYSCOPE_CONFIG_FILE ".d";
		dirs[1] = KEYSCOPE_RUNSTATEDIR "/keyscope/keyscoped.conf.d";
		dirs[2] = KEYSCOPE_LOCAL_CONFDIR;
		dirs[3] = KEYSCOPE_VENDOR_CONFDIR;
		dirs[4] = NULL;
		return 0;
	}
	r = snprintf(buf, size, "%s.d", path);
	if (r < 0 || (size_t) r >= size)
		return -ENAMETOOLONG;
	dirs[0] = buf;
	dirs[1] = NULL;
	return 0;
}

int config_load_all(struct config *c, const char *path, bool must_exist,
		    const char *const *dirs, struct config_error *err)
{
	char **l = NULL;
	int r;

	r = config_load(c, path, must_exist, err);
	if (r < 0)
		return r;
	r = config_dropins(dirs, &l, err);
	for (char **p = l; r >= 0 && *p; p++)
		r = config_load(c, *p, true, err);
	config_strv_free(l);
	return r < 0 ? r : 0;
}
