/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * format: a LUKS2 header whose volume key is the delegated key, and a keyscope token. The
 * header operations (format, rebind) record an intent first, so that crash recovery
 * (recover.c) writes the token a kill kept them from writing.
 */
#pragma once

#include <stdbool.h>

#include "attachments.h"
#include "call.h"

/* Formats dev (checked: an absolute path of a block device) with key id; replies. */
int volume_format(struct call *c, const char *dev, const char *id, bool force);

/* Records the format or rebind intent for dev (t: filled in, for intent_end()); replies with
 * keyscope.StateError when it cannot be written. */
int volume_token_intent(struct call *c, enum intent_op op, const char *dev, const char *id,
			const char *luks_uuid, struct attachment *t);
