#!/usr/bin/env bash
# S10: a slot written with --apply --no-activate has never run, so --rollback to it is refused
# (exit 4, nothing changed); --activate --reboot starts it as GRUB's one-shot trial, and when
# its kernel does not come up the machine is back in A by itself. One power-on:
#   boot 1  A (factory), committed by its first good boot; --apply 2.0 --no-activate, whose
#           kernel is not a kernel (its first 64 KiB zeroed, signed so: the bundle is valid);
#           --rollback refused; --activate --reboot
#   then    GRUB clears OSU_TRY and tries B: `linux` fails, GRUB reboots, and boots A
#   boot 2  A, booted and committed
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s10-rollback-refused-activate-bad-kernel

# 2.0's image and boot files (cached), then a bundle of them with the kernel zeroed.
bundle 2.0 "$VM_DIR/good.osu" zstd
dd if=/dev/zero of="$VM_DIR/good.osu.boot/vmlinuz" bs=64K count=1 conv=notrunc status=none
"$OSU_BIN/os-update-bundle" create --image "$VM_DIR/good.osu.img" --compression zstd \
  --boot-file "$VM_DIR/good.osu.boot/vmlinuz" --boot-file "$VM_DIR/good.osu.boot/initrd.img" \
  --cmdline "$GUEST_CMDLINE" --compatible "$COMPATIBLE" --version 2.0 \
  --key "$KEYS/test.pem" --output "$VM_DIR/update.osu" >/dev/null
bundle_disk "$VM_DIR/update.osu" "$VM_DIR/bundle-disk.img"

# The bytes --rollback must leave alone: both grubenv copies and both records.
cat > "$VM_DIR/agent.sh" <<'AGENT'
case $OSU_BOOT in
  1) grep '^committed_at:' /boot/efi/osu/A/record.yml | sed 's/^/A record /'
     os-update --apply /dev/vdb --no-activate --json; echo "apply exited $?"
     os-update --status --json
     files="/boot/efi/osu/grubenv /boot/efi/osu/grubenv.bak /boot/efi/osu/A/record.yml /boot/efi/osu/B/record.yml"
     before=$(sha256sum $files)
     os-update --rollback > /tmp/out 2> /tmp/err; echo "rollback exited $?"
     sed 's/^/rollback stdout: /' /tmp/out; sed 's/^/rollback stderr: /' /tmp/err
     if [ "$(sha256sum $files)" = "$before" ]; then echo "rollback: files unchanged"
     else echo "rollback: files changed"; fi
     # The reboot it starts ends this script: no exit code to print.
     os-update --activate --reboot --json ;;
  *) os-update --status --json ;;
esac
AGENT
vm_agent "$VM_DIR/agent.sh"

log "power-on: A commits, apply --no-activate, rollback refused, activate --reboot, B fails, A"
vm_boot --timeout 1200 --disk2 "$VM_DIR/bundle-disk.img"
serial=$(tr -d '\r' < "$VM_LOG" | sed 's/\x1b\[[0-9;=]*[A-Za-z]//g')
out1=$(agent_output 1)
expect "boot 1" "$(agent_begin 1 | cut -d' ' -f2-5)" "boot=1 slot=A trial=0 system=running"
grep_q '^A record committed_at: ' <<<"$out1" || die "boot 1: A's first good boot did not commit it (no committed_at)"
log "ok: boot 1: slot A's $(sed -n 's/^A record //p' <<<"$out1")"
expect "boot 1: apply --no-activate" "$(grep '^apply exited' <<<"$out1")" "apply exited 0"
status=$(agent_json 1 booted)
expect "boot 1: slot B's record" "$(json_get "$status" slots.B.state)/$(json_get "$status" slots.B.version)" verified/2.0
expect "boot 1: committed slot" "$(json_get "$status" committed)" A
expect "boot 1: pending try" "$(json_get "$status" try)" null

expect "--rollback exit code" "$(grep '^rollback exited' <<<"$out1")" "rollback exited 4"
expect "--rollback stdout" "$(grep -c '^rollback stdout: ' <<<"$out1" || true)" 0
expect "--rollback stderr lines" "$(grep -c '^rollback stderr: ' <<<"$out1" || true)" 1
msg=$(sed -n 's/^rollback stderr: //p' <<<"$out1")
grep_q 'never run as the committed slot' <<<"$msg" && grep_q -- '--activate' <<<"$msg" \
  || die "--rollback: unexpected message: $msg"
log "--rollback said: $msg"
expect "--rollback: grubenv, grubenv.bak and records" "$(grep '^rollback: files' <<<"$out1")" "rollback: files unchanged"

grep_q '"message":"set OSU_TRY=B and reboot into slot B once' <<<"$out1" \
  || die "boot 1: --activate did not set up a reboot into B: $(tail -n 3 <<<"$out1")"
# After boot 1's agent: firmware, GRUB's one-shot trial of B, its failure, then A.
after=$(sed -n '/^OSU-AGENT-BEGIN boot=1 /,/^OSU-AGENT-BEGIN boot=2 /p' <<<"$serial")
expect "GRUB's choices after --activate" "$(grep -o 'os-update: booting slot.*\|os-update: slot B did not boot.*' <<<"$after" | paste -sd'|')" \
  "os-update: booting slot B osu.trial=1|os-update: slot B did not boot; rebooting|os-update: booting slot A"

expect "boot 2" "$(agent_begin 2 | cut -d' ' -f2-5)" "boot=2 slot=A trial=0 system=running"
status=$(agent_json 2 booted)
expect "boot 2: booted/committed slot" "$(json_get "$status" booted)/$(json_get "$status" committed)" A/A
expect "boot 2: slot B's record" "$(json_get "$status" slots.B.state)/$(json_get "$status" slots.B.version)" verified/2.0
esp_cat "$VM_DISK" osu/B/record.yml | grep_q '^committed_at:' && die "slot B's record says it was committed"
# The whole env: A first with its attempts back, B none, no OSU_TRY left.
expect "grubenv" "$(esp_grubenv "$VM_DISK" | paste -sd'|')" "OSU_ORDER=A B|OSU_A_LEFT=3|OSU_B_LEFT=0"
vm_pass "S10 --rollback to a never-run slot refused; --activate of a bad kernel: back in A"
