/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control socket: accepts clients, frames and checks their requests, authorises them by
 * SO_PEERCRED and runs them as calls (call.h) of the method table it was given. Replies are
 * written only after the state they report has been saved.
 */
#pragma once

#include <stddef.h>

#include "call.h"

struct server;

/* Creates the folder of the socket at path (mode 0755 if new) for server_new(), or for a lock
 * file next to the socket before it. Returns 0, or -errno having logged why. */
int server_make_dir(const char *path);
/* The listening socket at path (mode 0666; who may do what is checked per call): an fd, or
 * -errno (logged). */
int server_socket_open(const char *path);

/*
 * Creates the socket at d->config->socket_path (mode 0666: authorisation is by peer
 * credentials, per call) and serves the n methods of table on d->event. on_done (may be NULL)
 * is told of each call's end, answered or not, before its reply is written: the daemon counts
 * and audits there (observe.c), so the transport knows nothing above it. Returns 0, or -errno
 * having logged why.
 */
int server_new(struct daemon *d, const struct method *table, size_t n,
	       void (*on_done)(const struct call *c), struct server **ret);
/* Closes the clients (their waiting calls finish with nobody to answer) and removes the
 * socket. NULL-safe; returns NULL. */
/* Closes every client; their calls still waiting finish with nobody to answer (call.h). */
void server_drop_clients(struct server *s);
/* Also stops listening. The calls still waiting must have ended: they point at it. */
struct server *server_free(struct server *s);

/*
 * Runs method (looked up in the table) with params (a reference of its own taken) as root, for keyscoped
 * itself, with no client: the same runs, waits and collections as a client's call. done gets
 * the finished call (its error, or its reply) just before it is freed, from this function or
 * later from the event loop. Returns 0, or -errno (then done is not called).
 */
int server_call_internal(struct server *s, const char *method, json_object *params,
			 void (*done)(void *userdata, const struct call *c), void *userdata);

