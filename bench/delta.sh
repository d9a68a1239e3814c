#!/usr/bin/env bash
# Partial fetch against a full download (issue 11), served by nginx on 127.0.0.1.
# Usage: bench/delta.sh            (1 GiB images; DELTA_MIB=256 for a quicker run)
# For ext4 (rebuilt with mke2fs -d, fixed UUID and hash seed) and squashfs (zstd) images of
# real files from /usr/share and /usr/lib, with 1%, 5% and 20% of the files' bytes changed
# (in whole directories; DELTA_SPREAD=files: in files all over the tree, delta-images.sh)
# and an identical rebuild: a fake device (GPT disk image, slot A holds v1 with a verified
# record) applies v2 from nginx with --no-activate, and the table says, per way:
#   fetched  bytes nginx sent (its access log, $body_bytes_sent), and % of the full bundle
#   reqs     requests nginx logged
#   apply s  wall time of the apply over loopback
#   10MiB/s  wall time with nginx's limit_rate 10m
#   rss MiB  peak RSS of os-update (GNU time's %M: resident anonymous and file pages of the
#            process, so the slot pages it reads count too)
# Ways: full (--no-delta), chunks (slot A read for its chunks), chunks+list (slot A's chunk list
# kept from v1's bundle, as os-update keeps it when it installs a chunked bundle: no reading),
# patch (patch-bytes: the same with `delta --no-blocks`, format 1, when that differs), auto
# (the device's own choice, with the patch and v1's chunk list: auto:<loopback's way>/<10 MiB/s's>). The
# patch way (os-update-bundle delta against v1's bundle, beside v2's) is measured like
# the others. Bytes only, % of the same full bundle: peers on the same images when installed
# (scripts/install-deps.sh --bench): casync (the chunk files of v2's store missing from v1's)
# and zchunk (zck_delta_size's "Would download" bytes between zck files of v1 and v2); and
# files-zstd: the changed files alone as a tar at zstd -19, for scale (what shipping the
# changed files whole would cost).
# Environment: OSU_BUILD (default <repo>/build), BENCH_DIR (default /var/tmp/osu-delta-bench),
# DELTA_WAYS (default "full chunks patch auto peers": the rows to measure; chunks includes
# chunks+list, patch includes patch-bytes, auto needs patch, peers are casync, zchunk and
# files-zstd). Each way but auto is forced (--no-delta; update.delta_prefer: bytes).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${BENCH_DIR:-/var/tmp/osu-delta-bench}
MIB=${DELTA_MIB:-1024}
CHANGES=${DELTA_CHANGES:-"0 1 5 20"}
FSES=${DELTA_FS:-"ext4 squashfs"}
WAYS=" ${DELTA_WAYS:-full chunks patch auto peers} "
want() { [[ $WAYS == *" $1 "* ]]; }
. "$HERE/delta-images.sh"
bench_start delta-bench nginx /usr/bin/time zstd tar

NGINX_PID=
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_nginx() {  # rate ("0" = unlimited)
  stop_nginx
  mkdir -p nginx/logs www
  : > nginx/access.log
  cat > nginx/nginx.conf <<NG
daemon off; worker_processes 1; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log;
events { worker_connections 64; }
http {
  log_format bench '\$request_method \$status \$body_bytes_sent';
  access_log $WORK/nginx/access.log bench;
  server { listen 127.0.0.1:$PORT; root $WORK/www; limit_rate $1; }
}
NG
  nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" -e "$WORK/nginx/error.log" &
  NGINX_PID=$!
  for _ in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:$PORT/ && return; sleep 0.1; done
  die "nginx did not start"
}
stop_nginx() { [[ -n $NGINX_PID ]] && kill "$NGINX_PID" 2>/dev/null && wait "$NGINX_PID" 2>/dev/null; NGINX_PID=; true; }
trap stop_nginx EXIT

