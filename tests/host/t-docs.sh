#!/bin/bash
# The documentation matches the code, both ways: every option keyscoped, keyscopectl (at every
# command level) and keyscope-request-key print in --help is in their man pages and every option
# the man pages name is in a --help; every keyscopectl command is in keyscopectl(8) and every
# command keyscopectl(8) names exists; CMD --help works for each; one version everywhere; every
# config key of config_keys[] (lib/config.c) is in keyscoped.conf(5) and in the shipped daemon/keyscoped.conf
# (whose commented defaults the daemon accepts as they are), every method and error name the
# daemon uses is in docs/protocol.md, and groff renders the man pages without a warning.
. "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DOCS=$ROOT/docs
CONF=$ROOT/daemon/keyscoped.conf
PROTO=$DOCS/protocol.md
MANPAGES=$(ls "$DOCS"/*.[1-8])
HELPER=$KEYSCOPE_BUILDDIR/keyscope-request-key
UNLOCK=$KEYSCOPE_BUILDDIR/keyscope-unlock

for f in "$DOCS/keyscoped.8" "$DOCS/keyscopectl.8" "$DOCS/keyscope-request-key.8" \
	"$DOCS/keyscoped.conf.5" "$CONF" "$PROTO" "$DOCS/keyring.md"; do
	[ -s "$f" ] || fail "$f is missing or empty"
done
[ -x "$KEYSCOPED" ] && [ -x "$KEYSCOPECTL" ] && [ -x "$HELPER" ] || fail "no binaries in $KEYSCOPE_BUILDDIR: run make"

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

# --- options, both ways: every option a --help prints is in the man page, and every option the
# man page's SYNOPSIS, OPTIONS and COMMANDS sections name is printed by some --help ----------
# help_options: the -x and --long options of --help text on stdin, one a line.
help_options() {
	grep -oE -- '(^|[][ ,|(])(--[a-z][a-z-]*|-[a-zA-Z])([] ,=|)]|$)' |
		grep -oE -- '--[a-z][a-z-]*|-[a-zA-Z]' | sort -u
}
# man_options PAGE: the options named in its SYNOPSIS, OPTIONS and COMMANDS sections (not the
# examples, which show other programs' options).
man_options() {
	awk '/^\.SH/ { keep = ($2 == "SYNOPSIS" || $2 == "OPTIONS" || $2 == "COMMANDS") } keep' "$1" |
		grep -oE -- '^\.BR? \\-[a-zA-Z]( |$)|, " \\-[a-zA-Z] |\\-\\-[a-z]([a-z]|\\-)*' |
		sed -e 's/\\-/-/g' -e 's/^\.BR* //' -e 's/^, " //' -e 's/ $//' | sort -u
}
check_options() { # MANPAGE HELP-TEXT-FILE NAME
	local page=$1 help=$2 name=$3 text opt n=0
	text=$(man_text "$page")
	for opt in $(help_options <"$help"); do
		n=$((n + 1))
		grep -qE -- "(^|[^a-zA-Z-])$opt([^a-zA-Z-]|\$)" <<<"$text" ||
			missing "$name --help prints $opt, which is not in $(basename "$page")"
	done
	for opt in $(man_options "$page"); do
		grep -qxF -- "$opt" < <(help_options <"$help") ||
			missing "$(basename "$page") names $opt, which no $name --help prints"
	done
	[ $n -ge 5 ] || fail "found only $n options in $name --help: is its format changed?"
	echo "$name: $n options checked both ways"
}
"$KEYSCOPED" --help >"$T/keyscoped.help" || fail "keyscoped --help failed"
check_options "$DOCS/keyscoped.8" "$T/keyscoped.help" keyscoped
"$HELPER" --help >"$T/helper.help" || fail "keyscope-request-key --help failed"
check_options "$DOCS/keyscope-request-key.8" "$T/helper.help" keyscope-request-key

# keyscope-unlock has no --help (keyscoped runs it); its usage line and page agree both ways.
"$UNLOCK" 2>"$T/unlock.usage" && fail "keyscope-unlock without arguments succeeded"
unlock_opts=$(help_options <"$T/unlock.usage")
[ -n "$unlock_opts" ] || fail "no option in keyscope-unlock's usage: $(cat "$T/unlock.usage")"
[ "$unlock_opts" = "$(man_options "$DOCS/keyscope-unlock.8")" ] ||
	missing "keyscope-unlock's usage ($unlock_opts) and keyscope-unlock.8" \
		"($(man_options "$DOCS/keyscope-unlock.8" | tr '\n' ' ')) name other options"

# --- every installed program, unit and udev rule has its man page, and the pages name no
# program, unit or rule that is not installed --------------------------------------------------
programs=$(sed -nE 's/^PROGRAMS :?\+?= (.*)$/\1/p' "$ROOT/Makefile" | tr '\n' ' ')
[ "$(wc -w <<<"$programs")" -ge 4 ] || fail "found only '$programs' in the Makefile's PROGRAMS"
for p in $programs; do
	[ -s "$DOCS/$p.8" ] || missing "program $p (installed by make install) has no docs/$p.8"
done
for page in "$DOCS"/*.8; do
	p=$(basename "$page" .8)
	grep -qw -- "$p" <<<"$programs" || missing "docs/$p.8 documents no program in PROGRAMS"
done
units_text=$(man_text "$DOCS/keyscope.units.7")
for u in "$ROOT"/systemd/*.service "$ROOT"/systemd/*.socket "$ROOT"/systemd/*.target; do
	[ -e "$u" ] || continue
	grep -qxF -- ".I /lib/systemd/system/$(basename "$u")" <<<"$units_text" ||
		missing "unit $(basename "$u") is not in keyscope.units.7's SYNOPSIS"
done
for u in $(sed -nE 's|^\.I /lib/systemd/system/(.*)$|\1|p' "$DOCS/keyscope.units.7" | sed 's/\\-/-/g'); do
	[ -e "$ROOT/systemd/$u" ] || missing "keyscope.units.7 names $u, which systemd/ lacks"
done
udev_text=$(man_text "$DOCS/keyscope.udev.7")
for r in "$ROOT"/udev/*.rules; do
	grep -qxF -- ".I /lib/udev/rules.d/$(basename "$r")" <<<"$udev_text" ||
		missing "udev rule $(basename "$r") is not in keyscope.udev.7's SYNOPSIS"
done
echo "pages: $(wc -w <<<"$programs") programs, units and udev rules each have their man page"

# --- keyscopectl: every command and subcommand, both ways; CMD --help works for each ---------
ctl_text=$(man_text "$DOCS/keyscopectl.8")
"$KEYSCOPECTL" --help >"$T/ctl.help" || fail "keyscopectl --help failed"
commands=$(sed -n '/^Commands:/,/^$/p' "$T/ctl.help" | awk 'NF >= 2 { print $1 }' | grep -v ':$')
[ "$(wc -w <<<"$commands")" -ge 10 ] || fail "found only '$commands' in keyscopectl --help"
: >"$T/ctl.all"
n=0
for cmd in $commands; do
	grep -qE -- "^\.(B|BI|BR|TP)? *\"?$cmd( |\"|\$)|keyscopectl $cmd" <<<"$ctl_text" ||
		missing "keyscopectl command '$cmd' not in keyscopectl.8"
	out=$("$KEYSCOPECTL" "$cmd" --help) || missing "keyscopectl $cmd --help fails (exit $?)"
	printf '%s\n' "$out" >>"$T/ctl.all"
	[ "$("$KEYSCOPECTL" help "$cmd")" = "$out" ] ||
		missing "keyscopectl help $cmd differs from $cmd --help"
	echo "$cmd" >>"$T/ctl.names"
	subs=$(sed -n '/^Subcommands:/,/^$/p' <<<"$out" | awk '/^  [a-z]/ { print $1 }')
	for sub in $subs; do
		n=$((n + 1))
		grep -qF -- "$cmd $sub" <<<"$ctl_text" ||
			missing "keyscopectl command '$cmd $sub' not in keyscopectl.8"
		"$KEYSCOPECTL" "$cmd" "$sub" --help >>"$T/ctl.all" ||
			missing "keyscopectl $cmd $sub --help fails"
		echo "$cmd $sub" >>"$T/ctl.names"
	done
done
# ... and every command keyscopectl.8's SYNOPSIS names is one of them.
for c in $(awk '/^\.SH/ { keep = ($2 == "SYNOPSIS") } keep' "$DOCS/keyscopectl.8" |
	sed -nE 's/^\.B (keyscopectl )?([a-z]+( [a-z]+)?)$/\2/p' | grep -vx keyscopectl |
	tr ' ' '+' | sort -u); do
	grep -qxF -- "${c//+/ }" "$T/ctl.names" ||
		missing "keyscopectl.8 names the command '${c//+/ }', which keyscopectl --help lacks"
done
echo "keyscopectl: $(wc -w <<<"$commands") commands, $n subcommands checked both ways"
cat "$T/ctl.help" >>"$T/ctl.all"
check_options "$DOCS/keyscopectl.8" "$T/ctl.all" keyscopectl

# --- one version: each program's --version and each man page's header ------------------------
version=$(sed -nE 's/^VERSION := (.*)$/\1/p' "$ROOT/Makefile")
[ -n "$version" ] || fail "no VERSION in the Makefile"
for prog in "$KEYSCOPED" "$KEYSCOPECTL" "$HELPER"; do
	[ "$("$prog" --version)" = "$(basename "$prog") $version" ] ||
		missing "$(basename "$prog") --version says '$("$prog" --version)', not $version"
done
for page in $MANPAGES; do
	grep -qE "^\.TH .* \"keyscope $version\"" "$page" ||
		missing "$(basename "$page")'s .TH line does not say keyscope $version"
done

# --- config keys: every key config_set() accepts ------------------------------------------
keys=$(awk '/^} config_keys\[\] = \{$/, /^};/' "$ROOT/lib/config.c" |
	sed -nE 's/^\t\{ "([a-z-]+)", (true|false), .*/\1/p')
[ "$(wc -w <<<"$keys")" -ge 5 ] || fail "found only '$keys' in config_keys[]: is config.c changed?"
# The table and the setters name the same keys.
setters=$(awk '/^static int config_(apply|set_barbican)\(/, /^}/' "$ROOT/lib/config.c" |
	grep -oE 'streq\(key, "[^"]+"\)' | sed -E 's/.*"([^"]+)".*/\1/' | sort)
[ "$setters" = "$(sort <<<"$keys")" ] ||
	missing "config_keys[] and the setters differ: $(diff <(sort <<<"$keys") - <<<"$setters" | grep '^[<>]' | tr '\n' ' ')"
conf_text=$(man_text "$DOCS/keyscoped.conf.5")
for key in $keys; do
	grep -qF -- "$key = " <<<"$conf_text" || missing "config key '$key' not in keyscoped.conf.5"
	grep -qE -- "^#?$key = ?" "$CONF" || missing "config key '$key' not in daemon/keyscoped.conf"
done
# ... and the shipped file names no key the daemon does not know.
for key in $(sed -nE 's/^#?([a-z][a-z-]*) = ?.*/\1/p' "$CONF"); do
	grep -qx -- "$key" <<<"$keys" || missing "daemon/keyscoped.conf documents unknown key '$key'"
done
# Keys applied on reload: "(live)" in keyscoped.conf.5 exactly where config_keys[] says true.
live=$(awk '/^} config_keys\[\] = \{$/, /^};/' "$ROOT/lib/config.c" |
	sed -nE 's/^\t\{ "([a-z-]+)", true, .*/\1/p' | sort)
man_live=$(grep -E '^\.BI "[a-z\\-]+ = " .* " \(live\)"$' "$DOCS/keyscoped.conf.5" |
	sed -E 's/^\.BI "([^ ]+) = .*/\1/; s/\\-/-/g' | sort)
[ "$live" = "$man_live" ] || missing "live keys differ between config_keys[] and keyscoped.conf.5:" \
	"$(diff <(echo "$live") <(echo "$man_live") | grep '^[<>]' | tr '\n' ' ')"
echo "config: $(wc -w <<<"$keys") keys checked, $(wc -w <<<"$live") of them live"

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
echo "groff: $(wc -w <<<"$MANPAGES") man pages render without warnings"
echo "ok"
