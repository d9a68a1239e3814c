# shellcheck shell=bash
# Shared by the Raspberry Pi 4 scenarios test/qemu/p<N>-*.sh (sourced, not run), on top of
# arm64/lib.sh: qemu-system-aarch64 -M raspi4b with Debian's u-boot-rpi (rpi_4) as the kernel
# QEMU loads in place of the Pi's firmware, the device tree from Debian's arm64 kernel package,
# an SD card (8 GiB sparse: the SD model wants a power of two) from partition-layouts/rpi4.sfdisk
# whose FAT partition holds boot.scr, uboot.env (U-Boot's env: one 16 KiB copy, CONFIG_ENV_IS_IN_FAT),
# /osu/<S>/{vmlinuz,initrd.img,boot.env,record.yml} and os-update's selection copies. Each
# slot holds a squashfs root (busybox and an agent); the slot's initrd loads the SD and squashfs
# modules and mounts it. os-update runs on the host against the SD image (see README.md).
PI_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../arm64/lib.sh
. "$PI_DIR/../arm64/lib.sh"
# shellcheck disable=SC2034  # QEMU_TAG, COMPATIBLE: read by arm64/lib.sh and common.sh
QEMU_TAG=qemu-pi COMPATIBLE=osu-qemu-rpi4
PI_CACHE=$CACHE/pi
UBOOT_BIN=$PI_CACHE/u-boot.bin
# CONFIG_ENV_SIZE of rpi_4: 0x4000, in uboot.env on mmc 0:1, one copy.
ENV_SIZE=0x4000
SD_SIZE=8G
# The kernel's console is the PL011 (QEMU's first serial, ttyAMA0); U-Boot's is the mini UART
# (the second), as the Pi 4's device tree says (stdout-path = serial1). clk_ignore_unused: the
# firmware clocks QEMU does not model would be gated off. panic=-1: a panic resets the board,
# as the Pi's watchdog would.
GUEST_CMDLINE="console=ttyAMA0 clk_ignore_unused panic=-1 quiet"
# One power-on is 1.5-3 minutes on a loaded 2-core host (U-Boot's SD reads, then the kernel).
VM_TIMEOUT=${OSU_QEMU_PI_TIMEOUT:-900}
PI_MODULES="drivers/mmc/host/sdhci drivers/mmc/host/sdhci-pltfm drivers/mmc/host/sdhci-iproc fs/squashfs/squashfs"

require_pi_host() {
  require_arm64_host
  local tool
  for tool in fdtput mksquashfs mdir; do
    command -v "$tool" >/dev/null || skip "'$tool' is missing (device-tree-compiler, squashfs-tools, mtools)"
  done
  qemu-system-aarch64 -M help | grep -q '^raspi4b ' || skip "this qemu-system-aarch64 has no raspi4b machine (QEMU 9.0 or later)"
}

