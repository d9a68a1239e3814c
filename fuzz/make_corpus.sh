#!/bin/sh
# Regenerates the seed corpora in fuzz/corpus/ from real tools (grub-editenv, mkenvimage,
# os-update-bundle, openssl, zstd).
# Usage: fuzz/make_corpus.sh PATH/TO/os-update-bundle [TARGET...] (default: every target; the
# others' seeds stay as they are).
set -eu
bundle_tool=${1:?usage: make_corpus.sh PATH/TO/os-update-bundle [TARGET...]}
shift
bundle_tool=$(realpath "$bundle_tool")
here=$(cd "$(dirname "$0")" && pwd)
corpus=$here/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
targets=${*:-manifest config grubenv uboot_env cmdline bundle record tuf chunk_index patch_header}
want() { case " $targets " in *" $1 "* | *" fuzz_$1 "*) return 0 ;; esac; return 1; }
for t in manifest config grubenv uboot_env cmdline bundle record tuf chunk_index patch_header; do
  want $t || continue
  # v1-*: inputs of an older format the parser still reads (the tool writes only the newest).
  find "$corpus/fuzz_$t" -type f ! -name 'v1-*' -delete 2>/dev/null || true
  mkdir -p "$corpus/fuzz_$t"
done
sha=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef

# Bundles: a 4 KiB image (text, so the codecs have something to do) and two boot files,
# signed with the fuzz test key; one per compression.
if want bundle || want manifest; then
yes 'root file system block' | head -c 4096 >"$tmp/rootfs.img"
printf 'kernel\n' >"$tmp/vmlinuz"
printf 'initrd\n' >"$tmp/initrd.img"
for c in none xz zstd gzip; do
  # zstd: format 2 (independent frames) here, format 4 (frames with a window) below.
  "$bundle_tool" create --image "$tmp/rootfs.img" --compression $c \
    --boot-file "$tmp/vmlinuz" --boot-file "$tmp/initrd.img" \
    --cmdline 'console=ttyS0,115200 quiet rd.shell=0' --compatible eos-x86_64-kvm \
    --version 2.0.0 --min-version 1.0.0 --key "$here/keys/fuzz-test.key" \
    $([ $c = zstd ] && echo --chunk-window 0) --output "$corpus/fuzz_bundle/signed-$c.osu" >/dev/null
done
# Format 4: several chunks, each frame made with the image before it.
seq 1 8000 >"$tmp/lines.img"
"$bundle_tool" create --image "$tmp/lines.img" --compression zstd --chunk-size 4096 \
  --boot-file "$tmp/vmlinuz" --compatible eos-x86_64-kvm --version 2.0.0 \
  --chunk-refs 0 --key "$here/keys/fuzz-test.key" \
  --output "$corpus/fuzz_bundle/signed-zstd-window.osu" >/dev/null
# Format 5: the lines twice, a 4 KiB window: the second time's frames refer to the first's
# chunks (beyond the window) as well.
{ seq 1 3000; seq 1 3000; } >"$tmp/twice.img"
"$bundle_tool" create --image "$tmp/twice.img" --compression zstd --chunk-size 1024 \
  --chunk-window 4096 --boot-file "$tmp/vmlinuz" --compatible eos-x86_64-kvm --version 2.0.0 \
  --key "$here/keys/fuzz-test.key" --output "$corpus/fuzz_bundle/signed-zstd-refs.osu" >/dev/null
"$bundle_tool" create --image "$tmp/rootfs.img" --compression none --compatible eos-rpi5 \
  --version 1.0 --unsigned --output "$corpus/fuzz_bundle/unsigned-none.osu" >/dev/null
fi

# Manifests: the real ones, plus the other YAML styles ParseManifest accepts.
if want manifest; then
tar -xOf "$corpus/fuzz_bundle/signed-xz.osu" manifest.yaml >"$corpus/fuzz_manifest/real-xz.yaml"
tar -xOf "$corpus/fuzz_bundle/unsigned-none.osu" manifest.yaml \
  >"$corpus/fuzz_manifest/real-none.yaml"
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
fi

# Configs: EOS's keys, every key, flow style.
if want config; then
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
fi

# grubenv: made by grub-editenv.
if want grubenv; then
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
fi

