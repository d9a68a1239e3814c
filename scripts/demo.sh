#!/usr/bin/env bash
# The built-in demo, no hardware and no root needed: a GPT disk image file made from
# partition-layouts/x86-kvm.sfdisk, slot A "factory flashed" with version 1.0, a signed
# bundle of version 2.0 built with os-update-bundle, applied into slot B, status shown,
# and slot B's bytes checked against the image with sha256sum.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
BUILD_DIR=${BUILD_DIR:-build}
OUT=${OUT:-$SRC/demo-out}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Build"
cmake -S . -B "$BUILD_DIR" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target os-update os-update-bundle >/dev/null
OSU="$BUILD_DIR/cmd/os-update"
BUNDLE="$BUILD_DIR/cmd/os-update-bundle"

rm -rf "$OUT"
mkdir -p "$OUT"/{boot,keys,rootfs-v1/etc,rootfs-v2/etc}

step "A disk image with A/B slots, from partition-layouts/x86-kvm.sfdisk"
scripts/make-disk.sh partition-layouts/x86-kvm.sfdisk "$OUT/disk.img"

step "Root file systems v1 and v2 (ext4 images, 64 MiB)"
for v in 1 2; do
  d="$OUT/rootfs-v$v"
  printf 'ID=demo\nNAME="os-update demo"\nIMAGE_VERSION=%s.0\n' "$v" > "$d/etc/os-release"
  mkdir -p "$d/usr/share/demo" && cp -r "$SRC/lib" "$SRC/partition-layouts" "$d/usr/share/demo/"
  mkfs.ext4 -q -F -L "root-v$v" -d "$d" "$OUT/rootfs-v$v.img" 64M
done
# Factory flash: slot A holds v1 (what a provisioning step does once).
read -r A_START < <(sfdisk --json "$OUT/disk.img" | python3 -c 'import json,sys
print([p["start"] for p in json.load(sys.stdin)["partitiontable"]["partitions"] if p["name"]=="p.lxreadonly"][0])')
dd if="$OUT/rootfs-v1.img" of="$OUT/disk.img" bs=1M seek=$((A_START * 512)) oflag=seek_bytes conv=notrunc status=none
cp "$OUT/rootfs-v1/etc/os-release" "$OUT/os-release"
# The factory boot env, as the image build writes it: boot A, B not bootable yet.
mkdir -p "$OUT/boot/osu"
grub-editenv "$OUT/boot/osu/grubenv" create
grub-editenv "$OUT/boot/osu/grubenv" set OSU_ORDER="A B" OSU_A_LEFT=3 OSU_B_LEFT=0
cp "$OUT/boot/osu/grubenv" "$OUT/boot/osu/grubenv.bak"

step "Signing key and a signed v2 bundle"
"$BUNDLE" keygen --private "$OUT/keys/bundle.pem" --public "$OUT/keys/bundle.pub.pem"
printf 'kernel for the demo\n' > "$OUT/vmlinuz"
printf 'initrd for the demo\n' > "$OUT/initrd.img"
"$BUNDLE" create --image "$OUT/rootfs-v2.img" --compression xz \
  --boot-file "$OUT/vmlinuz" --boot-file "$OUT/initrd.img" \
  --cmdline "console=ttyS0 quiet" --compatible demo-x86_64 --version 2.0 \
  --key "$OUT/keys/bundle.pem" --output "$OUT/demo-2.0.osu"
"$BUNDLE" info "$OUT/demo-2.0.osu"

step "Device configuration (booted from slot A)"
echo "console=ttyS0 root=PARTLABEL=p.lxreadonly ro" > "$OUT/cmdline"
cat > "$OUT/os-update.yml" <<YAML
update:
  keys: [$OUT/keys/bundle.pub.pem]
  compatible: demo-x86_64
slots:
  disk: $OUT/disk.img
boot:
  path: $OUT/boot
  bootloader: grub
system:
  cmdline: $OUT/cmdline
  mountinfo: /dev/null
  lock: $OUT/os-update.lock
  os_release: $OUT/os-release
YAML
cat "$OUT/os-update.yml"

step "os-update --status"
"$OSU" --config "$OUT/os-update.yml" --status

step "os-update --check (exit 100: update available)"
rc=0; "$OSU" --config "$OUT/os-update.yml" --check "$OUT/demo-2.0.osu" || rc=$?
[ "$rc" -eq 100 ] || { echo "expected exit 100, got $rc"; exit 1; }

step "os-update --apply --dry-run (the plan; nothing is written)"
"$OSU" --config "$OUT/os-update.yml" --apply "$OUT/demo-2.0.osu" --dry-run

step "os-update --apply --no-activate"
# On a device --apply goes on to kexec into slot B. This host does not boot from disk.img,
# so os-update refuses to kexec or reboot it; --no-activate installs and verifies only.
"$OSU" --config "$OUT/os-update.yml" --apply "$OUT/demo-2.0.osu" --no-activate

step "os-update --status --json"
"$OSU" --config "$OUT/os-update.yml" --status --json

step "The device kexecs into slot B as a trial (here: its kernel command line is written)"
echo "console=ttyS0 quiet root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1" > "$OUT/cmdline"
"$OSU" --config "$OUT/os-update.yml" --status

step "boot-complete.target reached: os-update-commit.service runs os-update --commit"
"$OSU" --config "$OUT/os-update.yml" --commit
echo "grub-editenv list (what GRUB reads at the next boot):"
grub-editenv "$OUT/boot/osu/grubenv" list
grep -qx 'OSU_ORDER=B A' <(grub-editenv "$OUT/boot/osu/grubenv" list) || { echo "commit did not make B the default"; exit 1; }

step "Check with independent tools: slot B == rootfs-v2.img"
read -r B_START < <(sfdisk --json "$OUT/disk.img" | python3 -c 'import json,sys
print([p["start"] for p in json.load(sys.stdin)["partitiontable"]["partitions"] if p["name"]=="p.lxrootclone1"][0])')
want=$(sha256sum < "$OUT/rootfs-v2.img" | cut -d' ' -f1)
got=$(dd if="$OUT/disk.img" bs=1M skip=$((B_START * 512)) count=$(stat -c %s "$OUT/rootfs-v2.img") \
      iflag=skip_bytes,count_bytes status=none | sha256sum | cut -d' ' -f1)
echo "image   $want"
echo "slot B  $got"
[ "$want" = "$got" ] && echo "Slot B holds exactly the signed image." || { echo MISMATCH; exit 1; }
