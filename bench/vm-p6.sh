#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --host
# P6 (issue 12): P6_VOLUMES (200) declared volumes opened at boot by keyscope, against
# systemd-cryptsetup opening as many from /etc/crypttab, in real boots of the --systemd guest,
# one after another in this one call (same guest kernel, same disk layout). Each volume is a
# 20 MiB GPT partition of one disk (bench/p6-gpt.py); the disk's last partition, p6-aux, holds
# keyscoped's state (keyscope) or the crypttab key file (cryptsetup: 64 random bytes read with
# keyfile-size=64, the same key for every volume, each keyslot with its own salt).
#   boot ks:     /etc/keyscope/volumes, one `vN PARTUUID=... -` line each (keyscope-generator);
#   boot pbkdf2: /etc/crypttab, LUKS2 keyslots at cryptsetup's minimum PBKDF2 (1000
#                iterations): systemd-cryptsetup's best case;
#   boot argon:  /etc/crypttab, P6_ARGON_VOLUMES (16) LUKS2 keyslots at cryptsetup's default
#                Argon2id (2 s calibrated in the guest) with memory bounded to P6_ARGON_MEM KiB
#                (65536): 200 of them would not finish in the bench's time, so the per-volume
#                cost is measured on N and the 200-volume figure is extrapolated (labelled so).
# Figures come from systemd's unit timestamps (CLOCK_MONOTONIC, µs): keyscoped.service's
# ActiveEnterTimestampMonotonic (Type=notify: READY=1) or the first systemd-cryptsetup unit's
# InactiveExitTimestampMonotonic, to the last volume unit's ActiveEnterTimestampMonotonic; and
# cgroup v2 memory.peak of keyscoped.service and of the per-volume units' slice (all their
# processes at once: RSS, kernel memory and page cache charged to them), keyscoped's VmHWM.
# A preparation guest formats the volumes first (keyscopectl format; cryptsetup luksFormat).
# Key bytes never leave the guests: keyscope's keys are made by keyscoped in its store on
# p6-aux, the crypttab key is written from /dev/urandom onto p6-aux; the disk images live in a
# private temporary folder removed at the end.
# Run alone: bench/vm-p6.sh (root; bench/run --vm runs it after the other guest benches).
# Knobs: P6_VOLUMES (1-250), P6_ARGON_VOLUMES (0 leaves that boot out), P6_ARGON_MEM (KiB),
#        P6_KEEP=1 keeps the folder with the guests' outputs and prints its path.
set -eu

if [ -z "${KEYSCOPE_VM-}" ]; then
	top=$(cd "$(dirname "$0")/.." && pwd -P)
	exec "$top/bench/p6-host.sh" "$0" "$@"
fi

# ---- in the guest ---------------------------------------------------------------------------
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
B=${KEYSCOPE_BUILDDIR:-$KEYSCOPE_TOP/build/out}
ks() { "$B/keyscopectl" "$@"; }
say() { printf 'vm-p6: %s\n' "$*" >&2; }
# part SERIAL NAME: the partition NAME (p6-7, p6-aux) of the disk SERIAL (quick mode, no
# udev: the kernel's node, /dev/vdb7), once the kernel has it.
part() {
	_p=$(vm_disk "$1")$(part_no "$1" "$2")
	_i=0
	until [ -b "$_p" ]; do
		_i=$((_i + 1))
		[ $_i -le 600 ] || vm_die "no $_p after 60 s"
		sleep 0.1
	done
	echo "$_p"
}
# part_no SERIAL NAME: its number; p6-aux is the last one (bench/p6-gpt.py).
part_no() {
	case $2 in
	p6-aux) if [ "$1" = ar ]; then echo $((P6_ARGON_N + 1)); else echo $((P6_N + 1)); fi ;;
	*) echo "${2#p6-}" ;;
	esac
}

# prepare_ks: keyscoped's state on ks's p6-aux, one key and one keyscope volume per partition.
prepare_ks() {
	aux=$(part ks p6-aux)
	mkfs.ext4 -q -F "$aux"
	mkdir -p /var/lib/keyscope
	mount "$aux" /var/lib/keyscope
	export KEYSCOPE_SOCKET=/run/ks-prepare.sock
	"$B/keyscoped" --state-dir /var/lib/keyscope --socket "$KEYSCOPE_SOCKET" \
		>/run/ks-prepare.log 2>&1 &
	pid=$!
	i=0
	until ks status >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -le 300 ] || { cat /run/ks-prepare.log; vm_die "keyscoped did not start"; }
		sleep 0.1
	done
	for i in $(seq 1 "$P6_N"); do
		id=$(ks key create)
		ks format "$(part ks "p6-$i")" --key "$id" >/dev/null
	done
	kill "$pid"
	wait "$pid" || true
	umount /var/lib/keyscope
	unset KEYSCOPE_SOCKET
}

