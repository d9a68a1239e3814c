#!/usr/bin/env bash
# Partial-fetch bundle size against today's full bundles, and what a 5% change fetches, for a
# few chunk sizes, dictionary sizes and zstd levels (issue 11: "choose chunk sizes by
# measurement"; "the partial-fetch bundle <= 110% of today's full bundle").
# Usage: bench/chunk-sizes.sh        (256 MiB images; CHUNK_MIB=1024 for the issue's size)
# Images as bench/delta.sh makes them (bench/delta-images.sh): ext4 rebuilt with mke2fs -d and
# zstd squashfs of real files, v2 with 5% of the files' bytes rewritten. Per row:
#   bundle    bytes of the bundle (one 4 KiB boot file, so nearly all image)
#   %xz       of the full bundle at create's xz default (--compression xz: today's default)
#   %zstd     of the full bundle at zstd's default level (--compression zstd --no-chunks)
#   fetched   % of that bundle a device holding v1 downloads (front members + planned ranges,
#             from --apply --dry-run --json against a fake device; zero for the full rows)
#   create s  wall time of os-update-bundle create on this machine
# Variants: CHUNK_VARIANTS, words of avg:dictionary-bytes:level[:window] (default below; the
# window, format 4, is 0 unless given: a dictionary needs window 0). bench/chunk-window.sh
# measures windows on existing images.
# Environment: OSU_BUILD (default <repo>/build), BENCH_DIR (default /var/tmp/osu-chunk-bench).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${BENCH_DIR:-/var/tmp/osu-chunk-bench}
MIB=${CHUNK_MIB:-256}
FSES=${CHUNK_FS:-"ext4 squashfs"}
VARIANTS=${CHUNK_VARIANTS:-"16384:0:12 16384:1048576:12 32768:1048576:12 65536:1048576:12 16384:0:6:2097152"}
. "$HERE/delta-images.sh"
bench_start chunk-sizes tar

[[ -f keys/private.pem ]] || { mkdir -p keys && openssl genpkey -algorithm ed25519 -out keys/private.pem 2>/dev/null && openssl pkey -in keys/private.pem -pubout -out keys/public.pem; }
[[ -f boot.vmlinuz ]] || head -c 4096 /dev/urandom > boot.vmlinuz
make_tree
make_changed 5

# Bytes a device holding v1 downloads: the members before the image plus the planned ranges.
fetched() {  # bundle
  "$OSU" --config dev/os-update.yml --apply "$1" --dry-run --json > plan.json 2> plan.err ||
    { cat plan.err >&2; die "dry run of $1 failed"; }
  python3 - "$1" <<'PY'
import json, sys, tarfile
plan = None
for line in open("plan.json"):
    try: o = json.loads(line)
    except ValueError: continue
    if "download_bytes" in json.dumps(o): plan = o
def find(o):
    if isinstance(o, dict):
        if "download_bytes" in o: return o
        for v in o.values():
            r = find(v)
            if r: return r
    return None
d = find(plan) if plan else None
if not d or d.get("way") != "chunks": sys.exit("no partial-fetch plan in the dry run")
with tarfile.open(sys.argv[1]) as t:
    members = t.getmembers()
front = sum(512 + (m.size + 511) // 512 * 512 for m in members[:-1])
print(front + d["download_bytes"])
PY
}

pct() { python3 -c "print(f'{$1 * 100 / $2:.1f}')"; }

printf '%-9s %-24s %12s %7s %7s %8s %9s\n' fs bundle bytes "%xz" "%zstd" fetched "create s"
for fs in $FSES; do
  make_image "$fs" tree.v1 "v1.$fs"
  make_image "$fs" "$(changed_tree 5)" "v2.$fs"
  make_device dev "v1.$fs"
  xz_s=$(create "v2.$fs" full-xz.osu --compression xz)
  zstd_s=$(create "v2.$fs" full-zstd.osu --compression zstd --no-chunks)
  xz=$(stat -c %s full-xz.osu)
  zs=$(stat -c %s full-zstd.osu)
  printf '%-9s %-24s %12d %6s%% %6s%% %8s %9s\n' "$fs" "full xz" "$xz" 100.0 "$(pct "$xz" "$zs")" - "$xz_s"
  printf '%-9s %-24s %12d %6s%% %6s%% %8s %9s\n' "$fs" "full zstd" "$zs" "$(pct "$zs" "$xz")" 100.0 - "$zstd_s"
  for v in $VARIANTS; do
    IFS=: read -r avg dict level window <<< "$v"
    window=${window:-0}
    secs=$(create "v2.$fs" chunked.osu --compression zstd --chunk-size "$avg" \
      --dictionary-size "$dict" --level "$level" --chunk-window "$window")
    size=$(stat -c %s chunked.osu)
    got=$(fetched chunked.osu)
    label="chunks $((avg >> 10))K dict $((dict >> 10))K L$level"
    [[ $window == 0 ]] || label="chunks $((avg >> 10))K w$((window >> 10))K L$level"
    printf '%-9s %-24s %12d %6s%% %6s%% %7s%% %9s\n' "$fs" "$label" "$size" "$(pct "$size" "$xz")" \
      "$(pct "$size" "$zs")" "$(pct "$got" "$size")" "$secs"
  done
done
