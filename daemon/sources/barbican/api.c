/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Barbican's REST endpoints as keyscope uses them: a secret's metadata and payload, the list
 * of the secrets delegated to the node (acl_only, paged), a new secret with read granted to the
 * node (clone-key), and consumers. Each builds an operation and ends in bb_op_submit().
 */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barbican-internal.h"
#include "log.h"
#include "proto.h"
#include "util.h"


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
	bb_op_complete(op, &e);
}

static void on_meta_reply(struct bb_req *r, const struct barbican_error *e)
{
	struct barbican_op *op = r->op;
	char err[256];

	if (e->error < 0) {
		bb_op_complete(op, e);
		return;
	}
	if (barbican_parse_meta((const char *) r->resp, r->resp_len, &op->meta, err,
				sizeof(err)) < 0) {
		struct barbican_error f = { .error = -EBADMSG, .cls = BARBICAN_BAD_REPLY,
					    .status = r->status };
		barbican_error_set(&f, "%s: unusable metadata from Barbican (%s)",
			 op->what, err);
		bb_op_complete(op, &f);
		return;
	}
	op->have_meta = true;
	op->reqs[r->slot] = bb_req_free(r);
	fetch_maybe_done(op);
}

static void on_payload_reply(struct bb_req *r, const struct barbican_error *e)
{
	struct barbican_op *op = r->op;
	int k;

	if (e->error < 0) {
		bb_op_complete(op, e);
		return;
	}
	if (r->resp_len > 0) {
		k = secret_buf_new(r->resp_len, &op->key);
		if (k < 0) {
			struct barbican_error f = { .error = k, .cls = BARBICAN_REFUSED };
			barbican_error_set(&f, "%s: out of memory", op->what);
			bb_op_complete(op, &f);
			return;
		}
		memcpy(op->key.data, r->resp, r->resp_len);
	}
	op->have_key = true;
	op->reqs[r->slot] = bb_req_free(r);
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
	k = bb_op_new(b, OP_FETCH, id, userdata, &op);
	if (k < 0)
		return k;
	op->cb.fetch = cb;
	snprintf(op->what, sizeof(op->what), "fetching secret %s", id);
	if (hint) {
		op->meta = *hint;
		op->have_meta = op->hinted = true;
	} else
		k = bb_op_add_req(op, 0, "GET", bb_url_printf("%s/secrets/%s", b->base, id),
				  "application/json", BARBICAN_META_MAX, false, true, on_meta_reply,
				  &rm);
	if (k >= 0)
		k = bb_op_add_req(op, 1, "GET", bb_url_printf("%s/secrets/%s/payload", b->base, id),
				  "application/octet-stream", BARBICAN_PAYLOAD_MAX, true, true,
				  on_payload_reply, &rp);
	return bb_op_submit(op, k, ret);
}

/* Adds the request for the page at op->offset (submitted by the caller). */
static int list_next_page(struct barbican_op *op);

static void on_list_reply(struct bb_req *r, const struct barbican_error *e)
{
	struct barbican_op *op = r->op;
	struct barbican_list page = {};
	struct barbican_error f = { .error = -EBADMSG, .cls = BARBICAN_BAD_REPLY };
	char err[256];
	int k;

	if (e->error < 0) {
		bb_op_complete(op, e);
		return;
	}
	k = barbican_parse_list((const char *) r->resp, r->resp_len, &page, err, sizeof(err));
	op->reqs[0] = bb_req_free(r);
	if (k < 0) {
		barbican_error_set(&f, "%s: unusable list page from Barbican (%s)",
			 op->what, err);
		bb_op_complete(op, &f);
		return;
	}
	if (op->n_items + page.n > LIST_MAX_ITEMS) {
		barbican_list_done(&page);
		barbican_error_set(&f, "%s: more than %u secrets", op->what,
			 LIST_MAX_ITEMS);
		bb_op_complete(op, &f);
		return;
	}
	if (op->n_items + page.n > op->alloc_items) {
		size_t a = op->n_items + page.n + 64;
		struct barbican_meta *m = realloc(op->items, a * sizeof(*m));
		if (!m) {
			barbican_list_done(&page);
			f.error = -ENOMEM;
			barbican_error_set(&f, "%s: out of memory", op->what);
			bb_op_complete(op, &f);
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
		bb_op_complete(op, &(struct barbican_error) {});
		return;
	}
	barbican_list_done(&page);
	k = list_next_page(op);
	if (k >= 0)
		bb_req_submit(op->reqs[0]);
	else {
		f.error = k;
		barbican_error_set(&f, "%s: out of memory", op->what);
		bb_op_complete(op, &f);
	}
}

static int list_next_page(struct barbican_op *op)
{
	struct bb_req *r;

	return bb_op_add_req(op, 0, "GET",
			     bb_url_printf("%s/secrets?acl_only=true&limit=%u&offset=%llu",
			     op->b->base, BARBICAN_LIST_PAGE,
			     (unsigned long long) op->offset),
			     "application/json", BARBICAN_BODY_MAX, false, true, on_list_reply, &r);
}

int barbican_list_delegated(struct barbican *b, barbican_list_cb cb, void *userdata,
			    struct barbican_op **ret)
{
	struct barbican_op *op;
	int k;

	k = bb_op_new(b, OP_LIST, NULL, userdata, &op);
	if (k < 0)
		return k;
	op->cb.list = cb;
	snprintf(op->what, sizeof(op->what), "listing the secrets delegated to this node");
	return bb_op_submit(op, list_next_page(op), ret);
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
		bb_op_complete(op, &f);
		return;
	}
	bb_op_complete(op, e);
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
		bb_op_complete(op, e);
		return;
	}
	k = barbican_parse_secret_ref((const char *) r->resp, r->resp_len, op->new_id, err,
				      sizeof(err));
	op->reqs[0] = bb_req_free(r);
	if (k < 0) {
		barbican_error_set(&f, "%s: Barbican's reply names no new secret "
			 "(%s)", op->what, err);
		bb_op_complete(op, &f);
		return;
	}
	snprintf(op->what, sizeof(op->what), "granting read on secret %s", op->new_id);
	k = bb_op_add_req(op, 0, "PUT", bb_url_printf("%s/secrets/%s/acl", b->base, op->new_id),
			  "application/json", BARBICAN_META_MAX, false, true, on_acl_reply, &acl);
	if (k >= 0)
		k = acl_body(b, &acl->body);
	if (k < 0) {
		f.error = k;
		barbican_error_set(&f, "stored secret %s, but cannot grant read "
			 "on it: out of memory", op->new_id);
		bb_op_complete(op, &f);
		return;
	}
	bb_req_submit(acl);
}

