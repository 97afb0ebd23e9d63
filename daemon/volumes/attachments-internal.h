/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Shared by attachments.c (the records) and recover.c (intents, crash recovery) only. */
#pragma once

#include "attachments.h"

#define ATTACHMENTS_VERSION 2
#define INTENTS_DIR "intents"
#define VANISHED_MAX 64

struct attachments {
	struct attachment *list;
	char *path;			/* <state-dir>/attachments.json */
	char *intents_dir;		/* <state-dir>/intents */
	struct scopes *scopes;
	struct source *source;
	char vanished[VANISHED_MAX][DMCRYPT_NAME_MAX + 1];
	char vanished_uuid[VANISHED_MAX][130];	/* their DM UUIDs */
	size_t n_vanished;
	sd_event_source *uevents;	/* the kernel's uevents (unplug.c) */
	sd_event_source *soon;		/* a reconcile at the next loop turn */
};

/* A record from its JSON form (attachments.json of that version, or an intent). */
int attachment_parse(json_object *o, int version, struct attachment *x);
/* Whether x's mapping still exists as ours (same DM UUID); true when it cannot be told. */
bool attachment_alive(const struct attachment *x);
void attachment_unlink(struct attachments *a, struct attachment *x);
void attachment_consumer_drop(struct attachments *a, const struct attachment *x, bool grace);
void attachments_vanished_add(struct attachments *a, const struct attachment *x);
void attachments_save_or_warn(struct attachments *a);

/* At start, before the holders are counted: finishes or rolls back the intents left behind
 * and adopts or removes keyscope mappings without a record. */
int attachments_recover(struct attachments *a, bool *changed);
