#!/bin/bash
# A key that user A in project A delegates to the node by read ACL (project-access false) is
# installed as a logon key; before the ACL and after its withdrawal it is refused with the 403
# message; key list --source barbican lists exactly the delegated secrets, across pages.
. "$(dirname "$0")/lib.sh"
need_barbican_source
start_node

id=$(secret_create "$OWNER")
# Before the ACL the node cannot read it: refused with what to do next, nothing installed. The
# metadata and payload requests may fail in either order; each time it is the 403 message.
for _ in 1 2 3 4 5; do
	out=$(ctl key install "$id" 2>&1) && fail "install of an undelegated key succeeded"
	echo "$out" | grep -q "not delegated to this node" || fail "not the 403 message: $out"
	echo "$out" | grep -q -- "$id" || fail "403 message does not name the key-id: $out"
	echo "$out" | grep -q -- "$NODE_USER" || fail "403 message does not name the node's user: $out"
done
echo "before the ACL: $out"
[ -z "$(key_serial "$id")" ] || fail "a refused key is in the kernel"

delegate "$id"
out=$(ctl key install "$id") || fail "install of a delegated key failed"
serial=$(key_serial "$id")
[ -n "$serial" ] || fail "no logon key keyscope:$id after install"
expect_eq "$out" "keyscope:$id serial $serial holders 1" "install output"
keyctl rdescribe "$serial" | grep -q "^logon;0;0;[0-9a-f]*;keyscope:$id\$" ||
	fail "not a logon key keyscope:$id: $(keyctl rdescribe "$serial")"
if keyctl read "$serial" >/dev/null 2>&1; then fail "keyctl read of the logon key succeeded"; fi
ctl key release "$id" | grep -q "holders 0" || fail "release"
[ -z "$(key_serial "$id")" ] || fail "key still in the kernel after the last release"

# Withdrawn: refused again (the cache is off by default, so this is a fresh fetch).
acl_delete "$OWNER" "$id"
expect_fail_msg "not delegated to this node" ctl key install "$id"
[ -z "$(key_serial "$id")" ] || fail "a withdrawn key is in the kernel"

# An unknown secret: 404, named.
missing=$(cat /proc/sys/kernel/random/uuid)
out=$(ctl key install "$missing" 2>&1) && fail "install of a missing secret succeeded"
echo "$out" | grep -q -- "$missing" || fail "404 message does not name the key-id: $out"

# Listing: 23 delegated secrets (more than Barbican's default page of 10) and one that is not.
ids=()
for _ in $(seq 1 23); do
	k=$(secret_create "$OWNER" --name listed)
	delegate "$k"
	ids+=("$k")
done
hidden=$(secret_create "$OWNER" --name not-delegated)
ctl key list --source barbican >"$T/list" || fail "key list --source barbican failed"
for k in "${ids[@]}"; do
	grep -q -- "$k" "$T/list" || fail "delegated secret $k missing from key list --source barbican"
done
if grep -q -- "$hidden" "$T/list"; then fail "an undelegated secret is listed"; fi
if grep -q -- "$id" "$T/list"; then fail "a withdrawn secret is listed"; fi
ctl --json key list --source barbican >/dev/null || fail "key list --source barbican --json failed"

# Metadata checks: refused, naming the key-id and the mismatch.
opaque=$(secret_create "$OWNER" --type opaque)
delegate "$opaque"
out=$(ctl key install "$opaque" 2>&1) && fail "an opaque secret was installed"
echo "$out" | grep -q -- "$opaque" || fail "secret_type refusal does not name the key-id: $out"
echo "$out" | grep -qi "opaque\|secret.type" || fail "secret_type refusal does not say why: $out"
odd=$(secret_create "$OWNER" --bytes 25)
delegate "$odd"
out=$(ctl key install "$odd" 2>&1) && fail "a 200-bit key was installed"
echo "$out" | grep -q "200" || fail "bit_length refusal does not name the length: $out"
expect_eq "$(count_keyscope_keys)" 0 "keys after the refusals"
echo ok
