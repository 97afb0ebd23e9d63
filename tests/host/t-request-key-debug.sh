#!/bin/bash
# keyscope-request-key --debug: argument and reply handling without the kernel. A wrong
# argument count, a key that is not logon or not keyscope:<key-id>, a command line that
# disagrees with the key, and every kind of bad reply from keyscoped (an error, another key-id,
# no timeout, a payload of the wrong size or none, no answer) end in "would reject" with the
# right error; a good reply in "would instantiate" with the key hidden. Callout info with
# quotes, control and non-UTF-8 bytes reaches the daemon's audit line escaped.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rk-lib.sh"
[ -x "$KS_FAKE" ] || fail "no $KS_FAKE: run make check-host"

# dry ARGS...: the handler in --debug mode on this test's socket; sets OUT and RC.
dry() {
	RC=0
	OUT=$("$HANDLER" --debug --socket "$KEYSCOPE_SOCKET" --timeout 1 "$@" 2>&1) || RC=$?
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' <<<"$OUT"; then
		fail "sanitizer report from the handler: $OUT"
	fi
}
expect_dry() { # RC PATTERN WHAT
	[ "$RC" = "$1" ] || fail "$3: exit $RC, want $1: $OUT"
	grep -q -- "$2" <<<"$OUT" || fail "$3: no '$2' in: $OUT"
	echo "ok: $3"
}

start_daemon
id=$(ctl key create --bits 256)

# Arguments.
dry
expect_dry 2 "Expected the arguments KEY DESCRIPTION CALLOUT UID" "no arguments, no key to reject"
dry 7 "keyscope:$id" "volume=x"
expect_dry 1 "would reject key 7: error EINVAL" "3 arguments: the key is rejected"
grep -q "expected 4 arguments (KEY DESCRIPTION CALLOUT UID), got 3" <<<"$OUT" || fail "no reason: $OUT"
dry 7 "keyscope:$id" "volume=x" 0 extra
expect_dry 1 "would reject key 7: error EINVAL" "5 arguments: the key is rejected"
dry x "keyscope:$id" "volume=x" 0
expect_dry 2 "Expected the arguments" "a key serial that is not a number"
dry --timeout 0 7 "keyscope:$id" "volume=x" 0
expect_dry 2 "Invalid option or value" "--timeout 0"
dry 7 "keyscope:$id" "volume=x" nobody
expect_dry 1 "is not a uid" "a uid that is not a number"

# The key: type, description, owner.
dry --describe "user;0;0;3f010000;keyscope:$id" 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "would reject key 7: error EOPNOTSUPP" "a user key"
dry --describe "logon;0;0;3d010000;keyscope:other" 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "the description on the command line is not the key's" "description mismatch"
dry --describe "logon;1000;1000;3d010000;keyscope:$id" 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "the key belongs to uid 1000, the command line says uid 0" "owner mismatch"
dry --describe "logon;0;0" 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "malformed --describe text" "malformed describe text"
dry 7 "keyscope:../x" "volume=x" 0
expect_dry 1 "error EINVAL" "a key-id with '..'"
dry 7 "keyscope:vk:6f1c2f1e-4c1b-4b7e-9a55-0c4a0d2b9e01" "volume=x" 0
expect_dry 1 "upcalls hand out delegated keys only" "a recovered volume key's scope (vk:)"

# The real daemon: a good reply, and its errors.
dry 7 "keyscope:$id" "volume=x" 0
expect_dry 0 "would instantiate key 7: 32 bytes (hidden), timeout 300 s, permissions 19010000" \
	"a good reply"
dry 7 "keyscope:nope" "volume=x" 0
expect_dry 1 "error ENOKEY" "NoSuchKey"
dry 7 "keyscope:$id" "volume=x" 1000
expect_dry 1 "error EACCES" "a requester uid not in request-key-uids"
# Hostile callout info: the handler escapes it before it becomes JSON; the daemon's audit
# line shows it escaped, on one line.
dry 7 "keyscope:$id" "$(printf 'a"b\\c\nd\xff\x01e')" 0
expect_dry 0 "would instantiate" "callout info with quotes, newline and bad UTF-8"
grep -qF 'callout "a\x22b\x5cc\x0ad\xff\x01e"' "$DAEMON_LOG" ||
	fail "the audit line does not show the callout escaped: $(grep callout "$DAEMON_LOG" | tail -n1)"
echo "ok: callout info escaped in the audit line"
stop_daemon

# Bad replies from a fake daemon (random payload bytes, made by ks-fake, never a real key).
fake() { # REPLY [PAYLOAD_BYTES]
	[ -z "$FAKE_PID" ] || { kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null || true; }
	rm -f "$KEYSCOPE_SOCKET"
	"$KS_FAKE" "$KEYSCOPE_SOCKET" "$@" &
	FAKE_PID=$!
	for _ in $(seq 50); do [ -S "$KEYSCOPE_SOCKET" ] && return; sleep 0.05; done
	fail "ks-fake did not start"
}
ok_params="{\"parameters\":{\"key-id\":\"$id\",\"bits\":512,\"timeout\":60},\"payload-size\":64}"
fake "$ok_params" 64
dry 7 "keyscope:$id" "volume=x" 0
expect_dry 0 "would instantiate key 7: 64 bytes (hidden), timeout 60 s" "fake daemon, good reply"
fake "{\"parameters\":{\"key-id\":\"other\",\"timeout\":60},\"payload-size\":64}" 64
dry 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "reply is for another key-id" "a reply for another key-id"
fake "{\"parameters\":{\"key-id\":\"$id\"},\"payload-size\":64}" 64
dry 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "missing parameter 'timeout'" "a reply without a timeout"
fake "{\"parameters\":{\"key-id\":\"$id\",\"timeout\":0},\"payload-size\":64}" 64
dry 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "has timeout 0" "a reply with timeout 0"
fake "{\"parameters\":{\"key-id\":\"$id\",\"timeout\":60},\"payload-size\":16}" 16
dry 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "carries 16 bytes of key, not 32 or 64" "a 16-byte payload"
fake "{\"parameters\":{\"key-id\":\"$id\",\"timeout\":60}}"
dry 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "carries 0 bytes of key" "a reply without payload"
fake "{\"parameters\":{\"key-id\":\"$id\",\"timeout\":60},\"payload-size\":65}" 64
dry 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "error EIO" "payload-size 65"
fake "{\"error\":\"keyscope.CorruptKey\",\"parameters\":{\"message\":\"key file is corrupt\"}}"
dry 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "with EKEYREJECTED for 5s: keyscoped refused: key file is corrupt" "an error reply"
fake "not json"
dry 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "error EIO" "a reply that is not JSON"
kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null || true; FAKE_PID=
rm -f "$KEYSCOPE_SOCKET"
"$KS_FAKE" --hold "$KEYSCOPE_SOCKET" &
FAKE_PID=$!
for _ in $(seq 50); do [ -S "$KEYSCOPE_SOCKET" ] && break; sleep 0.05; done
t0=$EPOCHREALTIME
dry 7 "keyscope:$id" "volume=x" 0
ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", (b - a) * 1000 }')
expect_dry 1 "error ETIMEDOUT" "no answer (--timeout 1: gave up after $ms ms)"
[ "$ms" -lt 3000 ] || fail "the handler waited $ms ms with --timeout 1"
kill "$FAKE_PID"; wait "$FAKE_PID" 2>/dev/null || true; FAKE_PID=
rm -f "$KEYSCOPE_SOCKET"
dry 7 "keyscope:$id" "volume=x" 0
expect_dry 1 "error ECONNREFUSED" "no daemon"
echo ok
