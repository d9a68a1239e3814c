#!/bin/sh
# Regenerates the seed corpora in fuzz/corpus/ from real tools (grub-editenv, mkenvimage,
# os-update-bundle, openssl). Usage: fuzz/make_corpus.sh PATH/TO/os-update-bundle
set -eu
bundle_tool=${1:?usage: make_corpus.sh PATH/TO/os-update-bundle}
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in manifest config grubenv uboot_env cmdline bundle record; do
  rm -rf "$corpus/fuzz_$t"; mkdir -p "$corpus/fuzz_$t"
done

# Bundles: a 4 KiB image (text, so the codecs have something to do) and two boot files,
# signed with the fuzz test key; one per compression.
yes 'root file system block' | head -c 4096 >"$tmp/rootfs.img"
printf 'kernel\n' >"$tmp/vmlinuz"
printf 'initrd\n' >"$tmp/initrd.img"
for c in none xz zstd gzip; do
  "$bundle_tool" create --image "$tmp/rootfs.img" --compression $c \
    --boot-file "$tmp/vmlinuz" --boot-file "$tmp/initrd.img" \
    --cmdline 'console=ttyS0,115200 quiet rd.shell=0' --compatible eos-x86_64-kvm \
    --version 2.0.0 --min-version 1.0.0 --key "$here/keys/fuzz-test.key" \
    --output "$corpus/fuzz_bundle/signed-$c.osu" >/dev/null
done
"$bundle_tool" create --image "$tmp/rootfs.img" --compression none --compatible eos-rpi5 \
  --version 1.0 --unsigned --output "$corpus/fuzz_bundle/unsigned-none.osu" >/dev/null

# Manifests: the real ones, plus the other YAML styles ParseManifest accepts.
tar -xOf "$corpus/fuzz_bundle/signed-xz.osu" manifest.yaml >"$corpus/fuzz_manifest/real-xz.yaml"
tar -xOf "$corpus/fuzz_bundle/unsigned-none.osu" manifest.yaml \
  >"$corpus/fuzz_manifest/real-none.yaml"
sha=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
cat >"$corpus/fuzz_manifest/block-style.yaml" <<YAML
format: 1
compatible: eos-rpi4
version: '3.1'
min_version: ~
cmdline: "console=serial0,115200 \\"quoted\\" \\x01"
image:
  name: rootfs.img.zst
  compression: zstd
  size: 1073741824
  sha256: ${sha}
boot_files:
  - name: kernel8.img
    size: 123
    sha256: ${sha}
  - {name: bcm2711-rpi-4-b.dtb, size: 0, sha256: "$(echo $sha | tr a-f A-F)"}
YAML

# Configs: EOS's keys, every key, flow style.
cat >"$corpus/fuzz_config/eos.yml" <<'YAML'
update:
  server: https://updates.example.com/eos
  name: eos-kvm
  pkey: /etc/os-update/id_ed25519
YAML
cat >"$corpus/fuzz_config/all.yml" <<'YAML'
activation: kexec
update:
  server: https://updates.example.com/eos
  name: eos-kvm
  pkey: ~
  keys: [/k/a.pem, /k/b.pem]
  compatible: eos-rpi5
  ca_file: /etc/ssl/ca.pem
slots:
  disk: /dev/mmcblk0
  a: rootA
  b: rootB
boot:
  path: /boot/firmware
  bootloader: uboot
  grubenv: /boot/efi/osu/grubenv
  fw_env_config: /etc/fw_env.config
system:
  systemd: /run/systemd/system
  cmdline: /tmp/cmdline
  mountinfo: /tmp/mountinfo
  lock: /tmp/lock
  os_release: /tmp/os-release
install:
  verify: true
  skip_unchanged: yes
  threads: 2
YAML
printf '{update: {keys: /k/a.pem, server: "x"}, boot: {bootloader: grub}, activation: reboot}\n' \
  >"$corpus/fuzz_config/flow.yml"

