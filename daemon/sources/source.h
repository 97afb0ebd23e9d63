/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Key sources: where a key-id's material comes from. The embedded store first; a key-id it
 * does not hold comes from Barbican when barbican-url is set, and, while Barbican cannot be
 * reached, from the sealed offline cache (<state-dir>/cache, barbican-cache). One interface,
 * so that KMIP or Vault can sit beside them.
 *
 * The scopes call source_fetch() synchronously (scope_fetch_t). A Barbican key that has not
 * arrived yet cannot be returned there without blocking the daemon, so a fetch made inside a
 * collection (source_collect_begin/end, the server wraps every method call in one) records the
 * key-id and returns -EINPROGRESS; the handler gives up without changing anything, the server
 * keeps the call, and runs the handler again once every collected key-id has arrived or
 * failed. The fetched material (secret memory) is kept only while a waiting call needs it.
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "secret.h"
#include "store.h"

struct source;
struct source_wait;

/* Sets up the sources from cfg; Barbican's client when barbican-url is set. No network I/O.
 * Returns 0 or -errno (logged). */
int source_new(sd_event *event, const struct config *cfg, struct store *store,
	       struct source **ret);
/*
 * Cancels everything in flight: waits and operations run their callbacks with -ECANCELED.
 * Accepts NULL; returns NULL.
 */
struct source *source_free(struct source *s);
/* The configuration was reloaded: Barbican's time limits and retries are read again. */
void source_config_changed(struct source *s);

/*
 * How the sources tell the keys above them that Barbican withdrew id (403, 404): cb returns
 * > 0 when it invalidated a kernel key, 0 when the key goes with its last mapping, -errno. The
 * sources know nothing of the scopes: this callback and source_fetch() (the scopes'
 * scope_fetch_t) are the whole interface between the two.
 */
typedef int (*source_withdrawn_t)(void *userdata, const char *id);
void source_set_withdrawn(struct source *s, source_withdrawn_t cb, void *userdata);

/* Once the event loop runs: prefetch (barbican-prefetch) and cache revalidation timers. */
int source_start(struct source *s);

/*
 * The scopes' fetch callback (scope_fetch_t; userdata is the struct source). Returns 0 and
 * the material, -EINPROGRESS (see above), or -errno: -ENOENT no such key anywhere; for
 * Barbican's refusals source_error() has the name and message for the reply.
 */
int source_fetch(void *userdata, const char *id, struct secret_buf *ret);

/*
 * Asks for id's material ahead (a batch collects all its key-ids in one pass, not one per
 * re-run). Returns 0 when source_fetch() can give it now, -EINPROGRESS when it was collected.
 */
int source_want(struct source *s, const char *id);

bool source_has_barbican(const struct source *s);

/* "local" when the embedded store holds id, else "barbican" when it is configured, else
 * "local". */
const char *source_kind(struct source *s, const char *id);

/*
 * The error of id's last fetch from Barbican while a waiting call still holds it: an error
 * name (keyscope.KeyNotDelegated, ...) and a message for the operator. false when there is
 * none (the error came from the embedded store).
 */
bool source_error(struct source *s, const char *id, const char **ret_name,
		  const char **ret_message);

/* Starts recording the key-ids that source_fetch() cannot give at once. Not nestable. */
void source_collect_begin(struct source *s);

/*
 * Ends the recording. Returns 0 when nothing was recorded; 1 when fetches of the recorded
 * key-ids are under way: cb(userdata, 0) runs from the event loop once all are done (then
 * source_fetch() gives their results), cb(userdata, -ECANCELED) when the daemon stops. The
 * caller frees *ret after it has used the results. -errno on failure.
 */
int source_collect_end(struct source *s, void (*cb)(void *userdata, int error), void *userdata,
		       struct source_wait **ret);
struct source_wait *source_wait_free(struct source_wait *w);

/*
 * KeyList {"source": "barbican"}: the secrets delegated to the node, as entries like the
 * store's ("key-id", "name", "bits", "created", "source") plus "usable" and, when not,
 * "problem". cb gets 0 and a new array, or -errno with an error name and message.
 */
typedef void (*source_list_cb)(void *userdata, int error, const char *error_name,
			       const char *message, json_object *keys);
int source_list(struct source *s, source_list_cb cb, void *userdata);

/*
 * clone-key of a Barbican key: id's material (fetched through a collection first: returns
 * -EINPROGRESS while it is not here) stored as a new secret with the same algorithm, bit
 * length and mode, readable by the node. cb gets 0 and the new key-id, or -errno with an error
 * name and message.
 */
typedef void (*source_clone_cb)(void *userdata, int error, const char *error_name,
				const char *message, const char *new_id);
int source_clone(struct source *s, const char *id, const char *name, source_clone_cb cb,
		 void *userdata);

/*
 * Barbican consumers: registers resource_id (a LUKS UUID or a device) as a consumer of id, or
 * removes it: at once, or with grace after barbican-consumer-grace (for a mapping that
 * vanished; a later opposite wish cancels a change that was not sent yet). Does nothing for a
 * key of the embedded store or without Barbican. Never fails: a failure is logged and retried
 * with back-off in the background, and changes not yet made are kept in
 * <state-dir>/consumers.json for the next start.
 */
void source_consumer(struct source *s, const char *id, const char *resource_id, bool add,
		     bool grace);

/* Adds "key-sources" (Barbican's endpoint, user, counters, cache) to a Status reply. */
void source_status(struct source *s, json_object *reply);

/* Fills the key sources' gauges of g (metrics.h): consumer changes pending and the age of the
 * oldest sealed cached key (-1 without one). */
struct metric_gauges;
void source_gauges(struct source *s, struct metric_gauges *g);
