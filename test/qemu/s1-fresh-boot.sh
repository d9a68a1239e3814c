#!/usr/bin/env bash
# S1: a factory-fresh disk boots through OVMF and the repo's GRUB config into slot A, and
# os-update inside sees what the factory made: booted A, slot A verified with version 1.0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s1-fresh-boot

cat > "$VM_DIR/agent.sh" <<'AGENT'
os-update --status --json
AGENT
vm_agent "$VM_DIR/agent.sh"
vm_boot --timeout 600

tr -d '\r' < "$VM_LOG" | grep_q 'os-update: booting slot A$' || die "GRUB did not say it boots slot A"
# Every unit started (os-update-commit.service included): nothing failed.
expect "boot 1" "$(agent_begin 1 | cut -d' ' -f2-5)" "boot=1 slot=A trial=0 system=running"
expect "os-update --status exit code" "$(agent_rc 1)" 0
status=$(agent_json 1 booted)
[ -n "$status" ] || die "no JSON status in boot 1"
expect "booted slot" "$(json_get "$status" booted)" A
expect "slot A state" "$(json_get "$status" slots.A.state)" verified
expect "slot A version" "$(json_get "$status" slots.A.version)" 1.0
expect "slot A device" "$(json_get "$status" slots.A.device)" /dev/vda2

# GRUB used one attempt of A; os-update-commit.service (when the repo has it) gave it back.
env=$(esp_grubenv "$VM_DISK")
want_left=2; [ -f "$SRC/systemd/os-update-commit.service" ] && want_left=3
expect "OSU_ORDER" "$(sed -n 's/^OSU_ORDER=//p' <<<"$env")" "A B"
expect "OSU_A_LEFT" "$(sed -n 's/^OSU_A_LEFT=//p' <<<"$env")" "$want_left"
expect "OSU_B_LEFT" "$(sed -n 's/^OSU_B_LEFT=//p' <<<"$env")" 3
expect "OSU_TRY" "$(sed -n 's/^OSU_TRY=//p' <<<"$env")" ""

# The read-only root was not written by booting it: it still matches its record.
sha=$(json_get "$status" slots.A.sha256) size=$(json_get "$status" slots.A.image_size)
expect "slot A content sha256 (host)" "$(disk_sha256 "$SLOT_A_OFFSET" "$size")" "$sha"
vm_pass "S1 fresh boot into slot A"
