#!/bin/bash
# Corrupt, truncated or tampered key files, and a wrong master key, are refused with an error
# naming the file; other keys and the kernel are untouched.
. "$(dirname "$0")/lib.sh"
start_daemon
good=$(ctl key create)
bad=$(ctl key create)
f=$STATE/keys/$bad.key
size=$(stat -c %s "$f")

# one flipped byte in the middle of the sealed key
cp "$f" "$T/orig"
printf '\x55' | dd of="$f" bs=1 seek=$((size / 2)) count=1 conv=notrunc status=none
cmp -s "$f" "$T/orig" && printf '\xaa' | dd of="$f" bs=1 seek=$((size / 2)) count=1 conv=notrunc status=none
expect_fail_msg "key file $f is corrupt" ctl key install "$bad"
# truncated
head -c $((size - 1)) "$T/orig" >"$f"
expect_fail_msg "key file $f is corrupt" ctl key install "$bad"
# another key's file under this key-id (renamed): the key-id is authenticated
cp "$STATE/keys/$good.key" "$f"
expect_fail_msg "key file $f is corrupt" ctl key install "$bad"
expect_eq "$(count_keyscope_keys)" 0 "kernel keys after refused installs"
ctl key install "$good" >/dev/null || fail "good key refused"
ctl key release "$good" >/dev/null
cp "$T/orig" "$f"
rm -f "$T/orig"
ctl key install "$bad" >/dev/null || fail "restored key refused"
ctl key release "$bad" >/dev/null

# a wrong master key: every key refused, each naming its file
stop_daemon
mv "$STATE/master.key" "$T/master.key"
head -c 32 /dev/urandom >"$STATE/master.key"
chmod 0400 "$STATE/master.key"
start_daemon
expect_fail_msg "key file $STATE/keys/$good.key is corrupt" ctl key install "$good"
stop_daemon
# a master key of the wrong size or mode stops the daemon at start with a clear message
for bad_master in size mode; do
	rm -f "$STATE/master.key"
	if [ $bad_master = size ]; then head -c 31 /dev/urandom >"$STATE/master.key"; chmod 0400 "$STATE/master.key"
	else head -c 32 /dev/urandom >"$STATE/master.key"; chmod 0644 "$STATE/master.key"; fi
	if "$KEYSCOPED" --socket "$KEYSCOPE_SOCKET" --state-dir "$STATE" --keyring @s 2>"$T/err"; then
		fail "daemon started with a master key of the wrong $bad_master"
	fi
	grep -q "master.key" "$T/err" || fail "no file named for bad master $bad_master: $(cat "$T/err")"
done
rm -f "$STATE/master.key"
mv "$T/master.key" "$STATE/master.key"
start_daemon
ctl key install "$good" >/dev/null || fail "good key refused after master key restored"
ctl key release "$good" >/dev/null
echo ok
