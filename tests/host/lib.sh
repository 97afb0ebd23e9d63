# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers for host tests. Each test file runs in its own session keyring (tests/host/run starts
# it under "keyctl session -"), with its own daemon, socket and state directory, so tests never
# see each other's keys or a real installation's.
set -eu

: "${KEYSCOPE_BUILDDIR:=$(cd "$(dirname "$0")/../.." && pwd)/build/out}"
KEYSCOPED=$KEYSCOPE_BUILDDIR/keyscoped
KEYSCOPECTL=$KEYSCOPE_BUILDDIR/keyscopectl

T=$(mktemp -d /tmp/keyscope-test.XXXXXX)
chmod 0755 "$T"
export KEYSCOPE_SOCKET=$T/keyscoped.sock
STATE=$T/state
DAEMON_LOG=$T/keyscoped.log
DAEMON_PID=

cleanup() {
	local rc=$?
	stop_daemon || rc=1
	# Keys this test's daemon installed live in this session keyring; drop them with it.
	keyctl clear @s >/dev/null 2>&1 || true
	if [ $rc -ne 0 ] && [ -f "$DAEMON_LOG" ]; then
		echo "--- keyscoped log (last 30 lines) ---" >&2
		tail -n 30 "$DAEMON_LOG" >&2
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

# start_daemon [EXTRA ARGS...]: keyscoped on this test's socket, state dir and session keyring.
start_daemon() {
	# A second start must not leave the first daemon running without an owner.
	[ -z "$DAEMON_PID" ] || stop_daemon
	"$KEYSCOPED" --socket "$KEYSCOPE_SOCKET" --state-dir "$STATE" --keyring @s \
		--log-level "${LOG_LEVEL:-debug}" "$@" >>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	for _ in $(seq 1 100); do
		[ -S "$KEYSCOPE_SOCKET" ] && ctl status >/dev/null 2>&1 && return 0
		kill -0 "$DAEMON_PID" 2>/dev/null || fail "keyscoped exited at start: $(tail -n 5 "$DAEMON_LOG")"
		sleep 0.05
	done
	fail "keyscoped did not answer within 5 s"
}

# Stops the daemon with SIGTERM; it must exit 0 (under ASan a leak or error makes it non-zero)
# and its log must hold no sanitizer report.
stop_daemon() {
	local rc=0
	[ -n "$DAEMON_PID" ] || return 0
	kill "$DAEMON_PID" 2>/dev/null || true
	wait "$DAEMON_PID" 2>/dev/null || rc=$?
	DAEMON_PID=
	if [ $rc -ne 0 ]; then
		echo "FAIL: keyscoped exited with status $rc on SIGTERM" >&2
		return 1
	fi
	if grep -q -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$DAEMON_LOG"; then
		echo "FAIL: sanitizer report in the keyscoped log" >&2
		return 1
	fi
}

# Kills the daemon without letting it clean up (a crash).
crash_daemon() {
	[ -n "$DAEMON_PID" ] || return 0
	kill -9 "$DAEMON_PID" 2>/dev/null || true
	wait "$DAEMON_PID" 2>/dev/null || true
	DAEMON_PID=
}

daemon_alive() {
	[ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null
}

ctl() {
	"$KEYSCOPECTL" "$@"
}

# The serial of the logon key keyscope:ID in this session, or nothing.
key_serial() {
	keyctl search @s logon "keyscope:$1" 2>/dev/null || true
}

# Number of keyscope logon keys in the keyscope keyring of this session.
count_keyscope_keys() {
	local ring
	ring=$(keyctl search @s keyring keyscope 2>/dev/null) || { echo 0; return; }
	keyctl rdescribe "$ring" >/dev/null 2>&1 || { echo 0; return; }
	local n=0 k
	for k in $(keyctl rlist "$ring" 2>/dev/null); do
		case "$(keyctl rdescribe "$k" 2>/dev/null)" in
		logon\;*\;keyscope:*) n=$((n + 1)) ;;
		esac
	done
	echo $n
}

expect_eq() { # ACTUAL EXPECTED WHAT
	[ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}

# expect_fail_msg PATTERN CMD...: CMD must fail and print PATTERN on stderr.
expect_fail_msg() {
	local pat=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	[ $rc -ne 0 ] || fail "'$*' succeeded, expected failure with '$pat'"
	echo "$out" | grep -q -- "$pat" || fail "'$*' failed without '$pat': $out"
}
