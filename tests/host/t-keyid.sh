#!/bin/bash
# Key-ids outside the grammar are refused by keyscopectl before anything is sent, and by the
# daemon for clients that skip the CLI (t-hostile.sh); nothing is created.
. "$(dirname "$0")/lib.sh"
start_daemon
long=$(printf 'k%.0s' $(seq 1 5000))
for id in "a/b" ".." "../x" "a b" $'a\nb' "" "$long" "keyscope:x" ".x" "-x"; do
	for cmd in install release delete clone; do
		expect_fail_msg "is not a valid key-id" ctl key $cmd -- "$id"
	done
done
max=$(printf 'k%.0s' $(seq 1 128))
expect_fail_msg "no key $max in the key store" ctl key install "$max"
expect_fail_msg "is not a valid key-id" ctl key install "${max}k"
expect_eq "$(count_keyscope_keys)" 0 "kernel keys"
expect_fail_msg "unknown command" ctl key frobnicate
expect_fail_msg "Usage: keyscopectl key create" ctl key create extra
expect_fail_msg "bits must be 256 or 512" ctl key create --bits 128 || true
ctl key create --bits 128 2>&1 | grep -q -- "--bits must be 256 or 512" || fail "--bits 128 message"
expect_fail_msg "exactly 32 or 64 raw bytes" sh -c "printf '%33s' '' | $KEYSCOPECTL key import"
KEYSCOPE_SOCKET=$T/nothing.sock expect_fail_msg "Is keyscoped running" ctl status
echo ok
