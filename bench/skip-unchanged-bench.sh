#!/usr/bin/env bash
# Benchmark of skip-unchanged writes (install.skip_unchanged): what os-update --apply really
# writes to the slot, counted by the kernel, and at what speed compared with a full write.
# Run as root (loop device): bench/skip-unchanged-bench.sh
#
# The slot is partition B of a GPT disk laid out by partition-layouts/x86-kvm.sfdisk (a sparse
# file on a loop device with direct I/O). The image is apply-bench.sh's 1 GiB ext4 image of
# real files (cached in $BENCH_DIR); a second image is a copy of it in which every 20th file
# (5% of them) was rewritten in place with new content of the same size, through a loop mount.
# Runs, in order, each a real `os-update --apply` of a signed bundle:
#   full      skip off: the image written whole (the reference speed)
#   same      skip on, the same image again: must write < 1% of the image
#   changed   skip on, the 5%-changed image: must write < 10%
#   worst     skip on, into a slot that differs everywhere (random bytes): the price of the
#             read pass when nothing can be skipped (for information)
# and, as the skip path's own limit, a plain direct read of the slot (dd). All of it REPEAT times.
# Bytes written are the sectors-written field of the partition's /sys/block/loopN/loopNpM/stat;
# speeds are image bytes per wall second, each compared with the full write of the same run.
#
# Environment:
#   OSU_BUILD   build tree with cmd/os-update (default: <repo>/build)
#   BENCH_DIR   work directory (default: /var/tmp/osu-bench); images are kept there
#   REPEAT      rounds of all runs, the best time of each counts (default: 3)
#   CODEC       bundle compression: zstd (default: decoding stays well above the disk's speed,
#               so the slot's I/O is what is measured), xz or none
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$HERE")
OSU_BUILD=${OSU_BUILD:-$REPO/build}
OSU=${OSU:-$OSU_BUILD/cmd/os-update}
WORK=${BENCH_DIR:-/var/tmp/osu-bench}
CODEC=${CODEC:-zstd}
IMAGE_MIB=1024
FILL_MIB=600
CHANGE_EVERY=20  # one file in 20: 5%
REPEAT=${REPEAT:-3}

