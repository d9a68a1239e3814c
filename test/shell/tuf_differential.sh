#!/bin/bash
# Differential TUF test (test/tuf/differential.mjs): repositories generated with @tufjs/models,
# served from 127.0.0.1, judged by os-update (os-update-bundle tuf verify: the device's
# workflow) and by tuf-js; both must accept and refuse the same ones, except the cases that
# name the specification section that decides. Needs node and `npm ci` run in test/tuf.
set -euo pipefail
src=${OSU_SOURCE_DIR:?}
bin=${OSU_BIN:?}
[ -x "$bin/os-update-bundle" ] || { echo "SKIP: os-update-bundle is not built ($bin)"; exit 77; }
command -v node >/dev/null || { echo "SKIP: node is not installed"; exit 77; }
[ -d "$src/test/tuf/node_modules/tuf-js" ] && [ -d "$src/test/tuf/node_modules/@tufjs/models" ] ||
  { echo "SKIP: tuf-js and @tufjs/models are not installed (cd test/tuf && npm ci)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$src/test/tuf"
node differential.mjs "$bin/os-update-bundle" "$tmp/cases"
