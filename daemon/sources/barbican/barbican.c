/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Barbican client (contracts in barbican.h).
 *
 * Why curl multi on the daemon's own loop, not a blocking fetch: keyscoped is single-threaded
 * and serves every client from one sd-event loop. A blocking fetch from a key manager that is
 * down or slow would stall every other client (status, detach, request-key upcalls) for up to
 * the deadline, and the boot-time case - hundreds of volumes - wants many fetches in flight at
 * once. So curl's sockets and timer are sd-event sources (CURLMOPT_SOCKETFUNCTION and
 * TIMERFUNCTION), a request is a state machine, and the server defers the reply of a call that
 * waits for one (server.c, source.c).
 *
 * Layers: an operation (fetch, list, store, consumer, Keystone auth) owns a deadline timer and
 * one or two requests; a request is one HTTP exchange with its retries (exponential back-off
 * with jitter, Retry-After honoured) and waits in a FIFO while barbican-concurrency requests
 * are in flight, or for a token. When the deadline fires the operation fails wherever it is.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "barbican.h"
#include "log.h"
#include "proto.h"
#include "util.h"

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

static void req_submit(struct bb_req *r);
static void op_fail(struct barbican_op *op, const struct barbican_error *e);
static void ensure_auth(struct barbican *b);

/* Messages are cut at the buffer, which is all right for messages. */
void barbican_error_set(struct barbican_error *e, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void) vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static uint64_t now_mono(struct barbican *b)
{
	uint64_t t;

	if (sd_event_now(b->event, CLOCK_MONOTONIC, &t) < 0)
		t = now_usec();
	return t;
}

static uint32_t next_random(struct barbican *b)
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

/* ---- requests ----------------------------------------------------------------------------- */

static void wipe_headers(struct curl_slist *h)
{
	for (struct curl_slist *p = h; p; p = p->next)
		secret_erase(p->data, strlen(p->data));
	curl_slist_free_all(h);
}

static void resp_reset(struct bb_req *r)
{
	if (r->secret_reply)
		r->resp = secret_free(r->resp);
	else {
		secret_erase(r->resp, r->resp_len);
		r->resp = mfree(r->resp);
	}
	r->resp_len = r->resp_alloc = 0;
	r->error_body = 0;
	r->overflow = false;
	r->status = 0;
	r->have_retry_after = false;
	secret_buf_done(&r->subject_token);
}

static void list_unlink(struct bb_req **head, struct bb_req **tail, struct bb_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		*head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else if (tail)
		*tail = r->prev;
	r->prev = r->next = NULL;
}

static void easy_release(struct bb_req *r)
{
	if (!r->easy)
		return;
	curl_multi_remove_handle(r->b->multi, r->easy);
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	wipe_headers(r->headers);
	r->headers = NULL;
}

static void schedule_pump(struct barbican *b)
{
	(void) sd_event_source_set_enabled(b->pump, SD_EVENT_ONESHOT);
}

/* Takes r out of wherever it waits; it can be submitted again. */
static void req_detach(struct bb_req *r)
{
	struct barbican *b = r->b;

	switch (r->state) {
	case REQ_QUEUED:
		list_unlink(&b->queue, &b->queue_tail, r);
		b->queued--;
		break;
	case REQ_WAIT_TOKEN:
		list_unlink(&b->wait_token, NULL, r);
		break;
	case REQ_ACTIVE:
		easy_release(r);
		b->active--;
		schedule_pump(b);
		break;
	case REQ_BACKOFF:
		r->backoff = sd_event_source_disable_unref(r->backoff);
		break;
	case REQ_IDLE:
		break;
	}
	r->state = REQ_IDLE;
}

static struct bb_req *req_free(struct bb_req *r)
{
	if (!r)
		return NULL;
	req_detach(r);
	resp_reset(r);
	secret_buf_done(&r->body);
	free(r->url);
	if (r->op)
		r->op->reqs[r->slot] = NULL;
	free(r);
	return NULL;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct bb_req *r = userdata;
	size_t n = size * nmemb;
	long code = 0;

	/* An error's body is not the reply: a 403 or an HTML 500 page is larger than a key. Its
	 * status says what happened; the body is dropped, and a huge one cut short. */
	(void) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code < 200 || code > 299) {
		r->error_body += n;
		return r->error_body > ERROR_BODY_MAX ? 0 : n;
	}
	if (n > r->cap - r->resp_len) {
		r->overflow = true;
		return 0;	/* CURLE_WRITE_ERROR: the transfer stops here */
	}
	if (r->resp_len + n + 1 > r->resp_alloc) {
		size_t a = r->resp_alloc ? r->resp_alloc : 1024;
		uint8_t *p;

		while (a < r->resp_len + n + 1)
			a *= 2;
		if (a > r->cap + 1)
			a = r->cap + 1;
		if (r->secret_reply) {
			p = secret_alloc(a);
			if (!p)
				return 0;
			if (r->resp_len)
				memcpy(p, r->resp, r->resp_len);
			secret_free(r->resp);
		} else {
			p = realloc(r->resp, a);
			if (!p)
				return 0;
		}
		r->resp = p;
		r->resp_alloc = a;
	}
	memcpy(r->resp + r->resp_len, ptr, n);
	r->resp_len += n;
	r->resp[r->resp_len] = 0;
	return n;
}

