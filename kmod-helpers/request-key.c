/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscope-request-key: the handler /sbin/request-key runs when somebody asks the kernel for
 * "logon keyscope:<key-id>" with callout info and no such key is reachable
 * (kmod-helpers/keyscope.conf, docs/request-key.md):
 *
 *   create logon keyscope:* * /usr/libexec/keyscope/keyscope-request-key %k %d %c %u
 *
 * Modelled on keyutils' key.dns_resolver: exact argument count, assume authority over the key
 * under construction, check its type and description with KEYCTL_DESCRIBE, ask keyscoped for
 * the material (keyscope.KeyRequest; the daemon decides whether the requester may have it and
 * writes the audit record) within a bounded time, set a timeout and the permissions, instantiate
 * into the requester's destination keyring, wipe. Every failure rejects the key with an error
 * the requester sees and a short timeout, so that the next request retries soon, and says why
 * in the journal (or syslog; stderr when it is a terminal; --log-file too).
 *
 * The key material lives only in secret memory (proto_call()'s secret_buf) and is never
 * logged or printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "paths.h"
#include "keyid.h"
#include "keyring.h"
#include "macro.h"
#include "proto.h"
#include "secret.h"
#include "text.h"
#include "util.h"

#ifndef KEY_SPEC_REQUESTOR_KEYRING
#define KEY_SPEC_REQUESTOR_KEYRING -8	/* <linux/keyctl.h>: the request's destination */
#endif

#define PROG "keyscope-request-key"
#define DEFAULT_TIMEOUT_SEC 3
#define DEFAULT_NEGATIVE_SEC 5
#define CALLOUT_SEND_MAX 1024	/* bytes of callout info passed on, escaped */
#define DESC_LOG_MAX 64

static struct {
	const char *socket;
	unsigned timeout_sec;	/* the whole exchange with keyscoped */
	unsigned negative_sec;	/* lifetime of a rejected key */
	const char *describe;	/* --debug: what KEYCTL_DESCRIBE would say */
	bool debug;		/* dry run: no kernel calls */
	int log_fd;
} arg = {
	.socket = KEYSCOPE_SOCKET_PATH,
	.timeout_sec = DEFAULT_TIMEOUT_SEC,
	.negative_sec = DEFAULT_NEGATIVE_SEC,
	.log_fd = -EBADF,
};

/* What a log line says about the request; filled in as it becomes known. */
static struct {
	key_serial_t key;
	char desc[4 * DESC_LOG_MAX + 4];
	unsigned uid;
	bool have_uid;
} req;

static void hlog(int prio, const char *fmt, ...) _printf_(2, 3);
static void hlog(int prio, const char *fmt, ...)
{
	char msg[1024], line[1200];
	va_list ap;
	int n;

	va_start(ap, fmt);
	(void) vsnprintf(msg, sizeof(msg), fmt, ap);	/* a cut message is still a message */
	va_end(ap);

	if (sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%i", prio,
			    "SYSLOG_IDENTIFIER=" PROG, "KEYSCOPE_KEY_SERIAL=%d", (int) req.key,
			    NULL) < 0)
		syslog(prio, "%s", msg);
	if (arg.debug || isatty(STDERR_FILENO))
		fprintf(stderr, PROG ": %s\n", msg);
	if (arg.log_fd >= 0) {
		struct timespec ts;

		(void) clock_gettime(CLOCK_REALTIME, &ts);
		n = snprintf(line, sizeof(line), "%lld.%03ld " PROG "[%d]: <%d> %s\n",
			     (long long) ts.tv_sec, ts.tv_nsec / 1000000, (int) getpid(), prio, msg);
		if (n > 0)
			(void) loop_write(arg.log_fd, line, (size_t) n < sizeof(line) ? (size_t) n
										: sizeof(line) - 1);
	}
}

static const char *who(void)
{
	static char buf[64 + sizeof(req.desc)];
	char uid[16] = "?";

	if (req.have_uid)
		(void) snprintf(uid, sizeof(uid), "%u", req.uid);
	(void) snprintf(buf, sizeof(buf), "key %d (%s) for uid %s", (int) req.key,
			req.desc[0] ? req.desc : "?", uid);
	return buf;
}

static long reject(int error)
{
	long r = keyctl_reject(req.key, arg.negative_sec, (unsigned) error,
			       KEY_SPEC_REQUESTOR_KEYRING);

	if (r < 0 && errno == EOPNOTSUPP)	/* kernels before 2.6.35 */
		r = keyctl_negate(req.key, arg.negative_sec, KEY_SPEC_REQUESTOR_KEYRING);
	return r;
}

/*
 * Rejects the key with error (the requester's request_key(2) fails with it) for
 * --negative-timeout seconds, logs why, and exits 1.
 */
