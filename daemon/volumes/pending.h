/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pending volumes: an attach asked with "pending" (the units keyscope-generator writes) whose
 * key source could not be reached (keyscope.KeySourceUnavailable: Barbican down, the network
 * not up yet) is kept here and tried again from the event loop with back-off (2 s doubling to
 * 60 s, with jitter; each try bounded by barbican-deadline like any attach), until it is
 * attached, fails for another reason, or is detached by name. Each is recorded in
 * <state-dir>/pending/<name> (pending-record.h) before its pending answer goes out and the
 * record is removed when it is attached (after attachments.json has it), given up or
 * detached, so that a keyscoped restarted or killed at any instant goes on trying at its next
 * start; a record that start finds attached already, or of an earlier boot, is dropped.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "call.h"

struct pending;
struct server;

/*
 * Keeps the attach c asked (its parameters, for the volume name and device given) and answers
 * it as pending: the error c has is replaced by a reply {"name", "device", "pending": true,
 * "reason", "next-try"}. A volume of that name pending already is updated. Returns 0, or
 * -errno leaving c's error as it was.
 */
int pending_add(struct call *c, const char *name, const char *device);

/*
 * At start, once the attachments are loaded and recovered: removes the *.tmp.<pid> of a
 * killed write, takes up each record of this boot whose volume is not attached (first try
 * after 2 s), and drops the others, saying why. Returns 0, or -ENOMEM having logged.
 */
int pending_start(struct daemon *d, struct server *rpc);

/* Forgets the pending volume name (and its record). Returns true when there was one. */
bool pending_cancel(struct daemon *d, const char *name);

/* Adds "pending": [{"name", "device", "reason", "tries", "next-try"}...] to reply. */
void pending_to_json(const struct daemon *d, json_object *reply);

/* How many volumes are pending (for Status and sd_notify STATUS). */
unsigned pending_count(const struct daemon *d);

/* Frees the list and its timers. Accepts NULL; returns NULL. */
struct pending *pending_free(struct pending *p);
