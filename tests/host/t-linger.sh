#!/bin/bash
# --linger keeps a released key in the kernel for a while; it must not keep a deleted key:
# KeyDelete invalidates the lingering kernel key, KeyInstall refuses a key whose store entry
# is gone (no holder on a kernel key that nothing backs), and a restart after the kernel keys
# went (a reboot) finds no holder it cannot reinstall (issue 10 item 5).
. "$(dirname "$0")/lib.sh"
in_proc_keys() { grep -qF " keyscope:$1:" /proc/keys; }

start_daemon --linger 600
a=$(ctl key create)
ctl key install "$a" >/dev/null
ctl key release "$a" >/dev/null
sa=$(key_serial "$a")
[ -n "$sa" ] || fail "key $a does not linger after its release"
in_proc_keys "$a" || fail "lingering key $a not in /proc/keys"

# Delete while lingering: the kernel key goes with the key.
ctl key delete "$a" >/dev/null
[ -z "$(key_serial "$a")" ] || fail "deleted key $a still in the kernel (serial $sa)"
# An invalidated key leaves /proc/keys when the kernel's key collector runs (asynchronous).
for _ in $(seq 40); do in_proc_keys "$a" || break; sleep 0.05; done
if in_proc_keys "$a"; then fail "deleted key $a still in /proc/keys after 2 s"; fi
expect_fail_msg "keyscope.NoSuchKey\|no key $a" ctl key install "$a"
ctl --json scope list | grep -q "$a" && fail "scope of deleted key listed: $(ctl scope list)"

# A key file that went away behind the daemon's back while its key lingers.
b=$(ctl key create)
ctl key install "$b" >/dev/null
ctl key release "$b" >/dev/null
[ -n "$(key_serial "$b")" ] || fail "key $b does not linger"
rm -f "$STATE/keys/$b".*
[ ! -e "$STATE/keys/$b" ] || rm -f "$STATE/keys/$b"
expect_fail_msg "keyscope.NoSuchKey\|no key $b" ctl key install "$b"
[ -z "$(key_serial "$b")" ] || fail "kernel key of vanished key $b kept"

# Held keys still work, and a held key's delete is still refused.
c=$(ctl key create)
ctl key install "$c" >/dev/null
expect_fail_msg "keyscope.KeyInUse" ctl key delete "$c"
[ -n "$(key_serial "$c")" ] || fail "held key $c gone"

# A reboot: every kernel key gone; the next start must find nothing it cannot reinstall.
crash_daemon
ring=$(keyctl search @s keyring keyscope)
keyctl clear "$ring"
start_daemon --linger 600
if grep -q "Failed to reinstall" "$DAEMON_LOG"; then
	fail "restart: $(grep "Failed to reinstall" "$DAEMON_LOG")"
fi
[ -n "$(key_serial "$c")" ] || fail "held key $c not reinstalled after the reboot"
expect_eq "$(count_keyscope_keys)" 1 "kernel keys after the reboot"
ctl key release "$c" >/dev/null
echo ok
