/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Attachments: the dm-crypt mappings keyscoped opened, each holding its scope's kernel key.
 * Recorded in <state-dir>/attachments.json and reconciled with the kernel's device-mapper
 * devices at start and on every status call.
 */
#pragma once

#include <limits.h>
#include <stdint.h>

#include "dmcrypt.h"
#include "keyid.h"
#include "scope.h"
#include "call.h"

struct attachment {
	char name[DMCRYPT_NAME_MAX + 1];
	char device[PATH_MAX];
	char kind[16];			/* "luks2", "luks1", "plain" */
	char luks_uuid[40];		/* "" for plain */
	char key_id[SCOPE_ID_MAX + 1];	/* the scope: a key-id or "vk:<LUKS UUID>" */
	char source_key_id[KEYID_MAX + 1];	/* the delegated key (differs for "vk:" scopes) */
	char dm_uuid[130];
	char source[16];		/* the key source: "local" or "barbican" */
	uint64_t since;			/* seconds since the epoch */
	struct attachment *next;
};

struct attachments;

/*
 * Loads the records and reconciles them with device-mapper: a record whose mapping is gone
 * is dropped and reported; each remaining one counts as a holder of its scope.
 */
int attachments_load(const char *state_dir, struct scopes *scopes, struct source *source,
		     struct attachments **ret);
struct attachments *attachments_free(struct attachments *a);

/* Drops records whose mapping vanished (closed behind our back), releasing their holders. */
void attachments_reconcile(struct attachments *a);

/* Adds the attachments and the vanished names to a Status reply. */
void attachments_to_json(struct attachments *a, json_object *reply);

int m_volume_format(struct call *c);
int m_volume_attach(struct call *c);
int m_volume_detach(struct call *c);
int m_volume_resize(struct call *c);
int m_volume_rebind(struct call *c);
int m_volume_list(struct call *c);
