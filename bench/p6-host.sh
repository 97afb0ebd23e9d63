#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# The host side of bench/vm-p6.sh (what it measures is described there): makes the GPT disk
# images, formats the volumes (bench/p6-prep.sh), seeds each boot as an installed node has it, boots the
# --systemd guest once per configuration, one after another, and prints the table.
# usage: bench/p6-host.sh bench/vm-p6.sh   (bench/vm-p6.sh execs it on the host)
set -eu
script=$(readlink -f "$1")
top=$(cd "$(dirname "$0")/.." && pwd -P)
B=${KEYSCOPE_BUILDDIR:-$top/build/out}
N=${P6_VOLUMES:-200} NA=${P6_ARGON_VOLUMES:-200} MEM=${P6_ARGON_MEM:-65536} ITER=${P6_ARGON_ITER:-4}
die() { echo "vm-p6: $*" >&2; exit 1; }
num() { [[ $2 =~ ^[0-9]+$ ]] && [ "$2" -ge "$3" ] && [ "$2" -le "$4" ] ||
	die "$1=$2: want a whole number from $3 to $4"; }
num P6_VOLUMES "$N" 1 250
num P6_ARGON_VOLUMES "$NA" 0 250
num P6_ARGON_MEM "$MEM" 8192 1048576
num P6_ARGON_ITER "$ITER" 4 1000
[ "$(id -u)" = 0 ] || die "the guests' disk images and seeds are root's: run as root"
for f in keyscoped keyscopectl keyscope-generator; do
	[ -x "$B/$f" ] || die "no $B/$f: run make first"
done
export KEYSCOPE_BUILDDIR=$B KEYSCOPE_P6_VOLUMES=$N KEYSCOPE_P6_ARGON_VOLUMES=$NA

T=$(mktemp -d "${TMPDIR:-/tmp}/keyscope-p6.XXXXXX")
chmod 700 "$T"
if [ "${P6_KEEP:-0}" = 1 ]; then
	trap 'echo "vm-p6: kept $T" >&2' EXIT
else
	trap 'rm -rf "$T"' EXIT
fi
say() { printf 'vm-p6: %s\n' "$*" >&2; }

# Every volume a 20 MiB partition (LUKS2's default 16 MiB header and some data); p6-aux
# holds keyscoped's state (an ext4) or the crypttab key (raw).
gpt() { /usr/bin/python3 "$top/bench/p6-gpt.py" "$T/$1.img" "$2" 20 "$3" >"$T/$1.parts"; }
gpt ks "$N" 64
gpt pb "$N" 1
[ "$NA" = 0 ] || gpt ar "$NA" 1

keyctl session p6-prep "$top/bench/p6-prep.sh" "$T" "$N" "$NA" "$MEM" "$ITER" ||
	die "formatting the volumes failed"

# seed_common DIR: what every boot has: a boot that ends in emergency mode ends the guest at
# once with the journal, not at the timeout.
seed_common() {
	mkdir -p "$1/etc/systemd/system/emergency.service.d"
	cat >"$1/etc/systemd/system/emergency.service.d/keyscope-vm.conf" <<-'UNIT'
	[Service]
	ExecStartPre=-/bin/sh -c 'R=/run/keyscope-vm; systemctl --failed --no-pager >$R/stderr 2>&1; journalctl -b --no-pager -o short-monotonic >$R/journal 2>&1; echo 1 >$R/status.tmp && mv $R/status.tmp $R/status; sync'
	ExecStartPre=-/bin/systemctl --force poweroff
	UNIT
}

# seed_ks DIR: make install's units, rule and generator (the build's binaries), the volumes
# file declaring every partition by PARTUUID=, and fstab mounting keyscoped's state.
seed_ks() {
	local S=$1 d=$1/etc/systemd/system
	mkdir -p "$S/etc/keyscope" "$d/keyscoped.service.d" "$d/keyscope-volume@.service.d" \
		"$S/etc/systemd/system-generators" "$S/etc/udev/rules.d"
	seed_common "$S"
	awk '$1 != "p6-aux" { sub(/^p6-/, "v", $1); print $1, "PARTUUID=" $2, "-" }' \
		"$T/ks.parts" >"$S/etc/keyscope/volumes"
	echo "/dev/disk/by-partlabel/p6-aux /var/lib/keyscope ext4 defaults,x-systemd.device-timeout=300s 0 2" \
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
}

# seed_cs DIR IMAGE: /etc/crypttab opening every partition of IMAGE with the key on p6-aux.
seed_cs() {
	mkdir -p "$1/etc"
	seed_common "$1"
	awk '$1 != "p6-aux" { sub(/^p6-/, "cs", $1)
		print $1, "PARTUUID=" $2, "/dev/disk/by-partlabel/p6-aux", "keyfile-size=64" }' \
		"$T/$2.parts" >"$1/etc/crypttab"
}

seed_ks "$T/seed-ks"
seed_cs "$T/seed-pb" pb
boots="ks:ks pbkdf2:pb"
if [ "$NA" -gt 0 ]; then
	seed_cs "$T/seed-ar" ar
	boots="$boots argon:ar"
fi
for b in $boots; do
	what=${b%%:*} img=${b#*:}
	# P6_BOOTS="ks" (a profile of keyscope's boot alone): the others are left out
	case " ${P6_BOOTS:-ks pbkdf2 argon} " in *" $what "*) ;; *) continue ;; esac
	t0=$SECONDS
	"$top/tests/vm/run" --systemd --timeout 1800 --seed "$T/seed-$img" \
		--disk-image "$img:$T/$img.img" "$script" "$what" >"$T/boot-$what" 2>&1 ||
		{ cat "$T/boot-$what" >&2; die "the $what boot failed"; }
	grep -v '^P6 ' "$T/boot-$what" | sed "s/^/  $what | /" >&2 || true
	say "$what boot: $((SECONDS - t0)) s"
done

[ -n "${P6_BOOTS-}" ] || "$top/bench/p6-table.sh" "$T" "$N" "$NA" "$MEM" "$ITER"
