/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscopectl check: the kernel checks (lib/kcheck.h) run here, without keyscoped, for the
 * features keyscoped.conf enables. Exit status 0 only when everything needed is there.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "config.h"
#include "ctl.h"
#include "kcheck.h"
#include "log.h"

static void print_text(const struct kcheck_result *res)
{
	unsigned bad = 0, skipped = 0;

	for (size_t i = 0; i < res->n; i++) {
		const struct kcheck_item *it = &res->items[i];
		bool fails = it->status == KCHECK_MISSING || it->status == KCHECK_SKIPPED;
		char status[32];

		(void) snprintf(status, sizeof(status), "%s%s", kcheck_status_to_string(it->status),
				fails && !it->needed ? " (not needed)" : "");
		printf("%-22s %-20s %s\n", status, it->name, it->detail);
		if (it->fix[0] && it->status != KCHECK_OK)
			printf("%-22s %-20s fix: %s\n", "", "", it->fix);
		bad += it->status == KCHECK_MISSING && it->needed;
		skipped += it->status == KCHECK_SKIPPED && it->needed;
	}
	if (bad)
		printf("keyscope check: %u needed feature%s missing%s\n", bad, bad == 1 ? "" : "s",
		       skipped ? ", others not checked because of them" : "");
	else
		printf("keyscope check: everything the configured features need is present\n");
}

static json_object *version_json(const unsigned v[3])
{
	char buf[48];

	if (!v[0] && !v[1] && !v[2])
		return NULL;
	(void) snprintf(buf, sizeof(buf), "%u.%u.%u", v[0], v[1], v[2]);
	return json_object_new_string(buf);
}

static void print_json(const struct kcheck_result *res)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	json_object *a = json_object_new_array();

	for (size_t i = 0; i < res->n; i++) {
		const struct kcheck_item *it = &res->items[i];
		json_object *e = json_object_new_object();

		json_object_object_add(e, "name", json_object_new_string(it->name));
		json_object_object_add(e, "status",
				       json_object_new_string(kcheck_status_to_string(it->status)));
		json_object_object_add(e, "needed", json_object_new_boolean(it->needed));
		json_object_object_add(e, "detail", json_object_new_string(it->detail));
		json_object_object_add(e, "fix", json_object_new_string(it->fix));
		json_object_array_add(a, e);
	}
	json_object_object_add(o, "ok", json_object_new_boolean(res->ok));
	json_object_object_add(o, "checks", a);
	json_object_object_add(o, "dm-driver-version", version_json(res->dm_version));
	json_object_object_add(o, "crypt-target-version", version_json(res->crypt_version));
	json_object_object_add(o, "module-loaded", json_object_new_boolean(res->module_loaded));
	ctl_print_json(o);
}

int check_main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "no-load", no_argument, NULL, 'N' },
		{}
	};
	_cleanup_(config_done) struct config cfg;
	const char *path = NULL;
	struct kcheck_options o;
	struct kcheck_result res;
	bool load = true;
	struct config_error err = { .message = "path too long" };
	char dropin[PATH_MAX];
	const char *dirs[5];
	int c;

	if (config_init(&cfg) < 0)
		return log_oom(), 2;
	optind = 0; /* 0: GNU getopt re-initialises its state between commands */
	while ((c = getopt_long(argc, argv, "+c:", options, NULL)) >= 0) {
		switch (c) {
		case 'c': path = optarg; break;
		case 'N': load = false; break;
		default:
			return ctl_usage();
		}
	}
	if (optind != argc)
		return ctl_usage();
	log_set_program("keyscopectl");
	if (config_dropin_dirs(path, dropin, sizeof(dropin), dirs) < 0 ||
	    config_load_all(&cfg, path ?: KEYSCOPE_CONFIG_FILE, path != NULL, dirs, &err) < 0) {
		if (err.line)
			log_error("%s:%u: %s.", err.path, err.line, err.message);
		else
			log_error("%s.", err.message);
		return 2;
	}
	kcheck_options_from_config(&cfg, load, &o);
	(void) kcheck_run(&o, &res);
	if (ctl.json)
		print_json(&res);
	else
		print_text(&res);
	return res.ok ? 0 : 1;
}