/* Whether a header line starts with name (case-insensitive) and a colon; *ret: its value. */
static bool header_is(const char *line, size_t n, const char *name, const char **ret,
		      size_t *ret_len)
{
	size_t k = strlen(name);
	const char *v, *end = line + n;

	if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
		return false;
	v = line + k + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && strchr(" \t\r\n", end[-1]))
		end--;
	*ret = v;
	*ret_len = (size_t) (end - v);
	return true;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata)
{
	struct bb_req *r = userdata;
	size_t n = size * nmemb, vl;
	const char *v;

	if (header_is(line, n, "Retry-After", &v, &vl) && vl < 64) {
		char buf[64];
		memcpy(buf, v, vl);
		buf[vl] = 0;
		r->have_retry_after = barbican_parse_retry_after(buf, (int64_t) time(NULL),
								  &r->retry_after_sec) >= 0;
	} else if (r->op && r->op->kind == OP_AUTH &&
		   header_is(line, n, "X-Subject-Token", &v, &vl)) {
		secret_buf_done(&r->subject_token);
		if (vl == 0 || vl > TOKEN_HEADER_MAX)
			return n;	/* refused after the transfer: no usable token */
		if (secret_buf_new(vl + 1, &r->subject_token) < 0)
			return 0;
		memcpy(r->subject_token.data, v, vl);
		r->subject_token.len = vl;
	}
	return n;
}

static int add_header(struct curl_slist **h, const char *name, const char *value)
{
	_cleanup_secret_ char *line = NULL;
	size_t n = strlen(name) + 2 + strlen(value) + 1;
	struct curl_slist *x;

	line = secret_alloc(n);
	if (!line)
		return -ENOMEM;
	snprintf(line, n, "%s: %s", name, value);
	x = curl_slist_append(*h, line);
	if (!x)
		return -ENOMEM;
	*h = x;
	return 0;
}

static int req_headers(struct bb_req *r, struct curl_slist **ret)
{
	struct barbican *b = r->b;
	struct curl_slist *h = NULL;
	int k = 0;

	if (r->accept)
		k |= add_header(&h, "Accept", r->accept);
	if (r->body.data)
		k |= add_header(&h, "Content-Type", "application/json");
	k |= add_header(&h, "Expect", "");
	if (r->needs_token && b->auth == BARBICAN_AUTH_APP_CREDENTIAL)
		k |= add_header(&h, "X-Auth-Token", (const char *) b->token.data);
	else if (r->needs_token) {
		k |= add_header(&h, "X-Project-Id", b->project_id);
		k |= add_header(&h, "X-User-Id", b->user_id);
		k |= add_header(&h, "X-Roles", b->roles);
	}
	if (k != 0) {
		wipe_headers(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

static int req_setup(struct bb_req *r, uint64_t now)
{
	struct barbican *b = r->b;
	uint64_t left_ms = r->op->deadline > now ? (r->op->deadline - now + 999) / 1000 : 1;
	uint64_t conn_ms = (uint64_t) b->connect_timeout_sec * 1000;
	uint64_t total_ms = (uint64_t) b->timeout_sec * 1000;
	CURL *e;
	int k = 0;

	if (req_headers(r, &r->headers) < 0)
		return -ENOMEM;
	e = r->easy = curl_easy_init();
	if (!e)
		return -ENOMEM;
	k |= curl_easy_setopt(e, CURLOPT_URL, r->url);
	k |= curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	k |= curl_easy_setopt(e, CURLOPT_SHARE, b->share);
	k |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	k |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
	k |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	k |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	k |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	k |= curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	k |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	k |= curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	k |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	/* Also applies to error pages, which are read up to ERROR_BODY_MAX. */
	k |= curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
			      (curl_off_t) (r->cap > ERROR_BODY_MAX ? r->cap : ERROR_BODY_MAX));
	k |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) (conn_ms < left_ms ? conn_ms
										  : left_ms));
	k |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) (total_ms < left_ms ? total_ms
									      : left_ms));
	k |= curl_easy_setopt(e, CURLOPT_USERAGENT, "keyscoped/" KEYSCOPE_VERSION);
	if (b->ca_file || b->ca_dir) {
		/* Either one replaces the system's trust store: libcurl's built-in CA path
		 * (/etc/ssl/certs on Debian) would otherwise still vouch for Barbican beside the
		 * CA the operator pinned. NULL switches a built-in default off. */
		k |= curl_easy_setopt(e, CURLOPT_CAINFO, b->ca_file);
		k |= curl_easy_setopt(e, CURLOPT_CAPATH, b->ca_dir);
	}
	if (b->client_cert)
		k |= curl_easy_setopt(e, CURLOPT_SSLCERT, b->client_cert);
	if (b->client_key)
		k |= curl_easy_setopt(e, CURLOPT_SSLKEY, b->client_key);
	if (r->body.data) {
		/* POSTFIELDS does not copy: the body stays in our wiped secret memory. */
		k |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) r->body.len);
		k |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *) r->body.data);
	}
	if (!streq(r->method, "GET") && !streq(r->method, "POST"))
		k |= curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	return k == 0 ? 0 : -EINVAL;
}

static void req_start(struct bb_req *r)
{
	struct barbican *b = r->b;
	struct barbican_error e = { .error = -ENOMEM, .cls = BARBICAN_REFUSED };
	int k;

	resp_reset(r);
	r->attempt++;
	r->token_gen = b->token_gen;
	k = req_setup(r, now_mono(b));
	if (k >= 0 && curl_multi_add_handle(b->multi, r->easy) != CURLM_OK)
		k = -ENOMEM;
	if (k < 0) {
		easy_release(r);
		barbican_error_set(&e, "%s: cannot set up the HTTP request "
			 "(out of memory or a bad option)", r->op->what);
		op_fail(r->op, &e);
		return;
	}
	r->state = REQ_ACTIVE;
	b->active++;
	b->stats.requests++;
	log_debug("Barbican: %s %s (attempt %u).", r->method, r->url, r->attempt);
}

