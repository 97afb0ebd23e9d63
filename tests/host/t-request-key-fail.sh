#!/bin/bash
# Every failure of a request-key upcall is rejected promptly and logged: the requester's
# request_key(2) fails within a few seconds with an error that says what happened, and the
# rejected key lives 5 s (--negative-timeout), so the next request retries soon. Covers an
# unknown key-id, malformed descriptions, the wrong key type, a daemon that is not running, a
# daemon that accepts and never answers, and a requester uid that may not cause fetches.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rk-lib.sh"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
[ -x "$KS_FAKE" ] || fail "no $KS_FAKE: run make check-host"

start_daemon
install_dropin
id=$(ctl key create)
echo "failure                            requester's error                  time"

# expect_logged PATTERN: the handler logged a rejection that matches PATTERN.
expect_logged() {
	grep -q -- "$1" "$RK_LOG" || fail "no '$1' in the handler log"
}

request logon keyscope:0000-no-such-key
expect_rejected "unknown key-id" "Required key not available"
expect_logged "Rejecting key [0-9]* (keyscope:0000-no-such-key) for uid 0 with ENOKEY for 5s: keyscoped refused: no key 0000-no-such-key in the key store"
grep -q "Audit: request-key of keyscope:0000-no-such-key for uid 0 refused: no such key" "$DAEMON_LOG" ||
	fail "no audit line for the unknown key-id"
neg=$(rk_serial logon keyscope:0000-no-such-key)
exp=$(key_expiry "$neg")
case $exp in [1-5]s) ;; *) fail "the rejected key $neg expires in '$exp', want 5 s or less" ;; esac

request logon "keyscope:"
expect_rejected "description 'keyscope:'" "Invalid argument"
expect_logged "Rejecting key [0-9]* (keyscope:) for uid 0 with EINVAL for 5s: the description is not keyscope:<key-id>"
request logon "keyscope:a b"
expect_rejected "description 'keyscope:a b'" "Invalid argument"
expect_logged "(keyscope:a b) for uid 0 with EINVAL"
long=keyscope:$(printf 'a%.0s' $(seq 3991))
request logon "$long"
expect_rejected "description of 4000 characters" "Invalid argument"
# The log shows a bounded part of it.
expect_logged "(keyscope:aa*\.\.\.) for uid 0 with EINVAL"
grep -q "$(printf 'a%.0s' $(seq 100))" "$RK_LOG" && fail "the handler logged the whole long description"

# The wrong type: keyscope's drop-in also takes "user keyscope:*", only to refuse it at once.
request user "keyscope:$id"
expect_rejected "type user (keyscope's user line)" "Operation not supported"
expect_logged "with EOPNOTSUPP for 5s: the key's type is 'user': keyscope hands out only logon keys"
exp=$(key_expiry "$(rk_serial user "keyscope:$id")")
case $exp in [1-5]s) ;; *) fail "the rejected user key expires in '$exp', want 5 s or less" ;; esac
# Without that line no handler matches: request-key gives up, and the kernel negates the key
# with its own timeout of 60 s, with nothing in keyscope's logs.
keyctl clear @s
install_dropin --types logon
lines=$(wc -l <"$RK_LOG")
request user "keyscope:$id"
expect_rejected "type user (no user line)" "Required key not available"
exp=$(key_expiry "$(rk_serial user "keyscope:$id")")
echo "  without the user line the negative key lives $exp (the kernel's default), not 5 s"
expect_eq "$(wc -l <"$RK_LOG")" "$lines" "handler log lines for a request it never saw"
install_dropin

# keyscoped not running. Then, after the 5 s negative timeout, the same request succeeds.
stop_daemon
request logon "keyscope:$id"
expect_rejected "keyscoped not running" "Connection refused"
expect_logged "with ECONNREFUSED for 5s: keyscoped is not reachable at $KEYSCOPE_SOCKET"
start_daemon
request logon "keyscope:$id"
expect_rejected "again within 5 s (cached rejection)" "Connection refused"
sleep 5.2
request logon "keyscope:$id"
[ "$RQ_RC" = 0 ] || fail "the request after the negative timeout failed: $RQ_OUT"
echo "  after 5 s the next request fetched the key (key $RQ_OUT, $RQ_MS ms)"
keyctl clear @s

# A daemon that accepts and never answers: the handler gives up after --timeout 2.
stop_daemon
"$KS_FAKE" --hold "$KEYSCOPE_SOCKET" &
FAKE_PID=$!
for _ in $(seq 50); do [ -S "$KEYSCOPE_SOCKET" ] && break; sleep 0.05; done
request logon "keyscope:$id"
expect_rejected "keyscoped accepts, never answers" "Connection timed out"
[ "$RQ_MS" -ge 1900 ] || fail "the handler gave up after $RQ_MS ms, before its --timeout 2"
expect_logged "with ETIMEDOUT for 5s: keyscoped at $KEYSCOPE_SOCKET did not answer within 2 s"
kill "$FAKE_PID"
wait "$FAKE_PID" 2>/dev/null || true
FAKE_PID=
start_daemon

# A requester whose uid is not in request-key-uids (the default is root only).
if unprivileged_upcall_works; then
	t0=$EPOCHREALTIME
	RQ_RC=0
	RQ_OUT=$(setpriv --reuid=65534 --regid=65534 --clear-groups keyctl session - \
		keyctl request2 logon "keyscope:$id" "$CALLOUT" @s 2>&1) || RQ_RC=$?
	RQ_MS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
	RQ_OUT=$(grep -v '^Joined session keyring' <<<"$RQ_OUT" || true)
	expect_rejected "requester uid 65534 not allowed" "Permission denied"
	expect_logged "for uid 65534 with EACCES for 5s"
	grep -q "Audit: request-key of keyscope:$id for uid 65534 refused: uid not in request-key-uids" \
		"$DAEMON_LOG" || fail "no audit line for uid 65534"
else
	echo "SKIP (uid 65534 case): $RK_UNPRIV_WHY"
fi

# No key material and no raw callout info in any log: only escaped, bounded text.
grep -q "callout \"$CALLOUT\"" "$DAEMON_LOG" || fail "the audit lines do not show the callout info"
echo ok
