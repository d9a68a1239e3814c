#!/usr/bin/env bash
# S7: reboot activation (`--apply --reboot`: OSU_TRY, a one-shot trial through firmware and
# GRUB) instead of kexec, and the time it costs. One disk, in order:
#   power-on 1  A applies 2.0 with --reboot; GRUB boots B once as a trial; power cut while
#               that trial is held before boot-complete.target (so before its commit)
#   power-on 2  GRUB boots A (the try was used up); A applies 2.0 again with --reboot; B's
#               trial reaches boot-complete and commits; then B applies 2.0 into A with
#               --kexec, and A's trial commits
# Measured on the host's clock of the serial log (run-vm.sh's LOG.times): from the end of
# --apply (its activation message) to boot-complete.target in the new slot, by reboot and by
# kexec: "RATIO kexec/reboot".
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s7-reboot-activation

# The cut must come before B's trial commits, however fast the machine: in 2.0, a unit that
# boot-complete.target requires holds the trial while the ESP has osu-test/hold-trial (the host
# puts it there for power-on 1 only) and says so on the console; the cut comes then. The test
# agent waits for it too, so that this boot does not count as one of the agent's boots.
o=$VM_DIR/overlay/etc/systemd/system
mkdir -p "$o/boot-complete.target.requires"
cat > "$o/osu-test-hold-trial.service" <<'UNIT'
[Unit]
Description=os-update QEMU test: hold the trial before boot-complete.target
Before=boot-complete.target osu-test-agent.service
RequiresMountsFor=/boot/efi
ConditionPathExists=/boot/efi/osu-test/hold-trial
[Service]
Type=oneshot
TimeoutStartSec=infinity
ExecStart=/bin/sh -c 'echo OSU-TEST-TRIAL-HELD > /dev/ttyS0; exec sleep infinity'
UNIT
ln -s ../osu-test-hold-trial.service "$o/boot-complete.target.requires/osu-test-hold-trial.service"
bundle 2.0 "$VM_DIR/update.osu" zstd "$VM_DIR/overlay"
bundle_disk "$VM_DIR/update.osu" "$VM_DIR/bundle-disk.img"
cat > "$VM_DIR/agent.sh" <<'AGENT'
case $OSU_BOOT in
  1) os-update --apply /dev/vdb --reboot --json; echo "apply exited $?" ;;
  2) os-update --status --json
     os-update --apply /dev/vdb --reboot --json; echo "apply exited $?" ;;
  3) os-update --status --json
     os-update --apply /dev/vdb --kexec --json; echo "apply exited $?" ;;
  *) os-update --status --json ;;
esac
AGENT
vm_agent "$VM_DIR/agent.sh"
env_var() { esp_grubenv "$VM_DISK" | sed -n "s/^$1=//p"; }
# The serial log from boot N's agent to boot M's.
between() { tr -d '\r' < "$VM_LOG" | sed -n "/^OSU-AGENT-BEGIN boot=$1 /,/^OSU-AGENT-BEGIN boot=$2 /p"; }

log "power-on 1: apply --reboot in A, GRUB's one-shot trial of B, power cut while it is held"
mmd -i "$(esp "$VM_DISK")" ::osu-test 2>/dev/null || true
echo hold > "$VM_DIR/hold-trial"; esp_put "$VM_DISK" "$VM_DIR/hold-trial" osu-test/hold-trial
vm_boot --timeout 900 --disk2 "$VM_DIR/bundle-disk.img" --cut 'OSU-TEST-TRIAL-HELD' --cut-after 2
between 1 2 | grep_q 'os-update: booting slot B osu.trial=1$' || die "GRUB did not boot B as a one-shot trial"
agent_output 1 | grep_q '"message":"set OSU_TRY=B and reboot into slot B once' \
  || die "boot 1: --apply did not set up a reboot into B: $(agent_output 1 | tail -n 3)"
tr -d '\r' < "$VM_LOG" | grep_q '^OSU-BOOT-COMPLETE osu.slot=B' && die "the cut came too late: B's trial completed"
expect "after the cut: OSU_TRY (GRUB used it up before booting B)" "$(env_var OSU_TRY)" ""
expect "after the cut: OSU_ORDER" "$(env_var OSU_ORDER)" "A B"
expect "after the cut: OSU_B_LEFT" "$(env_var OSU_B_LEFT)" 0
mdel -i "$(esp "$VM_DISK")" ::osu-test/hold-trial

