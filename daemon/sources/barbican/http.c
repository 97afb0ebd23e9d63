/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A request's life cycle: queued while barbican-concurrency requests are in flight or while
 * it waits for a token, one HTTP exchange on a curl easy handle, then done, retried after a
 * back-off (or Retry-After), or failed. And curl's multi interface on the daemon's sd-event
 * loop: its sockets are io sources, its timer a time source.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "barbican-internal.h"
#include "log.h"
#include "metrics.h"
#include "util.h"


static void wipe_headers(struct curl_slist *h)
{
	for (struct curl_slist *p = h; p; p = p->next)
		secret_erase(p->data, strlen(p->data));
	sym_curl_slist_free_all(h);
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

void bb_list_unlink(struct bb_req **head, struct bb_req **tail, struct bb_req *r)
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
	sym_curl_multi_remove_handle(r->b->multi, r->easy);
	sym_curl_easy_cleanup(r->easy);
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
		bb_list_unlink(&b->queue, &b->queue_tail, r);
		b->queued--;
		break;
	case REQ_WAIT_TOKEN:
		bb_list_unlink(&b->wait_token, NULL, r);
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

struct bb_req *bb_req_free(struct bb_req *r)
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
	(void) sym_curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
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

static int add_header(struct curl_slist **h, const char *name, const char *value)
{
	_cleanup_secret_ char *line = NULL;
	size_t n = strlen(name) + 2 + strlen(value) + 1;
	struct curl_slist *x;

	line = secret_alloc(n);
	if (!line)
		return -ENOMEM;
	snprintf(line, n, "%s: %s", name, value);
	x = sym_curl_slist_append(*h, line);
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
	e = r->easy = sym_curl_easy_init();
	if (!e)
		return -ENOMEM;
	k |= sym_curl_easy_setopt(e, CURLOPT_URL, r->url);
	k |= sym_curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	k |= sym_curl_easy_setopt(e, CURLOPT_SHARE, b->share);
	k |= sym_curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	k |= sym_curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https,http");
	k |= sym_curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	k |= sym_curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	k |= sym_curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	k |= sym_curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	k |= sym_curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	/* Also applies to error pages, which are read up to ERROR_BODY_MAX. */
	k |= sym_curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE,
			      (curl_off_t) (r->cap > ERROR_BODY_MAX ? r->cap : ERROR_BODY_MAX));
	k |= sym_curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long) (conn_ms < left_ms ? conn_ms
										  : left_ms));
	k |= sym_curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long) (total_ms < left_ms ? total_ms
									      : left_ms));
	k |= sym_curl_easy_setopt(e, CURLOPT_USERAGENT, "keyscoped/" KEYSCOPE_VERSION);
	if (b->ca_file || b->ca_dir) {
		/* Either one replaces the system's trust store: libcurl's built-in CA path
		 * (/etc/ssl/certs on Debian) would otherwise still vouch for Barbican beside the
		 * CA the operator pinned. NULL switches a built-in default off. */
		k |= sym_curl_easy_setopt(e, CURLOPT_CAINFO, b->ca_file);
		k |= sym_curl_easy_setopt(e, CURLOPT_CAPATH, b->ca_dir);
	}
	if (b->client_cert)
		k |= sym_curl_easy_setopt(e, CURLOPT_SSLCERT, b->client_cert);
	if (b->client_key)
		k |= sym_curl_easy_setopt(e, CURLOPT_SSLKEY, b->client_key);
	if (r->body.data) {
		/* POSTFIELDS does not copy: the body stays in our wiped secret memory. */
		k |= sym_curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long) r->body.len);
		k |= sym_curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *) r->body.data);
	}
	if (!streq(r->method, "GET") && !streq(r->method, "POST"))
		k |= sym_curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
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
	k = req_setup(r, bb_now_mono(b));
	if (k >= 0 && sym_curl_multi_add_handle(b->multi, r->easy) != CURLM_OK)
		k = -ENOMEM;
	if (k < 0) {
		easy_release(r);
		barbican_error_set(&e, "%s: cannot set up the HTTP request "
			 "(out of memory or a bad option)", r->op->what);
		bb_op_complete(r->op, &e);
		return;
	}
	r->state = REQ_ACTIVE;
	b->active++;
	b->stats.requests++;
	log_debug("Barbican: %s %s (attempt %u).", r->method, r->url, r->attempt);
}

void bb_queue_append(struct bb_req *r)
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

void bb_req_submit(struct bb_req *r)
{
	struct barbican *b = r->b;

	req_detach(r);
	if (r->needs_token && !bb_token_valid(b)) {
		r->next = b->wait_token;
		if (r->next)
			r->next->prev = r;
		b->wait_token = r;
		r->state = REQ_WAIT_TOKEN;
		bb_ensure_auth(b);
		return;
	}
	bb_queue_append(r);
}

