#!/usr/bin/env bash
# P1: the Raspberry Pi 4 as QEMU's raspi4b models it, booted for real from an SD card made
# from partition-layouts/rpi4.sfdisk: Debian's u-boot-rpi (rpi_4) loads uboot.env from the FAT
# partition and runs uboot-scripts/boot.scr, which picks the slot and boots Debian's arm64 kernel
# and the initrd from the slot's directory; the initrd mounts the slot's squashfs root.
#   1. the factory SD card boots A; U-Boot's saveenv counts the attempt in uboot.env on FAT;
#   2. os-update --apply --reboot of 2.0 (on the host, against the SD image): U-Boot boots B once
#      as a trial, from B's kernel, initrd and root; not committed (as when its health check
#      fails), the next boot is A;
#   3. applied and tried again, --commit: B boots from then on;
#   4. a power cut (SIGKILL) right after U-Boot's saveenv counted B's attempt; that write then
#      torn (the bytes a cut inside it leaves, composed from the env before and after: QEMU's
#      SD card writes whole sectors): U-Boot finds a bad CRC and comes up on its built-in
#      default env, boot.scr takes the order from os-update's selection copies: B boots;
#   5. os-update's own write torn the same way (--apply 3.0 --reboot: OSU_TRY=A through
#      libubootenv, on the host): not the trial of A, the committed B boots.
# Usage: test/qemu/p1-pi4-sd.sh (root not needed; exits 77 when a tool is missing).
set -euo pipefail
# shellcheck source=pi/lib.sh
. "$(dirname "$0")/pi/lib.sh"
prepare
scenario_start=$(date +%s)
vm_new p1-pi4-sd
partuuid() { sfdisk --part-uuid "$VM_DISK" "$1" | tr A-F a-f; }
# The selection copy as the oracle reads it: copy_get FILE NAME.
copy_get() { echo "$VM_BOOT/osu/$1 0x0 0x1000" > "$VM_DIR/copy.config"; fw_printenv -c "$VM_DIR/copy.config" -n "$2" 2>/dev/null || true; }
booted() {  # booted N SLOT TRIAL VERSION: what the agent and the initrd said
  expect "boot $1: slot" "$(vm_said slot)" "$2"
  expect "boot $1: trial" "$(vm_said trial)" "$3"
  expect "boot $1: root's version" "$(vm_said version)" "$4"
  expect "boot $1: initrd's version" "$(initrd_said)" "$4"
  local part=2; [ "$2" = A ] || part=3
  expect "boot $1: root device" "$(vm_said root)" "/dev/mmcblk0p$part"
  expect "boot $1: root=" "$(grep -o 'root=[^ ]*' "$VM_DIR/cmdline")" "root=PARTUUID=$(partuuid $part)"
}
# bundle VERSION OUT: the slot's squashfs root, the gzip'd kernel and the version's initrd.
bundle() {
  local d=$VM_DIR/v$1; mkdir -p "$d"
  pi_rootfs "$1" "$d/root.img"
  cp "$PI_CACHE/vmlinuz.gz" "$d/vmlinuz"
  pi_initrd "$1" "$d/initrd.img"
  "$OSU_BIN/os-update-bundle" create --image "$d/root.img" --compression zstd \
    --boot-file "$d/vmlinuz" --boot-file "$d/initrd.img" --cmdline "$GUEST_CMDLINE" \
    --compatible "$COMPATIBLE" --version "$1" --key "$KEYS/test.pem" --output "$2" >/dev/null
}

log "1: the factory SD card boots A"
vm_boot
booted 1 A 0 1.0
expect "env after boot 1 (U-Boot's saveenv on FAT): OSU_A_LEFT" "$(env_get OSU_A_LEFT)" 2
expect "env after boot 1: OSU_ORDER" "$(env_get OSU_ORDER)" "A B"
status=$(osu_status)
expect "status after boot 1: booted" "$(json_get "$status" booted)" A
expect "status after boot 1: committed" "$(json_get "$status" committed)" A
osu --commit >/dev/null
expect "env after --commit: OSU_A_LEFT" "$(env_get OSU_A_LEFT)" 3
expect "selection copy after --commit: OSU_A_LEFT" "$(copy_get selection.env OSU_A_LEFT)" 3

