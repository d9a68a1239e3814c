#!/usr/bin/env bash
# kiwi/build-host/mksquashfs, as kiwi-ng calls it (excludes last, after -e): with
# OSU_SQUASHFS_ZSTD_LEVEL the squashfs is zstd at that level and the excludes still hold; without
# it, or for another compressor, it is the real mksquashfs. build.sh refuses a level zstd lacks.
# Exit 77 (skip) without squashfs-tools.
set -euo pipefail
src=${OSU_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
shim=$src/kiwi/build-host/mksquashfs
for tool in mksquashfs unsquashfs; do
  command -v "$tool" >/dev/null || { echo "SKIP: '$tool' is missing (squashfs-tools)"; exit 77; }
done
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
passed=0
fail() { echo "FAIL: $*"; echo "kiwi-mksquashfs: $passed passed, 1 failed"; exit 1; }
ok() { passed=$((passed + 1)); echo "ok: $*"; }
mkdir -p "$work/root/image/keep" "$work/root/etc"
echo kept > "$work/root/etc/a"; echo cache > "$work/root/image/drop"
level_of() { unsquashfs -s "$1" | sed -n 's/^[[:space:]]*compression-level \([0-9]*\)$/\1/p'; }

# The arguments of kiwi-ng's FileSystemSquashFs.create_on_file, excludes included.
OSU_SQUASHFS_ZSTD_LEVEL=3 "$shim" "$work/root" "$work/l3.sqfs" -noappend -b 1M -comp zstd \
  -wildcards -e image/drop 2>/dev/null >/dev/null
grep -q '^Compression zstd$' <<<"$(unsquashfs -s "$work/l3.sqfs")" || fail "level 3: not zstd"
[ "$(level_of "$work/l3.sqfs")" = 3 ] || fail "level 3: the squashfs says level '$(level_of "$work/l3.sqfs")'"
list=$(unsquashfs -l "$work/l3.sqfs")
grep -q 'squashfs-root/etc/a$' <<<"$list" && grep -q 'squashfs-root/image/keep$' <<<"$list" \
  || fail "level 3: files missing: $list"
grep -q 'image/drop' <<<"$list" && fail "level 3: the exclude after -e was not applied"
ok "zstd level 3 inserted before the excludes, which still apply"

"$shim" "$work/root" "$work/default.sqfs" -noappend -comp zstd >/dev/null 2>&1
# mksquashfs stores compressor options only when they are not its defaults (zstd: 15).
grep -q '^Compression zstd$' <<<"$(unsquashfs -s "$work/default.sqfs")" || fail "no level asked: not zstd"
[ -z "$(level_of "$work/default.sqfs")" ] || fail "no level asked: got level '$(level_of "$work/default.sqfs")', want the default"
OSU_SQUASHFS_ZSTD_LEVEL=3 "$shim" "$work/root" "$work/xz.sqfs" -noappend -comp xz >/dev/null 2>&1
grep -q '^Compression xz$' <<<"$(unsquashfs -s "$work/xz.sqfs")" || fail "xz asked, level set: not xz"
ok "the real mksquashfs without the variable, and for xz"

out=$("$src/kiwi/build.sh" --profile x86-kvm --key /nonexistent --deb /nonexistent --target-dir "$work/t" \
        --zstd-level 23 2>&1) && fail "build.sh accepted --zstd-level 23"
grep -q 'zstd-level must be 1-22' <<<"$out" || fail "build.sh --zstd-level 23: '$out'"
[ ! -e "$work/t" ] || fail "build.sh --zstd-level 23 made its target"
ok "build.sh refuses --zstd-level 23 before doing anything"
echo "kiwi-mksquashfs: $passed passed, 0 failed"
