/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The control protocol's framing, parser and typed getters, on good and hostile input. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto.h"
#include "secret.h"

static int parse(const char *text, json_object **ret)
{
	char err[256];

	return proto_parse(text, strlen(text), ret, err, sizeof(err));
}

static int check(const char *text, struct proto_request *req, json_object **keep)
{
	char err[256];
	json_object *o = NULL;
	int r = parse(text, &o);

	if (r < 0)
		return r;
	r = proto_request_check(o, req, err, sizeof(err));
	*keep = o;
	return r;
}

static void test_frame(void **state)
{
	uint8_t buf[PROTO_MAX_MESSAGE + 8];
	size_t len = 99;

	assert_int_equal(proto_frame((const uint8_t *) "{}", 2, &len), 0);
	assert_int_equal(len, 99);	/* not written when no frame */
	assert_int_equal(proto_frame((const uint8_t *) "{}\0x", 4, &len), 1);
	assert_int_equal(len, 2);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(proto_frame(buf, PROTO_MAX_MESSAGE, &len), 0);
	assert_int_equal(proto_frame(buf, PROTO_MAX_MESSAGE + 1, &len), -EMSGSIZE);
	buf[PROTO_MAX_MESSAGE] = 0;
	assert_int_equal(proto_frame(buf, PROTO_MAX_MESSAGE + 1, &len), 1);
	assert_int_equal(len, PROTO_MAX_MESSAGE);
}

static void test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"", "x", "[]", "1", "\"s\"", "null", "{", "{}}", "{} {}", "{'a':1}", "{\"a\":1,}",
		"{\"a\":\"\xff\"}", "{\"a\":\"\xc0\x80\"}", "{\"a\":\"\xed\xa0\x80\"}",
		"{\"a\":\"\xf4\x90\x80\x80\"}", "{\"a\":\"\xe2\x82\"}",
		"{\"a\":[[[[[[[[[[1]]]]]]]]]]}", "{\"a\":NaN}", "{\"a\":01}",
	};
	json_object *o;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = NULL;
		assert_int_equal(parse(bad[i], &o), -EBADMSG);
		assert_null(o);
	}
	/* an interior NUL */
	assert_int_equal(proto_parse("{}\0{}", 5, &o, NULL, 0), -EBADMSG);
}

static void test_parse_accepts(void **state)
{
	json_object *o = NULL;

	assert_int_equal(parse(" {\"a\": \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x91\"} \n", &o), 0);
	assert_non_null(o);
	json_object_put(o);
}

static void test_request_check(void **state)
{
	struct proto_request req;
	json_object *o = NULL;

	assert_int_equal(check("{\"method\":\"keyscope.Ping\"}", &req, &o), 0);
	assert_string_equal(req.method, "keyscope.Ping");
	assert_null(req.parameters);
	assert_int_equal(req.payload_size, 0);
	json_object_put(o);

	assert_int_equal(check("{\"method\":\"keyscope.KeyImport\",\"parameters\":{},"
			       "\"payload-size\":64}", &req, &o), 0);
	assert_int_equal(req.payload_size, 64);
	json_object_put(o);

	static const char *const bad[] = {
		"{}", "{\"method\":1}", "{\"method\":\"\"}", "{\"method\":\"a b\"}",
		"{\"method\":\".a\"}", "{\"method\":\"a.\"}", "{\"method\":\"a/b\"}",
		"{\"method\":\"a\",\"x\":1}", "{\"method\":\"a\",\"parameters\":[]}",
		"{\"method\":\"a\",\"payload-size\":0}", "{\"method\":\"a\",\"payload-size\":65}",
		"{\"method\":\"a\",\"payload-size\":\"1\"}",
		"{\"method\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = NULL;
		assert_int_equal(check(bad[i], &req, &o), -EBADMSG);
		json_object_put(o);
	}
}

/* Every string on its full length: no "\u0000" (json-c would keep a NUL inside, C string
 * uses cut there) and no lone surrogate (json-c would store U+FFFD), member names too. */
static void test_parse_strings(void **state)
{
	static const char *const bad[] = {
		"{\"method\":\"keyscope.Ping\\u0000x\"}", "{\"a\":\"\\u0000\"}",
		"{\"method\\u0000x\":\"keyscope.Ping\"}", "{\"name\":\"\\ud800\"}",
		"{\"name\":\"\\udc00\"}", "{\"name\":\"x\\uDBFFy\"}",
		"{\"name\":\"\\ud800\\u0041\"}", "{\"name\":\"\\ud800\\ud800\"}",
		"{\"name\":\"\\udc00\\ud800\"}", "{\"name\":\"\\u12\"}", "{\"name\":\"\\u12g4\"}",
		"{\"name\":\"\\ud800\\\"}", "{\"name\":\"a\\",
	};
	static const char *const good[] = {
		"{\"name\":\"\\ud83d\\udd11\"}", "{\"name\":\"\\u00e9\\u0001\"}",
		"{\"name\":\"\\\\u0000\"}", "{\"name\":\"\\\"\\u0041\"}",
	};
	struct proto_request req;
	json_object *o;
	char err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = NULL;
		if (proto_parse(bad[i], strlen(bad[i]), &o, err, sizeof(err)) != -EBADMSG)
			fail_msg("accepted %s", bad[i]);
		assert_null(o);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		o = NULL;
		if (parse(good[i], &o) != 0)
			fail_msg("refused %s", good[i]);
		json_object_put(o);
	}
	assert_int_equal(parse("{\"name\":\"\\ud83d\\udd11\"}", &o), 0);
	assert_string_equal(json_object_get_string(json_object_object_get(o, "name")),
			    "\xf0\x9f\x94\x91");
	json_object_put(o);

	/* The request check holds on its own: a method with a NUL inside is no method. */
	o = json_object_new_object();
	json_object_object_add(o, "method", json_object_new_string_len("keyscope.Ping\0x", 15));
	assert_int_equal(proto_request_check(o, &req, err, sizeof(err)), -EBADMSG);
	json_object_put(o);
}

