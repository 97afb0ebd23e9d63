/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto.h"
#include "util.h"

#define fail format_error

int proto_frame_max(const uint8_t *buf, size_t len, size_t max, size_t *ret_len)
{
	size_t n = len < max + 1 ? len : max + 1;
	const uint8_t *nul = memchr(buf, 0, n);

	if (nul) {
		*ret_len = (size_t) (nul - buf);
		return 1;
	}
	return len > max ? -EMSGSIZE : 0;
}

int proto_frame(const uint8_t *buf, size_t len, size_t *ret_len)
{
	return proto_frame_max(buf, len, PROTO_MAX_MESSAGE, ret_len);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		size_t k;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			k = 1, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			k = 2, cp = c & 0x0f, min = 0x800;
		else if ((c & 0xf8) == 0xf0)
			k = 3, cp = c & 0x07, min = 0x10000;
		else
			return false;
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static int hex4(const char *p, size_t n, size_t i)
{
	return n - i < 4 ? -1 : hex4_value(p + i);
}

/*
 * Skips the string starting at p[*i] (a '"'), to just after its closing quote. json-c turns
 * "\u0000" into a NUL inside the string, which every C string use of it would cut at, and a
 * lone surrogate ("\ud800") into U+FFFD: refuse both, so every string (member names too) is
 * what it says on its full length. Returns false for those and for an unterminated string.
 */
static bool json_string_strict(const char *p, size_t n, size_t *i)
{
	size_t k = *i + 1;

	while (k < n && p[k] != '"') {
		int u, lo;

		if (p[k] != '\\') {
			k++;
			continue;
		}
		if (k + 1 >= n)
			return false;
		if (p[k + 1] != 'u') {
			k += 2;
			continue;
		}
		u = hex4(p, n, k + 2);
		if (u <= 0 || (u >= 0xdc00 && u <= 0xdfff))
			return false;	/* \u0000, a bad escape, or a lone low surrogate */
		k += 6;
		if (u >= 0xd800 && u <= 0xdbff) {
			if (n - k < 6 || p[k] != '\\' || p[k + 1] != 'u')
				return false;
			lo = hex4(p, n, k + 2);
			if (lo < 0xdc00 || lo > 0xdfff)
				return false;
			k += 6;
		}
	}
	if (k >= n)
		return false;
	*i = k + 1;
	return true;
}

/*
 * json-c's strict mode still takes single-quoted strings and NaN/Infinity. Check the tokens
 * outside strings ourselves: punctuation, white space, numbers, and the words true, false and
 * null, nothing else. Strings go through json_string_strict(); json-c checks the rest.
 */
static const char *json_tokens_strict(const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		char c = p[i];

		if (strchr("{}[]:, \t\r\n", c) && c) {
			i++;
		} else if (c == '"') {
			if (!json_string_strict(p, n, &i))
				return "a string holds \\u0000 or a lone surrogate, or does not end";
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			while (i < n && (strchr("+-.eE", p[i]) || (p[i] >= '0' && p[i] <= '9')) &&
			       p[i])
				i++;
		} else if (c >= 'a' && c <= 'z') {
			size_t j = i;
			while (j < n && p[j] >= 'a' && p[j] <= 'z')
				j++;
			if (!((j - i == 4 && (strneq(p + i, "true", 4) || strneq(p + i, "null", 4))) ||
			      (j - i == 5 && strneq(p + i, "false", 5))))
				return "unexpected token";
			i = j;
		} else
			return "unexpected token";
	}
	return NULL;
}

int proto_parse(const char *text, size_t len, json_object **ret, char *err, size_t errlen)
{
	static const struct proto_parse_opts opts = {
		.max = PROTO_MAX_MESSAGE, .depth = PROTO_MAX_DEPTH, .what = "message",
	};

	return proto_parse_full(text, len, &opts, ret, err, errlen);
}

