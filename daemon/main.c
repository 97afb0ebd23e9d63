/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscoped: the node agent. The only process that holds key-source credentials and key
 * material; installs delegated keys as kernel logon keys and counts their holders.
 */
#include <errno.h>
#include <malloc.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "attach.h"
#include "config.h"
#include "kernel.h"
#include "lock.h"
#include "keyring.h"
#include "log.h"
#include "methods.h"
#include "scope.h"
#include "server.h"
#include "source.h"
#include "unlock.h"
#include "store.h"
#include "util.h"

static void help(void)
{
	printf("Usage: keyscoped [OPTION]...\n"
	       "Install delegated volume keys as kernel logon keys and count their holders.\n\n"
	       "  -c, --config FILE     read FILE (default " KEYSCOPE_CONFIG_FILE ")\n"
	       "  -s, --socket PATH     listen on PATH (default " KEYSCOPE_SOCKET_PATH ")\n"
	       "  -d, --state-dir DIR   keep keys and state in DIR (default " KEYSCOPE_STATE_DIR ")\n"
	       "  -k, --keyring SPEC    link the keyscope keyring into SPEC: @u (default), @s,\n"
	       "                        @us, @p, @t or a keyring serial\n"
	       "      --linger SECS     keep a scope's key SECS after its last holder (default 0)\n"
	       "  -v, --log-level LEVEL emerg..debug or 0..7 (default info)\n"
	       "  -f, --foreground      run in the foreground (the only mode; for systemd)\n"
	       "  -h, --help            show this help\n"
	       "      --version         show the version\n\n"
	       "Flags override the config file. See keyscoped(8) and keyscoped.conf(5).\n");
}

struct args {
	const char *config;
	const char *set[32][2];
	size_t n_set;
};

static int parse_args(int argc, char **argv, struct args *a)
{
	enum { ARG_LINGER = 0x100, ARG_VERSION };
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "keyring", required_argument, NULL, 'k' },
		{ "linger", required_argument, NULL, ARG_LINGER },
		{ "log-level", required_argument, NULL, 'v' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{}
	};
	const char *key;
	int c;

	while ((c = getopt_long(argc, argv, "c:s:d:k:v:fh", options, NULL)) >= 0) {
		key = NULL;
		switch (c) {
		case 'c': a->config = optarg; break;
		case 's': key = "socket"; break;
		case 'd': key = "state-dir"; break;
		case 'k': key = "keyring"; break;
		case 'v': key = "log-level"; break;
		case ARG_LINGER: key = "linger"; break;
		case 'f': break;
		case 'h': help(); return 0;
		case ARG_VERSION: printf("keyscoped " KEYSCOPE_VERSION "\n"); return 0;
		default: return -EINVAL;
		}
		if (key && a->n_set >= ELEMENTSOF(a->set)) {
			log_error("Too many options (at most %zu).", ELEMENTSOF(a->set));
			return -E2BIG;
		}
		if (key) {
			a->set[a->n_set][0] = key;
			a->set[a->n_set++][1] = optarg;
		}
	}
	if (optind < argc) {
		log_error("Unexpected argument '%s'. See --help.", argv[optind]);
		return -EINVAL;
	}
	return 1;
}

/*
 * Scopes whose keys could not be reinstalled at start because they come from Barbican: the
 * reinstall runs again once their fetches are done, from the event loop, so that a key
 * manager that is down delays those keys, never the daemon's start.
 */
static struct source_wait *startup_wait;

static void on_startup_keys(void *userdata, int error)
{
	struct daemon *d = userdata;

	if (error >= 0)
		(void) scopes_reconcile(d->scopes);
	startup_wait = source_wait_free(startup_wait);
}

/* Barbican withdrew a key: the scopes drop its kernel key (source.h). */
static int on_key_withdrawn(void *userdata, const char *id)
{
	return scope_revoke(userdata, id);
}

