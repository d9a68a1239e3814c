#!/usr/bin/env bash
# S2: the whole update on a real boot. Slot A (1.0) applies a signed 2.0 bundle from a second
# disk into slot B and kexecs into it (no firmware, no GRUB: a trial); os-update-commit.service
# commits B after boot-complete.target; a cold boot then goes through GRUB into B.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s2-apply-kexec-commit

log "bundle 2.0 (zstd) on a second disk"
bundle 2.0 "$VM_DIR/update.osu" zstd
cp "$VM_DIR/update.osu" "$VM_DIR/bundle-disk.img"
truncate -s %1M "$VM_DIR/bundle-disk.img"   # whole sectors; tar ignores the zeros after its end

cat > "$VM_DIR/agent.sh" <<'AGENT'
case $OSU_BOOT in
  1) os-update --status --json
     # Returns only if activation failed: on success systemd is already stopping for kexec.
     os-update --apply /dev/vdb --json; echo "apply exited $?" ;;
  *) os-update --status --json ;;
esac
AGENT
vm_agent "$VM_DIR/agent.sh"

log "power-on 1: apply in A, kexec into B, commit"
vm_boot --timeout 1500 --disk2 "$VM_DIR/bundle-disk.img"
expect "boot 1" "$(agent_begin 1 | cut -d' ' -f2-5)" "boot=1 slot=A trial=0 system=running"
agent_output 1 | grep_q '"message":"kexec into slot B' || die "boot 1: --apply did not kexec into B"
# `systemctl kexec` returns once the job is queued: os-update may still print its result and
# exit 0 before systemd stops it. Only a failure is a failure.
agent_output 1 | grep_q '^apply exited [1-9]' && die "boot 1: --apply failed: $(agent_output 1 | tail -n 3)"
# kexec: boot 2 started without firmware or GRUB in between.
between=$(tr -d '\r' < "$VM_LOG" | sed -n '/^OSU-AGENT\[1\]/,/^OSU-AGENT-BEGIN boot=2 /p')
grep -qE 'BdsDxe|os-update: booting slot' <<<"$between" && die "boot 2 went through firmware, not kexec"
expect "boot 2" "$(agent_begin 2 | cut -d' ' -f2-5)" "boot=2 slot=B trial=1 system=running"
status=$(agent_json 2 booted)
expect "boot 2: booted slot" "$(json_get "$status" booted)" B
expect "boot 2: committed slot" "$(json_get "$status" committed)" B
expect "boot 2: slot B state" "$(json_get "$status" slots.B.state)" verified
expect "boot 2: slot B version" "$(json_get "$status" slots.B.version)" 2.0
expect "boot 2: installed version" "$(json_get "$status" installed_version)" 2.0
env=$(esp_grubenv "$VM_DISK")
expect "OSU_ORDER after commit" "$(sed -n 's/^OSU_ORDER=//p' <<<"$env")" "B A"
expect "OSU_TRY after commit" "$(sed -n 's/^OSU_TRY=//p' <<<"$env")" ""
want=$(sha256sum < "$VM_DIR/update.osu.img" | cut -d' ' -f1)
expect "slot B content sha256 (host)" "$(disk_sha256 "$SLOT_B_OFFSET" "$(stat -c %s "$VM_DIR/update.osu.img")")" "$want"

log "power-on 2: cold boot through GRUB into the committed B"
vm_boot --timeout 600
tr -d '\r' < "$VM_LOG" | grep_q 'os-update: booting slot B$' || die "GRUB did not boot slot B"
expect "boot 3" "$(agent_begin 3 | cut -d' ' -f2-5)" "boot=3 slot=B trial=0 system=running"
status=$(agent_json 3 booted)
expect "boot 3: booted slot" "$(json_get "$status" booted)" B
expect "boot 3: committed slot" "$(json_get "$status" committed)" B
expect "boot 3: slot A state (the way back)" "$(json_get "$status" slots.A.state)" verified
env=$(esp_grubenv "$VM_DISK")
expect "OSU_B_LEFT after a good boot" "$(sed -n 's/^OSU_B_LEFT=//p' <<<"$env")" 3
vm_pass "S2 apply, kexec into B, commit, cold boot into B"
