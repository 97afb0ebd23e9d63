/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Pure parsers and checks of Barbican's and Keystone's replies (contracts in barbican.h).
 * Everything here reads untrusted bytes from the network: bounded sizes, strict JSON, typed
 * fields, all-or-nothing. No I/O, no logging: tests/fuzz/fuzz-barbican-*.c run it directly.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "barbican.h"
#include "curl-dl.h"
#include "kvfile.h"
#include "proto.h"
#include "util.h"

#define fail format_error

/*
 * The control protocol's parser (strict JSON and UTF-8, one object, nothing after it) with
 * Barbican's bounds. Barbican and Keystone send valid UTF-8 (names may be any language);
 * anything else is a broken or impostor server, refused as a bad reply.
 */
static const struct proto_parse_opts meta_json = {
	.max = BARBICAN_META_MAX, .depth = BARBICAN_JSON_DEPTH, .what = "reply",
};
static const struct proto_parse_opts body_json = {
	.max = BARBICAN_BODY_MAX, .depth = BARBICAN_JSON_DEPTH, .what = "reply",
};

/* Copies an optional string field; null and absence give "". Longer than size: an error. */
static int get_str(json_object *o, const char *field, char *dst, size_t size, char *err,
		   size_t errlen)
{
	json_object *v;
	const char *s;
	size_t n;

	dst[0] = 0;
	if (!json_object_object_get_ex(o, field, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return fail(-EBADMSG, err, errlen, "'%s' is not a string", field);
	s = json_object_get_string(v);
	n = (size_t) json_object_get_string_len(v);
	if (n >= size)
		return fail(-EBADMSG, err, errlen, "'%s' longer than %zu bytes", field, size - 1);
	if (strlen(s) != n)
		return fail(-EBADMSG, err, errlen, "'%s' contains a NUL byte", field);
	memcpy(dst, s, n + 1);
	return 0;
}

/* Names are shown in terminals: C0/C1 controls and DEL become '?'; truncated to the buffer. */
static void get_name(json_object *o, const char *field, char *dst, size_t size)
{
	json_object *v;
	const char *s;
	size_t n, i;

	dst[0] = 0;
	if (!json_object_object_get_ex(o, field, &v) || !json_object_is_type(v, json_type_string))
		return;
	s = json_object_get_string(v);
	n = strnlen(s, size - 1);
	/*
	 * Do not cut a UTF-8 sequence in two: when s[n] continues one, drop that sequence's
	 * bytes before n too (the text is valid UTF-8, so at most three). s[n] is 0 when uncut.
	 */
	while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
		n--;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char) s[i];
		dst[i] = (char) (c < 0x20 || c == 0x7f ? '?' : c);
		/* U+0080..U+009F are C1 controls: 0xc2 0x80..0x9f */
		if (c == 0xc2 && i + 1 < n && (unsigned char) s[i + 1] < 0xa0) {
			dst[i] = '?';
			dst[++i] = '?';
		}
	}
	dst[i] = 0;
}

static int get_uint(json_object *o, const char *field, uint64_t max, uint64_t *ret, char *err,
		    size_t errlen)
{
	json_object *v;
	int64_t i;

	*ret = 0;
	if (!json_object_object_get_ex(o, field, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_int))
		return fail(-EBADMSG, err, errlen, "'%s' is not an integer", field);
	errno = 0;
	i = json_object_get_int64(v);
	if (errno != 0 || i < 0 || i == INT64_MAX || (uint64_t) i > max)
		return fail(-EBADMSG, err, errlen, "'%s' out of range", field);
	*ret = (uint64_t) i;
	return 0;
}

static int get_time(json_object *o, const char *field, int64_t *ret, char *err, size_t errlen)
{
	char buf[64];
	int r;

	*ret = 0;
	r = get_str(o, field, buf, sizeof(buf), err, errlen);
	if (r < 0 || !buf[0])
		return r;
	if (barbican_parse_time(buf, ret) < 0)
		return fail(-EBADMSG, err, errlen, "'%s' is not an ISO 8601 time", field);
	return 0;
}

