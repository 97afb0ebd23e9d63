/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto-scan.h"

/*
 * A ScopeList or Status reply read without a json-c tree of its scopes (lib/proto-scan.h): the
 * table's rows formatted as they are read, kept until the whole reply has been checked.
 */
struct scope_reply {
	bool want_rest;		/* Status: also a json-c tree of the reply with "scopes": [] */
	char *rows;		/* "%-40s %10lld %7lld\n" per scope, the header first */
	size_t len, alloc;
	struct proto_scan scan;
	json_object *tree;	/* an error reply; with want_rest, the rest of a success */
	char err[256];		/* why the reply was refused */
};

/*
 * Calls method (keyscope.ScopeList or keyscope.Status) and reads its reply into r. Prints what
 * went wrong (a transport failure, an error reply, a malformed reply) and returns a negative
 * errno; returns 0 and the parameters of r->tree (NULL without want_rest) otherwise.
 */
int scope_reply_call(const char *method, struct scope_reply *r, json_object **ret_params);
void scope_reply_done(struct scope_reply *r);

/* Writes the rows (nothing when the reply has no "scopes") to stdout in one go. */
void scope_reply_print(const struct scope_reply *r);
