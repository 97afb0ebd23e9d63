/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The control socket's transport (server.h): the listening socket, clients and their
 * credentials, framing of requests and payloads, authorisation, replies in order and after
 * the state they report is saved, deadlines. A call's own life cycle is call.c.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "event.h"
#include "log.h"
#include "metrics.h"
#include "proto.h"
#include "proto-ids.h"
#include "scope.h"
#include "server.h"
#include "util.h"

#define IN_SIZE (PROTO_MAX_MESSAGE + 1 + PROTO_MAX_PAYLOAD)
#define OUT_HIGH_WATER (4u * 1024 * 1024)	/* stop reading a client that does not read */

struct server {
	struct daemon *daemon;
	sd_event *event;
	const struct config *config;
	const struct method *methods;
	size_t n_methods;
	void (*on_done)(const struct call *c);	/* each call's end, answered or not */
	int listen_fd;
	sd_event_source *listen_source, *post_source;
	struct client *clients;
	unsigned n_clients;
};

struct client {
	struct server *server;
	struct client *prev, *next;
	int fd;
	sd_event_source *io, *timer;
	uid_t uid;
	pid_t pid;
	bool may_read, may_write;
	uint64_t deadline;	/* CLOCK_MONOTONIC usec by which the next request must be whole */
	uint8_t *in;		/* secret memory: requests may carry key material */
	size_t in_len;
	uint8_t *out;		/* secret memory: replies may carry key material */
	size_t out_len, out_alloc;
	/* No byte of in or out past these was written since it was last wiped: an erase wipes
	 * up to here, a free only this much (in is IN_SIZE, 64 KiB; out grows to hold the
	 * replies of a batch). */
	size_t in_hwm, out_hwm;
	/* Where the unanswered bytes start in in while client_process() answers a run of
	 * requests: they are moved down and the answered ones wiped once, at its end. 0 else. */
	size_t in_off;
	bool dead;
	bool eof;		/* the client shut its sending side: no more bytes will come */
	bool backlog;		/* stopped at OUT_HIGH_WATER with requests still buffered */
	struct call *pending;	/* a call waiting for the key source; later requests wait */
};

static void client_free(struct client *c)
{
	struct server *s = c->server;

	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_clients--;
	if (c->pending)
		c->pending->client = NULL;	/* it finishes on its own */
	sd_event_source_disable_unref(c->io);
	sd_event_source_disable_unref(c->timer);
	safe_close(c->fd);
	secret_free_used(c->in, c->in_hwm);
	secret_free_used(c->out, c->out_hwm);
	free(c);
}

static int out_append(struct client *c, const void *p, size_t n)
{
	if (c->out_alloc - c->out_len < n) {
		size_t a = c->out_alloc ? c->out_alloc : 4096;
		uint8_t *o;

		while (a - c->out_len < n)
			a *= 2;
		/* Moves the pages: neither a copy of the replies nor a wipe of the old ones. */
		o = secret_realloc(c->out, a);
		if (!o)
			return -ENOMEM;
		c->out = o;
		c->out_alloc = a;
	}
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	if (c->out_len > c->out_hwm)
		c->out_hwm = c->out_len;
	return 0;
}

static int client_reply(struct client *c, struct call *call)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	const char *text;
	int r;

	if (!o)
		return -ENOMEM;
	if (!call->error && call->reply_text && !call->reply_payload.len) {
		/* A reply written as text (scope lists at 10,000 scopes): no tree to build. */
		r = out_append(c, "{\"parameters\":", 14);
		if (r >= 0)
			r = out_append(c, call->reply_text, strlen(call->reply_text));
		return r >= 0 ? out_append(c, "}", 2) : r;
	}
	if (call->error) {
		json_object *p = json_object_new_object();
		json_object_object_add(o, "error", json_object_new_string(call->error));
		json_object_object_add(p, "message", json_object_new_string(call->message));
		json_object_object_add(o, "parameters", p);
	} else {
		json_object_object_add(o, "parameters",
				       call->reply ? json_object_get(call->reply)
						   : json_object_new_object());
		if (call->reply_payload.len)
			json_object_object_add(o, "payload-size",
					       json_object_new_int((int) call->reply_payload.len));
	}
	text = proto_to_string(o);
	r = out_append(c, text, strlen(text) + 1);
	if (r >= 0 && !call->error && call->reply_payload.len)
		r = out_append(c, call->reply_payload.data, call->reply_payload.len);
	return r;
}