/* The last path component of a secret_ref, which must be a key-id. */
static int ref_to_id(const char *ref, char ret_id[static KEYID_MAX + 1], char *err,
		     size_t errlen)
{
	const char *slash = strrchr(ref, '/');
	const char *id = slash ? slash + 1 : ref;

	if (!slash || !strstr(ref, "/secrets/") || slash - strstr(ref, "/secrets/") != 8)
		return fail(-EBADMSG, err, errlen, "'secret_ref' is not a .../secrets/<id> URL");
	if (!keyid_is_valid(id))
		return fail(-EBADMSG, err, errlen, "'secret_ref' does not end in a valid key-id");
	strcpy(ret_id, id);
	return 0;
}

static int meta_from_object(json_object *o, struct barbican_meta *ret, char *err, size_t errlen)
{
	struct barbican_meta m = {};
	char ref[1024];
	json_object *ct, *d;
	uint64_t bits;
	int r;

	if (!json_object_is_type(o, json_type_object))
		return fail(-EBADMSG, err, errlen, "secret is not a JSON object");
	if ((r = get_str(o, "secret_ref", ref, sizeof(ref), err, errlen)) < 0 ||
	    (r = get_str(o, "secret_type", m.secret_type, sizeof(m.secret_type), err, errlen)) < 0 ||
	    (r = get_str(o, "status", m.status, sizeof(m.status), err, errlen)) < 0 ||
	    (r = get_str(o, "algorithm", m.algorithm, sizeof(m.algorithm), err, errlen)) < 0 ||
	    (r = get_str(o, "mode", m.mode, sizeof(m.mode), err, errlen)) < 0 ||
	    (r = get_uint(o, "bit_length", 1u << 20, &bits, err, errlen)) < 0 ||
	    (r = get_time(o, "expiration", &m.expiration, err, errlen)) < 0 ||
	    (r = get_time(o, "created", &m.created, err, errlen)) < 0)
		return r;
	if (ref[0] && (r = ref_to_id(ref, m.id, err, errlen)) < 0)
		return r;
	m.bit_length = (unsigned) bits;
	get_name(o, "name", m.name, sizeof(m.name));
	if (json_object_object_get_ex(o, "content_types", &ct) &&
	    !json_object_is_type(ct, json_type_null)) {
		if (!json_object_is_type(ct, json_type_object))
			return fail(-EBADMSG, err, errlen, "'content_types' is not an object");
		if (json_object_object_get_ex(ct, "default", &d) &&
		    (r = get_str(ct, "default", m.content_type, sizeof(m.content_type), err,
				 errlen)) < 0)
			return r;
	}
	if (!m.status[0])
		return fail(-EBADMSG, err, errlen, "no 'status' in the secret's metadata");
	*ret = m;
	return 0;
}

int barbican_parse_meta(const char *text, size_t len, struct barbican_meta *ret, char *err,
			size_t errlen)
{
	_cleanup_json_ json_object *o = NULL;
	int r;

	r = proto_parse_full(text, len, &meta_json, &o, err, errlen);
	if (r < 0)
		return r;
	return meta_from_object(o, ret, err, errlen);
}

int barbican_check_meta(const struct barbican_meta *m, const char *id, size_t payload_len,
			int64_t now, char *err, size_t errlen)
{
	if (!streq(m->secret_type, "symmetric") && !streq(m->secret_type, "passphrase"))
		return fail(-EMEDIUMTYPE, err, errlen,
			    "secret %s is of type '%s'; keyscope uses 'symmetric' (or 'passphrase') "
			    "secrets", id, m->secret_type[0] ? m->secret_type : "(none)");
	if (!streq(m->status, "ACTIVE"))
		return fail(-EMEDIUMTYPE, err, errlen,
			    "secret %s has status '%s', not ACTIVE; it has no usable payload yet",
			    id, m->status);
	if (m->expiration != 0 && m->expiration <= now)
		return fail(-EMEDIUMTYPE, err, errlen,
			    "secret %s expired (its expiration is past); ask its owner for a new "
			    "one", id);
	if (m->bit_length != 256 && m->bit_length != 512)
		return fail(-EMEDIUMTYPE, err, errlen,
			    "secret %s has bit_length %u; keyscope keys are 256 or 512 bits", id,
			    m->bit_length);
	if (m->content_type[0] && !streq(m->content_type, "application/octet-stream"))
		return fail(-EMEDIUMTYPE, err, errlen,
			    "secret %s is stored as '%.48s', not application/octet-stream", id,
			    m->content_type);
	if (payload_len != 0 && payload_len * 8 != m->bit_length)
		return fail(-EMEDIUMTYPE, err, errlen,
			    "secret %s claims bit_length %u but its payload is %zu bytes (%zu bits); "
			    "refusing a key whose length does not match its metadata", id,
			    m->bit_length, payload_len, payload_len * 8);
	return 0;
}

