#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --systemd --timeout 1800
# udev hands keyscope volumes to systemd as they appear. keyscoped.service, the
# keyscope-attach@.service template and udev/69-keyscope.rules are installed as make install
# writes them (with the build's binaries), keyscoped runs as its unit. Undeclared volumes are
# opened only with auto-attach = all (the default, declared, opens none of them: checked
# first), under stable names: keyscope-<LUKS UUID> for a partition, keyscope-<DM name> for an
# LV or a snapshot, never the kernel's name. A disk is hot-plugged
# and gets three partitions: a keyscope volume, an ordinary LUKS2 volume and an LVM PV whose
# LV is a keyscope volume too. Formatting them opens nothing (a "change" is not an
# appearance). Then the kernel rereads the partition table: real "add" events of devices that
# carry their headers. The keyscope partition is opened by keyscope-attach@vdX1.service, the
# LV, activated again, by keyscope-attach@dm\x2dN.service (the instance escaped so that the
# unit binds to dev-dm\x2dN.device), each on its own key with one holder; the LUKS2 partition,
# the PV and keyscope's own mappings start nothing. An LVM snapshot of the LV appears and
# joins its scope (two holders); LVM's -real and -cow layers do not. Stopping the units
# closes the volumes and the last one removes the kernel key; a reload of the LV does not
# reopen it. /etc/keyscope/no-auto-attach turns it off: no unit starts and nothing opens.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"

B=${KEYSCOPE_BUILDDIR:-$KEYSCOPE_TOP/build/out}
unset KEYSCOPE_SOCKET	# keyscoped.service's socket, /run/keyscope/keyscoped.sock
state=$(mktemp -d /run/keyscope-udev.XXXXXX)
U=/run/systemd/system
flag=/etc/keyscope/no-auto-attach
conf=/etc/keyscope/keyscoped.conf	# what udev's keyscopectl probe reads auto-attach from
t_start=$(date +%s%N)

