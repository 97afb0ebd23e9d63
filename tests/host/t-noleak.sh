#!/bin/bash
# No key bytes anywhere a person or a tool could see them: import keys whose bytes this test
# knows, run the whole flow with debug logging, and search every log line, every reply and
# every file under the state directory for the keys' raw, hex and base64 forms. The daemon's
# audit events go to a journal (tests/host/fake-journald.py, journald's native protocol, in a
# mount namespace of this test's own), whose fields are searched too, as are the metrics.
# The known keys exist only in this shell's memory and in pipes: builtins write them, so they
# never appear in an argv or a file.
if [ -z "${NOLEAK_NS:-}" ]; then
	NOLEAK_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
. "$(dirname "$0")/lib.sh"
# A journal of our own: a tmpfs over /run/systemd in this mount namespace only.
mount -t tmpfs -o mode=0755 keyscope-test /run/systemd || fail "cannot mount a tmpfs on /run/systemd"
mkdir /run/systemd/journal
JOURNAL=$T/journal.json
/usr/bin/python3 "$(dirname "$0")/fake-journald.py" /run/systemd/journal/socket "$JOURNAL" &
JOURNALD=$!
for _ in $(seq 1 100); do [ -S /run/systemd/journal/socket ] && break; sleep 0.05; done
[ -S /run/systemd/journal/socket ] || fail "fake journald did not start"
# stderr is the log file: JOURNAL_STREAM names it, so keyscoped sends its events to the journal.
: >"$DAEMON_LOG"
export JOURNAL_STREAM
JOURNAL_STREAM=$(stat -c '%d:%i' "$DAEMON_LOG")
LOG_LEVEL=debug start_daemon
unset JOURNAL_STREAM
OUT=$T/replies
: >"$OUT"

# "\xNN" escapes for printf(1) builtin from hex; bash 5 here-strings go through a pipe.
tohex_esc() { printf '%s' "$1" | sed 's/../\\x&/g'; }
declare -a hexes
for len in 32 64 64; do
	hexes+=("$(head -c $len /dev/urandom | od -An -v -tx1 | tr -d ' \n')")
done
ids=()
for h in "${hexes[@]}"; do
	ids+=("$(printf "$(tohex_esc "$h")" | ctl --json key import --name known | tee -a "$OUT" |
		sed -n 's/.*"key-id":"\([^"]*\)".*/\1/p')")
done
for id in "${ids[@]}"; do
	[ -n "$id" ] || fail "import printed no key-id"
	c=$(ctl key clone "$id")
	{ ctl --json key install "$id"; ctl --json key install "$c"; ctl --json scope list
	  ctl --json status; ctl --json key list; ctl key list; ctl status
	  ctl metrics; ctl metrics --prometheus; ctl --json metrics
	  ctl --json key release "$id"; ctl --json key release "$c"; } >>"$OUT" 2>&1
done
# A key supplied with a request (the os-brick encryptor's path, docs/openstack.md): refused
# here (no such device), and neither logged nor stored on the way.
for h in "${hexes[@]}"; do
	printf "$(tohex_esc "$h")" | ctl --json attach /nonexistent/vdz --key \
		5b0d9f2e-0d6c-4be3-9d0f-0a6a3e3c7f11 --passphrase hex --key-stdin >>"$OUT" 2>&1 &&
		fail "attach of a missing device with a supplied key succeeded"
	printf "$(tohex_esc "$h")" | ctl --json format /nonexistent/vdz --key-stdin \
		--key 5b0d9f2e-0d6c-4be3-9d0f-0a6a3e3c7f11 >>"$OUT" 2>&1 && fail "format succeeded"
done
grep -q 'keyscope.NoSuchDevice' "$OUT" || fail "supplied-key attach: $(tail -n 2 "$OUT")"
stop_daemon
kill "$JOURNALD" && wait "$JOURNALD" || fail "fake journald failed"
# The journal was written, with the events' IDs and fields: what the search below searched.
jq -s -e --arg id "${ids[0]}" 'any(.[]; .MESSAGE_ID == "1cd9f7de6d344c608bf78b93b307f99c" and
	.KEYSCOPE_KEY_ID == $id and .KEYSCOPE_EVENT == "key-installed")' "$JOURNAL" >/dev/null ||
	fail "no key-installed journal entry for ${ids[0]}"
jq -s -e 'any(.[]; .KEYSCOPE_EVENT == "attach-failed" and .KEYSCOPE_ERROR ==
	"keyscope.NoSuchDevice" and .KEYSCOPE_DEVICE == "/nonexistent/vdz" and
	.KEYSCOPE_PEER_UID == "0")' "$JOURNAL" >/dev/null ||
	fail "no attach-failed journal entry with its fields"
grep -q '^# EOF' "$OUT" || fail "the metrics were not searched"

# Every form of every key, as patterns in a file descriptor (never argv).
patterns() {
	local h
	for h in "${hexes[@]}"; do
		printf '%s\n' "$h" "${h^^}"
		printf "$(tohex_esc "$h")" | base64 -w0; echo
	done
}
# Raw bytes: search the hex dump of each file for the key's hex (any alignment is a hit).
files=("$DAEMON_LOG" "$OUT" "$JOURNAL" $(find "$STATE" -type f))
[ ${#files[@]} -ge 9 ] ||
	fail "expected the log, the replies, the journal and 6+ state files, got ${#files[@]}"
for f in "${files[@]}"; do
	if grep -a -F -q -f <(patterns) "$f"; then fail "key material (hex/base64) found in $f"; fi
	if od -An -v -tx1 "$f" | tr -d ' \n' | grep -F -q -f <(printf '%s\n' "${hexes[@]}"); then
		fail "raw key bytes found in $f"
	fi
done
# The search must be able to find what it looks for: prove it on a file that has a key.
printf "$(tohex_esc "${hexes[1]}")" | od -An -v -tx1 | tr -d ' \n' |
	grep -F -q -f <(printf '%s\n' "${hexes[@]}") || fail "raw search cannot find a key"
grep -q "Imported key" "$DAEMON_LOG" || fail "debug log is empty: nothing was searched"
echo "searched ${#files[@]} files"