static const struct method *method_find(const struct server *s, const char *name)
{
	for (size_t i = 0; i < s->n_methods; i++)
		if (streq(s->methods[i].name, name))
			return &s->methods[i];
	return NULL;
}

unsigned call_n_clients(const struct call *c)
{
	return c->rpc->n_clients;
}

/* Runs the request for method with the call's parameters, once the client may. */
static void dispatch_method(struct client *c, struct call *call, const char *method)
{
	const struct method *m = method_find(c->server, method);

	if (!m) {
		call_error(call, -EOPNOTSUPP, "keyscope.MethodNotFound", "unknown method '%s'",
			   method);
		return;
	}
	if (!(m->writes ? c->may_write : c->may_read)) {
		log_event(EVENT_REQUEST_REFUSED, LOG_NOTICE,
			  EVENT_REFUSAL(c, "keyscope.PermissionDenied"),
			  "Refused %s from uid %u (pid %d): not allowed.", m->name,
			   (unsigned) c->uid, (int) c->pid);
		call_error(call, -EPERM, "keyscope.PermissionDenied",
			   "%s needs root%s", m->name,
			   m->writes ? "" : " or the configured read-group");
		return;
	}
	if (call->payload.len > 0 && !m->payload) {
		call_error(call, -EINVAL, "keyscope.InvalidRequest",
			   "%s takes no payload; 'payload-size' must be absent", m->name);
		return;
	}
	call->method = m->name;
	call->m = m;
	call_run(call);
}

static void dispatch(struct client *c, struct call *call, json_object *req_obj)
{
	struct proto_request req;
	char err[256];
	int r;

	r = proto_request_check(req_obj, &req, err, sizeof(err));
	if (r < 0) {
		call_error(call, r, "keyscope.InvalidRequest", "%s", err);
		return;
	}
	call->params = req.parameters;
	call->request = json_object_get(req_obj);
	dispatch_method(c, call, req.method);
}

int server_call_internal(struct server *s, const char *method, json_object *params,
			 void (*done)(void *userdata, const struct call *c), void *userdata)
{
	const struct method *m = method_find(s, method);
	struct call *call;

	if (!m)
		return -EOPNOTSUPP;
	call = calloc(1, sizeof(*call));
	if (!call)
		return -ENOMEM;
	*call = (struct call) { .daemon = s->daemon, .rpc = s, .uid = 0, .pid = getpid(),
				.method = m->name, .params = params, .m = m,
				.request = json_object_get(params), .done = done,
				.done_userdata = userdata };
	call_run(call);
	if (!call_waiting(call))
		call_complete(call);
	return 0;
}

/* After a call ran: 2 when it waits (it is the client's pending call), else its reply, 1. */
static int client_answer(struct client *c, struct call *call)
{
	int r;

	if (call_waiting(call)) {
		c->pending = call;
		return 2;
	}
	if (c->server->on_done)
		c->server->on_done(call);
	r = client_reply(c, call);
	call_free(call);
	return r < 0 ? r : 1;
}

/* A request that proto_ids_read() took: it has no payload, the call owns the ids. */
static int client_handle_ids(struct client *c, struct proto_ids *ids, size_t len,
			     size_t *ret_consumed)
{
	struct call *call = calloc(1, sizeof(*call));

	if (!call) {
		proto_ids_done(ids);
		return -ENOMEM;
	}
	*call = (struct call) { .daemon = c->server->daemon, .rpc = c->server, .client = c,
				.uid = c->uid, .pid = c->pid, .started = now_usec(),
				.key_ids = *ids };
	*ids = (struct proto_ids) {}; /* transferred */
	dispatch_method(c, call, call->key_ids.method);
	*ret_consumed = len + 1;
	return client_answer(c, call);
}

/*
 * Handles one framed message of len bytes at c->in + c->in_off; payload bytes follow its NUL.
 * Returns 1 when it was answered, 2 when its call waits (the client's next requests wait too),
 * 0 when more bytes are needed, -errno.
 */
