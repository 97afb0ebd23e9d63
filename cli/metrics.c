/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* keyscopectl metrics: keyscoped's counters, histograms and gauges as OpenMetrics text. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static void print_metrics(json_object *rp)
{
	fputs(json_str(rp, "text"), stdout);
}

int metrics_main(int argc, char **argv)
{
	static const struct option options[] = { { "prometheus", no_argument, NULL, 'p' }, {} };
	const char *format = "openmetrics";
	json_object *p;
	int c;

	optind = 0; /* 0: GNU getopt re-initialises its state between commands */
	while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
		if (c != 'p')
			return ctl_usage();
		format = "prometheus";
	}
	if (optind != argc)
		return ctl_usage();
	p = json_object_new_object();
	json_object_object_add(p, "format", json_object_new_string(format));
	return ctl_call_print("keyscope.Metrics", p, print_metrics);
}
