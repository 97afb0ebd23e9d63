/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Installed paths and the version, from the Makefile (SYSCONFDIR, RUNSTATEDIR, LOCALSTATEDIR,
 * LIBEXECDIR, VERSION are passed as -D defines), so a build configured for other directories
 * names them in its defaults and its --help. The path fallbacks are the Makefile's defaults,
 * for a file compiled outside it (a fuzz harness).
 */
#pragma once

#ifndef KEYSCOPE_SYSCONFDIR
#define KEYSCOPE_SYSCONFDIR "/etc"
#endif
#ifndef KEYSCOPE_RUNSTATEDIR
#define KEYSCOPE_RUNSTATEDIR "/run"
#endif
#ifndef KEYSCOPE_LOCALSTATEDIR
#define KEYSCOPE_LOCALSTATEDIR "/var/lib"
#endif
#ifndef KEYSCOPE_LIBEXECDIR
#define KEYSCOPE_LIBEXECDIR "/usr/libexec/keyscope"
#endif
#ifndef KEYSCOPE_VENDOR_CONFDIR
#define KEYSCOPE_VENDOR_CONFDIR "/usr/lib/keyscope/keyscoped.conf.d"	/* packages' drop-ins */
#endif
/* KEYSCOPE_VERSION has no fallback: it is written once, as VERSION in the Makefile. */

#define KEYSCOPE_CONFIG_FILE KEYSCOPE_SYSCONFDIR "/keyscope/keyscoped.conf"
#define KEYSCOPE_SOCKET_PATH KEYSCOPE_RUNSTATEDIR "/keyscope/keyscoped.sock"
#define KEYSCOPE_STATE_DIR KEYSCOPE_LOCALSTATEDIR "/keyscope"
