/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bench-install: keys per second installed as kernel logon keys.
 *
 *   bench-install raw N            add_key(2) of N random 64-byte logon keys into a fresh
 *                                  keyring in @s, then invalidate them: the kernel's own rate
 *   bench-install raw-perm N       the same, each key also given keyscope's permissions with
 *                                  KEYCTL_SETPERM: the kernel work keyscoped does per key
 *   bench-install raw-perm-long N  the same with descriptions as long as keyscoped's (45 bytes)
 *   bench-install create SOCKET N  create N keys in keyscoped's store; prints their key-ids
 *   bench-install daemon SOCKET W [B] < IDS
 *                                  KeyInstall each key-id through keyscoped with W requests in
 *                                  flight (B key-ids per request, default 1), timed; then
 *                                  KeyRelease them all (not timed); the last request carries
 *                                  the ids that do not fill a whole batch
 *   bench-install install|release SOCKET W [B] < IDS
 *                                  only the install, or only the release, timed
 *
 *   bench-install first-answer SOCKET KEYSCOPED ARGS...
 *                                  start keyscoped, time fork to its first answer (a Ping)
 *   bench-install call SOCKET METHOD N [PID]
 *                                  N calls of METHOD in a row: the median round trip, and
 *                                  with keyscoped's PID its CPU time per call
 *
 * Prints "<mode> <n> keys <seconds> s <keys/s> keys/s cpu <us> us/key" on stdout (the CPU
 * time of this process over the timed part: the loop's own, or the client's).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keyid.h"
#include "keyring.h"
#include "proto.h"
#include "secret.h"
#include "util.h"

/* This process's CPU time so far, usec: under load, wall time says little of the work. */
static uint64_t cpu_usec(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) < 0)
		return 0;
	return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* cpu: this process's CPU time over the timed part, usec. */
static void report(const char *mode, size_t n, uint64_t usec, uint64_t cpu)
{
	double s = (double) usec / 1e6;

	printf("%s %zu keys %.3f s %.0f keys/s cpu %.2f us/key\n", mode, n, s, (double) n / s,
	       (double) cpu / (double) n);
}

/* perm: also KEYCTL_SETPERM each key to keyscope's permissions, the kernel work keyscoped does;
 * long: descriptions as long as keyscoped's ("keyscope:" and a UUID, 45 bytes, not "bench:N"),
 * which the kernel hashes and compares on every add_key(2). */
static int bench_raw(size_t n, bool perm, bool long_desc)
{
	_cleanup_secret_ uint8_t *key = secret_alloc(64);
	key_serial_t ring, *ids = calloc(n, sizeof(*ids));
	char desc[64];
	uint64_t t0, c0;

	if (!key || !ids)
		return 1;
	ring = add_key("keyring", "bench-raw", NULL, 0, KEY_SPEC_SESSION_KEYRING);
	if (ring < 0) {
		perror("add_key keyring");
		return 1;
	}
	t0 = now_usec();
	c0 = cpu_usec();
	for (size_t i = 0; i < n; i++) {
		/* fresh material per key, as the daemon unseals a different key each time */
		if (getrandom(key, 64, 0) != 64)
			return 1;
		if (long_desc)
			snprintf(desc, sizeof(desc), "keyscope:%08zx-7b6d-4e21-9a0f-5c8d7e6b4a21", i);
		else
			snprintf(desc, sizeof(desc), "bench:%zu", i);
		ids[i] = add_key("logon", desc, key, 64, ring);
		if (ids[i] < 0) {
			perror("add_key");
			return 1;
		}
		if (perm && keyctl_setperm(ids[i], KEYSCOPE_KEY_PERM) < 0) {
			perror("keyctl_setperm");
			return 1;
		}
	}
	report(long_desc ? "raw-add_key+setperm-longdesc" : perm ? "raw-add_key+setperm" :
	       "raw-add_key", n, now_usec() - t0, cpu_usec() - c0);
	for (size_t i = 0; i < n; i++)
		(void) keyctl_invalidate(ids[i]);
	(void) keyctl_invalidate(ring);
	free(ids);
	return 0;
}

static int expect_ok(json_object *reply, const char *what)
{
	const char *m, *e = proto_reply_error(reply, &m);

	if (e) {
		fprintf(stderr, "bench-install: %s: %s (%s)\n", what, m ?: "", e);
		return -1;
	}
	return 0;
}

