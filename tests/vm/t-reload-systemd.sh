#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --systemd
# systemctl reload keyscoped, with keyscoped.service as make install writes it: ExecReload=
# signals the running daemon (same MainPID, still active), which reads the drop-ins in
# /etc/keyscope/keyscoped.conf.d and /run/keyscope/keyscoped.conf.d (the /etc file masking the
# same name in /run) and applies a changed client-timeout; a bad drop-in is refused in the
# journal with its file and line and the service stays active; a drop-in in /run survives a
# restart of the service (RuntimeDirectoryPreserve=).
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"

B=${KEYSCOPE_BUILDDIR:-$KEYSCOPE_TOP/build/out}
unset KEYSCOPE_SOCKET
state=$(mktemp -d /run/keyscope-reload.XXXXXX)
U=/run/systemd/system
etc=/etc/keyscope/keyscoped.conf.d
run=/run/keyscope/keyscoped.conf.d

cleanup() {
	rc=$?
	[ $rc = 0 ] || journalctl --no-pager -q -u keyscoped.service | tail -n 25 || true
	systemctl stop keyscoped.service 2>/dev/null || true
	rm -rf "$etc"
	exit $rc
}
trap cleanup EXIT

mkdir -p "$U/keyscoped.service.d"
sed -e "s|^ExecStart=/usr/sbin/keyscoped \(.*\)|ExecStart=$B/keyscoped \1 --state-dir $state/state|" \
	"$KEYSCOPE_TOP/systemd/keyscoped.service" >"$U/keyscoped.service"
grep -q '^ExecReload=' "$U/keyscoped.service" || vm_die "the unit has no ExecReload="
printf '[Service]\nReadWritePaths=%s\n' "$state" >"$U/keyscoped.service.d/test.conf"
printf '[Service]\nPrivateTmp=no\nProtectHome=no\n' >"$U/keyscoped.service.d/build-path.conf"
systemctl daemon-reload
keyctl link @u @s
systemctl start keyscoped.service
pid=$(systemctl show -P MainPID keyscoped.service)
[ "$pid" -gt 0 ] || vm_die "no MainPID"

# journal_wait N PATTERN: the unit's journal has N lines with PATTERN (fixed string) in 20 s.
journal_wait() {
	_i=0
	until [ "$(journalctl --no-pager -q -u keyscoped.service | grep -cF -- "$2")" -ge "$1" ]; do
		_i=$((_i + 1))
		[ $_i -le 100 ] || vm_die "no '$2' in the journal"
		sleep 0.2
	done
}

mkdir -p "$etc" "$run"
printf 'client-timeout = 7\n' >"$run/50-node.conf"
printf 'client-timeout = 5\n' >"$etc/50-node.conf"	# masks /run's file of that name
printf 'max-clients = 100\n' >"$run/40-generated.conf"
systemctl reload keyscoped.service
journal_wait 1 "Reloaded the configuration"
journalctl --no-pager -q -u keyscoped.service | grep -F "Reload" | sed 's/^.*keyscoped[^:]*: //'
journalctl --no-pager -q -u keyscoped.service | grep -qF "Reload: client-timeout = 5 (was 30), applied." ||
	vm_die "client-timeout from /etc not applied"
journalctl --no-pager -q -u keyscoped.service | grep -qF "Reload: max-clients = 100 (was 256), applied." ||
	vm_die "the drop-in in /run not applied"
[ "$(systemctl show -P MainPID keyscoped.service)" = "$pid" ] || vm_die "reload restarted keyscoped"
[ "$(systemctl show -P ActiveState keyscoped.service)" = active ] || vm_die "not active after reload"
"$B/keyscopectl" status >/dev/null || vm_die "keyscoped does not answer after the reload"

printf '\nclient-timeout = soon\n' >"$etc/60-bad.conf"
systemctl reload keyscoped.service
journal_wait 1 "Reload refused"
journalctl --no-pager -q -u keyscoped.service | grep -qF "$etc/60-bad.conf:2: invalid value for 'client-timeout'" ||
	vm_die "the bad drop-in is not named with its line"
[ "$(systemctl show -P ActiveState keyscoped.service)" = active ] || vm_die "not active after a bad reload"
[ "$(systemctl show -P MainPID keyscoped.service)" = "$pid" ] || vm_die "a bad reload restarted keyscoped"
echo "bad drop-in refused: $(journalctl --no-pager -q -u keyscoped.service | grep -F 60-bad.conf | sed 's/^.*keyscoped[^:]*: //')"

rm "$etc/60-bad.conf"
systemctl restart keyscoped.service
[ -e "$run/40-generated.conf" ] || vm_die "a restart removed the drop-ins in /run/keyscope"
[ "$(systemctl show -P ActiveState keyscoped.service)" = active ] || vm_die "not active after restart"
echo ok
