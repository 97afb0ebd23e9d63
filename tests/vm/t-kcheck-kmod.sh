#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm:
# keyscopectl check loads a missing dm_crypt with libkmod, as modprobe would: with dm_crypt
# removed, "check --no-load" reports the crypt target missing and fails; "check" without a
# module tree says which tree is missing and fails; with the kernel's module tree and its
# depmod index in place, "check" loads dm_crypt, reports the crypt target ok and exits 0.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"

B=${KEYSCOPE_BUILDDIR:-$KEYSCOPE_TOP/build/out}
abi=$(uname -r)
tree=$KEYSCOPE_TOP/build/vm/kernel/$abi/lib/modules/$abi
[ -d "$tree" ] || vm_skip "no module tree for $abi at $tree (KEYSCOPE_VM_CACHE elsewhere?)"
command -v depmod >/dev/null || vm_skip "depmod (kmod) is not installed on the host: make deps"
[ -e /proc/modules ] || vm_die "the guest kernel cannot load modules"

# The guest's init loaded dm_crypt; nothing uses it yet, so it can go.
dmsetup targets | grep -q '^crypt ' || vm_die "no crypt target at start"
rmmod dm_crypt
dmsetup targets | grep -q '^crypt ' && vm_die "the crypt target is still there after rmmod"
echo "dm_crypt removed: $(dmsetup targets | tr '\n' ' ')"

# Quick mode: PID 1 is the initramfs's init, whose root has no /sbin/request-key. Leave the
# upcall out of this test: it is not needed with request-key-uids empty.
conf=$(mktemp)
echo "request-key-uids =" >"$conf"
status() { sed -nE "s/^([a-z]+( \(not needed\))?) +$1 .*/\1/p" "$out"; }
out=$(mktemp)
rc=0
"$B/keyscopectl" check --config "$conf" --no-load >"$out" || rc=$?
grep dm-crypt "$out"
[ $rc = 1 ] || vm_die "check --no-load exited $rc without a crypt target"
[ "$(status dm-crypt)" = missing ] || vm_die "dm-crypt is not reported missing"
grep -q "fix: load it: modprobe dm_crypt" "$out" || vm_die "no fix for the missing crypt target"

rc=0
"$B/keyscopectl" check --config "$conf" >"$out" || rc=$?
grep dm-crypt "$out"
[ $rc = 1 ] || vm_die "check exited $rc with no module tree"
grep -q "no module dm_crypt for kernel $abi under /lib/modules/$abi" "$out" ||
	vm_die "the missing module tree is not named"

# The kernel's modules, as its package would install them (only what dm_crypt needs, to keep
# depmod quick over 9p), and their index.
m=/lib/modules/$abi
mkdir -p "$m/kernel/drivers/md"
cp "$tree/kernel/drivers/md/dm-crypt.ko" "$tree/kernel/drivers/md/dm-mod.ko" "$m/kernel/drivers/md/"
cp "$tree/modules.builtin" "$tree/modules.builtin.modinfo" "$tree/modules.order" "$m/"
depmod -a "$abi"
rc=0
"$B/keyscopectl" check --config "$conf" >"$out" || rc=$?
cat "$out"
[ $rc = 0 ] || vm_die "check exited $rc after it could load dm_crypt"
[ "$(status dm-crypt)" = ok ] || vm_die "dm-crypt is not ok"
grep -q "dm_crypt loaded now" "$out" || vm_die "check does not say it loaded dm_crypt"
[ -d /sys/module/dm_crypt ] || vm_die "dm_crypt is not loaded"
dmsetup targets | grep '^crypt ' || vm_die "no crypt target after check"
rm -f "$out" "$conf"
