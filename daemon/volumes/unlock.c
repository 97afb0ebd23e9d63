/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Keyslot unlocks in a child process (contracts in unlock.h).
 *
 * The child: fork(2) of the daemon. Secret memory is MADV_WIPEONFORK (secret.c), so the child
 * starts with none of the daemon's keys; the passphrase reaches it through a pipe. It dies
 * with the daemon (PR_SET_PDEATHSIG), is not dumpable (inherited), locks the pages it touches
 * (MCL_CURRENT | MCL_ONFAULT: its secret pool pages among them), unlocks with libcryptsetup,
 * writes {int32 error, uint32 length, key} to the answer pipe in one write(2) (at most
 * PIPE_BUF, so atomic) and _exit()s.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "luks.h"
#include "unlock.h"
#include "util.h"

#define UNLOCK_TIMEOUT_USEC (300ull * 1000000)	/* Argon2id under emulation takes ~30 s */
#define UNLOCK_KEY_MAX 512			/* LUKS2 allows 512-byte volume keys */
#define UNLOCK_MSG_MAX (8 + UNLOCK_KEY_MAX)

#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

struct unlock {
	struct unlocks *u;
	struct unlock *next;
	uint8_t fp[32];
	char device[256];
	struct secret_buf pass;		/* while queued */
	bool queued;
	pid_t pid;
	int fd;
	sd_event_source *io, *timer;
	unsigned char *msg;		/* secret memory, UNLOCK_MSG_MAX bytes */
	size_t got;
	uint64_t started;
	bool done;
	int error;
	struct call **waiters;
	size_t n_waiters;
};

struct unlocks {
	sd_event *event;
	struct unlock *list;
	unsigned max, running;
};

int unlocks_new(sd_event *event, unsigned max, struct unlocks **ret)
{
	struct unlocks *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	u->event = sd_event_ref(event);
	u->max = max ? max : 1;
	*ret = u;
	return 0;
}

static struct unlock *unlock_find(struct unlocks *u, const uint8_t fp[static 32])
{
	for (struct unlock *x = u->list; x; x = x->next)
		if (memcmp(x->fp, fp, 32) == 0)
			return x;
	return NULL;
}

