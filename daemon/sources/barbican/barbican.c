/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Barbican client (contracts in barbican.h, the parts in barbican-internal.h): its set-up
 * and accessors, and the operation model every endpoint of api.c uses: an operation with a
 * deadline, one or two requests, one callback, one submit.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "barbican-internal.h"
#include "log.h"
#include "util.h"


/* Messages are cut at the buffer, which is all right for messages. */
void barbican_error_set(struct barbican_error *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void) vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

uint64_t bb_now_mono(struct barbican *b)
{
	uint64_t t;

	if (sd_event_now(b->event, CLOCK_MONOTONIC, &t) < 0)
		t = now_usec();
	return t;
}

uint32_t bb_next_random(struct barbican *b)
{
	/* xorshift32: jitter only needs to differ between nodes and attempts */
	uint32_t x = b->rnd;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return b->rnd = x ? x : 0x9e3779b9u;
}

const char *barbican_user(const struct barbican *b)
{
	if (b->auth == BARBICAN_AUTH_NONE)
		return b->user_id;
	return b->token_user;
}

const char *barbican_url(const struct barbican *b)
{
	return b->url;
}

void barbican_get_stats(const struct barbican *b, struct barbican_stats *ret)
{
	*ret = b->stats;
	ret->active = b->active;
	ret->queued = b->queued;
}

/* ---- operations ----------------------------------------------------------------------------- */

void bb_op_free(struct barbican_op *op)
{
	struct barbican *b = op->b;

	for (size_t i = 0; i < ELEMENTSOF(op->reqs); i++)
		bb_req_free(op->reqs[i]);
	sd_event_source_disable_unref(op->timer);
	if (op->prev)
		op->prev->next = op->next;
	else
		b->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
	if (b->auth_op == op)
		b->auth_op = NULL;
	secret_buf_done(&op->key);
	free(op->items);
	free(op);
}

static void op_callback(struct barbican_op *op, const struct barbican_error *e)
{
	switch (op->kind) {
	case OP_FETCH:
		op->cb.fetch(op->userdata, e, op->have_meta ? &op->meta : NULL, &op->key);
		break;
	case OP_LIST:
		op->cb.list(op->userdata, e, op->items, op->n_items);
		break;
	case OP_STORE:
		op->cb.store(op->userdata, e, op->new_id);
		break;
	case OP_CONSUMER:
		op->cb.done(op->userdata, e);
		break;
	case OP_AUTH:
		break;
	}
}

void bb_op_complete(struct barbican_op *op, const struct barbican_error *e)
{
	for (size_t i = 0; i < ELEMENTSOF(op->reqs); i++)
		op->reqs[i] = bb_req_free(op->reqs[i]);
	op->timer = sd_event_source_disable_unref(op->timer);
	if (op->kind == OP_AUTH) {
		struct barbican *b = op->b;
		b->auth_op = NULL;
		bb_op_free(op);
		bb_auth_finished(b, e);
		return;
	}
	op_callback(op, e);
	bb_op_free(op);
}

static int on_deadline(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct barbican_op *op = userdata;
	struct barbican_error e = { .error = -ETIMEDOUT, .cls = BARBICAN_UNREACHABLE };

	if (op->last.error)
		barbican_error_set(&e, "%s: gave up at barbican-deadline (%us); "
			 "last problem: %s", op->what, op->b->deadline_sec, op->last.message);
	else
		barbican_error_set(&e, "%s: no complete answer from %s within "
			 "barbican-deadline (%us); check that Barbican is up and not overloaded",
			 op->what, op->kind == OP_AUTH ? op->b->tokens_url : op->b->url,
			 op->b->deadline_sec);
	e.status = op->last.status;
	op->b->stats.failures++;
	bb_op_complete(op, &e);
	return 0;
}

int bb_op_new(struct barbican *b, enum op_kind kind, const char *id, void *userdata,
	      struct barbican_op **ret)
{
	struct barbican_op *op = calloc(1, sizeof(*op));
	int r;

	if (!op)
		return -ENOMEM;
	op->b = b;
	op->kind = kind;
	op->userdata = userdata;
	if (id)
		snprintf(op->id, sizeof(op->id), "%s", id);
	op->deadline = bb_now_mono(b) + (uint64_t) b->deadline_sec * 1000000;
	r = sd_event_add_time(b->event, &op->timer, CLOCK_MONOTONIC, op->deadline, 1000,
			      on_deadline, op);
	if (r < 0) {
		free(op);
		return r;
	}
	op->next = b->ops;
	if (op->next)
		op->next->prev = op;
	b->ops = op;
	*ret = op;
	return 0;
}

int bb_op_add_req(struct barbican_op *op, unsigned slot, const char *method, char *url,
		  const char *accept, size_t cap, bool secret_reply, bool needs_token,
		  req_done_t done, struct bb_req **ret)
{
	struct bb_req *r;

	if (!url)
		return -ENOMEM;
	r = calloc(1, sizeof(*r));
	if (!r) {
		free(url);
		return -ENOMEM;
	}
	*r = (struct bb_req) {
		.b = op->b, .op = op, .method = method, .url = url, .accept = accept, .cap = cap,
		.secret_reply = secret_reply, .needs_token = needs_token, .done = done,
		.slot = slot,
	};
	op->reqs[slot] = r;
	*ret = r;
	return 0;
}
int bb_op_submit(struct barbican_op *op, int k, struct barbican_op **ret)
{
	struct bb_req *reqs[ELEMENTSOF(op->reqs)];

	if (k < 0) {
		bb_op_free(op);
		return k;
	}
	/* Before the requests go: one can end op at once (no token can be had), and its
	 * callback then clears what *ret points to. */
	if (ret)
		*ret = op;
	memcpy(reqs, op->reqs, sizeof(reqs));
	for (size_t i = 0; i < ELEMENTSOF(reqs); i++)
		if (reqs[i])
			bb_req_submit(reqs[i]);
	return 0;
}