static int client_handle(struct client *c, size_t len, size_t *ret_consumed)
{
	const uint8_t *in = c->in + c->in_off;
	_cleanup_json_ json_object *o = NULL;
	struct proto_ids ids = {};
	struct call *call;
	json_object *ps;
	char err[256];
	size_t plen = 0;
	int r;

	/* A batch of key-ids (the boot-time case) needs no tree; all else takes the full path. */
	r = proto_ids_read((const char *) in, len, PROTO_IDS_MAX, &ids);
	if (r < 0)
		return r;
	if (r > 0)
		return client_handle_ids(c, &ids, len, ret_consumed);
	r = proto_parse((const char *) in, len, &o, err, sizeof(err));
	if (r >= 0 && json_object_object_get_ex(o, "payload-size", &ps) &&
	    json_object_is_type(ps, json_type_int)) {
		int64_t v = json_object_get_int64(ps);
		if (v >= 1 && v <= PROTO_MAX_PAYLOAD)
			plen = (size_t) v;
	}
	if (c->in_len < len + 1 + plen)
		return 0;	/* wait for the payload */

	call = calloc(1, sizeof(*call));
	if (!call)
		return -ENOMEM;
	*call = (struct call) { .daemon = c->server->daemon, .rpc = c->server, .client = c,
				.uid = c->uid, .pid = c->pid, .started = now_usec() };
	if (r < 0)
		call_error(call, r, "keyscope.InvalidRequest", "%s", err);
	else {
		if (plen) {
			r = secret_buf_new(plen, &call->payload);
			if (r < 0) {
				call_free(call);
				return r;
			}
			memcpy(call->payload.data, in + len + 1, plen);
		}
		dispatch(c, call, o);
	}
	*ret_consumed = len + 1 + plen;
	return client_answer(c, call);
}

static void client_arm(struct client *c);
static void client_deadline_reset(struct client *c);

/* The client sent its last byte: what is left once the whole requests are answered is cut. */
static void client_judge_eof(struct client *c)
{
	if (c->in_len > 0) {
		struct call call = {};
		call_error(&call, -EPIPE, "keyscope.IncompleteRequest",
			   "connection closed after %zu bytes of an unfinished request", c->in_len);
		(void) client_reply(c, &call);
		secret_erase(c->in, c->in_hwm);
		c->in_len = c->in_hwm = 0;
	}
	c->dead = true;
}

/* Moves the unanswered bytes to the start of in and wipes everything after them. */
static void in_compact(struct client *c)
{
	if (c->in_hwm <= c->in_len)
		return;
	if (c->in_off > 0)
		memmove(c->in, c->in + c->in_off, c->in_len);
	c->in_off = 0;
	secret_erase(c->in + c->in_len, c->in_hwm - c->in_len);
	c->in_hwm = c->in_len;
}

/*
 * Answers the whole requests buffered, in order, until one waits or the replies pass
 * OUT_HIGH_WATER; on_post() comes back for the rest once the replies are flushed.
 */
static void client_process(struct client *c)
{
	c->backlog = false;
	while (!c->pending && !c->dead) {
		size_t len, consumed = 0;
		int r = proto_frame(c->in + c->in_off, c->in_len, &len);

		if (r == -EMSGSIZE) {
			struct call call = {};
			call_error(&call, r, "keyscope.MessageTooLarge",
				   "request larger than %d bytes", PROTO_MAX_MESSAGE);
			if (c->server->on_done)
				c->server->on_done(&call);
			(void) client_reply(c, &call);
			log_notice("Dropping client pid %d: request too large.", (int) c->pid);
			c->dead = true;	/* the stream cannot be resynchronised */
			c->in_len = 0;
			break;
		}
		if (r == 0)
			break;
		r = client_handle(c, len, &consumed);
		if (r < 0) {
			c->dead = true;
			break;
		}
		if (r == 0)
			break;
		c->in_off += consumed;
		c->in_len -= consumed;
		client_deadline_reset(c);
		if (r == 2)
			break;
		if (c->out_len > OUT_HIGH_WATER) {
			c->backlog = c->in_len > 0;
			break;
		}
	}
	in_compact(c);
	if (c->eof && !c->pending && !c->backlog && !c->dead)
		client_judge_eof(c);
	client_arm(c);
}

