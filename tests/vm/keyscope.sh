# SPDX-License-Identifier: LGPL-2.1-or-later
# Guest-side helpers for tests that run keyscoped inside the VM (source after lib.sh).
# shellcheck shell=sh

: "${KEYSCOPE_BUILDDIR:=$KEYSCOPE_TOP/build/out}"
KS_DIR=$(mktemp -d /run/keyscope-test.XXXXXX)
KS_LOG=$KS_DIR/keyscoped.log
KS_PID=
export KEYSCOPE_SOCKET=$KS_DIR/keyscoped.sock

ks_start() {
	"$KEYSCOPE_BUILDDIR/keyscoped" --socket "$KEYSCOPE_SOCKET" --state-dir "$KS_DIR/state" \
		--log-level debug "$@" >>"$KS_LOG" 2>&1 &
	KS_PID=$!
	_n=0
	until [ -S "$KEYSCOPE_SOCKET" ] && ks status >/dev/null 2>&1; do
		_n=$((_n + 1))
		kill -0 "$KS_PID" 2>/dev/null || { cat "$KS_LOG"; vm_die "keyscoped exited at start"; }
		[ $_n -le 200 ] || vm_die "keyscoped did not answer in 20 s"
		sleep 0.1
	done
}

# ks_stop: SIGTERM; keyscoped must exit 0, and its log must hold no sanitizer report (an
# ASan build, KEYSCOPE_BUILDDIR=build/asan, reports leaks at exit).
ks_stop() {
	[ -n "$KS_PID" ] || return 0
	kill "$KS_PID" 2>/dev/null || true
	_src=0
	wait "$KS_PID" 2>/dev/null || _src=$?
	KS_PID=
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$KS_LOG"; then
		grep -m 1 -A 15 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$KS_LOG" >&2
		echo "${0##*/}: sanitizer report in the keyscoped log" >&2
		return 1
	fi
	[ $_src = 0 ] || { echo "${0##*/}: keyscoped exited with status $_src on SIGTERM" >&2; return 1; }
}

ks() {
	"$KEYSCOPE_BUILDDIR/keyscopectl" "$@"
}

# ks_json_field JSON FIELD: the first value of "FIELD": in a compact or pretty JSON text.
ks_field() {
	printf '%s' "$1" | tr -d '\n' | sed -n "s/.*\"$2\" *: *\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" | head -n 1
}

# A snapshot of what a failed operation must leave untouched.
ks_world() {
	{ dmsetup ls 2>/dev/null | sort; grep ' keyscope:' /proc/keys | awk '{print $1, $NF}' | sort
	  ls -l "$KS_DIR/state/keys" 2>/dev/null | awk '{print $NF}'
	  cat "$KS_DIR/state/attachments.json" 2>/dev/null || true; echo
	  ks --json scope list 2>/dev/null | tr -d ' \n'; } >"$1"
}

# ks_expect_fail PATTERN CMD...: CMD fails, prints PATTERN, and changes nothing of ks_world.
ks_expect_fail() {
	_pat=$1
	shift
	ks_world "$KS_DIR/before"
	if "$@" >"$KS_DIR/out" 2>&1; then
		cat "$KS_DIR/out"
		vm_die "'$*' succeeded, expected failure with '$_pat'"
	fi
	grep -q -- "$_pat" "$KS_DIR/out" || vm_die "'$*' failed without '$_pat': $(cat "$KS_DIR/out")"
	ks_world "$KS_DIR/after"
	cmp -s "$KS_DIR/before" "$KS_DIR/after" ||
		vm_die "'$*' left something behind: $(diff "$KS_DIR/before" "$KS_DIR/after")"
	echo "refused as expected: $(head -n 1 "$KS_DIR/out")"
}

ks_cleanup() {
	_rc=$?
	ks_stop || _rc=1
	if [ $_rc -ne 0 ]; then
		echo "--- keyscoped log ---"
		tail -n 40 "$KS_LOG"
	fi
	exit $_rc
}
trap ks_cleanup EXIT
