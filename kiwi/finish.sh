#!/usr/bin/env bash
# finish.sh DISK PROFILE: after kiwi-ng built DISK (the .raw), has os-update write slot A's
# factory record, <boot>/osu/A/record.yml (`os-update-bundle record`: the squashfs KIWI put in
# p.lxreadonly hashed, the boot files listed, saved by the code an install saves records with),
# and slot A's chunk list beside it (chunks.idx: the first partial fetch need not read slot A).
# With it `os-update --rollback` can return to the factory system after an update. No mount:
# the boot partition's osu/ is copied out and the record back with mtools.
# os-update-bundle: $OSU_BUNDLE, else the one on PATH.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 2 ] || { echo "usage: $0 DISK PROFILE (x86-kvm, rpi4, rpi5)" >&2; exit 1; }
disk=$1 profile=$2
die() { echo "finish.sh: $*" >&2; exit 1; }
[ -f "$here/$profile/etc/os-update.yml" ] || die "unknown profile '$profile'"
bundle_tool=${OSU_BUNDLE:-os-update-bundle}
for tool in sfdisk mcopy python3 "$bundle_tool"; do command -v "$tool" >/dev/null || die "'$tool' is missing"; done

boot_start=$(sfdisk --json "$disk" | python3 -c 'import json,sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]:
    if p.get("name") == "p.UEFI": print(p["start"])') || true
[ -n "$boot_start" ] || die "'$disk' has no partition p.UEFI"
esp="$disk@@$((boot_start * 512))"

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mcopy -n -s -i "$esp" ::osu "$work/" || die "no osu/ on the boot partition of '$disk'"
version=$(python3 -c 'import sys, xml.etree.ElementTree as E; print(E.parse(sys.argv[1]).getroot().findtext("preferences/version"))' "$here/config.kiwi")
compatible=$(sed -n 's/^ *compatible: *\([^ #]*\).*/\1/p' "$here/$profile/etc/os-update.yml")
# The command line config.sh gave slot A's bootloader snippet.
if [ -f "$work/osu/A/grub.cfg" ]; then
  cmdline=$(sed -n 's/^set osu_cmdline="\(.*\)"$/\1/p' "$work/osu/A/grub.cfg")
else
  cmdline=$(sed -n 's/^osu_cmdline=//p' "$work/osu/A/boot.env")
fi
"$bundle_tool" record --disk "$disk" --slot A --boot-path "$work" --version "$version" \
  --compatible "$compatible" --cmdline "$cmdline"
# The list first (a record without its list only means the slot is read on the first update).
mcopy -o -i "$esp" "$work/osu/A/chunks.idx" ::osu/A/chunks.idx
mcopy -o -i "$esp" "$work/osu/A/record.yml" ::osu/A/record.yml