static int add_waiter(struct unlock *x, struct call *c)
{
	struct call **w = reallocarray(x->waiters, x->n_waiters + 1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	x->waiters = w;
	x->waiters[x->n_waiters++] = c;
	call_suspend(c);
	return -EINPROGRESS;
}

/* Stops the child (when still running), reaps it and closes what is left. */
static void unlock_stop_child(struct unlock *x)
{
	x->io = sd_event_source_disable_unref(x->io);
	x->timer = sd_event_source_disable_unref(x->timer);
	x->fd = safe_close(x->fd);
	if (x->pid > 0) {
		(void) kill(x->pid, SIGKILL);	/* it has answered, or it is too late */
		while (waitpid(x->pid, NULL, 0) < 0 && errno == EINTR)
			;
		x->pid = 0;
		x->u->running--;
	}
}

static void unlock_free(struct unlock *x)
{
	struct unlocks *u = x->u;

	for (struct unlock **p = &u->list; *p; p = &(*p)->next)
		if (*p == x) {
			*p = x->next;
			break;
		}
	unlock_stop_child(x);
	secret_buf_done(&x->pass);
	secret_free(x->msg);
	free(x->waiters);
	free(x);
}

static void unlocks_start_queued(struct unlocks *u);

/* The unlock ended (error or key in x->msg): every waiting call runs again, then x goes. */
static void unlock_finish(struct unlock *x, int error)
{
	struct unlocks *u = x->u;
	struct call **waiters = TAKE_PTR(x->waiters);
	size_t n = x->n_waiters;
	uint64_t ms = (now_usec() - x->started) / 1000;

	x->n_waiters = 0;
	x->done = true;
	x->error = error;
	if (error < 0)
		log_info("Keyslot unlock of %s failed after %llu ms: %s.", x->device,
			 (unsigned long long) ms, strerror(-error));
	else
		log_info("Keyslot unlock of %s took %llu ms in process %d.", x->device,
			 (unsigned long long) ms, (int) x->pid);
	unlock_stop_child(x);
	for (size_t i = 0; i < n; i++)
		call_resume(waiters[i], 0);
	free(waiters);
	unlock_free(x);
	unlocks_start_queued(u);
}

static int on_unlock_io(sd_event_source *es, int fd, uint32_t revents, void *userdata)
{
	struct unlock *x = userdata;
	int32_t err;
	uint32_t len;
	ssize_t k;

	k = read(fd, x->msg + x->got, UNLOCK_MSG_MAX - x->got);
	if (k < 0) {
		if (errno == EINTR || errno == EAGAIN)
			return 0;
		unlock_finish(x, -errno);
		return 0;
	}
	if (k > 0) {
		x->got += (size_t) k;
		if (x->got < UNLOCK_MSG_MAX)
			return 0;
	}
	/* End of file (the child exited) or a full message. */
	if (x->got < 8) {
		log_error("The keyslot unlock process for %s died without an answer.", x->device);
		unlock_finish(x, -ECHILD);
		return 0;
	}
	memcpy(&err, x->msg, 4);
	memcpy(&len, x->msg + 4, 4);
	if (err > 0 || (err == 0 && (len == 0 || len > UNLOCK_KEY_MAX || x->got != 8 + len))) {
		log_error("The keyslot unlock process for %s answered garbage.", x->device);
		unlock_finish(x, -ECHILD);
		return 0;
	}
	unlock_finish(x, err);
	return 0;
}

static int on_unlock_timeout(sd_event_source *es, uint64_t usec, void *userdata)
{
	struct unlock *x = userdata;

	log_error("Keyslot unlock of %s did not end within %llu s; killed process %d.", x->device,
		  UNLOCK_TIMEOUT_USEC / 1000000, (int) x->pid);
	unlock_finish(x, -ETIMEDOUT);
	return 0;
}

static _Noreturn void child(int in, int fd, const char *device, size_t len, pid_t parent)
{
	struct secret_buf vk = {};
	unsigned char *msg, *pass;
	int32_t err;
	uint32_t n = 0;
	size_t got = 0;
	int r;

	(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	(void) mlockall(MCL_CURRENT | MCL_ONFAULT);
	msg = secret_alloc(UNLOCK_MSG_MAX);
	pass = secret_alloc(len);
	if (!msg || !pass)
		_exit(1);
	while (got < len) {
		ssize_t k = read(in, pass + got, len - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			_exit(1);
		got += (size_t) k;
	}
	safe_close(in);
	r = luks_volume_key_from_passphrase(device, pass, len, &vk);
	secret_erase(pass, len);
	if (r >= 0 && (vk.len == 0 || vk.len > UNLOCK_KEY_MAX))
		r = -EMSGSIZE;
	err = r < 0 ? r : 0;
	if (r >= 0) {
		n = (uint32_t) vk.len;
		memcpy(msg + 8, vk.data, vk.len);
	}
	memcpy(msg, &err, 4);
	memcpy(msg + 4, &n, 4);
	r = loop_write(fd, msg, 8 + n);
	secret_erase(msg, UNLOCK_MSG_MAX);
	secret_buf_done(&vk);
	_exit(r < 0 ? 1 : 0);
}

/* Starts x's child with the passphrase pass (len bytes). 0 or -errno (x is left as it was). */
static int unlock_spawn(struct unlock *x, const void *pass, size_t len)
{
	struct unlocks *u = x->u;
	int p[2], q[2], r;
	pid_t parent = getpid();

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(q, O_CLOEXEC) < 0) {
		r = -errno;
		safe_close(p[0]);
		safe_close(p[1]);
		return r;
	}
	x->pid = fork();
	if (x->pid < 0) {
		r = -errno;
		safe_close(p[0]);
		safe_close(p[1]);
		safe_close(q[0]);
		safe_close(q[1]);
		x->pid = 0;
		return r;
	}
	if (x->pid == 0) {
		safe_close(p[0]);
		safe_close(q[1]);
		child(q[0], p[1], x->device, len, parent);
	}
	u->running++;
	safe_close(p[1]);
	safe_close(q[0]);
	x->fd = p[0];
	/* An empty pipe takes 4096 bytes at once; a child that died early gives EPIPE (the
	 * daemon ignores SIGPIPE). */
	r = loop_write(q[1], pass, len);
	safe_close(q[1]);
	x->started = now_usec();
	if (r >= 0)
		r = fcntl(x->fd, F_SETFL, O_NONBLOCK) < 0 ? -errno : 0;
	if (r >= 0)
		r = sd_event_add_io(u->event, &x->io, x->fd, EPOLLIN, on_unlock_io, x);
	if (r >= 0)
		r = sd_event_add_time_relative(u->event, &x->timer, CLOCK_MONOTONIC,
					       UNLOCK_TIMEOUT_USEC, 1000000, on_unlock_timeout, x);
	if (r < 0) {
		unlock_stop_child(x);
		return r;
	}
	log_info("Unlocking a keyslot of %s in process %d (key derivation off the event loop).",
		 x->device, (int) x->pid);
	return 0;
}

/* Starts queued unlocks, oldest first, while fewer than unlock-concurrency run. */
static void unlocks_start_queued(struct unlocks *u)
{
	while (u->running < u->max) {
		struct unlock *oldest = NULL;
		int r;

		for (struct unlock *x = u->list; x; x = x->next)
			if (x->queued)
				oldest = x;	/* the list is newest first */
		if (!oldest)
			return;
		oldest->queued = false;
		r = unlock_spawn(oldest, oldest->pass.data, oldest->pass.len);
		secret_buf_done(&oldest->pass);
		if (r < 0) {
			log_error_errno(r, "Cannot start the keyslot unlock of %s: %m", oldest->device);
			unlock_finish(oldest, r);	/* starts the next one itself */
			return;
		}
	}
}

int unlock_start(struct unlocks *u, const uint8_t fp[static 32], const char *device,
		 const void *pass, size_t len, struct call *c)
{
	struct unlock *x = unlock_find(u, fp);
	int r;

	if (x)
		return add_waiter(x, c);
	if (len == 0 || len > 4096)	/* the pipe takes it without blocking */
		return -EINVAL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->u = u;
	x->fd = -1;
	memcpy(x->fp, fp, 32);
	snprintf(x->device, sizeof(x->device), "%s", device);
	x->msg = secret_alloc(UNLOCK_MSG_MAX);
	if (!x->msg) {
		free(x);
		return -ENOMEM;
	}
	x->next = u->list;
	u->list = x;
	if (u->running >= u->max) {
		/* Each unlock may take the keyslot's whole Argon2 memory (up to 1 GiB). */
		r = secret_buf_new(len, &x->pass);
		if (r < 0) {
			unlock_free(x);
			return r;
		}
		memcpy(x->pass.data, pass, len);
		x->queued = true;
		log_info("Queued the keyslot unlock of %s: %u running (unlock-concurrency %u).",
			 x->device, u->running, u->max);
	} else {
		r = unlock_spawn(x, pass, len);
		if (r < 0) {
			unlock_free(x);
			return r;
		}
	}
	r = add_waiter(x, c);
	if (r != -EINPROGRESS)
		unlock_free(x);
	return r;
}

int unlock_take(struct unlocks *u, const uint8_t fp[static 32], struct call *c,
		struct secret_buf *ret)
{
	struct unlock *x = unlock_find(u, fp);
	uint32_t len;
	int r;

	if (!x)
		return -ENOENT;
	if (!x->done)
		return add_waiter(x, c);
	if (x->error < 0)
		return x->error;
	memcpy(&len, x->msg + 4, 4);
	r = secret_buf_new(len, ret);
	if (r < 0)
		return r;
	memcpy(ret->data, x->msg + 8, len);
	return 0;
}

unsigned unlocks_running(const struct unlocks *u)
{
	return u ? u->running : 0;
}

unsigned unlocks_queued(const struct unlocks *u)
{
	unsigned n = 0;

	for (const struct unlock *x = u ? u->list : NULL; x; x = x->next)
		n += x->queued;
	return n;
}

struct unlocks *unlocks_free(struct unlocks *u)
{
	if (!u)
		return NULL;
	u->max = 0;	/* nothing queued starts now */
	while (u->list) {
		struct unlock *x = u->list;
		struct call **waiters = TAKE_PTR(x->waiters);
		size_t n = x->n_waiters;

		x->n_waiters = 0;
		unlock_free(x);
		for (size_t i = 0; i < n; i++)
			call_resume(waiters[i], -ECANCELED);
		free(waiters);
	}
	sd_event_unref(u->event);
	free(u);
	return NULL;
}
