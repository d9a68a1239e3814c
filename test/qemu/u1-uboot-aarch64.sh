#!/usr/bin/env bash
# U1: real U-Boot (Debian's u-boot-qemu, qemu_arm64) runs uboot-scripts/boot.scr from the FAT
# boot partition of an rpi4-layout disk, and it and os-update share one env (pflash bank 1):
#   1. the factory env boots the committed slot A, counts the attempt, puts osu.slot=A and the
#      slot's root on the command line; U-Boot's saveenv is what fw_printenv and os-update read;
#   2. os-update --apply --reboot (on the host; the power-on is the reboot) installs 2.0 into B
#      and writes OSU_TRY=B: U-Boot boots B once as a trial from B's own kernel and initrd and
#      clears OSU_TRY; not committed, the next boot is A again; applied and tried again,
#      --commit makes B the default, and U-Boot then boots it;
#   3. B's kernel broken: U-Boot counts B's attempts down, resetting, and falls back to A.
# Usage: test/qemu/u1-uboot-aarch64.sh (root not needed; exits 77 when a tool is missing).
set -euo pipefail
# shellcheck source=arm64/lib.sh
. "$(dirname "$0")/arm64/lib.sh"
prepare
scenario_start=$(date +%s)
vm_new u1-uboot-aarch64
partuuid() { sfdisk --part-uuid "$VM_DISK" "$1" | tr A-F a-f; }

log "1: factory env, slot A committed"
vm_boot
expect "boot 1: slot" "$(vm_said slot)" A
expect "boot 1: trial" "$(vm_said trial)" 0
expect "boot 1: initrd of" "$(vm_said version)" 1.0
expect "boot 1: root= of slot A" "$(grep -o 'root=[^ ]*' "$VM_DIR/cmdline")" "root=PARTUUID=$(partuuid 2)"
expect "boot 1: slot's cmdline" "$(grep -c -F "$GUEST_CMDLINE" "$VM_DIR/cmdline")" 1
# U-Boot decremented A's attempts and saved: the whole env, its own variables included.
expect "env after boot 1: OSU_A_LEFT" "$(env_get OSU_A_LEFT)" 2
expect "env after boot 1: OSU_ORDER" "$(env_get OSU_ORDER)" "A B"
expect "env after boot 1: bootcmd" "$(env_get bootcmd)" "run distro_bootcmd"
status=$(osu_status)
expect "status after boot 1: booted" "$(json_get "$status" booted)" A
expect "status after boot 1: committed" "$(json_get "$status" committed)" A
expect "status after boot 1: A attempts" "$(json_get "$status" slots.A.attempts_left)" 2
# A normal boot's --commit gives the booted slot its attempts back.
osu --commit >/dev/null
expect "env after --commit: OSU_A_LEFT" "$(env_get OSU_A_LEFT)" 3

log "2: --apply 2.0 into B, reboot activation (OSU_TRY=B)"
slot_content 2.0 "$VM_DIR/b.img"
mkdir -p "$VM_DIR/v2"
# B's kernel gzip'd: boot.scr's kernel_comp_addr_r path (booti unpacks it).
gzip -n -1 -c "$CACHE/vmlinuz" > "$VM_DIR/v2/vmlinuz"
make_initrd 2.0 "$VM_DIR/v2/initrd.img"
"$OSU_BIN/os-update-bundle" create --image "$VM_DIR/b.img" --compression zstd \
  --boot-file "$VM_DIR/v2/vmlinuz" --boot-file "$VM_DIR/v2/initrd.img" \
  --cmdline "$GUEST_CMDLINE" --compatible "$COMPATIBLE" --version 2.0 \
  --key "$KEYS/test.pem" --output "$VM_DIR/u.osu" >/dev/null
