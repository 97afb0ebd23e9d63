#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk sd:64M
# The state folder holds the keys that open keyscope volumes, so it cannot live on one (the
# next boot could not open it): keyscoped refuses to start on such a folder, naming the folder
# and the volume, and changes nothing; also through LVM stacked on the volume. The same
# keyscoped starts on a folder elsewhere (the control: ks_start's).
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

sd=$(vm_disk sd)
ks_start
id=$(ks key create)
ks format "$sd" --key "$id" >/dev/null
ks attach "$sd" --name sd >/dev/null
mkfs.ext4 -q /dev/mapper/sd
mkdir -p /run/sdmnt
mount /dev/mapper/sd /run/sdmnt
trap 'rc=$?; umount /run/sdmnt 2>/dev/null || true; [ $rc = 0 ] || tail -n 40 "$KS_LOG"; ks_stop || rc=1; exit $rc' EXIT

# refused: exits (does not serve), says where and why, leaves no socket and no state
refused() { # DIR VOLUME
	rc=0
	timeout 30 "$KEYSCOPE_BUILDDIR/keyscoped" --state-dir "$1" --socket /run/sd-other.sock \
		>"$KS_DIR/sd.log" 2>&1 || rc=$?
	[ $rc != 0 ] && [ $rc != 124 ] || vm_die "keyscoped on $1 did not refuse (exit $rc): $(cat "$KS_DIR/sd.log")"
	grep -q "state directory $1 is on /dev/mapper/$2" "$KS_DIR/sd.log" ||
		vm_die "no clear error for $1: $(cat "$KS_DIR/sd.log")"
	[ ! -e /run/sd-other.sock ] || vm_die "a socket was left behind"
	echo "refused: $(grep -o "The state directory.*" "$KS_DIR/sd.log" | head -c 160)..."
}
refused /run/sdmnt/state sd
[ ! -e /run/sdmnt/state ] || vm_die "the state folder was made on the volume"
umount /run/sdmnt

# LVM on the volume: the file system is on the LV, the LV on keyscope's mapping
wipefs -q -a /dev/mapper/sd
pvcreate -q /dev/mapper/sd
vgcreate -q sdvg /dev/mapper/sd
lvcreate -q -y -L 16M -n lv sdvg
mkfs.ext4 -q /dev/sdvg/lv
mount /dev/sdvg/lv /run/sdmnt
refused /run/sdmnt/state sd
umount /run/sdmnt
vgchange -q -an sdvg >/dev/null
ks detach sd >/dev/null
echo ok
