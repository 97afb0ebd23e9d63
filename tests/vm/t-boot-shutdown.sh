#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --host
# vm-needs: barbican
# Shutdown with the key manager unreachable never hangs. A real boot of the --systemd guest
# with a "_netdev,nofail" volume keyed in the host's Barbican: attached at boot, mounted, a
# consumer of its secret in Barbican. Then Barbican is made unreachable from the guest (its
# packets go to a gateway that is not there: no answer at all, as in a network partition) and
# the guest shuts down in order (systemctl poweroff). A unit of the test that stops after
# keyscoped (and before the state folder's unmount) writes what the shutdown left onto the
# state disk: the mount unmounted, the mapping gone, no keyscope kernel key, keyscoped stopped
# within its bound (no 90 s stop timeout, nothing killed), and the consumer removal that
# could not be sent kept in consumers.json. A second boot, with Barbican reachable and the
# volume no longer declared, finds that report and sees keyscoped carry the removal on and
# Barbican list no consumer of the secret any more.
set -eu

if [ -z "${KEYSCOPE_VM-}" ]; then
	top=$(cd "$(dirname "$0")/../.." && pwd -P)
	B=${KEYSCOPE_BUILDDIR:-$top/build/out}
	T=$(mktemp -d "${TMPDIR:-/tmp}/keyscope-shutdown.XXXXXX")
	fail() { echo "t-boot-shutdown: $*" >&2; exit 1; }
	[ -n "${KEYSCOPE_BARBICAN_URL-}" ] && [ -n "${KEYSCOPE_VM_HOST_HOOK-}" ] ||
		{ echo "SKIP: no Barbican given (run through tests/vm/check)"; exit 77; }
	cleanup() { rm -rf "$T"; }
	trap cleanup EXIT
	for d in state vol; do truncate -s 64M "$T/$d.img"; done
	disks="--disk-image state:$T/state.img --disk-image vol:$T/vol.img"
	export KEYSCOPE_NODE_USER=node-shutdown-$$	# the same node in every guest

	# the volume, its key in Barbican, and the node's keyscoped.conf: as t-boot-remote has them
	# shellcheck disable=SC2086
	"$top/tests/vm/run" --net --timeout 300 $disks "$top/tests/vm/t-boot-remote.sh" prepare \
		>"$T/prep" 2>&1 || { cat "$T/prep"; fail "preparing the volume failed"; }
	uuid=$(sed -n 's/^UUID //p' "$T/prep")
	[ -n "$uuid" ] || { cat "$T/prep"; fail "no LUKS UUID from the first guest"; }

	S=$T/seed
	. "$top/tests/vm/boot-seed.sh"
	boot_seed "$S" "$B" "$top"
	sed -n '/^\[keyscoped\]/,$p' "$T/prep" >"$S/etc/keyscope/keyscoped.conf"
	grep -q '^barbican-url' "$S/etc/keyscope/keyscoped.conf" || fail "no node config"
	printf 'remote  UUID=%s  -  _netdev,nofail\n' "$uuid" >"$S/etc/keyscope/volumes"
	printf '%s\n' '/dev/mapper/remote /srv/remote ext4 nofail,_netdev 0 2' >>"$S/etc/fstab"
	# The harness powers a guest off by force once the test unit is done; this boot's test
	# asks for an orderly poweroff itself.
	mkdir -p "$S/etc/systemd/system/keyscope-vm-test.service.d"
	printf '[Unit]\nSuccessAction=none\nFailureAction=none\n' \
		>"$S/etc/systemd/system/keyscope-vm-test.service.d/50-orderly-poweroff.conf"
	# The report of the shutdown: stopped after keyscoped, before /var/lib/keyscope's unmount.
	cat >"$S/etc/systemd/system/keyscope-vm-shutdown-report.service" <<-'UNIT'
	[Unit]
	Description=keyscope VM test: what the shutdown left
	DefaultDependencies=no
	RequiresMountsFor=/var/lib/keyscope
	Before=keyscoped.service
	Conflicts=shutdown.target
	Before=shutdown.target

	[Service]
	Type=oneshot
	RemainAfterExit=yes
	Environment=KEYSCOPE_VM=systemd KEYSCOPE_VM_RESULTS=/run/keyscope-vm KEYSCOPE_TOP=KEYSCOPE_TOP
	ExecStart=/bin/true
	ExecStop=/bin/sh KEYSCOPE_TOP/tests/vm/t-boot-shutdown.sh report
	UNIT
	sed -i "s|=KEYSCOPE_TOP|=$top|; s|sh KEYSCOPE_TOP|sh $top|" "$S/etc/systemd/system/keyscope-vm-shutdown-report.service"
	ln -s ../keyscope-vm-shutdown-report.service "$S/etc/systemd/system/keyscope-vm.target.wants/"

	# shellcheck disable=SC2086
	if ! "$top/tests/vm/run" --systemd --net --timeout 500 --seed "$S" $disks "$0" up \
		>"$T/boot1" 2>&1; then
		cat "$T/boot1"
		fail "the boot that shuts down with Barbican unreachable failed"
	fi
	sed 's/^/  boot 1 | /' "$T/boot1"
	id=$(sed -n 's/^KEYID //p' "$T/boot1")
	[ -n "$id" ] || fail "no key-id from the first boot"

	# the second boot: the volume no longer declared (it would register its consumer again)
	S2=$T/seed2
	boot_seed "$S2" "$B" "$top"
	cp "$S/etc/keyscope/keyscoped.conf" "$S2/etc/keyscope/"
	printf '# no volume\n' >"$S2/etc/keyscope/volumes"
	# enabled, as on an installed node (no volume unit pulls it in now)
	ln -s ../keyscoped.service "$S2/etc/systemd/system/keyscope-vm.target.wants/"
	# shellcheck disable=SC2086
	if ! KEYSCOPE_TEST_KEYID=$id "$top/tests/vm/run" --systemd --net --timeout 900 \
		--seed "$S2" $disks "$0" after >"$T/boot2" 2>&1; then
		cat "$T/boot2"
		fail "the boot after the shutdown failed"
	fi
	sed 's/^/  boot 2 | /' "$T/boot2"
	echo ok
	exit 0
