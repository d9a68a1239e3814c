#!/bin/bash
# os-update-commit.service runs only on a system booted by os-update's boot scripts (kernel
# command line osu.slot=): on this host (no A/B slots, no osu.slot) systemd skips it instead of
# failing it at boot (os-update --commit would exit 4: no slots). The conditions are the unit's
# own, evaluated by systemd (systemd-analyze condition). The other side, the unit running on a
# device and committing, is QEMU scenario S1 (A's attempts given back after boot-complete).
set -euo pipefail
src=${OSU_SOURCE_DIR:?}
unit=$src/systemd/os-update-commit.service
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze is not installed"; exit 77; }
systemd-analyze condition 'ConditionPathExists=/' >/dev/null 2>&1 ||
  { echo "SKIP: this systemd-analyze cannot evaluate conditions"; exit 77; }
grep -qw 'osu\.slot' /proc/cmdline && { echo "SKIP: this host was booted with osu.slot= (an os-update device)"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }

mapfile -t conditions < <(grep -E '^ConditionKernelCommandLine=' "$unit")
[ "${#conditions[@]}" -gt 0 ] || fail "$unit has no ConditionKernelCommandLine="
if out=$(systemd-analyze condition "${conditions[@]}" 2>&1); then
  fail "the unit's kernel command line conditions hold on a host without osu.slot: $out"
fi
grep -q 'ConditionKernelCommandLine=osu.slot failed' <<<"$out" || fail "unexpected verdict: $out"
# The same condition holds for a command line that os-update's boot scripts write.
grep -q 'osu.slot=${osu_slot}' "$src/grub/grub.cfg" || fail "grub.cfg no longer passes osu.slot="
grep -q 'osu.slot=${osu_slot}' "$src/uboot-scripts/boot.cmd" || fail "boot.cmd no longer passes osu.slot="
echo "commit_unit: 1 passed, 0 failed"
