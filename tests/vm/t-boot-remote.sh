#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --host
# vm-needs: barbican
# A real boot of the --systemd guest with its key manager down: a volume keyed in the host's
# Barbican, declared "_netdev,nofail" in /etc/keyscope/volumes, with a nofail fstab mount of
# /dev/mapper/NAME. Barbican is stopped before the boot: the boot goes on (the test runs after
# basic.target, with remote-fs.target pulled in as multi-user.target would), the volume's unit
# is active and the volume pending in keyscopectl status, with the reason, nothing mounted.
# keyscoped is restarted (systemctl restart) and killed (SIGKILL; systemd starts it again):
# the volume is still pending after each. Then Barbican is started again (vm_host): keyscoped
# attaches the volume and systemd mounts it, untouched by hand.
# A second volume keyed in Barbican is declared "_netdev" without nofail: crypttab's meaning,
# its unit fails within its bound (the boot goes on, the system is degraded by that unit
# alone), it is never pending and stays closed when Barbican comes back, until the operator
# starts its unit again, which then opens it.
set -eu

if [ -z "${KEYSCOPE_VM-}" ]; then
	top=$(cd "$(dirname "$0")/../.." && pwd -P)
	B=${KEYSCOPE_BUILDDIR:-$top/build/out}
	T=$(mktemp -d "${TMPDIR:-/tmp}/keyscope-boot.XXXXXX")
	fail() { echo "t-boot-remote: $*" >&2; exit 1; }
	[ -n "${KEYSCOPE_BARBICAN_URL-}" ] && [ -n "${KEYSCOPE_VM_HOST_HOOK-}" ] ||
		{ echo "SKIP: no Barbican given (run through tests/vm/check)"; exit 77; }
	cleanup() { rm -rf "$T"; "$KEYSCOPE_VM_HOST_HOOK" barbican-start >/dev/null 2>&1 || true; }
	trap cleanup EXIT
	for d in state vol strict; do truncate -s 64M "$T/$d.img"; done
	disks="--disk-image state:$T/state.img --disk-image vol:$T/vol.img"
	disks="$disks --disk-image strict:$T/strict.img"
	export KEYSCOPE_NODE_USER=node-boot-$$	# the same node in both guests

	# shellcheck disable=SC2086
	"$top/tests/vm/run" --net --timeout 300 $disks "$0" prepare >"$T/prep" 2>&1 ||
		{ cat "$T/prep"; fail "preparing the volume failed"; }
	uuid=$(sed -n 's/^UUID //p' "$T/prep")
	suuid=$(sed -n 's/^STRICT //p' "$T/prep")
	[ -n "$uuid" ] && [ -n "$suuid" ] || { cat "$T/prep"; fail "no LUKS UUID from the first guest"; }
	echo "formatted: remote $uuid, key in Barbican"

	S=$T/seed
	mkdir -p "$S/etc/keyscope" "$S/etc/systemd/system/keyscoped.service.d" \
		"$S/etc/systemd/system/keyscope-volume@.service.d" "$S/etc/systemd/system-generators" \
		"$S/etc/udev/rules.d" "$S/etc/systemd/system/keyscope-vm.target.wants"
	sed -n '/^\[keyscoped\]/,$p' "$T/prep" >"$S/etc/keyscope/keyscoped.conf"
	grep -q '^barbican-url' "$S/etc/keyscope/keyscoped.conf" || fail "no node config from the first guest"
	printf 'remote  UUID=%s  -  _netdev,nofail\nstrict  UUID=%s  -  _netdev\n' "$uuid" "$suuid" \
		>"$S/etc/keyscope/volumes"
	cat >"$S/etc/fstab" <<-FSTAB
	/dev/disk/by-id/virtio-state  /var/lib/keyscope  ext4  defaults,x-systemd.device-timeout=300s  0 2
	/dev/mapper/remote            /srv/remote        ext4  nofail,_netdev   0 2
	FSTAB
	sed -e "s|^ExecStart=/usr/sbin/keyscoped|ExecStart=$B/keyscoped|" \
		"$top/systemd/keyscoped.service" >"$S/etc/systemd/system/keyscoped.service"
	printf '[Service]\nPrivateTmp=no\nProtectHome=no\n' \
		>"$S/etc/systemd/system/keyscoped.service.d/build-path.conf"
	printf '[Service]\nProtectHome=no\n' \
		>"$S/etc/systemd/system/keyscope-volume@.service.d/build-path.conf"
	printf '#!/bin/sh\nKEYSCOPECTL=%s exec %s "$@"\n' "$B/keyscopectl" "$B/keyscope-generator" \
		>"$S/etc/systemd/system-generators/keyscope-generator"
	chmod 755 "$S/etc/systemd/system-generators/keyscope-generator"
	sed -e "s|/usr/bin/keyscopectl|$B/keyscopectl|g" "$top/udev/69-keyscope.rules" \
		>"$S/etc/udev/rules.d/69-keyscope.rules"
	# A boot that ends in emergency mode fails the test at once, with the journal (not at
	# the timeout with only the console).
	mkdir -p "$S/etc/systemd/system/emergency.service.d"
	cat >"$S/etc/systemd/system/emergency.service.d/keyscope-vm.conf" <<-'UNIT'
	[Service]
	ExecStartPre=-/bin/sh -c 'R=/run/keyscope-vm; systemctl --failed --no-pager >$R/stderr 2>&1; journalctl -b --no-pager -o short-monotonic >$R/journal 2>&1; echo 1 >$R/status.tmp && mv $R/status.tmp $R/status; sync'
	ExecStartPre=-/bin/systemctl --force poweroff
	UNIT
	# what multi-user.target would pull in: the remote file systems, and so their volumes
	ln -s /lib/systemd/system/remote-fs.target "$S/etc/systemd/system/keyscope-vm.target.wants/"

	"$KEYSCOPE_VM_HOST_HOOK" barbican-stop
	# shellcheck disable=SC2086
	if ! "$top/tests/vm/run" --systemd --net --timeout 500 --seed "$S" $disks "$0" boot \
		>"$T/boot" 2>&1; then
		cat "$T/boot"
		fail "the boot with Barbican down failed"
	fi
	sed 's/^/  boot | /' "$T/boot"
	echo ok
	exit 0
