#!/usr/bin/env bash
# Benchmark of patches against a known base (lib/delta): an ext4 image of real files rebuilt
# from scratch after about 5% of its bytes changed, and the same trees as zstd squashfs images
# (bench/patch-images.sh, cached in $BENCH_DIR). For each: the full bundle
# (os-update-bundle create, $COMPRESSION), the patch (os-update-bundle delta), its decoding on
# the device's path (osu-bench-patch-apply: OpenPatchedImage, sha256 of the output), and the
# reference `zstd --patch-from --long=31`. Prints one table.
#
#   bench/patch.sh            256 MiB images
#   bench/patch.sh 1024       1 GiB images (about 10 minutes on 2 cores)
#
# Peak memory: "anon" is the decoder process's own pages (RssAnon, sampled after every read),
# "file" the page cache it maps (the base slot, RssFile); "maxrss" is /usr/bin/time's, both.
# The "os-update --apply" row is the real CLI on a fake device (bench/fake-device.sh: slot A
# booted with the old image at its offset in a GPT disk image file) applying a zstd bundle of
# the new image with the patch beside it: its RssAnon sampled every 20 ms by this script, and
# its largest VmHWM (anonymous and file pages) seen.
# Environment: OSU_BUILD (default <repo>/build), BENCH_DIR (default /var/tmp/osu-bench-patch),
# PCT (changed share, default 5), COMPRESSION of the full bundle (default xz), LEVEL (zstd level
# of the patch, default 3), SEGMENT (bytes per segment, default 16 MiB), PATCH_FS (default
# "ext4 sqfs").
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
OSU_BUILD=${OSU_BUILD:-$REPO/build}
BUNDLE=$OSU_BUILD/cmd/os-update-bundle
APPLY=$OSU_BUILD/bench/osu-bench-patch-apply
OSU=$OSU_BUILD/cmd/os-update
IMAGE_MIB=${1:-256}
PCT=${PCT:-5}
COMPRESSION=${COMPRESSION:-xz}
LEVEL=${LEVEL:-3}
SEGMENT=${SEGMENT:-$((16 << 20))}
WORK=${BENCH_DIR:-/var/tmp/osu-bench-patch}/$IMAGE_MIB-$PCT

die() { echo "patch.sh: $*" >&2; exit 1; }
for tool in "$BUNDLE" "$APPLY" "$OSU" sfdisk grub-editenv mkfs.ext4 mksquashfs zstd python3 /usr/bin/time sha256sum; do
  command -v "$tool" >/dev/null || die "missing $tool"
done
mkdir -p "$WORK"
. "$HERE/patch-images.sh"
. "$HERE/fake-device.sh"
if [[ ! -s $WORK/new.sqfs ]]; then
  echo "Building ${IMAGE_MIB} MiB images, ${PCT}% changed, in $WORK ..." >&2
  build_patch_images >&2
fi
[[ -s $WORK/key.pem ]] || "$BUNDLE" keygen --private "$WORK/key.pem" --public "$WORK/key.pub.pem"

# "<seconds> <max RSS KiB>" of a command, its output kept in $WORK/last.out.
timed() {
  /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$WORK/last.out"
  cat "$WORK/time"
}
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f%%", 100 * a / b }'; }

# The real os-update --apply of the new image through PATCH, base in the booted slot A:
# prints "seconds anon_peak_kib hwm_kib" (fake-device.sh's peak_anon).
apply_through_patch() {  # fs old new patch
  local fs=$1 old=$2 new=$3 patch=$4 www=$WORK/www dev=$WORK/dev
  mkdir -p "$www"
  [[ -s $WORK/boot.vmlinuz ]] || head -c 4000000 /dev/urandom > "$WORK/boot.vmlinuz"
  [[ -s $www/new-$fs.osu ]] || "$BUNDLE" create --image "$new" --boot-file "$WORK/boot.vmlinuz" \
    --compression zstd --compatible bench --version 2.0.0 --key "$WORK/key.pem" \
    --output "$www/new-$fs.osu" >/dev/null
  rm -f "$www"/new-"$fs".osu.delta-*
  cp "$patch" "$www/new-$fs.osu.delta-$(sha256sum "$old" | cut -c1-16)"
  make_fake_device "$dev" "$old" "$WORK/boot.vmlinuz" bench "$WORK/key.pub.pem"
  local start end peak
  start=$(date +%s.%N)
  "$OSU" --config "$dev/os-update.yml" --apply "$www/new-$fs.osu" --no-activate --json \
    > "$WORK/apply.out" 2> "$WORK/apply.err" &
  peak=$(peak_anon $!)
  wait $! || { cat "$WORK/apply.err" >&2; die "os-update --apply failed"; }
  end=$(date +%s.%N)
  grep -q '"way":"patch"' "$WORK/apply.out" || die "os-update did not apply through the patch"
  grep -q 'state: verified' "$dev/boot/osu/B/record.yml" || die "slot B not verified"
  grep -q "sha256: \"$(sha256sum "$new" | cut -c1-64)\"" "$dev/boot/osu/B/record.yml" \
    || die "slot B's record has another sha256"
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') $peak"
  rm -rf "$dev"
}