# Debian's u-boot-rpi (rpi_4's u-boot.bin), the Pi 4's device tree and the modules the initrd
# needs, from the arm64 packages (downloaded with arm64/lib.sh's private apt, unpacked, never
# installed). The device tree gets status = "disabled" on the blocks QEMU's raspi4b does not
# model (their drivers would wait or fault), and the SD controller loses the Wi-Fi power
# sequence (its probe fails under QEMU and would hold the SD card back forever).
fetch_pi_inputs() {
  [ -s "$UBOOT_BIN" ] && [ -s "$PI_CACHE/bcm2711-rpi-4-b.dtb" ] && [ -s "$PI_CACHE/vmlinuz.gz" ] && return 0
  local x=$PI_CACHE/unpack node
  rm -rf "$x"; mkdir -p "$x"
  if ! ls "$CACHE"/debs/u-boot-rpi_*.deb >/dev/null 2>&1; then
    # The index may be older than the mirror (U1 fetched it in an earlier run): refresh once.
    (cd "$CACHE/debs" && { arm64_apt apt-get download u-boot-rpi ||
       { arm64_apt apt-get update && arm64_apt apt-get download u-boot-rpi; }; }) >>"$CACHE/apt.log" 2>&1 \
      || skip "cannot download u-boot-rpi (arm64) from Debian's mirror: see $CACHE/apt.log"
  fi
  dpkg-deb --fsys-tarfile "$CACHE"/debs/u-boot-rpi_*.deb | tar -x -C "$x" ./usr/lib/u-boot/rpi_4/u-boot.bin
  # shellcheck disable=SC2046  # one tar pattern per module
  dpkg-deb --fsys-tarfile "$CACHE"/debs/linux-image-*.deb | tar -x -C "$x" --wildcards \
    './usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb' \
    $(for m in $PI_MODULES; do echo "./lib/modules/*/kernel/$m.ko"; done)
  mkdir -p "$PI_CACHE/modules"
  for m in $PI_MODULES; do cp "$x"/lib/modules/*/kernel/"$m".ko "$PI_CACHE/modules/"; done
  cp "$x"/usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb "$PI_CACHE/dtb.new"
  for node in /soc/interrupt-controller@7ef00100 /soc/i2c@7ef04500 /soc/i2c@7ef09500 \
              /soc/hdmi@7ef00700 /soc/hdmi@7ef05700 /soc/pixelvalve@7e206000 \
              /soc/pixelvalve@7e207000 /soc/pixelvalve@7e20a000 /soc/pixelvalve@7e216000 \
              /soc/pixelvalve@7ec12000 /soc/hvs@7e400000 /soc/txp@7e004000 /gpu /scb/gpu@7ec00000 \
              /scb/pcie@7d500000 /scb/ethernet@7d580000 /soc/rng@7e104000 \
              /soc/avs-monitor@7d5d2000/thermal /soc/clock@7ef00000; do
    fdtput -t s "$PI_CACHE/dtb.new" "$node" status disabled || die "no $node in the Pi 4 device tree"
  done
  fdtput -d "$PI_CACHE/dtb.new" /soc/mmc@7e300000 mmc-pwrseq
  fdtput -r "$PI_CACHE/dtb.new" /soc/mmc@7e300000/wifi@1
  mv "$PI_CACHE/dtb.new" "$PI_CACHE/bcm2711-rpi-4-b.dtb"
  # U-Boot reads the SD card at ~450 KiB/s under TCG: the gzip'd kernel (11 MB, not 33) is the
  # boot's biggest cost; booti unpacks it.
  gzip -n -9 -c "$CACHE/vmlinuz" > "$PI_CACHE/vmlinuz.gz.new" && mv "$PI_CACHE/vmlinuz.gz.new" "$PI_CACHE/vmlinuz.gz"
  mv "$x/usr/lib/u-boot/rpi_4/u-boot.bin" "$UBOOT_BIN"
  rm -rf "$x"
}

# pi_initrd VERSION OUT: busybox, the modules and pi/initrd-init as /init.
pi_initrd() {
  local d; d=$(mktemp -d)
  mkdir -p "$d/bin" "$d/etc" "$d/proc" "$d/sys" "$d/dev" "$d/lib/modules"
  cp "$CACHE/busybox" "$d/bin/busybox"
  cp "$PI_CACHE"/modules/*.ko "$d/lib/modules/"
  cp "$PI_DIR/initrd-init" "$d/init"
  echo "$1" > "$d/etc/osu-version"
  cpio_dir "$d" "$2"
  rm -rf "$d"
}

# pi_rootfs VERSION OUT: the slot's root file system, a squashfs with busybox (its applets as
# links), pi/rootfs-init as /sbin/init and /etc/osu-version.
pi_rootfs() {
  local d a; d=$(mktemp -d)
  mkdir -p "$d/bin" "$d/sbin" "$d/etc" "$d/proc" "$d/sys" "$d/dev" "$d/boot"
  cp "$CACHE/busybox" "$d/bin/busybox"
  for a in sh cat awk sync poweroff mount umount echo; do ln -s busybox "$d/bin/$a"; done
  cp "$PI_DIR/rootfs-init" "$d/sbin/init"
  echo "$1" > "$d/etc/osu-version"
  rm -f "$2"
  mksquashfs "$d" "$2" -all-root -comp gzip -noappend -quiet >/dev/null
  rm -rf "$d"
}

# vm_new NAME: a factory-fresh Pi in $CACHE/runs/NAME: VM_DISK (the SD card: slot A = the 1.0
# root, B empty), VM_BOOT (the FAT partition's files as a directory: os-update's boot.path on
# the host), VM_ENV = VM_BOOT/uboot.env (U-Boot's default env + bootdelay=0 boot_targets=mmc0
# preboot= OSU_ORDER="A B" OSU_A_LEFT=3 OSU_B_LEFT=0, mkenvimage), the selection copies as the
# factory writes them (mkenvimage: A B, 3, 0), VM_CONFIG.
vm_new() {
  vm_dir "$1"
  "$SRC/scripts/make-disk.sh" rpi4 "$VM_DISK" "$SD_SIZE" >/dev/null
  pi_rootfs 1.0 "$VM_DIR/a.img"
  pi_initrd 1.0 "$VM_DIR/initrd.img"
  factory_slot_a "$VM_DIR/a.img" "$PI_CACHE/vmlinuz.gz" "$VM_DIR/initrd.img" "$GUEST_CMDLINE"
  rm -f "$VM_DIR/a.img" "$VM_DIR/initrd.img"
  VM_ENV=$VM_BOOT/uboot.env
  # bootdelay=0, boot_targets=mmc0, no preboot: minus the seconds of TCG time spent waiting
  # and probing USB (the Pi's default env after a lost env still boots, only slower).
  env_text bootdelay=0 boot_targets=mmc0 preboot= "OSU_ORDER=A B" OSU_A_LEFT=3 OSU_B_LEFT=0 > "$VM_DIR/env.txt"
  mkenvimage -s "$ENV_SIZE" -o "$VM_ENV" "$VM_DIR/env.txt"
  printf '%s\n' "OSU_A_LEFT=3" "OSU_B_LEFT=0" "OSU_ORDER=A B" > "$VM_DIR/selection.txt"
  mkenvimage -p 0 -s 4096 -o "$VM_BOOT/osu/selection.env" "$VM_DIR/selection.txt"
  cp "$VM_BOOT/osu/selection.env" "$VM_BOOT/osu/selection.env.bak"
  echo "$VM_ENV 0x0 $ENV_SIZE" > "$VM_FW_ENV"
  write_config
  # The FAT partition, made once; later only files change in it (boot_push, the guest).
  local fat=$VM_DIR/boot.fat
  truncate -s $((BOOT_SECTORS * 512)) "$fat"
  mkfs.vfat -F 32 -n BOOT "$fat" >/dev/null
  mcopy -s -Q -i "$fat" "$VM_BOOT"/* ::/
  dd if="$fat" of="$VM_DISK" bs=4M seek="$BOOT_OFFSET" oflag=seek_bytes conv=notrunc,sparse status=none
  rm -f "$fat"
}

# The FAT partition in the SD image, for mtools.
fat() { echo "$VM_DISK@@$BOOT_OFFSET"; }
# boot_push: what os-update changed in VM_BOOT, into the FAT partition (every file replaced).
boot_push() { mcopy -o -s -Q -i "$(fat)" "$VM_BOOT"/* ::/; }
# boot_pull: U-Boot's saveenv wrote uboot.env in the FAT partition; the host's copy follows it.
boot_pull() { mcopy -o -n -i "$(fat)" ::/uboot.env "$VM_ENV"; }

# vm_boot [--cut REGEX [--cut-after S]]: one power-on of the Pi, until the root's agent says
# OSU-POWEROFF (QEMU's raspi4b cannot power off: the host ends it), or, with --cut, a power cut
# (SIGKILL) S seconds (default 0) after U-Boot's console printed REGEX. Logs: boot-N.log
# (U-Boot, the mini UART) and boot-N.kernel.log (the kernel and the agent, the PL011).
vm_boot() {
  local cut='' cut_after=0
  while [ $# -gt 0 ]; do
    case $1 in
      --cut) cut=$2; shift 2 ;;
      --cut-after) cut_after=$2; shift 2 ;;
      *) die "vm_boot: unknown option $1" ;;
    esac
  done
  VM_BOOTS=$((VM_BOOTS + 1))
  VM_LOG=$VM_DIR/boot-$VM_BOOTS.log
  VM_KLOG=$VM_DIR/boot-$VM_BOOTS.kernel.log
  : > "$VM_LOG"; : > "$VM_KLOG"
  local start pid end how=timeout; start=$(date +%s)
  qemu-system-aarch64 -M raspi4b -accel tcg -kernel "$UBOOT_BIN" -dtb "$PI_CACHE/bcm2711-rpi-4-b.dtb" \
    -drive "if=sd,format=raw,file=$VM_DISK" -display none -monitor none \
    -serial "file:$VM_KLOG" -serial "file:$VM_LOG" </dev/null >"$VM_DIR/qemu-$VM_BOOTS.out" 2>&1 &
  pid=$!
  end=$((start + VM_TIMEOUT))
  local kernel_at=
  while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do
    [ -n "$kernel_at" ] || ! grep -q 'Starting kernel' "$VM_LOG" || kernel_at=$(date +%s)
    if grep -q '^OSU-POWEROFF' "$VM_KLOG"; then how=poweroff; break; fi
    if [ -n "$cut" ] && tr -d '\r' < "$VM_LOG" | grep -q -E "$cut"; then
      sleep "$cut_after"; how="cut"; break
    fi
    sleep 0.2
  done
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local now; now=$(date +%s)
  log "power-on $VM_BOOTS took $((now - start))s (ended by: $how; U-Boot: $(( ${kernel_at:-$now} - start ))s, kernel to the agent: $(( now - ${kernel_at:-$now} ))s)"
  echo "$how $((now - start)) $(( ${kernel_at:-$now} - start ))" >> "$VM_DIR/power-ons"
  case $how in
    timeout) die "power-on $VM_BOOTS did not end within ${VM_TIMEOUT}s (serial logs: $VM_LOG, $VM_KLOG)" ;;
    poweroff) vm_said cmdline > "$VM_DIR/cmdline" ;;
  esac
  boot_pull
}

# What the agent said in the last power-on: vm_said slot|trial|version|root|cmdline.
vm_said() {
  case $1 in
    cmdline) tr -d '\r' < "$VM_KLOG" | sed -n 's/^OSU-CMDLINE //p' | tail -n1 ;;
    *) tr -d '\r' < "$VM_KLOG" | sed -n "s/^OSU-AGENT .*\b$1=\([^ ]*\).*/\1/p" | tail -n1 ;;
  esac
}
# The initrd's version (the slot's initrd, from its directory on the boot partition).
initrd_said() { tr -d '\r' < "$VM_KLOG" | sed -n 's/^OSU-INITRD version=\([^ ]*\).*/\1/p' | tail -n1; }