static void test_getters(void **state)
{
	static const char *const allowed[] = { "s", "n", "b", NULL };
	json_object *o = NULL;
	const char *s = "unset";
	uint64_t n = 7;
	bool b = false;
	char err[256];

	assert_int_equal(parse("{\"s\":\"abc\",\"n\":42,\"b\":true}", &o), 0);
	/* The parser refuses "\u0000"; the getter must hold on its own too. */
	json_object_object_add(o, "z", json_object_new_string_len("a\0b", 3));
	assert_int_equal(proto_get_string(o, "s", true, 3, &s, err, sizeof(err)), 0);
	assert_string_equal(s, "abc");
	assert_int_equal(proto_get_string(o, "s", true, 2, &s, err, sizeof(err)), -EBADMSG);
	assert_int_equal(proto_get_string(o, "z", true, 10, &s, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "NUL"));
	assert_int_equal(proto_get_string(o, "n", true, 10, &s, err, sizeof(err)), -EBADMSG);
	assert_int_equal(proto_get_string(o, "missing", true, 10, &s, err, sizeof(err)), -ENOENT);
	assert_int_equal(proto_get_string(o, "missing", false, 10, &s, err, sizeof(err)), 0);
	assert_string_equal(s, "abc");
	assert_int_equal(proto_get_uint(o, "n", true, 42, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 42);
	assert_int_equal(proto_get_uint(o, "n", true, 41, &n, err, sizeof(err)), -EBADMSG);
	assert_int_equal(proto_get_uint(o, "s", true, 41, &n, err, sizeof(err)), -EBADMSG);
	assert_int_equal(proto_get_bool(o, "b", true, &b, err, sizeof(err)), 0);
	assert_true(b);
	assert_int_equal(proto_get_bool(o, "n", true, &b, err, sizeof(err)), -EBADMSG);
	assert_int_equal(proto_check_fields(o, allowed, err, sizeof(err)), -EBADMSG);
	assert_non_null(strstr(err, "'z'"));
	json_object_put(o);

	assert_int_equal(parse("{\"n\":-1}", &o), 0);
	assert_int_equal(proto_get_uint(o, "n", true, 100, &n, err, sizeof(err)), -EBADMSG);
	json_object_put(o);
	assert_int_equal(parse("{\"n\":99999999999999999999999}", &o), 0);
	assert_int_equal(proto_get_uint(o, "n", true, UINT64_MAX, &n, err, sizeof(err)), -EBADMSG);
	json_object_put(o);
}

static void test_reply_error(void **state)
{
	json_object *o = NULL;
	const char *m = NULL;

	assert_int_equal(parse("{\"error\":\"keyscope.X\",\"parameters\":{\"message\":\"hi\"}}", &o),
			 0);
	assert_string_equal(proto_reply_error(o, &m), "keyscope.X");
	assert_string_equal(m, "hi");
	json_object_put(o);
	assert_int_equal(parse("{\"parameters\":{}}", &o), 0);
	assert_null(proto_reply_error(o, &m));
	json_object_put(o);
}

/* A reply's "payload-size" is an integer or the reply is refused: a string is not a size. */
static int recv_reply(const char *text, size_t payload, struct secret_buf *ret_payload)
{
	struct proto_client c = { .fd = -1, .timeout_ms = 2000 };
	uint8_t bytes[64] = { 0x11, 0x22 };
	json_object *o = NULL;
	int sv[2], r;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(write(sv[1], text, strlen(text) + 1), (ssize_t) strlen(text) + 1);
	assert_int_equal(write(sv[1], bytes, payload), (ssize_t) payload);
	close(sv[1]);
	c.fd = sv[0];
	c.alloc = PROTO_MAX_MESSAGE + 1 + PROTO_MAX_PAYLOAD;	/* as proto_client_connect() */
	c.buf = secret_alloc(c.alloc);
	assert_non_null(c.buf);
	r = proto_recv(&c, &o, ret_payload);
	json_object_put(o);
	proto_client_done(&c);
	return r;
}

static void test_recv_payload_size(void **state)
{
	struct secret_buf p = {};

	(void) state;
	assert_int_equal(recv_reply("{\"parameters\":{},\"payload-size\":32}", 32, &p), 0);
	assert_int_equal(p.len, 32);
	assert_int_equal(p.data[1], 0x22);
	secret_buf_done(&p);
	assert_int_equal(recv_reply("{\"parameters\":{},\"payload-size\":\"32\"}", 32, &p), -EBADMSG);
	assert_int_equal(recv_reply("{\"parameters\":{},\"payload-size\":32.0}", 32, &p), -EBADMSG);
	assert_int_equal(recv_reply("{\"parameters\":{},\"payload-size\":65}", 64, &p), -EBADMSG);
	assert_null(p.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_accepts),
		cmocka_unit_test(test_request_check),
		cmocka_unit_test(test_parse_strings),
		cmocka_unit_test(test_getters),
		cmocka_unit_test(test_reply_error),
		cmocka_unit_test(test_recv_payload_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
