#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --host
# Real boots of the --systemd guest, as an installed node boots: the files make install and
# the operator write are seeded into the root before PID 1 (tests/vm/run --seed), and the
# disks outlive each guest (--disk-image). A first guest formats two keyscope volumes (keys in
# the embedded store, on a state disk) and puts a file system on each. Then /etc/keyscope/volumes
# declares them by UUID= as data and logs (logs nofail,discard) beside two bad lines, and
# /etc/fstab mounts the state disk, /dev/mapper/data and /dev/mapper/logs; a third volume,
# spare, is declared noauto (not opened at boot, opened when its unit is started). The node boots:
# both file systems are mounted by local-fs.target (the test runs after basic.target) under
# their declared names, each bad line is one message with file:line, keyscoped and the volume
# units are active; systemctl is-system-running is running, or the test names what degrades
# it. It boots again with the disks in another order: the same file systems at the same places.
# A fifth keyscope volume, extra, is not declared; keyscoped.conf says auto-attach = all: udev
# opens it through keyscope-attach@.service as keyscope-<LUKS UUID> both times, with the same
# DM UUID, although its kernel name differs.
set -eu

if [ -z "${KEYSCOPE_VM-}" ]; then
	top=$(cd "$(dirname "$0")/../.." && pwd -P)
	B=${KEYSCOPE_BUILDDIR:-$top/build/out}
	T=$(mktemp -d "${TMPDIR:-/tmp}/keyscope-boot.XXXXXX")
	trap 'rm -rf "$T"' EXIT
	fail() { echo "t-boot-declared: $*" >&2; exit 1; }
	for d in state data logs spare extra; do truncate -s 64M "$T/$d.img"; done
	img() { for d in "$@"; do printf -- '--disk-image %s:%s ' "$d" "$T/$d.img"; done; }

	# shellcheck disable=SC2046 # img prints words
	"$top/tests/vm/run" --timeout 300 $(img state data logs spare extra) "$0" prepare >"$T/prep" 2>&1 ||
		{ cat "$T/prep"; fail "preparing the volumes failed"; }
	ud=$(sed -n 's/^UUID data //p' "$T/prep")
	ul=$(sed -n 's/^UUID logs //p' "$T/prep")
	us=$(sed -n 's/^UUID spare //p' "$T/prep")
	ue=$(sed -n 's/^UUID extra //p' "$T/prep")
	[ -n "$ud" ] && [ -n "$ul" ] && [ -n "$us" ] && [ -n "$ue" ] ||
		{ cat "$T/prep"; fail "no LUKS UUIDs from the first guest"; }
	echo "formatted: data $ud, logs $ul"

	# What an installed node has: make install's units, rule and generator (with the build's
	# binaries), the operator's volumes file and fstab.
	S=$T/seed
	mkdir -p "$S/etc/keyscope" "$S/etc/systemd/system/keyscoped.service.d" \
		"$S/etc/systemd/system/keyscope-volume@.service.d" "$S/etc/systemd/system-generators" \
		"$S/etc/udev/rules.d"
	cat >"$S/etc/keyscope/volumes" <<-VOL
	# declared volumes of this node
	data  UUID=$ud  -
	logs  UUID=$ul  -  nofail,discard
	typo  UUID=$ud  -  nofial
	bad2  vdq
	spare UUID=$us  -  noauto
	VOL
	# device timeouts for a slow guest (TCG on a shared machine): the devices of the mapped
	# volumes appear only after keyscoped has started, later than systemd's default 90 s there
	cat >"$S/etc/fstab" <<-FSTAB
	/dev/disk/by-id/virtio-state  /var/lib/keyscope  ext4  defaults,x-systemd.device-timeout=300s  0 2
	/dev/mapper/data              /srv/data          ext4  defaults,x-systemd.device-timeout=300s  0 2
	/dev/mapper/logs              /srv/logs          ext4  defaults,nofail,x-systemd.device-timeout=300s  0 2
	FSTAB
	sed -e "s|^ExecStart=/usr/sbin/keyscoped|ExecStart=$B/keyscoped|" \
		"$top/systemd/keyscoped.service" >"$S/etc/systemd/system/keyscoped.service"
	# The build may live under /root or /tmp, which an installed /usr/sbin never is.
	printf '[Service]\nPrivateTmp=no\nProtectHome=no\n' \
		>"$S/etc/systemd/system/keyscoped.service.d/build-path.conf"
	printf '[Service]\nProtectHome=no\n' \
		>"$S/etc/systemd/system/keyscope-volume@.service.d/build-path.conf"
	printf '#!/bin/sh\nKEYSCOPECTL=%s exec %s "$@"\n' "$B/keyscopectl" "$B/keyscope-generator" \
		>"$S/etc/systemd/system-generators/keyscope-generator"
	chmod 755 "$S/etc/systemd/system-generators/keyscope-generator"
	sed -e "s|/usr/bin/keyscopectl|$B/keyscopectl|g" "$top/udev/69-keyscope.rules" \
		>"$S/etc/udev/rules.d/69-keyscope.rules"
	# Undeclared keyscope volumes too, under stable names (extra).
	printf '[keyscoped]\nauto-attach = all\n' >"$S/etc/keyscope/keyscoped.conf"
	sed -e "s|/usr/bin/keyscopectl|$B/keyscopectl|g" "$top/systemd/keyscope-attach@.service" \
		>"$S/etc/systemd/system/keyscope-attach@.service"
	mkdir -p "$S/etc/systemd/system/keyscope-attach@.service.d"
	printf '[Service]\nProtectHome=no\n' \
		>"$S/etc/systemd/system/keyscope-attach@.service.d/build-path.conf"
	# A boot that ends in emergency mode fails the test at once, with the journal (not at
	# the timeout with only the console).
	mkdir -p "$S/etc/systemd/system/emergency.service.d"
	cat >"$S/etc/systemd/system/emergency.service.d/keyscope-vm.conf" <<-'UNIT'
	[Service]
	ExecStartPre=-/bin/sh -c 'R=/run/keyscope-vm; systemctl --failed --no-pager >$R/stderr 2>&1; journalctl -b --no-pager -o short-monotonic >$R/journal 2>&1; echo 1 >$R/status.tmp && mv $R/status.tmp $R/status; sync'
	ExecStartPre=-/bin/systemctl --force poweroff
	UNIT

	n=0
	for order in "state data logs spare extra" "extra logs spare state data"; do
		n=$((n + 1))
		# shellcheck disable=SC2046,SC2086
		if ! "$top/tests/vm/run" --systemd --timeout 400 --seed "$S" $(img $order) "$0" boot \
			>"$T/boot$n" 2>&1; then
			cat "$T/boot$n"
			fail "boot $n (disks $order) failed"
		fi
		sed "s/^/  boot $n | /" "$T/boot$n"
	done
	# The order changed the kernel's names, not the volumes' names or what is mounted where.
	b1=$(sed -n 's/^data on //p' "$T/boot1") b2=$(sed -n 's/^data on //p' "$T/boot2")
	[ -n "$b1" ] && [ "$b1" != "$b2" ] || fail "data's disk did not change name ($b1, $b2)"
	echo "data on $b1, then $b2: same name, same mount"
	# auto-attach = all: the same stable name and DM UUID whatever the disk is called
	e1=$(sed -n 's/^extra: //p' "$T/boot1") e2=$(sed -n 's/^extra: //p' "$T/boot2")
	# shellcheck disable=SC2086 # NAME DM-UUID KERNEL-NAME, twice
	set -- $e1 $e2
	[ $# = 6 ] || fail "extra: '$e1', then '$e2'"
	[ "$1" = "keyscope-$ue" ] && [ "$4" = "$1" ] || fail "extra opened as $1, then $4; want keyscope-$ue"
	[ "$2" = "$5" ] || fail "extra's DM UUID changed: $2, then $5"
	[ "$3" != "$6" ] || fail "extra's disk did not change name ($3, $6)"
	echo "extra (undeclared, auto-attach = all) on $3, then $6: /dev/mapper/$1 both times, DM UUID $2"
	echo ok
	exit 0
fi

# ---- in the guest ---------------------------------------------------------------------------
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
B=${KEYSCOPE_BUILDDIR:-$KEYSCOPE_TOP/build/out}
ks() { "$B/keyscopectl" "$@"; }

prepare() {
	st=$(vm_disk state)
	mkfs.ext4 -q -F "$st"
	mkdir -p /var/lib/keyscope
	mount "$st" /var/lib/keyscope
	export KEYSCOPE_SOCKET=/run/ks-prepare.sock
	"$B/keyscoped" --state-dir /var/lib/keyscope --socket "$KEYSCOPE_SOCKET" \
		>/run/ks-prepare.log 2>&1 &
	pid=$!
	i=0
	until ks status >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -le 200 ] || { cat /run/ks-prepare.log; vm_die "keyscoped did not start"; }
		sleep 0.1
	done
	for v in data logs spare extra; do
		d=$(vm_disk $v)
		id=$(ks key create)
		ks format "$d" --key "$id" >/dev/null
		ks attach "$d" --name "$v" >/dev/null
		mkfs.ext4 -q "/dev/mapper/$v"
		mkdir -p "/mnt/$v"
		mount "/dev/mapper/$v" "/mnt/$v"
		echo "$v" >"/mnt/$v/who"
		umount "/mnt/$v"
		ks detach "$v" >/dev/null
		echo "UUID $v $(cryptsetup luksUUID "$d")"
	done
	kill "$pid"
	wait "$pid" || true
	umount /var/lib/keyscope
}

