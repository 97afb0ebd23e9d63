#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M --disk cow:32M --disk vol2:64M --timeout 600
# A volume formatted the os-brick way (LUKS2, passphrase = lowercase hex of the delegated key
# on stdin) opens with --passphrase hex: keyscoped unlocks a keyslot once and installs the
# recovered volume key as scope vk:<LUKS UUID>; its snapshot opens with no key derivation.
# The unlock (Argon2id, seconds) runs in a helper process: other clients are answered
# meanwhile, and a snapshot attached during the unlock joins it instead of deriving again;
# another os-brick volume's unlock waits in the queue (unlock-concurrency 1); an unlock whose
# process is killed fails its attach cleanly. The helper (keyscope-unlock, exec'd) holds only
# its two pipes and /dev/null, its argv and environment carry no secret, its memory is locked,
# and a client the daemon drops during an unlock sees the end of its connection at once.
# The key's bytes live only in this shell's memory and in pipes, never in argv or a file.
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

vol=$(vm_disk vol)
cow=$(vm_disk cow)
vol2=$(vm_disk vol2)
ks_start
hex=$(head -c 32 /dev/urandom | od -An -v -tx1 | tr -d ' \n')
for v in "$vol" "$vol2"; do
	printf '%s' "$hex" | cryptsetup --batch-mode luksFormat --type luks2 \
		--cipher aes-xts-plain64 --key-size 256 --key-file=- "$v"
