#!/usr/bin/env bash
# S4: power lost seconds after os-update-commit.service rewrote the grubenv on a normal boot
# (it resets the booted slot's attempts on every boot). Both copies must survive: on vfat a
# renamed file's directory entry reaches the disk only with its inode, so an InstallFile
# without an fsync after the rename left both copies pointing at freed clusters.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s4-power-cut-after-commit
printf 'os-update --status --json\n' > "$VM_DIR/agent.sh"
vm_agent "$VM_DIR/agent.sh"

log "power-on 1: cut as soon as startup (and so the commit) finished"
vm_boot --timeout 600 --cut 'OSU-AGENT-BEGIN boot=1 '
for copy in grubenv grubenv.bak; do
  esp_get "$VM_DISK" "osu/$copy" "$VM_DIR/$copy" || die "osu/$copy unreadable after the cut"
  expect "$copy after the cut: OSU_A_LEFT" "$(grub-editenv "$VM_DIR/$copy" list | sed -n 's/^OSU_A_LEFT=//p')" 3
done

log "power-on 2: boots A, os-update works"
vm_boot --timeout 600
expect "boot 2" "$(agent_begin 2 | cut -d' ' -f2-5)" "boot=2 slot=A trial=0 system=running"
expect "os-update --status exit code" "$(agent_rc 2)" 0
vm_pass "S4 power cut after a commit: both grubenv copies intact"
