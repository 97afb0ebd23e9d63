/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The life cycle of a call (call.h): its error, its runs of the handler inside a key-source
 * collection, its waits (deferred, suspended, waiting for key-ids) and its end. How a call
 * gets a request and sends its reply is the transport's (server.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "call.h"
#include "source.h"
#include "util.h"

#define CALL_MAX_RUNS 4		/* a handler that keeps asking for new key-ids is stopped */

int call_error(struct call *c, int r, const char *error, const char *fmt, ...)
{
	va_list ap;

	c->error = error;
	va_start(ap, fmt);
	(void) vsnprintf(c->message, sizeof(c->message), fmt, ap);
	va_end(ap);
	return r < 0 ? r : -EINVAL;
}

static void call_reset(struct call *call)
{
	json_object_put(call->reply);
	call->reply = NULL;
	free(call->reply_text);
	call->reply_text = NULL;
	call->error = NULL;
	call->message[0] = 0;
	secret_buf_done(&call->reply_payload);
}

void call_free(struct call *call)
{
	call_reset(call);
	json_object_put(call->request);
	proto_ids_done(&call->key_ids);
	secret_buf_done(&call->payload);
	source_wait_free(call->wait);
	free(call);
}

bool call_waiting(const struct call *call)
{
	return call->deferred || call->suspended || call->wait;
}

void call_defer(struct call *c)
{
	c->deferred = true;
}

void call_suspend(struct call *c)
{
	c->suspended = true;
}

void call_resume(struct call *call, int error)
{
	call->suspended = false;
	if (error < 0) {
		call->wait = source_wait_free(call->wait);
		call_reset(call);
		call_error(call, error, "keyscope.Cancelled", "keyscoped is stopping");
		call_complete(call);
		return;
	}
	call_reset(call);
	call_run(call);
	if (!call_waiting(call))
		call_complete(call);
}

static void on_call_wait(void *userdata, int error)
{
	call_resume(userdata, error);
}

/*
 * Runs the handler inside a key-source collection. A handler that returned -EINPROGRESS for
 * key-ids that are now being fetched waits for them; the previous run's wait is freed only
 * after this run, which used its results.
 */
void call_run(struct call *call)
{
	struct source *src = call->daemon->source;
	struct source_wait *prev = TAKE_PTR(call->wait), *w = NULL;
	int r, k = 0;

	call->runs++;
	if (src)
		source_collect_begin(src);
	r = call->m->handler(call);
	if (src)
		k = source_collect_end(src, on_call_wait, call, &w);
	if (r == -EINPROGRESS && !call->error && call->suspended) {
		/* Waits for call_resume(); key-ids it asked for meanwhile are asked again then. */
		call_reset(call);
		if (k > 0)
			source_wait_free(w);
		source_wait_free(prev);
		return;
	}
	call->suspended = false;
	if (r == -EINPROGRESS && !call->error && !call->deferred && k > 0 &&
	    call->runs < CALL_MAX_RUNS) {
		call_reset(call);
		call->wait = w;
		source_wait_free(prev);
		return;
	}
	if (k > 0)
		source_wait_free(w);
	source_wait_free(prev);
	if (call->deferred)
		return;
	if (r == -EINPROGRESS && !call->error)
		call_error(call, -EAGAIN, "keyscope.KeySourceUnavailable",
			   "%s: the key material did not arrive from the key source; try again",
			   call->m->name);
	else if (r < 0 && !call->error)
		call_error(call, r, "keyscope.InternalError", "%s failed: %s", call->m->name,
			   strerror(-r));
}
