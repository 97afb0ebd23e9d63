#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk u1:64M --disk u2:64M --disk u3:64M --disk u4:64M --timeout 900
# What unlock-concurrency buys: four os-brick volumes (LUKS2, Argon2id keyslot, hex passphrase)
# opened at once, inside the test guest (2 vCPUs), by keyscopectl attach --passphrase hex with
# unlock-concurrency 1, 2 and 4, against cryptsetup opening the same four in parallel (what
# os-brick does on a node). Each keyslot costs 64 MiB of Argon2id memory here (cryptsetup's
# default would be up to 1 GiB, which is why keyscoped's default is 1). Wall time from the
# first open to the last mapping, medians of KEYSCOPE_BENCH_REPS (3).
# Key bytes live only in this shell's variables and in pipes: never in argv, env or a file.
#
# Every background job is waited for by its PID: a bare `wait` would also wait for the
# keyscoped that ks_start runs in the background of this same shell, and never return.
# Run alone: tests/vm/run --disk u1:64M --disk u2:64M --disk u3:64M --disk u4:64M \
#	--timeout 900 bench/vm-unlock.sh   (bench/run --vm runs it after bench/vm-attach.sh)
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

reps=${KEYSCOPE_BENCH_REPS:-3}
n=4
disks=()
for i in $(seq 1 $n); do disks+=("$(vm_disk "u$i")"); done
W=$KS_DIR/bench
mkdir -p "$W"
say() { printf 'vm-unlock: %s\n' "$*" >&2; }
median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f\n", b - a }'; }
# wait_all WHAT PID...: waits for each PID; dies naming WHAT when one failed.
wait_all() {
	local what=$1 p
	shift
	for p in "$@"; do wait "$p" || vm_die "$what failed (pid $p)"; done
}

hex=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
for d in "${disks[@]}"; do
	printf '%s' "$hex" | cryptsetup --batch-mode luksFormat --type luks2 \
		--cipher aes-xts-plain64 --key-size 256 --pbkdf argon2id --pbkdf-memory 65536 \
		--pbkdf-parallel 1 --pbkdf-force-iterations 4 --key-file=- "$d"
done
say "formatted $n volumes"

# cryptsetup: all four at once, as os-brick opens a node's volumes.
for _ in $(seq 1 "$reps"); do
	t0=$EPOCHREALTIME
	pids=()
	for i in $(seq 1 $n); do
		printf '%s' "$hex" | cryptsetup open --key-file=- "${disks[$((i - 1))]}" "cs$i" &
		pids+=($!)
	done
	wait_all "cryptsetup open" "${pids[@]}"
	since "$t0" >>"$W/cryptsetup"
	for i in $(seq 1 $n); do cryptsetup close "cs$i"; done
done
say "cryptsetup: $(median "$W/cryptsetup") s"

ks_start
id=$(printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | ks key import --name os-brick)
hex=
ks_stop
for c in 1 2 4; do
	printf '[keyscoped]\nunlock-concurrency = %s\n' "$c" >"$KS_DIR/conf"
	ks_start --config "$KS_DIR/conf"
	for _ in $(seq 1 "$reps"); do
		t0=$EPOCHREALTIME
		pids=()
		for i in $(seq 1 $n); do
			ks attach "${disks[$((i - 1))]}" --key "$id" --passphrase hex --name "ks$i" \
				>/dev/null &
			pids+=($!)
		done
		wait_all "keyscopectl attach" "${pids[@]}"
		since "$t0" >>"$W/ks$c"
		# The last detach invalidates each volume key: the next round unlocks again.
		for i in $(seq 1 $n); do ks detach "ks$i" >/dev/null; done
	done
	ks_stop
	say "keyscope, unlock-concurrency $c: $(median "$W/ks$c") s"
done

base=$(median "$W/cryptsetup")
echo
echo "| $n os-brick volumes opened at once | wall time (s) | vs cryptsetup |"
echo "| --- | ---: | ---: |"
echo "| cryptsetup open, $n in parallel | $base | 1.00 |"
for c in 1 2 4; do
	m=$(median "$W/ks$c")
	echo "| keyscopectl attach --passphrase hex, unlock-concurrency $c | $m |" \
		"$(awk -v a="$m" -v b="$base" 'BEGIN { printf "%.2f", a / b }') |"
done