int bb_body_put(struct secret_buf *buf, size_t *pos, const char *s)
{
	size_t n = strlen(s);

	if (n > buf->len - *pos)
		return -ENOBUFS;
	memcpy(buf->data + *pos, s, n);
	*pos += n;
	return 0;
}

int bb_body_put_json_string(struct secret_buf *buf, size_t *pos, const char *s)
{
	_cleanup_json_ json_object *o = json_object_new_string(s);

	if (!o)
		return -ENOMEM;
	return bb_body_put(buf, pos, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
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
	k |= bb_body_put(&buf, &pos, "{\"name\":");
	k |= bb_body_put_json_string(&buf, &pos, name);
	k |= bb_body_put(&buf, &pos, ",\"secret_type\":");
	k |= bb_body_put_json_string(&buf, &pos, like->secret_type[0] ? like->secret_type
				     : "symmetric");
	if (like->algorithm[0]) {
		k |= bb_body_put(&buf, &pos, ",\"algorithm\":");
		k |= bb_body_put_json_string(&buf, &pos, like->algorithm);
	}
	if (like->mode[0]) {
		k |= bb_body_put(&buf, &pos, ",\"mode\":");
		k |= bb_body_put_json_string(&buf, &pos, like->mode);
	}
	snprintf(num, sizeof(num), ",\"bit_length\":%zu", key->len * 8);
	k |= bb_body_put(&buf, &pos, num);
	k |= bb_body_put(&buf, &pos, ",\"payload_content_type\":\"application/octet-stream\","
			 "\"payload_content_encoding\":\"base64\",\"payload\":\"");
	if (k != 0 || buf.len - pos < b64 + 3)
		return -ENOBUFS;
	pos += (size_t) EVP_EncodeBlock(buf.data + pos, key->data, (int) key->len);
	k |= bb_body_put(&buf, &pos, "\"}");
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
	k = bb_op_new(b, OP_STORE, NULL, userdata, &op);
	if (k < 0)
		return k;
	op->cb.store = cb;
	snprintf(op->what, sizeof(op->what), "storing a new secret in Barbican");
	k = bb_op_add_req(op, 0, "POST", bb_url_printf("%s/secrets", b->base), "application/json",
			  BARBICAN_META_MAX, false, true, on_store_reply, &r);
	if (k >= 0)
		k = store_body(like, key, name ?: "", &r->body);
	return bb_op_submit(op, k, ret);
}

/* ---- consumers ------------------------------------------------------------------------------ */

static void on_consumer_reply(struct bb_req *r, const struct barbican_error *e)
{
	bb_op_complete(r->op, e);
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
	k = bb_op_new(b, OP_CONSUMER, id, userdata, &op);
	if (k < 0)
		return k;
	op->cb.done = cb;
	snprintf(op->what, sizeof(op->what), "%s consumer %.64s of secret %s",
		 add ? "registering" : "removing", resource_id, id);
	k = bb_op_add_req(op, 0, add ? "POST" : "DELETE",
			  bb_url_printf("%s/secrets/%s/consumers", b->base, id), "application/json",
			  BARBICAN_META_MAX, false, true, on_consumer_reply, &r);
	if (k >= 0)
		k = secret_buf_new(128 + 6 * (strlen(service) + strlen(resource_id)), &r->body);
	if (k >= 0) {
		k |= bb_body_put(&r->body, &pos, "{\"service\":");
		k |= bb_body_put_json_string(&r->body, &pos, service);
		k |= bb_body_put(&r->body, &pos, ",\"resource_type\":\"volume\",\"resource_id\":");
		k |= bb_body_put_json_string(&r->body, &pos, resource_id);
		k |= bb_body_put(&r->body, &pos, "}");
		r->body.len = pos;
		k = k != 0 ? -ENOBUFS : 0;
	}
	return bb_op_submit(op, k, ret);
}
