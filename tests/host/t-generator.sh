#!/bin/bash
# keyscope-generator: /etc/keyscope/volumes (and volumes.d/*.conf) -> one unit per good line,
# ordered as systemd-cryptsetup-generator orders the same crypttab line; remote keys after the
# network; each bad line one message with file and line, the good lines still get their units;
# every generated unit passes `systemd-analyze verify`.
. "$(dirname "$0")/lib.sh"
GEN=$KEYSCOPE_BUILDDIR/keyscope-generator
[ -x "$GEN" ] || fail "no $GEN: make all"
out=$T/out
mkdir -p "$out" "$T/volumes.d" "$STATE/keys"
u1=0b5e7a52-1111-2222-3333-444455556666
cat >"$T/volumes" <<VOL
# the node's volumes
data   UUID=$u1  localkey   nofail,discard,x-systemd.device-timeout=30s
logs   /dev/disk/by-path/pci-0000:00:05.0  localkey  readonly,no-read-workqueue,no-write-workqueue
net    PARTUUID=6f1c-01  localkey  _netdev
bar    LABEL=bar/1  remotekey
tok    /dev/vdq
later  /dev/vdr  localkey  noauto,same-cpu-crypt,submit-from-crypt-cpus
plain1 /dev/vds  localkey  plain,cipher=aes-xts-plain64,size=512,offset=8,sector-size=4096
osb    /dev/vdt  localkey  passphrase=hex
bad1   UUID=$u1  -  nofial
bad2   vdb
data   /dev/vdz
VOL
printf 'extra /dev/vdu - nofail\nbad3 /dev/vdv /etc/key.bin\n' >"$T/volumes.d/50-extra.conf"
printf 'ignored /dev/vdw\n' >"$T/volumes.d/README"
touch "$STATE/keys/localkey.key"
printf '[keyscoped]\nstate-dir = %s\nbarbican-url = https://kms.example:9311\n' \
	"$STATE" >"$T/keyscoped.conf"

# fstab: mounts of declared volumes' /dev/mapper/NAME (one with a blank in its mount point),
# one noauto, one of an undeclared mapping, a comment
cat >"$T/fstab" <<'FSTAB'
/dev/mapper/data   /srv/data      ext4 defaults,nofail 0 2
/dev/mapper/logs   /var/my\040logs ext4 nofail         0 2
/dev/mapper/bar    /mnt/bar       ext4 noauto          0 0
/dev/mapper/other  /mnt/other     ext4 defaults        0 0
# /dev/mapper/net  /mnt/net       ext4 defaults        0 0
FSTAB

run_gen() {
	KEYSCOPE_VOLUMES_FILE=$T/volumes KEYSCOPE_VOLUMES_DIR=$T/volumes.d \
		KEYSCOPE_CONFIG=$T/keyscoped.conf KEYSCOPE_FSTAB=$T/fstab KEYSCOPECTL=$KEYSCOPECTL \
		"$GEN" "$@"
}
run_gen "$out" "$T/early" "$T/late" 2>"$T/err" || fail "generator failed: $(cat "$T/err")"

# one message per bad line, naming file, line and the word at fault
[ "$(wc -l <"$T/err")" = 4 ] || fail "expected 4 messages, got: $(cat "$T/err")"
grep -q "$T/volumes:10: unknown option 'nofial'" "$T/err" || fail "bad1: $(cat "$T/err")"
grep -q "$T/volumes:11: .*device 'vdb' is not an absolute path" "$T/err" || fail "bad2"
grep -q "$T/volumes:12: name 'data' is already declared at $T/volumes:2" "$T/err" || fail "dup"
grep -q "$T/volumes.d/50-extra.conf:2: key '/etc/key.bin' is not a key-id" "$T/err" || fail "bad3"

units=$(cd "$out" && ls keyscope-volume@*.service | sort | tr '\n' ' ')
expect_eq "$units" "keyscope-volume@bar.service keyscope-volume@data.service \
keyscope-volume@extra.service keyscope-volume@later.service keyscope-volume@logs.service \
keyscope-volume@net.service keyscope-volume@osb.service keyscope-volume@plain1.service \
keyscope-volume@tok.service " "generated units"

