#!/usr/bin/env bash
# Partial-fetch bundle formats 4 and 5 (chunk frames with a window of the image before them;
# 5: and up to two earlier chunks like them) against
# today's full bundle, on images that already exist (issue 11: "the partial-fetch bundle
# <= 110% of today's full bundle").
# Usage: bench/chunk-window.sh IMAGE...
#   e.g. bench/chunk-window.sh /var/tmp/osu-d1-run256/v1.ext4 /var/tmp/osu-d1-run256/v1.squashfs
# Per image and row:
#   bundle    full xz (--compression xz: always one stream, today's full bundle before chunks),
#             full zstd (--no-chunks at create's default compression), or chunks at window W,
#             level L and R references (--compression zstd --chunk-window W --level L
#             --chunk-refs R; window 0 is format 2, independent frames; R 0 format 4)
#   bytes     of the bundle (one 4 KiB boot file, so nearly all image)
#   %xz       of the full xz bundle
#   create s  wall time of os-update-bundle create (threads: all cores)
#   verify s / verify MiB   os-update-bundle verify, which decodes the image as a full download
#             does (frame by frame with the index in format 4): wall time, peak RSS (GNU time %M)
# Environment: OSU_BUILD (default <repo>/build), BENCH_DIR (default /var/tmp/osu-chunk-window),
# WINDOW_VARIANTS: words of window:level[:refs] (default below; refs 0 unless given: format
# 4, or format 2 at window 0), FULL_XZ=0 skips the xz bundle (the
# %xz column is then empty).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${BENCH_DIR:-/var/tmp/osu-chunk-window}
VARIANTS=${WINDOW_VARIANTS:-"0:12 2097152:9 2097152:9:2"}
. "$HERE/delta-images.sh"  # BUNDLE, die, create
BENCH_NAME=chunk-window
[[ $# -gt 0 ]] || die "usage: bench/chunk-window.sh IMAGE..."
[[ -x $BUNDLE ]] || die "build first: $BUNDLE is missing"
for tool in openssl python3 /usr/bin/time; do command -v "$tool" >/dev/null || die "missing $tool"; done
mkdir -p "$WORK"
cd "$WORK"
[[ -f keys/private.pem ]] || { mkdir -p keys && openssl genpkey -algorithm ed25519 -out keys/private.pem 2>/dev/null && openssl pkey -in keys/private.pem -pubout -out keys/public.pem; }
[[ -f boot.vmlinuz ]] || head -c 4096 /dev/urandom > boot.vmlinuz

verify() {  # bundle -> "seconds MiB"
  /usr/bin/time -f '%e %M' -o verify.time "$BUNDLE" verify "$1" --key keys/public.pem >/dev/null
  python3 -c "e, m = open('verify.time').read().split()[-2:]; print(f'{float(e):.1f} {int(m) / 1024:.0f}')"
}

pct() { [[ -n $2 ]] && python3 -c "print(f'{$1 * 100 / $2:.1f}')" || echo -; }

printf '%-30s %-22s %12s %7s %9s %9s %11s\n' image bundle bytes "%xz" "create s" "verify s" "verify MiB"
for image in "$@"; do
  [[ -f $image ]] || die "no image $image"
  name=$(basename "$image")
  xz=""
  if [[ ${FULL_XZ:-1} != 0 ]]; then
    secs=$(create "$image" "$name.xz.osu" --compression xz --no-chunks)
    xz=$(stat -c %s "$name.xz.osu")
    read -r vs vm <<< "$(verify "$name.xz.osu")"
    printf '%-30s %-22s %12d %6s%% %9s %9s %11s\n' "$name" "full xz" "$xz" 100.0 "$secs" "$vs" "$vm"
    rm -f "$name.xz.osu"
  fi
  secs=$(create "$image" "$name.zst.osu" --compression zstd --no-chunks)
  size=$(stat -c %s "$name.zst.osu")
  read -r vs vm <<< "$(verify "$name.zst.osu")"
  printf '%-30s %-22s %12d %6s%% %9s %9s %11s\n' "$name" "full zstd" "$size" "$(pct "$size" "$xz")" \
    "$secs" "$vs" "$vm"
  rm -f "$name.zst.osu"
  for v in $VARIANTS; do
    IFS=: read -r window level refs <<< "$v"
    refs=${refs:-0}
    out="$name.w$window.l$level.r$refs.osu"
    secs=$(create "$image" "$out" --compression zstd --chunk-window "$window" --level "$level" \
      --chunk-refs "$refs")
    size=$(stat -c %s "$out")
    read -r vs vm <<< "$(verify "$out")"
    label="chunks w$((window >> 10))K L$level R$refs"
    printf '%-30s %-22s %12d %6s%% %9s %9s %11s\n' "$name" "$label" "$size" "$(pct "$size" "$xz")" \
      "$secs" "$vs" "$vm"
    rm -f "$out"
  done
done
