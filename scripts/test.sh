#!/usr/bin/env bash
# Builds os-update with warnings as errors and runs the whole test suite (ctest).
# Tests that need root or tools that are missing print SKIP with the reason.
#   BUILD_DIR=build-asan OSU_SANITIZE=ON scripts/test.sh    # the same under ASan+UBSan
#   OSU_QEMU=1 scripts/test.sh    # also the QEMU end-to-end scenarios (label qemu, ~20 min)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -DOSU_WERROR=ON -DOSU_FAULT_ENV=ON -DOSU_SANITIZE="${OSU_SANITIZE:-OFF}" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
LABELS=(-LE qemu)
[[ ${OSU_QEMU:-0} == 1 ]] && LABELS=()
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"${CTEST_JOBS:-2}" "${LABELS[@]}" "$@"