has() { # UNIT LINE...: each line is in the unit
	local u=$1; shift
	for l in "$@"; do
		grep -qxF -- "$l" "$out/keyscope-volume@$u.service" || fail "$u lacks '$l'"
	done
}
hasnt() {
	local u=$1; shift
	for l in "$@"; do
		! grep -qxF -- "$l" "$out/keyscope-volume@$u.service" || fail "$u has '$l'"
	done
}
link() { # DIR UNIT: DIR/UNIT links to ../UNIT
	[ "$(readlink "$out/$1/$2")" = "../$2" ] || fail "no link $1/$2"
}
nolink() { [ ! -e "$out/$1/$2" ] && [ ! -L "$out/$1/$2" ] || fail "unexpected link $1/$2"; }

dev1='dev-disk-by\x2duuid-0b5e7a52\x2d1111\x2d2222\x2d3333\x2d444455556666.device'
# a local key, nofail: wanted (not required) by cryptsetup.target, which does not wait for it
has data "BindsTo=$dev1" "After=$dev1" "Wants=blockdev@dev-mapper-data.target" \
	"Before=blockdev@dev-mapper-data.target" "After=keyscoped.service" \
	"Wants=keyscoped.service" "Conflicts=umount.target" "Before=umount.target" \
	"SourcePath=$T/volumes" \
	"ExecStart=$KEYSCOPECTL --timeout 60 attach \"/dev/disk/by-uuid/$u1\" --name data --pending --key localkey --discard" \
	"ExecStop=$KEYSCOPECTL --timeout 30 detach data"
hasnt data "Before=cryptsetup.target" "After=network-online.target"
link cryptsetup.target.wants keyscope-volume@data.service
nolink cryptsetup.target.requires keyscope-volume@data.service
link dev-mapper-data.device.requires keyscope-volume@data.service
grep -qx 'JobRunningTimeoutSec=30000000us' "$out/$dev1.d/40-keyscope-device-timeout.conf" ||
	fail "no device timeout for data"

# a key in the local store: before cryptsetup.target, required by it, no network
has logs 'BindsTo=dev-disk-by\x2dpath-pci\x2d0000:00:05.0.device' "Before=cryptsetup.target" \
	"ExecStart=$KEYSCOPECTL --timeout 60 attach \"/dev/disk/by-path/pci-0000:00:05.0\" --name logs --key localkey --read-only --no-read-workqueue --no-write-workqueue"
hasnt logs "After=network-online.target" "Before=remote-cryptsetup.target"
link cryptsetup.target.requires keyscope-volume@logs.service

# remote: _netdev, a key-id the store lacks while barbican-url is set, a key-id from the token
for u in net bar tok; do
	has $u "After=remote-fs-pre.target network-online.target" "Wants=network-online.target" \
		"Before=remote-cryptsetup.target"
	hasnt $u "Before=cryptsetup.target"
	link remote-cryptsetup.target.requires keyscope-volume@$u.service
	link remote-fs.target.wants keyscope-volume@$u.service
done
has bar 'BindsTo=dev-disk-by\x2dlabel-bar\x5cx2f1.device' \
	"ExecStart=$KEYSCOPECTL --timeout 60 attach \"/dev/disk/by-label/bar\\\\x2f1\" --name bar --key remotekey"

# noauto: nothing pulls it in but its decrypted device (a mount of /dev/mapper/later)
for t in cryptsetup.target.requires cryptsetup.target.wants remote-cryptsetup.target.requires; do
	nolink $t keyscope-volume@later.service
