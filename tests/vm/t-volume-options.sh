#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M --disk ob:64M
# crypttab's discard and performance options reach the dm-crypt table: keyscopectl attach
# --discard --same-cpu-crypt --submit-from-crypt-cpus --no-read-workqueue --no-write-workqueue
# (what /etc/keyscope/volumes' options become, keyscope-volumes(5)); without them the table has
# none; and the activation flags a LUKS2 header keeps (cryptsetup open --persistent
# --allow-discards) are honoured on a plain attach, as cryptsetup open honours them.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

vol=$(vm_disk vol)
ob=$(vm_disk ob)
ks_start
# no_read_workqueue/no_write_workqueue came with dm-crypt 1.22 (Linux 5.9)
modprobe dm_crypt 2>/dev/null || true
ver=$(dmsetup targets | awk '$1 == "crypt" { print $2 }')
[ -n "$ver" ] || vm_skip "no dm-crypt target in this kernel"
IFS=v. read -r _ maj min _ <<<"$ver"
wq=1
[ "$maj" -gt 1 ] || [ "$min" -ge 22 ] || wq=0

id=$(ks key create)
ks format "$vol" --key "$id" >/dev/null
ks attach "$vol" --name plainopts >/dev/null
table=$(dmsetup table plainopts)
case $table in *allow_discards*|*same_cpu*|*workqueue*) vm_die "flags without options: $table" ;; esac
ks detach plainopts >/dev/null

if [ $wq = 1 ]; then
	ks attach "$vol" --name opts --discard --same-cpu-crypt --submit-from-crypt-cpus \
		--no-read-workqueue --no-write-workqueue >/dev/null
	want="allow_discards same_cpu_crypt submit_from_crypt_cpus no_read_workqueue no_write_workqueue"
else
	ks attach "$vol" --name opts --discard --same-cpu-crypt --submit-from-crypt-cpus >/dev/null
	want="allow_discards same_cpu_crypt submit_from_crypt_cpus"
fi
table=$(dmsetup table opts)
echo "$table"
for w in $want; do
	grep -qw "$w" <<<"$table" || vm_die "table lacks $w: $table"
done
ks detach opts >/dev/null

# A LUKS2 header's persistent flags: set by cryptsetup with a passphrase (os-brick's way),
# honoured by keyscope's attach with no option given.
hex=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
printf '%s' "$hex" | cryptsetup --batch-mode luksFormat --type luks2 --pbkdf pbkdf2 \
	--pbkdf-force-iterations 1000 --key-size 256 --key-file=- "$ob"
printf '%s' "$hex" | cryptsetup open --persistent --allow-discards --key-file=- "$ob" obtmp
cryptsetup close obtmp
cryptsetup luksDump "$ob" | grep -E '^Flags:.*allow-discards' ||
	vm_die "cryptsetup did not store the flag: $(cryptsetup luksDump "$ob" | grep Flags)"
obid=$(printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | ks key import --name ob)
hex=
ks attach "$ob" --key "$obid" --passphrase hex --name obopts >/dev/null
table=$(dmsetup table obopts)
grep -qw allow_discards <<<"$table" || vm_die "the header's allow-discards not honoured: $table"
ks detach obopts >/dev/null
ks_stop
echo ok
