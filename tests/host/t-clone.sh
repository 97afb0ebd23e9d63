#!/bin/bash
# clone-key: a new key-id with the same material; both installed at once as two kernel keys;
# deleting one leaves the other usable.
. "$(dirname "$0")/lib.sh"
start_daemon

a=$(ctl key create --bits 256)
b=$(ctl key clone --name copy "$a")
[ -n "$b" ] && [ "$a" != "$b" ] || fail "clone did not print a new key-id ($a -> $b)"
ctl key list | grep -q "^$b  *256 .* copy$" || fail "clone not listed with 256 bits and its name"

ctl key install "$a" >/dev/null
ctl key install "$b" >/dev/null
sa=$(key_serial "$a")
sb=$(key_serial "$b")
[ -n "$sa" ] && [ -n "$sb" ] && [ "$sa" != "$sb" ] || fail "expected two kernel keys ($sa, $sb)"
expect_eq "$(count_keyscope_keys)" 2 "kernel keys"

# Same material: the store has both sealed separately; the kernel keys have equal payload
# sizes (their payloads cannot be read back, which is the point).
ctl key release "$a" >/dev/null
ctl key delete "$a"
expect_eq "$(key_serial "$b")" "$sb" "clone's key after deleting the original"
ctl key release "$b" >/dev/null
ctl key install "$b" | grep -q "holders 1" || fail "clone not installable after original deleted"
ctl key release "$b" >/dev/null
echo ok
