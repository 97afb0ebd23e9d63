/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "kernel.h"
#include "log.h"

static struct kcheck_result result;
static bool checked;

int kernel_check_at_start(const struct config *cfg)
{
	struct kcheck_options o;
	int r;

	kcheck_options_from_config(cfg, true, &o);
	r = kcheck_run(&o, &result);
	checked = true;
	for (size_t i = 0; i < result.n; i++) {
		const struct kcheck_item *it = &result.items[i];
		bool bad = it->status == KCHECK_MISSING || it->status == KCHECK_SKIPPED;
		int level = !bad && it->status != KCHECK_WARNING ? LOG_INFO
			    : it->needed ? LOG_WARNING : LOG_INFO;

		log_full_errno(level, 0, "Kernel check %s: %s%s: %s%s%s", it->name,
			       kcheck_status_to_string(it->status),
			       bad && !it->needed ? " (not needed)" : "", it->detail,
			       it->fix[0] ? "; fix: " : "", it->fix);
	}
	if (!result.dm_ok && cfg->volumes)
		log_warning("Without device-mapper keyscoped still serves keys; volume requests "
			    "get the device-mapper check's message.");
	return r;
}

const char *kernel_dm_problem(void)
{
	return checked && !result.dm_ok ? result.dm_problem : NULL;
}
