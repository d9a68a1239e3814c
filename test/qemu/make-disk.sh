#!/usr/bin/env bash
# make-disk.sh OUT [VERSION]: a factory-fresh disk for the QEMU tests, 8G sparse, partitioned
# with partition-layouts/x86-kvm.sfdisk. No mount (the host may lack vfat): the ESP is built
# with mkfs.vfat + mtools and written at its offset, slot A is an ext4 image written at its.
#   ESP   EFI/BOOT/BOOTX64.EFI   grub-mkstandalone with the repo's grub/grub.cfg inside
#         osu/grubenv(.bak)      grub-editenv: OSU_ORDER="A B" OSU_A_LEFT=3 OSU_B_LEFT=3
#         osu/A/                 vmlinuz, initrd.img, grub.cfg (osu_root, osu_cmdline), record.yml
#   A     the rootfs with this tree's os-update, IMAGE_VERSION=VERSION (default 1.0)
#   B     empty
set -euo pipefail
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 OUT [VERSION]" >&2; exit 1; }
out=$1 version=${2:-1.0}
require_qemu_host
ensure_keys
work=$(mktemp -d "${TMPDIR:-/tmp}/osu-qemu-disk.XXXXXX")
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

"$SRC/scripts/make-disk.sh" "$SRC/partition-layouts/x86-kvm.sfdisk" "$out" 8G >/dev/null
partuuid_a=$(sfdisk --part-uuid "$out" 2 | tr A-F a-f)

log "slot A: rootfs $version as ext4"
slot_image "$version" "$work/a.img"
size=$(stat -c %s "$work/a.img")
[ "$size" -le $((SLOT_B_OFFSET - SLOT_A_OFFSET)) ] || die "slot A image ($size bytes) exceeds the slot"
dd if="$work/a.img" of="$out" bs=4M seek="$SLOT_A_OFFSET" oflag=seek_bytes conv=notrunc,sparse status=none

log "ESP: GRUB, grubenv, slot A's boot files and record"
grub-mkstandalone -O x86_64-efi -o "$work/BOOTX64.EFI" \
  --modules="part_gpt fat loadenv regexp search test linux" \
  "boot/grub/grub.cfg=$SRC/grub/grub.cfg"
grub-editenv "$work/grubenv" create
grub-editenv "$work/grubenv" set OSU_ORDER="A B" OSU_A_LEFT=3 OSU_B_LEFT=3
a=$work/boot/osu/A
boot_files "$a"
# The format of GrubSlotConfig() (lib/bootenv/grub_slot_config.hpp).
printf 'set osu_root="PARTUUID=%s"\nset osu_cmdline="%s"\n' "$partuuid_a" "$GUEST_CMDLINE" > "$a/grub.cfg"
# Slot A's factory record, by os-update's own writer (what kiwi/finish.sh runs on an image).
"$OSU_BIN/os-update-bundle" record --disk "$out" --slot A --boot-path "$work/boot" --version "$version" \
  --compatible "$COMPATIBLE" --cmdline "$GUEST_CMDLINE" --size "$size" >/dev/null

truncate -s $((524288 * 512)) "$work/esp.img"
mkfs.vfat -F 32 -n ESP "$work/esp.img" >/dev/null
e="$work/esp.img"
mmd -i "$e" ::EFI ::EFI/BOOT ::osu ::osu/A
mcopy -i "$e" "$work/BOOTX64.EFI" ::EFI/BOOT/BOOTX64.EFI
mcopy -i "$e" "$work/grubenv" ::osu/grubenv
mcopy -i "$e" "$work/grubenv" ::osu/grubenv.bak
mcopy -i "$e" "$a/vmlinuz" "$a/initrd.img" "$a/grub.cfg" "$a/record.yml" ::osu/A/
dd if="$e" of="$out" bs=4M seek="$ESP_OFFSET" oflag=seek_bytes conv=notrunc,sparse status=none

log "disk ready in $(( $(date +%s) - start ))s: $out (slot A $version, $((size / 1048576)) MiB, PARTUUID $partuuid_a)"