log "2: --apply 2.0 --reboot: B's trial; not committed, A boots again"
bundle 2.0 "$VM_DIR/u2.osu"
try_b() {
  osu --apply "$VM_DIR/u2.osu" --reboot > "$VM_DIR/apply.out" || die "--apply failed: $(cat "$VM_DIR/apply.out")"
  expect "env after --apply: OSU_TRY" "$(env_get OSU_TRY)" B
  vm_boot
  booted "$VM_BOOTS" B 1 2.0
  expect "env after boot $VM_BOOTS: OSU_TRY" "$(env_get OSU_TRY)" ""
  status=$(osu_status)
  expect "status after boot $VM_BOOTS: booted" "$(json_get "$status" booted)" B
  expect "status after boot $VM_BOOTS: trial" "$(json_get "$status" trial)" true
  expect "status after boot $VM_BOOTS: committed" "$(json_get "$status" committed)" A
}
try_b
vm_boot
booted 3 A 0 1.0

log "3: applied and tried again, committed: B"
try_b
osu --commit >/dev/null
expect "env after --commit: OSU_ORDER" "$(env_get OSU_ORDER)" "B A"
expect "selection copy after --commit: OSU_ORDER" "$(copy_get selection.env OSU_ORDER)" "B A"
expect "selection copy .bak after --commit: OSU_ORDER" "$(copy_get selection.env.bak OSU_ORDER)" "B A"

# tear BEFORE AFTER: uboot.env as a power cut inside the rewrite of BEFORE into AFTER leaves
# it: the first sector's programming stopped after the CRC (AFTER's) and before the variables
# (BEFORE's). U-Boot sorts the env, so OSU_* (upper case) are in that first sector: a cut on a
# sector boundary leaves the old or the new env whole, only a cut inside a sector tears it.
tear() { { head -c 4 "$2"; tail -c +5 "$1"; } > "$VM_ENV"; boot_push; }

log "4: a power cut right after U-Boot's saveenv counted B's attempt, then that write torn"
cp "$VM_ENV" "$VM_DIR/env.before"
vm_boot --cut '^os-update: slot B, attempt counted'
expect "boot 5 (cut): U-Boot saved B's attempt" "$(env_get OSU_B_LEFT)" 2
tear "$VM_DIR/env.before" "$VM_ENV"
env_valid && die "the torn uboot.env still reads whole"
log "ok: uboot.env torn (fw_printenv: bad CRC)"
vm_boot
expect "boot 6: U-Boot on its default env" "$(log_count 'bad CRC')" 1
expect "boot 6: boot.scr took the order from the copy" "$(log_count '^os-update: env lost; order and attempts from /osu/selection.env$')" 1
booted 6 B 0 2.0
expect "env after boot 6: OSU_ORDER (saved whole again)" "$(env_get OSU_ORDER)" "B A"
expect "env after boot 6: bootcmd (U-Boot's default env)" "$(env_get bootcmd)" "run distro_bootcmd"
status=$(osu_status)
expect "status after boot 6: committed" "$(json_get "$status" committed)" B
osu --commit >/dev/null

log "5: os-update's write torn: --apply 3.0 --reboot into A (OSU_TRY=A through libubootenv)"
bundle 3.0 "$VM_DIR/u3.osu"
cp "$VM_ENV" "$VM_DIR/env.before"
osu --apply "$VM_DIR/u3.osu" --reboot > "$VM_DIR/apply.out" || die "--apply failed: $(cat "$VM_DIR/apply.out")"
expect "env after --apply 3.0: OSU_TRY" "$(env_get OSU_TRY)" A
tear "$VM_DIR/env.before" "$VM_ENV"
env_valid && die "the torn uboot.env still reads whole"
vm_boot
expect "boot 7: U-Boot on its default env" "$(log_count 'bad CRC')" 1
booted 7 B 0 2.0
mkdir -p "${OSU_QEMU_CACHE:-/var/tmp/osu-qemu}"
pi_figures "P1 (raspi4b under TCG)" "$scenario_start"
vm_pass "P1 the Pi 4 boots its slots from the SD card; torn env writes end in the committed slot ($(( $(date +%s) - scenario_start ))s)"
