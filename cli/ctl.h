/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "proto.h"

struct ctl {
	const char *socket_path;
	bool json;
	unsigned timeout_ms;
	struct proto_client client;
	bool connected;
};

extern struct ctl ctl;

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
};

/* Runs the command named argv[0] from the table, or prints usage. Returns an exit status. */
int ctl_dispatch(const struct command *table, size_t n, const char *prefix, int argc,
		 char **argv);

/*
 * Calls method with params (reference taken; may be NULL) and an optional key payload.
 * On an error reply prints "keyscopectl: <message>" and returns -EIO; on a transport failure
 * prints what to do. Returns 0 and the reply's "parameters" (owned by *ret_reply) otherwise.
 */
int ctl_call(const char *method, json_object *params, const void *payload, size_t payload_len,
	     json_object **ret_reply, json_object **ret_params);

/*
 * Calls method (params reference taken) and prints the reply: as JSON with --json, else with
 * print (may be NULL). Returns an exit status.
 */
int ctl_call_print(const char *method, json_object *params, void (*print)(json_object *));

/* Prints the reply parameters as JSON (for --json). */
void ctl_print_json(json_object *params);

const char *json_str(json_object *o, const char *field);
long long json_int(json_object *o, const char *field);

int key_main(int argc, char **argv);
int scope_main(int argc, char **argv);
int status_main(int argc, char **argv);
int check_main(int argc, char **argv);
int format_main(int argc, char **argv);
int attach_main(int argc, char **argv);
int detach_main(int argc, char **argv);
int resize_main(int argc, char **argv);
int rebind_main(int argc, char **argv);
int probe_main(int argc, char **argv);