/* Formats a request for ids[0..n) (one "key-id", or "key-ids" when batch > 1). */
static size_t request_text(char *buf, size_t size, const char *method, char **ids, size_t n,
			   size_t batch)
{
	size_t k;

	if (batch <= 1)
		return (size_t) snprintf(buf, size,
					 "{\"method\":\"%s\",\"parameters\":{\"key-id\":\"%s\"}}",
					 method, ids[0]);
	k = (size_t) snprintf(buf, size, "{\"method\":\"%s\",\"parameters\":{\"key-ids\":[",
			      method);
	for (size_t i = 0; i < n && k < size; i++)
		k += (size_t) snprintf(buf + k, size - k, "%s\"%s\"", i ? "," : "", ids[i]);
	k += (size_t) snprintf(buf + k, size - k, "]}}");
	return k;
}

/* Sends requests of batch key-ids with up to window requests in flight; collects replies. */
static int pipeline(struct proto_client *c, const char *method, char **ids, size_t n,
		    size_t window, size_t batch)
{
	size_t sent = 0, done = 0, nreq = (n + batch - 1) / batch, total = n;
	static char text[PROTO_MAX_MESSAGE];

	n = nreq;
	while (done < n) {
		while (sent < n && sent - done < window) {
			size_t first = sent * batch, m = batch < total - first ? batch : total - first;
			size_t k = request_text(text, sizeof(text), method, ids + first, m, batch);
			if (k >= sizeof(text) || proto_send(c, text, k, NULL, 0) < 0)
				return -1;
			sent++;
		}
		json_object *reply = NULL;
		if (proto_recv(c, &reply, NULL) < 0)
			return -1;
		int r = expect_ok(reply, method);
		json_object_put(reply);
		if (r < 0)
			return -1;
		done++;
	}
	return 0;
}

/* mode: "daemon" installs then releases (the release not timed); "install" and "release" do
 * one of the two, timed. */
static int bench_daemon(const char *mode, const char *sock, size_t window, size_t batch)
{
	struct proto_client c;
	char **ids = NULL, line[256];
	size_t n = 0, alloc = 0;
	bool install = !streq(mode, "release");
	uint64_t t0, t, c0, cpu;

	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = 0;
		if (!keyid_is_valid(line))
			continue;
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 1024;
			ids = realloc(ids, alloc * sizeof(*ids));
			if (!ids)
				return 1;
		}
		ids[n++] = strdup(line);
	}
	if (proto_client_connect(sock, 60000, &c) < 0) {
		fprintf(stderr, "bench-install: cannot connect to %s\n", sock);
		return 1;
	}
	t0 = now_usec();
	c0 = cpu_usec();
	if (pipeline(&c, install ? "keyscope.KeyInstall" : "keyscope.KeyRelease", ids, n, window,
		     batch) < 0)
		return 1;
	t = now_usec() - t0;
	cpu = cpu_usec() - c0;
	if (install)
		report(batch > 1 ? "keyscoped-install-batched" : "keyscoped-install", n, t, cpu);
	else
		report(batch > 1 ? "keyscoped-release-batched" : "keyscoped-release", n, t, cpu);
	if (streq(mode, "daemon") && pipeline(&c, "keyscope.KeyRelease", ids, n, window, batch) < 0)
		return 1;
	proto_client_done(&c);
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
	return 0;
}

static int bench_create(const char *sock, size_t n)
{
	static const char req[] = "{\"method\":\"keyscope.KeyCreate\",\"parameters\":{\"bits\":512}}";
	struct proto_client c;
	size_t sent = 0, done = 0;

	if (proto_client_connect(sock, 60000, &c) < 0)
		return 1;
	while (done < n) {
		json_object *reply = NULL, *p, *id;
		while (sent < n && sent - done < 64) {
			if (proto_send(&c, req, sizeof(req) - 1, NULL, 0) < 0)
				return 1;
			sent++;
		}
		if (proto_recv(&c, &reply, NULL) < 0 || expect_ok(reply, "KeyCreate") < 0)
			return 1;
		if (json_object_object_get_ex(reply, "parameters", &p) &&
		    json_object_object_get_ex(p, "key-id", &id))
			printf("%s\n", json_object_get_string(id));
		json_object_put(reply);
		done++;
	}
	proto_client_done(&c);
	return 0;
}

/* Time pid has run on a CPU so far (/proc/PID/schedstat, ns); 0 when unknown. */
static uint64_t cpu_nsec(pid_t pid)
{
	char path[64];
	unsigned long long ns = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int) pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &ns) != 1)
		ns = 0;
	fclose(f);
	return ns;
}

/* Starts argv[0] (keyscoped), connects to sock as soon as it is there, sends one Ping: the time
 * from fork to the first answer. Leaves the daemon running; prints its pid. */
