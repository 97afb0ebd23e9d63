/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The command table: every command and subcommand of keyscopectl with its synopsis and help,
 * written once. keyscopectl --help, CMD --help, CMD SUB --help, "help CMD" and every usage
 * error are printed from it (cli/ctl.c); keyscopectl(8) is checked against it both ways.
 */
#include "ctl.h"
#include "paths.h"

const char ctl_global_synopsis[] = "[--socket PATH] [--json] [--timeout SECS] COMMAND ...";

const char ctl_global_options[] =
	"  -s, --socket PATH   keyscoped's socket (default $KEYSCOPE_SOCKET, else\n"
	"                      " KEYSCOPE_SOCKET_PATH ")\n"
	"  -j, --json          print replies as JSON\n"
	"  -t, --timeout SECS  give up waiting for keyscoped after SECS (1-3600, default 30)\n"
	"  -h, --help          show this help; COMMAND --help shows a command's\n"
	"  -V, --version       print the version\n";

static const struct command key_commands[] = {
	{ .name = "create",
	  .run = key_create,
	  .synopsis = "[--bits 256|512] [--name NAME]",
	  .help = "create a random key; prints its key-id",
	  .details =
		"  -b, --bits 256|512  key size: 512 (default, AES-256-XTS) or 256 (AES-128-XTS)\n"
		"  -n, --name NAME     a label of at most 255 bytes of printable UTF-8\n" },
	{ .name = "import",
	  .run = key_import,
	  .synopsis = "[--name NAME] < RAW_KEY_BYTES",
	  .help = "store the raw key (exactly 32 or 64 bytes) read from standard input",
	  .details =
		"  -n, --name NAME     a label of at most 255 bytes of printable UTF-8\n" },
	{ .name = "list",
	  .run = key_list,
	  .synopsis = "[--source local|barbican]",
	  .help = "list the keys in the key store (--source barbican: the delegated ones)",
	  .details =
		"      --source local|barbican  the embedded store (default) or Barbican's secrets\n" },
	{ .name = "delete",
	  .run = key_delete,
	  .synopsis = "KEY-ID",
	  .help = "delete a key that no scope holds" },
	{ .name = "clone",
	  .run = key_clone,
	  .synopsis = "[--name NAME] KEY-ID",
	  .help = "store the same material under a new key-id (clone-key); prints it",
	  .details =
		"  -n, --name NAME     a label for the new key\n" },
	{ .name = "install",
	  .run = key_install,
	  .synopsis = "KEY-ID...",
	  .help = "take a holder on each key's scope (installs the kernel key); all or nothing" },
	{ .name = "release",
	  .run = key_release,
	  .synopsis = "KEY-ID...",
	  .help = "drop a holder; the last one removes the kernel key" },
	{}
};

static const struct command recovery_commands[] = {
	{ .name = "add",
	  .run = recovery_add,
	  .synopsis = "DEVICE [--passphrase-stdin]",
	  .help = "add a keyslot holding the volume key under a passphrase (Argon2id, slow)",
	  .details =
		"Adds one LUKS2 keyslot to a volume keyscope formatted, so that cryptsetup open and\n"
		"systemd-cryptsetup can open it with the passphrase if its key is lost. keyscope's\n"
		"own attaches keep using the key by keyring reference and never read the keyslot.\n\n"
		"      --passphrase-stdin  the passphrase (1-64 bytes) is the first line of\n"
		"                          standard input (default: asked twice on the terminal)\n" },
	{ .name = "remove",
	  .run = recovery_remove,
	  .synopsis = "DEVICE",
	  .help = "remove the recovery keyslot (the node must hold the volume's key)" },
	{}
};

static const struct command scope_commands[] = {
	{ .name = "list",
	  .run = scope_list,
	  .synopsis = "",
	  .help = "key-id, kernel key serial and holders of each scope" },
	{}
};

