#!/bin/bash
# Temporary files of atomic writes that a SIGKILL interrupted ("<file>.tmp.<pid>" in keys/ and
# in the state folder) are removed at the next start; the store still loads and serves its
# keys. A temporary file whose writer still runs, and other files, are left alone.
. "$(dirname "$0")/lib.sh"
start_daemon
id=$(ctl key create)
stop_daemon

# A pid that no process has now: a child that has exited.
sh -c 'exit 0' &
dead=$!
wait "$dead"
kill -0 "$dead" 2>/dev/null && skip "pid $dead was reused at once"

stale=("$STATE/keys/$id.key.tmp.$dead" "$STATE/scopes.json.tmp.$dead" "$STATE/master.key.tmp.$dead")
for f in "${stale[@]}"; do
	cp "$STATE/keys/$id.key" "$f"
done
kept=("$STATE/keys/$id.key.tmp.$$" "$STATE/keys/notes.tmp.x" "$STATE/keys/notes.tmp.")
for f in "${kept[@]}"; do
	echo kept >"$f"
done

start_daemon
for f in "${stale[@]}"; do
	[ ! -e "$f" ] || fail "stale temporary file $f is still there after a start"
done
for f in "${kept[@]}"; do
	[ -e "$f" ] || fail "$f was removed: its writer (pid $$) still runs or it is not a temporary file"
done
expect_eq "$(ctl key list | grep -c "$id")" 1 "entries of key $id in key list"
ctl key install "$id" >/dev/null || fail "key $id refused after the stale files went"
expect_eq "$(count_keyscope_keys)" 1 "kernel keys after install"
ctl key release "$id" >/dev/null
rm -f "${kept[@]}"
echo ok