fi

# ---- in the guest ---------------------------------------------------------------------------
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
B=${KEYSCOPE_BUILDDIR:-$KEYSCOPE_TOP/build/out}
ks() { "$B/keyscopectl" "$@"; }

prepare() {
	. "$KEYSCOPE_TOP/tests/vm/barbican.sh"
	NODE_USER=$KEYSCOPE_NODE_USER
	st=$(vm_disk state)
	mkfs.ext4 -q -F "$st"
	mkdir -p /var/lib/keyscope
	mount "$st" /var/lib/keyscope
	conf=/run/ks-node.conf
	cat >"$conf" <<-CONF
	[keyscoped]
	barbican-url = $URL
	barbican-ca-file = $CA
	barbican-auth = none
	barbican-project-id = $NODE_PROJECT
	barbican-user-id = $NODE_USER
	barbican-roles = creator
	barbican-connect-timeout = 2
	barbican-timeout = 5
	barbican-deadline = 8
	barbican-retries = 1
	barbican-cache = no
	CONF
	export KEYSCOPE_SOCKET=/run/ks-prepare.sock
	"$B/keyscoped" --config "$conf" --state-dir /var/lib/keyscope --socket "$KEYSCOPE_SOCKET" \
		>/run/ks-prepare.log 2>&1 &
	pid=$!
	i=0
	until ks status >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -le 200 ] || { cat /run/ks-prepare.log; vm_die "keyscoped did not start"; }
		sleep 0.1
	done
	d=$(vm_disk vol)
	id=$(new_secret)
	ks format "$d" --key "$id" >/dev/null
	ks attach "$d" --name remote >/dev/null
	mkfs.ext4 -q /dev/mapper/remote
	mkdir -p /mnt/r
	mount /dev/mapper/remote /mnt/r
	echo remote >/mnt/r/who
	umount /mnt/r
	ks detach remote >/dev/null
	echo "UUID $(cryptsetup luksUUID "$d")"
	# t-boot-shutdown prepares its volume here too, without this one
	if d=$(vm_disk_find strict); then
		ks format "$d" --key "$(new_secret)" >/dev/null
		echo "STRICT $(cryptsetup luksUUID "$d")"
	fi
	kill "$pid"
	wait "$pid" || true
	umount /var/lib/keyscope
	cat "$conf"
}

# pending_of NAME: keyscopectl status --json's pending entry of NAME, compact, or nothing.
pending_of() {
	ks --json status | tr -d '\n ' | sed -n 's/.*"pending":\[\(.*\)\].*/\1/p' |
		grep -o "{[^}]*\"name\":\"$1\"[^}]*}" || true
}

# wait_pending WHAT: after WHAT, keyscopectl status lists remote pending again (within 20 s).
wait_pending() {
	i=0
	until [ -n "$(pending_of remote 2>/dev/null)" ]; do
		i=$((i + 1))
		[ $i -le 40 ] || vm_die "$1 forgot the pending volume: $(ks status 2>&1)"
		sleep 0.5
	done
	[ ! -e /dev/mapper/remote ] || vm_die "/dev/mapper/remote exists after $1 while Barbican is down"
	echo "$1: still pending: $(pending_of remote)"
}