static int client_flush(struct client *c)
{
	while (c->out_len > 0) {
		ssize_t k = send(c->fd, c->out, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		memmove(c->out, c->out + k, c->out_len - (size_t) k);
		c->out_len -= (size_t) k;
		secret_erase(c->out + c->out_len, c->out_hwm - c->out_len);
		c->out_hwm = c->out_len;
	}
	return 0;
}

static void client_arm(struct client *c)
{
	uint32_t ev = 0;

	if (c->out_len <= OUT_HIGH_WATER && c->in_len < IN_SIZE && !c->dead && !c->eof &&
	    !c->pending && !c->backlog)
		ev |= EPOLLIN;
	if (c->out_len > 0)
		ev |= EPOLLOUT;
	(void) sd_event_source_set_io_events(c->io, ev);

	/* The deadline moves only when a request completes (client_deadline_reset()), never
	 * for a trickle of bytes, so neither an idle nor a slow client holds a slot for long. */
	/* A client waiting for its own reply is not idle: the key source's deadline bounds it. */
	(void) sd_event_source_set_time(c->timer, c->deadline);
	(void) sd_event_source_set_enabled(c->timer, c->pending ? SD_EVENT_OFF : SD_EVENT_ONESHOT);
}

void call_complete(struct call *call)
{
	struct client *c = call->client;

	if (call->rpc && call->rpc->on_done)
		call->rpc->on_done(call);
	if (!c) {
		if (call->done)
			call->done(call->done_userdata, call);
		else
			log_debug("%s for pid %d finished after its client left; reply dropped.",
				  call->m ? call->m->name : "call", (int) call->pid);
		call_free(call);
		return;
	}
	c->pending = NULL;
	if (client_reply(c, call) < 0)
		c->dead = true;
	call_free(call);
	client_deadline_reset(c);
	/* Requests that arrived meanwhile; replies go out from on_post(). */
	client_process(c);
}

static void client_deadline_reset(struct client *c)
{
	c->deadline = now_usec() + (uint64_t) c->server->config->client_timeout_sec * 1000000u;
}

static int on_client_io(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct client *c = userdata;

	if (revents & EPOLLIN) {
		ssize_t k = recv(fd, c->in + c->in_len, IN_SIZE - c->in_len, MSG_DONTWAIT);

		if (k < 0 && errno != EAGAIN && errno != EINTR) {
			client_free(c);
			return 0;
		}
		if (k == 0) {
			c->eof = true;
			client_process(c);
			if (c->dead && c->out_len == 0) {
				client_free(c);
				return 0;
			}
		}
		if (k > 0) {
			c->in_len += (size_t) k;
			if (c->in_len > c->in_hwm)
				c->in_hwm = c->in_len;
			client_process(c);
		}
	}
	if ((revents & (EPOLLHUP | EPOLLERR)) && !(revents & EPOLLIN)) {
		client_free(c);
		return 0;
	}
	/* Replies are written from on_post(), after the state they report is saved. */
	client_arm(c);
	return 0;
}

static int on_client_timeout(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct client *c = userdata;

	log_notice("Dropping client pid %d uid %u: no complete request for %us.", (int) c->pid,
		   (unsigned) c->uid, c->server->config->client_timeout_sec);
	client_free(c);
	return 0;
}

static bool peer_in_group(int fd, gid_t primary, gid_t want)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (primary == want)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == want)
			return true;
	return false;
}

/*
 * Root may use every slot; other users share at most half of them and get
 * CLIENTS_PER_USER each, so local users cannot lock root out by holding connections open.
 */
#define CLIENTS_PER_USER 4u

static bool client_slot_free(struct server *s, uid_t uid)
{
	unsigned others = 0, same = 0;

	if (s->n_clients >= s->config->max_clients)
		return false;
	if (uid == 0)
		return true;
	for (struct client *c = s->clients; c; c = c->next) {
		if (c->uid != 0)
			others++;
		if (c->uid == uid)
			same++;
	}
	return same < CLIENTS_PER_USER && others < s->config->max_clients / 2;
}

