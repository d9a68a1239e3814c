# The benchmarks' root image, sourced by bench/*-bench.sh: a 1 GiB ext4 image ~60% full of real
# files from /usr, built the same way every time on a host (sorted file selection, fixed UUID,
# hash seed and timestamps), and cached, so that every benchmark measures the same bytes.
# Needs WORK (the cache directory), RAW (the image path), IMAGE_MIB and FILL_MIB set.
build_image() {
  local stage=$WORK/stage list=$WORK/files.list
  rm -rf "$stage" && mkdir -p "$stage"
  # Sorted paths, files under 32 MiB, 2/3 of the budget from /usr/lib, 1/3 from /usr/share.
  python3 - "$list" "$FILL_MIB" <<'EOF'
import os, sys
out, budget = sys.argv[1], int(sys.argv[2]) << 20
picked = []
for root, share in (("/usr/lib", 2 / 3), ("/usr/share", 1 / 3)):
    left = int(budget * share)
    paths = []
    for d, dirs, files in os.walk(root):
        dirs.sort()
        for f in sorted(files):
            paths.append(os.path.join(d, f))
    for p in paths:
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if not os.path.isfile(p) or os.path.islink(p) or st.st_size > 32 << 20 or st.st_size > left:
            continue
        if not os.access(p, os.R_OK):
            continue
        picked.append(p)
        left -= st.st_size
        if left < 4096:
            break
with open(out, "wb") as f:
    f.write(b"\0".join(p.encode() for p in picked) + b"\0")
EOF
  tar --null -T "$list" -cf - 2>/dev/null | tar -xf - -C "$stage"
  rm -f "$RAW"
  E2FSPROGS_FAKE_TIME=1700000000 mkfs.ext4 -q -F -b 4096 -L rootfs \
    -U 2a7c1a4e-0f5b-4d7e-9a41-6a3c5e8f0b11 -E hash_seed=7d0c6f27-4f0e-4a51-8d3e-3b2f9c1d5e60,root_owner=0:0 \
    -d "$stage" "$RAW" "${IMAGE_MIB}M"
  rm -rf "$stage"
}
