#!/bin/bash
# One keyscoped per state folder and per socket: a second one refuses to start, names the PID
# of the first, and leaves it serving; after the first is killed, a new one takes over its
# left-over socket and lock files.
. "$(dirname "$0")/lib.sh"
start_daemon
first=$DAEMON_PID
k=$(ctl key create)
ctl key install "$k" >/dev/null

# second ARGS...: a second keyscoped; its exit status and output in $T/second. A daemon that
# wrongly starts is stopped by timeout (status 124).
second() {
	local rc=0
	timeout 20 "$KEYSCOPED" --keyring @s "$@" >"$T/second" 2>&1 || rc=$?
	echo "$rc" >"$T/second.rc"
}
expect_refused() { # WHAT PATTERN
	local rc
	rc=$(cat "$T/second.rc")
	[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "$1: second keyscoped exited $rc: $(cat "$T/second")"
	grep -q -- "$2" "$T/second" || fail "$1: message without '$2': $(cat "$T/second")"
	grep -q -- "PID $first" "$T/second" || fail "$1: message does not name PID $first: $(cat "$T/second")"
	daemon_alive || fail "$1: the first keyscoped died"
	[ -S "$KEYSCOPE_SOCKET" ] || fail "$1: the first keyscoped's socket is gone"
	ctl status >/dev/null || fail "$1: the first keyscoped no longer answers"
	ctl scope list | grep -qE "^$k +[0-9]+ +1$" || fail "$1: holder lost: $(ctl scope list)"
}

# The same state folder and socket, the same state folder on another socket, another state
# folder on the same socket.
second --socket "$KEYSCOPE_SOCKET" --state-dir "$STATE"
expect_refused "same state and socket" "State directory $STATE is in use"
second --socket "$T/other.sock" --state-dir "$STATE"
expect_refused "same state folder" "State directory $STATE is in use"
[ ! -e "$T/other.sock" ] || fail "refused daemon created its socket"
second --socket "$KEYSCOPE_SOCKET" --state-dir "$T/other-state"
expect_refused "same socket" "Socket $KEYSCOPE_SOCKET is in use"
grep -q -- "--socket" "$T/second" || fail "refusal does not say which option to change"
sed -n 1p "$T/second"

# After a SIGKILL the socket and the lock files stay behind; they do not stop the next daemon.
crash_daemon
[ -S "$KEYSCOPE_SOCKET" ] || fail "no stale socket after SIGKILL (test premise)"
[ -e "$STATE/keyscoped.lock" ] || fail "no state lock file"
# A PID longer than any the next daemon gets (pid_max is at most 2^22): the file is rewritten
# in place, and must end where the new PID does.
printf '41943040\n' >"$STATE/keyscoped.lock"
start_daemon
ctl scope list | grep -qE "^$k +[0-9]+ +1$" || fail "holder lost over the crash: $(ctl scope list)"
[ "$(cat "$STATE/keyscoped.lock")" = "$DAEMON_PID" ] && [ "$(wc -c <"$STATE/keyscoped.lock")" = $((${#DAEMON_PID} + 1)) ] ||
	fail "lock file does not hold the new PID alone: '$(cat "$STATE/keyscoped.lock")'"
echo ok
