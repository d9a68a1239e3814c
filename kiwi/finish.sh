#!/usr/bin/env bash
# finish.sh DISK PROFILE: after kiwi-ng built DISK (the .raw), write slot A's factory record,
# <boot>/osu/A/record.yml, as os-update writes one after an install (SerializeRecord() in
# lib/record/record.cpp): state verified, version, compatible, the sha256 and size of the squashfs
# KIWI put in p.lxreadonly, the kernel command line, and each boot file's size and sha256. With it
# `os-update --rollback` can return to the factory system after an update. No mount: the boot
# partition is read and written with mtools at its offset, slot A is read with dd.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 2 ] || { echo "usage: $0 DISK PROFILE (x86-kvm, rpi4, rpi5)" >&2; exit 1; }
disk=$1 profile=$2
die() { echo "finish.sh: $*" >&2; exit 1; }
[ -f "$here/$profile/etc/os-update.yml" ] || die "unknown profile '$profile'"
for tool in sfdisk mcopy mdir python3 sha256sum; do command -v "$tool" >/dev/null || die "'$tool' is missing"; done

# Start sector and size of a partition, by GPT name.
part() {
  sfdisk --json "$disk" | python3 -c 'import json,sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]:
    if p.get("name") == sys.argv[1]: print(p["start"], p["size"])' "$1"
}
read -r boot_start _ < <(part p.UEFI) || die "'$disk' has no partition p.UEFI"
read -r a_start a_sectors < <(part p.lxreadonly) || die "'$disk' has no partition p.lxreadonly"
esp="$disk@@$((boot_start * 512))"
a_off=$((a_start * 512))

# The squashfs image's length: bytes_used from its superblock, padded to 4 KiB as mksquashfs does.
size=$(python3 - "$disk" "$a_off" <<'PY'
import struct, sys
with open(sys.argv[1], 'rb') as f:
    f.seek(int(sys.argv[2])); sb = f.read(96)
if sb[:4] != b'hsqs':
    sys.exit('slot A (p.lxreadonly) holds no squashfs')
used = struct.unpack_from('<Q', sb, 40)[0]
print((used + 4095) // 4096 * 4096)
PY
) || die "cannot read slot A of '$disk'"
[ "$size" -le $((a_sectors * 512)) ] || die "squashfs of $size bytes is larger than slot A"
sha=$(dd if="$disk" bs=4M skip="$a_off" count="$size" iflag=skip_bytes,count_bytes status=none | sha256sum | cut -d' ' -f1)

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mcopy -n -s -i "$esp" ::osu/A "$work/" || die "no osu/A on the boot partition of '$disk'"
version=$(python3 -c 'import sys, xml.etree.ElementTree as E; print(E.parse(sys.argv[1]).getroot().findtext("preferences/version"))' "$here/config.kiwi")
compatible=$(sed -n 's/^ *compatible: *\([^ #]*\).*/\1/p' "$here/$profile/etc/os-update.yml")
if [ -f "$work/A/grub.cfg" ]; then
  cmdline=$(sed -n 's/^set osu_cmdline="\(.*\)"$/\1/p' "$work/A/grub.cfg")
else
  cmdline=$(sed -n 's/^osu_cmdline=//p' "$work/A/boot.env")
fi
{
  echo "slot: A"
  echo "state: verified"
  echo "version: \"$version\""
  echo "compatible: \"$compatible\""
  echo "sha256: $sha"
  echo "size: $size"
  echo "cmdline: \"$cmdline\""
  echo "boot_files:"
  for f in "$work"/A/*; do
    case "$(basename "$f")" in grub.cfg|boot.env|record.yml) continue ;; esac
    echo "  - {name: $(basename "$f"), size: $(stat -c %s "$f"), sha256: $(sha256sum "$f" | cut -d' ' -f1)}"
  done
  echo "updated_at: $(date -u +%FT%TZ)"
} > "$work/record.yml"
mcopy -o -i "$esp" "$work/record.yml" ::osu/A/record.yml
echo "finish.sh: slot A record: version $version, $size bytes, sha256 $sha"
