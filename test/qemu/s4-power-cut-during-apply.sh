#!/usr/bin/env bash
# S4 (first cut): power lost while --apply writes slot B. The next power-on boots A through
# GRUB as if nothing happened, and B is not verified (never bootable half-written).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s4-power-cut-during-apply
bundle 2.0 "$VM_DIR/update.osu" zstd
cp "$VM_DIR/update.osu" "$VM_DIR/bundle-disk.img"
truncate -s %1M "$VM_DIR/bundle-disk.img"

cat > "$VM_DIR/agent.sh" <<'AGENT'
case $OSU_BOOT in
  1) os-update --apply /dev/vdb --json ;;
  *) os-update --status --json ;;
esac
AGENT
vm_agent "$VM_DIR/agent.sh"

log "power-on 1: cut once 200 MB of slot B are written"
vm_boot --timeout 900 --disk2 "$VM_DIR/bundle-disk.img" \
  --cut '"phase":"write","done":[2-9][0-9]{8},'
agent_output 1 | grep_q '"event":"info","message":"kexec' && die "the cut came too late: apply had finished"

log "power-on 2: back in A"
vm_boot --timeout 600
expect "boot 2" "$(agent_begin 2 | cut -d' ' -f2-5)" "boot=2 slot=A trial=0 system=running"
status=$(agent_json 2 booted)
expect "booted slot" "$(json_get "$status" booted)" A
expect "committed slot" "$(json_get "$status" committed)" A
b_state=$(json_get "$status" slots.B.state)
[ "$b_state" != verified ] || die "slot B is 'verified' after a cut write"
log "ok: slot B state = $b_state (not verified)"
vm_pass "S4 power cut during apply: boots A, B not verified"