static _noreturn_ void fail(int error, const char *fmt, ...) _printf_(2, 3);
static _noreturn_ void fail(int error, const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	(void) vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	hlog(LOG_ERR, "Rejecting %s with %s for %us: %s", who(), strerrorname_np(error) ?: "?",
	     arg.negative_sec, why);
	if (arg.debug)
		printf("would reject key %d: error %s (%s), timeout %u s\n", (int) req.key,
		       strerrorname_np(error) ?: "?", strerror(error), arg.negative_sec);
	else if (reject(error) < 0)
		hlog(LOG_ERR, "Failed to reject %s: %s", who(), strerror(errno));
	exit(EXIT_FAILURE);
}

/* The last resort when a step blocks beyond every deadline: reject and leave. */
static void on_alarm(int sig)
{
	static const char msg[] = PROG ": no answer in time, rejecting the key (ETIMEDOUT)\n";

	if (!arg.debug)
		(void) syscall(SYS_keyctl, KEYCTL_REJECT, req.key, arg.negative_sec, ETIMEDOUT,
			       KEY_SPEC_REQUESTOR_KEYRING);
	if (arg.log_fd >= 0)
		(void) !write(arg.log_fd, msg, sizeof(msg) - 1);
	_exit(EXIT_FAILURE);
}

static void help(void)
{
	printf("Usage: " PROG " [OPTION]... KEY DESCRIPTION CALLOUT UID\n"
	       "Instantiate a logon key keyscope:<key-id> under construction with the material\n"
	       "keyscoped hands out. Run by /sbin/request-key (request-key.conf(5)):\n"
	       "  create logon keyscope:* * " KEYSCOPE_LIBEXECDIR "/" PROG " %%k %%d %%c %%u\n\n"
	       "  -s, --socket PATH          keyscoped's socket (default " KEYSCOPE_SOCKET_PATH ")\n"
	       "  -t, --timeout SECS         give up on keyscoped after SECS, 1..60 (default %d)\n"
	       "  -n, --negative-timeout SECS\n"
	       "                             a rejected key lives SECS, 1..3600 (default %d)\n"
	       "  -l, --log-file FILE        also append log lines to FILE\n"
	       "  -D, --debug                dry run without the kernel: print what would be done\n"
	       "      --describe TEXT        with --debug: KEYCTL_DESCRIBE's answer\n"
	       "                             (default logon;UID;0;3d010000;DESCRIPTION)\n"
	       "  -h, --help                 show this help\n"
	       "      --version              print the version\n\n"
	       "See keyscope-request-key(8).\n", DEFAULT_TIMEOUT_SEC, DEFAULT_NEGATIVE_SEC);
}

/* Returns optind, or exits. */
static int parse_args(int argc, char **argv)
{
	enum { ARG_DESCRIBE = 0x100, ARG_VERSION };
	static const struct option options[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' },
		{ "negative-timeout", required_argument, NULL, 'n' },
		{ "log-file", required_argument, NULL, 'l' },
		{ "debug", no_argument, NULL, 'D' },
		{ "describe", required_argument, NULL, ARG_DESCRIBE },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "+s:t:n:l:Dh", options, NULL)) >= 0) {
		switch (c) {
		case 's': arg.socket = optarg; break;
		case 't':
			if (parse_uint(optarg, 1, 60, &arg.timeout_sec) < 0)
				goto bad;
			break;
		case 'n':
			if (parse_uint(optarg, 1, 3600, &arg.negative_sec) < 0)
				goto bad;
			break;
		case 'l':
			safe_close(arg.log_fd);
			arg.log_fd = open(optarg, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
						  O_NOFOLLOW | O_NOCTTY, 0600);
			if (arg.log_fd < 0)
				hlog(LOG_WARNING, "Cannot open log file %s, ignoring: %s", optarg,
				     strerror(errno));
			break;
		case 'D': arg.debug = true; break;
		case ARG_DESCRIBE: arg.describe = optarg; break;
		case 'h': help(); exit(EXIT_SUCCESS);
		case ARG_VERSION: printf(PROG " " KEYSCOPE_VERSION "\n"); exit(EXIT_SUCCESS);
		default: goto bad;
		}
	}
	return optind;
bad:
	hlog(LOG_ERR, "Invalid option or value in the request-key.conf line; see " PROG
	     " --help.");
	return -1;
}

