#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M --disk other:32M --timeout 900
# A recovery keyslot: format --recovery-passphrase adds one LUKS2 keyslot (Argon2id) holding the
# volume key, derived in the keyscope-unlock helper while keyscoped goes on answering; data
# written through keyscope's mapping is read back by plain `cryptsetup open` with the
# passphrase once keyscoped is stopped; a wrong passphrase opens nothing. `recovery remove`
# leaves no keyslot, and attach by keyring reference still works, without ever having used it.
# Refusals: a second keyslot, a volume without a keyscope token, removing what is not there.
# The passphrase is in no argv, no environment and not in keyscoped's log.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

vol=$(vm_disk vol)
other=$(vm_disk other)
pass="recovery-7f3c-horse-battery"
ks_start
id=$(ks key create)

# Format with a recovery passphrase from stdin; meanwhile keyscoped answers other clients.
# (printf is a builtin: the passphrase goes through a pipe, in no argv and no file.)
( rc=0; printf '%s\n' "$pass" | ks format "$vol" --key "$id" --recovery-passphrase \
	--passphrase-stdin >"$KS_DIR/format.out" 2>&1 || rc=$?; echo $rc >"$KS_DIR/format.rc" ) &
answered=0 scanned=0
while [ ! -e "$KS_DIR/format.rc" ]; do
	if grep -q "Unlocking a keyslot of $vol" "$KS_LOG" && ! grep -q "Keyslot add of" "$KS_LOG"
	then
		ks status >/dev/null || vm_die "status failed during the keyslot derivation"
		answered=$((answered + 1))
	fi
	# Once, while the helper derives and after some calls were answered: no argv or
	# environment of any process holds the passphrase (one grep over all of them, the pattern
	# on its stdin, not in its argv); the helper's own argv is the positive control.
	if [ $scanned = 0 ] && [ $answered -ge 3 ] &&
	   grep -alE -e "--add-keyslo[t]" /proc/[0-9]*/cmdline >"$KS_DIR/helper" 2>/dev/null; then
		scanned=$(wc -l <"$KS_DIR/helper")
		if printf '%s\n' "$pass" |
		   grep -alF -f - /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null; then
			vm_die "the passphrase is in the argv or environment of the processes above"
		fi
	fi
	sleep 0.1
done
cat "$KS_DIR/format.out"
[ "$(cat "$KS_DIR/format.rc")" = 0 ] || vm_die "format --recovery-passphrase failed"
grep -q "recovery keyslot 0 holds the volume key of $id" "$KS_DIR/format.out" ||
	vm_die "format did not report the keyslot"
[ $answered -gt 0 ] || vm_die "no status call was made during the derivation (too fast to see?)"
[ $scanned -gt 0 ] || vm_die "the helper was not seen running: argv and environment not scanned"
echo "keyscoped answered $answered status calls while the keyslot was derived;" \
	"no argv or environment held the passphrase"
grep "Keyslot add of $vol took" "$KS_LOG" | sed 's/^.*Keyslot/Keyslot/'

cryptsetup luksDump "$vol" >"$KS_DIR/dump"
slots=$(sed -n '/^Keyslots:/,/^Tokens:/p' "$KS_DIR/dump" | grep -cE '^ +[0-9]+: luks2' || true)
[ "$slots" = 1 ] || vm_die "keyslots after format: $slots"
sed -n '/^Keyslots:/,/^Tokens:/p' "$KS_DIR/dump" | grep -Eq 'PBKDF: +argon2id' ||
	vm_die "the keyslot is not Argon2id: $(sed -n '/^Keyslots:/,/^Tokens:/p' "$KS_DIR/dump")"
sed -n '/^Tokens:/,/^Digests:/p' "$KS_DIR/dump" | grep -q keyscope || vm_die "no keyscope token"
ks_expect_fail "keyscope.RecoveryExists" sh -c \
	"printf 'x\n' | '$KEYSCOPE_BUILDDIR/keyscopectl' recovery add '$vol' --passphrase-stdin"

# Data through keyscope's mapping (by keyring reference).
ks attach "$vol" --name rec >/dev/null
dmsetup table --showkeys rec | grep -q ":64:logon:keyscope:$id " ||
	vm_die "not by keyring reference: $(dmsetup table --showkeys rec | sed 's/[0-9a-f]\{64,\}/(hex)/')"
head -c 1048576 /dev/urandom >"$KS_DIR/plain"
dd if="$KS_DIR/plain" of=/dev/mapper/rec bs=64k oflag=direct status=none
sync
ks detach rec >/dev/null
ks_stop
grep -qF "$pass" "$KS_LOG" && vm_die "the passphrase is in keyscoped's log"
[ -z "$(keyctl search @u logon "keyscope:$id" 2>/dev/null)" ] || vm_die "the kernel key stayed"

# keyscoped is stopped and the kernel holds no key: cryptsetup alone, with the passphrase.
printf '%s\n' "wrong-$pass" | cryptsetup open "$vol" rescue 2>/dev/null &&
	vm_die "a wrong passphrase opened the volume"
printf '%s\n' "$pass" | cryptsetup open "$vol" rescue || vm_die "cryptsetup open with the passphrase"
dd if=/dev/mapper/rescue bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "cryptsetup open reads other data"
cryptsetup close rescue
echo "cryptsetup open with the recovery passphrase read the data keyscope wrote"

# recovery remove: no keyslot left; attach by reference still works.
ks_start
out=$(ks recovery remove "$vol")
echo "$out"
echo "$out" | grep -q "1 keyslot(s) removed" || vm_die "remove: $out"
cryptsetup luksDump "$vol" >"$KS_DIR/dump"
sed -n '/^Keyslots:/,/^Tokens:/p' "$KS_DIR/dump" | grep -Eq '^ +[0-9]+: luks2' &&
	vm_die "a keyslot is left: $(sed -n '/^Keyslots:/,/^Tokens:/p' "$KS_DIR/dump")"
printf '%s\n' "$pass" | cryptsetup open --test-passphrase "$vol" 2>/dev/null &&
	vm_die "the passphrase still opens the volume"
ks_expect_fail "keyscope.NoRecoveryKeyslot" ks recovery remove "$vol"
ks attach "$vol" --name rec2 >/dev/null
dmsetup table --showkeys rec2 | grep -q ":64:logon:keyscope:$id " || vm_die "rec2 not by reference"
dd if=/dev/mapper/rec2 bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "attach after recovery remove reads other data"
ks detach rec2 >/dev/null
echo "after recovery remove: no keyslot, attach by keyring reference reads the data"

# A volume keyscope did not format is not keyscope's to change.
printf 'other-pass' | cryptsetup --batch-mode luksFormat --type luks2 --pbkdf pbkdf2 \
	--pbkdf-force-iterations 1000 --key-file=- "$other"
ks_expect_fail "keyscope.NotKeyscopeVolume" sh -c \
	"printf 'x\n' | '$KEYSCOPE_BUILDDIR/keyscopectl' recovery add '$other' --passphrase-stdin"
ks_expect_fail "keyscope.NotKeyscopeVolume" ks recovery remove "$other"
ks_expect_fail "is empty" sh -c \
	"'$KEYSCOPE_BUILDDIR/keyscopectl' recovery add '$vol' --passphrase-stdin </dev/null"
echo ok