boot() {
	unset KEYSCOPE_SOCKET
	for v in data logs; do
		src=$(findmnt -n -o SOURCE "/srv/$v") || vm_die "/srv/$v is not mounted: $(findmnt -l)"
		[ "$src" = "/dev/mapper/$v" ] || vm_die "/srv/$v is $src, want /dev/mapper/$v"
		[ "$(cat "/srv/$v/who")" = "$v" ] || vm_die "/srv/$v holds $(cat "/srv/$v/who")"
		[ "$(systemctl is-active "keyscope-volume@$v.service")" = active ] ||
			vm_die "keyscope-volume@$v.service: $(systemctl status --no-pager "keyscope-volume@$v.service")"
		dmsetup table "$v" | grep -q ":64:logon:keyscope:" || vm_die "$v: $(dmsetup table "$v")"
		echo "$v: /dev/mapper/$v on /srv/$v by local-fs.target"
	done
	dmsetup table logs | grep -q allow_discards || vm_die "logs has no allow_discards (discard)"
	# the kernel name of data's disk, which the disk order changes
	echo "data on $(ls "/sys/block/$(basename "$(readlink -f /dev/mapper/data)")/slaves")"
	[ "$(systemctl is-active local-fs.target)" = active ] || vm_die "local-fs.target is not active"
	findmnt -n /var/lib/keyscope >/dev/null || vm_die "the state disk is not mounted"
	journalctl -b -o cat --no-pager >/run/journal.txt
	grep -q "/etc/keyscope/volumes:4: unknown option 'nofial'" /run/journal.txt ||
		vm_die "no message for the typo line: $(grep -i keyscope-generator /run/journal.txt)"
	grep -q "/etc/keyscope/volumes:5: .*vdq" /run/journal.txt ||
		vm_die "no message for bad2: $(grep -i keyscope-generator /run/journal.txt)"
	[ "$(grep -c '/etc/keyscope/volumes:[0-9]*:' /run/journal.txt)" = 2 ] ||
		vm_die "not one message per bad line: $(grep '/etc/keyscope/volumes:' /run/journal.txt)"
	echo "bad lines: $(grep '/etc/keyscope/volumes:[0-9]*:' /run/journal.txt | tr '\n' ';')"
	systemctl is-active keyscoped.service >/dev/null || vm_die "keyscoped is not active"
	# noauto: declared, not opened at boot; opened when its unit is started
	us=keyscope-volume@spare.service
	[ "$(systemctl show -P ActiveState $us)" = inactive ] || vm_die "noauto $us is $(systemctl show -P ActiveState $us)"
	[ ! -e /dev/mapper/spare ] || vm_die "noauto spare was opened at boot"
	systemctl start $us || vm_die "starting $us failed: $(systemctl status --no-pager $us | tail -n 5)"
	[ -b /dev/mapper/spare ] && [ "$(systemctl is-active $us)" = active ] || vm_die "$us did not open spare"
	systemctl stop $us
	[ ! -e /dev/mapper/spare ] || vm_die "stopping $us left /dev/mapper/spare"
	echo "spare (noauto): closed at boot, opened by systemctl start, closed by stop"
	# extra, undeclared, auto-attach = all: udev's coldplug starts keyscope-attach@KERNEL-NAME
	ek=$(basename "$(vm_disk extra)")
	ua=keyscope-attach@$ek.service
	i=0
	until [ "$(systemctl show -P ActiveState "$ua")" = active ]; do
		i=$((i + 1))
		[ $i -le 300 ] || vm_die "$ua is $(systemctl show -P ActiveState "$ua") after 60 s"
		sleep 0.2
	done
	en=keyscope-$(cryptsetup luksUUID "$(vm_disk extra)")
	dmsetup table "$en" | grep -q ":64:logon:keyscope:" || vm_die "$en: $(dmsetup table "$en" 2>&1)"
	echo "extra: $en $(dmsetup info -c --noheadings -o uuid "$en") $ek"
	state=$(systemctl is-system-running || true)
	# this test is the boot's last job (keyscope-vm.target waits for it): "starting" with no
	# other job is "running" but for the test itself
	jobs=$(systemctl list-jobs --no-legend --plain | awk '{print $2}' | grep -v '^keyscope-vm' || true)
	[ "$state" != starting ] || [ -n "$jobs" ] || state="running (but for this test's own job)"
	echo "is-system-running: $state"
	if [ "${state%% *}" != running ]; then
		failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ' ')
		echo "degraded by: ${failed:-no failed unit}; jobs left: ${jobs:-none}"
		case $failed in *keyscope*) vm_die "a keyscope unit failed: $failed" ;; esac
	fi
}

case ${1-} in
prepare) prepare ;;
boot) boot ;;
*) vm_die "usage: t-boot-declared.sh prepare|boot (in the guest)" ;;
esac
