#!/usr/bin/env bash
# S5: a 2.0 whose health check fails. Its image has a unit RequiredBy=boot-complete.target
# that fails, so after the kexec into B boot-complete.target is never reached and nothing
# commits; os-update-trial-timeout.timer (shortened for the test by a drop-in in the image)
# ends the trial by itself with a reboot, and firmware and GRUB bring the machine back to A,
# the committed slot. B's record stays what it is: 2.0 verified, never committed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s5-health-check-fails
# Long enough for the kexec boot to reach its agent (~80 s at load 10 on 2 cores); the test
# waits for it, so no longer.
TRIAL_TIMEOUT=${OSU_TEST_TRIAL_TIMEOUT:-150}

o=$VM_DIR/overlay/etc/systemd/system
mkdir -p "$o/boot-complete.target.requires" "$o/os-update-trial-timeout.timer.d" \
         "$o/os-update-trial-timeout.service.d"
cat > "$o/osu-test-health.service" <<'UNIT'
[Unit]
Description=Health check of the product (fails in this 2.0)
Before=boot-complete.target
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "health check: the product is broken" >&2; exit 1'
[Install]
RequiredBy=boot-complete.target
UNIT
ln -s ../osu-test-health.service "$o/boot-complete.target.requires/osu-test-health.service"
printf '[Timer]\nOnBootSec=\nOnBootSec=%ss\n' "$TRIAL_TIMEOUT" > "$o/os-update-trial-timeout.timer.d/test.conf"
# Evidence on the serial console that the reboot is the trial timeout's.
printf '[Service]\nExecStartPre=/bin/sh -c "echo OSU-TRIAL-TIMEOUT > /dev/ttyS0"\n' \
  > "$o/os-update-trial-timeout.service.d/test.conf"
bundle 2.0 "$VM_DIR/update.osu" zstd "$VM_DIR/overlay"
bundle_disk "$VM_DIR/update.osu" "$VM_DIR/bundle-disk.img"

cat > "$VM_DIR/agent.sh" <<'AGENT'
case $OSU_BOOT in
  1) os-update --apply /dev/vdb --json; echo "apply exited $?" ;;
  2) os-update --status --json
     systemctl is-active boot-complete.target os-update-commit.service os-update-trial-timeout.timer | paste -sd' '
     # The trial timeout reboots the machine while this waits (the agent is stopped with it).
     sleep 900 ;;
  *) os-update --status --json ;;
esac
AGENT
vm_agent "$VM_DIR/agent.sh"

log "power-on: apply in A, kexec into B, health check fails, trial timeout (${TRIAL_TIMEOUT}s), GRUB boots A"
vm_boot --timeout 1500 --disk2 "$VM_DIR/bundle-disk.img"
agent_output 1 | grep_q '"message":"kexec into slot B' || die "boot 1: --apply did not kexec into B"
expect "boot 2" "$(agent_begin 2 | cut -d' ' -f2-5)" "boot=2 slot=B trial=1 system=degraded"
tr -d '\r' < "$VM_LOG" | grep_q "^OSU-AGENT-FAILED boot=2 units=osu-test-health.service$" \
  || die "boot 2: the health check was not the failed unit"
status=$(agent_json 2 booted)
expect "boot 2: booted slot" "$(json_get "$status" booted)" B
expect "boot 2: committed slot" "$(json_get "$status" committed)" A
expect "boot 2: trial" "$(json_get "$status" trial)" true
# boot-complete.target failed, so the commit never ran; the timer waits.
expect "boot 2: boot-complete, commit, timer" "$(agent_output 2 | grep -E '^(in)?active|^failed' | head -n1)" \
  "inactive inactive active"
tr -d '\r' < "$VM_LOG" | grep_q '^OSU-BOOT-COMPLETE osu.slot=B' && die "boot 2 reached boot-complete.target"
# The trial timeout rebooted; the boot after it went through firmware and GRUB into A.
between=$(tr -d '\r' < "$VM_LOG" | sed -n '/^OSU-AGENT-BEGIN boot=2 /,/^OSU-AGENT-BEGIN boot=3 /p')
grep -q '^OSU-TRIAL-TIMEOUT' <<<"$between" || die "the trial timeout did not fire in boot 2"
grep -q 'os-update: booting slot A$' <<<"$between" || die "after the trial, GRUB did not boot A"
t0=$(line_time 'OSU-AGENT-BEGIN boot=2 ') t1=$(line_time '^OSU-TRIAL-TIMEOUT')
log "trial timeout fired $(seconds "$t0" "$t1")s after boot 2's agent began"

expect "boot 3" "$(agent_begin 3 | cut -d' ' -f2-5)" "boot=3 slot=A trial=0 system=running"
status=$(agent_json 3 booted)
expect "boot 3: booted slot" "$(json_get "$status" booted)" A
expect "boot 3: committed slot" "$(json_get "$status" committed)" A
expect "boot 3: slot B's record" "$(json_get "$status" slots.B.state)/$(json_get "$status" slots.B.version)" verified/2.0
env=$(esp_grubenv "$VM_DISK")
expect "OSU_ORDER" "$(sed -n 's/^OSU_ORDER=//p' <<<"$env")" "A B"
expect "OSU_TRY" "$(sed -n 's/^OSU_TRY=//p' <<<"$env")" ""
expect "OSU_B_LEFT (never bootable by default)" "$(sed -n 's/^OSU_B_LEFT=//p' <<<"$env")" 0
vm_pass "S5 failing health check: no commit, trial timeout, back in A"
