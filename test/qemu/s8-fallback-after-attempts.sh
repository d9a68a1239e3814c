#!/usr/bin/env bash
# S8: a committed slot that stops booting falls back to the other slot once its attempts run
# out. Slot B holds 2.0, committed (host_install); then its kernel on the ESP is corrupted.
# GRUB tries B three times (each `linux` fails: GRUB says so and reboots), then boots A, and
# A's boot-complete makes A the default again (os-update-commit.service: A is not the
# committed slot, so its good boot commits it).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s8-fallback-after-attempts

bundle 2.0 "$VM_DIR/update.osu" zstd
host_install "$VM_DIR/update.osu"
log "corrupting slot B's kernel on the ESP (its first 64 KiB zeroed)"
esp_get "$VM_DISK" osu/B/vmlinuz "$VM_DIR/vmlinuz"
dd if=/dev/zero of="$VM_DIR/vmlinuz" bs=64K count=1 conv=notrunc status=none
esp_put "$VM_DISK" "$VM_DIR/vmlinuz" osu/B/vmlinuz

printf 'os-update --status --json\n' > "$VM_DIR/agent.sh"
vm_agent "$VM_DIR/agent.sh"

log "power-on: B fails three times, then A"
vm_boot --timeout 900
serial=$(tr -d '\r' < "$VM_LOG" | sed 's/\x1b\[[0-9;=]*[A-Za-z]//g')
expect "GRUB's tries of B" "$(grep -c 'os-update: booting slot B$' <<<"$serial")" 3
expect "GRUB's failures of B" "$(grep -c 'os-update: slot B did not boot; rebooting' <<<"$serial")" 3
expect "GRUB's first boot of A" "$(grep -n 'os-update: booting slot' <<<"$serial" | tail -n1 | cut -d: -f2-)" \
  "os-update: booting slot A"
expect "boot 1" "$(agent_begin 1 | cut -d' ' -f2-5)" "boot=1 slot=A trial=0 system=running"
status=$(agent_json 1 booted)
expect "booted slot" "$(json_get "$status" booted)" A
expect "committed slot (A's good boot committed it)" "$(json_get "$status" committed)" A
expect "slot B's attempts" "$(json_get "$status" slots.B.attempts_left)" 0
expect "slot B's record" "$(json_get "$status" slots.B.state)/$(json_get "$status" slots.B.version)" verified/2.0
env=$(esp_grubenv "$VM_DISK")
expect "OSU_ORDER" "$(sed -n 's/^OSU_ORDER=//p' <<<"$env")" "A B"
expect "OSU_A_LEFT" "$(sed -n 's/^OSU_A_LEFT=//p' <<<"$env")" 3
expect "OSU_B_LEFT" "$(sed -n 's/^OSU_B_LEFT=//p' <<<"$env")" 0
vm_pass "S8 committed B with a corrupted kernel: three tries, then A"
