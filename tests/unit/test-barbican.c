/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The Barbican parsers and checks (daemon/sources/barbican/barbican-parse.c): secret metadata as the Debian
 * Barbican 15 writes it, list pages, Keystone token responses, secret_ref, times, Retry-After,
 * application credential files; the metadata checks (type, status, expiry, bit_length against
 * the payload); the mapping of HTTP and transport results to errors, retries and back-off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "barbican.h"
#include "proto.h"

#define ID "6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01"

static const char meta_json[] =
	"{\"status\": \"ACTIVE\", \"created\": \"2025-01-02T03:04:05\", "
	"\"updated\": \"2025-01-02T03:04:05\", \"expiration\": null, \"algorithm\": \"aes\", "
	"\"bit_length\": 256, \"mode\": \"xts\", \"name\": \"vol-1\", "
	"\"secret_ref\": \"https://127.0.0.1:9311/v1/secrets/" ID "\", "
	"\"secret_type\": \"symmetric\", \"content_types\": {\"default\": "
	"\"application/octet-stream\"}, \"creator_id\": \"user-a\", \"consumers\": []}";

static int parse_meta(const char *json, struct barbican_meta *m)
{
	char err[256];

	return barbican_parse_meta(json, strlen(json), m, err, sizeof(err));
}

static void test_meta(void **state)
{
	struct barbican_meta m;

	assert_int_equal(parse_meta(meta_json, &m), 0);
	assert_string_equal(m.id, ID);
	assert_string_equal(m.name, "vol-1");
	assert_string_equal(m.secret_type, "symmetric");
	assert_string_equal(m.status, "ACTIVE");
	assert_string_equal(m.algorithm, "aes");
	assert_string_equal(m.mode, "xts");
	assert_string_equal(m.content_type, "application/octet-stream");
	assert_int_equal(m.bit_length, 256);
	assert_int_equal(m.expiration, 0);
	assert_int_equal(m.created, 1735787045);
}