static int on_accept(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct server *s = userdata;
	_cleanup_close_ int cfd = -EBADF;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct client *c;
	int r;

	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0)
		return 0;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		log_warning_errno(-errno, "Failed to read peer credentials, dropping client: %m");
		return 0;
	}
	if (!client_slot_free(s, cred.uid)) {
		metrics_count_refusal(METRIC_REFUSED_LIMIT);
		log_warning("Too many clients (%u in all) for uid %u, refusing pid %d.",
			    s->n_clients, (unsigned) cred.uid, (int) cred.pid);
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return 0;
	c->server = s;
	c->fd = TAKE_FD(cfd);
	c->uid = cred.uid;
	c->pid = cred.pid;
	c->may_write = cred.uid == 0;
	c->may_read = cred.uid == 0 ||
		      (s->config->have_read_group &&
		       peer_in_group(c->fd, cred.gid, s->config->read_group));
	c->next = s->clients;
	if (s->clients)
		s->clients->prev = c;
	s->clients = c;
	s->n_clients++;

	c->in = secret_alloc(IN_SIZE);
	r = c->in ? sd_event_add_io(s->event, &c->io, c->fd, EPOLLIN, on_client_io, c) : -ENOMEM;
	if (r >= 0)
		r = sd_event_add_time(s->event, &c->timer, CLOCK_MONOTONIC, UINT64_MAX, 0,
				      on_client_timeout, c);
	if (r < 0) {
		log_warning_errno(r, "Failed to set up client pid %d, dropping it: %m",
				  (int) cred.pid);
		client_free(c);
		return 0;
	}
	client_deadline_reset(c);
	client_arm(c);
	log_debug("Client pid %d uid %u connected.", (int) c->pid, (unsigned) c->uid);
	return 0;
}

/* Runs once per loop iteration after all handlers: save state, then write replies. */
static int on_post(sd_event_source *es, void *userdata)
{
	struct server *s = userdata;
	struct client *c, *next;
	int r;

	r = scopes_save(s->daemon->scopes);
	if (r < 0)
		log_warning_errno(r, "State not saved, replies held back until it is: %m");

	for (c = s->clients; c; c = next) {
		next = c->next;
		if (r >= 0 && client_flush(c) < 0) {
			client_free(c);
			continue;
		}
		if (c->dead && c->out_len == 0) {
			client_free(c);
			continue;
		}
		/* Whole requests left buffered at the high-water mark: no new bytes may come to
		 * wake us for them. Their replies go out on a later pass, after a save. */
		if (r >= 0 && c->backlog && c->out_len <= OUT_HIGH_WATER)
			client_process(c);
		else
			client_arm(c);
	}
	return 0;
}

static int server_listen(struct server *s)
{
	_cleanup_close_ int fd = server_socket_open(s->config->socket_path);
	int r;

	if (fd < 0)
		return fd;
	r = sd_event_add_io(s->event, &s->listen_source, fd, EPOLLIN, on_accept, s);
	if (r >= 0)
		r = sd_event_add_post(s->event, &s->post_source, on_post, s);
	if (r < 0)
		return log_error_errno(r, "Failed to watch the socket: %m");
	s->listen_fd = TAKE_FD(fd);
	return 0;
}

void server_drop_clients(struct server *s)
{
	while (s && s->clients)
		client_free(s->clients);
}

struct server *server_free(struct server *s)
{
	if (!s)
		return NULL;
	server_drop_clients(s);
	s->listen_source = sd_event_source_disable_unref(s->listen_source);
	s->post_source = sd_event_source_disable_unref(s->post_source);
	if (s->listen_fd >= 0) {
		(void) unlink(s->config->socket_path);
		s->listen_fd = safe_close(s->listen_fd);
	}
	free(s);
	return NULL;
}

int server_new(struct daemon *d, const struct method *table, size_t n,
	       void (*on_done)(const struct call *c), struct server **ret)
{
	struct server *s = calloc(1, sizeof(*s));
	int r;

	if (!s)
		return log_oom();
	*s = (struct server) { .daemon = d, .event = d->event, .config = d->config,
			       .methods = table, .n_methods = n, .on_done = on_done,
			       .listen_fd = -EBADF };
	r = server_listen(s);
	if (r < 0) {
		server_free(s);
		return r;
	}
	*ret = s;
	return 0;
}