/* Starts queued requests while fewer than barbican-concurrency are in flight. */
static int on_pump(sd_event_source *s, void *userdata)
{
	struct barbican *b = userdata;

	while (b->queue && b->active < b->concurrency) {
		struct bb_req *r = b->queue;

		bb_list_unlink(&b->queue, &b->queue_tail, r);
		b->queued--;
		r->state = REQ_IDLE;
		if (r->needs_token && !bb_token_valid(b)) {
			bb_req_submit(r);
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
	bb_req_submit(r);
	return 0;
}

/* A request ended with a retryable problem: back off and go again, or give up. */
static void req_retry(struct bb_req *r, const struct barbican_error *e)
{
	struct barbican *b = r->b;
	struct barbican_op *op = r->op;
	uint64_t delay_ms, now = bb_now_mono(b);
	int k;

	op->last = *e;
	if (r->attempt > b->retries) {
		struct barbican_error g = *e;
		barbican_error_set(&g, "%s (after %u attempts)", e->message,
			 r->attempt);
		bb_op_complete(op, &g);
		return;
	}
	if (r->have_retry_after)
		delay_ms = r->retry_after_sec * 1000;
	else
		delay_ms = barbican_backoff_ms(r->attempt, BACKOFF_BASE_MS, BACKOFF_MAX_MS,
					       bb_next_random(b));
	if (now + delay_ms * 1000 >= op->deadline) {
		struct barbican_error g = *e;
		if (r->have_retry_after)
			barbican_error_set(&g, "%s; Barbican asked to retry after "
				 "%llus, beyond barbican-deadline (%us)", e->message,
				 (unsigned long long) r->retry_after_sec, b->deadline_sec);
		bb_op_complete(op, &g);
		return;
	}
	b->stats.retries++;
	metrics_count(METRIC_RETRIES);
	log_debug("Barbican: %s; retrying in %llu ms.", e->message, (unsigned long long) delay_ms);
	k = sd_event_add_time(b->event, &r->backoff, CLOCK_MONOTONIC, now + delay_ms * 1000, 1000,
			      on_backoff, r);
	if (k < 0) {
		bb_op_complete(op, e);
		return;
	}
	r->state = REQ_BACKOFF;
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
			bb_token_drop(b);
		r->attempt--;
		bb_req_submit(r);
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

/*
 * The headers keyscope reads, through libcurl's header API (each name is matched whole and
 * case-insensitively; the last one wins): Retry-After, and Keystone's X-Subject-Token.
 * Returns 0, or -ENOMEM (the token could not be kept).
 */
static int req_read_headers(struct bb_req *r)
{
	struct curl_header *h;
	size_t vl;

	if (sym_curl_easy_header(r->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
		r->have_retry_after = barbican_parse_retry_after(h->value, (int64_t) time(NULL),
								  &r->retry_after_sec) >= 0;
	if (r->op->kind != OP_AUTH ||
	    sym_curl_easy_header(r->easy, "X-Subject-Token", 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
		return 0;
	/* An empty or huge one is refused after the transfer: no usable token. */
	vl = strlen(h->value);
	if (vl == 0 || vl > TOKEN_HEADER_MAX)
		return 0;
	if (secret_buf_new(vl + 1, &r->subject_token) < 0)
		return -ENOMEM;
	memcpy(r->subject_token.data, h->value, vl);
	r->subject_token.len = vl;
	return 0;
}

static void check_done(struct barbican *b)
{
	CURLMsg *m;
	int left;

	while ((m = sym_curl_multi_info_read(b->multi, &left))) {
		struct bb_req *r = NULL;
		CURLcode cc;

		if (m->msg != CURLMSG_DONE)
			continue;
		cc = m->data.result;
		(void) sym_curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **) &r);
		if (!r)
			continue;
		(void) sym_curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &r->status);
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
		if (req_read_headers(r) < 0 && cc == CURLE_OK)
			cc = CURLE_OUT_OF_MEMORY;
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
	(void) sym_curl_multi_socket_action(b->multi, fd, action, &running);
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
			(void) sym_curl_multi_assign(b->multi, fd, NULL);
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
		(void) sym_curl_multi_assign(b->multi, fd, s);
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

	(void) sym_curl_multi_socket_action(b->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(b);
	return 0;
}

static int on_curl_timer(CURLM *m, long timeout_ms, void *userp)
{
	struct barbican *b = userp;

	if (timeout_ms < 0)
		return sd_event_source_set_enabled(b->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
	/* 1 us accuracy: sd-event's default of 250 ms would add that to every exchange. */
	(void) sd_event_source_set_time(b->timer, bb_now_mono(b) + (uint64_t) timeout_ms * 1000);
	return sd_event_source_set_enabled(b->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

/* curl's multi handle and share, driven by b->event. Returns 0 or -errno (logged). */
int bb_http_init(struct barbican *b)
{
	int r;

	b->multi = sym_curl_multi_init();
	b->share = sym_curl_share_init();
	if (!b->multi || !b->share) {
		return log_oom();
	}
	/* One thread: no lock callbacks. Sessions and DNS are shared so that a new easy handle
	 * resumes TLS instead of a full handshake when a server closes connections. */
	sym_curl_share_setopt(b->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	sym_curl_share_setopt(b->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	sym_curl_multi_setopt(b->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	sym_curl_multi_setopt(b->multi, CURLMOPT_SOCKETDATA, b);
	sym_curl_multi_setopt(b->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	sym_curl_multi_setopt(b->multi, CURLMOPT_TIMERDATA, b);
	sym_curl_multi_setopt(b->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long) b->concurrency + 1);
	sym_curl_multi_setopt(b->multi, CURLMOPT_MAXCONNECTS, (long) b->concurrency + 2);
	r = sd_event_add_time(b->event, &b->timer, CLOCK_MONOTONIC, UINT64_MAX, 1, on_timer, b);
	if (r >= 0)
		r = sd_event_source_set_enabled(b->timer, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_defer(b->event, &b->pump, on_pump, b);
	if (r >= 0)
		r = sd_event_source_set_enabled(b->pump, SD_EVENT_OFF);
	if (r < 0) {
		return log_error_errno(r, "Cannot set up the Barbican client's event sources: %m");
	}
	return 0;
}

void bb_http_done(struct barbican *b)
{
	if (b->multi)
		sym_curl_multi_cleanup(b->multi);
	if (b->share)
		sym_curl_share_cleanup(b->share);
	b->multi = NULL;
	b->share = NULL;
	b->timer = sd_event_source_disable_unref(b->timer);
	b->pump = sd_event_source_disable_unref(b->pump);
}
