/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keyscoped: the node agent. The only process that holds key-source credentials and key
 * material; installs delegated keys as kernel logon keys and counts their holders.
 */
#include <errno.h>
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
#include "memory.h"
#include "methods.h"
#include "observe.h"
#include "pending.h"
#include "reload.h"
#include "scope.h"
#include "server.h"
#include "settle.h"
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

static int parse_args(int argc, char **argv, struct config_args *a)
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
	int c, r;

	while ((c = getopt_long(argc, argv, "c:s:d:k:v:fh", options, NULL)) >= 0) {
		key = NULL;
		switch (c) {
		case 'c': a->path = optarg; break;
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
	r = config_args_dirs(a);
	return r < 0 ? r : 1;
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

/* What SIGHUP needs: the daemon, its running configuration and where that came from. */
struct reload_ctx {
	struct daemon *d;
	struct config *cfg;
	const struct config_args *args;
};

static int on_sighup(sd_event_source *es, const struct signalfd_siginfo *si, void *userdata)
{
	struct reload_ctx *x = userdata;

	log_info("Received SIGHUP: reloading the configuration.");
	(void) sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
			  (unsigned long long) now_usec());
	(void) daemon_reload(x->d, x->cfg, x->args);
	(void) sd_notify(0, "READY=1");
	return 0;
}

/* Key material must never reach a core dump or ptrace by another uid. */
static void harden_process(void)
{
	(void) prctl(PR_SET_DUMPABLE, 0);
	(void) setrlimit(RLIMIT_CORE, &(struct rlimit) { 0, 0 });
	umask(0077);
}

/* The keyring and the key store; returns -errno having logged why. */
static int open_store(const struct config *cfg, struct daemon *d, key_serial_t *ret_parent)
{
	int r = keyring_reach(cfg->keyring, ret_parent);

	if (r < 0)
		return r;
	r = store_open(cfg->state_dir, &d->store);
	if (r == -EBADMSG || r == -EPERM)
		return log_error_errno(r, "Master key %s/master.key is not a 32-byte file owned "
				       "by us with mode 0400: %m", cfg->state_dir);
	if (r < 0)
		return log_error_errno(r, "Failed to open the key store in %s: %m",
				       cfg->state_dir);
	return 0;
}

/* The parts, in the order they depend on each other, and the state they load. */
static int build_daemon(struct daemon *d, const struct config *cfg, key_serial_t parent)
{
	int r;

	r = sd_event_default(&d->event);
	if (r < 0)
		return log_error_errno(r, "Failed to create the event loop: %m");
	store_set_event(d->store, d->event);
	d->config = cfg;
	r = unlocks_new(d->event, cfg->unlock_concurrency, &d->unlocks);
	if (r < 0)
		return log_oom();
	r = settles_new(d->event, &d->settles);
	if (r < 0)
		return log_error_errno(r, "Failed to create the udev wait: %m");
	r = source_new(d->event, cfg, d->store, &d->source);
	if (r < 0)
		return r;
	r = scopes_new(d->event, parent, cfg->state_dir, cfg->linger_sec, source_fetch,
		       d->source, &d->scopes);
	if (r < 0)
		return r;
	source_set_withdrawn(d->source, on_key_withdrawn, d->scopes);
	r = scopes_load_records(d->scopes);
	if (r < 0)
		return r;
	r = attachments_load(cfg->state_dir, d->scopes, d->source, &d->attachments);
	if (r >= 0)
		r = attachments_watch(d->attachments, d->event);
	if (r < 0)
		return r;
	source_collect_begin(d->source);
	r = scopes_reconcile(d->scopes);
	if (source_collect_end(d->source, on_startup_keys, d, &startup_wait) < 0)
		log_warning("Cannot fetch the keys of held scopes from Barbican, ignoring.");
	return r;
}

static void add_signals(sd_event *event, struct reload_ctx *x)
{
	sigset_t ss;

	sigemptyset(&ss);
	sigaddset(&ss, SIGTERM);
	sigaddset(&ss, SIGINT);
	sigaddset(&ss, SIGHUP);
	sigprocmask(SIG_BLOCK, &ss, NULL);
	signal(SIGPIPE, SIG_IGN);
	(void) sd_event_add_signal(event, NULL, SIGTERM, on_signal, NULL);
	(void) sd_event_add_signal(event, NULL, SIGINT, on_signal, NULL);
	(void) sd_event_add_signal(event, NULL, SIGHUP, on_sighup, x);
	(void) sd_event_set_watchdog(event, true);
}

/* Calls still waiting for udev, an unlock or Barbican end here, with nobody to answer. */
static void daemon_cancel(struct daemon *d)
{
	d->settles = settles_free(d->settles);
	d->unlocks = unlocks_free(d->unlocks);
	d->source = source_free(d->source);
	d->pending = pending_free(d->pending);	/* after the tries the source cancelled */
}

/* Listens, tells systemd, and runs the event loop until a stop signal. */
static int serve(struct daemon *d, struct config *cfg, const struct config_args *a)
{
	struct reload_ctx x = { .d = d, .cfg = cfg, .args = a };
	struct server *srv = NULL;
	int r;

	add_signals(d->event, &x);
	r = server_new(d, method_table, method_table_n, observe_call_done, &srv);
	if (r < 0)
		return r;
	r = pending_start(d, srv);	/* the pending volumes a previous run left */
	if (r < 0) {
		server_free(srv);
		return r;
	}
	log_info("Listening on %s; keyscope keyring %d in %s; state in %s.", cfg->socket_path,
		 (int) scopes_keyring(d->scopes), cfg->keyring, cfg->state_dir);
	(void) source_start(d->source);
	(void) observe_start(d);	/* READY=1, STATUS=, metrics-file */

	r = sd_event_loop(d->event);
	if (r < 0)
		log_error_errno(r, "Event loop failed: %m");
	(void) scopes_compact(d->scopes);
	memory_done();
	observe_stop();
	/* The calls still waiting end before the server that runs them goes: each knows it. */
	server_drop_clients(srv);
	daemon_cancel(d);
	server_free(srv);
	return r;
}

static void daemon_done(struct daemon *d)
{
	daemon_cancel(d);
	d->attachments = attachments_free(d->attachments);
	d->scopes = scopes_free(d->scopes);
	d->store = store_free(d->store);
	d->event = sd_event_unref(d->event);
}

static int run(int argc, char **argv)
{
	_cleanup_(config_done) struct config cfg = {};
	_cleanup_close_ int state_lock = -EBADF, socket_lock = -EBADF;
	struct config_args a = {};
	struct daemon d = {};
	key_serial_t parent = 0;
	int r;

	log_set_program(argv[0]);
	r = parse_args(argc, argv, &a);
	if (r <= 0)
		return r;
	r = config_read(&a, &cfg);
	if (r < 0)
		return r;
	log_set_max_level(cfg.log_level);
	harden_process();
	r = attachments_check_state_dir(cfg.state_dir);
	if (r < 0)
		return r;
	r = take_locks(&cfg, &state_lock, &socket_lock);
	if (r < 0)
		return r;
	(void) kernel_check_at_start(&cfg);
	r = open_store(&cfg, &d, &parent);
	if (r < 0)
		return r;
	r = build_daemon(&d, &cfg, parent);
	/* The start-up's parse trees (scopes.json, attachments.json) were freed among the scopes
	 * made from them: their pages go back (2.7 MiB at 10,000 scopes). */
	memory_trim();
	if (r >= 0)
		r = serve(&d, &cfg, &a);
	daemon_done(&d);
	return r;
}

int main(int argc, char **argv)
{
	int r;

	memory_init();
	r = run(argc, argv);

	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