fi

# ---- in the guest ---------------------------------------------------------------------------
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
B=${KEYSCOPE_BUILDDIR:-$KEYSCOPE_TOP/build/out}
ks() { "$B/keyscopectl" "$@"; }
REPORT=/var/lib/keyscope/shutdown-report.txt

# key_id NAME: the key-id of attached volume NAME (keyscopectl --json status).
key_id() {
	ks --json status | /usr/bin/python3 -c 'import json, sys
def walk(o):
    if isinstance(o, dict):
        if o.get("name") == sys.argv[1] and o.get("key-id"):
            print(o["key-id"]); sys.exit(0)
        for v in o.values(): walk(v)
    elif isinstance(o, list):
        for v in o: walk(v)
walk(json.load(sys.stdin))' "$1"
}

# usec UNIT PROPERTY: a monotonic timestamp of UNIT, in microseconds.
usec() { systemctl show -P "$2" "$1"; }

# Boot 1: attached and registered; Barbican unreachable; an orderly poweroff. The status is
# written here, before the poweroff that ends this unit.
finish() {
	rc=$?
	R=$KEYSCOPE_VM_RESULTS
	[ $rc = 0 ] || journalctl -b --no-pager -o short-monotonic >"$R/journal" 2>&1
	echo $rc >"$R/status.tmp" && mv "$R/status.tmp" "$R/status"
	sync
	# poweroff.target itself: `systemctl poweroff` asks logind, which the guest does not run
	systemctl --no-block start poweroff.target --job-mode=replace-irreversibly
	exit $rc
}

up() {
	trap finish EXIT
	. "$KEYSCOPE_TOP/tests/vm/barbican.sh"
	i=0
	until findmnt -n /srv/remote >/dev/null; do
		i=$((i + 1))
		[ $i -le 240 ] || vm_die "/srv/remote not mounted at boot: $(ks status 2>&1)"
		sleep 0.5
	done
	id=$(key_id remote)
	[ -n "$id" ] || vm_die "no key-id for remote: $(ks status)"
	echo "KEYID $id"
	i=0
	until [ -n "$(consumers "$id")" ]; do
		i=$((i + 1))
		[ $i -le 60 ] || vm_die "the volume is not a consumer of $id in Barbican"
		sleep 0.5
	done
	echo "attached, mounted, consumer of its secret: $(consumers "$id")"
	[ "$(awk '$8 == "logon" && $9 ~ /^keyscope:/ && $2 !~ /[iRD]/' /proc/keys | wc -l)" = 1 ] ||
		vm_die "no live keyscope kernel key while attached: $(grep keyscope /proc/keys)"
	# unreachable: the route to Barbican goes through a gateway that is not there
	ip route add "$BB_HOST/32" via 10.0.2.77 dev eth0
	if curl -s --max-time 4 --cacert "$CA" "$URL" >/dev/null 2>&1; then
		vm_die "Barbican still answers through the dead route"
	fi
	echo "Barbican unreachable (no answer); systemctl poweroff"
}

