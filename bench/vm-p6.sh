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
#   boot argon:  /etc/crypttab, P6_ARGON_VOLUMES (200) LUKS2 keyslots at cryptsetup's default
#                Argon2id, memory bounded to P6_ARGON_MEM KiB (65536), P6_ARGON_ITER (4) iterations,
#                2 threads: what cryptsetup's 2 s calibration picks in the guest (bench/p6-prep.sh).
#                ~7 minutes in TCG for 200; with fewer than P6_VOLUMES the 200-volume figure is
#                extrapolated from the ones measured (labelled so).
# Figures come from systemd's unit timestamps (CLOCK_MONOTONIC, µs): keyscoped.service's
# ActiveEnterTimestampMonotonic (Type=notify: READY=1) or the first systemd-cryptsetup unit's
# InactiveExitTimestampMonotonic, to the last volume unit's ActiveEnterTimestampMonotonic; and
# cgroup v2 memory.peak of keyscoped.service and of the per-volume units' slice (all their
# processes at once: RSS, kernel memory and page cache charged to them), keyscoped's VmHWM.
# The host formats the volumes first, through loop devices (bench/p6-prep.sh: keyscopectl
# format; cryptsetup luksFormat). Key bytes never reach argv, the environment or a log:
# keyscope's keys are made by keyscoped in its store on p6-aux, the crypttab key is written
# from /dev/urandom onto p6-aux; the disk images live in a private (0700) temporary folder
# removed at the end.
# Run alone: bench/vm-p6.sh (root; bench/run --vm runs it after the other guest benches).
# Knobs: P6_VOLUMES (1-250), P6_ARGON_VOLUMES (0 leaves that boot out), P6_ARGON_MEM (KiB),
#        P6_ARGON_ITER, P6_BOOTS (a subset of "ks pbkdf2 argon"; no table then),
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
# cpu_us CGROUP: the cgroup's CPU time in µs (cpu.stat's usage_usec), or n/a
cpu_us() { awk '$1 == "usage_usec" { print $2; f = 1 } END { if (!f) print "n/a" }' \
	"/sys/fs/cgroup$1/cpu.stat" 2>/dev/null || echo n/a; }
# measure COUNT UNIT-PREFIX ANCHOR-UNIT: waits until COUNT units UNIT-PREFIX1..COUNT are
# active, then prints the figures as "P6 KEY VALUE" lines for the host.
measure() {
	count=$1 prefix=$2 anchor=$3
	units=()
	for i in $(seq 1 "$count"); do units+=("$prefix$i.service"); done
	# Cheap while the volumes open (a systemctl show of COUNT units each second would take
	# CPU from the boot it measures): every volume unit is required by cryptsetup.target
	# (no nofail), so the target is active once they all are; a failed one ends the wait.
	i=0
	while [ "$(systemctl is-active cryptsetup.target)" != active ]; do
		i=$((i + 1))
		if [ $i -gt 1200 ] || systemctl --failed --no-legend | grep -q " $prefix"; then
			systemctl --failed --no-pager >&2
			vm_die "cryptsetup.target not active after $i s"
		fi
		sleep 1
	done
	up=$(systemctl show -P ActiveState "${units[@]}" | grep -c '^active$' || true)
	[ "$up" = "$count" ] || vm_die "$((count - up)) of $count volume units not active"
	systemctl show -p InactiveExitTimestampMonotonic -p ActiveEnterTimestampMonotonic \
		"${units[@]}" >/run/p6-units
	awk -F= '/^InactiveExit/ && (min == "" || $2 < min) { min = $2 }
		/^ActiveEnter/ && $2 > max { max = $2 }
		END { print "P6 first_start_us", min; print "P6 last_active_us", max }' /run/p6-units
	[ -z "$anchor" ] ||
		echo "P6 anchor_us $(systemctl show -P ActiveEnterTimestampMonotonic "$anchor")"
	# the slice, not the units: an exited oneshot unit has no cgroup left
	slice=$(systemctl show -P ControlGroup "$(systemctl show -P Slice "${units[0]}")")
	echo "P6 slice_peak $(cat "/sys/fs/cgroup$slice/memory.peak" 2>/dev/null || echo n/a)"
	# CPU since boot (µs) of the units' slice (the exited units' usage stays in it), of
	# systemd-udevd.service (its workers: blkid, the rules' programs) and of the whole guest
	echo "P6 cpu_slice_us $(cpu_us "$slice")"
	echo "P6 cpu_udev_us $(cpu_us "$(systemctl show -P ControlGroup systemd-udevd.service)")"
	echo "P6 cpu_total_us $(awk '/^cpu / { print ($2 + $3 + $4 + $7 + $8) * 10000 }' /proc/stat)"
	echo "P6 cryptsetup_target_us $(systemctl show -P ActiveEnterTimestampMonotonic cryptsetup.target)"
	echo "P6 mem_total_kb $(awk '/^MemTotal/ { print $2 }' /proc/meminfo)"
	echo "P6 mem_used_kb $(awk '/^MemTotal/ { t = $2 } /^MemAvailable/ { a = $2 } END { print t - a }' /proc/meminfo)"
}

boot_ks() {
	measure "$P6_N" keyscope-volume@v keyscoped.service
	# for the profile: what keyscoped and the first and last volumes' units logged
	journalctl -b -o short-monotonic --no-pager -u keyscoped.service -u keyscope-volume@v1.service \
		-u "keyscope-volume@v$P6_N.service" | sed 's/^/journal | /' >&2
	cg=$(systemctl show -P ControlGroup keyscoped.service)
	echo "P6 daemon_peak $(cat "/sys/fs/cgroup$cg/memory.peak" 2>/dev/null || echo n/a)"
	echo "P6 cpu_daemon_us $(cpu_us "$cg")"
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
P6_ARGON_N=${KEYSCOPE_P6_ARGON_VOLUMES:-200}
case ${1-} in
ks) boot_ks ;;
pbkdf2) boot_cs "$P6_N" ;;
argon) boot_cs "$P6_ARGON_N" ;;
*) vm_die "usage: vm-p6.sh ks|pbkdf2|argon (in the guest)" ;;
esac