/* The keyscope keyring must be possessed for us to write it: reach @u from our session. */
static int keyring_reach(const char *spec, key_serial_t *ret)
{
	key_serial_t parent;
	int r;

	r = keyring_parse_spec(spec, &parent);
	if (r < 0)
		return log_error_errno(r, "Invalid keyring '%s'.", spec);
	if (parent == KEY_SPEC_USER_KEYRING &&
	    keyctl_link(KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING) < 0)
		log_warning_errno(-errno, "Failed to link @u into our session keyring, "
				  "ignoring: %m");
	*ret = parent;
	return 0;
}

/*
 * Takes the lock of a state folder or socket (lock.h) for the daemon's life, or explains who
 * holds it. Returns the descriptor to keep open.
 */
static int guard(const char *lock, const char *what, const char *path, const char *option)
{
	pid_t holder = 0;
	int fd = lockfile_take(lock, &holder);

	if (fd == -EBUSY && holder > 0)
		return log_error_errno(fd, "%s %s is in use by keyscoped PID %d, which holds %s. "
				       "Stop that daemon first, or give this one another %s.",
				       what, path, (int) holder, lock, option);
	if (fd == -EBUSY)
		return log_error_errno(fd, "%s %s is in use by another keyscoped, which holds %s "
				       "(its PID is not visible here). Stop that daemon first, or "
				       "give this one another %s.", what, path, lock, option);
	if (fd < 0)
		return log_error_errno(fd, "Failed to lock %s: %m", lock);
	return fd;
}

/* One daemon per state folder and per socket; returns -errno having logged why not. */
static int take_locks(const struct config *cfg, int *ret_state_fd, int *ret_socket_fd)
{
	char state_lock[PATH_MAX], socket_lock[PATH_MAX];
	_cleanup_close_ int state_fd = -EBADF;
	int r, fd;

	r = snprintf(state_lock, sizeof(state_lock), "%s/keyscoped.lock", cfg->state_dir);
	if (r < 0 || (size_t) r >= sizeof(state_lock))
		return log_error_errno(-ENAMETOOLONG, "State directory %s: path too long.",
				       cfg->state_dir);
	r = snprintf(socket_lock, sizeof(socket_lock), "%s.lock", cfg->socket_path);
	if (r < 0 || (size_t) r >= sizeof(socket_lock))
		return log_error_errno(-ENAMETOOLONG, "Socket %s: path too long.",
				       cfg->socket_path);
	r = mkdir_p(cfg->state_dir, 0700);
	if (r < 0)
		return log_error_errno(r, "Failed to create the state directory %s: %m",
				       cfg->state_dir);
	state_fd = guard(state_lock, "State directory", cfg->state_dir, "--state-dir");
	if (state_fd < 0)
		return state_fd;
	r = server_make_dir(cfg->socket_path);
	if (r < 0)
		return r;
	fd = guard(socket_lock, "Socket", cfg->socket_path, "--socket");
	if (fd < 0)
		return fd;
	*ret_state_fd = TAKE_FD(state_fd);
	*ret_socket_fd = fd;
	return 0;
}

static int on_signal(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata)
{
	log_info("Received %s, stopping.", strsignal((int) si->ssi_signo));
	(void) sd_notify(0, "STOPPING=1");
	return sd_event_exit(sd_event_source_get_event(es), 0);
}

static int on_sighup(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata)
{
	log_notice("Received SIGHUP: reloading is not supported, restart keyscoped to apply a "
		   "changed config (held keys and holders survive a restart); ignoring.");
	return 0;
}

