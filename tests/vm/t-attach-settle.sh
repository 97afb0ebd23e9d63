#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --systemd --disk slow:32M --disk quick:32M --disk late:32M --timeout 900
# An attach waits for udev to make /dev/mapper/NAME (as cryptsetup open does) without stopping
# keyscoped meanwhile (daemon/volumes/settle.h). A udev rule of this test holds the event of
# the mapping "slow" for a while (as a udev busy with the coldplug of every disk at boot
# does): while its attach waits, another client's attach of "quick" is served and returns,
# and `keyscopectl status` answers; the attach of "slow" returns once udev is done, with its
# node there. keyscoped stopped while an attach waits for udev stops at once, and the volume
# it had attached is still its own at the next start.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

HOLD=25.0417	# seconds udev holds the events of the mappings slow and late (an odd
		# figure: its sleep is told from others by its command line)
rule=/run/udev/rules.d/90-keyscope-test-hold.rules
cleanup() {
	_rc0=$?
	rm -f "$rule"
	udevadm control --reload 2>/dev/null || true
	pkill -fx "/bin/sleep $HOLD" 2>/dev/null || true
	(exit $_rc0)
	ks_cleanup
}
trap cleanup EXIT

ks_start
id=$(ks key create)
for d in slow quick late; do
	ks format "$(vm_disk $d)" --key "$id" >/dev/null
done
vm_settle
mkdir -p /run/udev/rules.d
# Before 95-dm-notify.rules, whose RUN completes the attach's udev cookie.
cat >"$rule" <<RULE
SUBSYSTEM=="block", ACTION=="change", ENV{DM_NAME}=="slow|late", RUN+="/bin/sleep $HOLD"
RULE
udevadm control --reload

# wait_table NAME: until keyscoped has loaded the table of NAME (its attach then waits for udev)
wait_table() {
	_n=0
	until dmsetup info "$1" >/dev/null 2>&1; do
		_n=$((_n + 1))
		[ $_n -le 300 ] || vm_die "no mapping $1 after 30 s"
		sleep 0.1
	done
}

ks attach "$(vm_disk slow)" --name slow >"$KS_DIR/slow.out" 2>&1 &
slow=$!
wait_table slow
ks attach "$(vm_disk quick)" --name quick >/dev/null ||
	vm_die "the attach of quick failed while slow's waited for udev"
[ -b /dev/mapper/quick ] || vm_die "quick's attach returned before its node existed"
ks status >/dev/null || vm_die "status did not answer while an attach waited for udev"
kill -0 "$slow" 2>/dev/null ||
	vm_die "slow's attach returned before udev had run its rules (it held them $HOLD s)"
pgrep -fx "/bin/sleep $HOLD" >/dev/null || vm_die "the udev rule did not hold slow's event"
echo "quick attached and status answered while slow's attach waited for udev"
wait "$slow" || { cat "$KS_DIR/slow.out"; vm_die "the attach of slow failed"; }
[ -b /dev/mapper/slow ] || vm_die "slow's attach returned without /dev/mapper/slow"
grep -q "/dev/mapper/slow" "$KS_DIR/slow.out" || vm_die "slow's attach said: $(cat "$KS_DIR/slow.out")"
echo "slow attached once udev was done"

# Stopped while an attach waits for udev: keyscoped ends at once (the client is told, or its
# connection closes), the mapping is recorded and found at the next start.
ks attach "$(vm_disk late)" --name late >"$KS_DIR/late.out" 2>&1 &
late=$!
wait_table late
ks_stop || vm_die "keyscoped did not stop cleanly while an attach waited for udev"
pgrep -fx "/bin/sleep $HOLD" >/dev/null ||
	vm_die "keyscoped stopped only once udev was done with late (not while it waited)"
wait "$late" 2>/dev/null || true
echo "keyscoped stopped while late's attach waited for udev"
ks_start
ks --json status | tr -d ' \n' | grep -q '"name":"late"' ||
	vm_die "late is not keyscoped's after the restart: $(ks status)"
for v in slow quick late; do
	ks detach "$v" >/dev/null || vm_die "detach $v"
done
[ -z "$(dmsetup ls --target crypt | grep -E '^(slow|quick|late)\s')" ] || vm_die "mappings left"
echo ok