run_apply() {  # dev way -> "bytes reqs seconds rss_kib took"
  local dev=$1 way=$2 args=()
  [[ $way == full ]] && args=(--no-delta)
  # A way measured by name is taken for its bytes (a patch whatever the link); "auto" is the
  # device's own choice (update.delta_prefer: time, the link's rate measured).
  [[ $way != auto ]] && sed -i 's/^update:$/update:\n  delta_prefer: bytes/' "$dev/os-update.yml"
  : > nginx/access.log
  /usr/bin/time -f "%e %M" -o time.out "$OSU" --config "$dev/os-update.yml" --apply \
    http://127.0.0.1:$PORT/v2.osu --no-activate --json "${args[@]}" > apply.out 2> apply.err \
    || { cat apply.err >&2; die "apply ($way) failed"; }
  local took
  took=$(grep -o '"way":"[a-z]*"' apply.out | tail -1 | cut -d'"' -f4)
  [[ $way == auto || $took == "$way" ]] || { tail -3 apply.out >&2; die "apply took another way than $way"; }
  sleep 0.3  # nginx logs a request when it notices the client left
  awk '{b += $3; n++} END {printf "%d %d ", b, n}' nginx/access.log
  echo "$(cat time.out) $took"
}

# A device that installed v1 from its bundle keeps that bundle's chunk index beside slot A's
# record (chunks.idx, byte for byte the index member: delta_test checks it); one whose v1 came
# otherwise (a patch, the factory) has none, and its slot is read for chunks.
keep_v1_list() {  # dev
  tar -xOf "v1.$fs.osu" --wildcards '*.index' > "$1/boot/osu/A/chunks.idx"
}

measure_way() {  # way [list [name]]: one row, over loopback and at 10 MiB/s, each on a fresh device
  local way=$1 list=${2:-} name=${3:-} bytes reqs secs rss slow took slow_took
  make_device dev "v1.$fs"
  [[ -n $list ]] && keep_v1_list dev
  start_nginx 0
  read -r bytes reqs secs rss took < <(run_apply dev "$way")
  make_device dev "v1.$fs"
  [[ -n $list ]] && keep_v1_list dev
  start_nginx 10m
  read -r _ _ slow _ slow_took < <(run_apply dev "$way")
  # auto: the ways it took over loopback and at 10 MiB/s; bytes and requests are loopback's.
  [[ $way == auto ]] && name="auto:$took/$slow_took"
  printf '%-9s %-7s %-17s %12d %6.1f%% %5d %8.1f %8.1f %8.1f\n' "$fs" "$label" "${name:-$way${list:++list}}" "$bytes" \
    "$(python3 -c "print($bytes * 100 / $full)")" "$reqs" "$secs" "$slow" "$(python3 -c "print($rss / 1024)")"
}

