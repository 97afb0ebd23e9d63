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

static const struct command commands[] = {
	{ "key", key_main, "create, import, list, delete, clone, install and release keys" },
	{ "scope", scope_main, "list key scopes: key-id, kernel key serial, holders" },
	{ "status", status_main, "the daemon's state, its scopes and attached volumes" },
	{ "format", format_main, "LUKS2 with the delegated key as volume key, keyscope token" },
	{ "attach", attach_main, "open a volume by keyring reference (LUKS2 token or --plain)" },
	{ "detach", detach_main, "close a volume; the last holder removes its kernel key" },
	{ "resize", resize_main, "reload a volume's table at its device's new size" },
	{ "rebind", rebind_main, "point a (cloned) volume's token at another key-id" },
	{ "check", check_main, "kernel features: keyring, logon, request-key, dm-crypt, quotas" },
	{ "probe", probe_main, "udev properties of a keyscope volume, read locally from its header" },
};

static void help(void)
{
	printf("Usage: keyscopectl [--socket PATH] [--json] [--timeout SECS] COMMAND ...\n\n"
	       "Commands:\n");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		printf("  %-8s %s\n", commands[i].name, commands[i].help);
	printf("\n  key create [--bits 256|512] [--name NAME]   prints the new key-id\n"
	       "  key import [--name NAME] < RAW_KEY_BYTES    exactly 32 or 64 bytes\n"
	       "  key list | key delete ID | key clone [--name NAME] ID\n"
	       "  key install ID | key release ID             take / drop a holder\n"
	       "  scope list | status\n"
	       "  format DEVICE --key ID [--force]\n"
	       "  attach DEVICE [--name NAME] [--key ID] [--read-only] [--passphrase hex]\n"
	       "         [--plain --key ID [--cipher C] [--key-size BITS] [--offset SECTORS]\n"
	       "          [--sector-size N]]\n"
	       "  detach NAME [--deferred] | resize NAME | rebind DEVICE --key NEW-ID\n"
	       "  check [--config FILE] [--no-load]           runs without keyscoped\n\n"
	       "Options:\n"
	       "  -s, --socket PATH   keyscoped's socket (default $KEYSCOPE_SOCKET, else\n"
	       "                      " KEYSCOPE_SOCKET_PATH ")\n"
	       "  -j, --json          print replies as JSON\n"
	       "  -t, --timeout SECS  give up waiting for keyscoped after SECS (default 30)\n"
	       "  -h, --help          show this help\n\n"
	       "See keyscopectl(8).\n");
}

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
	while ((c = getopt_long(argc, argv, "+s:jt:h", options, NULL)) >= 0) {
		switch (c) {
		case 's': ctl.socket_path = optarg; break;
		case 'j': ctl.json = true; break;
		case 't':
			if (parse_uint(optarg, 1, 3600, &secs) < 0) {
				fprintf(stderr, "keyscopectl: --timeout takes 1..3600 seconds.\n");
				return 2;
			}
			ctl.timeout_ms = secs * 1000;
			break;
		case 'h': help(); return 0;
		case 'V': printf("keyscopectl " KEYSCOPE_VERSION "\n"); return 0;
		default: return 2;
		}
	}
	if (optind >= argc) {
		help();
		return 2;
	}
	r = ctl_dispatch(commands, ELEMENTSOF(commands), "", argc - optind, argv + optind);
	if (ctl.connected)
		proto_client_done(&ctl.client);
	return r;
}
