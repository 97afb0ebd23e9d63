#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# vm: --disk vol:64M
# Hostile keyscope LUKS2 tokens, written with 'cryptsetup token import' as anyone with write
# access to a device could: attach and probe read them with one parser (lib/token.c) and
# refuse every one alike -- attach opens nothing, probe prints nothing and exits 1 -- while
# the token keyscope wrote still works (issue 10 item 6).
set -eu
. "$KEYSCOPE_TOP/tests/vm/lib.sh"
. "$KEYSCOPE_TOP/tests/vm/keyscope.sh"

vol=$(vm_disk vol)
ks_start
a=$(ks key create)
ks format "$vol" --key "$a" >/dev/null
cryptsetup token export --token-id 0 "$vol" >"$KS_DIR/good"
junk=$(head -c 3072 /dev/zero | base64 -w 0)

# hostile NAME JSON: both refuse the token, and nothing is left behind.
n=0
hostile() {
	printf '%s' "$2" >"$KS_DIR/tok"
	cryptsetup token import --token-id 0 --json-file "$KS_DIR/tok" --token-replace "$vol" ||
		vm_die "cryptsetup refused to import the $1 token"
	ks_expect_fail "keyscope.BadHeader\|malformed\|key-id\|key-size\|key-source" \
		ks attach "$vol" --name hostile
	_rc=0
	ks probe "$vol" >"$KS_DIR/probe.out" 2>"$KS_DIR/probe.err" || _rc=$?
	[ $_rc = 1 ] || vm_die "probe exits $_rc for the $1 token: $(cat "$KS_DIR/probe.out")"
	[ ! -s "$KS_DIR/probe.out" ] || vm_die "probe printed for the $1 token: $(cat "$KS_DIR/probe.out")"
	echo "$1: attach: $(head -n 1 "$KS_DIR/out"); probe: $(cat "$KS_DIR/probe.err")"
	n=$((n + 1))
}
T='"type":"keyscope","keyslots":[]'
hostile "key-id with a NUL" "{$T,\"key-id\":\"$a\\u0000junk\",\"key-source\":\"local\",\"key-size\":64}"
hostile "key-size as a string" "{$T,\"key-id\":\"$a\",\"key-source\":\"local\",\"key-size\":\"64\"}"
hostile "key-source with a newline" "{$T,\"key-id\":\"$a\",\"key-source\":\"lo\\ncal\",\"key-size\":64}"
hostile "key-source of 4 KiB" "{$T,\"key-id\":\"$a\",\"key-source\":\"$junk\",\"key-size\":64}"
hostile "key-source a number" "{$T,\"key-id\":\"$a\",\"key-source\":7,\"key-size\":64}"
hostile "key-id a number" "{$T,\"key-id\":12345,\"key-source\":\"local\",\"key-size\":64}"
hostile "no key-size" "{$T,\"key-id\":\"$a\",\"key-source\":\"local\"}"
hostile "key-size 48" "{$T,\"key-id\":\"$a\",\"key-source\":\"local\",\"key-size\":48}"
hostile "key-size 2^64+64" "{$T,\"key-id\":\"$a\",\"key-source\":\"local\",\"key-size\":18446744073709551680}"
hostile "key-size 64.0" "{$T,\"key-id\":\"$a\",\"key-source\":\"local\",\"key-size\":64.0}"
hostile "a / in the key-id" "{$T,\"key-id\":\"$a/x\",\"key-source\":\"local\",\"key-size\":64}"
hostile "empty key-id" "{$T,\"key-id\":\"\",\"key-source\":\"local\",\"key-size\":64}"
hostile "null key-id" "{$T,\"key-id\":null,\"key-source\":\"local\",\"key-size\":64}"
hostile "array key-id" "{$T,\"key-id\":[\"$a\"],\"key-source\":\"local\",\"key-size\":64}"
hostile "object key-id" "{$T,\"key-id\":{},\"key-source\":\"local\",\"key-size\":64}"
hostile "no key-id" "{$T,\"key-source\":\"local\",\"key-size\":64}"

# Two keyscope tokens: which one would count? Neither.
cryptsetup token import --token-id 0 --json-file "$KS_DIR/good" --token-replace "$vol"
sed "s/$a/$(ks key create)/" "$KS_DIR/good" >"$KS_DIR/second"
cryptsetup token import --token-id 1 --json-file "$KS_DIR/second" "$vol" ||
	vm_die "cryptsetup refused a second token"
ks_expect_fail "two keyscope tokens" ks attach "$vol" --name hostile
if ks probe "$vol" >"$KS_DIR/probe.out" 2>&1; then vm_die "probe took two tokens"; fi
grep -q "two keyscope tokens" "$KS_DIR/probe.out" || vm_die "probe: $(cat "$KS_DIR/probe.out")"
cryptsetup token remove --token-id 1 "$vol"

# The token keyscope wrote: both take it, with the same key-id.
ks probe "$vol" | grep -qx "KEYSCOPE_KEY_ID=$a" || vm_die "probe of the good token: $(ks probe "$vol")"
ks attach "$vol" --name good >/dev/null
dmsetup table --showkeys good | grep -q ":64:logon:keyscope:$a " || vm_die "table of good"
ks detach good
echo "$n hostile tokens refused by attach and probe alike"
! grep -q 'logon .* keyscope:' /proc/keys || vm_die "keys left: $(grep 'logon .* keyscope:' /proc/keys)"
echo ok