# U-Boot env images from mkenvimage; the first byte is the harness's flags (see
# fuzz_uboot_env.cpp): 0x00 single 4 KiB, 0x11/0x01 redundant 4 KiB, 0x20 single + Apply.
if want uboot_env; then
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
fi

# Kernel command lines [NUL mountinfo].
if want cmdline; then
c=$corpus/fuzz_cmdline
printf 'BOOT_IMAGE=/vmlinuz root=PARTUUID=6e2c7d3a-52a1-4c3e-9f0b-0a1b2c3d4e5f ro quiet' >"$c/partuuid"
printf 'root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1 console=ttyS0,115200' >"$c/partlabel"
printf 'root=/dev/vda3 rd.break "quoted arg=x y" k="v w" -- init args' >"$c/dev"
printf 'OSU_ORDER="B A" OSU_A_LEFT=0 OSU_B_LEFT=3 OSU_TRY=A osu.slot=a' >"$c/selection"
printf 'quiet\00036 35 253:4 / / rw,relatime shared:1 - ext4 /dev/vda4 rw\n37 36 0:5 / /dev rw - devtmpfs udev rw\n' \
  >"$c/mountinfo"
fi

# Records, as SerializeRecord writes them.
if want record; then
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
fi

# TUF metadata from the tooling, as the README's walkthrough makes it: a root threshold of two,
# one bundle as target (with a rollout), snapshot and timestamp by the online key, then a
# rotation of the targets key. fuzz_tuf trusts 1.root.json (its keys signed the rest); the
# targets signed by the new key only do not pass that root (a seed that fails the threshold).
if want tuf; then
t=$corpus/fuzz_tuf
repo=$tmp/repo
for n in alice bob release release2 online; do
  "$bundle_tool" keygen --private "$tmp/$n.pem" --public "$tmp/$n.pub" >/dev/null
done
yes 'tuf target' | head -c 1024 >"$tmp/tuf.img"
"$bundle_tool" create --image "$tmp/tuf.img" --compression none --compatible eos-x86_64-kvm \
  --version 2.0 --unsigned --output "$tmp/eos-2.0.osu" >/dev/null
"$bundle_tool" tuf init "$repo" --root-key "$tmp/alice.pub" --root-key "$tmp/bob.pub" \
  --root-threshold 2 --targets-key "$tmp/release.pub" --snapshot-key "$tmp/online.pub" \
  --timestamp-key "$tmp/online.pub" >/dev/null
"$bundle_tool" tuf sign "$repo/1.root.json" --key "$tmp/alice.pem" >/dev/null
"$bundle_tool" tuf sign "$repo/1.root.json" --key "$tmp/bob.pem" >/dev/null
"$bundle_tool" tuf add "$repo" "$tmp/eos-2.0.osu" --rollout 20 --salt r2 >/dev/null
"$bundle_tool" tuf sign "$repo/targets.json" --key "$tmp/release.pem" >/dev/null
"$bundle_tool" tuf timestamp "$repo" --key "$tmp/online.pem" >/dev/null
cp "$repo/1.root.json" "$repo/targets.json" "$repo/timestamp.json" "$t/"
cp "$repo/1.snapshot.json" "$t/snapshot.json"
"$bundle_tool" tuf rotate "$repo" --targets-key "$tmp/release2.pub" >/dev/null
"$bundle_tool" tuf sign "$repo/2.root.json" --key "$tmp/alice.pem" >/dev/null
"$bundle_tool" tuf sign "$repo/2.root.json" --key "$tmp/bob.pem" >/dev/null
"$bundle_tool" tuf add "$repo" "$tmp/eos-2.0.osu" >/dev/null
"$bundle_tool" tuf sign "$repo/targets.json" --key "$tmp/release2.pem" >/dev/null
cp "$repo/2.root.json" "$t/"
cp "$repo/targets.json" "$t/targets-new-key.json"
fi

