#!/usr/bin/env bash
# Benchmark of the data path against the physical limits and the naive pipeline.
# Run as root (loop device): bench/apply-bench.sh
# Builds a 1 GiB ext4 image ~60% full of real files from /usr (cached in $BENCH_DIR between
# runs), compresses it with multi-block xz and zstd, and times on a loop device: decode
# alone, hash alone, write alone, `xz -dc | tee >(sha256sum) | dd`, osu-bench-copy (the pure
# data path: MakeDecoder + StreamToDevice) and, once wired, the real apply (APPLY_CMD).
#
# Environment:
#   OSU_BENCH_COPY  path of osu-bench-copy (default: $OSU_BUILD/bench/osu-bench-copy)
#   OSU_BUILD       build tree (default: <repo>/build)
#   BENCH_DIR       work directory (default: /var/tmp/osu-bench); images are kept there
#   REPEAT          runs per measurement, the best counts (default: 1)
#   APPLY_CMD       shell command for "our apply", run with CODEC, COMPRESSED, DEV, RAW,
#                   RAW_SIZE, RAW_SHA exported; or fill in apply_cmd() below.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
OSU_BUILD=${OSU_BUILD:-$REPO/build}
BENCH_COPY=${OSU_BENCH_COPY:-$OSU_BUILD/bench/osu-bench-copy}
WORK=${BENCH_DIR:-/var/tmp/osu-bench}
REPEAT=${REPEAT:-1}
IMAGE_MIB=1024
FILL_MIB=600  # ~60% of the image: real files, the rest free space (zeros)

# "Our apply", to be wired by the lead: apply $COMPRESSED ($CODEC) onto $DEV. Return 99 to
# mean "not available" (the row is skipped).
apply_cmd() {
  if [[ -n ${APPLY_CMD:-} ]]; then eval "$APPLY_CMD"; return; fi
  [[ -x $OSU ]] || return 99
  "$OSU" --config "$WORK/osu.yml" --apply "$WORK/bundle-$CODEC.osu" --no-activate
}

