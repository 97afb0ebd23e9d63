# SPDX-License-Identifier: LGPL-2.1-or-later
# Host-side helper for real-boot tests (tests/vm/run --systemd --seed DIR): boot_seed DIR B TOP
# lays out in DIR what an installed node has before boot, with the build in B (TOP the
# checkout): keyscoped.service and the generator pointing at B, the udev rule, an fstab that
# mounts the "state" disk at /var/lib/keyscope, an emergency mode that ends the boot at once
# with the journal, and remote-fs.target pulled in as multi-user.target would. The caller
# adds /etc/keyscope/keyscoped.conf, /etc/keyscope/volumes and more fstab lines.
# shellcheck shell=bash

boot_seed() {
	local S=$1 B=$2 top=$3 d=$1/etc/systemd/system
	mkdir -p "$S/etc/keyscope" "$d/keyscoped.service.d" "$d/keyscope-volume@.service.d" \
		"$S/etc/systemd/system-generators" "$S/etc/udev/rules.d" "$d/keyscope-vm.target.wants" \
		"$d/emergency.service.d"
	printf '%s\n' '/dev/disk/by-id/virtio-state /var/lib/keyscope ext4 defaults,x-systemd.device-timeout=300s 0 2' \
		>"$S/etc/fstab"
	sed -e "s|^ExecStart=/usr/sbin/keyscoped|ExecStart=$B/keyscoped|" \
		"$top/systemd/keyscoped.service" >"$d/keyscoped.service"
	printf '[Service]\nPrivateTmp=no\nProtectHome=no\n' >"$d/keyscoped.service.d/build-path.conf"
	printf '[Service]\nProtectHome=no\n' >"$d/keyscope-volume@.service.d/build-path.conf"
	printf '#!/bin/sh\nKEYSCOPECTL=%s exec %s "$@"\n' "$B/keyscopectl" "$B/keyscope-generator" \
		>"$S/etc/systemd/system-generators/keyscope-generator"
	chmod 755 "$S/etc/systemd/system-generators/keyscope-generator"
	sed -e "s|/usr/bin/keyscopectl|$B/keyscopectl|g" "$top/udev/69-keyscope.rules" \
		>"$S/etc/udev/rules.d/69-keyscope.rules"
	cat >"$d/emergency.service.d/keyscope-vm.conf" <<-'UNIT'
	[Service]
	ExecStartPre=-/bin/sh -c 'R=/run/keyscope-vm; systemctl --failed --no-pager >$R/stderr 2>&1; journalctl -b --no-pager -o short-monotonic >$R/journal 2>&1; echo 1 >$R/status.tmp && mv $R/status.tmp $R/status; sync'
	ExecStartPre=-/bin/systemctl --force poweroff
	UNIT
	ln -s /lib/systemd/system/remote-fs.target "$d/keyscope-vm.target.wants/"
}
