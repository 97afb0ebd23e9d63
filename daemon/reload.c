/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* keyscoped's configuration at start and on reload (reload.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "reload.h"
#include "source.h"
#include "util.h"

int config_args_dirs(struct config_args *a)
{
	int r = config_dropin_dirs(a->path, a->dropin_dir, sizeof(a->dropin_dir), a->dirs);

	if (r < 0)
		return log_error_errno(r, "Config file %s: path too long.", a->path);
	return 0;
}

static int log_config_error(int r, const struct config_error *e)
{
	if (e->line)
		return log_error_errno(r, "%s:%u: %s.", e->path, e->line, e->message);
	return log_error_errno(r, "%s.", e->message);
}

int config_read(const struct config_args *a, struct config *c)
{
	struct config_error e = {};
	int r;

	r = config_init(c);
	if (r < 0)
		return log_oom();
	r = config_load_all(c, a->path ?: KEYSCOPE_CONFIG_FILE, a->path != NULL, a->dirs, &e);
	if (r < 0)
		return log_config_error(r, &e);
	for (size_t i = 0; i < a->n_set; i++) {
		r = config_set(c, a->set[i][0], a->set[i][1]);
		if (r < 0)
			return log_error_errno(-EINVAL, "Invalid value '%s' for --%s.", a->set[i][1],
					       a->set[i][0]);
	}
	return 0;
}

int daemon_reload(struct daemon *d, struct config *running, const struct config_args *a)
{
	_cleanup_(config_done) struct config fresh = {};
	unsigned applied = 0, restart = 0;
	const char *key;
	int r;

	r = config_read(a, &fresh);
	if (r < 0) {
		log_error("Reload refused: the configuration above is not valid; the running "
			  "configuration is kept.");
		return r;
	}
	for (unsigned i = 0; (key = config_key(i)); i++) {
		_cleanup_free_ char *was = strdup(config_value(running, i));

		if (!was) {
			log_oom();	/* what was applied so far stays; the rest next time */
			break;
		}
		if (streq(was, config_value(&fresh, i)))
			continue;
		if (!config_key_live(i)) {
			log_warning("Reload: %s = %s (running with %s) takes effect when keyscoped is "
				    "restarted, ignoring for now.", key, config_value(&fresh, i), was);
			restart++;
			continue;
		}
		r = config_set(running, key, config_value(&fresh, i));
		if (r < 0) {
			log_error_errno(r, "Reload: cannot apply %s = %s, keeping %s: %m", key,
					config_value(&fresh, i), was);
			continue;
		}
		log_notice("Reload: %s = %s (was %s), applied.", key, config_value(running, i), was);
		applied++;
	}
	log_set_max_level(running->log_level);
	source_config_changed(d->source);
	log_info("Reloaded the configuration: %u key(s) applied, %u need a restart.", applied,
		 restart);
	return (int) applied;
}
