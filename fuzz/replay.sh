#!/bin/sh
# CI: builds every fuzz target with clang and runs it once over its seed corpus and its
# regression inputs (no fuzzing: each file is executed once). Exits non-zero when an input
# crashes, leaks or trips a sanitizer or a property check.
# $OSU_FUZZ_BUILD: build directory (default build-fuzz-replay: -O0, line tables only, which
# builds much faster than run.sh's RelWithDebInfo and is plenty for a replay).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=${OSU_SOURCE_DIR:-$(dirname "$here")}
build=${OSU_FUZZ_BUILD:-$src/build-fuzz-replay}
targets="fuzz_manifest fuzz_config fuzz_grubenv fuzz_uboot_env fuzz_cmdline fuzz_bundle fuzz_record
  fuzz_tuf fuzz_chunk_index fuzz_patch_header"

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$src" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DOSU_FUZZ=ON -DOSU_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -gline-tables-only" >/dev/null
fi
cmake --build "$build" -j"${OSU_FUZZ_JOBS:-2}" --target fuzz >/dev/null

failed=""
export LSAN_OPTIONS="suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
for t in $targets; do
  list=$(mktemp)
  find "$here/corpus/$t" "$here/regressions/$t" -type f 2>/dev/null | sort >"$list"
  count=$(wc -l <"$list")
  if [ "$count" -eq 0 ]; then
    echo "$t: no inputs" >&2
    failed="$failed $t"
  elif xargs -d '\n' "$build/fuzz/$t" -timeout=25 <"$list" >"$build/$t.replay.log" 2>&1; then
    echo "$t: $count inputs ok"
  else
    echo "$t: FAILED (log: $build/$t.replay.log)" >&2
    grep -E "property violated|ERROR:|runtime error|SUMMARY" "$build/$t.replay.log" | head -5 >&2
    failed="$failed $t"
  fi
  rm -f "$list"
done
[ -z "$failed" ] || { echo "fuzz replay failed:$failed" >&2; exit 1; }
