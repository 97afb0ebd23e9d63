/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "util.h"

struct ctl ctl = { .timeout_ms = 30000 };

static int ctl_connect(void)
{
	int r;

	if (ctl.connected)
		return 0;
	r = proto_client_connect(ctl.socket_path, ctl.timeout_ms, &ctl.client);
	if (r < 0) {
		fprintf(stderr,
			"keyscopectl: cannot connect to keyscoped at %s: %s\n"
			"Is keyscoped running (systemctl status keyscoped)? Use --socket or "
			"KEYSCOPE_SOCKET for another socket.\n",
			ctl.socket_path, strerror(-r));
		return r;
	}
	ctl.connected = true;
	return 0;
}

/* Transport failures, said once for ctl_call() and ctl_call_with(). */
static int ctl_transport_error(int r)
{
	if (r == -ETIMEDOUT)
		fprintf(stderr, "keyscopectl: keyscoped did not answer within %u ms.\n",
			ctl.timeout_ms);
	else
		fprintf(stderr, "keyscopectl: talking to keyscoped failed: %s\n", strerror(-r));
	return r;
}

int ctl_reply_check(json_object *reply, json_object **ret_params)
{
	const char *error, *message;
	json_object *rp;

	error = proto_reply_error(reply, &message);
	if (error) {
		if (ctl.json) {
			printf("%s\n", json_object_to_json_string_ext(reply,
								      JSON_C_TO_STRING_PRETTY));
		}
		fprintf(stderr, "keyscopectl: %s (%s)\n", message ?: "failed", error);
		return -EIO;
	}
	if (!json_object_object_get_ex(reply, "parameters", &rp)) {
		fprintf(stderr, "keyscopectl: reply from keyscoped has no parameters\n");
		return -EBADMSG;
	}
	*ret_params = rp;
	return 0;
}

int ctl_call_with(const char *method, proto_reader_fn reader, void *userdata,
		  const char *reader_error)
{
	char req[32 + PROTO_METHOD_MAX];
	int r, n;

	r = ctl_connect();
	if (r < 0)
		return r;
	n = snprintf(req, sizeof(req), "{\"method\":\"%s\"}", method);
	if (n < 0 || (size_t) n >= sizeof(req))
		return -EINVAL;
	r = proto_send(&ctl.client, req, (size_t) n, NULL, 0);
	if (r >= 0)
		r = proto_recv_with(&ctl.client, reader, userdata, NULL);
	if ((r == -EBADMSG || r == -EPROTO) && reader_error && reader_error[0]) {
		fprintf(stderr, "keyscopectl: malformed reply from keyscoped, nothing printed: %s\n",
			reader_error);
		return r;
	}
	return r < 0 ? ctl_transport_error(r) : 0;
}

int ctl_call(const char *method, json_object *params, const void *payload, size_t payload_len,
	     json_object **ret_reply, json_object **ret_params)
{
	_cleanup_json_ json_object *p = params, *reply = NULL;
	json_object *rp;
	int r;

	r = ctl_connect();
	if (r < 0)
		return r;
	r = proto_call(&ctl.client, method, p, payload, payload_len, &reply, NULL);
	if (r < 0)
		return ctl_transport_error(r);
	r = ctl_reply_check(reply, &rp);
	if (r < 0)
		return r;
	*ret_params = rp;
	*ret_reply = TAKE_PTR(reply);
	return 0;
}

void ctl_print_json(json_object *params)
{
	printf("%s\n", json_object_to_json_string_ext(params, JSON_C_TO_STRING_PRETTY |
							      JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char *json_str(json_object *o, const char *field)
{
	json_object *v;

	if (!json_object_object_get_ex(o, field, &v))
		return "";
	return json_object_get_string(v);
}

long long json_int(json_object *o, const char *field)
{
	json_object *v;

	if (!json_object_object_get_ex(o, field, &v))
		return 0;
	return (long long) json_object_get_int64(v);
}

int ctl_call_print(const char *method, json_object *params, void (*print)(json_object *))
{
	_cleanup_json_ json_object *reply = NULL;
	json_object *rp;

	if (ctl_call(method, params, NULL, 0, &reply, &rp) < 0)
		return 1;
	if (ctl.json)
		ctl_print_json(rp);
	else if (print)
		print(rp);
	return 0;
}
