# SPDX-License-Identifier: LGPL-2.1-or-later
# Helpers for the request-key tests; source after lib.sh. Each test installs a drop-in of its
# own, /etc/request-key.d/zz-keyscope-test-<token>.conf, that sends only requests whose callout
# info ends with this test's token to the build's handler on this test's socket. Requests from
# anybody else (a real installation's included) never match it, and request-key prefers it over
# a real keyscope.conf for this test's requests (a shorter wildcard in the callout column). The
# file is removed on exit, whatever the outcome; a real installation's files are never touched.

HANDLER=$KEYSCOPE_BUILDDIR/keyscope-request-key
KS_FAKE=$KEYSCOPE_BUILDDIR/tools/ks-fake
RK_TOKEN=kstest-$$-$RANDOM
RK_CONF=/etc/request-key.d/zz-keyscope-test-$RK_TOKEN.conf
RK_LOG=$T/handler.log
CALLOUT="volume=x $RK_TOKEN"
FAKE_PID=

[ -x /sbin/request-key ] || skip "/sbin/request-key is missing (apt-get install keyutils)"
[ -d /etc/request-key.d ] || skip "/etc/request-key.d is missing (keyutils older than 1.6?)"
[ -x "$HANDLER" ] || fail "no $HANDLER: run make"

rk_cleanup() {
	local rc=$?
	rm -f "$RK_CONF"
	[ -z "$FAKE_PID" ] || { kill "$FAKE_PID" 2>/dev/null; wait "$FAKE_PID" 2>/dev/null; }
	if [ $rc -ne 0 ] && [ -f "$RK_LOG" ]; then
		echo "--- handler log (last 20 lines) ---" >&2
		tail -n 20 "$RK_LOG" >&2
	fi
	(exit $rc)
	cleanup
}
trap rk_cleanup EXIT

# unprivileged_upcall_works: whether the kernel runs /sbin/request-key for a request made by an
# unprivileged uid. Some kernels (seen on 6.18 in a sandbox) fail such a request with ENOENT
# before any handler runs, where root's request for a description no rule matches is negated
# (ENOKEY). Sets RK_UNPRIV_WHY to the reason when it returns 1.
unprivileged_upcall_works() {
	local out
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups keyctl session - \
		keyctl request2 user "keyscope-probe:$RK_TOKEN" "probe $RK_TOKEN" @s 2>&1)
	case $out in
	*"No such file or directory"*)
		RK_UNPRIV_WHY="this kernel ($(uname -r)) fails an upcall requested by uid 65534 with ENOENT before /sbin/request-key runs"
		return 1 ;;
	esac
	return 0
}

# install_dropin [--types "logon user"] [HANDLER OPTIONS...]: (re)writes this test's drop-in.
install_dropin() {
	local types="logon user" t
	if [ "${1-}" = --types ]; then
		types=$2
		shift 2
	fi
	: >"$RK_CONF.tmp"
	for t in $types; do
		echo "create $t keyscope:* *$RK_TOKEN $HANDLER --socket $KEYSCOPE_SOCKET" \
			"--log-file $RK_LOG --timeout 2 $* %k %d %c %u" >>"$RK_CONF.tmp"
	done
	mv "$RK_CONF.tmp" "$RK_CONF"
}

# request TYPE DESCRIPTION [DEST]: keyctl request2 with this test's callout info. Sets
# RQ_OUT (stdout and stderr), RQ_RC and RQ_MS (wall time in milliseconds).
request() {
	local t0=$EPOCHREALTIME
	RQ_RC=0
	RQ_OUT=$(keyctl request2 "$1" "$2" "$CALLOUT" "${3:-@s}" 2>&1) || RQ_RC=$?
	RQ_MS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
}

# expect_rejected WHAT PATTERN: the last request failed with PATTERN, in under 5 s.
expect_rejected() {
	[ "$RQ_RC" -ne 0 ] || fail "$1: the request succeeded: $RQ_OUT"
	echo "$RQ_OUT" | grep -q -- "$2" || fail "$1: expected '$2', got: $RQ_OUT"
	[ "$RQ_MS" -lt 5000 ] || fail "$1: the requester waited $RQ_MS ms (bound: 5000)"
	printf '  %-34s %-34s %5d ms\n' "$1" "$(echo "$RQ_OUT" | sed 's/^request_key: //')" "$RQ_MS"
}

# The expiry column of /proc/keys for a serial ("5s", "4m", "perm", ...). The description is
# never taken from there, only the expiry, which KEYCTL_DESCRIBE does not give.
key_expiry() {
	awk -v s="$(printf %08x "$1")" '$1 == s { print $4 }' /proc/keys
}

# The serial of the newest key TYPE DESCRIPTION linked in @s, negative or not.
rk_serial() {
	local k
	for k in $(keyctl rlist @s 2>/dev/null); do
		[ "$(keyctl rdescribe "$k" 2>/dev/null | cut -d';' -f1,5-)" = "$1;$2" ] && echo "$k"
	done | tail -n 1
}