log "power-on 2: A; apply --reboot, B's trial commits; apply --kexec, A's trial commits"
vm_boot --timeout 1800 --disk2 "$VM_DIR/bundle-disk.img"
between 1 2 | grep_q 'os-update: booting slot A$' || die "after the cut trial, GRUB did not boot A"
expect "boot 2" "$(agent_begin 2 | cut -d' ' -f2-5)" "boot=2 slot=A trial=0 system=running"
status=$(agent_json 2 booted)
expect "boot 2: committed slot" "$(json_get "$status" committed)" A
expect "boot 2: slot B's record" "$(json_get "$status" slots.B.state)/$(json_get "$status" slots.B.version)" verified/2.0
expect "boot 2: pending try" "$(json_get "$status" try)" null

agent_output 2 | grep_q '"message":"set OSU_TRY=B and reboot into slot B once' \
  || die "boot 2: --apply did not set up a reboot into B: $(agent_output 2 | tail -n 3)"
between 2 3 | grep_q 'BdsDxe' || die "boot 3 did not go through the firmware"
between 2 3 | grep_q 'os-update: booting slot B osu.trial=1$' || die "GRUB did not boot B as a one-shot trial"
expect "boot 3" "$(agent_begin 3 | cut -d' ' -f2-5)" "boot=3 slot=B trial=1 system=running"
status=$(agent_json 3 booted)
expect "boot 3: committed slot (the trial passed)" "$(json_get "$status" committed)" B
expect "boot 3: slot B version" "$(json_get "$status" slots.B.version)" 2.0

agent_output 3 | grep_q '"message":"kexec into slot A' || die "boot 3: --apply did not kexec into A"
between 3 4 | grep_q -E 'BdsDxe|os-update: booting slot' && die "boot 4 went through firmware, not kexec"
expect "boot 4" "$(agent_begin 4 | cut -d' ' -f2-5)" "boot=4 slot=A trial=1 system=running"
status=$(agent_json 4 booted)
expect "boot 4: committed slot" "$(json_get "$status" committed)" A
expect "boot 4: slot A version" "$(json_get "$status" slots.A.version)" 2.0
expect "OSU_ORDER at the end" "$(env_var OSU_ORDER)" "A B"

# From the end of --apply to boot-complete.target in the new slot.
r0=$(line_time '"message":"set OSU_TRY=B and reboot' 'OSU-AGENT-BEGIN boot=2 ')
r1=$(line_time '^OSU-BOOT-COMPLETE osu.slot=B osu.trial=1' 'OSU-AGENT-BEGIN boot=2 ')
k0=$(line_time '"message":"kexec into slot A' 'OSU-AGENT-BEGIN boot=3 ')
k1=$(line_time '^OSU-BOOT-COMPLETE osu.slot=A osu.trial=1' 'OSU-AGENT-BEGIN boot=3 ')
[ -n "$r0" ] && [ -n "$r1" ] && [ -n "$k0" ] && [ -n "$k1" ] || die "timing lines missing in $VM_LOG.times"
g=$(line_time 'os-update: booting slot B osu.trial=1$' 'OSU-AGENT-BEGIN boot=2 ')
reboot_s=$(seconds "$r0" "$r1") kexec_s=$(seconds "$k0" "$k1")
# Also kept in $CACHE/figures.txt: ctest shows a passing test's output to no one; CI prints it.
{
  echo "TIME reboot activation (end of --apply to boot-complete in B): ${reboot_s}s" \
       "(of which shutdown, firmware and GRUB up to its boot of B: $(seconds "$r0" "$g")s)"
  echo "TIME kexec activation  (end of --apply to boot-complete in A): ${kexec_s}s"
  echo "RATIO kexec/reboot = $kexec_s/$reboot_s = $(awk -v k="$kexec_s" -v r="$reboot_s" 'BEGIN { printf "%.2f", k / r }')"
} | tee -a "$CACHE/figures.txt"
vm_pass "S7 reboot activation: a cut trial returns to A, a passing one commits; kexec ${kexec_s}s vs reboot ${reboot_s}s"
