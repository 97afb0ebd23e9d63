/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Keyslot unlocks in a helper process (contracts in unlock.h).
 *
 * The helper is a program of its own, keyscope-unlock (helpers/keyscope-unlock.c), found next
 * to keyscoped (a build folder) or else in LIBEXECDIR. It is started with fork(2) and, at once,
 * execve(2): between the two the child makes only async-signal-safe calls (a thread of a
 * library, libcurl's resolver, may hold locks at the fork), and it keeps nothing of the daemon
 * but its two pipes: the passphrase on fd 3 (written by the daemon, then closed), the answer on
 * fd 4; 0-2 are /dev/null and every other descriptor is closed (close_range(2)), so a client
 * the daemon drops sees the end of its connection at once. It gets PR_SET_PDEATHSIG (dies with
 * the daemon), an empty signal mask and an environment of PATH only. The helper writes
 * {int32 error, uint32 length, key} in one write(2) (at most PIPE_BUF, so atomic) and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "unlock.h"
#include "util.h"

#ifndef KEYSCOPE_LIBEXECDIR
#define KEYSCOPE_LIBEXECDIR "/usr/libexec/keyscope"
#endif
#define UNLOCK_HELPER "keyscope-unlock"

#define UNLOCK_TIMEOUT_USEC (300ull * 1000000)	/* Argon2id under emulation takes ~30 s */
#define UNLOCK_KEY_MAX 512			/* LUKS2 allows 512-byte volume keys */
#define UNLOCK_MSG_MAX (8 + UNLOCK_KEY_MAX)
#define UNLOCK_PASS_FD 3			/* the helper's descriptors */
#define UNLOCK_ANSWER_FD 4

struct waiter {
	unlock_done_t done;
	void *userdata;
};

struct unlock {
	struct unlocks *u;
	struct unlock *next;
	uint8_t fp[32];
	char device[256];
	bool add;			/* --add-keyslot: the answer is a keyslot number */
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
	struct waiter *waiters;
	size_t n_waiters;
};

struct unlocks {
	sd_event *event;
	struct unlock *list;
	unsigned max, running;
	char helper[PATH_MAX];		/* empty: not found */
};

/* keyscope-unlock next to the running keyscoped (a build folder), else in LIBEXECDIR. */
static void helper_find(char *path, size_t size)
{
	char self[PATH_MAX], *slash;
	ssize_t k = readlink("/proc/self/exe", self, sizeof(self) - 1);
	int r;

	if (k > 0) {
		self[k] = 0;
		slash = strrchr(self, '/');
		if (slash) {
			*slash = 0;
			r = snprintf(path, size, "%s/" UNLOCK_HELPER, self);
			if (r > 0 && (size_t) r < size && access(path, X_OK) == 0)
				return;
		}
	}
	snprintf(path, size, "%s", KEYSCOPE_LIBEXECDIR "/" UNLOCK_HELPER);
	if (access(path, X_OK) == 0)
		return;
	log_warning("%s is neither next to keyscoped nor in " KEYSCOPE_LIBEXECDIR ": volumes "
		    "opened with a passphrase (os-brick) cannot be attached until it is installed.",
		    UNLOCK_HELPER);
	path[0] = 0;
}

int unlocks_new(sd_event *event, unsigned max, struct unlocks **ret)
{
	struct unlocks *u = calloc(1, sizeof(*u));

	if (!u)
		return -ENOMEM;
	u->event = sd_event_ref(event);
	u->max = max ? max : 1;
	helper_find(u->helper, sizeof(u->helper));
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

static int add_waiter(struct unlock *x, unlock_done_t done, void *userdata)
{
	struct waiter *w = reallocarray(x->waiters, x->n_waiters + 1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	x->waiters = w;
	x->waiters[x->n_waiters++] = (struct waiter) { done, userdata };
	return -EINPROGRESS;
}

/* Tells the n waiters w (taken from their unlock) that it has ended (error 0) or was
 * cancelled (-ECANCELED), and frees w. */
static void waiters_done(struct waiter *w, size_t n, int error)
{
	for (size_t i = 0; i < n; i++)
		w[i].done(w[i].userdata, error);
	free(w);
}

/* Stops the child (when still running), reaps it and closes what is left. */
static void unlock_stop_child(struct unlock *x)
{
	int status = 0;

	x->io = sd_event_source_disable_unref(x->io);
	x->timer = sd_event_source_disable_unref(x->timer);
	x->fd = safe_close(x->fd);
	if (x->pid > 0) {
		(void) kill(x->pid, SIGKILL);	/* it has answered, or it is too late */
		while (waitpid(x->pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
			log_error("Could not run %s for the keyslot unlock of %s (see above).",
				  x->u->helper, x->device);
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
	uint64_t ms = (now_usec() - x->started) / 1000;
	size_t n;

	x->done = true;
	x->error = error;
	if (error < 0)
		log_info("Keyslot %s of %s failed after %llu ms: %s.", x->add ? "add" : "unlock",
			 x->device, (unsigned long long) ms, strerror(-error));
	else
		log_info("Keyslot %s of %s took %llu ms in process %d.", x->add ? "add" : "unlock",
			 x->device, (unsigned long long) ms, (int) x->pid);
	unlock_stop_child(x);
	n = x->n_waiters;
	x->n_waiters = 0;
	/* They run again now and take the result with unlock_take(); then x goes. */
	waiters_done(TAKE_PTR(x->waiters), n, 0);
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
	if (x->add ? (len != 0 || x->got != 8) :
	    (err > 0 || (err == 0 && (len == 0 || len > UNLOCK_KEY_MAX || x->got != 8 + len)))) {
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

/*
 * The child between fork() and execve(): async-signal-safe calls only. Moves the passphrase
 * pipe to fd 3, the answer pipe to fd 4 and /dev/null to 0-2, closes everything else, and runs
 * the helper. Exits 127 when it cannot.
 */
static _Noreturn void exec_helper(const char *path, char *const argv[], int in, int out,
				  int null, pid_t parent)
{
	static char *const envp[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	struct rlimit rl;
	sigset_t none;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(127);
	/* Above every target first, so that no dup2() below closes a source. */
	in = fcntl(in, F_DUPFD, UNLOCK_ANSWER_FD + 1);
	out = fcntl(out, F_DUPFD, UNLOCK_ANSWER_FD + 1);
	null = fcntl(null, F_DUPFD, UNLOCK_ANSWER_FD + 1);
	if (in < 0 || out < 0 || null < 0 || dup2(null, STDIN_FILENO) < 0 ||
	    dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0 ||
	    dup2(in, UNLOCK_PASS_FD) < 0 || dup2(out, UNLOCK_ANSWER_FD) < 0)
		_exit(127);
	if (close_range(UNLOCK_ANSWER_FD + 1, ~0U, 0) < 0) {
		/* Before Linux 5.9, or filtered: one by one, up to the descriptor limit. */
		unsigned max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 20) ?
			       (unsigned) rl.rlim_cur : 1u << 20;
		for (unsigned fd = UNLOCK_ANSWER_FD + 1; fd < max; fd++)
			(void) close((int) fd);
	}
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);
	(void) signal(SIGPIPE, SIG_DFL);
	execve(path, argv, envp);
	_exit(127);
}

/* Forks and runs the helper for x with the pipe ends in (passphrase) and out (answer). */
static int helper_fork(struct unlock *x, int in, int out)
{
	char add[] = "--add-keyslot";
	char *argv[] = { UNLOCK_HELPER, x->add ? add : x->device, x->add ? x->device : NULL,
			 NULL };
	_cleanup_close_ int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	pid_t parent = getpid(), pid;

	if (null < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0)
		exec_helper(x->u->helper, argv, in, out, null, parent);
	x->pid = pid;
	x->u->running++;
	return 0;
}

/* Starts x's helper with the passphrase pass (len bytes). 0 or -errno (x is left as it was). */
static int unlock_spawn(struct unlock *x, const void *pass, size_t len)
{
	struct unlocks *u = x->u;
	int p[2], q[2], r;

	if (!u->helper[0]) {
		log_error("Cannot unlock a keyslot of %s: %s is not installed (neither next to "
			  "keyscoped nor in " KEYSCOPE_LIBEXECDIR ").", x->device, UNLOCK_HELPER);
		return -ENOENT;
	}
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(q, O_CLOEXEC) < 0) {
		r = -errno;
		safe_close(p[0]);
		safe_close(p[1]);
		return r;
	}
	r = helper_fork(x, q[0], p[1]);
	safe_close(p[1]);
	safe_close(q[0]);
	if (r < 0) {
		safe_close(p[0]);
		safe_close(q[1]);
		return r;
	}
	x->fd = p[0];
	/* An empty pipe takes 4096 bytes at once; a helper that died early gives EPIPE (the
	 * daemon ignores SIGPIPE). Its end of file ends the passphrase. */
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

/* unlock_start() and unlock_start_add(): pass is the helper's whole input (len bytes). */
static int unlock_begin(struct unlocks *u, const uint8_t fp[static 32], const char *device,
			bool add, const void *pass, size_t len, unlock_done_t done,
			void *userdata)
{
	struct unlock *x = unlock_find(u, fp);
	int r;

	if (x)
		return add_waiter(x, done, userdata);
	if (len == 0 || len > 4096)	/* the pipe takes it without blocking */
		return -EINVAL;
	if (strlen(device) >= sizeof(x->device))	/* never a truncated path to the helper */
		return -ENAMETOOLONG;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->u = u;
	x->add = add;
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
		log_info("Queued the keyslot %s of %s: %u running (unlock-concurrency %u).",
			 add ? "add" : "unlock", x->device, u->running, u->max);
	} else {
		r = unlock_spawn(x, pass, len);
		if (r < 0) {
			unlock_free(x);
			return r;
		}
	}
	r = add_waiter(x, done, userdata);
	if (r != -EINPROGRESS)
		unlock_free(x);
	return r;
}

int unlock_start(struct unlocks *u, const uint8_t fp[static 32], const char *device,
		 const void *pass, size_t len, unlock_done_t done, void *userdata)
{
	return unlock_begin(u, fp, device, false, pass, len, done, userdata);
}

int unlock_start_add(struct unlocks *u, const uint8_t fp[static 32], const char *device,
		     const struct secret_buf *vk, const void *pass, size_t len,
		     unlock_done_t done, void *userdata)
{
	_cleanup_secret_buf_ struct secret_buf in = {};
	uint32_t n = (uint32_t) vk->len;
	int r;

	if (unlock_find(u, fp))
		return unlock_begin(u, fp, device, true, NULL, 0, done, userdata);
	if (vk->len == 0 || vk->len > UNLOCK_KEY_MAX || len == 0 || 4 + vk->len + len > 4096)
		return -EINVAL;
	r = secret_buf_new(4 + vk->len + len, &in);
	if (r < 0)
		return r;
	memcpy(in.data, &n, 4);
	memcpy(in.data + 4, vk->data, vk->len);
	memcpy(in.data + 4 + vk->len, pass, len);
	return unlock_begin(u, fp, device, true, in.data, in.len, done, userdata);
}

int unlock_take(struct unlocks *u, const uint8_t fp[static 32], unlock_done_t done,
		void *userdata, struct secret_buf *ret)
{
	struct unlock *x = unlock_find(u, fp);
	uint32_t len;
	int r;

	if (!x)
		return -ENOENT;
	if (!x->done)
		return add_waiter(x, done, userdata);
	if (x->error < 0 || x->add)
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
		struct waiter *w = TAKE_PTR(x->waiters);
		size_t n = x->n_waiters;

		x->n_waiters = 0;
		unlock_free(x);
		waiters_done(w, n, -ECANCELED);
	}
	sd_event_unref(u->event);
	free(u);
	return NULL;
}
