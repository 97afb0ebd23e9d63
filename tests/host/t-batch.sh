#!/bin/bash
# Several key-ids in one install or release: all or nothing, in the order given.
. "$(dirname "$0")/lib.sh"
start_daemon
a=$(ctl key create)
b=$(ctl key create)
c=$(ctl key create)
out=$(ctl key install "$a" "$b" "$c" "$a")
expect_eq "$(echo "$out" | wc -l)" 4 "lines for a batch of 4"
echo "$out" | sed -n 4p | grep -q "keyscope:$a serial .* holders 2" || fail "4th line: $out"
expect_eq "$(count_keyscope_keys)" 3 "kernel keys after batch install"

# One unknown key-id: nothing is taken, nothing installed.
expect_fail_msg "no key 0000-nothere in the key store" ctl key install "$b" "$c" 0000-nothere
ctl --json scope list | tr -d ' \n' | grep -q "\"key-id\":\"$b\",[^}]*\"holders\":1" ||
	fail "failed batch left a holder on b: $(ctl scope list)"
# Releasing more than is held: refused before anything is dropped.
expect_fail_msg "fewer than the 2 to release" ctl key release "$b" "$b"
ctl key release "$a" "$a" "$b" "$c" >/dev/null
expect_eq "$(count_keyscope_keys)" 0 "kernel keys after batch release"
# The largest batch: a reply far over the 64 KiB request limit still reaches the client.
many=$(for _ in $(seq 1024); do printf '%s ' "$a"; done)
# shellcheck disable=SC2086
out=$(ctl key install $many | tail -n 1)
echo "$out" | grep -q "holders 1024$" || fail "batch of 1024: $out"
# shellcheck disable=SC2086
ctl key release $many >/dev/null || fail "release of a batch of 1024"
expect_eq "$(count_keyscope_keys)" 0 "kernel keys after the batch of 1024"

# Hostile batches are refused whole.
RAW=$KEYSCOPE_BUILDDIR/tools/ks-raw
for bad in '[]' '"x"' '[1]' '["a/b"]' "[\"$a\",null]" "$(printf '"%s",' $(seq 1 1025) | sed 's/^/[/; s/,$/]/')"; do
	printf '{"method":"keyscope.KeyInstall","parameters":{"key-ids":%s}}\0' "$bad" |
		"$RAW" "$KEYSCOPE_SOCKET" | grep -q '"error":"keyscope.Invalid' || fail "batch $bad accepted"
done
printf '{"method":"keyscope.KeyInstall","parameters":{"key-id":"%s","key-ids":["%s"]}}\0' "$a" "$a" |
	"$RAW" "$KEYSCOPE_SOCKET" | grep -q "not both" || fail "key-id with key-ids accepted"
expect_eq "$(count_keyscope_keys)" 0 "kernel keys after hostile batches"
echo ok
