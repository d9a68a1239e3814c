# Pairs of root images for bench/patch.sh, sourced: an old tree of real files from /usr and a new
# one with about PCT% of its bytes replaced across many directories (other content, other sizes),
# each as an ext4 image rebuilt from scratch (mke2fs -d: files move) and as a zstd squashfs.
# Needs WORK (cache directory), IMAGE_MIB and PCT set; writes $WORK/{old,new}.{ext4,sqfs}.
build_patch_images() {
  local old=$WORK/old-tree new=$WORK/new-tree fill=$((IMAGE_MIB * 6 / 10))
  rm -rf "$old" "$new" && mkdir -p "$old" "$new"
  python3 - "$WORK/files.list" "$WORK/donors.list" "$fill" <<'PY'
import os, sys
out, donors_out, budget = sys.argv[1], sys.argv[2], int(sys.argv[3]) << 20
def walk(root):
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p) and os.access(p, os.R_OK):
                yield p, os.lstat(p).st_size
picked = []
for root, share in (("/usr/lib", 2 / 3), ("/usr/share", 1 / 3)):
    left = int(budget * share)
    for p, size in walk(root):
        if size > 32 << 20 or size > left:
            continue
        picked.append(p)
        left -= size
        if left < 4096:
            break
# New content comes from programs that are not in the tree.
donors = [p for p, size in walk("/usr/bin") if 4096 < size < 8 << 20]
for path, items in ((out, picked), (donors_out, donors)):
    with open(path, "wb") as f:
        f.write(b"\0".join(p.encode() for p in items) + b"\0")
PY
  tar --null -T "$WORK/files.list" -cf - 2>/dev/null | tar -xf - -C "$old"
  cp -a "$old/." "$new/"
  # Change PCT% of the bytes: whole files in randomly chosen directories (fixed seed) get a
  # donor's bytes, cut or repeated to 50-150% of their old size.
  python3 - "$new" "$WORK/donors.list" "$PCT" <<'PY'
import os, random, sys
root, donors_list, pct = sys.argv[1], sys.argv[2], float(sys.argv[3])
rng = random.Random(11)
donors = open(donors_list, "rb").read().split(b"\0")[:-1]
by_dir, total = {}, 0
for d, dirs, files in os.walk(root):
    dirs.sort()
    for f in sorted(files):
        p = os.path.join(d, f)
        size = os.lstat(p).st_size
        total += size
        if size > 0:
            by_dir.setdefault(d, []).append((p, size))
target, changed, dirs = total * pct / 100, 0, sorted(by_dir)
rng.shuffle(dirs)
touched = 0
for d in dirs:
    if changed >= target:
        break
    files = by_dir[d]
    for p, size in rng.sample(files, min(len(files), rng.randint(1, 4))):
        data = open(rng.choice(donors), "rb").read()
        want = max(1, int(size * rng.uniform(0.5, 1.5)))
        data = (data * (want // len(data) + 1))[:want]
        with open(p, "wb") as f:
            f.write(data)
        changed += size
    touched += 1
print(f"changed {changed >> 20} MiB of {total >> 20} MiB in {touched} directories", file=sys.stderr)
PY
  local name
  for name in old new; do
    rm -f "$WORK/$name.ext4" "$WORK/$name.sqfs"
    E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -F -b 4096 -L rootfs \
      -U 2a7c1a4e-0f5b-4d7e-9a41-6a3c5e8f0b11 \
      -E hash_seed=7d0c6f27-4f0e-4a51-8d3e-3b2f9c1d5e60,root_owner=0:0 \
      -d "$WORK/$name-tree" "$WORK/$name.ext4" "${IMAGE_MIB}M"
    mksquashfs "$WORK/$name-tree" "$WORK/$name.sqfs" -comp zstd -noappend -quiet \
      -mkfs-time 1700000000 -all-time 1700000000 -all-root >/dev/null
  done
  rm -rf "$old" "$new"
}
