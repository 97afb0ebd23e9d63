#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --systemd --timeout 900
# Hot-plug and hot-unplug of keyscope volumes, as when a hypervisor or a storage array attaches
# a volume to the node and detaches it again. keyscoped.service, keyscope-generator, the rule
# and the units are installed as make install writes them (with the build's binaries).
# Two disks are formatted, declared in /etc/keyscope/volumes by UUID= as loose and mnt (mnt
# mounted from fstab at /srv/mnt), unplugged and plugged again (the same images): each opens
# under its declared name and mnt is mounted. Unplugged again: systemd stops the unit bound to
# the device (inactive, not failed), the fstab mount first; /dev/mapper/NAME is gone, the
# kernel key invalidated, keyscopectl status and attachments.json no longer list it. Then two
# volumes attached by hand (as os-brick does, no unit), one of them mounted by hand: when their
# disks go, keyscoped closes the unused one and releases its key by itself, and has the kernel
# remove the mounted one at its last close (deferred): its key goes at once, its mapping with
# the umount.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"

B=${KEYSCOPE_BUILDDIR:-$KEYSCOPE_TOP/build/out}
unset KEYSCOPE_SOCKET	# keyscoped.service's socket, /run/keyscope/keyscoped.sock
state=$(mktemp -d /run/keyscope-unplug.XXXXXX)
U=/run/systemd/system
t_start=$(date +%s%N)

ks() { "$B/keyscopectl" "$@"; }
say() { printf '[%6s ms] %s\n' "$(( ($(date +%s%N) - t_start) / 1000000 ))" "$*"; }

dump() {
	echo "--- units"
	systemctl list-units --all --no-legend 'keyscope*' 'srv-*' || true
	for u in keyscope-volume@loose.service keyscope-volume@mnt.service srv-mnt.mount; do
		systemctl status --no-pager -l "$u" 2>&1 | tail -n 12 || true
	done
	echo "--- keyscoped"
	journalctl --no-pager -q -u keyscoped.service | tail -n 25 || true
	echo "--- dmsetup"
	dmsetup info -c 2>&1 || true
}

cleanup() {
	rc=$?
	[ $rc -eq 0 ] || dump
	umount /mnt/byhand 2>/dev/null || true
	systemctl stop keyscope-volume@loose.service keyscope-volume@mnt.service 2>/dev/null || true
	systemctl stop keyscoped.service 2>/dev/null || true
	exit $rc
}
trap cleanup EXIT

# until_true SECS WHAT CMD...: CMD succeeds within SECS seconds, or the test fails naming WHAT.
until_true() {
	_secs=$1 _what=$2
	_end=$(($(date +%s) + _secs))
	shift 2
	until "$@"; do
		[ "$(date +%s)" -le $_end ] || vm_die "$_what: not so after $_secs s"
		sleep 0.2
	done
}
state_is() { [ "$(systemctl show -P ActiveState "$1")" = "$2" ]; }
no_mapping() { [ ! -e "/dev/mapper/$1" ] && ! dmsetup info "$1" >/dev/null 2>&1; }
no_key() { ! keyctl search @u logon "keyscope:$1" >/dev/null 2>&1; }

# gone NAME KEY-ID: what a user checks once a volume is closed: no mapping, no kernel key,
# nothing in keyscopectl status nor in the state folder claims it.
gone() {
	until_true 30 "/dev/mapper/$1 removed" no_mapping "$1"
	until_true 10 "keyscope:$2 invalidated" no_key "$2"
	ks status >"$state/status"
	awk '/^VOLUME/ { f = 1; next } f && NF >= 5 { print $1 }' "$state/status" | grep -qx "$1" &&
		vm_die "keyscopectl status still lists $1: $(cat "$state/status")"
	grep -q "$2" "$state/status" && vm_die "keyscopectl status still shows key $2: $(cat "$state/status")"
	grep -q "\"name\":\"$1\"" "$state/state/attachments.json" &&
		vm_die "attachments.json still records $1: $(cat "$state/state/attachments.json")"
	! grep -rqs -- "$1" "$state/state/intents" || vm_die "an intent for $1 is left: $(ls "$state/state/intents")"
	say "$1: no mapping, key $2 gone from the kernel, not in status nor in the state folder"
}