done
link dev-mapper-later.device.requires keyscope-volume@later.service
has later "ExecStart=$KEYSCOPECTL --timeout 60 attach \"/dev/vdr\" --name later --key localkey --same-cpu-crypt --submit-from-crypt-cpus"
has plain1 "ExecStart=$KEYSCOPECTL --timeout 60 attach \"/dev/vds\" --name plain1 --key localkey --plain --cipher aes-xts-plain64 --key-size 512 --offset 8 --sector-size 4096"
has osb "ExecStart=$KEYSCOPECTL --timeout 60 attach \"/dev/vdt\" --name osb --key localkey --passphrase hex"
[ ! -e "$out/keyscope-volume@ignored.service" ] || fail "read a drop-in not named *.conf"
# crypttab's meaning of nofail: only a nofail volume is kept pending while its key source does
# not answer (its unit succeeds); without nofail the attach fails and so does the unit
has extra "ExecStart=$KEYSCOPECTL --timeout 60 attach \"/dev/vdu\" --name extra --pending"
for u in logs net bar tok later plain1 osb; do
	! grep -q -- '--pending' "$out/keyscope-volume@$u.service" || fail "$u (not nofail) asks --pending"
done

# fstab's mounts of a declared /dev/mapper/NAME are wanted by its device: a nofail mount whose
# volume was pending at boot is mounted when the volume comes up later
[ -L "$out/dev-mapper-data.device.wants/srv-data.mount" ] || fail "no wants link for srv-data.mount"
[ -L "$out/dev-mapper-logs.device.wants/var-my\x20logs.mount" ] ||
	fail "no wants link for the escaped mount point: $(ls "$out"/dev-mapper-logs.device.wants 2>&1)"
[ ! -e "$out/dev-mapper-bar.device.wants" ] || fail "a noauto mount is wanted"
[ ! -e "$out/dev-mapper-other.device.wants" ] || fail "an undeclared mapping's mount is wanted"
[ ! -e "$out/dev-mapper-net.device.wants" ] || fail "a commented fstab line is wanted"

# Without a remote source every key is local, _netdev still orders after the network.
sed -i '/barbican-url/d' "$T/keyscoped.conf"
rm -rf "$T/out2"; mkdir "$T/out2"
run_gen "$T/out2" 2>/dev/null || fail "generator failed with one argument"
grep -qx "Before=cryptsetup.target" "$T/out2/keyscope-volume@bar.service" || fail "bar not local"
grep -qx "Before=remote-cryptsetup.target" "$T/out2/keyscope-volume@net.service" || fail "net"

# Nothing declared: nothing generated, no message.
KEYSCOPE_VOLUMES_FILE=$T/none KEYSCOPE_VOLUMES_DIR=$T/none "$GEN" "$T/out3" 2>"$T/err3" ||
	fail "generator failed without a volumes file"
[ ! -s "$T/err3" ] && [ -z "$(ls -A "$T/out3" 2>/dev/null)" ] || fail "output without volumes"

# The man pages name every option the parser knows, and render without a warning.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
page=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$ROOT/docs/keyscope-volumes.5")
for w in $(sed -n 's/^\t{ "\([a-z_.-]*\)", VOLUME_.*/\1/p; s/^\t"\(x-systemd[a-z.-]*=\)", .*/\1/p' \
	"$ROOT/lib/volumes.c") cipher= size= offset= sector-size= passphrase=hex; do
	grep -qF -- "$w" <<<"$page" || fail "keyscope-volumes(5) lacks option $w"
done
if command -v groff >/dev/null; then
	for m in "$ROOT/docs/keyscope-volumes.5" "$ROOT/docs/keyscope-generator.8"; do
		o=$(groff -man -Tutf8 -ww -z "$m" 2>&1) && [ -z "$o" ] || fail "groff on $m: $o"
	done
fi

# systemd's own check of every unit, from the generator's folder as systemd would load it.
command -v systemd-analyze >/dev/null || skip "systemd-analyze missing (apt-get install systemd); the units were checked by content only"
for f in "$out"/keyscope-volume@*.service; do
	(cd "$out" && systemd-analyze verify --man=no "./$(basename "$f")") >"$T/verify" 2>&1 || true
	if grep -i keyscope "$T/verify" | grep -v 'keyscoped.service' | grep -q .; then
		fail "systemd-analyze verify $(basename "$f"): $(cat "$T/verify")"
	fi
done
echo ok
