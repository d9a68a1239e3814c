#!/bin/bash
# The man pages the build generated (man/make-man.py) say what the binaries' --help and the
# example configuration say: every option of os-update, of os-update-bundle and of each of its
# subcommands is in its page; the pages are byte-identical to a fresh generation from the
# binaries of this build (a stale page fails); every key the config parser knows is in
# os-update.yml(5) and in the example, and the example with every key uncommented is accepted;
# groff renders each page without a warning. Bash completion offers the same options.
set -euo pipefail
src=${OSU_SOURCE_DIR:?}
bin=${OSU_BIN:?}
man=$bin/../man
[ -x "$bin/os-update" ] || { echo "SKIP: os-update is not built ($bin)"; exit 77; }
[ -f "$man/os-update.8" ] || { echo "SKIP: no man pages in $man (OSU_MAN=OFF?)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

# options CMD...: the --options CMD's --help lists, read as the bash completion reads them.
source "$src/completion/os-update.bash"
options() { _os_update_options "$@"; }
# in_page PAGE WORD: WORD appears in the page's roff source (hyphens are written \-).
# (grep reads to the end: -q would quit at the first match and sed's SIGPIPE fail the pipeline.)
in_page() { sed 's/\\-/-/g' "$1" | grep -F -- "$2" > /dev/null; }

version=$(sed -n 's/^project(os-update VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
python3 "$src/man/make-man.py" help os-update 8 "$version" \
  "A/B image updates for immutable embedded Linux" "$tmp/os-update.8" "$bin/os-update"
python3 "$src/man/make-man.py" help os-update-bundle 1 "$version" \
  "create, sign, inspect and verify os-update bundles" "$tmp/os-update-bundle.1" "$bin/os-update-bundle"
python3 "$src/man/make-man.py" config "$version" "$tmp/os-update.yml.5" "$src/examples/os-update.yml"
for page in os-update.8 os-update-bundle.1 os-update.yml.5; do
  cmp -s "$tmp/$page" "$man/$page" ||
    { diff "$man/$page" "$tmp/$page" | head -20; fail "$page differs from a fresh generation (stale build?)"; }
done
echo "ok: the built pages are what the binaries and the example generate now"

n=0
for opt in $(options "$bin/os-update"); do
  in_page "$man/os-update.8" "$opt" || fail "os-update.8 lacks $opt"; n=$((n + 1))
done
[ "$n" -ge 10 ] || fail "only $n options read from os-update --help"
subs=$("$bin/os-update-bundle" --help | sed -n '/^Subcommands:$/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p')
[ "$(echo $subs)" = "create info verify manifest sign delta record keygen tuf" ] || fail "subcommands: $subs"
for sub in $subs; do
  grep -qx ".SH \"${sub^^}\"" "$man/os-update-bundle.1" || fail "os-update-bundle.1 lacks a section for $sub"
  for opt in $(options "$bin/os-update-bundle" "$sub"); do
    # The option must be in the subcommand's own section, not just somewhere in the page.
    sed -n "/^\.SH \"${sub^^}\"/,/^\.SH/p" "$man/os-update-bundle.1" > "$tmp/section"
    in_page "$tmp/section" "$opt" || fail "os-update-bundle.1, section $sub, lacks $opt"
    n=$((n + 1))
  done
done
echo "ok: $n options of os-update and os-update-bundle's subcommands are in their pages"

# Every key the parser reads (r.String("update", "server", ...), r.Choice<...>(nullptr, "activation")).
keys=$(grep -oE 'r\.[A-Za-z]+(<[A-Za-z]+>)?\((nullptr|"[a-z_]+"), *"[a-z_]+"' "$src/lib/config/config.cpp" |
  sed -E 's/.*\((nullptr|"([a-z_]+)"), *"([a-z_]+)"/\2.\3/; s/^\.//')
[ "$(echo "$keys" | wc -l)" -ge 25 ] || fail "only $(echo "$keys" | wc -l) keys read from config.cpp"
for key in $keys; do
  grep -qx ".B $key" <(sed 's/\\-/-/g' "$man/os-update.yml.5") || fail "os-update.yml.5 lacks $key"
  grep -qE "^\| (.* )?\`$key\`" "$src/README.md" || fail "the README's configuration table lacks $key"
done
# The example, every key uncommented, is a configuration os-update accepts (an unknown key
# or a bad value would be exit 1 with the file's name; here it stops at the slots, exit 4).
sed -E 's/^#(  )?([a-z_]+:)/\1\2/' "$src/examples/os-update.yml" > "$tmp/all-keys.yml"
[ "$(grep -cE '^ *[a-z_]+: ' "$tmp/all-keys.yml")" -eq "$(echo "$keys" | wc -l)" ] ||
  fail "the example sets $(grep -cE '^ *[a-z_]+: ' "$tmp/all-keys.yml") keys, the parser knows $(echo "$keys" | wc -l)"
rc=0; "$bin/os-update" --config "$tmp/all-keys.yml" --status > "$tmp/out" 2>&1 || rc=$?
! grep -q "all-keys.yml" "$tmp/out" || { cat "$tmp/out"; fail "os-update refused the example's keys"; }
[ "$rc" -ne 1 ] || { cat "$tmp/out"; fail "os-update --status on the example: exit 1"; }
echo "ok: the $(echo "$keys" | wc -l) keys of the parser are in os-update.yml(5), the README and the example, which os-update accepts"

if command -v groff >/dev/null; then
  for page in os-update.8 os-update-bundle.1 os-update.yml.5; do
    warnings=$(groff -man -Tutf8 -ww -z "$man/$page" 2>&1)
    [ -z "$warnings" ] || { echo "$warnings"; fail "groff warns about $page"; }
  done
  echo "ok: groff renders the three pages without a warning"
fi

# Bash completion: the options and subcommands of this build.
got=$(PATH=$bin:$PATH bash -c '
  source "$1/completion/os-update.bash"
  c() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); "$F"; echo "${COMPREPLY[*]}"; }
  F=_os_update c os-update --ap
  F=_os_update c os-update --
  F=_os_update_bundle c os-update-bundle ""
  F=_os_update_bundle c os-update-bundle create --compression z
  F=_os_update_bundle c os-update-bundle sign x --' _ "$src")
want="--apply
$(options "$bin/os-update" | tr '\n' ' ' | sed 's/ $//')
$(echo $subs)
zstd
$(options "$bin/os-update-bundle" sign | tr '\n' ' ' | sed 's/ $//')"
[ "$got" = "$want" ] || { diff <(echo "$want") <(echo "$got"); fail "bash completion"; }
echo "ok: bash completion offers the options, subcommands and choices of --help"
