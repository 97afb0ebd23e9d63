/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Barbican client's parts (contracts in barbican.h).
 *
 * Why curl multi on the daemon's own loop, not a blocking fetch: keyscoped is single-threaded
 * and serves every client from one sd-event loop. A blocking fetch from a key manager that is
 * down or slow would stall every other client (status, detach, request-key upcalls) for up to
 * the deadline, and the boot-time case - hundreds of volumes - wants many fetches in flight at
 * once. So curl's sockets and timer are sd-event sources (CURLMOPT_SOCKETFUNCTION and
 * TIMERFUNCTION), a request is a state machine, and the server defers the reply of a call that
 * waits for one (rpc/server.c, sources/source.c).
 *
 * Layers: an operation (fetch, list, store, consumer, Keystone auth) owns a deadline timer and
 * one or two requests; a request is one HTTP exchange with its retries (exponential back-off
 * with jitter, Retry-After honoured) and waits in a FIFO while barbican-concurrency requests
 * are in flight, or for a token. When the deadline fires the operation fails wherever it is.
 *
 *   barbican.c        the client (set-up, accessors) and the operation model
 *   http.c            a request's life cycle and retries; curl multi on sd-event
 *   keystone.c        tokens from Keystone for the application credential
 *   api.c             the REST endpoints: fetch, list, store (clone-key), consumers
 *   barbican-parse.c  the pure parsers of the replies (fuzzed)
 */
#pragma once

#include "curl-dl.h"
#include <systemd/sd-event.h>

#include "barbican.h"
#include "macro.h"
#include "secret.h"

#define BACKOFF_BASE_MS 200u
#define BACKOFF_MAX_MS 8000u
#define TOKEN_MARGIN_SEC 60		/* renew a token this long before it expires */
#define TOKEN_HEADER_MAX 8192
#define LIST_MAX_ITEMS 100000u
#define ERROR_BODY_MAX (64u * 1024)	/* an error page is read (and dropped) up to this */

enum op_kind { OP_FETCH, OP_LIST, OP_STORE, OP_CONSUMER, OP_AUTH };
enum req_state { REQ_IDLE, REQ_QUEUED, REQ_WAIT_TOKEN, REQ_ACTIVE, REQ_BACKOFF };

struct bb_req;
typedef void (*req_done_t)(struct bb_req *r, const struct barbican_error *e);

struct bb_req {
	struct barbican *b;
	struct barbican_op *op;
	struct bb_req *prev, *next;	/* in b->queue or b->wait_token */
	enum req_state state;
	const char *method;
	char *url;
	const char *accept;
	struct secret_buf body;		/* request body; secret memory, wiped */
	bool needs_token;
	bool secret_reply;		/* the reply is key material */
	size_t cap;
	uint8_t *resp;
	size_t resp_len, resp_alloc;
	size_t error_body;		/* bytes of a non-2xx body, dropped */
	bool overflow;
	CURL *easy;
	struct curl_slist *headers;
	long status;
	uint64_t retry_after_sec;
	bool have_retry_after;
	struct secret_buf subject_token;	/* Keystone's X-Subject-Token */
	unsigned attempt, token_gen;
	bool reauthed;
	sd_event_source *backoff;
	char errbuf[CURL_ERROR_SIZE];
	req_done_t done;
	unsigned slot;			/* index in op->reqs */
};

struct barbican_op {
	struct barbican *b;
	struct barbican_op *prev, *next;
	enum op_kind kind;
	char id[KEYID_MAX + 1];
	char what[192];
	uint64_t deadline;
	sd_event_source *timer;
	struct bb_req *reqs[2];
	struct barbican_error last;	/* the last retried problem, for the deadline message */
	void *userdata;
	union {
		barbican_fetch_cb fetch;
		barbican_list_cb list;
		barbican_store_cb store;
		barbican_done_cb done;
	} cb;
	/* fetch */
	struct barbican_meta meta;
	bool have_meta, have_key, hinted;
	struct secret_buf key;
	/* list */
	struct barbican_meta *items;
	size_t n_items, alloc_items;
	uint64_t offset;
	/* store */
	char new_id[KEYID_MAX + 1];
};

struct barbican {
	sd_event *event;
	CURLM *multi;
	CURLSH *share;
	sd_event_source *timer, *pump;
	char *url, *base, *tokens_url;
	char *ca_file, *ca_dir, *client_cert, *client_key;
	enum barbican_auth auth;
	char *project_id, *user_id, *roles;
	char app_id[256];
	struct secret_buf app_secret;	/* NUL-terminated */
	struct secret_buf token;	/* NUL-terminated; len 0: none */
	uint64_t token_expiry;		/* CLOCK_MONOTONIC usec */
	unsigned token_gen;
	char token_user[BARBICAN_ID_MAX + 1];
	struct barbican_op *auth_op;
	unsigned connect_timeout_sec, timeout_sec, deadline_sec, retries, concurrency;
	struct bb_req *queue, *queue_tail, *wait_token;
	unsigned active, queued;
	struct barbican_op *ops;
	uint32_t rnd;
	struct barbican_stats stats;
};

/* barbican.c: the client and its operations */
uint64_t bb_now_mono(struct barbican *b);
uint32_t bb_next_random(struct barbican *b);
int bb_op_new(struct barbican *b, enum op_kind kind, const char *id, void *userdata,
	      struct barbican_op **ret);
/* Adds request slot to op: method on url (which it takes), reply capped at cap bytes. */
int bb_op_add_req(struct barbican_op *op, unsigned slot, const char *method, char *url,
		  const char *accept, size_t cap, bool secret_reply, bool needs_token,
		  req_done_t done, struct bb_req **ret);
/*
 * The end of every barbican_*() that starts an operation: k < 0 (setting op up failed) frees
 * op and returns k; else *ret (when given) is op, op's requests are submitted, and 0 returned.
 */
int bb_op_submit(struct barbican_op *op, int k, struct barbican_op **ret);
/* Ends op: its requests are cancelled, its callback runs, it is freed. */
void bb_op_complete(struct barbican_op *op, const struct barbican_error *e);
void bb_op_free(struct barbican_op *op);
char *bb_url_printf(const char *fmt, ...) _printf_(1, 2);

/* http.c: requests, and curl multi on the event loop */
int bb_http_init(struct barbican *b);
void bb_http_done(struct barbican *b);
void bb_req_submit(struct bb_req *r);
struct bb_req *bb_req_free(struct bb_req *r);
void bb_queue_append(struct bb_req *r);
void bb_list_unlink(struct bb_req **head, struct bb_req **tail, struct bb_req *r);

/* keystone.c */
bool bb_token_valid(struct barbican *b);
void bb_token_drop(struct barbican *b);
/* Starts authenticating unless it is under way; the requests waiting for a token go on (or
 * fail) in bb_auth_finished(). */
void bb_ensure_auth(struct barbican *b);
void bb_auth_finished(struct barbican *b, const struct barbican_error *e);
/* The credential file must be ours and unreadable to anyone else: it unlocks every key. */
int bb_read_app_credential(struct barbican *b, const char *path);

/* api.c */
int bb_body_put(struct secret_buf *buf, size_t *pos, const char *s);
/* Appends s as a JSON string (json-c escapes it) to the secret buffer at *pos. */
int bb_body_put_json_string(struct secret_buf *buf, size_t *pos, const char *s);