# os-update on the host against this Pi; what it changed on the boot partition goes to the FAT.
osu() { local rc=0; "$OSU_HOST_UPDATE" --config "$VM_CONFIG" "$@" || rc=$?; boot_push; return $rc; }
# env_valid: whether uboot.env's CRC holds (fw_printenv, the oracle, reads it).
env_valid() { fw_printenv -c "$VM_FW_ENV" OSU_ORDER >/dev/null 2>&1; }

# os-update built, the downloads, the signing key (arm64/lib.sh), and the Pi's inputs.
prepare() {
  require_pi_host
  prepare_inputs
  fetch_pi_inputs
}

# pi_figures NAME START: the scenario's wall time and its power-ons (U-Boot's share: mostly reading
# the kernel from the SD card), appended to the QEMU suite's figures file that CI prints.
pi_figures() {
  awk -v name="$1" -v total="$(( $(date +%s) - $2 ))" '
    { n++ } $1 == "poweroff" { full++; t += $2; u += $3 }
    END { printf "TIME %s: %ds, %d power-ons; a full one %.0fs on average, of which U-Boot (SD card reads) %.0fs\n",
          name, total, n, t / full, u / full }' "$VM_DIR/power-ons" |
    tee -a "${OSU_QEMU_CACHE:-/var/tmp/osu-qemu}/figures.txt"
}