void barbican_list_done(struct barbican_list *l)
{
	if (!l)
		return;
	free(l->items);
	*l = (struct barbican_list) {};
}

int barbican_parse_list(const char *text, size_t len, struct barbican_list *ret, char *err,
			size_t errlen)
{
	_cleanup_json_ json_object *o = NULL;
	_cleanup_free_ struct barbican_meta *items = NULL;
	json_object *a;
	uint64_t total;
	size_t n;
	int r;

	r = proto_parse_full(text, len, &body_json, &o, err, errlen);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(o, "secrets", &a) || !json_object_is_type(a, json_type_array))
		return fail(-EBADMSG, err, errlen, "no 'secrets' array in the list");
	r = get_uint(o, "total", UINT32_MAX, &total, err, errlen);
	if (r < 0)
		return r;
	n = json_object_array_length(a);
	if (n > 10 * BARBICAN_LIST_PAGE)
		return fail(-EBADMSG, err, errlen, "list page of %zu secrets", n);
	if (n > 0) {
		items = calloc(n, sizeof(*items));
		if (!items)
			return fail(-ENOMEM, err, errlen, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		char e[256];
		r = meta_from_object(json_object_array_get_idx(a, i), &items[i], e, sizeof(e));
		if (r < 0)
			return fail(r, err, errlen, "secret %zu: %s", i, e);
		if (!items[i].id[0])
			return fail(-EBADMSG, err, errlen, "secret %zu has no 'secret_ref'", i);
	}
	*ret = (struct barbican_list) { .items = TAKE_PTR(items), .n = n, .total = total };
	return 0;
}

int barbican_parse_token(const char *text, size_t len, struct barbican_token_info *ret,
			 char *err, size_t errlen)
{
	_cleanup_json_ json_object *o = NULL;
	struct barbican_token_info t = {};
	json_object *tok, *user, *project;
	int r;

	r = proto_parse_full(text, len, &body_json, &o, err, errlen);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(o, "token", &tok) || !json_object_is_type(tok, json_type_object))
		return fail(-EBADMSG, err, errlen, "no 'token' object");
	r = get_time(tok, "expires_at", &t.expires_at, err, errlen);
	if (r < 0)
		return r;
	if (t.expires_at == 0)
		return fail(-EBADMSG, err, errlen, "token has no 'expires_at'");
	if (!json_object_object_get_ex(tok, "user", &user) ||
	    !json_object_is_type(user, json_type_object))
		return fail(-EBADMSG, err, errlen, "token has no 'user'");
	r = get_str(user, "id", t.user_id, sizeof(t.user_id), err, errlen);
	if (r < 0)
		return r;
	if (!t.user_id[0] || strpbrk(t.user_id, " \t\r\n\"\\,"))
		return fail(-EBADMSG, err, errlen, "token's user has no usable 'id'");
	if (json_object_object_get_ex(tok, "project", &project) &&
	    json_object_is_type(project, json_type_object)) {
		r = get_str(project, "id", t.project_id, sizeof(t.project_id), err, errlen);
		if (r < 0)
			return r;
	}
	*ret = t;
	return 0;
}

int barbican_parse_secret_ref(const char *text, size_t len, char ret_id[static KEYID_MAX + 1],
			      char *err, size_t errlen)
{
	_cleanup_json_ json_object *o = NULL;
	char ref[1024];
	int r;

	r = proto_parse_full(text, len, &meta_json, &o, err, errlen);
	if (r < 0)
		return r;
	r = get_str(o, "secret_ref", ref, sizeof(ref), err, errlen);
	if (r < 0)
		return r;
	if (!ref[0])
		return fail(-EBADMSG, err, errlen, "no 'secret_ref' in the reply");
	return ref_to_id(ref, ret_id, err, errlen);
}

static int digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return 0;
}

