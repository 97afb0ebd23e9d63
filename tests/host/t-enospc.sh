#!/bin/bash
# A full state filesystem does not stop keyscoped (issue 10 item 4): killed and restarted on a
# full state folder, it starts, serves keys from memory, says loudly (log, status) that its
# state is not written as soon as a change cannot be written, and writes it once space returns.
. "$(dirname "$0")/lib.sh"
mkdir -p "$STATE"
mount -t tmpfs -o size=512k,mode=0700 keyscope-test "$STATE" 2>"$T/mount.err" ||
	skip "cannot mount a tmpfs for the state folder: $(cat "$T/mount.err")"
trap 'rc=$?; stop_daemon || rc=1; umount "$STATE" 2>/dev/null; trap - EXIT; (exit $rc); cleanup' EXIT

start_daemon
a=$(ctl key create)
b=$(ctl key create)
ctl key install "$a" >/dev/null
sa=$(key_serial "$a")

# Fill the state filesystem to the last block.
dd if=/dev/zero of="$STATE/fill" bs=4k 2>/dev/null || true
for i in $(seq 1 64); do head -c 4096 /dev/zero >"$STATE/fill.$i" 2>/dev/null || break; done
if head -c 4096 /dev/zero >"$STATE/probe" 2>/dev/null; then fail "state folder not full"; fi

crash_daemon
start_daemon		# fails the test if keyscoped exits at start
expect_eq "$(key_serial "$a")" "$sa" "held key a after a restart on a full disk"

# Keys are served. A start after which nothing moved writes nothing, and the journal's last page
# takes a few more lines: the first change that cannot be written says so, loudly.
unwritable="Cannot write $STATE/scopes\.\(json\|journal\): No space left on device"
for _ in $(seq 1 200); do
	ctl key install "$b" | grep -q "holders 1" || fail "install of $b on a full disk"
	grep -q "$unwritable" "$DAEMON_LOG" && break
	ctl key release "$b" >/dev/null
done
grep -q "$unwritable" "$DAEMON_LOG" || fail "no error about the unwritable state in the log"
ctl status | grep -q "state not written: $STATE/scopes\.\(json\|journal\): No space left on device" ||
	fail "status does not say the state is not written: $(ctl status | head -n 6)"
[ -n "$(key_serial "$b")" ] || fail "key $b not in the kernel"
# The error is logged once, not per change.
ctl key install "$b" >/dev/null
ctl key release "$b" >/dev/null
expect_eq "$(grep -c "Cannot write $STATE" "$DAEMON_LOG")" 1 "error lines about the state"
grep -q "\"$b\"" "$STATE/scopes.json" 2>/dev/null && fail "scopes.json written on a full disk?"

# Space returns: the state is written without any further request (the retry timer).
rm -f "$STATE"/fill*
for _ in $(seq 1 300); do
	grep -q "\"$b\"" "$STATE/scopes.json" 2>/dev/null && break
	sleep 0.1
done
grep -q "\"key-id\":\"$b\",\"manual\":1" "$STATE/scopes.json" ||
	fail "scopes.json not written after space returned: $(cat "$STATE/scopes.json")"
ctl status | grep -q "state not written" && fail "status still says the state is not written"
grep -q "Wrote $STATE/scopes.json again" "$DAEMON_LOG" || fail "recovery not logged"

# What was written is what a restart finds.
crash_daemon
start_daemon
ctl --json scope list | tr -d ' \n' | grep -q "\"key-id\":\"$b\",[^}]*\"holders\":1" ||
	fail "holder of $b not restored: $(ctl scope list)"
ctl key release "$b" >/dev/null
ctl key release "$a" >/dev/null
echo ok