int proto_parse_full(const char *text, size_t len, const struct proto_parse_opts *opts,
		     json_object **ret, char *err, size_t errlen)
{
	const char *what = opts->what, *why;
	json_tokener *tok;
	json_object *o;
	enum json_tokener_error e;
	size_t used;

	if (!text || len == 0)
		return fail(-EBADMSG, err, errlen, "empty %s", what);
	if (len > opts->max || len > INT_MAX)
		return fail(-EBADMSG, err, errlen, "%s larger than %zu bytes", what, opts->max);
	if (memchr(text, 0, len))
		return fail(-EBADMSG, err, errlen, "NUL byte inside the %s", what);
	if (!utf8_valid((const uint8_t *) text, len))
		return fail(-EBADMSG, err, errlen, "%s is not valid UTF-8", what);
	why = json_tokens_strict(text, len);
	if (why)
		return fail(-EBADMSG, err, errlen, "malformed JSON: %s", why);

	tok = json_tokener_new_ex(opts->depth);
	if (!tok)
		return fail(-ENOMEM, err, errlen, "out of memory");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int) len);
	e = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (!o || e != json_tokener_success) {
		json_object_put(o);
		if (e == json_tokener_continue)
			return fail(-EBADMSG, err, errlen, "incomplete JSON");
		return fail(-EBADMSG, err, errlen, "malformed JSON: %s",
			    json_tokener_error_desc(e));
	}
	for (; used < len; used++)
		if (!strchr(" \t\r\n", text[used])) {
			json_object_put(o);
			return fail(-EBADMSG, err, errlen, "trailing data after the JSON object");
		}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return fail(-EBADMSG, err, errlen, "%s is not a JSON object", what);
	}
	*ret = o;
	return 0;
}

static bool method_name_ok(const char *m, size_t n)
{
	if (strlen(m) != n)
		return false;	/* a NUL inside: "keyscope.Ping\u0000x" is no Ping */

	if (n == 0 || n > PROTO_METHOD_MAX || m[0] == '.' || m[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = m[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.'))
			return false;
	}
	return true;
}

int proto_request_check(json_object *o, struct proto_request *ret, char *err, size_t errlen)
{
	struct proto_request req = {};
	json_object *m = NULL, *p = NULL, *ps = NULL;

	json_object_object_foreach(o, key, val) {
		if (streq(key, "method"))
			m = val;
		else if (streq(key, "parameters"))
			p = val;
		else if (streq(key, "payload-size"))
			ps = val;
		else
			return fail(-EBADMSG, err, errlen, "unknown field '%.64s' in request", key);
	}
	if (!m || !json_object_is_type(m, json_type_string))
		return fail(-EBADMSG, err, errlen, "'method' must be a string");
	req.method = json_object_get_string(m);
	if (!method_name_ok(req.method, (size_t) json_object_get_string_len(m)))
		return fail(-EBADMSG, err, errlen, "'method' is not a valid method name");
	if (p && !json_object_is_type(p, json_type_object))
		return fail(-EBADMSG, err, errlen, "'parameters' must be an object");
	req.parameters = p;
	if (ps) {
		int64_t v;
		if (!json_object_is_type(ps, json_type_int))
			return fail(-EBADMSG, err, errlen, "'payload-size' must be an integer");
		v = json_object_get_int64(ps);
		if (v < 1 || v > PROTO_MAX_PAYLOAD)
			return fail(-EBADMSG, err, errlen, "'payload-size' must be 1..%d",
				    PROTO_MAX_PAYLOAD);
		req.payload_size = (unsigned) v;
	}
	*ret = req;
	return 0;
}

static json_object *get_field(json_object *params, const char *field)
{
	json_object *v = NULL;

	if (!params || !json_object_object_get_ex(params, field, &v))
		return NULL;
	return v;
}

int proto_get_string(json_object *params, const char *field, bool required, size_t max,
		     const char **ret, char *err, size_t errlen)
{
	json_object *v = get_field(params, field);
	const char *s;
	size_t n;

	if (!v || json_object_is_type(v, json_type_null))
		return required ? fail(-ENOENT, err, errlen, "missing parameter '%s'", field) : 0;
	if (!json_object_is_type(v, json_type_string))
		return fail(-EBADMSG, err, errlen, "parameter '%s' must be a string", field);
	s = json_object_get_string(v);
	n = (size_t) json_object_get_string_len(v);
	if (n > max)
		return fail(-EBADMSG, err, errlen, "parameter '%s' longer than %zu bytes", field,
			    max);
	if (strlen(s) != n)
		return fail(-EBADMSG, err, errlen, "parameter '%s' contains a NUL byte", field);
	*ret = s;
	return 0;
}

int proto_get_uint(json_object *params, const char *field, bool required, uint64_t max,
		   uint64_t *ret, char *err, size_t errlen)
{
	json_object *v = get_field(params, field);
	int64_t i;

	if (!v || json_object_is_type(v, json_type_null))
		return required ? fail(-ENOENT, err, errlen, "missing parameter '%s'", field) : 0;
	if (!json_object_is_type(v, json_type_int))
		return fail(-EBADMSG, err, errlen, "parameter '%s' must be an integer", field);
	/* json-c saturates numbers it cannot hold: treat the saturated value as out of range. */
	errno = 0;
	i = json_object_get_int64(v);
	if (errno != 0 || i < 0 || i == INT64_MAX || (uint64_t) i > max)
		return fail(-EBADMSG, err, errlen, "parameter '%s' out of range 0..%llu", field,
			    (unsigned long long) max);
	*ret = (uint64_t) i;
	return 0;
}

int proto_get_bool(json_object *params, const char *field, bool required, bool *ret,
		   char *err, size_t errlen)
{
	json_object *v = get_field(params, field);

	if (!v || json_object_is_type(v, json_type_null))
		return required ? fail(-ENOENT, err, errlen, "missing parameter '%s'", field) : 0;
	if (!json_object_is_type(v, json_type_boolean))
		return fail(-EBADMSG, err, errlen, "parameter '%s' must be true or false", field);
	*ret = json_object_get_boolean(v);
	return 0;
}

int proto_check_fields(json_object *params, const char *const *allowed, char *err,
		       size_t errlen)
{
	if (!params)
		return 0;
	json_object_object_foreach(params, key, val) {
		bool ok = false;
		(void) val;
		for (const char *const *a = allowed; *a; a++)
			if (streq(*a, key)) {
				ok = true;
				break;
			}
		if (!ok)
			return fail(-EBADMSG, err, errlen, "unknown parameter '%.64s'", key);
	}
	return 0;
}

const char *proto_to_string(json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						     JSON_C_TO_STRING_NOSLASHESCAPE);
}

const char *proto_reply_error(json_object *reply, const char **ret_message)
{
	json_object *e, *p, *m;

	if (!json_object_object_get_ex(reply, "error", &e))
		return NULL;
	if (ret_message) {
		*ret_message = NULL;
		if (json_object_object_get_ex(reply, "parameters", &p) &&
		    json_object_object_get_ex(p, "message", &m))
			*ret_message = json_object_get_string(m);
	}
	return json_object_is_type(e, json_type_string) ? json_object_get_string(e)
							: "keyscope.ProtocolError";
}

/* ---- client ------------------------------------------------------------------------------ */

#define CLIENT_BUF (PROTO_MAX_MESSAGE + 1 + PROTO_MAX_PAYLOAD)

int proto_client_connect(const char *path, unsigned timeout_ms, struct proto_client *ret)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -EBADF;
	uint8_t *buf;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
		return -errno;
	buf = secret_alloc(CLIENT_BUF);
	if (!buf)
		return -ENOMEM;
	*ret = (struct proto_client) {
		.fd = TAKE_FD(fd), .buf = buf, .alloc = CLIENT_BUF, .timeout_ms = timeout_ms,
	};
	return 0;
}

