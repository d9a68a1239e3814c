# shellcheck shell=bash
# Shared by the U-Boot (aarch64) QEMU scenarios test/qemu/u<N>-*.sh (sourced, not run).
# qemu-system-aarch64 -M virt with Debian's u-boot-qemu (qemu_arm64), the env in the second
# pflash bank, a disk from partition-layouts/rpi4.sfdisk whose FAT boot partition holds
# uboot-scripts' boot.scr and /osu/<S>/{vmlinuz,initrd.img,boot.env,record.yml}. The kernel is
# Debian's arm64 one; the initrd is a busybox agent that prints the command line and powers off.
# os-update runs on the host against the disk image and the pflash env file.
ARM64_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$ARM64_DIR/../../.." && pwd)
# Downloads (Debian's arm64 kernel and busybox) survive between runs.
CACHE=${OSU_QEMU_ARM64_CACHE:-/var/tmp/osu-qemu-arm64}
BUILD_DIR=${OSU_BUILD_DIR:-$SRC/build}
OSU_BIN_GIVEN=${OSU_BIN:+1}
OSU_BIN=${OSU_BIN:-$BUILD_DIR/cmd}
# os-update with a reboot that returns (test/qemu/arm64/host_os_update.cpp).
OSU_HOST_UPDATE=${OSU_HOST_UPDATE:-$BUILD_DIR/test/qemu/osu-qemu-host-update}
UBOOT_BIN=${OSU_UBOOT_BIN:-/usr/lib/u-boot/qemu_arm64/u-boot.bin}
DEBIAN_MIRROR=${OSU_DEBIAN_MIRROR:-$("$SRC/scripts/debian-mirror.sh")}
COMPATIBLE=osu-qemu-arm64
# qemu_arm64_defconfig: CONFIG_ENV_IS_IN_FLASH, CONFIG_ENV_ADDR=0x4000000 (the start of the
# second 64 MiB pflash bank), CONFIG_ENV_SIZE = CONFIG_ENV_SECT_SIZE = 0x40000, one copy.
ENV_SIZE=0x40000
PFLASH_SIZE=$((64 * 1024 * 1024))
# partition-layouts/rpi4.sfdisk: p.boot (FAT) at sector 2048, 1048576 sectors.
BOOT_OFFSET=$((2048 * 512))
BOOT_SECTORS=1048576
SLOT_A_OFFSET=$((1050624 * 512))
# The slots' command line (boot.env's osu_cmdline); boot.scr adds root= and osu.slot=.
# panic=-1: a kernel that panics resets the board, as the Pi's watchdog would.
GUEST_CMDLINE="console=ttyAMA0 panic=-1 quiet"
VM_TIMEOUT=${OSU_QEMU_ARM64_TIMEOUT:-300}

QEMU_TAG=qemu-arm64
. "$ARM64_DIR/../common.sh"

# Exits 77 (ctest SKIP) with the reason when this machine cannot run the scenario.
require_arm64_host() {
  local tool
  for tool in qemu-system-aarch64 mkimage mkenvimage fw_printenv fw_setenv mformat mcopy mmd \
              mkfs.vfat sfdisk gzip python3 apt-get dpkg-deb; do
    command -v "$tool" >/dev/null || skip "'$tool' is missing (see test/qemu/README.md, U-Boot section)"
  done
  # Debian 12's QEMU 7.2 writes a torn env to pflash on saveenv; bookworm-backports' works.
  local major
  major=$(qemu-system-aarch64 --version | sed -n 's/^QEMU emulator version \([0-9]*\).*/\1/p')
  [ "${major:-0}" -ge 8 ] || skip "qemu-system-aarch64 $major.x corrupts U-Boot's env on saveenv to pflash; install qemu-system-arm from bookworm-backports"
}

# ---- Inputs: Debian's arm64 kernel and busybox, unpacked, never installed --------------------

# A private apt (its own sources, lists and cache under $CACHE/apt): the host's apt config and
# architectures stay untouched; only Debian's mirror is asked.
arm64_apt() {
  local a=$CACHE/apt cmd=$1; shift
  "$cmd" -q -o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
    -o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache" -o Dir::State::Status="$a/status" \
    -o APT::Architecture=arm64 -o APT::Architectures=arm64 -o APT::Sandbox::User=root "$@"
}