# opened UNIT NAME KEY-ID: UNIT ran and /dev/mapper/NAME references keyscope:KEY-ID.
opened() {
	until_true 120 "$1 active" state_is "$1" active
	[ -b "/dev/mapper/$2" ] || vm_die "$1 is active but there is no /dev/mapper/$2"
	dmsetup table "$2" | grep -q " :[0-9]*:logon:keyscope:$3 " ||
		vm_die "/dev/mapper/$2 does not reference keyscope:$3: $(dmsetup table "$2")"
	keyctl search @u logon "keyscope:$3" >/dev/null || vm_die "no kernel key keyscope:$3"
	say "$1: /dev/mapper/$2 on keyscope:$3"
}

# --- install: what make install puts in place, pointing at the build ----------------------
mkdir -p "$U/keyscoped.service.d" "$U/keyscope-volume@.service.d" /run/udev/rules.d \
	/run/systemd/system-generators /etc/keyscope
sed -e "s|^ExecStart=/usr/sbin/keyscoped \(.*\)|ExecStart=$B/keyscoped \1 --state-dir $state/state|" \
	"$KEYSCOPE_TOP/systemd/keyscoped.service" >"$U/keyscoped.service"
printf '[Service]\nReadWritePaths=%s\nPrivateTmp=no\nProtectHome=no\n' "$state" \
	>"$U/keyscoped.service.d/test.conf"
printf '[Service]\nProtectHome=no\n' >"$U/keyscope-volume@.service.d/build-path.conf"
sed -e "s|/usr/bin/keyscopectl|$B/keyscopectl|g" \
	"$KEYSCOPE_TOP/udev/69-keyscope.rules" >/run/udev/rules.d/69-keyscope.rules
printf '#!/bin/sh\nKEYSCOPECTL=%s exec %s "$@"\n' "$B/keyscopectl" "$B/keyscope-generator" \
	>/run/systemd/system-generators/keyscope-generator
chmod 755 /run/systemd/system-generators/keyscope-generator
systemctl daemon-reload
udevadm control --reload
keyctl link @u @s	# this unit's session keyring is private: reach @u as a root shell does
systemctl start keyscoped.service
say "keyscoped.service active; rule, units and generator installed in /run"

# --- two volumes formatted on hot-plugged disks, declared, plugged in again -------------------
d1=$(vm_hotplug u1 32M)
d2=$(vm_hotplug u2 48M)
id1=$(ks key create)
id2=$(ks key create)
ks format "$d1" --key "$id1" >/dev/null
ks format "$d2" --key "$id2" >/dev/null
ks attach "$d2" --name mkfs >/dev/null
mkfs.ext4 -q /dev/mapper/mkfs
# udev's watch on the mapping probes it again when mkfs closes it: let that probe end first
# (else the detach finds it open: keyscope.VolumeBusy, seen once under load).
vm_settle
ks detach mkfs >/dev/null
cat >/etc/keyscope/volumes <<-VOL
loose UUID=$(cryptsetup luksUUID "$d1") -
mnt   UUID=$(cryptsetup luksUUID "$d2") - nofail
VOL
mkdir -p /srv/mnt
echo "/dev/mapper/mnt /srv/mnt ext4 defaults,nofail 0 0" >>/etc/fstab
systemctl daemon-reload
for u in loose mnt; do
	[ "$(systemctl show -P LoadState "keyscope-volume@$u.service")" = loaded ] ||
		vm_die "the generator made no keyscope-volume@$u.service"
