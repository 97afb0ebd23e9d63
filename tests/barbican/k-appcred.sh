#!/bin/bash
# Keystone application credentials: keyscoped authenticates once (the token is cached and
# reused), fetches a key delegated by read ACL to its Keystone user, and refuses one that is not
# naming that user; a credential file readable by others is refused; a wrong secret gives the
# 401 advice and never shows the secret; a deleted credential does too.
. "$(dirname "$0")/lib.sh"
need_barbican_source
app_credential "$T/appcred"
chmod 0600 "$T/appcred"
tokens() { grep -c "POST /v3/auth/tokens" "$KS_DIR/access.log" || true; }

id=$(secret_create "$OWNER")
delegate "$id"
second=$(secret_create "$OWNER")
delegate "$second"
private=$(secret_create "$OWNER")

start_node
t0=$(tokens)
ctl key install "$id" >/dev/null || fail "install with an application credential failed"
[ -n "$(key_serial "$id")" ] || fail "no kernel key"
ctl key install "$second" >/dev/null || fail "second install failed"
ctl key list --source barbican | grep -q -- "$second" || fail "delegated key not listed"
expect_fail_msg "not delegated to this node" ctl key install "$private"
out=$(ctl key install "$private" 2>&1) || true
echo "$out" | grep -q -- "$NODE_ID" || fail "403 message does not name the node's Keystone user: $out"
used=$(($(tokens) - t0))
[ "$used" = 1 ] || fail "keyscoped authenticated $used times for four requests (expected 1)"
echo "tokens issued to keyscoped for 4 operations: $used"
for k in "$id" "$second"; do ctl key release "$k" >/dev/null; done
# Neither the credential's secret nor a token in the log (the secret reaches grep through a pipe).
if sed -n 's/^secret = //p' "$T/appcred" | grep -qF -f - "$DAEMON_LOG"; then
	fail "the application credential's secret is in the daemon's log"
fi
if grep -qE "gAAAAA[A-Za-z0-9_-]{20,}" "$DAEMON_LOG"; then fail "a fernet token in the daemon's log"; fi
stop_daemon

# A credential file that others can read: refused, naming the file.
chmod 0644 "$T/appcred"
node_conf
if "$KEYSCOPED" --config "$T/conf" --socket "$KEYSCOPE_SOCKET" --state-dir "$STATE" \
	--keyring @s >"$T/err" 2>&1 & then
	p=$!
	sleep 1
	if kill -0 $p 2>/dev/null; then
		kill $p; wait $p || true
		# Started anyway: then the fetch must refuse.
		fail "keyscoped started with an app-credential-file of mode 0644"
	fi
	wait $p && fail "keyscoped exited 0 with an app-credential-file of mode 0644"
fi
grep -q -- "$T/appcred" "$T/err" || fail "mode 0644 refusal does not name the file: $(cat "$T/err")"
echo "mode 0644: $(tail -n1 "$T/err")"
chmod 0600 "$T/appcred"

# A wrong secret: the 401 advice, the fetch not retried in a loop, the secret not shown.
sed -i 's/^secret = .*/secret = not-the-secret-0123456789/' "$T/appcred"
start_node
out=$(ctl key install "$id" 2>&1) && fail "install with a wrong secret succeeded"
echo "$out" | grep -qi "app-credential-file\|credential" || fail "no advice about the credential: $out"
if grep -q "not-the-secret-0123456789" "$DAEMON_LOG"; then fail "the wrong secret is in the log"; fi
echo "$out" | grep -q "not-the-secret" && fail "the wrong secret is in the message"
echo "wrong secret: $out"
stop_daemon
echo ok