ks() { "$B/keyscopectl" "$@"; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
say() { printf '[%6s ms] %s\n' "$(ms_since "$t_start")" "$*"; }

dump() {
	echo "--- units"
	systemctl list-units --all --no-legend 'keyscope*' || true
	for u in $(systemctl list-units --all --no-legend --plain 'keyscope-attach@*' |
		   awk '{print $1}'); do
		systemctl status --no-pager -l "$u" 2>&1 | tail -n 12 || true
	done
	echo "--- keyscoped"
	journalctl --no-pager -q -u keyscoped.service | tail -n 25 || true
	echo "--- dmsetup"
	dmsetup ls 2>&1 || true
}

cleanup() {
	rc=$?
	[ $rc -eq 0 ] || dump
	rm -f "$flag" "$conf" /etc/keyscope/volumes
	for u in $(systemctl list-units --all --no-legend --plain 'keyscope-attach@*' |
		   awk '{print $1}'); do
		systemctl stop "$u" 2>/dev/null || true
	done
	systemctl stop keyscope-volume@decl.service 2>/dev/null || true
	vgchange -q -an ksvg >/dev/null 2>&1 || true
	systemctl stop keyscoped.service 2>/dev/null || true
	exit $rc
}
trap cleanup EXIT

# unit INSTANCE: the attach unit's name; instances come from systemd-escape, not from probe.
unit() { printf 'keyscope-attach@%s.service' "$1"; }
inst() { systemd-escape "$1"; }
# mapped DEV: the stable name --stable-name gives DEV's mapping.
mapped() {
	_n=$(basename "$(readlink -f "$1")")
	if [ -r "/sys/class/block/$_n/dm/name" ]; then
		echo "keyscope-$(cat "/sys/class/block/$_n/dm/name")"
	else
		echo "keyscope-$(cryptsetup luksUUID "$1")"
	fi
}

# wait_state UNIT STATE...: until UNIT's ActiveState is one of STATE, at most 60 s.
wait_state() {
	_u=$1
	shift
	_end=$(($(date +%s) + 60))
	while :; do
		_s=$(systemctl show -P ActiveState "$_u")
		for _w in "$@"; do [ "$_s" = "$_w" ] && return 0; done
		[ "$(date +%s)" -le $_end ] || vm_die "$_u is '$_s' after 60 s, want $*"
		sleep 0.2
	done
}

# quiet: udev has handled every event and systemd has no job left but the test's own.
jobs_left() { systemctl list-jobs --no-legend 2>/dev/null | grep -v ' keyscope-vm' || true; }
quiet() {
	vm_settle
	_end=$(($(date +%s) + 60))
	while [ -n "$(jobs_left)" ]; do
		[ "$(date +%s)" -le $_end ] || vm_die "systemd jobs left after 60 s: $(jobs_left)"
		sleep 0.2
	done
}

# prop DEV NAME: the udev property NAME of DEV, empty if it has none.
prop() { udevadm info -q property "$1" | sed -n "s/^$2=//p"; }

# holders KEY-ID: the scope's holders in keyscoped (0 when it has no scope).
holders() { ks scope list | awk -v id="$1" '$1 == id { print $3; f = 1 } END { if (!f) print 0 }'; }

# attached UNIT NAME KEY-ID HOLDERS: UNIT ran, /dev/mapper/NAME references the key, HOLDERS.
attached() {
	wait_state "$1" active failed
	[ "$(systemctl show -P ActiveState "$1")" = active ] ||
		vm_die "$1 failed: $(journalctl --no-pager -q -u "$1" | tail -n 5)"
	[ -b "/dev/mapper/$2" ] || vm_die "$1 is active but there is no /dev/mapper/$2"
	dmsetup table --showkeys "$2" | grep -q " crypt aes-xts-plain64 :[0-9]*:logon:keyscope:$3 " ||
		vm_die "/dev/mapper/$2 does not reference keyscope:$3: $(dmsetup table "$2")"
	[ "$(holders "$3")" = "$4" ] || vm_die "key $3 has $(holders "$3") holders, want $4"
	say "$1: /dev/mapper/$2 open on keyscope:$3, $4 holder(s)"
}

# untouched DEV: udev gave DEV no key-id and no SYSTEMD_WANTS, no attach unit ever ran for it.
untouched() {
	_k=$(basename "$(readlink -f "$1")")
	_u=$(unit "$(inst "$_k")")
	for _p in KEYSCOPE_KEY_ID SYSTEMD_WANTS; do
		[ -z "$(prop "$1" $_p)" ] || vm_die "$1 got $_p=$(prop "$1" $_p)"
	done
	[ -z "$(systemctl show -P InvocationID "$_u")" ] || vm_die "$_u ran for $1"
	[ ! -e "/dev/mapper/keyscope-$_k" ] || vm_die "/dev/mapper/keyscope-$_k exists"
}

# not_opened DEV: DEV is a keyscope volume (probe saw it) that no event opened.
not_opened() {
	_k=$(basename "$(readlink -f "$1")")
	_u=$(unit "$(inst "$_k")")
	[ -n "$(prop "$1" KEYSCOPE_KEY_ID)" ] || vm_die "udev has no KEYSCOPE_KEY_ID for $1"
	[ "$(systemctl show -P ActiveState "$_u")" != active ] || vm_die "$_u is active"
	[ ! -e "/dev/mapper/$(mapped "$1")" ] || vm_die "/dev/mapper/$(mapped "$1") exists"
}

# mbr DISK START:SECTORS...: a DOS partition table with one type 0x83 entry per argument.
le32() {
	printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $(($1 & 255)) $(($1 >> 8 & 255)) \
		$(($1 >> 16 & 255)) $(($1 >> 24 & 255)))"
}
mbr() {
	_d=$1
	shift
	{
		head -c 446 /dev/zero
		for _p in "$@"; do
			printf '\000\000\000\000\203\000\000\000'
			le32 "${_p%:*}"
			le32 "${_p#*:}"
		done
		head -c $((16 * (4 - $#))) /dev/zero
		printf '\125\252'
	} | dd of="$_d" bs=512 count=1 iflag=fullblock conv=fsync status=none
}

# reread DISK: the kernel rereads DISK's partition table (removes and adds its partitions).
# udev opens the disk to probe it after every write, and BLKRRPART fails with EBUSY meanwhile.
reread() {
	_end=$(($(date +%s) + 30))
	until blockdev --rereadpt "$1" 2>/dev/null; do
		[ "$(date +%s)" -le $_end ] || { blockdev --rereadpt "$1"; vm_die "cannot reread $1"; }
		vm_settle
		sleep 0.2
	done
}

# --- install: what make install puts in place, pointing at the build ----------------------
mkdir -p "$U/keyscoped.service.d" /run/udev/rules.d
args="--state-dir $state/state --log-level debug"
sed -e "s|^ExecStart=/usr/sbin/keyscoped \(.*\)|ExecStart=$B/keyscoped \1 $args|" \
	"$KEYSCOPE_TOP/systemd/keyscoped.service" >"$U/keyscoped.service"
printf '[Service]\nReadWritePaths=%s\n' "$state" >"$U/keyscoped.service.d/test.conf"
# The build may live under /tmp or /root (CI clones anywhere): the units' PrivateTmp= and
# ProtectHome= would hide it, which an installed /usr/sbin binary never is.
printf '[Service]\nPrivateTmp=no\nProtectHome=no\n' >"$U/keyscoped.service.d/build-path.conf"
mkdir -p "$U/keyscope-attach@.service.d"
printf '[Service]\nProtectHome=no\n' >"$U/keyscope-attach@.service.d/build-path.conf"
sed -e "s|/usr/bin/keyscopectl|$B/keyscopectl|g" \
	"$KEYSCOPE_TOP/systemd/keyscope-attach@.service" >"$U/keyscope-attach@.service"
sed -e "s|/usr/bin/keyscopectl|$B/keyscopectl|g" \
	"$KEYSCOPE_TOP/udev/69-keyscope.rules" >/run/udev/rules.d/69-keyscope.rules
grep -q "^ExecStart=$B/keyscoped " "$U/keyscoped.service" || vm_die "ExecStart not rewritten"
grep -q "IMPORT{program}=\"$B/keyscopectl probe" /run/udev/rules.d/69-keyscope.rules ||
	vm_die "IMPORT{program} not rewritten"
systemctl daemon-reload
udevadm control --reload
keyctl link @u @s	# this unit's session keyring is private: reach @u as a root shell does
systemctl start keyscoped.service
[ "$(systemctl show -P ActiveState keyscoped.service)" = active ] || vm_die "keyscoped is not active"
say "keyscoped.service active; rule and template installed in /run"
id1=$(ks key create)
id2=$(ks key create)
say "keys: $id1 (partition), $id2 (LV)"

# --- a disk appears, empty: nothing ------------------------------------------------------
disk=$(vm_hotplug ksdisk 148M)
quiet
untouched "$disk"
say "hot-plugged $disk (add event, no header): nothing"

# Partitions (512-byte sectors): 1 keyscope 48 MiB, 2 LUKS2 24 MiB, 3 LVM PV 72 MiB.
mbr "$disk" 2048:98304 100352:49152 149504:147456
reread "$disk"
quiet
for p in 1 2 3; do [ -b "$disk$p" ] || vm_die "no $disk$p after the partition table"; done
p1=${disk}1 p2=${disk}2 p3=${disk}3
k1=${p1#/dev/}

# --- formatting is a "change", not an appearance: nothing opens --------------------------
ks format "$p1" --key "$id1"
printf 'an ordinary LUKS2 passphrase' |
	cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
		--key-file - "$p2"
pvcreate -q "$p3"
vgcreate -q ksvg "$p3"
lvcreate -q -y -L 32M -n vol ksvg
quiet
ks format /dev/ksvg/vol --key "$id2"
quiet
lvk=$(basename "$(readlink -f /dev/ksvg/vol)")
not_opened "$p1"
not_opened /dev/ksvg/vol
[ "$(prop "$p1" KEYSCOPE_INSTANCE)" = "$k1" ] ||
	vm_die "KEYSCOPE_INSTANCE of $p1: $(prop "$p1" KEYSCOPE_INSTANCE)"
[ "$(prop /dev/ksvg/vol KEYSCOPE_INSTANCE)" = "$(inst "$lvk")" ] ||
	vm_die "KEYSCOPE_INSTANCE of $lvk: $(prop /dev/ksvg/vol KEYSCOPE_INSTANCE)"
say "formatted $p1 and /dev/ksvg/vol ($lvk): udev knows them (KEYSCOPE_KEY_ID), nothing opened"

# --- the default (auto-attach = declared): they appear and nothing opens -------------------
vgchange -q -an ksvg >/dev/null
quiet
reread "$disk"
quiet
vgchange -q -ay ksvg >/dev/null
quiet
[ "$(prop "$p1" KEYSCOPE_AUTO_ATTACH)" = declared ] ||
	vm_die "KEYSCOPE_AUTO_ATTACH of $p1: '$(prop "$p1" KEYSCOPE_AUTO_ATTACH)', want declared"
for d in "$p1" /dev/ksvg/vol; do
	not_opened "$d"
	[ -z "$(prop "$d" SYSTEMD_WANTS)" ] || vm_die "$d got SYSTEMD_WANTS=$(prop "$d" SYSTEMD_WANTS)"
done
[ -z "$(systemctl list-units --all --no-legend --plain 'keyscope-attach@*')" ] ||
	vm_die "attach units ran by default: $(systemctl list-units --all --no-legend 'keyscope-attach@*')"
say "default auto-attach = declared: $p1 and /dev/ksvg/vol appeared, nothing opened"
mkdir -p /etc/keyscope
printf '[keyscoped]\nauto-attach = all\n' >"$conf"

# --- with auto-attach = all they appear: the kernel rereads the table, LVM activates the VG ---
vgchange -q -an ksvg >/dev/null
quiet
t0=$(date +%s%N)
reread "$disk"
quiet
how="LVM's udev autoactivation"
end=$(($(date +%s) + 10))
until [ -n "$(lvs --noheadings -o lv_active ksvg/vol 2>/dev/null | tr -d ' ')" ]; do
	if [ "$(date +%s)" -gt $end ]; then
		how="vgchange -ay (no autoactivation within 10 s)"
		vgchange -q -ay ksvg >/dev/null
		break
	fi
	sleep 0.1
done
lvk=$(basename "$(readlink -f /dev/ksvg/vol)")
u1=$(unit "$k1")
ulv=$(unit "$(inst "$lvk")")
m1=$(mapped "$p1")
mlv=$(mapped /dev/ksvg/vol)
[ "$m1" = "keyscope-$(cryptsetup luksUUID "$p1")" ] && [ "$mlv" = keyscope-ksvg-vol ] ||
	vm_die "stable names: $m1 $mlv"
attached "$u1" "$m1" "$id1" 1
say "add event of $p1 -> $u1: $(ms_since "$t0") ms from the reread"
attached "$ulv" "$mlv" "$id2" 1
say "activation of ksvg/vol ($lvk, by $how) -> $ulv: $(ms_since "$t0") ms from the reread"
[ "$(prop "$p1" SYSTEMD_WANTS)" = "$u1" ] ||
	vm_die "SYSTEMD_WANTS of $p1: $(prop "$p1" SYSTEMD_WANTS)"
# systemctl quotes and C-escapes names with a backslash: "dev-dm\\x2d1.device"
systemctl show -P BindsTo "$ulv" | tr -d '"' | sed 's/\\\\/\\/g' |
	grep -qxF "dev-$(inst "$lvk").device" ||
	vm_die "$ulv binds to $(systemctl show -P BindsTo "$ulv")"
# A restart of keyscoped (an upgrade) leaves the volumes and their units alone.
inv=$(systemctl show -P InvocationID "$u1" "$ulv")
systemctl restart keyscoped.service
quiet
[ "$(systemctl show -P InvocationID "$u1" "$ulv")" = "$inv" ] ||
	vm_die "restarting keyscoped restarted the attach units"
attached "$u1" "$m1" "$id1" 1
attached "$ulv" "$mlv" "$id2" 1
say "systemctl restart keyscoped: both still open, 1 holder each"
untouched "$p2"
untouched "$p3"
say "$p2 (LUKS2, no keyscope token) and $p3 (PV): nothing"
# keyscope's own mapping is a decrypted view, never a volume, even when what is inside carries
# a keyscope header (a guest's own disk could): its DM UUID starts with CRYPT-.
ks format "/dev/mapper/$m1" --key "$id2" >/dev/null
udevadm trigger --action=add "/dev/mapper/$m1"	# as the coldplug at boot
quiet
blkid -p -s TYPE -o value "/dev/mapper/$m1" | grep -qx crypto_LUKS ||
	vm_die "no LUKS header inside /dev/mapper/$m1"
untouched "/dev/mapper/$m1"
say "/dev/mapper/$m1, a keyscope header inside, add event: nothing"

# --- an LVM snapshot of the volume appears and joins its scope ---------------------------
t0=$(date +%s%N)
lvcreate -q -y -s -L 8M -n snap ksvg/vol
quiet
snk=$(basename "$(readlink -f /dev/ksvg/snap)")
usn=$(unit "$(inst "$snk")")
msn=$(mapped /dev/ksvg/snap)
[ "$msn" = keyscope-ksvg-snap ] || vm_die "the snapshot's stable name is $msn"
attached "$usn" "$msn" "$id2" 2
say "snapshot ksvg/snap ($snk) -> $usn: $(ms_since "$t0") ms, same key, 2 holders"
expect=$(printf '%s\n' "$u1" "$ulv" "$usn" | sort)
got=$(systemctl list-units --all --no-legend --plain 'keyscope-attach@*' | awk '{print $1}' | sort)
[ "$got" = "$expect" ] || vm_die "attach units: $(echo $got), want $(echo $expect)"
say "no unit for ksvg-vol-real, ksvg-snap-cow or the origin's reload: $(echo $got)"

# --- stopping a unit closes its volume; the last holder removes the kernel key -----------
keyctl search @u logon "keyscope:$id1" >/dev/null || vm_die "no kernel key keyscope:$id1"
systemctl stop "$u1"
[ ! -e "/dev/mapper/$m1" ] || vm_die "/dev/mapper/$m1 is still there"
[ "$(holders "$id1")" = 0 ] || vm_die "key $id1 still has $(holders "$id1") holders"
! keyctl search @u logon "keyscope:$id1" >/dev/null 2>&1 ||
	vm_die "keyscope:$id1 is still in the kernel"
say "systemctl stop $u1: closed, key $id1 gone from the kernel"
keyctl search @u logon "keyscope:$id2" >/dev/null || vm_die "no kernel key keyscope:$id2"
systemctl stop "$usn"
[ "$(holders "$id2")" = 1 ] ||
	vm_die "key $id2 has $(holders "$id2") holders after the snapshot closed"
systemctl stop "$ulv"
! keyctl search @u logon "keyscope:$id2" >/dev/null 2>&1 ||
	vm_die "keyscope:$id2 is still in the kernel"
say "snapshot, then volume stopped: key $id2 gone"

# A reload of the LV (a "change" with DM_ACTIVATION=1) and a change on the partition do not
# reopen what the operator closed.
lvchange -q --refresh ksvg/vol
udevadm trigger --action=change "$p1"
quiet
for u in "$ulv" "$usn"; do
	[ "$(systemctl show -P ActiveState "$u")" = inactive ] || vm_die "$u was started again"
done
[ "$(systemctl show -P ActiveState "$u1")" = inactive ] || vm_die "$u1 was started again"
[ ! -e "/dev/mapper/$mlv" ] && [ ! -e "/dev/mapper/$msn" ] &&
	[ ! -e "/dev/mapper/$m1" ] ||
	vm_die "a closed volume was reopened"
say "lvchange --refresh and a change event: nothing reopened"

# --- turned off: no unit starts, nothing opens -----------------------------------------
touch "$flag"
inv=$(systemctl show -P InvocationID "$u1")
udevadm trigger --action=add "$p1"	# what the coldplug at boot does
quiet
[ "$(prop "$p1" KEYSCOPE_AUTO_ATTACH)" = none ] ||
	vm_die "with $flag KEYSCOPE_AUTO_ATTACH is '$(prop "$p1" KEYSCOPE_AUTO_ATTACH)'"
[ "$(systemctl show -P InvocationID "$u1")" = "$inv" ] || vm_die "$u1 ran although $flag exists"
[ "$(systemctl show -P ActiveState "$u1")" = inactive ] ||
	vm_die "$u1 is $(systemctl show -P ActiveState "$u1")"
[ ! -e "/dev/mapper/$m1" ] || vm_die "opened although $flag exists"
say "with $flag: add event of $p1 -> no unit, nothing opened"
rm -f "$flag"
udevadm trigger --action=add "$p1"
quiet
attached "$u1" "$m1" "$id1" 1
say "without it: the next add event opens $p1 again"
systemctl stop "$u1"

# --- declared in /etc/keyscope/volumes: its own unit, under its declared name ------------
# keyscope-generator installed as make install does (a wrapper gives it the build's
# keyscopectl); the default auto-attach again: declared volumes open, the others do not.
rm -f "$conf"
mkdir -p /run/systemd/system-generators
printf '#!/bin/sh\nKEYSCOPECTL=%s exec %s "$@"\n' "$B/keyscopectl" "$B/keyscope-generator" \
	>/run/systemd/system-generators/keyscope-generator
chmod 755 /run/systemd/system-generators/keyscope-generator
mkdir -p "$U/keyscope-volume@.service.d"
printf '[Service]\nProtectHome=no\n' >"$U/keyscope-volume@.service.d/build-path.conf"
printf 'decl UUID=%s - nofail\n' "$(cryptsetup luksUUID "$p1")" >/etc/keyscope/volumes
systemctl daemon-reload
ud=keyscope-volume@decl.service
[ "$(systemctl show -P LoadState "$ud")" = loaded ] || vm_die "the generator made no $ud"
udevadm trigger --action=add "$p1"
udevadm trigger --action=add /dev/ksvg/vol
quiet
[ "$(prop "$p1" KEYSCOPE_VOLUME_UNIT)" = "$ud" ] ||
	vm_die "KEYSCOPE_VOLUME_UNIT of $p1: '$(prop "$p1" KEYSCOPE_VOLUME_UNIT)'"
# declared: answered from blkid's environment, the header left to the unit (cli/probe.c)
[ "$(prop "$p1" KEYSCOPE_LUKS_UUID)" = "$(cryptsetup luksUUID "$p1")" ] ||
	vm_die "KEYSCOPE_LUKS_UUID of $p1: '$(prop "$p1" KEYSCOPE_LUKS_UUID)'"
[ -z "$(prop "$p1" KEYSCOPE_KEY_ID)" ] || vm_die "the probe read the header of declared $p1"
attached "$ud" decl "$id1" 1
[ "$(systemctl show -P ActiveState "$u1")" = inactive ] || vm_die "$u1 ran for a declared volume"
not_opened /dev/ksvg/vol
say "declared as decl: add event of $p1 -> $ud, /dev/mapper/decl; the undeclared LV: nothing"
systemctl stop "$ud"
[ ! -e /dev/mapper/decl ] || vm_die "/dev/mapper/decl is still there after stopping $ud"
! keyctl search @u logon "keyscope:$id1" >/dev/null 2>&1 || vm_die "keyscope:$id1 left"
rm -f /etc/keyscope/volumes /run/systemd/system-generators/keyscope-generator
say "done in $(ms_since "$t_start") ms"