static bool token_valid(struct barbican *b)
{
	return b->auth == BARBICAN_AUTH_NONE || (b->token.len > 0 && now_mono(b) < b->token_expiry);
}

static void queue_append(struct bb_req *r)
{
	struct barbican *b = r->b;

	/* Keystone first: every Barbican request may be waiting for it. */
	if (r->op->kind == OP_AUTH) {
		r->next = b->queue;
		if (r->next)
			r->next->prev = r;
		else
			b->queue_tail = r;
		b->queue = r;
	} else {
		r->prev = b->queue_tail;
		if (r->prev)
			r->prev->next = r;
		else
			b->queue = r;
		b->queue_tail = r;
	}
	r->state = REQ_QUEUED;
	b->queued++;
	schedule_pump(b);
}

static void req_submit(struct bb_req *r)
{
	struct barbican *b = r->b;

	req_detach(r);
	if (r->needs_token && !token_valid(b)) {
		r->next = b->wait_token;
		if (r->next)
			r->next->prev = r;
		b->wait_token = r;
		r->state = REQ_WAIT_TOKEN;
		ensure_auth(b);
		return;
	}
	queue_append(r);
}

/* Starts queued requests while fewer than barbican-concurrency are in flight. */
static int on_pump(sd_event_source *s, void *userdata)
{
	struct barbican *b = userdata;

	while (b->queue && b->active < b->concurrency) {
		struct bb_req *r = b->queue;

		list_unlink(&b->queue, &b->queue_tail, r);
		b->queued--;
		r->state = REQ_IDLE;
		if (r->needs_token && !token_valid(b)) {
			req_submit(r);
			continue;
		}
		req_start(r);
	}
	return 0;
}

static int on_backoff(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct bb_req *r = userdata;

	r->backoff = sd_event_source_disable_unref(r->backoff);
	r->state = REQ_IDLE;
	req_submit(r);
	return 0;
}

/* A request ended with a retryable problem: back off and go again, or give up. */
static void req_retry(struct bb_req *r, const struct barbican_error *e)
{
	struct barbican *b = r->b;
	struct barbican_op *op = r->op;
	uint64_t delay_ms, now = now_mono(b);
	int k;

	op->last = *e;
	if (r->attempt > b->retries) {
		struct barbican_error g = *e;
		barbican_error_set(&g, "%s (after %u attempts)", e->message,
			 r->attempt);
		op_fail(op, &g);
		return;
	}
	if (r->have_retry_after)
		delay_ms = r->retry_after_sec * 1000;
	else
		delay_ms = barbican_backoff_ms(r->attempt, BACKOFF_BASE_MS, BACKOFF_MAX_MS,
					       next_random(b));
	if (now + delay_ms * 1000 >= op->deadline) {
		struct barbican_error g = *e;
		if (r->have_retry_after)
			barbican_error_set(&g, "%s; Barbican asked to retry after "
				 "%llus, beyond barbican-deadline (%us)", e->message,
				 (unsigned long long) r->retry_after_sec, b->deadline_sec);
		op_fail(op, &g);
		return;
	}
	b->stats.retries++;
	log_debug("Barbican: %s; retrying in %llu ms.", e->message, (unsigned long long) delay_ms);
	k = sd_event_add_time(b->event, &r->backoff, CLOCK_MONOTONIC, now + delay_ms * 1000, 1000,
			      on_backoff, r);
	if (k < 0) {
		op_fail(op, e);
		return;
	}
	r->state = REQ_BACKOFF;
}

static void token_drop(struct barbican *b)
{
	secret_buf_done(&b->token);
	b->token_expiry = 0;
}

static void req_finished(struct bb_req *r, CURLcode cc)
{
	struct barbican *b = r->b;
	struct barbican_error e;
	const char *user = barbican_user(b);
	const char *url = r->op->kind == OP_AUTH ? b->tokens_url : b->url;

	if (cc == CURLE_WRITE_ERROR && !r->overflow)
		cc = CURLE_OUT_OF_MEMORY;
	if (r->needs_token && cc == CURLE_OK && r->status == 401 &&
	    b->auth == BARBICAN_AUTH_APP_CREDENTIAL && !r->reauthed) {
		/* The token may have been revoked or expired early: authenticate once more. */
		r->reauthed = true;
		if (r->token_gen == b->token_gen)
			token_drop(b);
		r->attempt--;
		req_submit(r);
		return;
	}
	(void) barbican_error_from_http(r->status, (int) cc, r->op->what, user, url, &e);
	if (e.error == 0) {
		r->done(r, &e);
		return;
	}
	if (r->op->kind == OP_AUTH && e.cls == BARBICAN_AUTH)
		barbican_error_set(&e, "%s: Keystone at %s refused the application "
			 "credential %s (HTTP %ld): check app-credential-file (expired, deleted or "
			 "wrong secret?)", r->op->what, b->tokens_url, b->app_id, r->status);
	if (barbican_should_retry(r->status, (int) cc)) {
		req_retry(r, &e);
		return;
	}
	b->stats.failures++;
	r->done(r, &e);
}