#define ATTACH_SYNOPSIS								\
	"DEVICE [--name NAME] [--key KEY-ID [--key-stdin]] [--read-only]\n"	\
	"DEVICE --key KEY-ID --passphrase hex [--name NAME] [--read-only]\n"	\
	"DEVICE --plain --key KEY-ID [--cipher CIPHER] [--key-size 256|512] "	\
	"[--offset SECTORS] [--sector-size 512|4096] [--name NAME] [--read-only]\n"	\
	"DEVICE --stable-name [--key KEY-ID] [--read-only]\n"			\
	"(each form also takes [--pending] [--discard] [--same-cpu-crypt] [--submit-from-crypt-cpus]\n" \
	" [--no-read-workqueue] [--no-write-workqueue])"

#define ATTACH_DETAILS								\
	"  -n, --name NAME        the mapping's name (default keyscope-<kernel name>)\n"	\
	"      --pending          when the key source cannot be reached (Barbican down, no\n"	\
	"                         network yet), keyscoped keeps the volume pending and\n"	\
	"                         attaches it when the source answers; exit 0 (the units\n"	\
	"                         keyscope-generator writes use it; needs --name)\n"	\
	"      --stable-name      name it keyscope-<LUKS UUID> (keyscope-<DM name> for a\n"	\
	"                         device-mapper device): the same on every boot\n"		\
	"  -k, --key KEY-ID       the key (default: the one the keyscope token names)\n"	\
	"      --key-stdin        the key's raw bytes come on standard input (a key the\n"	\
	"                         caller holds, e.g. from Nova's key manager): used for\n"	\
	"                         this attach only, never stored\n"			\
	"      --read-only        a read-only mapping\n"				\
	"      --passphrase hex   a volume os-brick formatted: the key's lowercase hex\n"	\
	"                         opens a keyslot (slow, Argon2)\n"			\
	"      --plain            no header: a plain dm-crypt mapping of the whole device\n" \
	"      --cipher CIPHER    plain: the cipher (default aes-xts-plain64)\n"	\
	"      --key-size 256|512 plain: the key size in bits, the key's (default 512)\n"	\
	"      --offset SECTORS   plain: data start, in 512-byte sectors (default 0)\n"	\
	"      --sector-size 512|4096  plain: the encryption sector size (default 512)\n"	\
	"      --discard          pass discards (TRIM) through (dm-crypt allow_discards)\n"	\
	"      --same-cpu-crypt   encrypt on the CPU that submitted the I/O\n"		\
	"      --submit-from-crypt-cpus  write from the crypt threads, not a single one\n"	\
	"      --no-read-workqueue   decrypt reads without the kernel's workqueue\n"	\
	"      --no-write-workqueue  encrypt writes without the kernel's workqueue\n"	\
	"                         (crypttab's words; a LUKS2 header's persistent flags\n"	\
	"                         are added, as cryptsetup open adds them)\n"