done
vm_unplug u1
vm_unplug u2
say "formatted $d1 ($id1) and $d2 ($id2), declared as loose and mnt, unplugged"
for u in loose mnt; do state_is "keyscope-volume@$u.service" inactive || vm_die "$u started"; done
d1=$(vm_hotplug u1 32M)
d2=$(vm_hotplug u2 48M)
say "plugged in again as $d1 and $d2"
opened keyscope-volume@loose.service loose "$id1"
opened keyscope-volume@mnt.service mnt "$id2"
until_true 60 "srv-mnt.mount active" state_is srv-mnt.mount active
[ "$(findmnt -n -o SOURCE /srv/mnt)" = /dev/mapper/mnt ] || vm_die "/srv/mnt: $(findmnt /srv/mnt)"
echo data >/srv/mnt/file
sync
say "/dev/mapper/mnt mounted on /srv/mnt by its fstab line"

# --- unplugged: the unit stops, the mapping and the key go --------------------------------
vm_unplug u1
until_true 60 "keyscope-volume@loose.service stopped" state_is keyscope-volume@loose.service inactive
gone loose "$id1"
vm_unplug u2
until_true 60 "keyscope-volume@mnt.service stopped" state_is keyscope-volume@mnt.service inactive
state_is srv-mnt.mount inactive || vm_die "srv-mnt.mount is $(systemctl show -P ActiveState srv-mnt.mount)"
! findmnt /srv/mnt >/dev/null || vm_die "/srv/mnt is still mounted"
gone mnt "$id2"
for u in keyscope-volume@loose.service keyscope-volume@mnt.service srv-mnt.mount; do
	[ "$(systemctl show -P Result "$u")" = success ] ||
		vm_die "$u ended with $(systemctl show -P Result "$u")"
done
say "unplugged: both units inactive (result success), /srv/mnt unmounted first"

# --- attached by hand, no unit: keyscoped notices by itself ------------------------------------
d3=$(vm_hotplug u3 32M)
d4=$(vm_hotplug u4 32M)
id3=$(ks key create)
id4=$(ks key create)
ks format "$d3" --key "$id3" >/dev/null
ks format "$d4" --key "$id4" >/dev/null
ks attach "$d3" --name byhand >/dev/null
ks attach "$d4" --name byhand-mounted >/dev/null
mkfs.ext4 -q /dev/mapper/byhand-mounted
mkdir -p /mnt/byhand
mount /dev/mapper/byhand-mounted /mnt/byhand
say "attached $d3 as byhand and $d4 as byhand-mounted (mounted on /mnt/byhand) by hand"
vm_unplug u3
vm_unplug u4
# No call to keyscoped before these checks: the kernel key must go without anyone asking.
until_true 30 "keyscope:$id3 invalidated" no_key "$id3"
until_true 30 "keyscope:$id4 invalidated" no_key "$id4"
say "unplugged: both keys gone with no call to keyscoped"
gone byhand "$id3"
dmsetup info byhand-mounted | grep -q 'DEFERRED REMOVE' ||
	vm_die "the mounted byhand-mounted is not set to go at its last close: $(dmsetup info byhand-mounted)"
grep -q '"name":"byhand-mounted"' "$state/state/attachments.json" &&
	vm_die "attachments.json still records byhand-mounted"
ks status | grep -q '^vanished.* byhand-mounted' || vm_die "status does not list byhand-mounted as vanished"
# A detach while it is still mounted (a unit's ExecStop racing the umount of its fstab line):
# closed already, its mapping is keyscope's own going at the last close, not another's.
ks detach byhand-mounted | grep -q 'closed already' ||
	vm_die "detach of the unplugged, still mounted byhand-mounted did not succeed"
umount /mnt/byhand
gone byhand-mounted "$id4"
journalctl --no-pager -q -o cat -u keyscoped.service | grep -q \
	"under /dev/mapper/byhand-mounted is gone (unplugged?); the mapping is open" ||
	vm_die "no log line for byhand-mounted"
ks detach byhand | grep -q 'closed already' || vm_die "detach of the vanished byhand did not say so"
say "mounted by hand: key gone at once, mapping removed at the umount; done"
