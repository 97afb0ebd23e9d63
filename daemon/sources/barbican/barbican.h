/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * OpenStack Barbican over HTTPS: the key manager that delegates keys to this node (the
 * secret's read ACL names the node's user). Two layers:
 *
 *  - pure parsers and checks of what Barbican and Keystone answer (barbican-parse.c): no I/O,
 *    bounded, all-or-nothing, each with a libFuzzer harness (tests/fuzz/fuzz-barbican-*.c);
 *  - the client (barbican.c, http.c, keystone.c, api.c; barbican-internal.h says which does
 *    what): libcurl's multi interface driven by the daemon's sd-event loop, so a fetch never
 *    blocks other clients. Every operation has a deadline that bounds all of its waits
 *    (queueing, authentication, connects, transfers, back-off between retries).
 *
 * Nothing here logs a token, a credential or key material, at any level.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "keyid.h"
#include "secret.h"

#define BARBICAN_PAYLOAD_MAX 64			/* the longest key keyscope installs */
#define BARBICAN_META_MAX (64u * 1024)		/* one secret's metadata */
#define BARBICAN_BODY_MAX (1024u * 1024)	/* a list page, a token response */
#define BARBICAN_JSON_DEPTH 10
#define BARBICAN_NAME_MAX 255
#define BARBICAN_ID_MAX 64			/* Keystone user and project ids */
#define BARBICAN_LIST_PAGE 100			/* Barbican's largest page */

/* ---- pure parsers (barbican-parse.c) ---------------------------------------------------- */

/* A secret's metadata as keyscope needs it (GET /v1/secrets/<id>, or one entry of a list). */
struct barbican_meta {
	char id[KEYID_MAX + 1];		/* from secret_ref; "" when the reply had none */
	char name[BARBICAN_NAME_MAX + 1];	/* control characters replaced by '?' */
	char secret_type[32];
	char status[32];
	char algorithm[32];
	char mode[32];
	char content_type[64];		/* content_types.default; "" when absent */
	unsigned bit_length;		/* 0 when null */
	int64_t expiration;		/* seconds since the epoch; 0: never */
	int64_t created;		/* seconds since the epoch; 0: unknown */
};

/*
 * Parses the JSON text of one secret's metadata (len bytes, no NUL needed). Strict: a JSON
 * object of at most BARBICAN_META_MAX bytes and BARBICAN_JSON_DEPTH levels, fields of the
 * right types (unknown fields are ignored). Returns 0, or -EBADMSG with the reason in err.
 */
int barbican_parse_meta(const char *text, size_t len, struct barbican_meta *ret, char *err,
			size_t errlen);

/*
 * Whether a secret can be a keyscope key: secret_type symmetric or passphrase, status ACTIVE,
 * not expired at now (seconds since the epoch), bit_length 256 or 512, the default content
 * type (if given) application/octet-stream, and, when payload_len is not 0, bit_length equal
 * to the payload's length (Barbican itself does not check this). Returns 0, or -EMEDIUMTYPE
 * with the mismatch in err (naming id).
 */
int barbican_check_meta(const struct barbican_meta *m, const char *id, size_t payload_len,
			int64_t now, char *err, size_t errlen);

/* One page of GET /v1/secrets: the entries and the "total" Barbican reports. */
struct barbican_list {
	struct barbican_meta *items;
	size_t n;
	uint64_t total;
};

/* Parses a list page of at most BARBICAN_BODY_MAX bytes. Returns 0 or -EBADMSG / -ENOMEM. */
int barbican_parse_list(const char *text, size_t len, struct barbican_list *ret, char *err,
			size_t errlen);
void barbican_list_done(struct barbican_list *l);

/* What keyscope reads from a Keystone v3 token response (POST /v3/auth/tokens). */
struct barbican_token_info {
	int64_t expires_at;			/* seconds since the epoch */
	char user_id[BARBICAN_ID_MAX + 1];
	char project_id[BARBICAN_ID_MAX + 1];	/* "" for an unscoped token */
};
int barbican_parse_token(const char *text, size_t len, struct barbican_token_info *ret,
			 char *err, size_t errlen);

/* The key-id in {"secret_ref": "https://.../v1/secrets/<uuid>"} (a POST's reply). */
int barbican_parse_secret_ref(const char *text, size_t len, char ret_id[static KEYID_MAX + 1],
			      char *err, size_t errlen);

/*
 * ISO 8601 as Barbican and Keystone write it: "YYYY-MM-DDTHH:MM:SS", optional fraction,
 * optional "Z" or "+HH:MM"/"-HH:MM"; naive times are UTC. Returns 0 or -EINVAL.
 */
int barbican_parse_time(const char *s, int64_t *ret);

/*
 * A Retry-After header's value: delta-seconds or an HTTP-date, relative to now (seconds since
 * the epoch). Returns 0 and the wait in seconds (at most 86400), or -EINVAL.
 */
int barbican_parse_retry_after(const char *s, int64_t now, uint64_t *ret_sec);

/*
 * An application credential file: "id = ..." and "secret = ..." lines, '#' comments. The
 * secret is returned NUL-terminated in secret memory (ret_secret->len excludes the NUL).
 * Returns 0, or -EBADMSG with the reason in err (never quoting the secret).
 */
int barbican_parse_app_credential(const char *text, size_t len, char *ret_id, size_t id_size,
				  struct secret_buf *ret_secret, char *err, size_t errlen);

/* ---- errors --------------------------------------------------------------------------- */

