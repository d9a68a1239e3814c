#!/bin/bash
# The README's set-up commands, exactly as written there, run as root without sudo on PATH, as
# root with sudo, as a user with sudo, and as a user without (a clear error). apt-get and sudo
# are stubs that log who called them; scripts/demo.sh and scripts/test.sh are stubs that log
# that they ran; apt's configuration (APT_CONFIG) points at a scratch /etc/apt, so the test
# also checks the bookworm-backports entry install-deps.sh derives from each kind of source.
set -euo pipefail
src=${OSU_SOURCE_DIR:?}
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root to run the script as root and as nobody"; exit 77; }
command -v apt-config >/dev/null || { echo "SKIP: apt-config is not installed"; exit 77; }
command -v setpriv >/dev/null || { echo "SKIP: setpriv is not installed"; exit 77; }
mapfile -t commands < <(sed -n 's/^    \(scripts\/install-deps\.sh && .*\)$/\1/p' "$src/README.md")
[ "${#commands[@]}" -ge 2 ] || { echo "FAIL: the README's set-up commands not found"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
fail() { echo "FAIL: $*"; [ -f "$tmp/log" ] && sed 's/^/  log: /' "$tmp/log"; exit 1; }

# bin/: the commands install-deps.sh uses, linked one by one, so that PATH holds sudo only
# where a case puts it there.
mkdir -p "$tmp/bin" "$tmp/sudo-bin"
for tool in bash env id grep awk sort tee cat apt-config; do
  ln -s "$(command -v "$tool")" "$tmp/bin/$tool"
done
cat > "$tmp/bin/apt-get" <<EOF
#!/bin/bash
echo "apt-get uid=\$(id -u) DEBIAN_FRONTEND=\${DEBIAN_FRONTEND:-} \$*" >> "$tmp/log"
EOF
cat > "$tmp/sudo-bin/sudo" <<EOF
#!/bin/bash
echo "sudo uid=\$(id -u) \$*" >> "$tmp/log"
exec "\$@"
EOF
chmod 755 "$tmp/bin/apt-get" "$tmp/sudo-bin/sudo"

# The checkout the commands run in: the real install-deps.sh, stub demo and test scripts.
mkdir -p "$tmp/repo/scripts"
cp "$src/scripts/install-deps.sh" "$tmp/repo/scripts/"
for s in demo test; do
  printf '#!/bin/bash\necho "%s.sh uid=$(id -u)" >> "%s/log"\n' "$s" "$tmp" > "$tmp/repo/scripts/$s.sh"
  chmod 755 "$tmp/repo/scripts/$s.sh"
done

# new_apt KIND: a scratch /etc/apt holding one kind of Debian source (and an unrelated one).
new_apt() {
  rm -rf "$tmp/etc" "$tmp/log"
  mkdir -p "$tmp/etc/apt/sources.list.d" "$tmp/etc/apt/apt.conf.d"
  local parts=$tmp/etc/apt/sources.list.d
  case $1 in
    deb822) cat > "$parts/debian.sources" <<'EOF'
Types: deb
URIs: http://archive.test/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://archive.test/debian-security
Suites: bookworm-security
Components: main
EOF
      ;;
    oneline) printf '%s\n' '# deb http://old.test/debian bookworm main' \
        'deb [arch=amd64] http://mirror.test/debian bookworm main contrib' \
        'deb http://mirror.test/debian-security bookworm-security main' > "$tmp/etc/apt/sources.list" ;;
    backports) printf '%s\n' 'deb http://mirror.test/debian bookworm main' \
        'deb http://mirror.test/debian bookworm-backports main' > "$tmp/etc/apt/sources.list" ;;
    none) printf '%s\n' 'deb http://mirror.test/ubuntu jammy main' > "$tmp/etc/apt/sources.list" ;;
  esac
  printf 'Dir::Etc "%s/etc/apt";\n' "$tmp" > "$tmp/apt.conf"
  chmod -R a+rwX "$tmp/etc"
  : > "$tmp/log"; chmod 666 "$tmp/log"
}