# ExecStop of keyscope-vm-shutdown-report.service, after keyscoped has stopped.
report() {
	{
		for u in keyscoped.service keyscope-volume@remote.service srv-remote.mount; do
			echo "STOP_USEC $u $(($(usec $u InactiveEnterTimestampMonotonic) - \
				$(usec $u ActiveExitTimestampMonotonic)))"
			echo "STATE $u $(systemctl show -P ActiveState $u) $(systemctl show -P Result $u)"
		done
		echo "MOUNTED $(findmnt -n -o SOURCE /srv/remote || true)"
		echo "MAPPING $(dmsetup ls 2>/dev/null | awk '$1 == "remote"')"
		# live logon keys (not the keyscope keyring): an invalidated one ('i') waits for the kernel's garbage collector
		echo "KEYS $(awk '$8 == "logon" && $9 ~ /^keyscope:/ && $2 !~ /[iRD]/' /proc/keys | wc -l)"
		grep ' keyscope:' /proc/keys | sed 's/^/PROCKEYS /' || true
		echo "CONSUMERS $(cat /var/lib/keyscope/consumers.json 2>&1)"
		echo "KILLED $(journalctl -b -o cat | grep -cE 'State .stop-sigterm. timed out|Killing process' || true)"
		journalctl -b -o short-monotonic --no-pager -u keyscoped -u keyscope-volume@remote |
			tail -n 25 | sed 's/^/JOURNAL /'
	} >"$REPORT" 2>&1
	sync
}

# field WORD [N]: the rest of the report's line WORD (the one naming unit N).
field() { sed -n "s/^$1 ${2:+$2 }//p" "$REPORT"; }

# Boot 2: the report of boot 1's shutdown, then the removal sent now that Barbican answers.
after() {
	. "$KEYSCOPE_TOP/tests/vm/barbican.sh"
	id=$KEYSCOPE_TEST_KEYID
	[ -s "$REPORT" ] || vm_die "no report of the first boot's shutdown in $REPORT"
	sed 's/^/shutdown: /' "$REPORT"
	for u in keyscoped.service keyscope-volume@remote.service srv-remote.mount; do
		[ "$(field STATE $u)" = "inactive success" ] || vm_die "$u at shutdown: $(field STATE $u)"
	done
	ks_us=$(field STOP_USEC keyscoped.service)
	vol_us=$(field STOP_USEC keyscope-volume@remote.service)
	echo "stopped in: keyscoped $((ks_us / 1000)) ms, the volume's unit $((vol_us / 1000)) ms (the stop timeouts: 90 s, 45 s)"
	# the bound: keyscoped exits at once on SIGTERM; 15 s is far below systemd's 90 s
	[ "$ks_us" -le 15000000 ] || vm_die "keyscoped took $((ks_us / 1000)) ms to stop"
	[ "$vol_us" -le 15000000 ] || vm_die "the volume's unit took $((vol_us / 1000)) ms to stop"
	[ "$(field KILLED)" = 0 ] || vm_die "something was killed at shutdown: $(field KILLED)"
	[ -z "$(field MOUNTED)" ] || vm_die "/srv/remote still mounted: $(field MOUNTED)"
	[ -z "$(field MAPPING)" ] || vm_die "the mapping is left: $(field MAPPING)"
	[ "$(field KEYS)" = 0 ] || vm_die "keyscope kernel keys left: $(field KEYS)"
	field CONSUMERS | tr -d ' ' | grep -q "\"key-id\":\"$id\",[^}]*\"add\":false" ||
		vm_die "consumers.json does not keep the removal: $(field CONSUMERS)"
	echo "kept for later: $(field CONSUMERS)"

	t0=$(date +%s)
	while [ -n "$(consumers "$id")" ]; do
		[ $(($(date +%s) - t0)) -le 120 ] || vm_die "still a consumer of $id 120 s into the test: $(consumers "$id"); keyscoped: $(journalctl -b -u keyscoped -o cat | tail -n 15)"
		sleep 2
	done
	echo "the consumer is gone from Barbican $(($(date +%s) - t0)) s into the test"
	j=$(journalctl -b -u keyscoped -o cat)
	echo "$j" | grep -q "Carrying on 1 Barbican consumer changes from the previous run" ||
		vm_die "keyscoped did not carry the removal on: $(echo "$j" | tail -n 20)"
	echo "$j" | grep -q "Removed volume .* as a consumer of secret $id" ||
		vm_die "keyscoped did not say it removed the consumer"
	echo "second boot: the removal sent, Barbican lists no consumer of $id"
}

case ${1-} in
up) up ;;
report) report ;;
after) after ;;
*) vm_die "usage: t-boot-shutdown.sh up|report|after (in the guest)" ;;
esac