static int run(int argc, char **argv)
{
	_cleanup_(config_done) struct config cfg;
	struct args a = {};
	struct daemon d = {};
	struct server *srv = NULL;
	_cleanup_close_ int state_lock = -EBADF, socket_lock = -EBADF;
	sd_event *event = NULL;
	key_serial_t parent = 0;
	sigset_t ss;
	int r;

	config_init(&cfg);
	log_set_program(argv[0]);
	r = parse_args(argc, argv, &a);
	if (r <= 0)
		return r;
	r = config_load(&cfg, a.config ?: KEYSCOPE_CONFIG_FILE, a.config != NULL);
	if (r < 0)
		return r;
	for (size_t i = 0; i < a.n_set; i++) {
		r = config_set(&cfg, a.set[i][0], a.set[i][1]);
		if (r < 0)
			return log_error_errno(-EINVAL, "Invalid value '%s' for --%s.", a.set[i][1],
					       a.set[i][0]);
	}
	log_set_max_level(cfg.log_level);

	/* Key material must never reach a core dump or ptrace by another uid. */
	(void) prctl(PR_SET_DUMPABLE, 0);
	(void) setrlimit(RLIMIT_CORE, &(struct rlimit) { 0, 0 });
	umask(0077);
	r = take_locks(&cfg, &state_lock, &socket_lock);
	if (r < 0)
		return r;
	(void) kernel_check_at_start(&cfg);

	r = keyring_reach(cfg.keyring, &parent);
	if (r < 0)
		return r;
	r = store_open(cfg.state_dir, &d.store);
	if (r == -EBADMSG || r == -EPERM)
		return log_error_errno(r, "Master key %s/master.key is not a 32-byte file owned "
				       "by us with mode 0400: %m", cfg.state_dir);
	if (r < 0)
		return log_error_errno(r, "Failed to open the key store in %s: %m",
				       cfg.state_dir);

	r = sd_event_default(&event);
	if (r < 0)
		goto out;
	d.event = event;
	store_set_event(d.store, event);
	d.config = &cfg;
	r = unlocks_new(event, cfg.unlock_concurrency, &d.unlocks);
	if (r < 0) {
		log_oom();
		goto out;
	}
	r = source_new(event, &cfg, d.store, &d.source);
	if (r < 0)
		goto out;
	r = scopes_new(event, parent, cfg.state_dir, cfg.linger_sec, source_fetch, d.source,
		       &d.scopes);
	if (r < 0)
		goto out;
	source_set_withdrawn(d.source, on_key_withdrawn, d.scopes);
	r = scopes_load_records(d.scopes);
	if (r < 0)
		goto out;
	r = attachments_load(cfg.state_dir, d.scopes, d.source, &d.attachments);
	if (r < 0)
		goto out;
	source_collect_begin(d.source);
	r = scopes_reconcile(d.scopes);
	if (source_collect_end(d.source, on_startup_keys, &d, &startup_wait) < 0)
		log_warning("Cannot fetch the keys of held scopes from Barbican, ignoring.");
	if (r < 0)
		goto out;

	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	(void) sd_event_add_signal(event, NULL, SIGTERM, on_signal, NULL);
	(void) sd_event_add_signal(event, NULL, SIGINT, on_signal, NULL);
	(void) sd_event_add_signal(event, NULL, SIGHUP, on_sighup, NULL);
	(void) sd_event_set_watchdog(event, true);

	r = server_new(&d, method_table, method_table_n, &srv);
	if (r < 0)
		goto out;
	log_info("Listening on %s; keyscope keyring %d in %s; state in %s.", cfg.socket_path,
		 (int) scopes_keyring(d.scopes), cfg.keyring, cfg.state_dir);
	(void) source_start(d.source);
	if (scopes_state_problem(d.scopes))
		(void) sd_notifyf(0, "READY=1\nSTATUS=Serving keys; state not written: %s",
				  scopes_state_problem(d.scopes));
	else
		(void) sd_notify(0, "READY=1\nSTATUS=Serving keys.");

	r = sd_event_loop(event);
	if (r < 0)
		log_error_errno(r, "Event loop failed: %m");
	(void) scopes_save(d.scopes);
out:
	srv = server_free(srv);
	/* Calls still waiting for an unlock or for Barbican end here, with nobody to answer. */
	d.unlocks = unlocks_free(d.unlocks);
	d.source = source_free(d.source);
	d.attachments = attachments_free(d.attachments);
	d.scopes = scopes_free(d.scopes);
	d.store = store_free(d.store);
	sd_event_unref(event);
	return r;
}

int main(int argc, char **argv)
{
	int r;

	/* A fixed threshold: glibc's moving one would, after a 10,000-scope list was freed, serve
	 * the next large replies from the heap and keep their pages (docs/benchmarks.md). */
	(void) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	r = run(argc, argv);

	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