# grubenv: made by grub-editenv.
g=$corpus/fuzz_grubenv
grub-editenv "$g/empty" create
cp "$g/empty" "$g/factory"
grub-editenv "$g/factory" set OSU_ORDER='A B' OSU_A_LEFT=3 OSU_B_LEFT=3
cp "$g/factory" "$g/trial"
grub-editenv "$g/trial" set OSU_TRY=B 'odd=va\lue with
newline' saved_entry=0
grub-editenv "$g/trial" unset OSU_A_LEFT
# The same block followed by edits (Set/Unset names and values, kinds taken from the end).
{ cat "$g/trial"; printf 'OSU_TRY\\\\xB\\\\xOSU_ORDER\\\\xB A\\\\x\001\000\001'; } >"$g/trial-edits"

# U-Boot env images from mkenvimage; the first byte is the harness's flags (see
# fuzz_uboot_env.cpp): 0x00 single 4 KiB, 0x11/0x01 redundant 4 KiB, 0x20 single + Apply.
u=$corpus/fuzz_uboot_env
printf 'bootcmd=run osu_boot\nOSU_ORDER=A B\nOSU_A_LEFT=3\nOSU_B_LEFT=3\nbootdelay=0\n' \
  >"$tmp/env.txt"
mkenvimage -s 0x1000 -o "$tmp/single.bin" "$tmp/env.txt"
mkenvimage -r -s 0x1000 -o "$tmp/red.bin" "$tmp/env.txt"
{ printf '\000'; cat "$tmp/single.bin"; } >"$u/single"
{ printf '\040'; cat "$tmp/single.bin"; } >"$u/single-apply"
{ printf '\001'; cat "$tmp/red.bin" "$tmp/red.bin"; } >"$u/redundant"
{ printf '\061'; cat "$tmp/red.bin" "$tmp/red.bin"; } >"$u/redundant-one-file-apply"
printf '\002a=1\000b=two words\000\000' >"$u/crc-fixed-single"
printf '\200PARTUUID=6e2c7d3a-52a1-4c3e-9f0b-0a1b2c3d4e5f\000console=ttyS0 a\\b quiet' \
  >"$u/slot-env"

# Kernel command lines [NUL mountinfo].
c=$corpus/fuzz_cmdline
printf 'BOOT_IMAGE=/vmlinuz root=PARTUUID=6e2c7d3a-52a1-4c3e-9f0b-0a1b2c3d4e5f ro quiet' >"$c/partuuid"
printf 'root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1 console=ttyS0,115200' >"$c/partlabel"
printf 'root=/dev/vda3 rd.break "quoted arg=x y" k="v w" -- init args' >"$c/dev"
printf 'OSU_ORDER="B A" OSU_A_LEFT=0 OSU_B_LEFT=3 OSU_TRY=A osu.slot=a' >"$c/selection"
printf 'quiet\00036 35 253:4 / / rw,relatime shared:1 - ext4 /dev/vda4 rw\n37 36 0:5 / /dev rw - devtmpfs udev rw\n' \
  >"$c/mountinfo"

# Records, as SerializeRecord writes them.
r=$corpus/fuzz_record
cat >"$r/verified.yml" <<YAML
slot: B
state: verified
version: "2.0.0"
compatible: "eos-x86_64-kvm"
sha256: ${sha}
size: 4096
cmdline: "console=ttyS0 quiet"
boot_files:
  - {name: vmlinuz, size: 7, sha256: ${sha}}
  - {name: initrd.img, size: 7, sha256: ${sha}}
updated_at: 2024-05-01T12:00:00Z
YAML
cat >"$r/invalid.yml" <<'YAML'
slot: A
state: invalid
version: ""
compatible: ""
sha256: ""
size: 0
cmdline: ""
boot_files: []
updated_at: 2024-05-01T12:00:00Z
reason: "image 'rootfs.img.xz': sha256 mismatch"
YAML
