#!/bin/bash
# A large batch is all or nothing (docs/keyring.md, "Batches"): a key that cannot be unsealed,
# first, in the middle or last of 320 (the first given twice), leaves no kernel key, no holder
# and no scope of the batch behind, and the holder taken before stays as it was; a key refused
# late comes after hundreds of holders taken and keys made that the rollback must drop.
. "$(dirname "$0")/lib.sh"
start_daemon
n=320
ids=()
for _ in $(seq $n); do ids+=("$(ctl key create)"); done
held=${ids[5]}
ctl key install "$held" >/dev/null
serial=$(key_serial "$held")

corrupt() { # FILE: one flipped byte in the middle
	local size
	size=$(stat -c %s "$1")
	printf '\x55' | dd of="$1" bs=1 seek=$((size / 2)) count=1 conv=notrunc status=none
	cmp -s "$1" "$T/orig" && printf '\xaa' | dd of="$1" bs=1 seek=$((size / 2)) count=1 conv=notrunc status=none
	return 0
}
check_clean() { # WHAT
	expect_eq "$(count_keyscope_keys)" 1 "kernel keys after the refused batch ($1)"
	expect_eq "$(key_serial "$held")" "$serial" "the key held before ($1)"
	ctl --json scope list | tr -d ' \n' | grep -q "\"key-id\":\"$held\",[^}]*\"holders\":1" ||
		fail "the holder taken before changed ($1): $(ctl scope list)"
	expect_eq "$(ctl scope list | tail -n +2 | wc -l)" 1 "scopes after the refused batch ($1)"
}

for bad in 0 $((n / 2)) $((n - 1)); do
	f=$STATE/keys/${ids[$bad]}.key
	cp "$f" "$T/orig"
	corrupt "$f"
	# the first key-id twice: held twice once installed, the rollback drops both
	expect_fail_msg "key file $f is corrupt" ctl key install "${ids[0]}" "${ids[@]}"
	check_clean "key $bad of $n corrupt"
	cp "$T/orig" "$f"
done

# The same batch whole: every key installed once, the first held twice, the held one twice.
out=$(ctl key install "${ids[0]}" "${ids[@]}")
expect_eq "$(echo "$out" | wc -l)" $((n + 1)) "lines for the batch"
echo "$out" | sed -n 2p | grep -q "keyscope:${ids[0]} serial .* holders 2" || fail "2nd line: $(echo "$out" | sed -n 2p)"
expect_eq "$(count_keyscope_keys)" $n "kernel keys after the batch"
expect_eq "$(key_serial "$held")" "$serial" "the key held before keeps its serial"
for i in 0 $((n / 2)) $((n - 1)); do
	expect_eq "$(key_serial "${ids[$i]}")" "$(echo "$out" | grep "keyscope:${ids[$i]} " | tail -n 1 | awk '{ print $3 }')" \
		"serial of key $i in the reply"
done
# A restart finds the holders the batch journaled.
stop_daemon
start_daemon
ctl --json scope list | tr -d ' \n' | grep -q "\"key-id\":\"${ids[0]}\",[^}]*\"holders\":2" ||
	fail "holders of the first key after a restart: $(ctl scope list)"
ctl key release "${ids[0]}" "${ids[@]}" "$held" >/dev/null
expect_eq "$(count_keyscope_keys)" 0 "kernel keys after the release"
echo ok