# prepare_cs SERIAL COUNT PBKDF-OPTIONS...: the crypttab key on p6-aux, COUNT LUKS2 volumes
# with one keyslot each for it, formatted two at a time (2 vCPUs).
prepare_cs() {
	serial=$1 count=$2
	shift 2
	aux=$(part "$serial" p6-aux)
	head -c 64 /dev/urandom | dd of="$aux" bs=64 count=1 conv=fsync status=none
	pids=()
	for i in $(seq 1 "$count"); do
		cryptsetup luksFormat --batch-mode --type luks2 "$@" --key-file "$aux" \
			--keyfile-size 64 "$(part "$serial" "p6-$i")" &
		pids+=($!)
		if [ ${#pids[@]} = 2 ]; then
			wait "${pids[0]}" || vm_die "luksFormat failed"
			pids=("${pids[1]}")
		fi
	done
	for p in "${pids[@]}"; do wait "$p" || vm_die "luksFormat failed"; done
}

prepare() {
	# keyscope's and cryptsetup's disks at once: the preparation is no measurement
	t0=$EPOCHREALTIME
	prepare_ks &
	kpid=$!
	prepare_cs pb "$P6_N" --pbkdf pbkdf2 --pbkdf-force-iterations 1000
	say "cryptsetup PBKDF2: $P6_N volumes formatted ($(since "$t0") s)"
	wait "$kpid" || vm_die "formatting keyscope's volumes failed"
	say "keyscope: $P6_N volumes formatted ($(since "$t0") s)"
	if [ "$P6_ARGON_N" -gt 0 ]; then
		t0=$EPOCHREALTIME
		prepare_cs ar "$P6_ARGON_N" --pbkdf argon2id --pbkdf-memory "$P6_ARGON_MEM"
		say "cryptsetup Argon2id: $P6_ARGON_N volumes formatted ($(since "$t0") s)"
		cryptsetup luksDump "$(part ar p6-1)" | sed -n '/^Keyslots:/,/^Tokens:/p' |
			grep -E 'PBKDF|Time cost|Memory|Threads' | sed 's/^[[:space:]]*/argon-slot /'
	fi
	sync
}
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# measure COUNT UNIT-PREFIX ANCHOR-UNIT: waits until COUNT units UNIT-PREFIX1..COUNT are
# active, then prints the figures as "P6 KEY VALUE" lines for the host.
measure() {
	count=$1 prefix=$2 anchor=$3
	units=()
	for i in $(seq 1 "$count"); do units+=("$prefix$i.service"); done
	i=0
	while :; do
		# one value per unit, and an empty line between units
		up=$(systemctl show -P ActiveState "${units[@]}" | grep -c '^active$' || true)
		left=$((count - up))
		[ "$left" = 0 ] && break
		i=$((i + 1))
		if [ $i -gt 600 ]; then
			systemctl --failed --no-pager >&2
			vm_die "$left of $count volume units not active after 10 min"
		fi
		sleep 1
	done
	systemctl show -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic \
		"${units[@]}" >/run/p6-units
	awk -F= '/^InactiveExit/ && (min == "" || $2 < min) { min = $2 }
		/^ActiveEnter/ && $2 > max { max = $2 }
		END { print "P6 first_start_us", min; print "P6 last_active_us", max }' /run/p6-units
	[ -z "$anchor" ] ||
		echo "P6 anchor_us $(systemctl show -P ActiveEnterTimestampMonotonic "$anchor")"
	slice=$(systemctl show -P ControlGroup "${units[0]}")
	slice=${slice%/*}
	echo "P6 slice_peak $(cat "/sys/fs/cgroup$slice/memory.peak" 2>/dev/null || echo n/a)"
	echo "P6 cryptsetup_target_us $(systemctl show -P ActiveEnterTimestampMonotonic cryptsetup.target)"
	echo "P6 mem_total_kb $(awk '/^MemTotal/ { print $2 }' /proc/meminfo)"
	echo "P6 mem_used_kb $(awk '/^MemTotal/ { t = $2 } /^MemAvailable/ { a = $2 } END { print t - a }' /proc/meminfo)"
}

boot_ks() {
	measure "$P6_N" keyscope-volume@v keyscoped.service
	cg=$(systemctl show -P ControlGroup keyscoped.service)
	echo "P6 daemon_peak $(cat "/sys/fs/cgroup$cg/memory.peak" 2>/dev/null || echo n/a)"
	pid=$(systemctl show -P MainPID keyscoped.service)
	echo "P6 daemon_hwm_kb $(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")"
	dmsetup table v1 | grep -q ':64:logon:keyscope:' || vm_die "v1: $(dmsetup table v1)"
	n=$(dmsetup ls --target crypt | grep -c '^v[0-9]')
	[ "$n" = "$P6_N" ] || vm_die "$n keyscope mappings, want $P6_N"
}

boot_cs() {
	measure "$1" systemd-cryptsetup@cs ''
	n=$(dmsetup ls --target crypt | grep -c '^cs[0-9]')
	[ "$n" = "$1" ] || vm_die "$n crypttab mappings, want $1"
}

P6_N=${KEYSCOPE_P6_VOLUMES:-200}
P6_ARGON_N=${KEYSCOPE_P6_ARGON_VOLUMES:-16}
P6_ARGON_MEM=${KEYSCOPE_P6_ARGON_MEM:-65536}
case ${1-} in
prepare) prepare ;;
ks) boot_ks ;;
pbkdf2) boot_cs "$P6_N" ;;
argon) boot_cs "$P6_ARGON_N" ;;
*) vm_die "usage: vm-p6.sh prepare|ks|pbkdf2|argon (in the guest)" ;;
esac