char *bb_url_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

void barbican_op_cancel(struct barbican_op *op)
{
	if (op)
		bb_op_free(op);
}

static char *endpoint(const char *url, const char *version)
{
	_cleanup_free_ char *u = strdup(url);
	size_t n, vn = strlen(version);
	char *s;

	if (!u)
		return NULL;
	n = strlen(u);
	while (n > 0 && u[n - 1] == '/')
		u[--n] = 0;
	if (n >= vn && streq(u + n - vn, version))
		u[n -= vn] = 0;
	if (asprintf(&s, "%s%s", u, version) < 0)
		return NULL;
	return s;
}

static bool url_ok(const char *u)
{
	return u && (strneq(u, "https://", 8) || strneq(u, "http://", 7)) &&
	       !strpbrk(u, " \t\r\n\"\\?#");
}

static char *strdup_or_null(const char *s)
{
	return isempty(s) ? NULL : strdup(s);
}

static int barbican_setup(struct barbican *b, const struct barbican_options *o)
{
	int r;

	if (!url_ok(o->url))
		return log_error_errno(-EINVAL, "barbican-url '%s' is not an https:// URL.", o->url);
	b->url = strdup(o->url);
	b->base = endpoint(o->url, "/v1");
	b->ca_file = strdup_or_null(o->ca_file);
	b->ca_dir = strdup_or_null(o->ca_dir);
	b->client_cert = strdup_or_null(o->client_cert);
	b->client_key = strdup_or_null(o->client_key);
	b->project_id = strdup(o->project_id ?: "");
	b->user_id = strdup(o->user_id ?: "");
	b->roles = strdup(o->roles ?: "");
	if (!b->url || !b->base || !b->project_id || !b->user_id || !b->roles)
		return log_oom();
	if (b->ca_file && access(b->ca_file, R_OK) < 0)
		return log_error_errno(-errno, "barbican-ca-file %s: %m", b->ca_file);
	if (b->ca_dir && access(b->ca_dir, R_OK | X_OK) < 0)
		return log_error_errno(-errno, "barbican-ca-dir %s: %m", b->ca_dir);
	if (b->client_cert && access(b->client_cert, R_OK) < 0)
		return log_error_errno(-errno, "barbican-client-cert %s: %m", b->client_cert);
	if (b->client_key && access(b->client_key, R_OK) < 0)
		return log_error_errno(-errno, "barbican-client-key %s: %m", b->client_key);
	if (o->auth == BARBICAN_AUTH_NONE) {
		if (!*b->project_id || !*b->user_id)
			return log_error_errno(-EINVAL, "barbican-auth = none needs "
					       "barbican-project-id and barbican-user-id.");
		return 0;
	}
	if (!url_ok(o->keystone_url))
		return log_error_errno(-EINVAL, "barbican-auth = app-credential (the default) needs "
				       "keystone-url (https://host:5000/v3), got '%s'. (barbican-auth "
				       "= none is Barbican's unauthenticated development mode.)",
				       o->keystone_url ?: "");
	if (isempty(o->app_credential_file))
		return log_error_errno(-EINVAL, "barbican-auth = app-credential needs "
				       "app-credential-file.");
	{
		_cleanup_free_ char *v3 = endpoint(o->keystone_url, "/v3");
		if (!v3 || asprintf(&b->tokens_url, "%s/auth/tokens?nocatalog", v3) < 0) {
			b->tokens_url = NULL;
			return log_oom();
		}
	}
	r = bb_read_app_credential(b, o->app_credential_file);
	return r;
}

void barbican_set_limits(struct barbican *b, const struct barbican_options *o)
{
	b->connect_timeout_sec = o->connect_timeout_sec ?: 5;
	b->timeout_sec = o->timeout_sec ?: 10;
	b->deadline_sec = o->deadline_sec ?: 30;
	b->retries = o->retries;
}

int barbican_new(sd_event *event, const struct barbican_options *o, struct barbican **ret)
{
	struct barbican *b;
	int r;

	if (curl_dl_open() < 0)
		return log_error_errno(-ENOPKG, "A Barbican source is configured, but %s; or remove "
				       "barbican-url from the configuration to use the local key "
				       "store alone.", curl_dl_error());
	if (sym_curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return log_error_errno(-EIO, "Cannot initialise libcurl.");
	b = calloc(1, sizeof(*b));
	if (!b)
		return log_oom();
	b->event = sd_event_ref(event);
	b->auth = o->auth;
	barbican_set_limits(b, o);
	b->concurrency = o->concurrency ?: 8;
	if (getrandom(&b->rnd, sizeof(b->rnd), GRND_NONBLOCK) != sizeof(b->rnd) || !b->rnd)
		b->rnd = (uint32_t) now_usec() | 1;
	r = barbican_setup(b, o);
	if (r < 0)
		goto fail;
	r = bb_http_init(b);
	if (r < 0)
		goto fail;
	*ret = b;
	return 0;
fail:
	barbican_free(b);
	return r;
}

struct barbican *barbican_free(struct barbican *b)
{
	if (!b)
		return NULL;
	while (b->ops)
		bb_op_free(b->ops);
	bb_http_done(b);
	sd_event_unref(b->event);
	secret_buf_done(&b->token);
	secret_buf_done(&b->app_secret);
	free(b->url);
	free(b->base);
	free(b->tokens_url);
	free(b->ca_file);
	free(b->ca_dir);
	free(b->client_cert);
	free(b->client_key);
	free(b->project_id);
	free(b->user_id);
	free(b->roles);
	free(b);
	return NULL;
}