static int bench_first_answer(const char *sock, char **argv)
{
	static const char req[] = "{\"method\":\"keyscope.Ping\",\"parameters\":{}}";
	struct proto_client c;
	json_object *reply = NULL;
	uint64_t t0 = now_usec(), t;
	pid_t pid = fork();

	if (pid < 0)
		return 1;
	if (pid == 0) {
		/* not our stdout: whoever reads it would wait for the daemon to exit */
		int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	for (;;) {
		if (proto_client_connect(sock, 60000, &c) >= 0)
			break;
		if (now_usec() - t0 > 60000000 || waitpid(pid, NULL, WNOHANG) != 0) {
			fprintf(stderr, "bench-install: %s did not answer\n", argv[0]);
			return 1;
		}
		(void) usleep(200);
	}
	if (proto_send(&c, req, sizeof(req) - 1, NULL, 0) < 0 || proto_recv(&c, &reply, NULL) < 0 ||
	    expect_ok(reply, "Ping") < 0)
		return 1;
	t = now_usec() - t0;
	json_object_put(reply);
	proto_client_done(&c);
	printf("first-answer %.3f ms cpu %.3f ms pid %d\n", (double) t / 1000,
	       (double) cpu_nsec(pid) / 1e6, (int) pid);
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

	return (x > y) - (x < y);
}

/* n calls of method without parameters, one after another: the median round trip, which
 * includes this client's json-c parse of the reply. */
static int bench_call(const char *sock, const char *method, size_t n, pid_t daemon)
{
	uint64_t cpu0 = daemon > 0 ? cpu_nsec(daemon) : 0;
	char req[256];
	struct proto_client c;
	uint64_t *t = calloc(n, sizeof(*t));
	int k = snprintf(req, sizeof(req), "{\"method\":\"%s\",\"parameters\":{}}", method);

	if (!t || k < 0 || (size_t) k >= sizeof(req) || proto_client_connect(sock, 60000, &c) < 0)
		return 1;
	for (size_t i = 0; i < n; i++) {
		json_object *reply = NULL;
		uint64_t t0 = now_usec();
		if (proto_send(&c, req, (size_t) k, NULL, 0) < 0 || proto_recv(&c, &reply, NULL) < 0 ||
		    expect_ok(reply, method) < 0)
			return 1;
		t[i] = now_usec() - t0;
		json_object_put(reply);
	}
	proto_client_done(&c);
	qsort(t, n, sizeof(*t), cmp_u64);
	/* The daemon's CPU per call: its side alone, without this client's parse. */
	printf("call %s %zu median %.3f ms daemon-cpu %.3f ms\n", method, n,
	       (double) t[n / 2] / 1000,
	       daemon > 0 ? (double) (cpu_nsec(daemon) - cpu0) / 1e6 / (double) n : 0.0);
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	uint64_t n;

	if (argc == 3 && streq(argv[1], "raw") && parse_uint64(argv[2], 1, 1000000, &n) >= 0)
		return bench_raw((size_t) n, false, false);
	if (argc == 3 && streq(argv[1], "raw-perm") && parse_uint64(argv[2], 1, 1000000, &n) >= 0)
		return bench_raw((size_t) n, true, false);
	if (argc == 3 && streq(argv[1], "raw-perm-long") && parse_uint64(argv[2], 1, 1000000, &n) >= 0)
		return bench_raw((size_t) n, true, true);
	if (argc >= 4 && streq(argv[1], "first-answer"))
		return bench_first_answer(argv[2], argv + 3);
	if ((argc == 5 || argc == 6) && streq(argv[1], "call") &&
	    parse_uint64(argv[4], 1, 100000, &n) >= 0) {
		uint64_t pid = 0;
		if (argc == 6 && parse_uint64(argv[5], 1, INT32_MAX, &pid) < 0)
			return 2;
		return bench_call(argv[2], argv[3], (size_t) n, (pid_t) pid);
	}
	if (argc == 4 && streq(argv[1], "create") && parse_uint64(argv[3], 1, 1000000, &n) >= 0)
		return bench_create(argv[2], (size_t) n);
	if ((argc == 4 || argc == 5) &&
	    (streq(argv[1], "daemon") || streq(argv[1], "install") || streq(argv[1], "release")) &&
	    parse_uint64(argv[3], 1, 4096, &n) >= 0) {
		uint64_t b = 1;
		if (argc == 5 && parse_uint64(argv[4], 1, 1024, &b) < 0)
			return 2;
		return bench_daemon(argv[1], argv[2], (size_t) n, (size_t) b);
	}
	fprintf(stderr, "Usage: bench-install raw N | raw-perm N | create SOCKET N | daemon|install|release SOCKET WINDOW [BATCH] < IDS\n");
	return 2;
}