const struct command ctl_commands[] = {
	{ .name = "key",
	  .run = NULL,
	  .synopsis = NULL,
	  .help = "create, import, list, delete, clone, install and release keys",
	  .sub = key_commands },
	{ .name = "scope",
	  .run = NULL,
	  .synopsis = NULL,
	  .help = "list key scopes: key-id, kernel key serial, holders",
	  .sub = scope_commands },
	{ .name = "status",
	  .run = status_main,
	  .synopsis = "",
	  .help = "the daemon's state, its scopes and attached volumes" },
	{ .name = "metrics",
	  .run = metrics_main,
	  .synopsis = "[--prometheus]",
	  .help = "counters, latency histograms and gauges as OpenMetrics text",
	  .details =
		"Prints keyscoped's metrics (keyscope_..._total counters, _seconds histograms,\n"
		"gauges) in the OpenMetrics text format. Readable by root and the read-group.\n\n"
		"      --prometheus     Prometheus' text format 0.0.4 instead (as metrics-file)\n" },
	{ .name = "format",
	  .run = format_main,
	  .synopsis = "DEVICE --key KEY-ID [--key-stdin] [--force]\n"
		      "DEVICE --key KEY-ID --recovery-passphrase [--passphrase-stdin] [--force]",
	  .help = "LUKS2 with the delegated key as volume key, keyscope token",
	  .details =
		"  -k, --key KEY-ID     the key that becomes the volume key\n"
		"      --key-stdin      its raw bytes come on standard input, never stored\n"
		"  -f, --force          format a device that holds something libblkid recognises\n"
		"      --recovery-passphrase  also add a recovery keyslot (see recovery add)\n"
		"      --passphrase-stdin     its passphrase is the first line of standard input\n"
		"                       (default: asked twice on the terminal)\n" },
	{ .name = "recovery",
	  .run = NULL,
	  .synopsis = NULL,
	  .help = "add or remove a volume's recovery keyslot (a passphrase for cryptsetup open)",
	  .sub = recovery_commands },
	{ .name = "attach",
	  .run = attach_main,
	  .synopsis = ATTACH_SYNOPSIS,
	  .help = "open a volume by keyring reference (LUKS2 token, os-brick passphrase or --plain)",
	  .details = ATTACH_DETAILS },
	{ .name = "detach",
	  .run = detach_main,
	  .synopsis = "NAME [--deferred]\n--device DEVICE [--deferred]",
	  .help = "close a volume; the last holder removes its kernel key",
	  .details =
		"      --device DEVICE  the volume attached from DEVICE, whatever its name; nothing\n"
		"                       attached from it is no error\n"
		"      --deferred       close when its last user closes it (dmsetup remove --deferred)\n" },
	{ .name = "resize",
	  .run = resize_main,
	  .synopsis = "NAME",
	  .help = "reload a volume's table at its device's new size" },
	{ .name = "rebind",
	  .run = rebind_main,
	  .synopsis = "DEVICE --key NEW-KEY-ID",
	  .help = "point a (cloned) volume's token at another key-id",
	  .details =
		"  -k, --key NEW-KEY-ID the key-id the token names from now on (same material)\n" },
	{ .name = "check",
	  .run = check_main,
	  .synopsis = "[--config FILE] [--no-load]",
	  .help = "kernel features: keyring, logon, request-key, dm-crypt, quotas (no keyscoped)",
	  .details =
		"Checks, without keyscoped, that the kernel has what keyscoped.conf's features need:\n"
		"keyring calls, logon keys, request-key and keyscope's drop-in, device-mapper and\n"
		"dm-crypt (loaded with libkmod when it is a module), key quotas. Exit status 0 when\n"
		"everything needed is there.\n\n"
		"  -c, --config FILE    read FILE (default " KEYSCOPE_CONFIG_FILE ")\n"
		"      --no-load        do not load dm_crypt when it is missing\n",
	  .global_json = true },
	{ .name = "probe",
	  .run = probe_main,
	  .synopsis = "DEVICE",
	  .help = "udev properties of a keyscope volume, read locally from its header (no keyscoped)",
	  .details =
		"Reads DEVICE's LUKS2 header without keyscoped and without a key. For a volume\n"
		"with a keyscope token it prints udev properties:\n"
		"  KEYSCOPE_KEY_ID=...      the key-id the token names\n"
		"  KEYSCOPE_KEY_SOURCE=...  the key source (local, barbican), when named\n"
		"  KEYSCOPE_LUKS_UUID=...   the LUKS UUID\n"
		"  KEYSCOPE_INSTANCE=...    the kernel name escaped for systemd unit names\n"
		"                           (keyscope-attach@INSTANCE.service)\n"
		"  KEYSCOPE_VOLUME_NAME=... KEYSCOPE_VOLUME_UNIT=...  where /etc/keyscope/volumes\n"
		"                           declares it (also a LUKS volume without a token);\n"
		"  KEYSCOPE_VOLUME_NOAUTO=1 instead of the unit for a noauto one\n"
		"  KEYSCOPE_AUTO_ATTACH=... declared, all or none (keyscoped.conf auto-attach)\n"
		"Any other device prints nothing and exits 0. Exit 1: the device cannot be read,\n"
		"or its keyscope token is malformed. Used by udev (see docs/udev.md).\n",
	  .global_json = true },
	{ .name = "help",
	  .run = ctl_help_main,
	  .synopsis = "[COMMAND [SUBCOMMAND]]",
	  .help = "show this help, or a command's (same as COMMAND --help)" },
	{}
};
