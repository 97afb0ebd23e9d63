#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The volume half of make demo: a file-backed volume formatted by keyscope, opened by keyring
# reference, written and read, snapshotted, the snapshot opened on the same kernel key, both
# closed. Needs a kernel with device-mapper (run inside the VM guest when the host has none).
set -eu
top=${KEYSCOPE_TOP:-$(cd "$(dirname "$0")/.." && pwd)}
B=${KEYSCOPE_BUILDDIR:-$top/build/out}
D=$(mktemp -d /run/keyscope-demo-vol.XXXXXX)
export KEYSCOPE_SOCKET=$D/sock
pid= loops=()
cleanup() {
	dmsetup remove demo-snap 2>/dev/null || true
	dmsetup remove demo-vol 2>/dev/null || true
	dmsetup remove demo-snapraw 2>/dev/null || true
	[ -z "$pid" ] || kill "$pid" 2>/dev/null || true
	for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null || true; done
	rm -rf "$D"
}
trap cleanup EXIT
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "keyscopectl ${*:2}"; "$@"; }
ks() { "$B/keyscopectl" "$@"; }

keyctl link @u @s 2>/dev/null || true	# dm-crypt finds keys through the loader's keyrings
"$B/keyscoped" --socket "$KEYSCOPE_SOCKET" --state-dir "$D/state" 2>"$D/log" &
pid=$!
for _ in $(seq 100); do [ -S "$KEYSCOPE_SOCKET" ] && break; sleep 0.1; done

say "truncate -s 64M volume.img && losetup --find --show volume.img"
truncate -s 64M "$D/volume.img"
vol=$(losetup --find --show "$D/volume.img"); loops+=("$vol"); echo "$vol"
say "keyscopectl key create --name demo-volume"
id=$(ks key create --name demo-volume); echo "$id"
run ks format "$vol" --key "$id"
run ks attach "$vol" --name demo-vol
say "dmsetup table --showkeys demo-vol      # a reference to the kernel key, no key bytes"
dmsetup table --showkeys demo-vol
say "echo 'hello from a keyscope volume' | dd of=/dev/mapper/demo-vol; dd if=/dev/mapper/demo-vol"
printf 'hello from a keyscope volume\n' | dd of=/dev/mapper/demo-vol bs=4096 conv=sync oflag=direct status=none
dd if=/dev/mapper/demo-vol bs=4096 count=1 iflag=direct status=none | head -n 1
say "grep -c 'hello from' volume.img      # the backing file holds ciphertext only"
grep -c 'hello from' "$D/volume.img" || true
say "snapshot: dmsetup create demo-snapraw (dm-snapshot of $vol), then keyscopectl attach it"
truncate -s 32M "$D/cow.img"
cow=$(losetup --find --show "$D/cow.img"); loops+=("$cow")
dmsetup create demo-snapraw --table "0 $(blockdev --getsz "$vol") snapshot $vol $cow N 8"
run ks attach /dev/mapper/demo-snapraw --name demo-snap
say "dd if=/dev/mapper/demo-snap       # the snapshot reads the same data"
dd if=/dev/mapper/demo-snap bs=4096 count=1 iflag=direct status=none | head -n 1
run ks scope list
echo "(one kernel key, two holders: the snapshot cost no fetch and no key derivation)"
run ks detach demo-snap
run ks detach demo-vol
say "keyctl search @u logon keyscope:$id      # the last detach removed the key"
keyctl search @u logon "keyscope:$id" 2>&1 || true
dmsetup remove demo-snapraw
