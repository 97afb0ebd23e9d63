#!/bin/bash
# Install creates exactly one logon key with the documented description and permissions; its
# payload cannot be read; holders are counted; the last release invalidates it.
. "$(dirname "$0")/lib.sh"
start_daemon

id=$(ctl key create --name vol-a)
[ -n "$id" ] || fail "key create printed no key-id"
expect_eq "$(count_keyscope_keys)" 0 "keys before install"

out=$(ctl key install "$id")
serial=$(key_serial "$id")
[ -n "$serial" ] || fail "no logon key keyscope:$id after install"
expect_eq "$out" "keyscope:$id serial $serial holders 1" "install output"
expect_eq "$(count_keyscope_keys)" 1 "keys after install"

# logon;uid;gid;perm;description with the mask documented in docs/keyring.md
expect_eq "$(keyctl rdescribe "$serial")" "logon;0;0;19010000;keyscope:$id" "key description"
ring=$(keyctl search @s keyring keyscope)
expect_eq "$(keyctl rdescribe "$ring" | cut -d';' -f1,4,5)" "keyring;3f030000;keyscope" \
	"keyscope keyring"

# The payload never comes back to user space, not even to root holding the key.
if keyctl read "$serial" >/dev/null 2>&1; then fail "keyctl read of a logon key succeeded"; fi
if keyctl pipe "$serial" >/dev/null 2>&1; then fail "keyctl pipe of a logon key succeeded"; fi
# Nor can a possessor swap the payload, expire the key or widen its permissions.
if printf 'x%.0s' $(seq 64) | keyctl pupdate "$serial" 2>/dev/null; then fail "payload update allowed"; fi
if keyctl timeout "$serial" 5 2>/dev/null; then fail "timeout allowed"; fi
if keyctl setperm "$serial" 0x3f3f0000 2>/dev/null; then fail "setperm allowed"; fi

# acquire x2 / release x1 keeps the same key
ctl key install "$id" | grep -q "serial $serial holders 2" || fail "second install"
ctl key release "$id" | grep -q "serial $serial holders 1" || fail "first release"
expect_eq "$(key_serial "$id")" "$serial" "key kept after one of two releases"
ctl --json scope list | grep -q '"holders":1' || fail "scope list does not show 1 holder"

# release x2 invalidates it
ctl key release "$id" | grep -q "serial 0 holders 0" || fail "last release output"
[ -z "$(key_serial "$id")" ] || fail "key still in the kernel after the last release"
if keyctl rdescribe "$serial" >/dev/null 2>&1; then fail "serial $serial still describable"; fi
expect_eq "$(count_keyscope_keys)" 0 "keys after last release"

# a release with no holder is an error that names the key
expect_fail_msg "has no holder" ctl key release "$id"
# an unknown key is an error that says so, and leaves nothing behind
expect_fail_msg "no key 0000-unknown in the key store" ctl key install 0000-unknown
expect_eq "$(count_keyscope_keys)" 0 "keys after failed install"
ctl --json scope list | tr -d ' \n' | grep -q '"scopes":\[\]' || fail "failed install left a scope"

# delete refuses while held, works after release
ctl key install "$id" >/dev/null
expect_fail_msg "release them first" ctl key delete "$id"
ctl key release "$id" >/dev/null
ctl key delete "$id"
expect_fail_msg "no key $id" ctl key install "$id"
echo "ok"
