#!/usr/bin/env bash
# validate.sh: checks the KIWI description offline, for each profile (x86-kvm, rpi4, rpi5):
# 1. kiwi-ng loads it (RelaxNG schema + schematron rules of kiwi-ng 9.24) with kiwi.yml;
# 2. the layout it asks KIWI for agrees with partition-layouts/<layout>.sfdisk: slot A/B size
#    (overlayroot_readonly_partsize, root_clone="1"), boot partition size (efipartsize), the
#    data partition label; and the profile's /etc/os-update.yml names the same slot labels;
# 3. config.sh and the overlay scripts parse.
# Exits 77 (skip) when kiwi-ng is missing. Usage: kiwi/validate.sh [PROFILE...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/.." && pwd)
command -v kiwi-ng >/dev/null || { echo "SKIP: kiwi-ng is missing (Debian package 'kiwi')"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is missing"; exit 77; }

# config.kiwi names no repository (build.sh adds the host's); kiwi-ng wants one to load it.
uri=$("$here/build-host/apt-uri" bookworm 2>/dev/null) ||
  { echo "SKIP: the host's apt sources have no bookworm entry (kiwi/build-host/apt-uri)"; exit 77; }

profiles=("$@")
[ ${#profiles[@]} -gt 0 ] || profiles=(x86-kvm rpi4 rpi5)
passed=0 failed=0
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
ok() { echo "ok: $*"; passed=$((passed + 1)); }

for f in "$here/config.sh" "$here/stage.sh" "$here/finish.sh" "$here/build.sh" \
         "$here/build-host/mount" "$here/build-host/umount" "$here/root/etc/fstab.script"; do
  if bash -n "$f"; then ok "syntax of ${f#"$src/"}"; else fail "syntax of ${f#"$src/"}"; fi
done

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for profile in "${profiles[@]}"; do
  case "$profile" in x86-kvm) layout=x86-kvm ;; rpi4) layout=rpi4 ;; rpi5) layout=rpi5 ;;
    *) fail "unknown profile '$profile'"; continue ;; esac
  # kiwi-ng's global options (--config, --profile) go before the command.
  if ! kiwi-ng --config "$here/kiwi.yml" --profile "$profile" image info \
        --description "$here" --add-repo "$uri,apt-deb,bookworm" --print-xml > "$tmp/$profile.out" 2>&1; then
    sed 's/^/  /' "$tmp/$profile.out" | tail -n 30
    fail "$profile: kiwi-ng image info"
    continue
  fi
  if grep -q 'ERROR' "$tmp/$profile.out"; then
    grep 'ERROR' "$tmp/$profile.out" | sed 's/^/  /'; fail "$profile: kiwi-ng image info reported an error"; continue
  fi
  ok "$profile: kiwi-ng image info"
  # The description as kiwi-ng resolved it, checked against the sfdisk layout.
  sed -n '/^<image /,/^<\/image>/p' "$tmp/$profile.out" > "$tmp/$profile.xml"
  if python3 - "$tmp/$profile.xml" "$profile" "$src/partition-layouts/$layout.sfdisk" \
       "$here/$profile/etc/os-update.yml" <<'PY'
import re, sys, xml.etree.ElementTree as ET
xml, profile, sfdisk, osu_yml = sys.argv[1:]
image = ET.parse(xml).getroot()
types = [t for p in image.findall('preferences') if profile in (p.get('profiles') or '').split(',')
         for t in p.findall('type')]
errors = []
if len(types) != 1:
    sys.exit(f'{profile}: expected one <type>, found {len(types)}')
t = types[0]
# The layout: name -> size in MiB (None = rest of the disk), in table order.
parts = {}
for line in open(sfdisk):
    m = re.match(r'\s*start=\s*(\d+),\s*(?:size=\s*(\d+),\s*)?type=([0-9A-F-]+),\s*name="([^"]+)"', line)
    if m:
        parts[m.group(4)] = int(m.group(2)) * 512 // 1048576 if m.group(2) else None
def want(what, got, expected):
    if str(got) != str(expected):
        errors.append(f'{what}: description has {got!r}, {sfdisk.split("/")[-1]} wants {expected!r}')
want('root_clone (slot B = KIWI clone of slot A)', t.get('root_clone'), '1')
want('overlayroot (p.lxreadonly label)', t.get('overlayroot'), 'true')
want('overlayroot_write_partition', t.get('overlayroot_write_partition'), 'false')
want('filesystem', t.get('filesystem'), 'squashfs')
want('slot size MiB (p.lxreadonly)', t.get('overlayroot_readonly_partsize'), parts.get('p.lxreadonly'))
want('slot size MiB (p.lxrootclone1)', t.get('overlayroot_readonly_partsize'), parts.get('p.lxrootclone1'))
boot = parts.get('p.UEFI', parts.get('p.boot'))
want('boot partition MiB (efipartsize)', t.get('efipartsize'), boot)
want('firmware', t.get('firmware'), 'efi')
want('initrd_system (no KIWI overlay module)', t.get('initrd_system'), 'none')
bl = t.find('bootloader')
want('bootloader', bl.get('name') if bl is not None else None, 'custom')
data = [p for p in t.findall('partitions/partition') if p.get('partition_name') == 'p.lxdata']
if 'p.lxdata' in parts and len(data) != 1:
    errors.append('no <partition partition_name="p.lxdata"> (the data partition of the layout)')
# os-update's config names the slots the way KIWI labels them.
cfg = open(osu_yml).read()
for key, label in (('a', 'p.lxreadonly'), ('b', 'p.lxrootclone1')):
    if not re.search(rf'^\s+{key}:\s*{re.escape(label)}\s*$', cfg, re.M):
        errors.append(f'{osu_yml}: slots.{key} is not {label}')
if errors:
    sys.exit('\n'.join(f'{profile}: {e}' for e in errors))
PY
  then ok "$profile: agrees with partition-layouts/$layout.sfdisk"; else fail "$profile: layout"; fi
done
echo "kiwi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
