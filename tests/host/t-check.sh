#!/bin/bash
# keyscopectl check runs the kernel checks without the daemon: on this host (no device-mapper,
# no loadable modules) it reports device-mapper missing with the reason and exits non-zero;
# with "volumes = no" and the upcall off it passes; a request-key drop-in that names the build's
# handler satisfies the request-key item; --json says the same. keyscoped runs the same checks
# at start, logs them, serves keys without device-mapper, and answers volume requests with the
# device-mapper check's message.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rk-lib.sh"

: >"$T/empty.conf"
# item NAME: the status column of NAME in the text output in $OUT.
item() { sed -nE "s/^([a-z]+( \(not needed\))?) +$1 .*/\1/p" <<<"$OUT"; }

RC=0
OUT=$(ctl check --no-load --config "$T/empty.conf" 2>&1) || RC=$?
echo "$OUT"
for name in keyring logon request-key request-key-handler device-mapper dm-crypt root_maxkeys \
	root_maxbytes; do
	grep -qE "^[a-z]+( \(not needed\))? +$name " <<<"$OUT" || fail "no line for $name"
done
expect_eq "$(item keyring)" ok "keyring"
expect_eq "$(item logon)" ok "logon"
# The kernel has device-mapper when its misc device is registered; a /dev/mapper/control node
# alone proves nothing (libdevmapper makes one with mknod when it is missing).
host_dm() { grep -qw device-mapper /proc/misc; }
if host_dm; then
	expect_eq "$(item device-mapper)" ok "device-mapper (this kernel has it)"
	echo "this host has device-mapper: the 'missing' case is shown by the VM test's opposite"
else
	expect_eq "$(item device-mapper)" missing "device-mapper"
	grep -E "^missing +device-mapper +no device-mapper in this kernel .*(cannot load modules|module loading is disabled|not loaded)" \
		<<<"$OUT" >/dev/null || fail "device-mapper is missing without a reason"
	grep -qE "^ +fix: " <<<"$OUT" || fail "no fix line"
	[ "$RC" = 1 ] || fail "check exited $RC with device-mapper missing, want 1"
	expect_eq "$(item dm-crypt)" skipped "dm-crypt without device-mapper"
fi
grep -q "^keyscope check: .* missing" <<<"$OUT" || [ "$RC" = 0 ] || fail "no summary line"

# --json: the same items; the exit status agrees.
RC2=0
JSON=$(ctl --json check --no-load --config "$T/empty.conf") || RC2=$?
expect_eq "$RC2" "$RC" "exit status with --json"
grep -q '"name":"device-mapper"' <<<"$(tr -d ' \n' <<<"$JSON")" || fail "--json lacks device-mapper"
if command -v python3 >/dev/null; then
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d["ok"], bool); assert len(d["checks"]) == 8; assert all(set(c) == {"name","status","needed","detail","fix"} for c in d["checks"])' \
		<<<"$JSON" || fail "--json output is not the documented object: $JSON"
fi

# A node that only hands keys to others, with the upcall off: nothing it lacks is needed.
printf 'volumes = no\nrequest-key-uids =\n' >"$T/keys-only.conf"
RC=0
OUT=$(ctl check --no-load --config "$T/keys-only.conf") || RC=$?
[ "$RC" = 0 ] || fail "check with volumes = no and no upcall exited $RC: $OUT"
host_dm || grep -q "^missing (not needed) *device-mapper" <<<"$OUT" ||
	fail "device-mapper not reported as not needed: $OUT"
echo "volumes = no, request-key-uids empty: exit 0"

# The request-key item is satisfied by a drop-in that sends every logon keyscope:* request to an
# executable handler, for as long as the check runs. Not the token line of the other tests:
# that one takes only their own requests, and the check says so.
install_dropin
OUT=$(ctl check --no-load --config "$T/keys-only.conf") || true
[ -e /etc/request-key.d/keyscope.conf ] || expect_eq "$(item request-key-handler)" "missing (not needed)" \
	"request-key-handler with a drop-in that takes only some callout info"
echo "create logon keyscope:* * $HANDLER --socket $KEYSCOPE_SOCKET %k %d %c %u" >"$RK_CONF"
OUT=$(ctl check --no-load --config "$T/empty.conf") || true
rm -f "$RK_CONF"
expect_eq "$(item request-key-handler)" ok "request-key-handler with the drop-in"
grep -q "sends logon keyscope:\* requests to $HANDLER" <<<"$OUT" || fail "the drop-in's handler is not named"
echo "create logon keyscope:* * /nonexistent/keyscope-request-key %k %d %c %u" >"$RK_CONF"
OUT=$(ctl check --no-load --config "$T/empty.conf") || true
rm -f "$RK_CONF"
if [ ! -e /etc/request-key.d/keyscope.conf ]; then
	expect_eq "$(item request-key-handler)" missing "a drop-in naming a missing handler"
	grep -q "runs /nonexistent/keyscope-request-key, which is not an executable file" <<<"$OUT" ||
		fail "the missing handler is not named: $OUT"
fi

# A quota too small for expected-scopes is missing, with the sysctl to raise it.
max=$(cat /proc/sys/kernel/keys/root_maxkeys)
if [ "$max" -le 1000000 ]; then
	printf 'expected-scopes = 1000000\nvolumes = no\nrequest-key-uids =\n' >"$T/big.conf"
	OUT=$(ctl check --no-load --config "$T/big.conf") && fail "check passed with too small a quota"
	expect_eq "$(item root_maxkeys)" missing "root_maxkeys for 1000000 scopes"
	grep -q "fix: sysctl kernel.keys.root_maxkeys=" <<<"$OUT" || fail "no sysctl fix for the quota"
	echo "expected-scopes = 1000000: $(grep '^missing *root_maxkeys' <<<"$OUT" | tr -s ' ')"
fi

# keyscoped runs the checks at start, logs each, and serves keys without device-mapper.
start_daemon --config "$T/empty.conf"
grep -q "Kernel check keyring: ok" "$DAEMON_LOG" || fail "no kernel check lines in the daemon log"
grep -q "Kernel check device-mapper: " "$DAEMON_LOG" || fail "no device-mapper line in the daemon log"
id=$(ctl key create)
ctl key install "$id" >/dev/null || fail "the daemon does not serve keys"
ctl key release "$id" >/dev/null
# ... and answers a volume request with the device-mapper check's message.
if ! host_dm && [ -b /dev/loop0 ]; then
	expect_fail_msg "keyscope.NoDeviceMapper" ctl attach /dev/loop0 --name ks-check-test
	out=$(ctl attach /dev/loop0 --name ks-check-test 2>&1) || true
	grep -q "device-mapper is not available on this kernel: no device-mapper in this kernel" \
		<<<"$out" || fail "attach does not give the check's message: $out"
	echo "attach without device-mapper: $out"
fi
grep "Kernel check" "$DAEMON_LOG" | sed 's/^/  /'
echo ok