void proto_client_done(struct proto_client *c)
{
	c->fd = safe_close(c->fd);
	c->buf = secret_free(c->buf);
	c->len = 0;
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		uint64_t now = now_usec();
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int) ((deadline - now + 999) / 1000));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r > 0)
			return 0;
	}
}

int proto_send(struct proto_client *c, const char *text, size_t len, const void *payload,
	       size_t payload_len)
{
	struct iovec iov[3] = {
		{ (void *) text, len }, { (void *) "", 1 }, { (void *) payload, payload_len },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = payload_len ? 3 : 2 };
	uint64_t deadline = now_usec() + (uint64_t) c->timeout_ms * 1000;

	while (mh.msg_iovlen > 0) {
		ssize_t k = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		size_t left;

		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				int r = wait_fd(c->fd, POLLOUT, deadline);
				if (r < 0)
					return r;
				continue;
			}
			return -errno;
		}
		left = (size_t) k;
		while (mh.msg_iovlen > 0 && left >= mh.msg_iov->iov_len) {
			left -= mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen > 0) {
			mh.msg_iov->iov_base = (char *) mh.msg_iov->iov_base + left;
			mh.msg_iov->iov_len -= left;
		}
	}
	return 0;
}

/* Doubles the (secret) receive buffer, up to one largest reply and its payload. */
static int client_grow(struct proto_client *c)
{
	size_t max = PROTO_MAX_REPLY + 1 + PROTO_MAX_PAYLOAD, n = c->alloc * 2;
	uint8_t *b;

	if (c->alloc >= max)
		return -EMSGSIZE;
	if (n > max)
		n = max;
	b = secret_alloc(n);
	if (!b)
		return -ENOMEM;
	memcpy(b, c->buf, c->len);
	secret_free(c->buf);
	c->buf = b;
	c->alloc = n;
	return 0;
}