# Chunk indexes of real bundles (zstd, chunked): text whose lines differ, at three chunk
# sizes, and an image of one chunk.
if want chunk_index; then
seq 1 30000 >"$tmp/seq.img"
for avg in 1024 4096 16384; do
  # Version 2 (--chunk-window 0, format 2) and version 3 (a window, format 4: --chunk-refs 0).
  "$bundle_tool" create --image "$tmp/seq.img" --compression zstd --chunk-size $avg \
    --chunk-window 0 --compatible eos-x86_64-kvm --version 2.0 --unsigned \
    --output "$tmp/chunks.osu" >/dev/null
  tar -xOf "$tmp/chunks.osu" --wildcards '*.index' >"$corpus/fuzz_chunk_index/avg-$avg.index"
  "$bundle_tool" create --image "$tmp/seq.img" --compression zstd --chunk-size $avg \
    --chunk-refs 0 --compatible eos-x86_64-kvm --version 2.0 --unsigned \
    --output "$tmp/chunks.osu" >/dev/null
  tar -xOf "$tmp/chunks.osu" --wildcards '*.index' >"$corpus/fuzz_chunk_index/v3-avg-$avg.index"
done
# Version 4 (format 5): the lines twice, a 16 KiB window: references to the first time's chunks.
{ seq 1 20000; seq 1 20000; } >"$tmp/twice.img"
for avg in 1024 4096; do
  "$bundle_tool" create --image "$tmp/twice.img" --compression zstd --chunk-size $avg \
    --chunk-window 16384 --compatible eos-x86_64-kvm --version 2.0 --unsigned \
    --output "$tmp/chunks.osu" >/dev/null
  tar -xOf "$tmp/chunks.osu" --wildcards '*.index' >"$corpus/fuzz_chunk_index/v4-avg-$avg.index"
done
printf 'one chunk\n' >"$tmp/small.img"
"$bundle_tool" create --image "$tmp/small.img" --compression zstd --chunk-window 0 \
  --compatible eos-x86_64-kvm --version 2.0 --unsigned --output "$tmp/chunks.osu" >/dev/null
tar -xOf "$tmp/chunks.osu" --wildcards '*.index' >"$corpus/fuzz_chunk_index/one-chunk.index"
fi

# Patches from `os-update-bundle delta`, signed with the fuzz test key: the base is the one
# fuzz_patch_header.cpp builds (BaseImage(): lines of text and a zstd block made as mksquashfs
# makes them; zstd compresses a file whose size it knows exactly so), the target changes a
# line of each and grows by 70000 bytes; 64 KiB segments and one segment of 1 MiB in format
# 2 (the changed block carried uncompressed and compressed again by the device), 64 KiB
# segments in format 1 (--no-blocks).
if want patch_header; then
seq 1 12000 >"$tmp/block"
zstd -q -15 --no-check "$tmp/block" -o "$tmp/block.zst"
{ yes 'osu patch base' | head -c 65536; cat "$tmp/block.zst"; } >"$tmp/base.img"
sed 's/^6000$/a changed line/' "$tmp/block" >"$tmp/block2"
zstd -q -15 --no-check "$tmp/block2" -o "$tmp/block2.zst"
{ head -c 30000 "$tmp/base.img"; printf 'a changed line\n'; head -c 65536 "$tmp/base.img" |
  tail -c +30016; cat "$tmp/block2.zst"; seq 1 70000 | head -c 70000; } >"$tmp/target.img"
for v in base target; do
  "$bundle_tool" create --image "$tmp/$v.img" --compression zstd --no-chunks \
    --compatible eos-x86_64-kvm --version 1.0 --unsigned --output "$tmp/$v.osu" >/dev/null
done
for s in 65536 1048576; do
  "$bundle_tool" delta --from "$tmp/base.osu" --to "$tmp/target.osu" --segment-size $s \
    --key "$here/keys/fuzz-test.key" --output "$tmp/$s.delta" >/dev/null
done
"$bundle_tool" delta --from "$tmp/base.osu" --to "$tmp/target.osu" --segment-size 65536 \
  --no-blocks --key "$here/keys/fuzz-test.key" --output "$tmp/format1.delta" >/dev/null
mv "$tmp/65536.delta" "$corpus/fuzz_patch_header/segments-64k.delta"
mv "$tmp/1048576.delta" "$corpus/fuzz_patch_header/one-segment.delta"
mv "$tmp/format1.delta" "$corpus/fuzz_patch_header/format1-segments-64k.delta"
fi