static void check_done(struct barbican *b)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(b->multi, &left))) {
		struct bb_req *r = NULL;
		CURLcode cc;

		if (m->msg != CURLMSG_DONE)
			continue;
		cc = m->data.result;
		(void) curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &r);
		if (!r)
			continue;
		(void) curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &r->status);
		/* A non-2xx answer cut short while its page was dropped: the status tells. */
		if ((cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED ||
		     cc == CURLE_PARTIAL_FILE) && r->status >= 300 && !r->overflow)
			cc = CURLE_OK;
		if (cc != CURLE_OK)
			r->status = 0;
		if (cc != CURLE_OK && r->errbuf[0])
			log_debug("Barbican: %s %s: %s", r->method, r->url, r->errbuf);
		else
			log_debug("Barbican: %s %s: HTTP %ld, %zu bytes.", r->method, r->url,
				  r->status, r->resp_len);
		easy_release(r);
		r->state = REQ_IDLE;
		b->active--;
		schedule_pump(b);
		req_finished(r, cc);
	}
}

/* ---- curl on sd-event ----------------------------------------------------------------------- */

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct barbican *b = userdata;
	int action = 0, running;

	if (revents & EPOLLIN)
		action |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		action |= CURL_CSELECT_OUT;
	if (revents & (EPOLLERR | EPOLLHUP))
		action |= CURL_CSELECT_ERR;
	(void) curl_multi_socket_action(b->multi, fd, action, &running);
	check_done(b);
	return 0;
}

