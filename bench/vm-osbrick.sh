#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M --disk cow:48M --timeout 2400
# Issue 14's benchmark, inside the test guest (bench/run --vm runs it through tests/vm/run
# with the options above): a volume and its 5 snapshots (dm-snapshot) attached one after the
# other the way Nova does, through os-brick's get_volume_encryptor() and a castellan-like key
# manager (tests/vm/fixtures/os-brick-nova.py), with
#   - os-brick's Luks2Encryptor (provider luks2): cryptsetup luksOpen with the hex, an
#     Argon2id derivation at cryptsetup's default cost for each of the 6;
#   - keyscope's KeyscopeEncryptor (key supplied): one keyslot unlock inside keyscoped, then
#     5 opens by keyring reference.
# Wall time of the 6 attaches by one long-lived driver (os-brick imported once, as in
# nova-compute); peak memory from cgroup v2 memory.peak: a fresh driver per encryptor with the
# processes it runs (python, cryptsetup, keyscopectl) in one cgroup, keyscoped with its unlock
# child in another. The volume is formatted once, by
# Luks2Encryptor's first attach (not timed). Key bytes live in this shell's variables and
# pipes only.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

py=/usr/bin/python3
"$py" -c 'import os_brick.encryptors' 2>/dev/null || vm_skip "python3-os-brick is not installed"
export PYTHONPATH=$KEYSCOPE_TOP/contrib/os-brick
export PATH=$KEYSCOPE_BUILDDIR:$PATH
nova=$KEYSCOPE_TOP/tests/vm/fixtures/os-brick-nova.py
vol=$(vm_disk vol)
cow=$(vm_disk cow)
CG=/sys/fs/cgroup
grep -q " $CG cgroup2 " /proc/mounts || mount -t cgroup2 none "$CG" || vm_skip "no cgroup2"
grep -qw memory "$CG/cgroup.controllers" || vm_skip "no memory controller in cgroup2"
echo +memory >"$CG/cgroup.subtree_control"
cg_new() { rmdir "$CG/$1" 2>/dev/null || true; mkdir "$CG/$1"; }
cg_peak() { cat "$CG/$1/memory.peak"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# keyscoped (and the unlock child it forks) in a cgroup of its own.
cg_new b-keyscoped
echo $$ >"$CG/b-keyscoped/cgroup.procs"
ks_start
echo $$ >"$CG/cgroup.procs"

hex=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
esc() { printf '%s' "$1" | sed 's/../\\x&/g'; }
id=$(cat /proc/sys/kernel/random/uuid)
bp=$KS_DIR/by-path
mkdir "$bp"
# driver CGROUP: a Nova-like driver (os-brick imported once, as nova-compute) in cgroup
# CGROUP, which knows the key; nova REQUEST: its JSON answer in $out.
driver() {
	cg_new "$1"
	coproc NOVA { echo "$BASHPID" >"$CG/$1/cgroup.procs"; exec "$py" "$nova" 2>>"$KS_DIR/err"; }
	nova key "$id" "$hex"
}
nova() {
	printf '%s\n' "$*" >&"${NOVA[1]}"
	read -r out <&"${NOVA[0]}" || vm_die "the driver died: $(tail -n 5 "$KS_DIR/err")"
	case $out in *'"error"'*) tail -n 5 "$KS_DIR/err"; vm_die "$*: $out" ;; esac
}
driver_end() {
	exec {NOVA[1]}>&-
	wait "$NOVA_PID" || true
}
# The layout LVM gives a volume with snapshots (cryptsetup refuses a device that mappings
# hold): real = the disk, the volume = snapshot-origin of real, each snapshot = snapshot of
# real with a COW of its own.
snaps() {
	local n sz
	sz=$(blockdev --getsz "$vol")
	dmsetup create real --table "0 $sz linear $vol 0"
	dmsetup create origin --table "0 $sz snapshot-origin /dev/mapper/real"
	for n in 1 2 3 4 5; do
		dmsetup create "cow$n" --table "0 $((8 * 2048)) linear $cow $(((n - 1) * 8 * 2048))"
		dmsetup create "snap$n" --table "0 $sz snapshot /dev/mapper/real /dev/mapper/cow$n N 8"
	done
}
unsnaps() {
	local n
	for n in 1 2 3 4 5; do dmsetup remove "snap$n" "cow$n"; done
	dmsetup remove origin real
}
links() {
	local n
	ln -sfn /dev/mapper/origin "$bp/vol"
	for n in 1 2 3 4 5; do ln -sfn "/dev/mapper/snap$n" "$bp/snap-$n"; done
}
# attach_all PROVIDER: the volume, then its 5 snapshots; sets $secs and $each (the seconds of
# each attach inside the driver, as os-brick's call took them).
attach_all() {
	local t0=$EPOCHREALTIME p
	each=
	for p in vol snap-1 snap-2 snap-3 snap-4 snap-5; do
		nova attach "$bp/$p" "$id" "$1"
		each="$each $(printf '%s' "$out" | sed -n 's/.*"seconds": \([0-9.]*\).*/\1/p')"
	done
	secs=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
}
detach_all() {
	local p
	for p in vol snap-1 snap-2 snap-3 snap-4 snap-5; do nova detach "$bp/$p" "$id" "$1"; done
}

driver b-setup
ln -sfn "$vol" "$bp/vol"
nova attach "$bp/vol" "$id" luks2	# formats the blank volume (LUKS2, Argon2id)
nova detach "$bp/vol" "$id" luks2
driver_end
# The keyslot as cryptsetup calibrated it in this guest: what each derivation costs.
kdf=$(cryptsetup luksDump "$vol" | awk '$1 == "PBKDF:" { p = $2 } $1 == "Time" && $2 == "cost:" { t = $3 }
	$1 == "Memory:" { m = $2 } $1 == "Threads:" { n = $2 }
	END { printf "%s, time cost %s, memory %d MiB, %s threads", p, t, m / 1024, n }')
snaps

links
driver b-luks2
b0=$(cg_peak b-luks2)
attach_all luks2
t_ob=$secs e_ob=$each
m_ob=$(cg_peak b-luks2)
detach_all luks2
driver_end

links
driver b-ks
b1=$(cg_peak b-ks)
k0=$(cg_peak b-keyscoped)
attach_all keyscope_os_brick.encryptor.KeyscopeEncryptor
t_ks=$secs e_ks=$each
m_ks=$(cg_peak b-ks)
m_ksd=$(cg_peak b-keyscoped)
unlocks=$(grep -c 'Unlocking a keyslot of' "$KS_LOG" || true)
detach_all keyscope_os_brick.encryptor.KeyscopeEncryptor
driver_end
unsnaps

echo "volume + 5 snapshots attached through os-brick's get_volume_encryptor (one guest run):"
line() { printf '  %-28s %7s s  peak %s (driver and children; %s after the import)%s\n' "$@"; }
line "os-brick Luks2Encryptor" "$t_ob" "$(mib "$m_ob")" "$(mib "$b0")" ""
line "keyscope KeyscopeEncryptor" "$t_ks" "$(mib "$m_ks")" "$(mib "$b1")" \
	", keyscoped $(mib "$m_ksd") ($(mib "$k0") before)"
echo "  keyscope: $unlocks keyslot unlock(s) in all; the keyslot: $kdf"
echo "  each attach (volume, snapshots 1-5), s: os-brick$e_ob; keyscope$e_ks"