static void test_meta_bad(void **state)
{
	static const char *const bad[] = {
		"", "{", "[]", "null", "{\"status\": \"ACTIVE\"} x", "{\"status\": 1}",
		"{\"bit_length\": \"256\", \"status\": \"ACTIVE\"}",
		"{\"bit_length\": -1, \"status\": \"ACTIVE\"}",
		"{\"bit_length\": 99999999999999999999, \"status\": \"ACTIVE\"}",
		"{\"status\": \"ACTIVE\", \"expiration\": \"tomorrow\"}",
		"{\"status\": \"ACTIVE\", \"secret_ref\": \"https://h/v1/secrets/a/../b\"}",
		"{\"status\": \"ACTIVE\", \"secret_ref\": \"https://h/v1/other/" ID "\"}",
		"{\"status\": \"ACTIVE\", \"content_types\": \"x\"}",
		"{\"name\": \"x\"}",	/* no status */
		"{'status': 'ACTIVE'}",
		"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":{\"j\":{}}}}}}}}}}, "
		"\"status\": \"ACTIVE\"}",
	};
	struct barbican_meta m;
	char nul[] = "{\"status\": \"ACTIVE\"}\0";

	for (size_t i = 0; i < ELEMENTSOF(bad); i++)
		if (parse_meta(bad[i], &m) != -EBADMSG)
			fail_msg("accepted bad metadata %zu: %s", i, bad[i]);
	assert_int_equal(barbican_parse_meta(nul, sizeof(nul), &m, NULL, 0), -EBADMSG);
}

static void test_meta_name_sanitised(void **state)
{
	struct barbican_meta m;

	assert_int_equal(parse_meta("{\"status\": \"ACTIVE\", \"name\": \"a\\u001b[31mb\\u0085c\"}",
				    &m), 0);
	assert_null(strchr(m.name, 0x1b));
	assert_string_equal(m.name, "a?[31mb??c");
}

/* A long name is cut before the character that does not fit, never inside it. */
static void test_meta_name_truncated(void **state)
{
	static const char *const chars[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x94\x91" };
	char name[BARBICAN_NAME_MAX + 8], json[512], reply[512];
	struct barbican_meta m;
	json_object *o = NULL;

	for (size_t c = 0; c < ELEMENTSOF(chars); c++)
		for (size_t pad = BARBICAN_NAME_MAX - 5; pad <= BARBICAN_NAME_MAX; pad++) {
			size_t cl = strlen(chars[c]), want;

			memset(name, 'a', pad);
			strcpy(name + pad, chars[c]);
			snprintf(json, sizeof(json), "{\"status\": \"ACTIVE\", \"name\": \"%s\"}",
				 name);
			assert_int_equal(parse_meta(json, &m), 0);
			want = pad + cl <= BARBICAN_NAME_MAX ? pad + cl : pad;
			assert_int_equal(strlen(m.name), want);
			assert_memory_equal(m.name, name, want);
			/* keyscopectl takes a key list holding the name. */
			snprintf(reply, sizeof(reply), "{\"name\": \"%s\"}", m.name);
			assert_int_equal(proto_parse(reply, strlen(reply), &o, NULL, 0), 0);
			json_object_put(o);
		}
}

static void test_check_meta(void **state)
{
	struct barbican_meta m;
	char err[384];
	int64_t now = 1800000000;

	assert_int_equal(parse_meta(meta_json, &m), 0);
	assert_int_equal(barbican_check_meta(&m, ID, 32, now, err, sizeof(err)), 0);
	assert_int_equal(barbican_check_meta(&m, ID, 0, now, err, sizeof(err)), 0);
	/* Barbican accepts a 16-byte payload labelled 256 bits; keyscope does not. */
	assert_int_equal(barbican_check_meta(&m, ID, 16, now, err, sizeof(err)), -EMEDIUMTYPE);
	assert_non_null(strstr(err, ID));
	assert_non_null(strstr(err, "256"));
	assert_non_null(strstr(err, "16"));
	m.bit_length = 200;
	assert_int_equal(barbican_check_meta(&m, ID, 25, now, err, sizeof(err)), -EMEDIUMTYPE);
	assert_non_null(strstr(err, "200"));
	m.bit_length = 512;
	assert_int_equal(barbican_check_meta(&m, ID, 64, now, err, sizeof(err)), 0);
	strcpy(m.secret_type, "opaque");
	assert_int_equal(barbican_check_meta(&m, ID, 64, now, err, sizeof(err)), -EMEDIUMTYPE);
	assert_non_null(strstr(err, "opaque"));
	strcpy(m.secret_type, "passphrase");
	assert_int_equal(barbican_check_meta(&m, ID, 64, now, err, sizeof(err)), 0);
	strcpy(m.status, "PENDING");
	assert_int_equal(barbican_check_meta(&m, ID, 64, now, err, sizeof(err)), -EMEDIUMTYPE);
	strcpy(m.status, "ACTIVE");
	m.expiration = now - 1;
	assert_int_equal(barbican_check_meta(&m, ID, 64, now, err, sizeof(err)), -EMEDIUMTYPE);
	assert_non_null(strstr(err, "expired"));
	m.expiration = now + 1;
	assert_int_equal(barbican_check_meta(&m, ID, 64, now, err, sizeof(err)), 0);
	strcpy(m.content_type, "text/plain");
	assert_int_equal(barbican_check_meta(&m, ID, 64, now, err, sizeof(err)), -EMEDIUMTYPE);
}

static int parse_list(const char *json, struct barbican_list *l)
{
	char err[256];

	return barbican_parse_list(json, strlen(json), l, err, sizeof(err));
}

static int parse_token(const char *json, struct barbican_token_info *t)
{
	char err[256];

	return barbican_parse_token(json, strlen(json), t, err, sizeof(err));
}

static void test_list(void **state)
{
	char buf[8192];
	struct barbican_list l = {};
	char err[256];
	int n;

	n = snprintf(buf, sizeof(buf), "{\"secrets\": [%s, %s], \"total\": 23, "
		     "\"next\": \"https://evil.example/v1/secrets?limit=2&offset=2\"}",
		     meta_json, meta_json);
	assert_int_equal(barbican_parse_list(buf, (size_t) n, &l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.total, 23);
	assert_string_equal(l.items[1].id, ID);
	barbican_list_done(&l);
	assert_null(l.items);

	assert_int_equal(parse_list("{\"secrets\": [], \"total\": 0}", &l), 0);
	assert_int_equal(l.n, 0);
	barbican_list_done(&l);
	assert_int_equal(parse_list("{\"total\": 0}", &l), -EBADMSG);
	/* An entry without secret_ref cannot be named. */
	assert_int_equal(parse_list("{\"secrets\": [{\"status\": \"ACTIVE\"}]}", &l), -EBADMSG);
	assert_int_equal(parse_list("{\"secrets\": [1]}", &l), -EBADMSG);
}

static void test_token(void **state)
{
	static const char tok[] =
		"{\"token\": {\"methods\": [\"application_credential\"], \"user\": {\"domain\": "
		"{\"id\": \"default\", \"name\": \"Default\"}, \"id\": \"0123abcd\", \"name\": "
		"\"node-1\", \"password_expires_at\": null}, \"audit_ids\": [\"x\"], "
		"\"expires_at\": \"2030-01-01T00:00:00.000000Z\", \"issued_at\": "
		"\"2029-12-31T23:00:00.000000Z\", \"project\": {\"id\": \"p1\", \"name\": \"p\"}, "
		"\"roles\": [{\"id\": \"r\", \"name\": \"reader\"}], \"application_credential\": "
		"{\"id\": \"ac\", \"name\": \"n\", \"restricted\": true}}}";
	struct barbican_token_info t;
	char err[256];

	assert_int_equal(barbican_parse_token(tok, strlen(tok), &t, err, sizeof(err)), 0);
	assert_string_equal(t.user_id, "0123abcd");
	assert_string_equal(t.project_id, "p1");
	assert_int_equal(t.expires_at, 1893456000);
	assert_int_equal(parse_token("{\"token\": {}}", &t), -EBADMSG);
	assert_int_equal(parse_token("{\"token\": {\"expires_at\": \"2030-01-01T00:00:00Z\"}}", &t),
			 -EBADMSG);
	assert_int_equal(parse_token("{\"token\": {\"expires_at\": \"2030-01-01T00:00:00Z\", "
				     "\"user\": {\"id\": \"a\\\"b\"}}}", &t), -EBADMSG);
}

static void test_secret_ref(void **state)
{
	char id[KEYID_MAX + 1], err[256];
	const char ok[] = "{\"secret_ref\": \"https://127.0.0.1:9311/v1/secrets/" ID "\"}";

	assert_int_equal(barbican_parse_secret_ref(ok, strlen(ok), id, err, sizeof(err)), 0);
	assert_string_equal(id, ID);
	assert_int_equal(barbican_parse_secret_ref("{}", 2, id, err, sizeof(err)), -EBADMSG);
	assert_int_equal(barbican_parse_secret_ref("{\"secret_ref\": \"https://h/v1/secrets/\"}",
						   39, id, err, sizeof(err)), -EBADMSG);
}

/*
 * Replies go through the control protocol's strict parser: bytes that are not UTF-8 (overlong
 * forms and surrogates included), data after the object, and NaN, which json-c's strict mode
 * lets through, are refused, and the error says which.
 */
static void test_reply_strict(void **state)
{
	static const struct {
		const char *json, *why;
	} bad[] = {
		{ "{\"status\": \"ACTIVE\", \"name\": \"\xff\"}", "reply is not valid UTF-8" },
		{ "{\"status\": \"ACTIVE\", \"name\": \"\xc0\x80\"}", "reply is not valid UTF-8" },
		{ "{\"status\": \"ACTIVE\", \"name\": \"\xed\xa0\x80\"}",
		  "reply is not valid UTF-8" },
		{ "{\"status\": \"ACTIVE\", \"name\": \"\xf4\x90\x80\x80\"}",
		  "reply is not valid UTF-8" },
		{ "{\"status\": \"ACTIVE\", \"name\": \"\xe2\x82\"}", "reply is not valid UTF-8" },
		{ "{\"status\": \"ACTIVE\"} x", "malformed JSON" },
		{ "{\"status\": \"ACTIVE\"} {\"status\": \"ACTIVE\"}", "malformed JSON" },
		{ "{\"status\": \"ACTIVE\"}<html>", "malformed JSON" },
		{ "{\"status\": \"ACTIVE\", \"updated\": NaN}", "malformed JSON" },
		{ "{\"status\": \"ACTIVE\", \"name\": 'x'}", "malformed JSON" },
		{ "{\"status\": \"ACTIVE\"", "incomplete JSON" },
		{ "", "empty reply" },
	};
	const char nul[] = "{\"status\": \"ACTIVE\"}\0";
	struct barbican_meta m;
	struct barbican_list l = {};
	struct barbican_token_info t;
	char id[KEYID_MAX + 1], err[256];
	const char *s;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		s = bad[i].json;
		err[0] = 0;
		if (barbican_parse_meta(s, strlen(s), &m, err, sizeof(err)) != -EBADMSG ||
		    !strstr(err, bad[i].why))
			fail_msg("metadata %zu: want \"%s\", got \"%s\"", i, bad[i].why, err);
	}
	assert_int_equal(barbican_parse_meta(nul, sizeof(nul) - 1, &m, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "NUL byte inside the reply"));

	/* The list, token and secret_ref parsers share the checks. */
	s = "{\"secrets\": [], \"name\": \"\xc3\"}";
	assert_int_equal(barbican_parse_list(s, strlen(s), &l, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "reply is not valid UTF-8");
	s = "{\"secrets\": []}}";
	assert_int_equal(barbican_parse_list(s, strlen(s), &l, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "malformed JSON"));
	assert_null(l.items);
	s = "{\"token\": \"\xed\xbf\xbf\"}";
	assert_int_equal(barbican_parse_token(s, strlen(s), &t, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "reply is not valid UTF-8");
	s = "{\"token\": {}} x";
	assert_int_equal(barbican_parse_token(s, strlen(s), &t, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "malformed JSON"));
	s = "{\"secret_ref\": \"\x80\"}";
	assert_int_equal(barbican_parse_secret_ref(s, strlen(s), id, err, sizeof(err)), -EBADMSG);
	assert_string_equal(err, "reply is not valid UTF-8");
	s = "{\"secret_ref\": \"x\"},";
	assert_int_equal(barbican_parse_secret_ref(s, strlen(s), id, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "malformed JSON"));
}

/* Names in any language, sent raw or as \u escapes, pass the strict checks unchanged. */
static void test_reply_utf8_names(void **state)
{
	static const char *const ok[] = {
		"{\"status\": \"ACTIVE\", \"name\": \"cl\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91\"}",
		"{\"status\": \"ACTIVE\", \"name\": \"cl\\u00e9 \\u20ac \\ud83d\\udd11\"}",
	};
	struct barbican_meta m;
	struct barbican_list l = {};
	char buf[512];
	int n;

	for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
		assert_int_equal(parse_meta(ok[i], &m), 0);
		assert_string_equal(m.name, "cl\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91");
	}
	n = snprintf(buf, sizeof(buf), "{\"secrets\": [{\"status\": \"ACTIVE\", \"name\": "
		     "\"\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87\", \"secret_ref\": "
		     "\"https://h/v1/secrets/" ID "\"}], \"total\": 1}");
	assert_true(n > 0 && (size_t) n < sizeof(buf));
	assert_int_equal(parse_list(buf, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.items[0].name, "\xd0\xba\xd0\xbb\xd1\x8e\xd1\x87");
	barbican_list_done(&l);
}

static void test_time(void **state)
{
	int64_t t;

	assert_int_equal(barbican_parse_time("1970-01-01T00:00:00", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(barbican_parse_time("2025-01-02T03:04:05.123456", &t), 0);
	assert_int_equal(t, 1735787045);
	assert_int_equal(barbican_parse_time("2025-01-02T03:04:05Z", &t), 0);
	assert_int_equal(t, 1735787045);
	assert_int_equal(barbican_parse_time("2025-01-02T05:04:05+02:00", &t), 0);
	assert_int_equal(t, 1735787045);
	assert_int_equal(barbican_parse_time("2025-01-02T01:04:05-0200", &t), 0);
	assert_int_equal(t, 1735787045);
	assert_int_equal(barbican_parse_time("2025-01-02 03:04:05", &t), 0);
	for (const char *const *b = (const char *const[]) { "", "2025", "2025-01-02",
							     "2025-13-02T00:00:00",
							     "2025-01-02T24:00:00",
							     "2025-01-02T00:00:00.",
							     "2025-01-02T00:00:00Zx",
							     "2025-01-02T00:00:00+1", "x", NULL };
	     *b; b++)
		if (barbican_parse_time(*b, &t) != -EINVAL)
			fail_msg("accepted time \"%s\"", *b);
}

static void test_retry_after(void **state)
{
	uint64_t s;

	assert_int_equal(barbican_parse_retry_after("5", 0, &s), 0);
	assert_int_equal(s, 5);
	assert_int_equal(barbican_parse_retry_after(" 120\r\n", 0, &s), 0);
	assert_int_equal(s, 120);
	assert_int_equal(barbican_parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", 30, &s), 0);
	assert_int_equal(s, 30);
	assert_int_equal(barbican_parse_retry_after("Thu, 01 Jan 1970 00:01:00 GMT", 90, &s), 0);
	assert_int_equal(s, 0);
	assert_int_equal(barbican_parse_retry_after("99999999", 0, &s), -EINVAL);
	assert_int_equal(barbican_parse_retry_after("5s", 0, &s), -EINVAL);
	assert_int_equal(barbican_parse_retry_after("soon", 0, &s), -EINVAL);
	assert_int_equal(barbican_parse_retry_after("", 0, &s), -EINVAL);
}

static void test_app_credential(void **state)
{
	static const char ok[] = "# node-1\nid = 0a1b2c\n\nsecret = s3cr3t-Value_x\n";
	struct secret_buf sec = {};
	char id[256], err[256];

	assert_int_equal(barbican_parse_app_credential(ok, strlen(ok), id, sizeof(id), &sec, err,
						       sizeof(err)), 0);
	assert_string_equal(id, "0a1b2c");
	assert_int_equal(sec.len, 14);
	assert_memory_equal(sec.data, "s3cr3t-Value_x", 14);
	secret_buf_done(&sec);
	for (const char *const *b = (const char *const[]) {
		     "id = a\n", "secret = b\n", "id = a\nsecret = b\nother = c\n",
		     "id = a\nsecret = b\"c\n", "id = a\nsecret = b\\c\n", "id a\nsecret = b\n",
		     "id = a b\nsecret = c\n", "", NULL };
	     *b; b++) {
		if (barbican_parse_app_credential(*b, strlen(*b), id, sizeof(id), &sec, err,
						  sizeof(err)) != -EBADMSG)
			fail_msg("accepted credential file \"%s\"", *b);
		/* A refusal never quotes the secret. */
		assert_null(strstr(err, "b\"c"));
	}
}

static void test_errors(void **state)
{
	struct barbican_error e;

	assert_int_equal(barbican_error_from_http(200, CURLE_OK, "fetching secret " ID, "node-1",
						  "https://h", &e), 0);
	assert_int_equal(e.cls, BARBICAN_OK);
	assert_int_equal(barbican_error_from_http(403, CURLE_OK, "fetching secret " ID, "node-1",
						  "https://h", &e), -EACCES);
	assert_int_equal(e.cls, BARBICAN_DENIED);
	assert_non_null(strstr(e.message, "not delegated to this node"));
	assert_non_null(strstr(e.message, "ask the owner to add node-1 to the secret's read ACL"));
	assert_non_null(strstr(e.message, ID));
	assert_int_equal(barbican_error_from_http(401, CURLE_OK, "x", "u", "h", &e), -EKEYREJECTED);
	assert_int_equal(e.cls, BARBICAN_AUTH);
	assert_non_null(strstr(e.message, "credentials"));
	assert_int_equal(barbican_error_from_http(404, CURLE_OK, "x", "u", "h", &e), -ENOENT);
	assert_int_equal(e.cls, BARBICAN_NOT_FOUND);
	assert_int_equal(barbican_error_from_http(406, CURLE_OK, "x", "u", "h", &e), -EMEDIUMTYPE);
	assert_non_null(strstr(e.message, "406"));
	assert_int_equal(barbican_error_from_http(413, CURLE_OK, "x", "u", "h", &e), -EFBIG);
	assert_non_null(strstr(e.message, "413"));
	assert_int_equal(barbican_error_from_http(503, CURLE_OK, "x", "u", "h", &e), -EIO);
	assert_int_equal(e.cls, BARBICAN_UNREACHABLE);
	assert_non_null(strstr(e.message, "503"));
	assert_int_equal(barbican_error_from_http(429, CURLE_OK, "x", "u", "h", &e), -EBUSY);
	assert_int_equal(barbican_error_from_http(302, CURLE_OK, "x", "u", "h", &e), -EREMOTE);
	assert_non_null(strstr(e.message, "redirect"));
	assert_int_equal(barbican_error_from_http(400, CURLE_OK, "x", "u", "h", &e), -EPROTO);
	assert_int_equal(e.cls, BARBICAN_REFUSED);
	assert_int_equal(barbican_error_from_http(0, CURLE_PEER_FAILED_VERIFICATION, "x", "u", "h",
						  &e), -EKEYREJECTED);
	assert_int_equal(e.cls, BARBICAN_TLS);
	assert_non_null(strstr(e.message, "barbican-ca-file"));
	assert_int_equal(barbican_error_from_http(0, CURLE_COULDNT_CONNECT, "x", "u", "h", &e),
			 -ECONNREFUSED);
	assert_int_equal(e.cls, BARBICAN_UNREACHABLE);
	assert_int_equal(barbican_error_from_http(0, CURLE_OPERATION_TIMEDOUT, "x", "u", "h", &e),
			 -ETIMEDOUT);
	assert_int_equal(barbican_error_from_http(0, CURLE_WRITE_ERROR, "x", "u", "h", &e), -EFBIG);
	assert_int_equal(e.cls, BARBICAN_BAD_REPLY);
	assert_int_equal(barbican_error_from_http(0, CURLE_UNSUPPORTED_PROTOCOL, "x", "u", "h",
						  &e), -EPROTO);
	assert_int_equal(e.cls, BARBICAN_BAD_REPLY);
}

static void test_retry_policy(void **state)
{
	assert_true(barbican_should_retry(500, CURLE_OK));
	assert_true(barbican_should_retry(503, CURLE_OK));
	assert_true(barbican_should_retry(429, CURLE_OK));
	assert_true(barbican_should_retry(0, CURLE_COULDNT_CONNECT));
	assert_true(barbican_should_retry(0, CURLE_OPERATION_TIMEDOUT));
	assert_true(barbican_should_retry(0, CURLE_PARTIAL_FILE));
	assert_true(barbican_should_retry(0, CURLE_GOT_NOTHING));
	assert_false(barbican_should_retry(200, CURLE_OK));
	assert_false(barbican_should_retry(400, CURLE_OK));
	assert_false(barbican_should_retry(401, CURLE_OK));
	assert_false(barbican_should_retry(403, CURLE_OK));
	assert_false(barbican_should_retry(404, CURLE_OK));
	assert_false(barbican_should_retry(302, CURLE_OK));
	assert_false(barbican_should_retry(0, CURLE_PEER_FAILED_VERIFICATION));
	assert_false(barbican_should_retry(0, CURLE_WRITE_ERROR));
	assert_false(barbican_should_retry(0, CURLE_FILESIZE_EXCEEDED));
}

static void test_backoff(void **state)
{
	/* Exponential, capped, half of it jitter. */
	assert_int_equal(barbican_backoff_ms(1, 200, 8000, 0), 100);
	assert_int_equal(barbican_backoff_ms(2, 200, 8000, 0), 200);
	assert_int_equal(barbican_backoff_ms(3, 200, 8000, 0), 400);
	assert_int_equal(barbican_backoff_ms(20, 200, 8000, 0), 4000);
	for (uint32_t r = 0; r < 100000; r += 997) {
		uint64_t d = barbican_backoff_ms(3, 200, 8000, r);
		assert_true(d >= 400 && d <= 800);
		d = barbican_backoff_ms(30, 200, 8000, r * 7919u);
		assert_true(d >= 4000 && d <= 8000);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_meta_bad),
		cmocka_unit_test(test_meta_name_sanitised),
		cmocka_unit_test(test_meta_name_truncated),
		cmocka_unit_test(test_check_meta),
		cmocka_unit_test(test_list),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_secret_ref),
		cmocka_unit_test(test_reply_strict),
		cmocka_unit_test(test_reply_utf8_names),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_app_credential),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_retry_policy),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
