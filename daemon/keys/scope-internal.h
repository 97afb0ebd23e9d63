/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What scope.c (the table, holders, kernel keys) and scope-state.c (scopes.json and
 * scopes.journal, start-up reconciliation) share. Not for other parts: they use scope.h.
 */
#pragma once

#include "idmap.h"
#include "scope.h"

#define KEYSCOPE_KEYRING_NAME "keyscope"

struct scopes {
	sd_event *event;
	struct idmap map;	/* struct scope by id */
	struct idmap lingers;	/* the linger timers that run, by their scope's id */
	key_serial_t keyring;
	char *state_path, *journal_path;
	unsigned linger_sec;
	scope_fetch_t fetch;
	void *userdata;
	bool batch;		/* a batch call runs: per-key events at debug, it logs one line */
	struct scope_block *partial;	/* blocks with a free slot (scope.c) */
	size_t blocks;			/* blocks in all */

	/*
	 * Holder counts are saved as a snapshot (scopes.json, with a generation number) plus a
	 * journal of "<holders> <key-id> <serial>" lines (scopes.journal, first line the generation
	 * it continues). Each change appends a line; the snapshot is rewritten only when the journal
	 * outgrows the table and at a clean stop, so saving costs O(changes), not O(scopes), per
	 * loop iteration, and a start after a clean stop replays no journal and writes nothing.
	 */
	uint64_t generation;
	bool snapshot_relayout;	/* scopes.json was not in the line layout: rewrite it at stop */
	int journal_fd;
	size_t journal_lines;
	char *pending;
	size_t pending_len, pending_alloc, pending_lines;
	bool snapshot_needed;

	/*
	 * The state folder refuses writes (a full /var): keyscoped serves from memory and says so
	 * (log once, status, sd_notify STATUS) and retries on the next change and on a timer.
	 */
	int state_error;
	char state_problem[256];
	sd_event_source *state_retry;
	bool retry_due;
};

/* The table (scope.c). */
int scope_add(struct scopes *t, const char *id, struct scope **ret);
int scope_add_hashed(struct scopes *t, const char *id, uint64_t h, struct scope **ret);
void scope_remove(struct scopes *t, struct scope *s);
int scope_install(struct scopes *t, struct scope *s, const struct secret_buf *material);
void scope_free(struct scopes *t, struct scope *s);
/* Blocks of scopes held (for tests): 0 when every scope is gone, or under AddressSanitizer. */
size_t scope_blocks(const struct scopes *t);

/* Persistence (scope-state.c): records s's new manual holder count for the next save. */
void scope_note(struct scopes *t, const struct scope *s);
/* Sets id's holder count and recorded serial while loading (count 0 removes the scope).
 * Returns 0, -EINVAL (id is not a valid scope id: it checks, its callers do not) or -ENOMEM. */
int scope_record_set(struct scopes *t, const char *id, uint64_t manual, uint64_t serial);

/*
 * scopes.json's text and readers (scope-snapshot.c). The text names generation; returns 0 or
 * -ENOMEM. The line reader, on an empty table: 1 when it read the file (scopes and generation
 * set), 0 when the file is not in its layout (the table left empty), -ENOMEM. The json-c reader
 * skips malformed entries (warning, naming path): 0, -EBADMSG (not a state file), -ENOMEM.
 * The line reader changes text while it reads and leaves it as it was.
 */
int scope_snapshot_text(struct scopes *t, uint64_t generation, char **ret, size_t *ret_len);
int scope_snapshot_read_lines(struct scopes *t, char *text, size_t size);
int scope_snapshot_read_json(struct scopes *t, const char *text, const char *path);
void scopes_state_done(struct scopes *t);