done
id=$(printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')" | ks key import --name os-brick)
hex=
uuid=$(cryptsetup luksUUID "$vol")

t0=$EPOCHREALTIME
out=$(ks --json attach "$vol" --key "$id" --passphrase hex --name ob)
t1=$EPOCHREALTIME
echo "$out"
serial=$(ks_field "$out" serial)
[ "$(ks_field "$out" scope)" = "vk:$uuid" ] || vm_die "scope is not vk:$uuid"
dmsetup table --showkeys ob | grep -q " :32:logon:keyscope:vk:$uuid 0 " ||
	vm_die "table: $(dmsetup table --showkeys ob)"
[ "$(keyctl search @u logon "keyscope:vk:$uuid")" = "$serial" ] || vm_die "volume key not in the kernel"
yes os-brick-volume-data | head -c 1048576 >"$KS_DIR/plain"
dd if="$KS_DIR/plain" of=/dev/mapper/ob bs=64k oflag=direct status=none
sync

# Its snapshot: same scope, same key, no keyslot unlock (no Argon2 derivation).
dmsetup create obraw --table "0 $(blockdev --getsz "$vol") snapshot $vol $cow N 8"
t2=$EPOCHREALTIME
out=$(ks --json attach /dev/mapper/obraw --key "$id" --passphrase hex --name obsnap)
t3=$EPOCHREALTIME
[ "$(ks_field "$out" serial)" = "$serial" ] || vm_die "snapshot got another key"
[ "$(ks_field "$out" holders)" = 2 ] || vm_die "snapshot holders: $out"
[ "$(grep -c 'Unlocked a keyslot' "$KS_LOG")" = 1 ] || vm_die "the snapshot unlocked a keyslot again"
dd if=/dev/mapper/obsnap bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "snapshot data differs"
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" \
	'BEGIN { printf "first open (keyslot unlock) %.2f s, snapshot open %.2f s\n", b - a, d - c }'

# A key whose hex is not the passphrase unlocks nothing, and leaves nothing.
other=$(ks key create --bits 256)
ks detach obsnap >/dev/null
dmsetup remove obraw
ks_expect_fail "unlocks no keyslot" ks attach "$vol" --key "$other" --passphrase hex --name bad
ks detach ob >/dev/null
keyctl search @u logon "keyscope:vk:$uuid" >/dev/null 2>&1 && vm_die "volume key left in the kernel"

# Off the event loop: the volume and its snapshot attached at once, status asked meanwhile.
dmsetup create obraw --table "0 $(blockdev --getsz "$vol") snapshot $vol $cow N 8"
unlocks=$(($(grep -c 'Unlocking a keyslot of' "$KS_LOG") + 1))
ks attach "$vol" --key "$id" --passphrase hex --name ob >"$KS_DIR/a1" 2>&1 &
a1=$!
ks attach /dev/mapper/obraw --key "$id" --passphrase hex --name obsnap >"$KS_DIR/a2" 2>&1 &
a2=$!
n=0
until [ "$(grep -c 'Unlocking a keyslot of' "$KS_LOG")" = $unlocks ]; do
	n=$((n + 1))
	[ $n -le 100 ] || vm_die "no unlock started: $(tail -n 5 "$KS_LOG")"
	sleep 0.1
done
t0=$EPOCHREALTIME
ks status >/dev/null || vm_die "status failed during an unlock"
t1=$EPOCHREALTIME
kill -0 "$a1" 2>/dev/null || vm_die "the unlock ended before status answered: nothing shown"
awk -v a="$t0" -v b="$t1" 'BEGIN { printf "status during the unlock: %.2f s\n", b - a }'
wait "$a1" || vm_die "attach during the unlock failed: $(cat "$KS_DIR/a1")"
wait "$a2" || vm_die "snapshot attach during the unlock failed: $(cat "$KS_DIR/a2")"
[ "$(grep -c 'Unlocking a keyslot of' "$KS_LOG")" = $unlocks ] ||
	vm_die "the snapshot started an unlock of its own"
dd if=/dev/mapper/obsnap bs=64k count=16 iflag=direct status=none | cmp -s - "$KS_DIR/plain" ||
	vm_die "snapshot data differs after the concurrent attach"
ks detach obsnap >/dev/null
dmsetup remove obraw
ks detach ob >/dev/null

# Two os-brick volumes at once: one unlock runs, the other waits its turn; both attach.
ks attach "$vol" --key "$id" --passphrase hex --name ob >"$KS_DIR/a1" 2>&1 &
a1=$!
ks attach "$vol2" --key "$id" --passphrase hex --name ob2 >"$KS_DIR/a2" 2>&1 &
a2=$!
wait "$a1" || vm_die "first of two os-brick attaches failed: $(cat "$KS_DIR/a1")"
wait "$a2" || vm_die "second of two os-brick attaches failed: $(cat "$KS_DIR/a2")"
grep -q "Queued the keyslot unlock of .*: 1 running (unlock-concurrency 1)" "$KS_LOG" ||
	vm_die "the second unlock did not wait for the first: $(grep -i unlock "$KS_LOG" | tail -n 4)"
ks detach ob >/dev/null
ks detach ob2 >/dev/null
unlocks=$(grep -c 'Unlocking a keyslot of' "$KS_LOG")
echo "two os-brick volumes: one unlock at a time, both attached"

# The unlock process killed: the attach fails, says so, and leaves nothing behind.
ks_world "$KS_DIR/before"
ks attach "$vol" --key "$id" --passphrase hex --name ob >"$KS_DIR/a1" 2>&1 &
a1=$!
n=0
until pid=$(grep 'Unlocking a keyslot of' "$KS_LOG" |
	sed -n "$((unlocks + 1))s/.* in process \([0-9]*\) .*/\1/p") && [ -n "$pid" ]; do
	n=$((n + 1))
	[ $n -le 100 ] || vm_die "no unlock started"
	sleep 0.1
done
kill -9 "$pid"
wait "$a1" && vm_die "attach succeeded with its unlock process killed: $(cat "$KS_DIR/a1")"
grep -q "ended without a result (its process died" "$KS_DIR/a1" ||
	vm_die "attach error: $(cat "$KS_DIR/a1")"
ks_world "$KS_DIR/after"
cmp -s "$KS_DIR/before" "$KS_DIR/after" ||
	vm_die "a killed unlock left something: $(diff "$KS_DIR/before" "$KS_DIR/after")"
echo "unlock process killed: $(cat "$KS_DIR/a1")"
ks attach "$vol" --key "$id" --passphrase hex --name ob >/dev/null || vm_die "attach after a killed unlock"
ks detach ob >/dev/null

# The helper inherits nothing of the daemon. A client connects before the unlock starts and
# is dropped (client-timeout) while the unlock runs: it sees the end of its connection then,
# not when the unlock ends (a fork of the daemon would hold its socket). The helper is stopped
# meanwhile, so the unlock is known to be still running when the client looks.
raw=$KEYSCOPE_BUILDDIR/tools/ks-raw
[ -x "$raw" ] || vm_die "$raw is not built (make check-vm builds it)"
# Not in an AddressSanitizer build: ASan's interceptor turns mlock/mlockall into no-ops that
# return 0 (it says so at verbosity 1), so that build's helper runs unlocked and there is
# nothing to see. The probe runs the very binary keyscoped execs, with an empty passphrase
# (it answers EINVAL and exits; no device is opened); every other build is checked below.
nolock=0
ASAN_OPTIONS=verbosity=1:detect_leaks=0 "$KEYSCOPE_BUILDDIR/keyscope-unlock" /nonexistent \
	3</dev/null 4>/dev/null 2>&1 | grep -q 'ignores mlock' && nolock=1
ks_stop
printf '[keyscoped]\nclient-timeout = 10\n' >"$KS_DIR/conf"
ks_start --config "$KS_DIR/conf"
"$raw" --hold 40 "$KEYSCOPE_SOCKET" </dev/null >"$KS_DIR/raw" 2>&1 &
rawpid=$!
n=0
until grep -q "Client pid $rawpid uid 0 connected" "$KS_LOG"; do
	n=$((n + 1))
	[ $n -le 100 ] || vm_die "ks-raw did not connect: $(cat "$KS_DIR/raw")"
	sleep 0.1
done
unlocks=$(grep -c 'Unlocking a keyslot of' "$KS_LOG")
ks attach "$vol" --key "$id" --passphrase hex --name ob >"$KS_DIR/a1" 2>&1 &
a1=$!
n=0
until pid=$(grep 'Unlocking a keyslot of' "$KS_LOG" |
	sed -n "$((unlocks + 1))s/.* in process \([0-9]*\) .*/\1/p") && [ -n "$pid" ]; do
	n=$((n + 1))
	[ $n -le 100 ] || vm_die "no unlock started"
	sleep 0.1
done
# Its memory is locked once it runs its main() (mlockall; an exec'd process starts unlocked).
if [ "$nolock" = 1 ]; then
	echo "SKIP (the helper's locked memory): an ASan build, whose mlockall is a no-op"
else
	n=0
	until awk '$1 == "VmLck:" && $2 > 0 { ok = 1 } END { exit !ok }' /proc/"$pid"/status; do
		n=$((n + 1))
		[ $n -le 100 ] ||
			vm_die "the helper's memory is not locked: $(grep VmLck /proc/"$pid"/status)"
		sleep 0.1
	done
fi
kill -STOP "$pid"
awk -v u="$unlocks" -v d="Dropping client pid $rawpid " '/Unlocking a keyslot of/ { n++ }
	index($0, d) && n <= u { early = 1 } END { exit early }' "$KS_LOG" ||
	vm_die "the client was dropped before the unlock started: this proves nothing"
wait "$rawpid" || true
grep -q "^closed after" "$KS_DIR/raw" ||
	vm_die "a client dropped during the unlock saw no end of file: $(cat "$KS_DIR/raw")"
grep -q "Dropping client pid $rawpid " "$KS_LOG" || vm_die "ks-raw's client was not dropped"
# 0-2 are /dev/null, 3 and 4 its pipes; what else it holds it opened itself for libcryptsetup
# (the device, /dev/urandom, ...): none of the daemon's sockets, epoll/signal/timer fds, pipes
# or state files.
fds=$(ls /proc/"$pid"/fd | sort -n | tr '\n' ' ')
for f in 0 1 2; do
	[ "$(readlink /proc/"$pid"/fd/$f)" = /dev/null ] || vm_die "its fd $f is not /dev/null"
done
for f in 3 4; do
	readlink /proc/"$pid"/fd/$f | grep -q '^pipe:' || vm_die "its fd $f is not a pipe"
done
for f in /proc/"$pid"/fd/*; do
	[ "${f##*/}" -le 4 ] && continue
	t=$(readlink "$f")
	case $t in
	socket:* | pipe:* | anon_inode:* | "$KS_DIR"/* | "$KEYSCOPE_SOCKET")
		vm_die "the unlock helper holds the daemon's fd ${f##*/} ($t): $(ls -l /proc/"$pid"/fd)"
		;;
	esac
done
[ "$(tr '\0' ' ' </proc/"$pid"/cmdline)" = "keyscope-unlock $vol " ] ||
	vm_die "helper argv: $(tr '\0' ' ' </proc/"$pid"/cmdline)"
[ "$(tr '\0' '\n' </proc/"$pid"/environ)" = "PATH=/usr/sbin:/usr/bin:/sbin:/bin" ] ||
	vm_die "helper environment: $(tr '\0' '\n' </proc/"$pid"/environ)"
echo "unlock helper: fds $fds(0-2 /dev/null, 3-4 pipes, no socket); dropped client: $(cat "$KS_DIR/raw")"
kill -CONT "$pid"
wait "$a1" || vm_die "attach after the stopped unlock failed: $(cat "$KS_DIR/a1")"
ks detach ob >/dev/null
echo ok