int barbican_parse_time(const char *s, int64_t *ret)
{
	struct tm tm = {};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p = s;
	time_t t;

	if (!s || digits(&p, 4, &y) < 0 || *p++ != '-' || digits(&p, 2, &mo) < 0 || *p++ != '-' ||
	    digits(&p, 2, &d) < 0 || (*p != 'T' && *p != ' '))
		return -EINVAL;
	p++;
	if (digits(&p, 2, &h) < 0 || *p++ != ':' || digits(&p, 2, &mi) < 0 || *p++ != ':' ||
	    digits(&p, 2, &sec) < 0)
		return -EINVAL;
	if (*p == '.') {
		size_t n = strspn(++p, "0123456789");
		if (n == 0 || n > 9)
			return -EINVAL;
		p += n;
	}
	if (*p == 'Z')
		p++;
	else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, 2, &oh) < 0)
			return -EINVAL;
		if (*p == ':')
			p++;
		if (digits(&p, 2, &om) < 0 || oh > 23 || om > 59)
			return -EINVAL;
	}
	if (*p || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (t == (time_t) -1)
		return -EINVAL;
	*ret = (int64_t) t - sign * (oh * 3600 + om * 60);
	return 0;
}

int barbican_parse_retry_after(const char *s, int64_t now, uint64_t *ret_sec)
{
	uint64_t v = 0;
	time_t t;

	if (!s)
		return -EINVAL;
	s += strspn(s, " \t");
	if (*s >= '0' && *s <= '9') {
		for (; *s >= '0' && *s <= '9'; s++) {
			v = v * 10 + (uint64_t) (*s - '0');
			if (v > 86400)
				return -EINVAL;
		}
		if (s[strspn(s, " \t\r\n")])
			return -EINVAL;
		*ret_sec = v;
		return 0;
	}
	/* An HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT"), read by libcurl's date parser. */
	if (curl_dl_open() < 0)
		return -EINVAL;	/* only without a Barbican source: nothing asks then */
	t = sym_curl_getdate(s, NULL);
	if (t == (time_t) -1)
		return -EINVAL;
	if ((int64_t) t <= now)
		*ret_sec = 0;
	else if ((int64_t) t - now > 86400)
		return -EINVAL;
	else
		*ret_sec = (uint64_t) ((int64_t) t - now);
	return 0;
}

struct app_credential {
	char id[256];
	size_t id_size;
	struct secret_buf secret;
	char *err;
	size_t errlen;
};

/* -EINVAL (with the reason in a->err) for a pair it refuses. */
static int app_credential_pair(void *userdata, unsigned n, const char *key, char *value)
{
	struct app_credential *a = userdata;
	size_t vl = strlen(value);
	int r;

	if (streq(key, "id")) {
		if (vl == 0 || vl >= sizeof(a->id) || vl >= a->id_size || strpbrk(value, " \t\"\\"))
			return fail(-EINVAL, a->err, a->errlen, "line %u: invalid id", n);
		memcpy(a->id, value, vl + 1);
		return 0;
	}
	if (!streq(key, "secret"))
		return fail(-EINVAL, a->err, a->errlen, "line %u: unknown key '%.32s'", n, key);
	if (vl == 0 || vl > 1024)
		return fail(-EINVAL, a->err, a->errlen, "line %u: invalid secret", n);
	for (size_t i = 0; i < vl; i++)
		if ((unsigned char) value[i] < 0x20 || value[i] == '"' || value[i] == '\\' ||
		    value[i] == 0x7f)
			return fail(-EINVAL, a->err, a->errlen, "line %u: the secret holds a "
				    "character that cannot be sent as is (quote, backslash or "
				    "control)", n);
	secret_buf_done(&a->secret);
	r = secret_buf_new(vl + 1, &a->secret);
	if (r < 0)
		return fail(r, a->err, a->errlen, "out of memory");
	memcpy(a->secret.data, value, vl);
	a->secret.len = vl;
	return 0;
}

int barbican_parse_app_credential(const char *text, size_t len, char *ret_id, size_t id_size,
				  struct secret_buf *ret_secret, char *err, size_t errlen)
{
	_cleanup_secret_buf_ struct secret_buf copy = {};
	struct app_credential a = { .id_size = id_size, .err = err, .errlen = errlen };
	unsigned line;
	int r;