/* proto_recv()'s reader: the reply's tree, the size of the payload that follows it. */
static int parse_tree(const char *text, size_t len, void *userdata)
{
	static const struct proto_parse_opts reply_opts = {
		.max = PROTO_MAX_REPLY, .depth = PROTO_MAX_DEPTH, .what = "message",
	};
	json_object **o = userdata, *ps;
	char err[256];
	int r;

	r = proto_parse_full(text, len, &reply_opts, o, err, sizeof(err));
	if (r < 0)
		return r;
	if (json_object_object_get_ex(*o, "payload-size", &ps)) {
		int64_t v;
		/* An integer, as the daemon's reader requires: json-c would turn "32" into 32. */
		if (!json_object_is_type(ps, json_type_int))
			return -EBADMSG;
		v = json_object_get_int64(ps);
		if (v < 1 || v > PROTO_MAX_PAYLOAD)
			return -EBADMSG;
		return (int) v;
	}
	return 0;
}

int proto_recv_with(struct proto_client *c, proto_reader_fn reader, void *userdata,
		    struct secret_buf *ret_payload)
{
	uint64_t deadline = now_usec() + (uint64_t) c->timeout_ms * 1000;
	size_t len = 0, need = 0, scanned = 0;
	bool framed = false;
	int r;

	for (;;) {
		ssize_t k;

		/* Scan only the bytes not scanned yet: a long reply comes in many reads. */
		r = framed ? 1 : proto_frame_max(c->buf + scanned, c->len - scanned,
						 PROTO_MAX_REPLY - scanned, &len);
		if (r < 0)
			return -EBADMSG;
		if (r > 0) {
			if (!framed) {
				len += scanned;
				r = reader((const char *) c->buf, len, userdata);
				if (r < 0)
					return r;
				framed = true;
				need = len + 1 + (size_t) r;
			}
			if (c->len >= need)
				break;
		} else
			scanned = c->len;
		if (c->len == c->alloc) {
			r = client_grow(c);
			if (r < 0)
				return r;
		}
		r = wait_fd(c->fd, POLLIN, deadline);
		if (r < 0)
			return r;
		k = recv(c->fd, c->buf + c->len, c->alloc - c->len, MSG_DONTWAIT);
		if (k < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (k == 0)
			return -ECONNRESET;
		c->len += (size_t) k;
	}

	if (need > len + 1) {
		size_t plen = need - len - 1;
		if (ret_payload) {
			r = secret_buf_new(plen, ret_payload);
			if (r < 0)
				return r;
			memcpy(ret_payload->data, c->buf + len + 1, plen);
		}
	}
	/* Keep whatever came after this message (pipelined replies); wipe what we consumed. */
	memmove(c->buf, c->buf + need, c->len - need);
	secret_erase(c->buf + c->len - need, need);
	c->len -= need;
	return 0;
}

int proto_recv(struct proto_client *c, json_object **ret, struct secret_buf *ret_payload)
{
	_cleanup_json_ json_object *o = NULL;
	int r = proto_recv_with(c, parse_tree, &o, ret_payload);

	if (r < 0)
		return r;
	*ret = TAKE_PTR(o);
	return 0;
}

int proto_call(struct proto_client *c, const char *method, json_object *params,
	       const void *payload, size_t payload_len, json_object **ret,
	       struct secret_buf *ret_payload)
{
	_cleanup_json_ json_object *req = json_object_new_object();
	const char *text;
	int r;

	if (!req)
		return -ENOMEM;
	if (payload_len > PROTO_MAX_PAYLOAD)
		return -EINVAL;
	json_object_object_add(req, "method", json_object_new_string(method));
	if (params)
		json_object_object_add(req, "parameters", json_object_get(params));
	if (payload_len)
		json_object_object_add(req, "payload-size", json_object_new_int((int) payload_len));
	text = proto_to_string(req);
	r = proto_send(c, text, strlen(text), payload, payload_len);
	if (r < 0)
		return r;
	return proto_recv(c, ret, ret_payload);
}