[[ -f keys/private.pem ]] || { mkdir -p keys && openssl genpkey -algorithm ed25519 -out keys/private.pem 2>/dev/null && openssl pkey -in keys/private.pem -pubout -out keys/public.pem; }
[[ -f boot.vmlinuz ]] || head -c 8000000 /dev/urandom > boot.vmlinuz
mkdir -p www
make_tree
printf '%-9s %-7s %-17s %12s %7s %5s %8s %8s %8s\n' fs change way fetched "%" reqs "apply s" "10MiB/s" "rss MiB"
for fs in $FSES; do
  make_image "$fs" tree.v1 "v1.$fs"
  for pct in $CHANGES; do
    if [[ $pct == 0 ]]; then tree=tree.v1; label=rebuild; else make_changed "$pct"; tree=$(changed_tree "$pct"); label="$pct%"; fi
    rm -f "v2.$fs"
    if [[ $pct == 0 ]]; then
      # The identical rebuild: the same tree through mke2fs/mksquashfs again.
      rm -f "v1b.$fs"; make_image "$fs" "$tree" "v1b.$fs"; mv "v1b.$fs" "v2.$fs"
    else
      make_image "$fs" "$tree" "v2.$fs"
    fi
    "$BUNDLE" create --image "v2.$fs" --boot-file boot.vmlinuz --compatible bench --version 2.0 \
      --key keys/private.pem --output www/v2.osu
    full=$(stat -c %s www/v2.osu)
    [[ -f v1.$fs.osu ]] || "$BUNDLE" create --image "v1.$fs" --boot-file boot.vmlinuz \
      --compatible bench --version 1.0 --key keys/private.pem --output "v1.$fs.osu"
    want full && measure_way full
    if want chunks; then measure_way chunks; measure_way chunks list; fi
    if want patch; then
      # The patch against v1 (os-update-bundle delta), under its default name beside the bundle,
      # where the device looks first; fetched = the patch and the bundle's head.
      rm -f www/v2.osu.delta-*
      "$BUNDLE" delta --from "v1.$fs.osu" --to www/v2.osu --key keys/private.pem >/dev/null
      measure_way patch
      # The device's own choice with that patch beside the bundle: a squashfs's format-2
      # patch compresses blocks again, which a fast link may not be worth (auto:chunks/patch
      # = the chunks over loopback, the patch at 10 MiB/s).
      want auto && measure_way auto list
      # The same in format 1 (--no-blocks: a squashfs's zstd blocks patched as bytes, none
      # compressed again on the device), when format 2 made another patch.
      mv www/v2.osu.delta-* patch-blocks.tmp
      "$BUNDLE" delta --from "v1.$fs.osu" --to www/v2.osu --key keys/private.pem --no-blocks >/dev/null
      cmp -s patch-blocks.tmp www/v2.osu.delta-* || measure_way patch "" patch-bytes
      rm -f www/v2.osu.delta-* patch-blocks.tmp
    fi
    want peers || continue
    if command -v casync >/dev/null; then
      # casync's fetch: the v2 store's chunk files that the v1 store (the seed's) lacks. v1's
      # store is made once per file system.
      [[ -d cs1.$fs ]] || { casync make --store=cs1.tmp v1.caibx "v1.$fs" >/dev/null && mv cs1.tmp "cs1.$fs"; }
      rm -rf cs2
      casync make --store=cs2 v2.caibx "v2.$fs" >/dev/null
      cas=$(python3 - "cs1.$fs" <<'PY2'
import os, sys
have = {f for _, _, fs in os.walk(sys.argv[1]) for f in fs}
print(sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk("cs2") for f in fs if f not in have))
PY2
)
      printf '%-9s %-7s %-17s %12d %6.1f%%\n' "$fs" "$label" casync "$cas" "$(python3 -c "print($cas * 100 / $full)")"
    fi
    if command -v zck >/dev/null && command -v zck_delta_size >/dev/null; then
      # zchunk's fetch: zck_delta_size's "Would download N of M bytes" for v1.zck -> v2.zck.
      [[ -f v1.$fs.zck ]] || { zck -o v1.zck "v1.$fs" >/dev/null && mv v1.zck "v1.$fs.zck"; }
      zck -o v2.zck "v2.$fs" >/dev/null
      zb=$(zck_delta_size "v1.$fs.zck" v2.zck 2>&1 | awk '/Would download/ {print $3}')
      printf '%-9s %-7s %-17s %12d %6.1f%%\n' "$fs" "$label" zchunk "$zb" "$(python3 -c "print($zb * 100 / $full)")"
    fi
    if [[ $pct != 0 ]]; then
      # For scale, not a way: the files that changed, as one tar at zstd -19 (what an update
      # that ships changed files whole would send). Not a floor: a patch reuses the old bytes
      # of a changed file wherever the image holds them raw (ext4; squashfs blocks of files
      # that do not compress, .gz or .png, are stored raw too).
      files=$(python3 - "$tree" <<'PY3' | (cd "$tree" && tar -cf - -T - | zstd -19 -T0 -q -c | wc -c)
import filecmp, os, sys
new = sys.argv[1]
for r, _, fs in os.walk(new):
    for f in sorted(fs):
        rel = os.path.relpath(os.path.join(r, f), new)
        old = os.path.join("tree.v1", rel)
        if not os.path.exists(old) or not filecmp.cmp(old, os.path.join(new, rel), shallow=False):
            print(rel)
PY3
)
      printf '%-9s %-7s %-17s %12d %6.1f%%\n' "$fs" "$label" "files-zstd" "$files" "$(python3 -c "print($files * 100 / $full)")"
    fi
  done
done
