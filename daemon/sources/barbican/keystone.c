/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Keystone: the node's application credential (app-credential-file, root-only) exchanged for
 * a token (POST /v3/auth/tokens), renewed TOKEN_MARGIN_SEC before it expires or once when
 * Barbican answers 401. Requests that need a token wait for it in b->wait_token.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "barbican-internal.h"
#include "log.h"
#include "util.h"


bool bb_token_valid(struct barbican *b)
{
	return b->auth == BARBICAN_AUTH_NONE || (b->token.len > 0 && bb_now_mono(b) < b->token_expiry);
}

void bb_token_drop(struct barbican *b)
{
	secret_buf_done(&b->token);
	b->token_expiry = 0;
}

void bb_auth_finished(struct barbican *b, const struct barbican_error *e)
{
	struct bb_req *r;

	/* Take the head each time: failing one operation frees its other request too, which
	 * leaves this list by itself. */
	while ((r = b->wait_token)) {
		bb_list_unlink(&b->wait_token, NULL, r);
		r->state = REQ_IDLE;
		if (e->error == 0) {
			bb_queue_append(r);
		} else {
			struct barbican_error f = *e;
			barbican_error_set(&f, "%s: %s", r->op->what, e->message);
			if (e->cls == BARBICAN_REFUSED)
				f.cls = BARBICAN_AUTH;
			bb_op_complete(r->op, &f);
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
		bb_op_complete(op, e);
		return;
	}
	if (r->subject_token.len == 0 ||
	    barbican_parse_token((const char *) r->resp, r->resp_len, &info, err, sizeof(err)) < 0) {
		barbican_error_set(&f, "%s: Keystone at %s sent no usable token "
			 "(%s)", op->what, b->tokens_url,
			 r->subject_token.len == 0 ? "no X-Subject-Token header" : err);
		bb_op_complete(op, &f);
		return;
	}
	left = info.expires_at - (int64_t) time(NULL);
	if (left <= TOKEN_MARGIN_SEC / 6) {
		barbican_error_set(&f, "%s: Keystone's token expires in %llds; "
			 "check the clocks of this node and Keystone", op->what, (long long) left);
		bb_op_complete(op, &f);
		return;
	}
	secret_buf_done(&b->token);
	b->token = r->subject_token;
	r->subject_token = (struct secret_buf) {};	/* transferred */
	b->token_expiry = bb_now_mono(b) +
			  (uint64_t) (left > 2 * TOKEN_MARGIN_SEC ? left - TOKEN_MARGIN_SEC
								  : left / 2) * 1000000;
	b->token_gen++;
	b->stats.auths++;
	snprintf(b->token_user, sizeof(b->token_user), "%s", info.user_id);
	log_info("Authenticated to Keystone with application credential %s as user %s%s%s; token "
		 "renewed in %llds.", b->app_id, info.user_id,
		 info.project_id[0] ? " in project " : "", info.project_id,
		 (long long) ((b->token_expiry - bb_now_mono(b)) / 1000000));
	bb_op_complete(op, e);
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

void bb_ensure_auth(struct barbican *b)
{
	struct barbican_op *op;
	struct bb_req *r;
	int k;

	if (b->auth_op || b->auth != BARBICAN_AUTH_APP_CREDENTIAL)
		return;
	k = bb_op_new(b, OP_AUTH, NULL, NULL, &op);
	if (k < 0)
		goto fail;
	snprintf(op->what, sizeof(op->what), "authenticating to Keystone");
	k = bb_op_add_req(op, 0, "POST", strdup(b->tokens_url), "application/json",
			  BARBICAN_BODY_MAX, false, false, on_auth_reply, &r);
	if (k >= 0)
		k = auth_body(b, &r->body);
	if (k < 0) {
		bb_op_free(op);
		goto fail;
	}
	b->auth_op = op;
	bb_req_submit(r);
	return;
fail:
	{
		struct barbican_error e = { .error = k, .cls = BARBICAN_AUTH };
		barbican_error_set(&e, "cannot set up authentication: %s",
			 strerror(-k));
		bb_auth_finished(b, &e);
	}
}

/* Refuses a file that is not ours or that others may read (barbican-internal.h). */
int bb_read_app_credential(struct barbican *b, const char *path)
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
