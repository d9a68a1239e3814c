#!/bin/sh
# Fuzzes one target: fuzz/run.sh TARGET [SECONDS] (default 600), e.g. fuzz/run.sh fuzz_bundle 300.
# Builds it first (clang, in $OSU_FUZZ_BUILD, default build-fuzz). New interesting inputs go to
# $OSU_FUZZ_BUILD/corpus/TARGET (the committed seeds in fuzz/corpus/ are not touched); crashes
# to $OSU_FUZZ_BUILD/artifacts/TARGET/. Minimize a crash with
#   build-fuzz/fuzz/TARGET -minimize_crash=1 -runs=10000 CRASH_FILE
# fix it, and add it to fuzz/regressions/TARGET/ so that fuzz/replay.sh keeps checking it.
set -eu
target=${1:?usage: fuzz/run.sh TARGET [SECONDS]}
seconds=${2:-600}
here=$(cd "$(dirname "$0")" && pwd)
src=${OSU_SOURCE_DIR:-$(dirname "$here")}
build=${OSU_FUZZ_BUILD:-$src/build-fuzz}
case $target in fuzz_*) ;; *) target=fuzz_$target ;; esac
[ -f "$here/$target.cpp" ] || { echo "run.sh: no target '$target' in $here" >&2; exit 1; }

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$src" -B "$build" -DCMAKE_CXX_COMPILER=clang++ -DOSU_FUZZ=ON -DOSU_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
fi
cmake --build "$build" -j2 --target "$target" >/dev/null

work=$build/corpus/$target
artifacts=$build/artifacts/$target
mkdir -p "$work" "$artifacts" "$here/regressions/$target"
LSAN_OPTIONS=suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS} \
  exec "$build/fuzz/$target" -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$work" "$here/corpus/$target" "$here/regressions/$target"