# run USER PATH COMMAND: the README command as USER (root or nobody) with that PATH.
run() {
  local who=$1 path=$2 cmd=$3 as=()
  [ "$who" = root ] || as=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  (cd "$tmp/repo" && "${as[@]}" env -i PATH="$path" APT_CONFIG="$tmp/apt.conf" HOME=/ \
      bash -c "$cmd") > "$tmp/out" 2>&1
}
backports() { cat "$tmp/etc/apt/sources.list.d/os-update-backports.list" 2>/dev/null; }

for cmd in "${commands[@]}"; do
  next=${cmd##*&& scripts/}; next=${next%% *}
  echo "== $cmd"
  for case in "root $tmp/bin" "root $tmp/sudo-bin:$tmp/bin" "nobody $tmp/sudo-bin:$tmp/bin"; do
    read -r who path <<< "$case"
    uid=0; [ "$who" = root ] || uid=65534
    new_apt deb822
    run "$who" "$path" "$cmd" || { rc=$?; cat "$tmp/out"; fail "$who, PATH=$path: exit $rc"; }
    # apt-get update, install, update, install -t bookworm-backports: as root, or through
    # sudo (whose stub cannot change the uid, so apt-get logs nobody's).
    n=$(grep -c "^apt-get uid=$uid DEBIAN_FRONTEND=noninteractive " "$tmp/log") || true
    [ "$n" -eq 4 ] || fail "$who: expected 4 noninteractive apt-get calls; got $n"
    if [ "$who" = root ]; then
      ! grep -q '^sudo' "$tmp/log" || fail "root called sudo"
    else
      n=$(grep -cE '^sudo uid=65534 env DEBIAN_FRONTEND=noninteractive (apt-get|tee) ' "$tmp/log") || true
      [ "$n" -eq 5 ] || fail "nobody: expected apt-get (4) and tee (1) through sudo; got $n"
    fi
    grep -qx "$next uid=$uid" "$tmp/log" || fail "$who: $next did not run after install-deps.sh"
    grep -q -- '-t bookworm-backports qemu-system-x86 qemu-system-arm' "$tmp/log" ||
      fail "$who: QEMU not installed from bookworm-backports"
    echo "ok: as $who${path%%:*}" | sed "s|$tmp/sudo-bin| with sudo|; s|$tmp/bin| without sudo|"
  done
done
cmd=${commands[0]}

# A user without sudo: one clear line, nothing installed, the demo not started.
new_apt deb822
if run nobody "$tmp/bin" "$cmd"; then fail "a user without sudo: exit 0"; fi
grep -qx 'install-deps.sh: apt-get needs root: run this as root, or install sudo' "$tmp/out" ||
  { cat "$tmp/out"; fail "a user without sudo: not the expected message"; }
[ ! -s "$tmp/log" ] || fail "a user without sudo: something ran"
echo "ok: a user without sudo is told to run it as root or install sudo"

# The backports entry comes from the configured sources, in either format.
new_apt deb822
run root "$tmp/bin" "$cmd" || fail "deb822 sources: exit $?"
[ "$(backports | grep -v '^#')" = \
  "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://archive.test/debian bookworm-backports main" ] ||
  fail "deb822 sources: backports entry is '$(backports)'"
new_apt oneline
run root "$tmp/bin" "$cmd" || fail "one-line sources: exit $?"
[ "$(backports | grep -v '^#')" = "deb [arch=amd64] http://mirror.test/debian bookworm-backports main" ] ||
  fail "one-line sources: backports entry is '$(backports)'"
new_apt backports
run root "$tmp/bin" "$cmd" || fail "backports already configured: exit $?"
[ -z "$(backports)" ] || fail "backports already configured, but another entry was written"
new_apt none
if run root "$tmp/bin" "$cmd"; then fail "no bookworm source: exit 0"; fi
grep -q "install-deps.sh: no 'bookworm' source in $tmp/etc/apt/sources.list" "$tmp/out" ||
  { cat "$tmp/out"; fail "no bookworm source: not the expected message"; }
grep -q '^demo.sh' "$tmp/log" && fail "no bookworm source: the demo ran anyway"
echo "ok: bookworm-backports derived from deb822 and one-line sources, kept if present, refused if no bookworm"