rows=()
for fs in ${PATCH_FS:-ext4 sqfs}; do
  old=$WORK/old.$fs new=$WORK/new.$fs
  for v in old new; do
    [[ -s $WORK/$v-$fs.osu ]] && continue
    "$BUNDLE" create --image "$WORK/$v.$fs" --compression "$COMPRESSION" --compatible bench \
      --version "$([[ $v == old ]] && echo 1.0.0 || echo 2.0.0)" --key "$WORK/key.pem" \
      --output "$WORK/$v-$fs.osu" >/dev/null
  done
  full=$(stat -c %s "$WORK/new-$fs.osu")
  old_sha=$(sha256sum "$old" | cut -c1-64) new_sha=$(sha256sum "$new" | cut -c1-64)
  patch=$WORK/patch.$fs
  read -r enc_s enc_kib < <(timed "$BUNDLE" delta --from "$WORK/old-$fs.osu" \
    --to "$WORK/new-$fs.osu" --key "$WORK/key.pem" --output "$patch" --level "$LEVEL" \
    --segment-size "$SEGMENT")
  read -r _ dec_kib < <(timed "$APPLY" "$old" "$old_sha" "$patch" "$WORK/key.pub.pem" \
    "$(stat -c %s "$new")" "$new_sha" -)
  eval "$(tr ' ' '\n' <"$WORK/last.out")"  # decode_s, rss_anon_peak_mib, rss_file_peak_mib
  rows+=("| $fs | os-update patch (zstd -$LEVEL, $(mib "$SEGMENT") MiB segments) | $(stat -c %s "$patch") | $(pct "$(stat -c %s "$patch")" "$full") | ${enc_s} s | ${decode_s} s | ${rss_anon_peak_mib} / ${rss_file_peak_mib} | $(mib $((dec_kib * 1024))) |")
  read -r apply_s anon_kib hwm_kib < <(apply_through_patch "$fs" "$old" "$new" "$patch")
  rows+=("| $fs | os-update --apply through it (fake device, all of it) | | | | ${apply_s} s | $(mib $((anon_kib * 1024))) / - | $(mib $((hwm_kib * 1024))) (VmHWM) |")

  # The reference: one frame, the whole base as prefix, decoded by the zstd tool (a window
  # buffer as large as the image).
  read -r zenc_s _ < <(timed zstd -q -f -T0 -"$LEVEL" --long=31 --patch-from="$old" "$new" -o "$WORK/ref.$fs.zst")
  read -r zdec_s zdec_kib < <(timed zstd -q -d -f --long=31 --patch-from="$old" "$WORK/ref.$fs.zst" -o /dev/null)
  rows+=("| $fs | zstd --patch-from --long=31 -$LEVEL (reference) | $(stat -c %s "$WORK/ref.$fs.zst") | $(pct "$(stat -c %s "$WORK/ref.$fs.zst")" "$full") | ${zenc_s} s | ${zdec_s} s | - | $(mib $((zdec_kib * 1024))) |")
  rows+=("| $fs | full bundle ($COMPRESSION) | $full | 100% | | | | |")
done

echo
echo "Patches, ${IMAGE_MIB} MiB images, ${PCT}% of the files' bytes changed ($(nproc) CPUs)"
echo
echo "| image | way | bytes | of full bundle | encode | decode | peak anon / file MiB | maxrss MiB |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
