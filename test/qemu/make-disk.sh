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
sha=$(sha256sum "$work/a.img" | cut -d' ' -f1)
dd if="$work/a.img" of="$out" bs=4M seek="$SLOT_A_OFFSET" oflag=seek_bytes conv=notrunc,sparse status=none

log "ESP: GRUB, grubenv, slot A's boot files and record"
grub-mkstandalone -O x86_64-efi -o "$work/BOOTX64.EFI" \
  --modules="part_gpt fat loadenv regexp search test linux" \
  "boot/grub/grub.cfg=$SRC/grub/grub.cfg"
grub-editenv "$work/grubenv" create
grub-editenv "$work/grubenv" set OSU_ORDER="A B" OSU_A_LEFT=3 OSU_B_LEFT=3
boot_files "$work/A"
# The format of GrubSlotConfig() (lib/bootenv/grub_slot_config.hpp).
printf 'set osu_root="PARTUUID=%s"\nset osu_cmdline="%s"\n' "$partuuid_a" "$GUEST_CMDLINE" > "$work/A/grub.cfg"
file_entry() { echo "  - {name: $1, size: $(stat -c %s "$work/A/$1"), sha256: $(sha256sum "$work/A/$1" | cut -d' ' -f1)}"; }
# The format of SerializeRecord() (lib/record/record.cpp).
cat > "$work/A/record.yml" <<YAML
slot: A
state: verified
version: "$version"
compatible: "$COMPATIBLE"
sha256: $sha
size: $size
cmdline: "$GUEST_CMDLINE"
boot_files:
$(file_entry vmlinuz)
$(file_entry initrd.img)
updated_at: $(date -u +%FT%TZ)
YAML

truncate -s $((524288 * 512)) "$work/esp.img"
mkfs.vfat -F 32 -n ESP "$work/esp.img" >/dev/null
e="$work/esp.img"
mmd -i "$e" ::EFI ::EFI/BOOT ::osu ::osu/A
mcopy -i "$e" "$work/BOOTX64.EFI" ::EFI/BOOT/BOOTX64.EFI
mcopy -i "$e" "$work/grubenv" ::osu/grubenv
mcopy -i "$e" "$work/grubenv" ::osu/grubenv.bak
mcopy -i "$e" "$work/A/vmlinuz" "$work/A/initrd.img" "$work/A/grub.cfg" "$work/A/record.yml" ::osu/A/
dd if="$e" of="$out" bs=4M seek="$ESP_OFFSET" oflag=seek_bytes conv=notrunc,sparse status=none

log "disk ready in $(( $(date +%s) - start ))s: $out (slot A $version, $((size / 1048576)) MiB, PARTUUID $partuuid_a)"
