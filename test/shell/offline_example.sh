#!/bin/bash
# examples/offline: systemd-analyze verifies the unit (an instance of the template, with the
# os-update binary of this build in place of /usr/bin/os-update, which verify requires to exist).
set -euo pipefail
src=${OSU_SOURCE_DIR:?}/examples/offline
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is not installed"; exit 77; }
bin=${OSU_BIN:-}/os-update
[ -x "$bin" ] || { echo "SKIP: os-update is not built ($bin)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|/usr/bin/os-update|$bin|" "$src/os-update-offline@.service" > "$tmp/os-update-offline@sdb1.service"
out=$(systemd-analyze verify "$tmp/os-update-offline@sdb1.service" 2>&1) || { echo "$out"; exit 1; }
# verify is quiet about what it accepts; anything it says is a finding.
[ -z "$out" ] || { echo "$out"; exit 1; }
# The udev rule hands the kernel name to exactly this template.
grep -q 'ENV{SYSTEMD_WANTS}+="os-update-offline@%k.service"' "$src/90-os-update-offline.rules"
grep -q 'ENV{ID_FS_LABEL}=="OSU-UPDATE"' "$src/90-os-update-offline.rules"
echo "offline example: unit verified"