/* Returns the requester's key with its description, or fails. */
static void describe(const char *desc_arg, struct key_info *ret)
{
	char buf[sizeof(ret->description) + 128];
	int r, n;

	if (!arg.debug) {
		r = keyring_describe(req.key, ret);
		if (r < 0)
			fail(-r == ENAMETOOLONG ? EINVAL : -r, "KEYCTL_DESCRIBE failed: %s",
			     strerror(-r));
		return;
	}
	if (arg.describe)
		n = snprintf(buf, sizeof(buf), "%s", arg.describe);
	else
		n = snprintf(buf, sizeof(buf), "logon;%u;0;3d010000;%s", req.uid, desc_arg);
	if (n < 0 || (size_t) n >= sizeof(buf) || keyring_describe_parse(buf, ret) < 0)
		fail(EINVAL, "malformed --describe text");
}

/* Checks type, description and owner. Returns the key-id. */
static const char *check_key(const struct key_info *info, const char *desc_arg)
{
	const char *id;

	text_escape(info->description, strlen(info->description), DESC_LOG_MAX, req.desc,
		    sizeof(req.desc));
	if (!streq(info->type, "logon"))
		fail(EOPNOTSUPP, "the key's type is '%.32s': keyscope hands out only logon keys; "
		     "request \"logon\" keys", info->type);
	if (!streq(info->description, desc_arg))
		fail(EINVAL, "the description on the command line is not the key's: is the "
		     "request-key.conf line '%%k %%d %%c %%u'?");
	id = keyid_from_description(info->description);
	if (!id && scope_id_from_description(info->description))
		fail(EINVAL, "keyscope:" SCOPE_VK_PREFIX "<LUKS UUID> is a volume key keyscoped "
		     "recovers from a keyslot while it holds the scope (keyscopectl attach "
		     "--passphrase); upcalls hand out delegated keys only");
	if (!id)
		fail(EINVAL, "the description is not " KEY_DESC_PREFIX "<key-id> with a key-id of "
		     "1-%d characters of [A-Za-z0-9._-], starting with a letter or digit",
		     KEYID_MAX);
	if (info->uid != req.uid)
		fail(EINVAL, "the key belongs to uid %u, the command line says uid %u",
		     (unsigned) info->uid, req.uid);
	return id;
}

static int error_to_errno(const char *error)
{
	static const struct {
		const char *name;
		int error;
	} map[] = {
		{ "keyscope.NoSuchKey", ENOKEY },
		{ "keyscope.PermissionDenied", EACCES },
		{ "keyscope.InvalidKeyId", EINVAL },
		{ "keyscope.InvalidParameter", EINVAL },
		{ "keyscope.CorruptKey", EKEYREJECTED },
		{ "keyscope.KeyQuota", EDQUOT },
		{ "keyscope.MethodNotFound", EOPNOTSUPP },
	};

	for (size_t i = 0; i < ELEMENTSOF(map); i++)
		if (streq(map[i].name, error))
			return map[i].error;
	return EIO;
}

/* Asks keyscoped for id's material. Returns the reply's timeout; fills *ret, or fails. */
static unsigned ask_daemon(const char *id, const char *callout, struct secret_buf *ret)
{
	_cleanup_(proto_client_done) struct proto_client cl = { .fd = -EBADF };
	_cleanup_json_ json_object *params = json_object_new_object(), *reply = NULL;
	char info[4 * CALLOUT_SEND_MAX + 4], err[256];
	const char *error, *message, *rid = NULL;
	uint64_t deadline = now_usec() + arg.timeout_sec * 1000000ull, timeout = 0;
	json_object *p = NULL;
	int r;

	if (!params)
		fail(ENOMEM, "out of memory");
	/* Callout info is the requester's free text: escaped, so it is valid JSON text. */
	text_escape(callout, strlen(callout), CALLOUT_SEND_MAX, info, sizeof(info));
	json_object_object_add(params, "key-id", json_object_new_string(id));
	json_object_object_add(params, "requester-uid", json_object_new_int64(req.uid));
	json_object_object_add(params, "callout", json_object_new_string(info));
	json_object_object_add(params, "serial", json_object_new_int64(req.key));

	r = proto_client_connect(arg.socket, arg.timeout_sec * 1000, &cl);
	if (r < 0)
		fail(ECONNREFUSED, "keyscoped is not reachable at %s: %s; is it running "
		     "(systemctl status keyscoped)?", arg.socket, strerror(-r));
	/* The connect may have used up some of the time: the call gets what is left. */
	cl.timeout_ms = now_usec() >= deadline ? 1 : (unsigned) ((deadline - now_usec()) / 1000 + 1);
	r = proto_call(&cl, "keyscope.KeyRequest", params, NULL, 0, &reply, ret);
	if (r == -ETIMEDOUT)
		fail(ETIMEDOUT, "keyscoped at %s did not answer within %u s", arg.socket,
		     arg.timeout_sec);
	if (r < 0)
		fail(r == -ECONNRESET ? ECONNREFUSED : EIO, "talking to keyscoped at %s failed: %s",
		     arg.socket, strerror(-r));
	error = proto_reply_error(reply, &message);
	if (error)
		fail(error_to_errno(error), "keyscoped refused: %.256s (%.64s)", message ?: "",
		     error);
	if (!json_object_object_get_ex(reply, "parameters", &p))
		fail(EBADMSG, "keyscoped's reply is malformed: no parameters");
	if (proto_get_string(p, "key-id", true, KEYID_MAX, &rid, err, sizeof(err)) < 0 ||
	    proto_get_uint(p, "timeout", true, 604800, &timeout, err, sizeof(err)) < 0)
		fail(EBADMSG, "keyscoped's reply is malformed: %s", err);
	if (!streq(rid, id))
		fail(EBADMSG, "keyscoped's reply is for another key-id");
	if (timeout == 0)
		fail(EBADMSG, "keyscoped's reply has timeout 0: keys handed out must expire");
	if (ret->len != 32 && ret->len != 64)
		fail(EBADMSG, "keyscoped's reply carries %zu bytes of key, not 32 or 64",
		     ret->len);
	return (unsigned) timeout;
}

