/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscopectl: every keyscope operation for people and scripts. It talks only to keyscoped
 * over its socket and never holds a key, except the one it is asked to import from stdin.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>

#include "paths.h"
#include "ctl.h"
#include "util.h"

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{}
	};
	unsigned secs;
	int c, r;

	/* It may hold a key being imported: keep it out of core dumps. */
	(void) prctl(PR_SET_DUMPABLE, 0);
	ctl.socket_path = getenv("KEYSCOPE_SOCKET") ?: KEYSCOPE_SOCKET_PATH;
	while ((c = getopt_long(argc, argv, "+s:jt:hV", options, NULL)) >= 0) {
		switch (c) {
		case 's': ctl.socket_path = optarg; break;
		case 'j': ctl.json = true; break;
		case 't':
			if (parse_uint(optarg, 1, 3600, &secs) < 0) {
				fprintf(stderr, "keyscopectl: --timeout takes 1..3600 seconds.\n");
				return 2;
			}
			ctl.timeout_ms = secs * 1000;
			ctl.timeout_given = true;
			break;
		case 'h': ctl_help(); return 0;
		case 'V': printf("keyscopectl " KEYSCOPE_VERSION "\n"); return 0;
		default: return 2;
		}
	}
	if (optind >= argc) {
		ctl_help();
		return 2;
	}
	r = ctl_dispatch(ctl_commands, "", argc - optind, argv + optind);
	if (ctl.connected)
		proto_client_done(&ctl.client);
	return r;
}
