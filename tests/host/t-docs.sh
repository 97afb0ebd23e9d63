#!/bin/bash
# The documentation matches the code: every option keyscoped and keyscopectl print in --help
# is in their man pages, every keyscopectl command is in keyscopectl(8), every config key
# config_set() accepts is in keyscoped.conf(5) and in the shipped daemon/keyscoped.conf (whose
# commented defaults the daemon accepts as they are), every method and error name the daemon
# uses is in docs/protocol.md, and groff renders the man pages without a warning.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DOCS=$ROOT/docs
CONF=$ROOT/daemon/keyscoped.conf
PROTO=$DOCS/protocol.md
MANPAGES="$DOCS/keyscoped.8 $DOCS/keyscopectl.8 $DOCS/keyscoped.conf.5"

for f in $MANPAGES "$CONF" "$PROTO" "$DOCS/keyring.md"; do
	[ -s "$f" ] || fail "$f is missing or empty"
done
[ -x "$KEYSCOPED" ] && [ -x "$KEYSCOPECTL" ] || fail "no binaries in $KEYSCOPE_BUILDDIR: run make"

# A man page's text as words can be searched for: no comments, "\-" as "-", no font escapes.
man_text() {
	grep -v '^\.\\"' "$1" | sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\f(..//g' \
		-e 's/\\(aq/'"'"'/g' -e 's/\\e/\\/g'
}

errors=0
missing() {
	echo "MISSING: $*" >&2
	errors=$((errors + 1))
}

# --- options: every -x and --long-option in --help is in the man page ---------------------
check_options() { # PROGRAM MANPAGE
	local prog=$1 page=$2 text help opt n=0
	text=$(man_text "$page")
	help=$("$prog" --help) || fail "$prog --help failed"
	for opt in $(grep -oE -- '(^|[[ ])--[a-z][a-z-]*' <<<"$help" | tr -d '[ ' | sort -u); do
		n=$((n + 1))
		grep -qF -- "$opt" <<<"$text" || missing "$(basename "$prog") $opt not in $page"
	done
	for opt in $(grep -oE -- '^  -[a-zA-Z],' <<<"$help" | tr -d ' ,' | sort -u); do
		grep -qE -- "(^|[^a-zA-Z-])$opt([^a-zA-Z-]|\$)" <<<"$text" ||
			missing "$(basename "$prog") $opt not in $page"
	done
	[ $n -ge 3 ] || fail "found only $n long options in $prog --help: is its format changed?"
	echo "$(basename "$prog"): $n long options checked"
}
check_options "$KEYSCOPED" "$DOCS/keyscoped.8"
check_options "$KEYSCOPECTL" "$DOCS/keyscopectl.8"

# --- keyscopectl commands: every command and subcommand of the help tables -------------------
ctl_text=$(man_text "$DOCS/keyscopectl.8")
commands=$("$KEYSCOPECTL" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF >= 2 { print $1 }' |
	grep -v ':$')
[ -n "$commands" ] || fail "no commands found in keyscopectl --help"
n=0
for cmd in $commands; do
	grep -qE -- "^\.(B|BI|BR|TP)? *\"?$cmd( |\"|\$)|keyscopectl $cmd" <<<"$ctl_text" ||
		missing "keyscopectl command '$cmd' not in keyscopectl.8"
	subs=$("$KEYSCOPECTL" "$cmd" --help 2>/dev/null | awk '/^  [a-z]/ { print $1 }') || true
	for sub in $subs; do
		n=$((n + 1))
		grep -qF -- "$cmd $sub" <<<"$ctl_text" ||
			missing "keyscopectl command '$cmd $sub' not in keyscopectl.8"
	done
done
echo "keyscopectl: $(wc -w <<<"$commands") commands, $n subcommands checked"

# --- config keys: every key config_set() accepts ------------------------------------------
keys=$(awk '/^(static )?int config_set(_[a-z]+)?\(/, /^}/' "$ROOT/daemon/config.c" |
	grep -oE 'streq\(key, "[^"]+"\)' | sed -E 's/.*"([^"]+)".*/\1/')
[ "$(wc -w <<<"$keys")" -ge 5 ] || fail "found only '$keys' in config_set(): is config.c changed?"
conf_text=$(man_text "$DOCS/keyscoped.conf.5")
for key in $keys; do
	grep -qF -- "$key = " <<<"$conf_text" || missing "config key '$key' not in keyscoped.conf.5"
	grep -qE -- "^#?$key = ?" "$CONF" || missing "config key '$key' not in daemon/keyscoped.conf"
done
# ... and the shipped file names no key the daemon does not know.
for key in $(sed -nE 's/^#?([a-z][a-z-]*) = ?.*/\1/p' "$CONF"); do
	grep -qx -- "$key" <<<"$keys" || missing "daemon/keyscoped.conf documents unknown key '$key'"
done
echo "config: $(wc -w <<<"$keys") keys checked"

# --- protocol: every method in the table, every error name the daemon uses ------------------
methods=$(awk '/^const struct method method_table\[\]/, /^};/' "$ROOT/daemon/rpc/methods.c" |
	grep -oE '"keyscope\.[A-Za-z]+"' | tr -d '"')
[ "$(wc -w <<<"$methods")" -ge 5 ] || fail "found only '$methods' in the method table"
for m in $methods; do
	grep -qE -- "^### $m\$" "$PROTO" || missing "method $m has no section in docs/protocol.md"
done
for m in $(sed -nE 's/^### (keyscope\.[A-Za-z]+)$/\1/p' "$PROTO"); do
	grep -qx -- "$m" <<<"$methods" || missing "docs/protocol.md documents unknown method $m"
done
names=$(find "$ROOT/daemon" -name "*.c" -exec cat {} + | grep -oE '"keyscope\.[A-Z][A-Za-z]+"' | tr -d '"' | sort -u)
for e in $names; do
	grep -qF -- "\`$e\`" "$PROTO" || missing "name $e (daemon/*.c) not in docs/protocol.md"
done
echo "protocol: $(wc -w <<<"$methods") methods, $(wc -w <<<"$names") names checked"

[ $errors -eq 0 ] || fail "$errors omissions in the documentation (listed above)"

# --- the shipped config with every default uncommented is accepted -------------------------
sed -E 's/^#([a-z][a-z-]* = ?)/\1/' "$CONF" >"$T/defaults.conf"
start_daemon --config "$T/defaults.conf"
ctl status >/dev/null || fail "keyscoped with the uncommented defaults does not answer"
stop_daemon
echo "config: the commented defaults are accepted"

# --- man pages render without warnings ---------------------------------------------------
command -v groff >/dev/null || skip "groff is not installed (apt-get install groff-base);" \
	"everything but man page rendering checked"
for page in $MANPAGES; do
	out=$(groff -man -Tutf8 -ww -z "$page" 2>&1) || fail "groff failed on $page: $out"
	[ -z "$out" ] || fail "groff warns about $page: $out"
done
echo "groff: 3 man pages render without warnings"
echo "ok"