boot() {
	unset KEYSCOPE_SOCKET
	u=keyscope-volume@remote.service
	t0=$(date +%s)
	i=0
	until [ -n "$(pending_of remote)" ]; do
		i=$((i + 1))
		[ $i -le 120 ] || vm_die "not pending after 60 s: $(ks status 2>&1); $(systemctl status --no-pager $u 2>&1 | tail -n 8)"
		sleep 0.5
	done
	echo "pending $(($(date +%s) - t0)) s into the test: $(pending_of remote)"
	ks status | grep -E '^(PENDING|remote) ' || vm_die "keyscopectl status shows no pending row"
	i=0
	until [ "$(systemctl is-active $u)" = active ]; do
		i=$((i + 1))
		[ $i -le 60 ] || vm_die "$u is $(systemctl is-active $u): $(systemctl status --no-pager $u | tail -n 8)"
		sleep 0.5
	done
	echo "$u: active (pending, the boot goes on)"
	# without nofail: the unit fails (bounded by barbican-deadline), the volume is not kept
	us=keyscope-volume@strict.service
	i=0
	until [ "$(systemctl is-active $us)" = failed ]; do
		i=$((i + 1))
		[ $i -le 240 ] || vm_die "$us is $(systemctl is-active $us), not failed, 120 s into the test"
		sleep 0.5
	done
	journalctl -b --no-pager -q -u $us | grep -q 'keyscope.KeySourceUnavailable' ||
		vm_die "$us failed without saying why: $(journalctl -b --no-pager -q -u $us | tail -n 5)"
	[ -z "$(pending_of strict)" ] || vm_die "strict (no nofail) is pending: $(pending_of strict)"
	[ ! -e /dev/mapper/strict ] || vm_die "/dev/mapper/strict exists while Barbican is down"
	failed=$(systemctl --failed --no-legend --plain | awk '{ print $1 }' | tr '\n' ' ')
	[ "$failed" = "$us " ] || vm_die "failed units: '$failed', want only $us"
	echo "$us: failed, not pending; the only failed unit"
	[ ! -e /dev/mapper/remote ] || vm_die "/dev/mapper/remote exists while Barbican is down"
	findmnt -n /srv/remote >/dev/null && vm_die "/srv/remote is mounted while Barbican is down"
	systemctl show -P StatusText keyscoped.service | grep -q "1 volume pending" ||
		vm_die "keyscoped's STATUS= does not count it: $(systemctl show -P StatusText keyscoped.service)"
	echo "keyscoped: $(systemctl show -P StatusText keyscoped.service)"

	# keyscoped restarted, then killed (systemd starts it again): the volume stays pending
	systemctl restart keyscoped.service
	wait_pending "systemctl restart keyscoped"
	pid=$(systemctl show -P MainPID keyscoped.service)
	systemctl kill -s KILL keyscoped.service
	i=0
	until [ "$(systemctl show -P MainPID keyscoped.service)" != "$pid" ] &&
		[ "$(systemctl is-active keyscoped.service)" = active ]; do
		i=$((i + 1))
		[ $i -le 60 ] || vm_die "keyscoped not started again after SIGKILL: $(systemctl status --no-pager keyscoped | tail -n 5)"
		sleep 0.5
	done
	wait_pending "SIGKILL of keyscoped and its restart by systemd"
	[ "$(systemctl is-active $u)" = active ] || vm_die "$u is $(systemctl is-active $u) after the restarts"

	vm_host barbican-start
	t1=$(date +%s)
	i=0
	until findmnt -n /srv/remote >/dev/null; do
		i=$((i + 1))
		[ $i -le 240 ] || vm_die "/srv/remote not mounted 120 s after Barbican came back: $(pending_of remote); $(systemctl status --no-pager srv-remote.mount 2>&1 | tail -n 6)"
		sleep 0.5
	done
	echo "Barbican back: /srv/remote mounted $(($(date +%s) - t1)) s later, untouched by hand"
	[ ! -e /dev/mapper/strict ] || vm_die "strict (no nofail) was opened without its unit"
	systemctl start keyscope-volume@strict.service ||
		vm_die "keyscope-volume@strict did not start with Barbican back: $(systemctl status --no-pager keyscope-volume@strict | tail -n 6)"
	[ -b /dev/mapper/strict ] || vm_die "keyscope-volume@strict is active without /dev/mapper/strict"
	echo "strict: opened when its unit was started again"
	[ "$(findmnt -n -o SOURCE /srv/remote)" = /dev/mapper/remote ] || vm_die "/srv/remote: $(findmnt /srv/remote)"
	[ "$(cat /srv/remote/who)" = remote ] || vm_die "/srv/remote holds $(cat /srv/remote/who)"
	[ -z "$(pending_of remote)" ] || vm_die "still pending once attached"
}

case ${1-} in
prepare) prepare ;;
boot) boot ;;
*) vm_die "usage: t-boot-remote.sh prepare|boot (in the guest)" ;;
esac
