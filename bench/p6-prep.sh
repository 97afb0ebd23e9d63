#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/p6-prep.sh DIR N NA MEM ITER: formats bench/vm-p6.sh's volumes on the host, through
# loop devices over each partition of DIR/ks.img, pb.img and ar.img (DIR/*.parts from
# bench/p6-gpt.py): formatting needs no device-mapper, and the guest (TCG, a shared machine)
# is 20-50 times slower at it. Run inside a private session keyring (bench/p6-host.sh).
#  ks: an ext4 on p6-aux holds a keyscoped state folder; each partition gets a key of its own
#      from that keyscoped (keyscopectl key create) and keyscopectl format;
#  pb: 64 random bytes on p6-aux are the crypttab key; each partition a LUKS2 keyslot for it
#      at cryptsetup's minimum PBKDF2 (1000 iterations);
#  ar: the same at Argon2id with MEM KiB, ITER iterations, 2 threads: the parameters that
#      cryptsetup's own calibration (2 s) picks in the guest, where it hits Argon2id's minimum
#      time cost 4 at 64 MiB; on the host it would calibrate to many more iterations.
# Key bytes go from /dev/urandom and keyscoped straight to the disk images, never to argv or
# the environment; the images live in DIR (0700) and are removed with it.
set -eu
D=$1 N=$2 NA=$3 MEM=$4 ITER=$5
top=$(cd "$(dirname "$0")/.." && pwd -P)
B=${KEYSCOPE_BUILDDIR:-$top/build/out}
loops=() kpid=
cleanup() {
	set +e
	# background jobs (subshells) inherit the trap: only the script itself cleans up
	[ "$BASHPID" = "$$" ] || return 0
	[ -z "$kpid" ] || { kill "$kpid"; wait "$kpid"; }
	mountpoint -q "$D/mnt" && umount "$D/mnt"
	for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null; done
}
trap cleanup EXIT
die() { echo "vm-p6: $*" >&2; exit 1; }

# part_loop IMAGE NAME: a loop device over partition NAME of DIR/IMAGE.img.
part_loop() {
	local off size
	read -r off size < <(awk -v n="$2" '$1 == n { printf "%.0f %.0f\n", $3 * 512, $4 * 512 }' "$D/$1.parts")
	[ -n "$size" ] || die "no partition $2 in $D/$1.parts"
	losetup -f --show -o "$off" --sizelimit "$size" "$D/$1.img"
}

prep_ks() {
	local aux l id
	aux=$(part_loop ks p6-aux)
	loops+=("$aux")
	mkfs.ext4 -q -F "$aux"
	mkdir -p "$D/mnt"
	mount "$aux" "$D/mnt"
	export KEYSCOPE_SOCKET=$D/sock
	"$B/keyscoped" --state-dir "$D/mnt" --socket "$KEYSCOPE_SOCKET" --keyring @s \
		--log-level warning 2>"$D/prep-keyscoped.log" &
	kpid=$!
	for _ in $(seq 100); do "$B/keyscopectl" status >/dev/null 2>&1 && break; sleep 0.05; done
	for i in $(seq 1 "$N"); do
		l=$(part_loop ks "p6-$i")
		id=$("$B/keyscopectl" key create)
		"$B/keyscopectl" format "$l" --key "$id" >/dev/null || die "keyscopectl format p6-$i failed"
		losetup -d "$l"
	done
	kill "$kpid"
	wait "$kpid" || true
	kpid=
	umount "$D/mnt"
	unset KEYSCOPE_SOCKET
}

# prep_cs IMAGE COUNT PBKDF-OPTIONS...
prep_cs() {
	local img=$1 count=$2 aux l
	shift 2
	aux=$(part_loop "$img" p6-aux)
	loops+=("$aux")
	head -c 64 /dev/urandom | dd of="$aux" bs=64 count=1 conv=fsync status=none
	for i in $(seq 1 "$count"); do
		# 8 at a time: each waits mostly on the host disk (its fsyncs)
		[ $((i % 8)) != 0 ] || wait
		{
			l=$(part_loop "$img" "p6-$i")
			cryptsetup luksFormat --batch-mode --type luks2 "$@" --key-file "$aux" \
				--keyfile-size 64 "$l" || echo "luksFormat $img p6-$i failed" >>"$D/prep-errors"
			losetup -d "$l"
		} &
	done
	wait
	losetup -d "$aux"
	[ ! -s "$D/prep-errors" ] || die "$(cat "$D/prep-errors")"
}

t0=$SECONDS
# keyscoped formats one volume at a time: cryptsetup's disks meanwhile
(
	prep_cs pb "$N" --pbkdf pbkdf2 --pbkdf-force-iterations 1000
	[ "$NA" = 0 ] || prep_cs ar "$NA" --pbkdf argon2id --pbkdf-memory "$MEM" \
		--pbkdf-force-iterations "$ITER" --pbkdf-parallel 2
) &
cpid=$!
prep_ks
wait "$cpid" || die "formatting cryptsetup's volumes failed"
echo "vm-p6: formatted $N + $N + $NA volumes on the host in $((SECONDS - t0)) s" >&2