	if (len == 0 || len > 64 * 1024 || memchr(text, 0, len))
		return fail(-EBADMSG, err, errlen, "empty, too large or binary file");
	r = secret_buf_new(len + 1, &copy);
	if (r < 0)
		return fail(r, err, errlen, "out of memory");
	memcpy(copy.data, text, len);
	r = kvfile_parse((char *) copy.data, len, 64 * 1024, 0, app_credential_pair, &a, &line);
	if (r == -EINVAL)
		r = -EBADMSG;	/* the reason is in err */
	else if (r == -EBADMSG)
		r = fail(-EBADMSG, err, errlen, "line %u: expected 'key = value'", line);
	else if (r >= 0 && (!a.id[0] || !a.secret.data))
		r = fail(-EBADMSG, err, errlen, "needs both 'id = ...' and 'secret = ...'");
	if (r < 0) {
		secret_buf_done(&a.secret);
		return r;
	}
	memcpy(ret_id, a.id, strlen(a.id) + 1);
	*ret_secret = a.secret;
	return 0;	/* a.secret transferred */
}

/* ---- errors ----------------------------------------------------------------------------- */

static bool curl_is_tls(int cc)
{
	return cc == CURLE_PEER_FAILED_VERIFICATION || cc == CURLE_SSL_CACERT_BADFILE ||
	       cc == CURLE_SSL_CERTPROBLEM || cc == CURLE_SSL_CIPHER ||
	       cc == CURLE_SSL_ENGINE_NOTFOUND || cc == CURLE_SSL_ENGINE_SETFAILED ||
	       cc == CURLE_SSL_ISSUER_ERROR || cc == CURLE_SSL_CRL_BADFILE ||
	       cc == CURLE_SSL_PINNEDPUBKEYNOTMATCH || cc == CURLE_SSL_INVALIDCERTSTATUS;
}

static void set_msg(char *m, size_t ml, const char *fmt, ...) _printf_(3, 4);
static void set_msg(char *m, size_t ml, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void) vsnprintf(m, ml, fmt, ap);
	va_end(ap);
}

bool barbican_should_retry(long status, int cc)
{
	if (cc != CURLE_OK)
		return cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
		       cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_RECV_ERROR ||
		       cc == CURLE_SEND_ERROR || cc == CURLE_GOT_NOTHING ||
		       cc == CURLE_PARTIAL_FILE || cc == CURLE_SSL_CONNECT_ERROR ||
		       cc == CURLE_HTTP2 || cc == CURLE_HTTP2_STREAM;
	return status == 429 || (status >= 500 && status <= 599);
}

uint64_t barbican_backoff_ms(unsigned n, uint64_t base_ms, uint64_t max_ms, uint32_t rnd)
{
	uint64_t d = base_ms;

	for (unsigned i = 1; i < n && d < max_ms; i++)
		d *= 2;
	if (d > max_ms)
		d = max_ms;
	return d / 2 + (d / 2 > 0 ? rnd % (d / 2 + 1) : 0);
}

/* libcurl's text for code cc; the parsers run without a Barbican source too (tests). */
static const char *curl_text(int cc)
{
	return curl_dl_open() >= 0 ? sym_curl_easy_strerror((CURLcode) cc) : "libcurl error";
}

/* A transfer that ended without an HTTP answer (curl code cc). */
static void error_from_curl(int cc, const char *what, const char *url, struct barbican_error *e)
{
	char *m = e->message;
	size_t ml = sizeof(e->message);

	if (curl_is_tls(cc)) {
		e->cls = BARBICAN_TLS;
		e->error = -EKEYREJECTED;
		set_msg(m, ml, "%s: TLS verification of %s failed (%s): check "
			 "barbican-ca-file (or -ca-dir) holds the CA that signed the "
			 "server's certificate and that the URL's host name matches it",
			 what, url,
			 curl_text(cc));
	} else if (cc == CURLE_WRITE_ERROR || cc == CURLE_FILESIZE_EXCEEDED) {
		e->cls = BARBICAN_BAD_REPLY;
		e->error = -EFBIG;
		set_msg(m, ml, "%s: %s sent a reply larger than keyscope accepts; is "
			 "barbican-url a Barbican API endpoint?", what, url);
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		e->cls = BARBICAN_UNREACHABLE;
		e->error = -ETIMEDOUT;
		set_msg(m, ml, "%s: %s did not answer in time (barbican-timeout, "
			 "barbican-deadline); check that Barbican is up and not overloaded",
			 what, url);
	} else if (cc == CURLE_URL_MALFORMAT) {
		e->cls = BARBICAN_REFUSED;
		e->error = -EINVAL;
		set_msg(m, ml, "%s: %s is not a usable https:// URL (%s)", what, url,
			 curl_text(cc));
	} else if (cc == CURLE_UNSUPPORTED_PROTOCOL || cc == CURLE_WEIRD_SERVER_REPLY) {
		/* The URL was checked at start: the server did not speak HTTP. */
		e->cls = BARBICAN_BAD_REPLY;
		e->error = -EPROTO;
		set_msg(m, ml, "%s: %s did not answer in HTTP (%s); is barbican-url "
			 "Barbican's address?", what, url, curl_text(cc));
	} else {
		e->cls = BARBICAN_UNREACHABLE;
		e->error = cc == CURLE_COULDNT_CONNECT ? -ECONNREFUSED : -EHOSTUNREACH;
		set_msg(m, ml, "%s: cannot reach %s (%s); check that it runs "
			 "and that barbican-url is right", what, url,
			 curl_text(cc));
	}
}

