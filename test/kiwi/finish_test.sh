#!/usr/bin/env bash
# kiwi/finish.sh has os-update-bundle write a factory record for slot A that os-update accepts: a disk image
# with KIWI's labels (partition-layouts/x86-kvm.sfdisk has them), a squashfs in p.lxreadonly, a
# FAT boot partition staged as kiwi/config.sh stages it; then `os-update --status --json` reads
# slot A as verified, with sha256 and size as sha256sum and stat give them for the squashfs.
# No root, no mount. Exit 77 (skip) when a tool is missing.
set -euo pipefail
src=${OSU_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${OSU_BIN:-$src/build/cmd}
for tool in mksquashfs mkfs.vfat mcopy mmd sfdisk grub-editenv python3; do
  command -v "$tool" >/dev/null || { echo "SKIP: '$tool' is missing"; exit 77; }
done
[ -x "$bin/os-update" ] && [ -x "$bin/os-update-bundle" ] || { echo "SKIP: no os-update in $bin"; exit 77; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; echo "kiwi-finish: 0 passed, 1 failed"; exit 1; }

disk=$work/disk.img
truncate -s 6G "$disk"
sfdisk -q "$disk" < "$src/partition-layouts/x86-kvm.sfdisk"
json=$(sfdisk --json "$disk")
start() { python3 -c 'import json,sys
for p in json.loads(sys.argv[1])["partitiontable"]["partitions"]:
    if p["name"] == sys.argv[2]: print(p["start"])' "$json" "$1"; }

# Slot A: a small squashfs, written the way KIWI does (dd of the file to the partition).
mkdir -p "$work/root/etc"
echo 'IMAGE_VERSION=1.0.0' > "$work/root/etc/os-release"
head -c 300000 /dev/urandom > "$work/root/payload"
mksquashfs "$work/root" "$work/a.sqfs" -comp xz -quiet -noappend >/dev/null
dd if="$work/a.sqfs" of="$disk" bs=1M seek=$(( $(start p.lxreadonly) * 512 )) oflag=seek_bytes conv=notrunc status=none

# The boot partition as config.sh stages it for x86-kvm.
mkdir -p "$work/A"
head -c 123456 /dev/urandom > "$work/A/vmlinuz"
head -c 65432 /dev/urandom > "$work/A/initrd.img"
printf 'set osu_root="PARTLABEL=p.lxreadonly"\nset osu_cmdline="console=ttyS0,115200 console=tty0 ro"\n' > "$work/A/grub.cfg"
grub-editenv "$work/grubenv" create
grub-editenv "$work/grubenv" set OSU_ORDER="A B" OSU_A_LEFT=3 OSU_B_LEFT=0
truncate -s 256M "$work/esp.img"
mkfs.vfat -F 32 "$work/esp.img" >/dev/null
mmd -i "$work/esp.img" ::osu ::osu/A
mcopy -i "$work/esp.img" "$work/grubenv" ::osu/grubenv
mcopy -i "$work/esp.img" "$work/grubenv" ::osu/grubenv.bak
mcopy -i "$work/esp.img" "$work/A/vmlinuz" "$work/A/initrd.img" "$work/A/grub.cfg" ::osu/A/
dd if="$work/esp.img" of="$disk" bs=1M seek=$(( $(start p.UEFI) * 512 )) oflag=seek_bytes conv=notrunc status=none

OSU_BUNDLE=$bin/os-update-bundle "$src/kiwi/finish.sh" "$disk" x86-kvm || fail "finish.sh exited $?"

# os-update reads the boot partition from a directory: copy it out (no mount needed).
mkdir -p "$work/boot"
mcopy -s -n -i "$disk@@$(( $(start p.UEFI) * 512 ))" ::osu "$work/boot/"
echo "root=PARTLABEL=p.lxreadonly console=ttyS0,115200 ro" > "$work/cmdline"
: > "$work/mountinfo"
cat > "$work/os-update.yml" <<YAML
update:
  keys: []
  compatible: osu-x86_64-kvm
slots:
  disk: $disk
boot:
  path: $work/boot
  bootloader: grub
system:
  cmdline: $work/cmdline
  mountinfo: $work/mountinfo
  lock: $work/lock
  systemd: $work/no-systemd
  os_release: $work/root/etc/os-release
YAML
status=$("$bin/os-update" --config "$work/os-update.yml" --status --json) || fail "os-update --status exited $?"
get() { python3 -c 'import json,sys
v=json.loads(sys.argv[1])
for k in sys.argv[2].split("."): v=v.get(k) if isinstance(v,dict) else None
print(v)' "$status" "$1"; }
[ "$(get booted)" = A ] || fail "booted: $(get booted), want A"
[ "$(get slots.A.state)" = verified ] || fail "slot A state: $(get slots.A.state), want verified ($status)"
[ "$(get slots.A.version)" = 1.0.0 ] || fail "slot A version: $(get slots.A.version), want 1.0.0"
want_sha=$(sha256sum "$work/a.sqfs" | cut -d' ' -f1)
[ "$(get slots.A.sha256)" = "$want_sha" ] || fail "slot A sha256: $(get slots.A.sha256), want $want_sha (sha256sum of the squashfs)"
[ "$(get slots.A.image_size)" = "$(stat -c %s "$work/a.sqfs")" ] || fail "slot A size: $(get slots.A.image_size), want $(stat -c %s "$work/a.sqfs")"
# The chunk list came along: a chunk index of the squashfs's length (its header's image size).
list=$work/boot/osu/A/chunks.idx
[ -f "$list" ] || fail "no osu/A/chunks.idx on the boot partition"
[ "$(head -c 8 "$list")" = OSUCHIDX ] || fail "osu/A/chunks.idx is not a chunk index"
list_size=$(od -An -t u8 -j 24 -N 8 "$list" | tr -d ' ')
[ "$list_size" = "$(stat -c %s "$work/a.sqfs")" ] || fail "chunks.idx describes $list_size bytes, the squashfs is $(stat -c %s "$work/a.sqfs")"
echo "kiwi-finish: 1 passed, 0 failed"