static void install(const struct secret_buf *key, unsigned timeout)
{
	if (arg.debug) {
		printf("would instantiate key %d: %zu bytes (hidden), timeout %u s, "
		       "permissions %08x\n", (int) req.key, key->len, timeout, KEYSCOPE_KEY_PERM);
		return;
	}
	/* In this order: the timeout needs setattr permission, which setperm takes away. */
	if (keyctl_set_timeout(req.key, timeout) < 0)
		fail(errno, "setting the timeout failed: %s", strerror(errno));
	if (keyctl_setperm(req.key, KEYSCOPE_KEY_PERM) < 0)
		fail(errno, "setting the permissions failed: %s", strerror(errno));
	if (keyctl_instantiate(req.key, key->data, key->len, KEY_SPEC_REQUESTOR_KEYRING) < 0)
		fail(errno, "instantiating failed: %s%s", strerror(errno),
		     errno == EDQUOT ? " (the requester's key quota is full)" : "");
}

static int run(int argc, char **argv)
{
	_cleanup_secret_buf_ struct secret_buf key = {};
	struct key_info info;
	const char *id;
	unsigned timeout, serial, uid;
	int i;

	i = parse_args(argc, argv);
	/* The key comes first: with it we can reject even when the rest is wrong. */
	if (i >= 0 && i < argc && parse_uint(argv[i], 1, INT32_MAX, &serial) >= 0) {
		req.key = (key_serial_t) serial;
		if (!arg.debug && keyctl_assume_authority(req.key) < 0) {
			hlog(LOG_ERR, "Cannot assume authority over key %d: %s; run only by "
			     "/sbin/request-key.", (int) req.key, strerror(errno));
			return -EPERM;
		}
	}
	if (i < 0 || argc - i != 4 || !req.key) {
		if (req.key)
			fail(EINVAL, "expected 4 arguments (KEY DESCRIPTION CALLOUT UID), got %d: "
			     "fix the request-key.conf line", i < 0 ? -1 : argc - i);
		hlog(LOG_ERR, "Expected the arguments KEY DESCRIPTION CALLOUT UID; see --help.");
		return -EINVAL;
	}
	if (parse_uint(argv[i + 3], 0, UINT32_MAX - 1, &uid) < 0)
		fail(EINVAL, "'%.16s' is not a uid: is the request-key.conf line '%%k %%d %%c %%u'?",
		     argv[i + 3]);
	req.uid = uid;
	req.have_uid = true;

	/* Never block past the deadline, whatever step hangs. */
	(void) sigaction(SIGALRM, &(struct sigaction) { .sa_handler = on_alarm }, NULL);
	alarm(arg.timeout_sec + 2);

	describe(argv[i + 1], &info);
	id = check_key(&info, argv[i + 1]);
	timeout = ask_daemon(id, argv[i + 2], &key);
	install(&key, timeout);
	alarm(0);
	hlog(LOG_INFO, "Instantiated %s: %zu bits from keyscoped, timeout %u s.", who(),
	     key.len * 8, timeout);
	return 0;
}

int main(int argc, char **argv)
{
	int r;

	/* The key passes through our memory: no core dumps, no ptrace by others. */
	(void) prctl(PR_SET_DUMPABLE, 0);
	(void) setrlimit(RLIMIT_CORE, &(struct rlimit) { 0, 0 });
	openlog(PROG, LOG_PID, LOG_AUTHPRIV);
	r = run(argc, argv);
	return r < 0 ? (r == -EINVAL ? 2 : EXIT_FAILURE) : EXIT_SUCCESS;
}