/* An HTTP answer that is not 2xx. */
static void error_from_status(long status, const char *what, const char *user, const char *url,
			      struct barbican_error *e)
{
	char *m = e->message;
	size_t ml = sizeof(e->message);

	switch (status) {
	case 401:
		e->cls = BARBICAN_AUTH;
		e->error = -EKEYREJECTED;
		set_msg(m, ml, "%s: Barbican refused keyscoped's credentials (401): check "
			 "app-credential-file (expired, deleted or wrong secret?) and keystone-url",
			 what);
		break;
	case 403:
		e->cls = BARBICAN_DENIED;
		e->error = -EACCES;
		set_msg(m, ml, "%s: not delegated to this node (403): ask the owner to add %s to "
			 "the secret's read ACL", what, user);
		break;
	case 404:
		e->cls = BARBICAN_NOT_FOUND;
		e->error = -ENOENT;
		set_msg(m, ml, "%s: no such secret in Barbican at %s (404): deleted, or a wrong "
			 "key-id", what, url);
		break;
	case 406:
		e->cls = BARBICAN_REFUSED;
		e->error = -EMEDIUMTYPE;
		set_msg(m, ml, "%s: Barbican cannot give the payload as "
			 "application/octet-stream (406): the secret was stored with another "
			 "content type; store keys as binary (octet-stream, base64)", what);
		break;
	case 413:
		e->cls = BARBICAN_REFUSED;
		e->error = -EFBIG;
		set_msg(m, ml, "%s: Barbican refused the request as too large (413): check its "
			 "max_allowed_request_size_in_bytes", what);
		break;
	case 429:
		e->cls = BARBICAN_UNREACHABLE;
		e->error = -EBUSY;
		set_msg(m, ml, "%s: Barbican is rate-limiting this node (429) beyond "
			 "barbican-deadline; lower barbican-concurrency or raise the limit", what);
		break;
	default:
		if (status >= 500 && status <= 599) {
			e->cls = BARBICAN_UNREACHABLE;
			e->error = -EIO;
			set_msg(m, ml, "%s: Barbican at %s failed with HTTP %ld: see its log; "
				 "retried until barbican-deadline", what, url, status);
		} else if (status >= 300 && status <= 399) {
			e->cls = BARBICAN_REFUSED;
			e->error = -EREMOTE;
			set_msg(m, ml, "%s: %s answered with a redirect (HTTP %ld), which keyscope "
				 "does not follow: set barbican-url to Barbican's own address", what,
				 url, status);
		} else {
			e->cls = BARBICAN_REFUSED;
			e->error = -EPROTO;
			set_msg(m, ml, "%s: Barbican refused the request with HTTP %ld", what,
				 status);
		}
	}
}

int barbican_error_from_http(long status, int cc, const char *what, const char *user,
			     const char *url, struct barbican_error *ret)
{
	struct barbican_error e = { .status = status };

	if (!user || !*user)
		user = "(the node's user)";
	if (cc != CURLE_OK)
		error_from_curl(cc, what, url, &e);
	else if (status < 200 || status > 299)
		error_from_status(status, what, user, url, &e);
	*ret = e;
	return e.error;
}
