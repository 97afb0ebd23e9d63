/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "proto.h"

struct ctl {
	const char *socket_path;
	bool json;
	unsigned timeout_ms;
	bool timeout_given;	/* --timeout: commands with slow work keep it as it is */
	struct proto_client client;
	bool connected;
};

extern struct ctl ctl;

/*
 * One row of the command table (cli/commands.c), the only place a command's name, synopsis and
 * help are written: the dispatcher, every usage error, "--help" at each level and "help CMD" are
 * made from it, and tests/host/t-docs.sh holds it against keyscopectl(8) both ways.
 */
struct command {
	const char *name;
	int (*run)(int argc, char **argv);	/* argv[0] is the name; NULL for a group */
	const char *synopsis;	/* what follows the name; alternative forms separated by '\n' */
	const char *help;	/* one line */
	const char *details;	/* printed by CMD --help after the synopsis, or NULL */
	const struct command *sub;	/* a group's subcommands, ended by an empty row */
	bool global_json;	/* runs without keyscoped; --json is its only global option */
};

extern const struct command ctl_commands[];
extern const char ctl_global_synopsis[], ctl_global_options[];

/* Prints keyscopectl --help (to stdout). */
void ctl_help(void);

/*
 * Runs the command named argv[0] of table (path: the words before it, "" or "key"), or its
 * --help, or says what is wrong. Returns an exit status.
 */
int ctl_dispatch(const struct command *table, const char *path, int argc, char **argv);

/* "keyscopectl help [CMD [SUB]]". Returns an exit status. */
int ctl_help_main(int argc, char **argv);

/* Prints "Usage: keyscopectl CMD SYNOPSIS" of the running command to stderr; returns 2. */
int ctl_usage(void);

/*
 * Calls method with params (reference taken; may be NULL) and an optional key payload.
 * On an error reply prints "keyscopectl: <message>" and returns -EIO; on a transport failure
 * prints what to do. Returns 0 and the reply's "parameters" (owned by *ret_reply) otherwise.
 */
int ctl_call(const char *method, json_object *params, const void *payload, size_t payload_len,
	     json_object **ret_reply, json_object **ret_params);

/*
 * Checks a reply as ctl_call() does: an error reply is printed ("keyscopectl: <message>") and
 * gives -EIO, a reply without parameters -EBADMSG. Returns 0 and the parameters (owned by
 * reply) otherwise.
 */
int ctl_reply_check(json_object *reply, json_object **ret_params);

/*
 * Calls method (no parameters) and hands the reply's text to reader (proto_recv_with()) rather
 * than building a json-c tree. When reader fails and has written its reason into reader_error,
 * prints that as a malformed reply; prints transport failures as ctl_call() does. Error
 * replies are the reader's to pass on (ctl_reply_check()). Returns 0 or a negative errno.
 */
int ctl_call_with(const char *method, proto_reader_fn reader, void *userdata,
		  const char *reader_error);

/*
 * Calls method (params reference taken) and prints the reply: as JSON with --json, else with
 * print (may be NULL). Returns an exit status.
 */
int ctl_call_print(const char *method, json_object *params, void (*print)(json_object *));

/* Prints the reply parameters as JSON (for --json). */
void ctl_print_json(json_object *params);

const char *json_str(json_object *o, const char *field);
long long json_int(json_object *o, const char *field);

int key_create(int argc, char **argv);
int key_import(int argc, char **argv);
int key_list(int argc, char **argv);
int key_delete(int argc, char **argv);
int key_clone(int argc, char **argv);
int key_install(int argc, char **argv);
int key_release(int argc, char **argv);
int scope_list(int argc, char **argv);
int status_main(int argc, char **argv);
int metrics_main(int argc, char **argv);
int check_main(int argc, char **argv);
int format_main(int argc, char **argv);
int attach_main(int argc, char **argv);
int detach_main(int argc, char **argv);
int resize_main(int argc, char **argv);
int rebind_main(int argc, char **argv);
int probe_main(int argc, char **argv);
int recovery_add(int argc, char **argv);
int recovery_remove(int argc, char **argv);
/* format --recovery-passphrase: asks for the passphrase, formats with p (reference taken), adds
 * the recovery keyslot, prints both. Returns an exit status. */
int format_recovery(json_object *p, const char *device, bool from_stdin,
		    void (*print_format)(json_object *));