/* What an operator does next; decides retries and the use of the sealed cache. */
enum barbican_class {
	BARBICAN_OK,
	BARBICAN_UNREACHABLE,	/* connection, time-out, 5xx, 429, cut reply: retried; cache */
	BARBICAN_AUTH,		/* 401 or Keystone refused the credential */
	BARBICAN_DENIED,	/* 403: not delegated to this node */
	BARBICAN_NOT_FOUND,	/* 404 */
	BARBICAN_REFUSED,	/* other 4xx, 3xx (redirects are not followed), bad key */
	BARBICAN_TLS,		/* certificate verification or TLS set-up */
	BARBICAN_BAD_REPLY,	/* unparsable or oversized reply */
};

struct barbican_error {
	int error;			/* -errno, 0 for success */
	enum barbican_class cls;
	long status;			/* HTTP status, 0 when there was no answer */
	char message[512];		/* for the operator: what failed and what to do */
};

/*
 * Maps one HTTP exchange's outcome to an error: status is the HTTP status (0: no answer),
 * curl_code a CURLcode, what the operation ("fetching secret 1234..."), user the node's user
 * (for the 403 advice), url the endpoint. Returns the -errno it stores in ret (0 for 2xx).
 */
/* Sets e's message (printf-style). */
void barbican_error_set(struct barbican_error *e, const char *fmt, ...) _printf_(2, 3);

int barbican_error_from_http(long status, int curl_code, const char *what, const char *user,
			     const char *url, struct barbican_error *ret);

/* Whether an exchange with this outcome is worth another attempt (and back-off). */
bool barbican_should_retry(long status, int curl_code);

/*
 * Back-off before attempt n (1, 2, ...): exponential from base_ms, capped at max_ms, with
 * "equal jitter" from rnd (any 32 random bits): half fixed, half random.
 */
uint64_t barbican_backoff_ms(unsigned n, uint64_t base_ms, uint64_t max_ms, uint32_t rnd);

/* ---- the client (barbican.c, http.c, keystone.c, api.c) -------------------------------- */

enum barbican_auth {
	BARBICAN_AUTH_NONE,		/* unauthenticated development mode: X-Project-Id etc. */
	BARBICAN_AUTH_APP_CREDENTIAL,	/* Keystone v3 application credential */
};

struct barbican_options {
	const char *url;		/* https://host:9311 (a trailing /v1 is accepted) */
	const char *ca_file, *ca_dir, *client_cert, *client_key;	/* NULL or "" for none */
	enum barbican_auth auth;
	const char *project_id, *user_id, *roles;	/* auth none */
	const char *keystone_url, *app_credential_file;	/* auth app-credential */
	unsigned connect_timeout_sec, timeout_sec, deadline_sec, retries, concurrency;
};

struct barbican;
struct barbican_op;

/*
 * Sets up the client; reads and checks the application credential file (root-only). Does no
 * network I/O. Returns 0, or -errno with the reason logged.
 */
int barbican_new(sd_event *event, const struct barbican_options *o, struct barbican **ret);
/* New time limits and retries (a reload); requests that start from now on use them. */
void barbican_set_limits(struct barbican *b, const struct barbican_options *o);
/* Cancels every operation (no callbacks run) and frees b. Accepts NULL; returns NULL. */
struct barbican *barbican_free(struct barbican *b);

/* The node's Barbican user (the configured one, or the token's); "" until known. */
const char *barbican_user(const struct barbican *b);
/* The endpoint for messages ("https://127.0.0.1:9311"). */
const char *barbican_url(const struct barbican *b);

struct barbican_stats {
	uint64_t requests, retries, failures, auths;
	unsigned active, queued;
};
void barbican_get_stats(const struct barbican *b, struct barbican_stats *ret);

/*
 * Callbacks run from the event loop, never from inside the call that started the operation.
 * e->error is 0 on success. The operation is freed after its callback returns.
 */

/* key: the payload in secret memory; the callback may take it (then reset *key). */
typedef void (*barbican_fetch_cb)(void *userdata, const struct barbican_error *e,
				  const struct barbican_meta *meta, struct secret_buf *key);
/*
 * Fetches id's payload (Accept: application/octet-stream) and checks it against its metadata:
 * from hint when given (a fresh list entry: one request), else fetched alongside.
 */
int barbican_fetch(struct barbican *b, const char *id, const struct barbican_meta *hint,
		   barbican_fetch_cb cb, void *userdata, struct barbican_op **ret);

/* Every secret delegated to the node (GET /v1/secrets?acl_only=true, paged). */
typedef void (*barbican_list_cb)(void *userdata, const struct barbican_error *e,
				 const struct barbican_meta *items, size_t n);
int barbican_list_delegated(struct barbican *b, barbican_list_cb cb, void *userdata,
			    struct barbican_op **ret);

/*
 * Stores key as a new secret like `like` (type, algorithm, bit length, mode) named name, then
 * grants the node's user read on it (PUT .../acl). The JSON body with the base64 payload is
 * built in secret memory and wiped.
 */
typedef void (*barbican_store_cb)(void *userdata, const struct barbican_error *e,
				  const char *new_id);
int barbican_store(struct barbican *b, const struct barbican_meta *like,
		   const struct secret_buf *key, const char *name, barbican_store_cb cb,
		   void *userdata, struct barbican_op **ret);

/* Registers (add) or removes a consumer of secret id: {service, "volume", resource_id}. */
typedef void (*barbican_done_cb)(void *userdata, const struct barbican_error *e);
int barbican_consumer(struct barbican *b, const char *id, bool add, const char *service,
		      const char *resource_id, barbican_done_cb cb, void *userdata,
		      struct barbican_op **ret);

/* Cancels an operation that has not completed: its callback never runs. */
void barbican_op_cancel(struct barbican_op *op);
