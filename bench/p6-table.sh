#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# bench/p6-table.sh DIR N NA MEM ITER: the table of bench/vm-p6.sh from the guests' "P6 KEY VALUE"
# lines in DIR/boot-ks, boot-pbkdf2 and boot-argon (bench/p6-host.sh; P6_KEEP=1 keeps DIR).
set -eu
D=$1 N=$2 NA=$3 MEM=$4 ITER=$5
# get BOOT KEY: the value the guest printed, or n/a.
get() { awk -v k="$2" '$1 == "P6" && $2 == k { v = $3 } END { print (v == "" ? "n/a" : v) }' "$D/boot-$1"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
mib() { [ "$1" = n/a ] && echo n/a || calc %.1f "$1 / 1048576"; }

ks_ready=$(get ks anchor_us) ks_last=$(get ks last_active_us) ks_first=$(get ks first_start_us)
ks_dur=$(calc %.2f "($ks_last - $ks_ready) / 1e6")
pb_first=$(get pbkdf2 first_start_us) pb_last=$(get pbkdf2 last_active_us)
pb_dur=$(calc %.2f "($pb_last - $pb_first) / 1e6")
ks_daemon=$(get ks daemon_peak) ks_slice=$(get ks slice_peak)
ks_mem=n/a
[ "$ks_daemon" = n/a ] || [ "$ks_slice" = n/a ] || ks_mem=$(calc %.1f "($ks_daemon + $ks_slice) / 1048576")

echo "| $N volumes opened at boot (--systemd guest, 2 vCPUs TCG) | keyscoped READY or first unit start → all attached (s) | boot → all attached (s) | per volume (ms) | peak memory (MiB) | guest memory in use after (MiB) | vs crypttab PBKDF2 |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
row() { # NAME DUR LAST COUNT MEM BOOT
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$(calc %.2f "$3 / 1e6")" \
		"$(calc %.0f "$2 * 1000 / $4")" "$5" "$(calc %.0f "$(get "$6" mem_used_kb) / 1024")" \
		"$(calc %.2f "$2 / $pb_dur")"
}
row "systemd-cryptsetup, /etc/crypttab, PBKDF2 1000 iterations (best case)" "$pb_dur" "$pb_last" \
	"$N" "$(mib "$(get pbkdf2 slice_peak)")" pbkdf2
row "keyscope, /etc/keyscope/volumes (keyscope-generator)" "$ks_dur" "$ks_last" "$N" "$ks_mem" ks
if [ "$NA" -gt 0 ]; then
	ar_first=$(get argon first_start_us) ar_last=$(get argon last_active_us)
	ar_dur=$(calc %.2f "($ar_last - $ar_first) / 1e6")
	row "systemd-cryptsetup, /etc/crypttab, Argon2id ($ITER iterations, $((MEM / 1024)) MiB, 2 threads), $NA volumes" \
		"$ar_dur" "$ar_last" "$NA" "$(mib "$(get argon slice_peak)")" argon
	if [ "$NA" -lt "$N" ]; then
		ext=$(calc %.1f "$ar_dur * $N / $NA")
		echo "| same, **extrapolated** to $N (× $N/$NA, CPU-bound) | $ext | | | | | $(calc %.2f "$ext / $pb_dur") |"
	fi
fi
echo
echo "keyscope: from keyscoped.service ready (READY=1) at $(calc %.2f "$ks_ready / 1e6") s;" \
	"first volume unit started at $(calc %.2f "$ks_first / 1e6") s;" \
	"peak memory = keyscoped.service memory.peak $(mib "$ks_daemon") MiB" \
	"(VmHWM $(calc %.1f "$(get ks daemon_hwm_kb) / 1024") MiB) + keyscope-volume@ slice memory.peak $(mib "$ks_slice") MiB."
echo "crypttab: from the first systemd-cryptsetup@ unit's start (PBKDF2 at $(calc %.2f "$pb_first / 1e6") s);" \
	"peak memory = the systemd-cryptsetup@ slice's memory.peak (all its processes at once)."
# cpu BOOT: where the guest's CPU went, from boot to all attached (seconds)
sec() { [ "$1" = n/a ] && echo n/a || calc %.1f "$1 / 1e6"; }
cpu() {
	printf '%s: CPU from boot to all attached %s s, of it systemd-udevd.service %s s, the volume units %s s' \
		"$1" "$(sec "$(get "$1" cpu_total_us)")" "$(sec "$(get "$1" cpu_udev_us)")" \
		"$(sec "$(get "$1" cpu_slice_us)")"
	[ "$1" != ks ] || printf ', keyscoped.service %s s' "$(sec "$(get ks cpu_daemon_us)")"
	echo "."
}
for b in pbkdf2 ks argon; do [ ! -e "$D/boot-$b" ] || cpu "$b"; done
echo "Goal: keyscope ≤ 0.50 × crypttab PBKDF2: $(calc %.2f "$ks_dur / $pb_dur") ×."
