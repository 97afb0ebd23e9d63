/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pending volumes: an attach asked with "pending" (the units keyscope-generator writes) whose
 * key source could not be reached (keyscope.KeySourceUnavailable: Barbican down, the network
 * not up yet) is kept here and tried again from the event loop with back-off (2 s doubling to
 * 60 s, with jitter; each try bounded by barbican-deadline like any attach), until it is
 * attached, fails for another reason, or is detached by name. Kept in memory: a restart of
 * keyscoped forgets them (the volume's unit asks again when it is restarted).
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "call.h"

struct pending;

/*
 * Keeps the attach c asked (its parameters, for the volume name and device given) and answers
 * it as pending: the error c has is replaced by a reply {"name", "device", "pending": true,
 * "reason", "next-try"}. A volume of that name pending already is updated. Returns 0, or
 * -errno leaving c's error as it was.
 */
int pending_add(struct call *c, const char *name, const char *device);

/* Forgets the pending volume name. Returns true when there was one. */
bool pending_cancel(struct daemon *d, const char *name);

/* Adds "pending": [{"name", "device", "reason", "tries", "next-try"}...] to reply. */
void pending_to_json(const struct daemon *d, json_object *reply);

/* How many volumes are pending (for Status and sd_notify STATUS). */
unsigned pending_count(const struct daemon *d);

/* Frees the list and its timers. Accepts NULL; returns NULL. */
struct pending *pending_free(struct pending *p);
