#!/bin/bash
# keyctl request2 logon keyscope:<id> "<callout>" @s reaches keyscoped through /sbin/request-key
# and keyscope-request-key: the requester gets a logon key with the expected description,
# permissions and timeout, that it cannot read; keyscoped logs an audit line; no scope holder
# is taken. A key the requester can already reach is found without an upcall. Which requesters
# may cause a fetch is keyscoped's decision (request-key-uids), shown both ways for nobody.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rk-lib.sh"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"

printf 'request-key-timeout = 45\n' >"$T/keyscoped.conf"
start_daemon --config "$T/keyscoped.conf"
install_dropin
id=$(ctl key create --name rk)

request logon "keyscope:$id"
[ "$RQ_RC" = 0 ] || fail "request2 failed: $RQ_OUT"
k=$RQ_OUT
echo "request2 logon keyscope:$id -> key $k in $RQ_MS ms"
expect_eq "$(keyctl rdescribe "$k")" "logon;0;0;19010000;keyscope:$id" "the key's type;uid;gid;perm;description"
exp=$(key_expiry "$k")
case $exp in 4[0-5]s) ;; *) fail "expiry of key $k is '$exp', want 40s..45s (request-key-timeout 45)" ;; esac
echo "expires in $exp"
out=$(keyctl read "$k" 2>&1) && fail "keyctl read of the upcall key succeeded"
echo "$out" | grep -q "Operation not supported" || fail "keyctl read: unexpected '$out'"
# The requester cannot swap the payload, extend the timeout or widen the permissions.
if printf 'x%.0s' $(seq 64) | keyctl pupdate "$k" 2>/dev/null; then fail "payload update allowed"; fi
if keyctl timeout "$k" 0 2>/dev/null; then fail "timeout change allowed"; fi
if keyctl setperm "$k" 0x3f3f0000 2>/dev/null; then fail "setperm allowed"; fi
# It is in the destination keyring the requester named, not in keyscope's keyring, and it is
# not a scope holder.
keyctl rlist @s | tr ' ' '\n' | grep -qx "$k" || fail "key $k is not linked in @s"
expect_eq "$(count_keyscope_keys)" 0 "keys in the keyscope keyring"
ctl --json scope list | tr -d ' \n' | grep -q '"scopes":\[\]' || fail "the upcall created a scope"

grep -q "Audit: request-key of keyscope:$id for uid 0 granted: 512 bits, timeout 45s (key $k, callout \"$CALLOUT\", handler pid [0-9]*)" \
	"$DAEMON_LOG" || fail "no audit line for the grant in the daemon log"
grep -q "Instantiated key $k (keyscope:$id) for uid 0: 512 bits from keyscoped, timeout 45 s" \
	"$RK_LOG" || fail "no 'Instantiated' line in the handler log"
echo "audit: $(grep -o "Audit: request-key of keyscope:$id for uid 0 granted[^(]*" "$DAEMON_LOG")"

# A key that is already reachable is returned without an upcall: the request above left one in
# @s, and a scope's key in the keyscope keyring (reachable from this session) is found too.
n=$(grep -c "Audit: request-key" "$DAEMON_LOG")
request logon "keyscope:$id"
expect_eq "$RQ_OUT" "$k" "second request2 (the key in @s)"
keyctl invalidate "$k"	# the requester possesses its key, so it may invalidate it
id2=$(ctl key create)
scope_key=$(ctl --json key install "$id2" | sed -n 's/.*"serial":\([0-9]*\).*/\1/p')
request logon "keyscope:$id2"
expect_eq "$RQ_OUT" "$scope_key" "request2 of a key keyscoped installed"
expect_eq "$(grep -c "Audit: request-key" "$DAEMON_LOG")" "$n" "audit lines after requests with no upcall"
keyctl unlink "$scope_key" @s >/dev/null
ctl key release "$id2" >/dev/null
echo "reachable keys are found without an upcall"

# The requester's uid decides, in keyscoped: nobody is refused by default ...
as_nobody_request() {
	local t0=$EPOCHREALTIME
	RQ_RC=0
	RQ_OUT=$(setpriv --reuid=65534 --regid=65534 --clear-groups keyctl session - \
		sh -c 'k=$(keyctl request2 logon "$1" "$2" @s) || exit $?; keyctl rdescribe "$k"' \
		- "keyscope:$id" "$CALLOUT" 2>&1) || RQ_RC=$?
	RQ_OUT=$(grep -v '^Joined session keyring' <<<"$RQ_OUT" || true)
	RQ_MS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
}
if unprivileged_upcall_works; then
	as_nobody_request
	expect_rejected "uid 65534 not in request-key-uids" "Permission denied"
	grep -q "Audit: request-key of keyscope:$id for uid 65534 refused: uid not in request-key-uids" \
		"$DAEMON_LOG" || fail "no audit line for the refusal"
	grep -q "Rejecting key [0-9]* (keyscope:$id) for uid 65534 with EACCES for 5s: keyscoped refused: uid 65534 may not cause key fetches" \
		"$RK_LOG" || fail "no rejection line in the handler log"

	# ... and gets a key of its own, owned by it, when the config lists it.
	stop_daemon
	printf 'request-key-timeout = 45\nrequest-key-uids = 0, nobody\n' >"$T/keyscoped.conf"
	start_daemon --config "$T/keyscoped.conf"
	as_nobody_request
	[ "$RQ_RC" = 0 ] || fail "nobody's request with request-key-uids = 0, nobody: $RQ_OUT"
	expect_eq "$RQ_OUT" "logon;65534;65534;19010000;keyscope:$id" "nobody's key"
	grep -q "Audit: request-key of keyscope:$id for uid 65534 granted" "$DAEMON_LOG" ||
		fail "no audit line for nobody's grant"
	echo "uid 65534: refused by default, granted with request-key-uids = 0, nobody ($RQ_MS ms)"
else
	echo "SKIP (uid 65534 cases): $RK_UNPRIV_WHY"
fi
echo ok
