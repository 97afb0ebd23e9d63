/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control protocol (docs/protocol.md): over a SOCK_STREAM UNIX socket, each message is one
 * JSON object followed by a NUL byte. A message whose top-level "payload-size" is N (1..64) is
 * followed, after its NUL, by exactly N raw bytes of key material; these never pass through
 * the JSON parser, so they live only in wiped buffers.
 *
 *   request: {"method": "keyscope.KeyCreate", "parameters": {...}}
 *   reply:   {"parameters": {...}}
 *   error:   {"error": "keyscope.NoSuchKey", "parameters": {"message": "..."}}
 */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "secret.h"

#define PROTO_MAX_MESSAGE (64 * 1024)	/* JSON text of a request, NUL excluded */
#define PROTO_MAX_REPLY (16 * 1024 * 1024)	/* JSON text of a reply (key lists grow) */
#define PROTO_MAX_PAYLOAD 64		/* bytes of key material after a message */
#define PROTO_MAX_DEPTH 8
#define PROTO_METHOD_MAX 64

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
#define _cleanup_json_ _cleanup_(json_object_putp)

/*
 * Looks for a complete message at the start of buf. Returns 1 and sets *ret_len to the length
 * of the JSON text (the NUL is at buf[*ret_len]) when one is there, 0 when more bytes are
 * needed, -EMSGSIZE when no NUL is found within PROTO_MAX_MESSAGE bytes.
 */
int proto_frame(const uint8_t *buf, size_t len, size_t *ret_len);
/* The same with another bound than PROTO_MAX_MESSAGE. */
int proto_frame_max(const uint8_t *buf, size_t len, size_t max, size_t *ret_len);

/*
 * Parses one message's JSON text (len bytes, no NUL inside). Strict JSON, valid UTF-8, depth
 * at most PROTO_MAX_DEPTH, a single object and nothing after it. Returns 0 and the object,
 * or -EBADMSG with a reason in err.
 */
int proto_parse(const char *text, size_t len, json_object **ret, char *err, size_t errlen);

/* Bounds of proto_parse_full(), and the name the errors give the text. */
struct proto_parse_opts {
	size_t max;		/* bytes of JSON text */
	int depth;		/* json_tokener_new_ex()'s: values on the deepest path, the
				 * top-level object and a scalar at the end included */
	const char *what;	/* "message", "reply": "empty reply", "reply is not valid UTF-8" */
};

/*
 * The same checks as proto_parse() with other bounds: clients parse replies up to
 * PROTO_MAX_REPLY, the daemon parses what Barbican and Keystone answer. Returns 0 and the
 * object, -EBADMSG with a reason in err, or -ENOMEM.
 */
int proto_parse_full(const char *text, size_t len, const struct proto_parse_opts *opts,
		     json_object **ret, char *err, size_t errlen);

struct proto_request {
	const char *method;		/* points into the object */
	json_object *parameters;	/* borrowed; an empty object when absent */
	unsigned payload_size;
};

/*
 * Checks a parsed request's shape: "method" a string of [A-Za-z.] names, "parameters" absent
 * or an object, "payload-size" absent or 1..PROTO_MAX_PAYLOAD, nothing else.
 * Returns 0, or -EBADMSG with a reason in err.
 */
int proto_request_check(json_object *o, struct proto_request *ret, char *err, size_t errlen);

/*
 * Typed getters for parameters. A missing optional field leaves *ret alone and returns 0;
 * a missing required one returns -ENOENT; a wrong type -EBADMSG. Error text in err.
 */
int proto_get_string(json_object *params, const char *field, bool required, size_t max,
		     const char **ret, char *err, size_t errlen);
int proto_get_uint(json_object *params, const char *field, bool required, uint64_t max,
		   uint64_t *ret, char *err, size_t errlen);
int proto_get_bool(json_object *params, const char *field, bool required, bool *ret,
		   char *err, size_t errlen);
/* Fails with -EBADMSG naming the first field of params not in the NULL-terminated list. */
int proto_check_fields(json_object *params, const char *const *allowed, char *err,
		       size_t errlen);

/* Serialises o compactly into a malloc'ed string. */
const char *proto_to_string(json_object *o);

/*
 * Client side: a blocking connection with a deadline on every call.
 */
struct proto_client {
	int fd;
	uint8_t *buf;	/* secret memory: may hold a reply's key material */
	size_t len, alloc;
	unsigned timeout_ms;
};

/* Connects to path. Returns 0 or -errno. */
int proto_client_connect(const char *path, unsigned timeout_ms, struct proto_client *ret);
void proto_client_done(struct proto_client *c);

/*
 * Sends {"method": method, "parameters": params} (params may be NULL; its reference is not
 * taken) followed by payload (payload_len 0..PROTO_MAX_PAYLOAD), waits for the reply.
 * Returns 0 and the reply object (check for "error"), writing a reply's payload into
 * *ret_payload when non-NULL; -ETIMEDOUT, -ECONNRESET, -EBADMSG or -errno otherwise.
 */
int proto_call(struct proto_client *c, const char *method, json_object *params,
	       const void *payload, size_t payload_len, json_object **ret,
	       struct secret_buf *ret_payload);

/* Low level: send one raw message text (no NUL) and optional payload. Returns 0 or -errno. */
int proto_send(struct proto_client *c, const char *text, size_t len, const void *payload,
	       size_t payload_len);
/* Low level: receive one message. Same results as proto_call(). */
int proto_recv(struct proto_client *c, json_object **ret, struct secret_buf *ret_payload);

/*
 * Reads one message's JSON text (len bytes, no NUL inside; valid during the call only). Returns
 * the size of the payload that follows the message (0..PROTO_MAX_PAYLOAD), or -errno.
 */
typedef int (*proto_reader_fn)(const char *text, size_t len, void *userdata);

/*
 * Low level: receive one message and hand its text to reader (proto_recv() builds a json-c
 * tree; a client that reads a large reply once can scan it instead: lib/proto-scan.h).
 * Returns 0, reader's negative return, or proto_recv()'s errors.
 */
int proto_recv_with(struct proto_client *c, proto_reader_fn reader, void *userdata,
		    struct secret_buf *ret_payload);

/* For replies: the error name, or NULL when the reply is a success. */
const char *proto_reply_error(json_object *reply, const char **ret_message);