static int on_curl_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct barbican *b = userp;
	sd_event_source *s = socketp;
	uint32_t ev = 0;

	if (what == CURL_POLL_REMOVE) {
		if (s) {
			sd_event_source_disable_unref(s);
			(void) curl_multi_assign(b->multi, fd, NULL);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		ev |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev |= EPOLLOUT;
	if (!s) {
		if (sd_event_add_io(b->event, &s, fd, ev, on_io, b) < 0)
			return -1;
		(void) curl_multi_assign(b->multi, fd, s);
		return 0;
	}
	(void) sd_event_source_set_io_events(s, ev);
	(void) sd_event_source_set_enabled(s, SD_EVENT_ON);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct barbican *b = userdata;
	int running;

	(void) curl_multi_socket_action(b->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(b);
	return 0;
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct barbican *b = userp;

	if (timeout_ms < 0)
		return sd_event_source_set_enabled(b->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
	/* 1 us accuracy: sd-event's default of 250 ms would add that to every exchange. */
	(void) sd_event_source_set_time(b->timer, now_mono(b) + (uint64_t) timeout_ms * 1000);
	return sd_event_source_set_enabled(b->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

/* ---- operations ----------------------------------------------------------------------------- */

static void op_free(struct barbican_op *op)
{
	struct barbican *b = op->b;

	for (size_t i = 0; i < ELEMENTSOF(op->reqs); i++)
		req_free(op->reqs[i]);
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

static void auth_finished(struct barbican *b, const struct barbican_error *e);

/* Ends op: its requests are cancelled, its callback runs, it is freed. */
static void op_complete(struct barbican_op *op, const struct barbican_error *e)
{
	for (size_t i = 0; i < ELEMENTSOF(op->reqs); i++)
		op->reqs[i] = req_free(op->reqs[i]);
	op->timer = sd_event_source_disable_unref(op->timer);
	if (op->kind == OP_AUTH) {
		struct barbican *b = op->b;
		b->auth_op = NULL;
		op_free(op);
		auth_finished(b, e);
		return;
	}
	op_callback(op, e);
	op_free(op);
}

static void op_fail(struct barbican_op *op, const struct barbican_error *e)
{
	op_complete(op, e);
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
	op_fail(op, &e);
	return 0;
}

static int op_new(struct barbican *b, enum op_kind kind, const char *id, void *userdata,
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
	op->deadline = now_mono(b) + (uint64_t) b->deadline_sec * 1000000;
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

/* Adds request slot to op: method on url (which it takes), reply capped at cap bytes. */
static int op_add_req(struct barbican_op *op, unsigned slot, const char *method, char *url,
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

static char *url_printf(const char *fmt, ...) _printf_(1, 2);
static char *url_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

/* ---- authentication ------------------------------------------------------------------------- */

static void auth_finished(struct barbican *b, const struct barbican_error *e)
{
	struct bb_req *r;

	/* Take the head each time: failing one operation frees its other request too, which
	 * leaves this list by itself. */
	while ((r = b->wait_token)) {
		list_unlink(&b->wait_token, NULL, r);
		r->state = REQ_IDLE;
		if (e->error == 0) {
			queue_append(r);
		} else {
			struct barbican_error f = *e;
			barbican_error_set(&f, "%s: %s", r->op->what, e->message);
			if (e->cls == BARBICAN_REFUSED)
				f.cls = BARBICAN_AUTH;
			op_fail(r->op, &f);
		}
	}
}

static void on_auth_reply(struct bb_req *r, const struct barbican_error *e)
{
	struct barbican *b = r->b;
	struct barbican_op *op = r->op;
	struct barbican_token_info info;
	struct barbican_error f = { .error = -EBADMSG, .cls = BARBICAN_BAD_REPLY };
	char err[256];
	int64_t left;

	if (e->error < 0) {
		op_complete(op, e);
		return;
	}
	if (r->subject_token.len == 0 ||
	    barbican_parse_token((const char *) r->resp, r->resp_len, &info, err, sizeof(err)) < 0) {
		barbican_error_set(&f, "%s: Keystone at %s sent no usable token "
			 "(%s)", op->what, b->tokens_url,
			 r->subject_token.len == 0 ? "no X-Subject-Token header" : err);
		op_complete(op, &f);
		return;
	}
	left = info.expires_at - (int64_t) time(NULL);
	if (left <= TOKEN_MARGIN_SEC / 6) {
		barbican_error_set(&f, "%s: Keystone's token expires in %llds; "
			 "check the clocks of this node and Keystone", op->what, (long long) left);
		op_complete(op, &f);
		return;
	}
	secret_buf_done(&b->token);
	b->token = r->subject_token;
	r->subject_token = (struct secret_buf) {};	/* transferred */
	b->token_expiry = now_mono(b) +
			  (uint64_t) (left > 2 * TOKEN_MARGIN_SEC ? left - TOKEN_MARGIN_SEC
								  : left / 2) * 1000000;
	b->token_gen++;
	b->stats.auths++;
	snprintf(b->token_user, sizeof(b->token_user), "%s", info.user_id);
	log_info("Authenticated to Keystone with application credential %s as user %s%s%s; token "
		 "renewed in %llds.", b->app_id, info.user_id,
		 info.project_id[0] ? " in project " : "", info.project_id,
		 (long long) ((b->token_expiry - now_mono(b)) / 1000000));
	op_complete(op, e);
}

/* {"auth":{"identity":{"methods":["application_credential"],"application_credential":
 *  {"id":"...","secret":"..."}}}}, built in secret memory (the parser refused " and \). */
static int auth_body(struct barbican *b, struct secret_buf *ret)
{
	static const char fmt[] = "{\"auth\":{\"identity\":{\"methods\":[\"application_credential\"],"
				  "\"application_credential\":{\"id\":\"%s\",\"secret\":\"%s\"}}}}";
	size_t n = sizeof(fmt) + strlen(b->app_id) + b->app_secret.len;
	int r, k;

	r = secret_buf_new(n, ret);
	if (r < 0)
		return r;
	k = snprintf((char *) ret->data, n, fmt, b->app_id, (const char *) b->app_secret.data);
	if (k < 0 || (size_t) k >= n) {
		secret_buf_done(ret);
		return -EINVAL;
	}
	ret->len = (size_t) k;
	return 0;
}

static void ensure_auth(struct barbican *b)
{
	struct barbican_op *op;
	struct bb_req *r;
	int k;

	if (b->auth_op || b->auth != BARBICAN_AUTH_APP_CREDENTIAL)
		return;
	k = op_new(b, OP_AUTH, NULL, NULL, &op);
	if (k < 0)
		goto fail;
	snprintf(op->what, sizeof(op->what), "authenticating to Keystone");
	k = op_add_req(op, 0, "POST", strdup(b->tokens_url), "application/json",
		       BARBICAN_BODY_MAX, false, false, on_auth_reply, &r);
	if (k >= 0)
		k = auth_body(b, &r->body);
	if (k < 0) {
		op_free(op);
		goto fail;
	}
	b->auth_op = op;
	req_submit(r);
	return;
fail:
	{
		struct barbican_error e = { .error = k, .cls = BARBICAN_AUTH };
		barbican_error_set(&e, "cannot set up authentication: %s",
			 strerror(-k));
		auth_finished(b, &e);
	}
}

/* ---- fetch ---------------------------------------------------------------------------------- */

static void fetch_maybe_done(struct barbican_op *op)
{
	struct barbican_error e = {};
	char err[384];

	if (!op->have_key || !op->have_meta)
		return;
	if (op->key.len == 0 ||
	    barbican_check_meta(&op->meta, op->id, op->key.len, (int64_t) time(NULL), err,
				sizeof(err)) < 0) {
		e = (struct barbican_error) { .error = -EMEDIUMTYPE, .cls = BARBICAN_REFUSED,
					      .status = 200 };
		if (op->key.len == 0)
			barbican_error_set(&e, "%s: Barbican sent an empty payload",
				 op->what);
		else
			barbican_error_set(&e, "%s", err);
		secret_buf_done(&op->key);
	}
	op_complete(op, &e);
}

static void on_meta_reply(struct bb_req *r, const struct barbican_error *e)
{
	struct barbican_op *op = r->op;
	char err[256];

	if (e->error < 0) {
		op_complete(op, e);
		return;
	}
	if (barbican_parse_meta((const char *) r->resp, r->resp_len, &op->meta, err,
				sizeof(err)) < 0) {
		struct barbican_error f = { .error = -EBADMSG, .cls = BARBICAN_BAD_REPLY,
					    .status = r->status };
		barbican_error_set(&f, "%s: unusable metadata from Barbican (%s)",
			 op->what, err);
		op_complete(op, &f);
		return;
	}
	op->have_meta = true;
	op->reqs[r->slot] = req_free(r);
	fetch_maybe_done(op);
}

static void on_payload_reply(struct bb_req *r, const struct barbican_error *e)
{
	struct barbican_op *op = r->op;
	int k;

	if (e->error < 0) {
		op_complete(op, e);
		return;
	}
	if (r->resp_len > 0) {
		k = secret_buf_new(r->resp_len, &op->key);
		if (k < 0) {
			struct barbican_error f = { .error = k, .cls = BARBICAN_REFUSED };
			barbican_error_set(&f, "%s: out of memory", op->what);
			op_complete(op, &f);
			return;
		}
		memcpy(op->key.data, r->resp, r->resp_len);
	}
	op->have_key = true;
	op->reqs[r->slot] = req_free(r);
	fetch_maybe_done(op);
}

int barbican_fetch(struct barbican *b, const char *id, const struct barbican_meta *hint,
		   barbican_fetch_cb cb, void *userdata, struct barbican_op **ret)
{
	struct barbican_op *op;
	struct bb_req *rm = NULL, *rp = NULL;
	int k;

	if (!keyid_is_valid(id))
		return -EINVAL;
	k = op_new(b, OP_FETCH, id, userdata, &op);
	if (k < 0)
		return k;
	op->cb.fetch = cb;
	snprintf(op->what, sizeof(op->what), "fetching secret %s", id);
	if (hint) {
		op->meta = *hint;
		op->have_meta = op->hinted = true;
	} else
		k = op_add_req(op, 0, "GET", url_printf("%s/secrets/%s", b->base, id),
			       "application/json", BARBICAN_META_MAX, false, true, on_meta_reply,
			       &rm);
	if (k >= 0)
		k = op_add_req(op, 1, "GET", url_printf("%s/secrets/%s/payload", b->base, id),
			       "application/octet-stream", BARBICAN_PAYLOAD_MAX, true, true,
			       on_payload_reply, &rp);
	if (k < 0) {
		op_free(op);
		return k;
	}
	if (rm)
		req_submit(rm);
	req_submit(rp);
	if (ret)
		*ret = op;
	return 0;
}

/* ---- list ----------------------------------------------------------------------------------- */

static int list_next_page(struct barbican_op *op);

static void on_list_reply(struct bb_req *r, const struct barbican_error *e)
{
	struct barbican_op *op = r->op;
	struct barbican_list page = {};
	struct barbican_error f = { .error = -EBADMSG, .cls = BARBICAN_BAD_REPLY };
	char err[256];
	int k;

	if (e->error < 0) {
		op_complete(op, e);
		return;
	}
	k = barbican_parse_list((const char *) r->resp, r->resp_len, &page, err, sizeof(err));
	op->reqs[0] = req_free(r);
	if (k < 0) {
		barbican_error_set(&f, "%s: unusable list page from Barbican (%s)",
			 op->what, err);
		op_complete(op, &f);
		return;
	}
	if (op->n_items + page.n > LIST_MAX_ITEMS) {
		barbican_list_done(&page);
		barbican_error_set(&f, "%s: more than %u secrets", op->what,
			 LIST_MAX_ITEMS);
		op_complete(op, &f);
		return;
	}
	if (op->n_items + page.n > op->alloc_items) {
		size_t a = op->n_items + page.n + 64;
		struct barbican_meta *m = realloc(op->items, a * sizeof(*m));
		if (!m) {
			barbican_list_done(&page);
			f.error = -ENOMEM;
			barbican_error_set(&f, "%s: out of memory", op->what);
			op_complete(op, &f);
			return;
		}
		op->items = m;
		op->alloc_items = a;
	}
	if (page.n)
		memcpy(op->items + op->n_items, page.items, page.n * sizeof(*page.items));
	op->n_items += page.n;
	op->offset += page.n;
	/* The "next" link is not followed: it drops acl_only, and URLs come from us only. */
	if (page.n == 0 || op->offset >= page.total) {
		barbican_list_done(&page);
		op_complete(op, &(struct barbican_error) {});
		return;
	}
	barbican_list_done(&page);
	k = list_next_page(op);
	if (k < 0) {
		f.error = k;
		barbican_error_set(&f, "%s: out of memory", op->what);
		op_complete(op, &f);
	}
}

static int list_next_page(struct barbican_op *op)
{
	struct barbican *b = op->b;
	struct bb_req *r;
	int k;

	k = op_add_req(op, 0, "GET",
		       url_printf("%s/secrets?acl_only=true&limit=%u&offset=%llu", b->base,
				  BARBICAN_LIST_PAGE, (unsigned long long) op->offset),
		       "application/json", BARBICAN_BODY_MAX, false, true, on_list_reply, &r);
	if (k < 0)
		return k;
	req_submit(r);
	return 0;
}

int barbican_list_delegated(struct barbican *b, barbican_list_cb cb, void *userdata,
			    struct barbican_op **ret)
{
	struct barbican_op *op;
	int k;

	k = op_new(b, OP_LIST, NULL, userdata, &op);
	if (k < 0)
		return k;
	op->cb.list = cb;
	snprintf(op->what, sizeof(op->what), "listing the secrets delegated to this node");
	k = list_next_page(op);
	if (k < 0) {
		op_free(op);
		return k;
	}
	if (ret)
		*ret = op;
	return 0;
}

/* ---- store (clone-key) ---------------------------------------------------------------------- */

static void on_acl_reply(struct bb_req *r, const struct barbican_error *e)
{
	struct barbican_op *op = r->op;
	struct barbican_error f;

	if (e->error < 0) {
		f = *e;
		barbican_error_set(&f, "stored secret %s, but granting this node "
			 "read on it failed: %s", op->new_id, e->message);
		op_complete(op, &f);
		return;
	}
	op_complete(op, e);
}

static int acl_body(struct barbican *b, struct secret_buf *ret)
{
	_cleanup_json_ json_object *user = json_object_new_string(barbican_user(b));
	const char *u = user ? json_object_to_json_string_ext(user, JSON_C_TO_STRING_PLAIN) : NULL;
	size_t n;
	int k;

	if (!u)
		return -ENOMEM;
	n = strlen(u) + 64;
	k = secret_buf_new(n, ret);
	if (k < 0)
		return k;
	k = snprintf((char *) ret->data, n, "{\"read\":{\"users\":[%s],\"project-access\":false}}",
		     u);
	ret->len = (size_t) k;
	return 0;
}

static void on_store_reply(struct bb_req *r, const struct barbican_error *e)
{
	struct barbican_op *op = r->op;
	struct barbican *b = op->b;
	struct barbican_error f = { .error = -EBADMSG, .cls = BARBICAN_BAD_REPLY };
	struct bb_req *acl;
	char err[256];
	int k;

	if (e->error < 0) {
		op_complete(op, e);
		return;
	}
	k = barbican_parse_secret_ref((const char *) r->resp, r->resp_len, op->new_id, err,
				      sizeof(err));
	op->reqs[0] = req_free(r);
	if (k < 0) {
		barbican_error_set(&f, "%s: Barbican's reply names no new secret "
			 "(%s)", op->what, err);
		op_complete(op, &f);
		return;
	}
	snprintf(op->what, sizeof(op->what), "granting read on secret %s", op->new_id);
	k = op_add_req(op, 0, "PUT", url_printf("%s/secrets/%s/acl", b->base, op->new_id),
		       "application/json", BARBICAN_META_MAX, false, true, on_acl_reply, &acl);
	if (k >= 0)
		k = acl_body(b, &acl->body);
	if (k < 0) {
		f.error = k;
		barbican_error_set(&f, "stored secret %s, but cannot grant read "
			 "on it: out of memory", op->new_id);
		op_complete(op, &f);
		return;
	}
	req_submit(acl);
}

/* Appends s as a JSON string (json-c escapes it) to the secret buffer at *pos. */
static int body_put(struct secret_buf *buf, size_t *pos, const char *s)
{
	size_t n = strlen(s);

	if (n > buf->len - *pos)
		return -ENOBUFS;
	memcpy(buf->data + *pos, s, n);
	*pos += n;
	return 0;
}

static int body_put_json_string(struct secret_buf *buf, size_t *pos, const char *s)
{
	_cleanup_json_ json_object *o = json_object_new_string(s);

	if (!o)
		return -ENOMEM;
	return body_put(buf, pos, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
								      JSON_C_TO_STRING_NOSLASHESCAPE));
}

/* The POST body, material base64-encoded straight into secret memory. */
static int store_body(const struct barbican_meta *like, const struct secret_buf *key,
		      const char *name, struct secret_buf *ret)
{
	_cleanup_secret_buf_ struct secret_buf buf = {};
	char num[32];
	size_t pos = 0, b64 = 4 * ((key->len + 2) / 3);
	int k = 0;

	k = secret_buf_new(1024 + 4 * strlen(name) + 6 * (strlen(like->algorithm) +
							  strlen(like->mode)) + b64, &buf);
	if (k < 0)
		return k;
	k |= body_put(&buf, &pos, "{\"name\":");
	k |= body_put_json_string(&buf, &pos, name);
	k |= body_put(&buf, &pos, ",\"secret_type\":");
	k |= body_put_json_string(&buf, &pos, like->secret_type[0] ? like->secret_type
								   : "symmetric");
	if (like->algorithm[0]) {
		k |= body_put(&buf, &pos, ",\"algorithm\":");
		k |= body_put_json_string(&buf, &pos, like->algorithm);
	}
	if (like->mode[0]) {
		k |= body_put(&buf, &pos, ",\"mode\":");
		k |= body_put_json_string(&buf, &pos, like->mode);
	}
	snprintf(num, sizeof(num), ",\"bit_length\":%zu", key->len * 8);
	k |= body_put(&buf, &pos, num);
	k |= body_put(&buf, &pos, ",\"payload_content_type\":\"application/octet-stream\","
			       "\"payload_content_encoding\":\"base64\",\"payload\":\"");
	if (k != 0 || buf.len - pos < b64 + 3)
		return -ENOBUFS;
	pos += (size_t) EVP_EncodeBlock(buf.data + pos, key->data, (int) key->len);
	k |= body_put(&buf, &pos, "\"}");
	if (k != 0)
		return -ENOBUFS;
	buf.len = pos;
	*ret = buf;
	buf = (struct secret_buf) {};	/* transferred */
	return 0;
}

int barbican_store(struct barbican *b, const struct barbican_meta *like,
		   const struct secret_buf *key, const char *name, barbican_store_cb cb,
		   void *userdata, struct barbican_op **ret)
{
	struct barbican_op *op;
	struct bb_req *r;
	int k;

	if (!key || (key->len != 32 && key->len != 64))
		return -EINVAL;
	k = op_new(b, OP_STORE, NULL, userdata, &op);
	if (k < 0)
		return k;
	op->cb.store = cb;
	snprintf(op->what, sizeof(op->what), "storing a new secret in Barbican");
	k = op_add_req(op, 0, "POST", url_printf("%s/secrets", b->base), "application/json",
		       BARBICAN_META_MAX, false, true, on_store_reply, &r);
	if (k >= 0)
		k = store_body(like, key, name ?: "", &r->body);
	if (k < 0) {
		op_free(op);
		return k;
	}
	req_submit(r);
	if (ret)
		*ret = op;
	return 0;
}

/* ---- consumers ------------------------------------------------------------------------------ */

static void on_consumer_reply(struct bb_req *r, const struct barbican_error *e)
{
	op_complete(r->op, e);
}

int barbican_consumer(struct barbican *b, const char *id, bool add, const char *service,
		      const char *resource_id, barbican_done_cb cb, void *userdata,
		      struct barbican_op **ret)
{
	struct barbican_op *op;
	struct bb_req *r;
	size_t pos = 0;
	int k;

	if (!keyid_is_valid(id) || isempty(service) || isempty(resource_id))
		return -EINVAL;
	k = op_new(b, OP_CONSUMER, id, userdata, &op);
	if (k < 0)
		return k;
	op->cb.done = cb;
	snprintf(op->what, sizeof(op->what), "%s consumer %.64s of secret %s",
		 add ? "registering" : "removing", resource_id, id);
	k = op_add_req(op, 0, add ? "POST" : "DELETE",
		       url_printf("%s/secrets/%s/consumers", b->base, id), "application/json",
		       BARBICAN_META_MAX, false, true, on_consumer_reply, &r);
	if (k >= 0)
		k = secret_buf_new(128 + 6 * (strlen(service) + strlen(resource_id)), &r->body);
	if (k >= 0) {
		k |= body_put(&r->body, &pos, "{\"service\":");
		k |= body_put_json_string(&r->body, &pos, service);
		k |= body_put(&r->body, &pos, ",\"resource_type\":\"volume\",\"resource_id\":");
		k |= body_put_json_string(&r->body, &pos, resource_id);
		k |= body_put(&r->body, &pos, "}");
		r->body.len = pos;
		k = k != 0 ? -ENOBUFS : 0;
	}
	if (k < 0) {
		op_free(op);
		return k;
	}
	req_submit(r);
	if (ret)
		*ret = op;
	return 0;
}

void barbican_op_cancel(struct barbican_op *op)
{
	if (op)
		op_free(op);
}

/* ---- set-up ----------------------------------------------------------------------------------- */

/* The credential file must be ours and unreadable to anyone else: it unlocks every key. */
static int read_app_credential(struct barbican *b, const char *path)
{
	_cleanup_secret_ char *text = NULL;
	_cleanup_close_ int fd = -EBADF;
	struct stat st;
	char err[256];
	ssize_t k;
	int r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return log_error_errno(-errno, "Cannot open app-credential-file %s: %m", path);
	if (fstat(fd, &st) < 0)
		return log_error_errno(-errno, "Cannot stat app-credential-file %s: %m", path);
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || st.st_size > 64 * 1024)
		return log_error_errno(-EBADMSG, "app-credential-file %s is not a regular file of "
				       "1..65536 bytes.", path);
	if (st.st_uid != geteuid() || (st.st_mode & 0077) != 0)
		return log_error_errno(-EPERM, "Refusing app-credential-file %s: it is %s (mode "
				       "%04o, owner uid %u); it holds a credential that unlocks "
				       "every delegated key: chown root and chmod 0600 it.", path,
				       (st.st_mode & 0077) ? "readable by group or others"
							   : "not owned by keyscoped's user",
				       (unsigned) (st.st_mode & 07777), (unsigned) st.st_uid);
	text = secret_alloc((size_t) st.st_size + 1);
	if (!text)
		return log_oom();
	k = loop_read(fd, text, (size_t) st.st_size);
	if (k != st.st_size)
		return log_error_errno(k < 0 ? (int) k : -EIO, "Cannot read app-credential-file "
				       "%s.", path);
	r = barbican_parse_app_credential(text, (size_t) k, b->app_id, sizeof(b->app_id),
					  &b->app_secret, err, sizeof(err));
	if (r < 0)
		return log_error_errno(r, "app-credential-file %s: %s.", path, err);
	return 0;
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
	r = read_app_credential(b, o->app_credential_file);
	return r;
}

int barbican_new(sd_event *event, const struct barbican_options *o, struct barbican **ret)
{
	struct barbican *b;
	int r;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return log_error_errno(-EIO, "Cannot initialise libcurl.");
	b = calloc(1, sizeof(*b));
	if (!b)
		return log_oom();
	b->event = sd_event_ref(event);
	b->auth = o->auth;
	b->connect_timeout_sec = o->connect_timeout_sec ?: 5;
	b->timeout_sec = o->timeout_sec ?: 10;
	b->deadline_sec = o->deadline_sec ?: 30;
	b->retries = o->retries;
	b->concurrency = o->concurrency ?: 8;
	if (getrandom(&b->rnd, sizeof(b->rnd), GRND_NONBLOCK) != sizeof(b->rnd) || !b->rnd)
		b->rnd = (uint32_t) now_usec() | 1;
	r = barbican_setup(b, o);
	if (r < 0)
		goto fail;
	b->multi = curl_multi_init();
	b->share = curl_share_init();
	if (!b->multi || !b->share) {
		r = log_oom();
		goto fail;
	}
	/* One thread: no lock callbacks. Sessions and DNS are shared so that a new easy handle
	 * resumes TLS instead of a full handshake when a server closes connections. */
	curl_share_setopt(b->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(b->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_multi_setopt(b->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(b->multi, CURLMOPT_SOCKETDATA, b);
	curl_multi_setopt(b->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(b->multi, CURLMOPT_TIMERDATA, b);
	curl_multi_setopt(b->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) b->concurrency + 1);
	curl_multi_setopt(b->multi, CURLMOPT_MAXCONNECTS, (long) b->concurrency + 2);
	r = sd_event_add_time(event, &b->timer, CLOCK_MONOTONIC, UINT64_MAX, 1, on_timer, b);
	if (r >= 0)
		r = sd_event_source_set_enabled(b->timer, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_defer(event, &b->pump, on_pump, b);
	if (r >= 0)
		r = sd_event_source_set_enabled(b->pump, SD_EVENT_OFF);
	if (r < 0) {
		log_error_errno(r, "Cannot set up the Barbican client's event sources: %m");
		goto fail;
	}
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
		op_free(b->ops);
	if (b->multi)
		curl_multi_cleanup(b->multi);
	if (b->share)
		curl_share_cleanup(b->share);
	sd_event_source_disable_unref(b->timer);
	sd_event_source_disable_unref(b->pump);
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