die() { echo "skip-unchanged-bench: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || { echo "skip-unchanged-bench: SKIP: needs root for the loop device"; exit 77; }
for tool in losetup sfdisk mkfs.ext4 mount umount python3 openssl tar zstd xz sha256sum cmp /usr/bin/time; do
  command -v "$tool" >/dev/null || die "missing $tool"
done
[[ -x $OSU ]] || die "no os-update at $OSU (build it, or set OSU_BUILD)"
# One benchmark at a time: wait for apply-bench.sh (up to 30 minutes).
for ((i = 0; i < 180; i++)); do
  pgrep -f 'apply-bench\.sh' >/dev/null || break
  ((i == 0)) && echo "Waiting for apply-bench.sh to finish ..."
  sleep 10
done
pgrep -f 'apply-bench\.sh' >/dev/null && die "apply-bench.sh is still running"
mkdir -p "$WORK"
RAW=$WORK/rootfs.img
CHANGED=$WORK/rootfs-changed.img
S=$WORK/skip  # this benchmark's own files
rm -rf "$S" && mkdir -p "$S/boot" "$S/bundle"

# --- the images ----------------------------------------------------------------------------
# shellcheck source=bench/rootfs-image.sh
source "$HERE/rootfs-image.sh"
if [[ ! -s $RAW ]]; then
  echo "Building the ${IMAGE_MIB} MiB ext4 image with ~${FILL_MIB} MiB of files from /usr ..."
  build_image
fi
MNT=$S/mnt
cleanup() {
  mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"
  [[ -n ${DISK:-} ]] && losetup -d "$DISK" 2>/dev/null
  rm -rf "$S" "$CHANGED.tmp"
}
trap cleanup EXIT

if [[ ! -s $CHANGED || $CHANGED -ot $RAW ]]; then
  echo "Rewriting every ${CHANGE_EVERY}th file of a copy of the image (same sizes, new content) ..."
  cp --sparse=always "$RAW" "$CHANGED.tmp"
  mkdir -p "$MNT"
  mount -o loop,noatime "$CHANGED.tmp" "$MNT"
  python3 - "$MNT" "$CHANGE_EVERY" >"$WORK/changed.txt" <<'EOF'
import os, random, sys
root, every = sys.argv[1], int(sys.argv[2])
paths = []
for d, dirs, files in os.walk(root):
    dirs.sort()
    paths += [os.path.join(d, f) for f in sorted(files)]
files = [p for p in paths if os.path.isfile(p) and not os.path.islink(p)]
rng = random.Random(5)
changed = changed_bytes = 0
for i, p in enumerate(files):
    if i % every:
        continue
    size = os.path.getsize(p)
    with open(p, "r+b") as f:  # in place: the same blocks, new bytes
        f.write(rng.randbytes(size))
    changed += 1
    changed_bytes += size
total_bytes = sum(os.path.getsize(p) for p in files)
print(f"{changed} of {len(files)} files ({100 * changed / len(files):.1f}%), "
      f"{changed_bytes} of {total_bytes} bytes of file content ({100 * changed_bytes / total_bytes:.1f}%)")
EOF
  umount "$MNT"
  mv "$CHANGED.tmp" "$CHANGED"
fi
RAW_SIZE=$(stat -c %s "$RAW")
[[ $(stat -c %s "$CHANGED") == "$RAW_SIZE" ]] || die "$CHANGED is not the size of $RAW"

# --- signed bundles, assembled with plain tools as apply-bench.sh does ------------------------
openssl genpkey -algorithm ed25519 -out "$S/key.pem" 2>/dev/null
openssl pkey -in "$S/key.pem" -pubout -out "$S/key.pub.pem"
make_bundle() {  # IMAGE VERSION OUT
  local image=$1 version=$2 out=$3 member ext
  case $CODEC in
    zstd) ext=.zst; zstd -q -T0 -3 -f -c "$image" >"$S/bundle/img" ;;
    xz) ext=.xz; xz -T0 --block-size=16MiB -c "$image" >"$S/bundle/img" ;;
    none) ext=; ln -sf "$image" "$S/bundle/img" ;;
    *) die "CODEC must be zstd, xz or none" ;;
  esac
  member=rootfs.img$ext
  (cd "$S/bundle" && mv img "$member" &&
    printf 'format: 1\ncompatible: bench\nversion: "%s"\ncmdline: ""\nimage: {name: %s, compression: %s, size: %s, sha256: %s}\nboot_files: []\n' \
      "$version" "$member" "$CODEC" "$RAW_SIZE" "$(sha256sum "$image" | cut -c1-64)" >manifest.yaml &&
    openssl pkeyutl -sign -rawin -inkey "$S/key.pem" -in manifest.yaml -out manifest.sig &&
    tar --format=pax --dereference -cf "$out" manifest.yaml manifest.sig "$member" && rm -f ./*)
}
echo "Signed $CODEC bundles of both images ..."
make_bundle "$RAW" 1 "$S/same.osu"
make_bundle "$CHANGED" 2 "$S/changed.osu"

# --- the disk: x86-kvm layout on a sparse file, slot B = partition 3 ----------------------------
IMG=$S/disk.img
truncate -s 4400M "$IMG"  # the layout's ESP, A and B, and a small data partition
sfdisk -q "$IMG" <"$REPO/partition-layouts/x86-kvm.sfdisk"
DISK=$(losetup --find --show --direct-io=on --partscan "$IMG")
DEV=${DISK}p3
SYSPART=/sys/block/${DISK#/dev/}/${DEV#/dev/}
[[ -e $SYSPART ]] || partx -a "$DISK"  # kernels without GPT parsing: add the partitions
STAT=$SYSPART/stat
# The node must be the kernel's partition: a write to a missing node would create a plain file
# in /dev (in RAM) and measure nothing.
for ((i = 0; i < 50; i++)); do [[ -b $DEV ]] && break; [[ -e $DEV ]] && break; sleep 0.1; done
[[ -b $DEV && $(stat -c '%t:%T' "$DEV") == $(awk -F: '{ printf "%x:%x", $1, $2 }' "$SYSPART/dev") ]] ||
  die "'$DEV' is not the block device of $SYSPART (a stray file there? remove it)"
echo "root=PARTLABEL=p.lxreadonly" >"$S/cmdline"
for skip in false true; do
  cat >"$S/osu-skip-$skip.yml" <<YAML
update: {keys: [$S/key.pub.pem], compatible: bench}
slots: {disk: $DISK}
boot: {path: $S/boot, grubenv: $S/no-env}
system: {cmdline: $S/cmdline, mountinfo: /proc/self/mountinfo, lock: $S/osu.lock, os_release: $S/none}
install: {skip_unchanged: $skip}
YAML
done
# Allocate the slot's blocks in the backing file once, untimed: no run pays for allocation.
dd if="$RAW" of="$DEV" bs=4M oflag=direct conv=fsync status=none
cat "$S/same.osu" "$S/changed.osu" >/dev/null  # bundles warm in the page cache, a fair start

# --- runs ------------------------------------------------------------------------------------
# Each round leaves the slot as the next run expects: full writes the image, same finds it,
# changed then finds the image and makes it the changed one, worst finds random bytes. The
# best wall time of REPEAT rounds counts (the machine is shared); bytes written are the same
# in every round and checked to be.
declare -A SECS CPU WRITTEN REPORTED
ORDER=()
sectors_written() { awk '{ print $7 }' "$STAT"; }
# run KEY LABEL SKIP BUNDLE IMAGE: one apply, timed; bytes written from the partition's stat.
run() {
  local key=$1 label=$2 skip=$3 bundle=$4 image=$5 before after t0 t1 secs used written reported
  sync
  before=$(sectors_written)
  t0=$(date +%s%N)
  /usr/bin/time -f '%U %S' -o "$S/time.out" \
    "$OSU" --config "$S/osu-skip-$skip.yml" --apply "$bundle" --no-activate --json \
    >"$S/out" 2>"$S/err" || { cat "$S/err" >&2; die "$label: os-update failed"; }
  t1=$(date +%s%N)
  after=$(sectors_written)
  cmp -n "$RAW_SIZE" "$image" "$DEV" >/dev/null || die "$label left a slot that differs from the image"
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  used=$(tail -n1 "$S/time.out" | awk '{ printf "%.2f", $1 + $2 }')
  written=$(((after - before) * 512))
  reported=$(tail -n1 "$S/out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes_written"])')
  if [[ -z ${SECS[$key]:-} ]]; then
    ORDER+=("$key|$label")
  elif [[ ${WRITTEN[$key]} != "$written" ]]; then
    echo "  note: $label wrote $written bytes this round, ${WRITTEN[$key]} before" >&2
  fi
  if [[ -z ${SECS[$key]:-} ]] || awk -v s="$secs" -v b="${SECS[$key]}" 'BEGIN { exit !(s < b) }'; then
    SECS[$key]=$secs CPU[$key]=$used
  fi
  WRITTEN[$key]=$written REPORTED[$key]=$reported
  printf '  %-40s %8.2f s %12d bytes written\n' "$label" "$secs" "$written"
}
# The skip path's own limit: reading the slot, as it does, in 4 MiB direct reads.
read_slot() {
  local t0 t1 secs
  t0=$(date +%s%N)
  dd if="$DEV" of=/dev/null bs=4M count=$((RAW_SIZE >> 22)) iflag=direct status=none
  t1=$(date +%s%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  if [[ -z ${READ_SECS:-} ]] || awk -v s="$secs" -v b="$READ_SECS" 'BEGIN { exit !(s < b) }'; then
    READ_SECS=$secs
  fi
  printf '  %-40s %8.2f s\n' "read the slot (dd bs=4M iflag=direct)" "$secs"
}

echo "Load average: $(cut -d' ' -f1-3 /proc/loadavg); image $RAW_SIZE bytes; slot $DEV; $(nproc) CPUs"
echo "Changed image: $(cat "$WORK/changed.txt" 2>/dev/null || echo "(made by an earlier run)")"
for ((round = 1; round <= REPEAT; round++)); do
  echo "Round $round of $REPEAT:"
  run full "full write (skip off)" false "$S/same.osu" "$RAW"
  read_slot
  run same "same image again (skip on)" true "$S/same.osu" "$RAW"
  run changed "5% of files changed (skip on)" true "$S/changed.osu" "$CHANGED"
  dd if=/dev/urandom of="$DEV" bs=4M count=$((RAW_SIZE >> 22)) iflag=fullblock oflag=direct conv=fsync status=none
  run worst "slot differs everywhere (skip on)" true "$S/same.osu" "$RAW"
done

# --- the table ----------------------------------------------------------------------------
echo
printf '%-36s %8s %8s %6s %14s %8s %14s %8s  %s\n' "run (1 GiB image, $CODEC bundle)" seconds MB/s \
  "CPU s" "written (stat)" "% image" "os-update says" "vs full" "target"
verdict=0
for entry in "${ORDER[@]}"; do
  key=${entry%%|*} label=${entry#*|}
  rate=$(awk -v n="$RAW_SIZE" -v s="${SECS[$key]}" 'BEGIN { printf "%.0f", n / s / 1e6 }')
  pct=$(awk -v w="${WRITTEN[$key]}" -v n="$RAW_SIZE" 'BEGIN { printf "%.2f", 100 * w / n }')
  ratio=$(awk -v f="${SECS[full]}" -v s="${SECS[$key]}" 'BEGIN { printf "%.2f", f / s }')
  target="-"
  case $key in
    same) limit=1 ;;
    changed) limit=10 ;;
    *) limit="" ;;
  esac
  if [[ -n $limit ]]; then
    if awk -v p="$pct" -v l="$limit" -v r="$ratio" 'BEGIN { exit !(p < l && r >= 1.0) }'; then
      target="met (< $limit%, >= 1.00x)"
    else
      target="NOT MET (< $limit%, >= 1.00x)"
      verdict=1
    fi
  fi
  printf '%-36s %8.2f %8s %6s %14d %7s%% %14d %7sx  %s\n' "$label" "${SECS[$key]}" "$rate" \
    "${CPU[$key]}" "${WRITTEN[$key]}" "$pct" "${REPORTED[$key]}" "$ratio" "$target"
done
printf '%-36s %8.2f %8s   (the limit of the skip path: it reads the whole slot)\n' \
  "read the slot (dd iflag=direct)" "$READ_SECS" \
  "$(awk -v n="$RAW_SIZE" -v s="$READ_SECS" 'BEGIN { printf "%.0f", n / s / 1e6 }')"
echo "Best of $REPEAT rounds (wall time); CPU s: user + sys of that run."
echo "written (stat): sectors written to the slot's partition by the kernel x 512, the whole apply;"
echo "os-update says: bytes_written of its --json result; vs full: speed relative to the full write."
echo "Load average now: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine makes wall times noisy)"
exit "$verdict"
