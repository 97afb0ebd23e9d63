/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The method interface: what a method handler gets (struct call, the parts of the daemon it
 * works on), how it answers (call_error, call_defer/call_complete, call_suspend/call_resume)
 * and how it reads its parameters (params.c). The transport that runs calls is server.h; it
 * knows the methods only through the table given to server_new().
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "proto-ids.h"
#include "secret.h"

struct client;
struct pending;
struct server;
struct settles;
struct source_wait;

/* The parts of keyscoped that methods work on; main.c assembles them. */
struct daemon {
	sd_event *event;
	const struct config *config;
	struct store *store;
	struct scopes *scopes;
	struct attachments *attachments;
	struct source *source;
	struct unlocks *unlocks;
	struct pending *pending;	/* volumes waiting for their key source (volumes/pending.h) */
	struct settles *settles;	/* attaches waiting for udev (volumes/settle.h) */
};

/*
 * One request being answered. Handlers fill reply (parameters of a success) or call
 * call_error(); payload holds the request's key material, reply_payload the reply's.
 *
 * A handler may wait for the key source without blocking the daemon, in two ways:
 *  - it returns -EINPROGRESS from a fetch that the key source could not answer at once
 *    (source.h): it must have changed nothing; the server runs it again, from the start, once
 *    the key-ids it asked for have arrived or failed;
 *  - it starts an operation, calls call_defer() and returns 0: the operation fills the reply
 *    or the error later and calls call_complete();
 *  - it starts (or joins) work outside the key sources, such as a keyslot unlock in a child
 *    process (unlock.h), calls call_suspend() and returns -EINPROGRESS having changed nothing;
 *    the work calls call_resume() when it is done, and the handler runs again from the start
 *    and finds the work's result.
 * Meanwhile the client's further requests wait (replies keep their order) and other clients
 * are served. A client that goes away leaves the call to finish with nobody to answer.
 */
struct call {
	struct daemon *daemon;		/* the keys, volumes and sources the handlers use */
	struct server *rpc;		/* the server that runs the call */
	struct client *client;		/* NULL once the client is gone */
	json_object *request;		/* holds params alive while the call waits */
	const struct method *m;
	struct source_wait *wait;	/* the key-ids the last run asked for */
	unsigned runs;
	bool deferred;			/* call_defer() was called */
	bool suspended;			/* call_suspend() was called */
	const char *method;
	json_object *params;
	struct proto_ids key_ids;	/* a batch read without a tree: params is NULL then */
	struct secret_buf payload;
	uid_t uid;
	pid_t pid;
	uint64_t started;		/* CLOCK_MONOTONIC usec when the request was read */
	json_object *reply;
	char *reply_text;		/* instead of reply: the parameters' JSON text (malloc'ed) */
	const char *error;
	char message[512];
	struct secret_buf reply_payload;
	/* keyscoped's own calls (server_call_internal): told the outcome before the free */
	void (*done)(void *userdata, const struct call *c);
	void *done_userdata;
};

/* Sets the call's error name and message; returns r (negative) for "return call_error(...)". */
int call_error(struct call *c, int r, const char *error, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The reply is sent by call_complete(), later, from the event loop. */
void call_defer(struct call *c);
/* Sends a deferred call's reply (or drops it when its client is gone) and frees c. */
void call_complete(struct call *c);
/* See above. call_resume() with error < 0 ends the call with that error ("keyscoped is
 * stopping") instead of running the handler again. */
void call_suspend(struct call *c);
void call_resume(struct call *c, int error);

/*
 * For the transport (server.c), which makes calls from requests: call_run() runs the handler
 * (again, after a wait); call_waiting() is true while the call waits for a key source, a
 * call_complete() or a call_resume(); call_free() frees a call that has been answered.
 */
void call_run(struct call *c);
bool call_waiting(const struct call *c);
void call_free(struct call *c);

/* How many clients the server that runs c has connected now (for Status). */
unsigned call_n_clients(const struct call *c);

struct method {
	const char *name;
	int (*handler)(struct call *c);
	bool writes;	/* changes state: root only */
	bool payload;	/* takes key material after the message */
};

/*
 * Parameter helpers (params.c): each checks one thing, and on failure sets the call's error
 * (keyscope.InvalidParameter, InvalidKeyId, ...) and returns a negative errno.
 */
int call_check_params(struct call *c, const char *const *allowed);
int call_get_key_id(struct call *c, const char *field, const char **ret);
int call_get_name(struct call *c, const char **ret);
int call_get_string(struct call *c, const char *field, bool required, size_t max,
		    const char **ret);
int call_get_uint(struct call *c, const char *field, bool required, uint64_t max,
		  uint64_t *ret);
int call_get_bool(struct call *c, const char *field, bool *ret);
/* Maps a store or kernel error about key id to the reply a person can act on. */
int call_key_error(struct call *c, int r, const char *id, const char *what);