apply_and_try() {
  osu --apply "$VM_DIR/u.osu" --reboot > "$VM_DIR/apply.out" || die "--apply failed: $(cat "$VM_DIR/apply.out")"
  expect "env after --apply: OSU_TRY (fw_printenv)" "$(env_get OSU_TRY)" B
  expect "env after --apply: OSU_B_LEFT" "$(env_get OSU_B_LEFT)" 0
  vm_boot
  expect "boot $VM_BOOTS: slot" "$(vm_said slot)" B
  expect "boot $VM_BOOTS: trial" "$(vm_said trial)" 1
  expect "boot $VM_BOOTS: initrd of" "$(vm_said version)" 2.0
  expect "boot $VM_BOOTS: root= of slot B" "$(grep -o 'root=[^ ]*' "$VM_DIR/cmdline")" "root=PARTUUID=$(partuuid 3)"
  # U-Boot consumed the one-shot try and saved; a trial does not count attempts.
  expect "env after boot $VM_BOOTS: OSU_TRY" "$(env_get OSU_TRY)" ""
  expect "env after boot $VM_BOOTS: OSU_ORDER" "$(env_get OSU_ORDER)" "A B"
  expect "env after boot $VM_BOOTS: bootcmd" "$(env_get bootcmd)" "run distro_bootcmd"
  status=$(osu_status)
  expect "status after boot $VM_BOOTS: booted" "$(json_get "$status" booted)" B
  expect "status after boot $VM_BOOTS: trial" "$(json_get "$status" trial)" true
  expect "status after boot $VM_BOOTS: try" "$(json_get "$status" try)" null
  expect "status after boot $VM_BOOTS: committed" "$(json_get "$status" committed)" A
}
apply_and_try
expect "env after boot 2: OSU_A_LEFT" "$(env_get OSU_A_LEFT)" 3

log "2b: the trial is not committed: the next boot is the committed slot A"
vm_boot
expect "boot 3: slot" "$(vm_said slot)" A
expect "boot 3: trial" "$(vm_said trial)" 0
expect "boot 3: initrd of" "$(vm_said version)" 1.0
expect "env after boot 3: OSU_A_LEFT" "$(env_get OSU_A_LEFT)" 2
status=$(osu_status)
expect "status after boot 3: booted" "$(json_get "$status" booted)" A
expect "status after boot 3: committed" "$(json_get "$status" committed)" A

log "2c: --apply again, the trial of B commits, U-Boot boots B from then on"
apply_and_try
osu --commit >/dev/null
expect "env after --commit: OSU_ORDER" "$(env_get OSU_ORDER)" "B A"
expect "env after --commit: OSU_B_LEFT" "$(env_get OSU_B_LEFT)" 3
vm_boot
expect "boot 5: slot" "$(vm_said slot)" B
expect "boot 5: trial" "$(vm_said trial)" 0
expect "boot 5: initrd of" "$(vm_said version)" 2.0
expect "env after boot 5: OSU_B_LEFT" "$(env_get OSU_B_LEFT)" 2
status=$(osu_status)
expect "status after boot 5: booted" "$(json_get "$status" booted)" B
expect "status after boot 5: committed" "$(json_get "$status" committed)" B
expect "status after boot 5: B attempts" "$(json_get "$status" slots.B.attempts_left)" 2

log "3: B's kernel broken: attempts run out, A boots"
# Its header zeroed: booti refuses it ("Bad Linux ARM64 Image magic"), the script resets.
dd if=/dev/zero of="$VM_BOOT/osu/B/vmlinuz" bs=4096 count=1 conv=notrunc status=none
vm_boot
expect "boot 6: B attempts counted" "$(log_count '^os-update: slot B, attempt counted')" 2
expect "boot 6: B failed to boot" "$(log_count '^os-update: slot B failed to boot')" 2
expect "boot 6: resets" "$(log_count '^resetting')" 2
expect "boot 6: A attempt counted" "$(log_count '^os-update: slot A, attempt counted')" 1
expect "boot 6: slot" "$(vm_said slot)" A
expect "boot 6: trial" "$(vm_said trial)" 0
expect "boot 6: initrd of" "$(vm_said version)" 1.0
expect "env after boot 6: OSU_B_LEFT" "$(env_get OSU_B_LEFT)" 0
expect "env after boot 6: OSU_A_LEFT" "$(env_get OSU_A_LEFT)" 1
expect "env after boot 6: OSU_ORDER" "$(env_get OSU_ORDER)" "B A"
status=$(osu_status)
expect "status after boot 6: booted" "$(json_get "$status" booted)" A
expect "status after boot 6: committed" "$(json_get "$status" committed)" B
expect "status after boot 6: B attempts" "$(json_get "$status" slots.B.attempts_left)" 0
vm_pass "U1 U-Boot boots the committed slot, a one-shot try, and falls back ($(( $(date +%s) - scenario_start ))s)"
