/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Audit events: what an auditor or a SIEM rule picks out of the journal. Each kind has a fixed
 * MESSAGE_ID (listed with its explanation in docs/keyscope.catalog, installed for journalctl -x)
 * and carries the structured fields KEYSCOPE_KEY_ID, KEYSCOPE_VOLUME, KEYSCOPE_DEVICE,
 * KEYSCOPE_PEER_UID, KEYSCOPE_PEER_PID and KEYSCOPE_ERROR where they apply. Under journald
 * (stderr is the JOURNAL_STREAM) an event is one journal entry with those fields; elsewhere it is
 * a text line as log_internal() writes it. Never pass key material in any field.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "macro.h"

enum event_kind {
	EVENT_KEY_INSTALLED,		/* a scope's kernel key was added */
	EVENT_KEY_INVALIDATED,		/* the last holder went: the kernel key was invalidated */
	EVENT_KEY_HANDED_OUT,		/* request-key: a key was instantiated for a requester */
	EVENT_KEY_REQUEST_REFUSED,	/* request-key: the policy refused a requester */
	EVENT_VOLUME_ATTACHED,
	EVENT_VOLUME_DETACHED,
	EVENT_VOLUME_RESIZED,
	EVENT_VOLUME_REBOUND,
	EVENT_VOLUME_FORMATTED,
	EVENT_ATTACH_FAILED,
	EVENT_REQUEST_REFUSED,		/* a control request refused: peer not allowed */
	EVENT_DELEGATION_WITHDRAWN,	/* the key manager no longer grants this node a key */
	EVENT_CACHE_USED_OFFLINE,	/* a key came from the sealed cache, the key manager down */
	EVENT_VOLUME_PENDING,		/* a declared volume waits for its key source */
	EVENT_KEY_RELEASED,		/* keyscopectl key release dropped a manual holder */
	_EVENT_MAX,
};

struct event_fields {
	const char *key_id;
	const char *volume;
	const char *device;
	const char *error;		/* an error name such as keyscope.NoSuchKey, or NULL */
	bool has_peer;
	uid_t peer_uid;
	pid_t peer_pid;
};

/* The event's name ("key-installed") and its MESSAGE_ID as 32 hex digits; NULL when out of range. */
const char *event_name(enum event_kind kind);
const char *event_message_id(enum event_kind kind);

/*
 * Logs the event at level (LOG_INFO, LOG_WARNING, ...) with the message fmt. Honours the log
 * level like log_internal(); off the journal, the debug level names the caller's file and line.
 * f may be NULL.
 */
void log_event_internal(enum event_kind kind, int level, const struct event_fields *f,
			const char *file, int line, const char *fmt, ...) _printf_(6, 7);
#define log_event(kind, level, f, ...) \
	log_event_internal((kind), (level), (f), __FILE__, __LINE__, __VA_ARGS__)

/*
 * Fields of an event caused by a control call: the call's peer and the names given. Any
 * argument may be NULL. For "log_event(EVENT_X, LOG_INFO, EVENT_PEER(c, vol, dev, id), ...)".
 */
#define EVENT_PEER(c, vol, dev, id)							\
	(&(struct event_fields) { .key_id = (id), .volume = (vol), .device = (dev),	\
				  .has_peer = true, .peer_uid = (c)->uid,		\
				  .peer_pid = (c)->pid })

/* Fields of an event about one key-id (or scope) alone. */
#define EVENT_KEY(id) (&(struct event_fields) { .key_id = (id) })

/* Fields of a refused request: its peer (anything with uid and pid) and the error name. */
#define EVENT_REFUSAL(c, err)								\
	(&(struct event_fields) { .error = (err), .has_peer = true, .peer_uid = (c)->uid,	\
				  .peer_pid = (c)->pid })

/* Whether stderr is the journal stream (JOURNAL_STREAM names stderr's device and inode). */
bool log_stderr_is_journal(void);