# $CACHE/vmlinuz (Debian 12's arm64 kernel: an uncompressed Image) and $CACHE/busybox (static).
fetch_inputs() {
  [ -s "$CACHE/vmlinuz" ] && [ -s "$CACHE/busybox" ] && return 0
  local a=$CACHE/apt debs=$CACHE/debs kernel_pkg
  mkdir -p "$a/lists/partial" "$a/cache/archives/partial" "$debs"
  : > "$a/status"
  echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $DEBIAN_MIRROR bookworm main" > "$a/sources.list"
  log "fetching Debian's arm64 kernel and busybox-static into $CACHE"
  arm64_apt apt-get update >"$CACHE/apt.log" 2>&1 || skip "cannot reach Debian's mirror ($DEBIAN_MIRROR): see $CACHE/apt.log"
  # linux-image-arm64 is a metapackage: the kernel is its first dependency.
  kernel_pkg=$(arm64_apt apt-cache show linux-image-arm64 | sed -n 's/^Depends: \([^ ,]*\).*/\1/p' | head -n1)
  [ -n "$kernel_pkg" ] || die "no arm64 kernel package in Debian's index"
  (cd "$debs" && rm -f ./*.deb && arm64_apt apt-get download "$kernel_pkg" busybox-static) >>"$CACHE/apt.log" 2>&1 \
    || die "downloading $kernel_pkg and busybox-static failed: see $CACHE/apt.log"
  local x=$CACHE/unpack
  rm -rf "$x"; mkdir -p "$x"
  dpkg-deb --fsys-tarfile "$debs"/linux-image-*.deb | tar -x -C "$x" --wildcards './boot/vmlinuz-*'
  dpkg-deb --fsys-tarfile "$debs"/busybox-static_*.deb | tar -x -C "$x" ./bin/busybox
  mv "$x"/boot/vmlinuz-* "$CACHE/vmlinuz.new" && mv "$x/bin/busybox" "$CACHE/busybox"
  mv "$CACHE/vmlinuz.new" "$CACHE/vmlinuz"
  rm -rf "$x"
  log "kernel: $kernel_pkg ($(stat -c %s "$CACHE/vmlinuz") bytes)"
}

# make_initrd VERSION OUT: a gzip'd newc cpio with busybox and guest/init as /init; the agent
# prints "OSU-AGENT slot=.. trial=.. version=VERSION" and "OSU-CMDLINE <cmdline>", then powers
# off.
make_initrd() {
  local d; d=$(mktemp -d)
  mkdir -p "$d/bin" "$d/etc" "$d/proc" "$d/dev"
  cp "$CACHE/busybox" "$d/bin/busybox"
  cp "$ARM64_DIR/guest-init" "$d/init"
  echo "$1" > "$d/etc/osu-version"
  cpio_dir "$d" "$2"
  rm -rf "$d"
}

# cpio_dir DIR OUT: DIR as a gzip'd newc cpio (an initramfs), owned by root, executables 0755.
# No cpio tool needed: Python writes the archive (no device nodes: the kernel's built-in
# initramfs already has /dev/console).
cpio_dir() {
  python3 - "$1" <<'PY' | gzip -n -9 > "$2"
import os, sys
src = sys.argv[1]
out = sys.stdout.buffer
ino = [100]
def entry(name, mode, data=b""):
    ino[0] += 1
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % v for v in (
        ino[0], mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
    out.write(hdr.encode() + name_b)
    out.write(b"\0" * ((4 - (110 + len(name_b)) % 4) % 4))
    out.write(data)
    out.write(b"\0" * ((4 - len(data) % 4) % 4))
for root, dirs, files in os.walk(src):
    dirs.sort()
    rel = os.path.relpath(root, src)
    if rel != ".":
        entry(rel, 0o040755)
    for f in sorted(files):
        path = os.path.join(root, f)
        mode = 0o100755 if os.access(path, os.X_OK) else 0o100644
        entry(os.path.normpath(os.path.join(rel, f)), mode, open(path, "rb").read())
entry("TRAILER!!!", 0)
PY
}

# ---- The factory image: disk (rpi4 layout) and pflash env ----------------------------------

# U-Boot's built-in default env, from the binary: the "name=value\0" block that starts with
# bootcmd= and ends at "\0\0", one variable a line (mkenvimage's input).
uboot_default_env() {
  python3 - "$UBOOT_BIN" <<'PY'
import sys
b = open(sys.argv[1], "rb").read()
start = b.find(b"bootcmd=run distro_bootcmd\0")
if start < 0 or b[start - 1] != 0:
    sys.exit("no default environment found in " + sys.argv[1])
end = b.find(b"\0\0", start)
for var in b[start:end].split(b"\0"):
    if b"\n" in var:
        sys.exit("a default variable spans lines: " + var.decode(errors="replace"))
    print(var.decode())
PY
}

# env_text VAR=VALUE...: U-Boot's default env with these variables set (replacing defaults of
# the same name), one variable a line: mkenvimage's input.
env_text() {
  uboot_default_env | grep -v -E "^($(printf '%s\n' "$@" | sed 's/=.*//' | paste -sd'|'))="
  printf '%s\n' "$@"
}

# make_env OUT VAR=VALUE...: a 64 MiB pflash bank whose first ENV_SIZE bytes are env_text's
# env as mkenvimage writes it; the rest is erased flash (0xff).
make_env() {
  local out=$1 txt; shift
  txt=$(mktemp)
  env_text "$@" > "$txt"
  python3 -c 'import sys; open(sys.argv[1], "wb").write(b"\xff" * int(sys.argv[2]))' "$out" "$PFLASH_SIZE"
  mkenvimage -s "$ENV_SIZE" -o "$out.env" "$txt"
  dd if="$out.env" of="$out" conv=notrunc status=none
  rm -f "$txt" "$out.env"
}

# slot_content VERSION OUT: what a slot holds (the guest does not mount it; os-update writes,
# hashes and records it like any image).
slot_content() {
  python3 -c 'import sys
line = ("os-update qemu arm64 slot image, version %s\n" % sys.argv[1]).encode()
open(sys.argv[2], "wb").write((line * (4 * 1024 * 1024 // len(line) + 1))[:4 * 1024 * 1024])' "$1" "$2"
}

# The boot partition lives as a directory (os-update's boot.path on the host) and is written
# into the disk's FAT partition with mtools before every power-on: U-Boot only reads it.
boot_sync() {
  local fat=$VM_DIR/boot.fat
  rm -f "$fat"
  truncate -s $((BOOT_SECTORS * 512)) "$fat"
  mkfs.vfat -F 32 -n BOOT "$fat" >/dev/null
  mcopy -s -Q -i "$fat" "$VM_BOOT"/* ::/
  dd if="$fat" of="$VM_DISK" bs=4M seek="$BOOT_OFFSET" oflag=seek_bytes conv=notrunc,sparse status=none
  rm -f "$fat"
}

# ---- Scenarios -------------------------------------------------------------------------------

# os-update, os-update-bundle and the host helper built (ctest passes OSU_BIN and
# OSU_HOST_UPDATE), the downloads, the signing key.
prepare() {
  require_arm64_host
  [ -r "$UBOOT_BIN" ] || skip "no U-Boot for qemu_arm64 at $UBOOT_BIN (Debian package u-boot-qemu)"
  prepare_inputs
}
# os-update built, Debian's kernel and busybox, the signing key.
prepare_inputs() {
  mkdir -p "$CACHE"
  if [ -z "$OSU_BIN_GIVEN" ]; then
    [ -f "$BUILD_DIR/CMakeCache.txt" ] || cmake -S "$SRC" -B "$BUILD_DIR" >/dev/null
    cmake --build "$BUILD_DIR" -j2 --target os-update os-update-bundle osu-qemu-host-update \
      > "$CACHE/build.log" 2>&1 \
      || { grep -E 'error|Error' "$CACHE/build.log" | head -n 5 >&2; die "building os-update in $BUILD_DIR failed"; }
  fi
  [ -x "$OSU_BIN/os-update" ] || die "no os-update in $OSU_BIN"
  [ -x "$OSU_HOST_UPDATE" ] || die "no $OSU_HOST_UPDATE (cmake target osu-qemu-host-update)"
  fetch_inputs
  KEYS=$CACHE/keys
  if [ ! -s "$KEYS/test.pub.pem" ]; then
    mkdir -p "$KEYS"
    "$OSU_BIN/os-update-bundle" keygen --private "$KEYS/test.pem" --public "$KEYS/test.pub.pem" >/dev/null
  fi
}

# vm_new NAME: a factory-fresh device in $CACHE/runs/NAME: VM_DISK (rpi4 layout, slot A =
# version 1.0 with its boot files and verified record, B empty), VM_ENV (pflash bank 1: U-Boot's
# default env + OSU_ORDER="A B" OSU_A_LEFT=3 OSU_B_LEFT=0), VM_BOOT (the boot partition's files),
# VM_CONFIG (os-update's config on the host), VM_FW_ENV (fw_env.config for the pflash file).
# Kept when the scenario fails (serial logs: $VM_DIR/boot-N.log), removed when it passes.
vm_new() {
  vm_dir "$1"
  "$SRC/scripts/make-disk.sh" rpi4 "$VM_DISK" 5G >/dev/null
  slot_content 1.0 "$VM_DIR/a.img"
  make_initrd 1.0 "$VM_DIR/initrd.img"
  factory_slot_a "$VM_DIR/a.img" "$CACHE/vmlinuz" "$VM_DIR/initrd.img" "$GUEST_CMDLINE"
  rm -f "$VM_DIR/a.img" "$VM_DIR/initrd.img"
  # bootdelay=0, boot_targets=virtio0: the board's boot order, minus seconds of TCG time
  # spent probing USB and SCSI. The Pi's image would say mmc0 instead.
  make_env "$VM_ENV" bootdelay=0 boot_targets=virtio0 "OSU_ORDER=A B" OSU_A_LEFT=3 OSU_B_LEFT=0
  echo "$VM_ENV 0x0 $ENV_SIZE $ENV_SIZE" > "$VM_FW_ENV"
  write_config
}

# vm_dir NAME: the run's directory and the names of what a device has in it (empty).
vm_dir() {
  VM_DIR=$CACHE/runs/$1
  rm -rf "$VM_DIR"; mkdir -p "$VM_DIR"
  VM_DISK=$VM_DIR/disk.img VM_ENV=$VM_DIR/env.img VM_BOOT=$VM_DIR/boot VM_LOG=
  VM_CONFIG=$VM_DIR/os-update.yml VM_FW_ENV=$VM_DIR/fw_env.config VM_BOOTS=0
  trap 'vm_keep' EXIT
}

# factory_slot_a IMAGE KERNEL INITRD CMDLINE: IMAGE written into slot A of VM_DISK, boot.scr and
# A's boot files in VM_BOOT, with the boot.env and the verified record os-update would write.
factory_slot_a() {
  local image=$1 kernel=$2 initrd=$3 cmdline=$4 partuuid_a f
  partuuid_a=$(sfdisk --part-uuid "$VM_DISK" 2 | tr A-F a-f)
  dd if="$image" of="$VM_DISK" bs=4M seek="$SLOT_A_OFFSET" oflag=seek_bytes conv=notrunc status=none
  mkdir -p "$VM_BOOT/osu/A"
  mkimage -A arm64 -T script -C none -d "$SRC/uboot-scripts/boot.cmd" "$VM_BOOT/boot.scr" >/dev/null
  cp "$kernel" "$VM_BOOT/osu/A/vmlinuz"
  cp "$initrd" "$VM_BOOT/osu/A/initrd.img"
  # The format of UbootSlotEnv() (lib/bootenv/uboot_slot_config.hpp).
  printf 'osu_root=PARTUUID=%s\nosu_cmdline=%s\n' "$partuuid_a" "$cmdline" > "$VM_BOOT/osu/A/boot.env"
  # Slot A's factory record, by os-update's own writer (what kiwi/finish.sh runs on an image).
  "$OSU_BIN/os-update-bundle" record --disk "$VM_DISK" --slot A --boot-path "$VM_BOOT" \
    --version 1.0 --compatible "$COMPATIBLE" --cmdline "$cmdline" \
    --size "$(stat -c %s "$image")" >/dev/null
}

# write_config: os-update's config on the host for this device (VM_FW_ENV made by the caller).
write_config() {
  : > "$VM_DIR/mountinfo"
  cat > "$VM_CONFIG" <<YAML
update:
  keys: [$KEYS/test.pub.pem]
  compatible: $COMPATIBLE
slots:
  disk: $VM_DISK
boot:
  path: $VM_BOOT
  bootloader: uboot
  fw_env_config: $VM_FW_ENV
activation: reboot
system:
  cmdline: $VM_DIR/cmdline
  mountinfo: $VM_DIR/mountinfo
  lock: $VM_DIR/os-update.lock
  systemd: $VM_DIR/no-systemd
  os_release: $VM_DIR/os-release
YAML
  echo "IMAGE_VERSION=1.0" > "$VM_DIR/os-release"
}
vm_keep() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${VM_DIR:-}" ]; then
    echo "[qemu-arm64] kept for inspection: $VM_DIR (serial logs: $VM_DIR/boot-*.log)" >&2
    if [ -n "$VM_LOG" ] && [ -f "$VM_LOG" ]; then
      echo "[qemu-arm64] last lines of $VM_LOG:" >&2; tail -n 25 "$VM_LOG" | tr -d '\r' >&2
    fi
  fi
}
# OSU_QEMU_KEEP=1 keeps a passing run's directory too (its serial logs).
vm_pass() {
  trap - EXIT
  [ -n "${OSU_QEMU_KEEP:-}" ] || rm -rf "$VM_DIR"
  echo "[qemu-arm64] PASS: $*"
}

# vm_boot: writes the boot partition, powers the VM on and waits until the guest powers off
# (U-Boot's resets stay inside one power-on). VM_LOG is this power-on's serial log; the guest's
# /proc/cmdline goes to $VM_DIR/cmdline, where the host's os-update reads it (system.cmdline).
vm_boot() {
  VM_BOOTS=$((VM_BOOTS + 1))
  VM_LOG=$VM_DIR/boot-$VM_BOOTS.log
  boot_sync
  local start rc=0; start=$(date +%s)
  timeout "$VM_TIMEOUT" qemu-system-aarch64 -M virt -cpu cortex-a57 -accel tcg -m 512 -smp 1 \
    -display none -monitor none -serial "file:$VM_LOG" -bios "$UBOOT_BIN" \
    -drive if=pflash,unit=1,format=raw,file="$VM_ENV" \
    -drive if=none,id=disk,format=raw,file="$VM_DISK" -device virtio-blk-device,drive=disk \
    -nic none </dev/null >"$VM_DIR/qemu-$VM_BOOTS.out" 2>&1 || rc=$?
  log "power-on $VM_BOOTS took $(( $(date +%s) - start ))s"
  [ "$rc" -ne 124 ] || die "power-on $VM_BOOTS did not power off within ${VM_TIMEOUT}s (serial log: $VM_LOG)"
  [ "$rc" -eq 0 ] || die "qemu exited $rc: $(head -c 300 "$VM_DIR/qemu-$VM_BOOTS.out")"
  vm_said cmdline > "$VM_DIR/cmdline"
}

# What the agent said in the last power-on: vm_said slot|trial|version|cmdline.
vm_said() {
  case $1 in
    cmdline) tr -d '\r' < "$VM_LOG" | sed -n 's/^OSU-CMDLINE //p' | tail -n1 ;;
    *) tr -d '\r' < "$VM_LOG" | sed -n "s/^OSU-AGENT .*\b$1=\([^ ]*\).*/\1/p" | tail -n1 ;;
  esac
}
# Lines of the last serial log that match REGEX, counted.
log_count() { tr -d '\r' < "$VM_LOG" | grep -c -E "$1" || true; }

# The env as the oracle reads it: env_get NAME (empty when unset).
env_get() { fw_printenv -c "$VM_FW_ENV" -n "$1" 2>/dev/null || true; }
# os-update on the host, against this VM: osu ARGS... (--config added).
osu() { "$OSU_HOST_UPDATE" --config "$VM_CONFIG" "$@"; }
osu_status() { osu --status --json | grep -m1 '"booted"'; }
