#!/usr/bin/env bash
# S6: --rollback from a committed B. Slot B holds 2.0, committed (made on the host by os-update
# itself: host_install); in B, `os-update --rollback --reboot` makes A the default; the reboot
# goes through firmware and GRUB into A, and there --check no longer offers 2.0 and --apply
# refuses it (exit 2) unless --allow-downgrade.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s6-rollback

bundle 2.0 "$VM_DIR/update.osu" zstd
host_install "$VM_DIR/update.osu"
bundle_disk "$VM_DIR/update.osu" "$VM_DIR/bundle-disk.img"

cat > "$VM_DIR/agent.sh" <<'AGENT'
case $OSU_BOOT in
  1) os-update --status --json
     os-update --rollback --reboot --json; echo "rollback exited $?" ;;
  2) os-update --status --json
     os-update --check /dev/vdb --json; echo "check exited $?"
     os-update --apply /dev/vdb --json; echo "apply exited $?"
     os-update --apply /dev/vdb --allow-downgrade --dry-run --json; echo "downgrade dry-run exited $?"
     echo "rejected: $(paste -sd, /boot/efi/osu/rejected)" ;;
  *) os-update --status --json ;;
esac
AGENT
vm_agent "$VM_DIR/agent.sh"

log "power-on: GRUB boots the committed B, rollback, reboot through GRUB into A"
vm_boot --timeout 900 --disk2 "$VM_DIR/bundle-disk.img"
expect "boot 1" "$(agent_begin 1 | cut -d' ' -f2-5)" "boot=1 slot=B trial=0 system=running"
status=$(agent_json 1 booted)
expect "boot 1: committed slot" "$(json_get "$status" committed)" B
expect "boot 1: slot B version" "$(json_get "$status" slots.B.version)" 2.0
expect "boot 1: rollback message" "$(agent_output 1 | grep -o 'Rolled back: slot A (version 1.0)' | head -n1)" \
  "Rolled back: slot A (version 1.0)"
agent_output 1 | grep_q '^rollback exited [1-9]' && die "boot 1: --rollback failed: $(agent_output 1 | tail -n 3)"
# The next boot went through firmware and GRUB (a reboot, not kexec), and GRUB chose A.
between=$(tr -d '\r' < "$VM_LOG" | sed -n '/^OSU-AGENT-BEGIN boot=1 /,/^OSU-AGENT-BEGIN boot=2 /p')
grep -q 'os-update: booting slot A$' <<<"$between" || die "the boot after the rollback was not GRUB booting A"

expect "boot 2" "$(agent_begin 2 | cut -d' ' -f2-5)" "boot=2 slot=A trial=0 system=running"
status=$(agent_json 2 booted)
expect "boot 2: booted slot" "$(json_get "$status" booted)" A
expect "boot 2: committed slot" "$(json_get "$status" committed)" A
expect "boot 2: slot B still holds 2.0" "$(json_get "$status" slots.B.version)" 2.0
out=$(agent_output 2)
expect "--check exit code (nothing offered)" "$(sed -n 's/^check exited //p' <<<"$out")" 0
grep -q '"update_available":false,.*"reason":"version 2.0 was rolled back on this device"' <<<"$out" \
  || die "--check did not say 2.0 was rolled back: $out"
expect "--apply of 2.0 exit code" "$(sed -n 's/^apply exited //p' <<<"$out")" 2
grep -q '"event":"error".*version 2.0 was rolled back on this device' <<<"$out" \
  || die "--apply did not say why it refused: $out"
expect "--apply --allow-downgrade --dry-run exit code" "$(sed -n 's/^downgrade dry-run exited //p' <<<"$out")" 0
expect "rejected versions on the ESP" "$(sed -n 's/^rejected: //p' <<<"$out")" 2.0
env=$(esp_grubenv "$VM_DISK")
expect "OSU_ORDER" "$(sed -n 's/^OSU_ORDER=//p' <<<"$env")" "A B"
expect "OSU_B_LEFT" "$(sed -n 's/^OSU_B_LEFT=//p' <<<"$env")" 0
vm_pass "S6 rollback from a committed B: A through GRUB, 2.0 not offered again"
