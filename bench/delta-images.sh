# Images for bench/delta.sh and bench/chunk-sizes.sh, sourced from $WORK: a tree of real
# files from /usr/share and /usr/lib (60% of MIB), trees with PCT% of its bytes rewritten, ext4
# (rebuilt with mke2fs -d, fixed UUID and hash seed) and zstd squashfs images of them, and a fake
# device (GPT disk image, slot A holds v1 with a verified record). Needs HERE, WORK and MIB.
UUID=8d0f3a52-6b1c-4e2a-9f53-2f4c1d7e9a10
REPO=$(dirname "$HERE")
BUILD=${OSU_BUILD:-$REPO/build}
OSU=$BUILD/cmd/os-update
BUNDLE=$BUILD/cmd/os-update-bundle
BENCH_NAME=bench
die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
# A signed bundle of `image` with the bench's key and boot file (in the working directory);
# prints the wall time of os-update-bundle create in seconds.
create() {  # image output args... -> seconds
  local image=$1 out=$2 start
  shift 2
  start=$(date +%s.%N)
  "$BUNDLE" create --image "$image" --boot-file boot.vmlinuz --compatible bench --version 2.0 \
    --key keys/private.pem --output "$out" "$@" >/dev/null
  python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')"
}
# Checks the tools both benches need and more, then works in $WORK.
bench_start() {  # name extra-tools...
  BENCH_NAME=$1
  shift
  local tool
  for tool in mke2fs mksquashfs sfdisk grub-editenv openssl python3 "$@"; do
    command -v "$tool" >/dev/null || die "missing $tool"
  done
  [[ -x $OSU && -x $BUNDLE ]] || die "build first: $OSU"
  mkdir -p "$WORK"
  cd "$WORK"
}
# The tree: real files up to 60% of the image.
make_tree() {
  [[ -d tree.v1 ]] && return
  python3 - "$MIB" <<'PY'
import os, shutil, sys
limit = int(sys.argv[1]) * (1 << 20) * 6 // 10
total = 0
for top in ("/usr/share", "/usr/lib"):
    for root, dirs, files in os.walk(top):
        dirs.sort(); files.sort()
        for f in files:
            src = os.path.join(root, f)
            if not os.path.isfile(src) or os.path.islink(src): continue
            size = os.path.getsize(src)
            if total + size > limit: continue
            dst = os.path.join("tree.v1", os.path.relpath(src, "/"))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            try: shutil.copyfile(src, dst)
            except OSError: continue
            total += size
PY
}

# v2 trees: PCT% of the bytes rewritten (new content, other sizes: 64 random bytes every 4 KiB
# and a new tail) in whole files, with a fixed seed. DELTA_SPREAD says where the files are:
#   dirs   (default) whole directories picked at random, as the issue's figures were made
#          ("about 5% of its bytes changed across some 160 directories"): a release changes
#          some packages, each one's files together
#   files  single files picked at random over the whole tree (thousands of directories)
# The tree is tree.<spread>.<pct>; the directories and files it touched go to stderr.
SPREAD=${DELTA_SPREAD:-dirs}
[[ $SPREAD == dirs || $SPREAD == files ]] || { echo "DELTA_SPREAD: dirs or files, not $SPREAD" >&2; exit 2; }
changed_tree() { echo "tree.$SPREAD.$1"; }
make_changed() {
  local pct=$1 dir
  dir=$(changed_tree "$pct")
  [[ -d $dir ]] && return
  cp -a tree.v1 "$dir.tmp"
  python3 - "$dir.tmp" "$pct" "$SPREAD" <<'PY'
import os, random, sys
d, pct, spread = sys.argv[1], int(sys.argv[2]), sys.argv[3]
groups = {}
for r, _, fs in os.walk(d):
    for f in fs:
        p = os.path.join(r, f)
        groups.setdefault(r if spread == "dirs" else p, []).append(p)
total = sum(os.path.getsize(p) for g in groups.values() for p in g)
rng = random.Random(pct)
keys = sorted(groups)
rng.shuffle(keys)
changed, files, dirs = 0, 0, set()
for k in keys:
    if changed >= total * pct // 100: break
    for f in sorted(groups[k]):
        if changed >= total * pct // 100: break
        size = os.path.getsize(f)
        data = bytearray(open(f, "rb").read())
        for i in range(0, len(data), 4096):
            data[i:i + 64] = rng.randbytes(min(64, len(data) - i))
        data += rng.randbytes(rng.randrange(1, 8192))
        open(f, "wb").write(bytes(data))
        changed += size; files += 1; dirs.add(os.path.dirname(f))
print(f"{pct}% ({spread}): {changed} of {total} bytes rewritten, {files} files in {len(dirs)} directories",
      file=sys.stderr)
PY
  mv "$dir.tmp" "$dir"
}

make_image() {  # fs tree out
  local fs=$1 tree=$2 out=$3
  [[ -f $out ]] && return
  if [[ $fs == ext4 ]]; then
    E2FSPROGS_FAKE_TIME=1 mke2fs -q -t ext4 -U "$UUID" -E hash_seed=$UUID,root_owner=0:0 \
      -d "$tree" "$out" "${MIB}M"
  else
    mksquashfs "$tree" "$out" -comp zstd -noappend -quiet -no-progress -mkfs-time 0 \
      -all-time 0 -all-root >/dev/null
  fi
}

. "$REPO/bench/fake-device.sh"
make_device() {  # dir v1-image: slot A holds v1 (version 1.0.0), the bench's key and boot file
  make_fake_device "$1" "$2" boot.vmlinuz bench "$PWD/keys/public.pem"
}