die() { echo "apply-bench: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || { echo "apply-bench: SKIP: needs root for the loop device"; exit 77; }
for tool in xz zstd sha256sum openssl dd losetup mkfs.ext4 python3 /usr/bin/time; do
  command -v "$tool" >/dev/null || die "missing $tool (apt-get install time for /usr/bin/time)"
done
mkdir -p "$WORK"
RAW=$WORK/rootfs.img

# The image: deterministic, cached (bench/rootfs-image.sh: build_image).
. "$HERE/rootfs-image.sh"

if [[ ! -s $RAW || ! -s $RAW.xz || ! -s $RAW.zst ]]; then
  echo "Building the ${IMAGE_MIB} MiB ext4 image with ~${FILL_MIB} MiB of files from /usr ..."
  build_image
  echo "Compressing (xz -T0 --block-size=16MiB, zstd -T0 -3) ..."
  xz -T0 --block-size=16MiB -k -c "$RAW" >"$RAW.xz.tmp" && mv "$RAW.xz.tmp" "$RAW.xz"
  zstd -q -T0 -3 -f -c "$RAW" >"$RAW.zst.tmp" && mv "$RAW.zst.tmp" "$RAW.zst"
fi
RAW_SIZE=$(stat -c %s "$RAW")
RAW_SHA=$(sha256sum "$RAW" | cut -c1-64)
export RAW RAW_SIZE RAW_SHA

# --- the slot: partition B of a GPT disk (sparse file) on a loop device with direct I/O ----
# Every write below goes to that partition node, os-update's apply included (it finds the
# slot by its PARTLABEL, as on a device).
SLOT=$WORK/disk.img
rm -f "$SLOT" && truncate -s 1200M "$SLOT"
printf 'label: gpt\nstart=2048, size=32768, name="p.lxreadonly"\nstart=34816, name="p.lxrootclone1"\n' |
  sfdisk -q "$SLOT"
DISK=$(losetup --find --show --direct-io=on --partscan "$SLOT")
DEV=${DISK}p2
# Containers without udev get no partition nodes: add them ourselves. A regular file of that
# name (left by some earlier run's dd) would silently turn every "device write" into a tmpfs
# copy, so anything but a block device stops the benchmark.
[[ -e $DEV ]] || partx -a "$DISK"
[[ -b $DEV ]] || { losetup -d "$DISK"; die "$DEV is not a block device (a stale file in /dev? remove it)"; }
export DEV DISK
cleanup() { losetup -d "$DISK" 2>/dev/null || true; rm -f "$SLOT" "$WORK"/time.out "$WORK"/err; }
trap cleanup EXIT
# Allocate the backing file once, untimed, so no measured run pays for block allocation.
dd if="$RAW" of="$DEV" bs=4M oflag=direct conv=fsync status=none
cat "$RAW" "$RAW.xz" "$RAW.zst" >/dev/null  # inputs warm in the page cache, as a fair start

# --- os-update's own apply: a device config and signed bundles of the same compressed images,
# assembled with plain tools (tar, openssl) as the README's HSM flow allows. -------------------
OSU=${OSU:-$(dirname "$BENCH_COPY")/../cmd/os-update}
export OSU WORK
if [[ -x $OSU ]]; then
  mkdir -p "$WORK/boot" "$WORK/bundle"
  openssl genpkey -algorithm ed25519 -out "$WORK/key.pem" 2>/dev/null
  openssl pkey -in "$WORK/key.pem" -pubout -out "$WORK/key.pub.pem"
  echo "root=PARTLABEL=p.lxreadonly" >"$WORK/cmdline"
  cat >"$WORK/osu.yml" <<YAML
update: {keys: [$WORK/key.pub.pem], compatible: bench}
slots: {disk: $DISK}
boot: {path: $WORK/boot, grubenv: $WORK/no-env}
system: {cmdline: $WORK/cmdline, mountinfo: /proc/self/mountinfo, lock: $WORK/osu.lock, os_release: $WORK/none}
YAML
  for codec in xz zstd; do
    [[ $codec == xz ]] && member=rootfs.img.xz src=$RAW.xz || member=rootfs.img.zst src=$RAW.zst
    (cd "$WORK/bundle" && rm -f ./* && ln -s "$src" "$member" &&
      printf 'format: 1\ncompatible: bench\nversion: "1"\ncmdline: ""\nimage: {name: %s, compression: %s, size: %s, sha256: %s}\nboot_files: []\n' \
        "$member" "$codec" "$RAW_SIZE" "$RAW_SHA" >manifest.yaml &&
      openssl pkeyutl -sign -rawin -inkey "$WORK/key.pem" -in manifest.yaml -out manifest.sig &&
      tar --format=pax --dereference -cf "$WORK/bundle-$codec.osu" manifest.yaml manifest.sig "$member")
  done
  # --check: manifest and signature only. The mean of 20 runs (one is too short for the clock),
  # and the peak RSS; the bytes read are counted below, through a pipe.
  check_out=$(
    t0=$(date +%s%N)
    for ((i = 0; i < 20; i++)); do
      "$OSU" --config "$WORK/osu.yml" --check "$WORK/bundle-xz.osu" >/dev/null || [[ $? == 100 ]] || exit 1
    done
    t1=$(date +%s%N)
    rss=$( { /usr/bin/time -f '%M' "$OSU" --config "$WORK/osu.yml" --check "$WORK/bundle-xz.osu" >/dev/null || true; } 2>&1 | tail -n1)
    awk -v a="$t0" -v b="$t1" -v k="$rss" 'BEGIN { printf "%.1f ms (mean of 20), %d KiB peak RSS", (b - a) / 20 / 1e6, k }'
  ) || check_out=""
fi

# --- measuring ----------------------------------------------------------------------------
declare -A SECS RSS CPU FAILED ROUND_SECS
ORDER=()
# measure KEY LABEL COMMAND: one run; across the REPEAT rounds a key keeps its best wall time,
# that run's CPU time (user + sys of the whole command tree) and the largest peak RSS of any
# process in any run (GNU time's %M). Rounds run every measurement once in turn, so that the
# machine's drift (other tenants, steal time) touches each row alike.
measure() {
  local key=$1 label=$2 cmd=$3 t0 t1 secs kb used
  [[ ${FAILED[$key]:-} ]] && return
  t0=$(date +%s%N)
  if ! /usr/bin/time -f '%M %U %S' -o "$WORK/time.out" bash -c "$cmd" >/dev/null 2>"$WORK/err"; then
    FAILED[$key]=1
    if grep -q '^SKIP$' "$WORK/err"; then echo "  (skipped: $label)"; return; fi
    echo "  FAILED: $label" >&2; cat "$WORK/err" >&2; return
  fi
  t1=$(date +%s%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  read -r kb used < <(tail -n1 "$WORK/time.out" | awk '{ printf "%d %.2f\n", $1, $2 + $3 }')
  ROUND_SECS[$key,$round]=$secs
  if [[ -z ${SECS[$key]:-} ]]; then
    ORDER+=("$key|$label")
    RSS[$key]=0
  fi
  if [[ -z ${SECS[$key]:-} ]] || awk -v s="$secs" -v b="${SECS[$key]}" 'BEGIN { exit !(s < b) }'; then
    SECS[$key]=$secs CPU[$key]=$used
  fi
  ((kb > RSS[$key])) && RSS[$key]=$kb
  printf '  %-44s %8.2f s\n' "$label" "$secs"
}

# Every write run must have produced the image: check it untimed.
check_slot() {
  cmp -n "$RAW_SIZE" "$RAW" "$DEV" >/dev/null || die "$1 left a slot that differs from the image"
}

echo "Load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine makes wall times noisy)"
echo "Image: $RAW_SIZE bytes, xz $(stat -c %s "$RAW.xz"), zstd $(stat -c %s "$RAW.zst"); slot $DEV; $(nproc) CPUs"
for ((round = 1; round <= REPEAT; round++)); do
  echo "Round $round of $REPEAT:"
  measure dec_xz   "decode xz (xz -dc -T0)"        "xz -dc -T0 '$RAW.xz' >/dev/null"
  measure dec_zstd "decode zstd (zstd -dc)"        "zstd -q -dc '$RAW.zst' >/dev/null"
  measure hash     "hash (sha256sum raw)"          "sha256sum '$RAW' >/dev/null"
  measure hash_ssl "hash (openssl dgst -sha256 raw)" "openssl dgst -sha256 '$RAW' >/dev/null"
  measure write    "write (dd bs=4M oflag=direct)" "dd if='$RAW' of='$DEV' bs=4M oflag=direct conv=fsync status=none"
  check_slot "dd"
  # iflag=fullblock: without it dd writes whatever short read the pipe gives.
  for codec in xz zstd; do
    if [[ $codec == xz ]]; then dec="xz -dc -T0 '$RAW.xz'"; in=$RAW.xz; else dec="zstd -q -dc '$RAW.zst'"; in=$RAW.zst; fi
    measure "naive_$codec" "naive $codec | tee >(sha256sum) | dd" \
      "$dec | tee >(sha256sum >/dev/null) | dd of='$DEV' bs=4M iflag=fullblock oflag=direct conv=fsync status=none"
    check_slot "naive $codec"
    if [[ -x $BENCH_COPY ]]; then
      measure "copy_$codec" "osu-bench-copy $codec" "'$BENCH_COPY' $codec '$in' '$DEV' $RAW_SIZE $RAW_SHA"
      check_slot "osu-bench-copy $codec"
    else
      echo "  (skipped: osu-bench-copy $codec: $BENCH_COPY not built)"
    fi
    export CODEC=$codec COMPRESSED=$in
    measure "apply_$codec" "our apply $codec" "$(declare -f apply_cmd); apply_cmd || { [[ \$? == 99 ]] && echo SKIP >&2; exit 1; }"
    [[ -n ${SECS[apply_$codec]:-} ]] && check_slot "apply $codec"
  done
done

# --- the table ----------------------------------------------------------------------------
mbs() { awk -v n="$RAW_SIZE" -v s="$1" 'BEGIN { printf "%.0f", n / s / 1e6 }'; }
echo
printf '%-40s %8s %8s %7s %9s %9s %9s\n' "measurement (1 GiB raw image)" "seconds" "MB/s" \
  "CPU s" "peak RSS" "vs limit" "vs naive"
for entry in "${ORDER[@]}"; do
  key=${entry%%|*} label=${entry#*|}
  secs=${SECS[$key]} rate=$(mbs "$secs") limit="" naive=""
  codec=${key#*_}
  if [[ $key == naive_* || $key == copy_* || $key == apply_* ]]; then
    # The limit of a pipeline is its slowest stage alone: decode, the faster hash, write.
    hash=$(printf '%s\n' "${SECS[hash]}" "${SECS[hash_ssl]:-${SECS[hash]}}" | sort -g | head -n1)
    slowest=$(printf '%s\n' "${SECS[dec_$codec]}" "$hash" "${SECS[write]}" | sort -g | tail -n1)
    limit=$(awk -v s="$secs" -v l="$slowest" 'BEGIN { printf "%.2f", l / s }')
    naive=$(awk -v s="$secs" -v n="${SECS[naive_$codec]}" 'BEGIN { printf "%.2f", n / s }')
  fi
  printf '%-40s %8.2f %8s %7s %7s M %9s %9s\n' "$label" "$secs" "$rate" "${CPU[$key]}" \
    "$(awk -v k="${RSS[$key]}" 'BEGIN { printf "%.0f", k / 1024 }')" "${limit:--}" "${naive:--}"
done
echo "vs limit: speed relative to the pipeline's slowest stage alone (1.00 = at the physical limit);"
echo "vs naive: speed relative to the shell pipeline with the same codec; peak RSS: largest process."
echo "CPU s: user + sys of the whole command; load average now: $(cut -d' ' -f1-3 /proc/loadavg)"

# The same ratio within each round (stages and pipeline measured minutes apart, not across the
# whole run): steadier when the machine's speed drifts between rounds.
slowest_in_round() {  # CODEC ROUND
  local h=${ROUND_SECS[hash,$2]} hs=${ROUND_SECS[hash_ssl,$2]:-${ROUND_SECS[hash,$2]}}
  printf '%s\n' "${ROUND_SECS[dec_$1,$2]}" "$(printf '%s\n' "$h" "$hs" | sort -g | head -n1)" \
    "${ROUND_SECS[write,$2]}" | sort -g | tail -n1
}
for key in copy_xz apply_xz copy_zstd apply_zstd; do
  [[ -n ${SECS[$key]:-} ]] || continue
  ratios=()
  for ((r = 1; r <= REPEAT; r++)); do
    [[ -n ${ROUND_SECS[$key,$r]:-} ]] || continue
    ratios+=("$(awk -v l="$(slowest_in_round "${key#*_}" "$r")" -v s="${ROUND_SECS[$key,$r]}" \
      'BEGIN { printf "%.2f", l / s }')")
  done
  median=$(printf '%s\n' "${ratios[@]}" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  printf 'vs limit, round by round, %-12s %s (median %s)\n' "$key:" "${ratios[*]}" "$median"
done
if [[ -n ${check_out:-} ]]; then
  # Bytes --check takes from a pipe: what it read, plus at most the pipe's 64 KiB buffer.
  fed=$(python3 - "$OSU" "$WORK/osu.yml" "$WORK/bundle-xz.osu" <<'PY'
import subprocess, sys
p = subprocess.Popen([sys.argv[1], "--config", sys.argv[2], "--check", "-"],
                     stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
fed = 0
with open(sys.argv[3], "rb") as f:
    try:
        while p.poll() is None:
            chunk = f.read(4096)
            if not chunk:
                break
            p.stdin.write(chunk); p.stdin.flush(); fed += len(chunk)
    except BrokenPipeError:
        pass
p.wait()
print(fed)
PY
)
  echo "os-update --check, local 1 GiB xz bundle: $check_out; took at most $fed bytes of it from a pipe (incl. 64 KiB pipe buffer)"
fi
