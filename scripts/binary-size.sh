#!/bin/bash
# The stripped size of os-update and the shares of its code by origin (symbol sizes from
# `nm --size-sort -S -C`): os-update's own code, TUF (lib/tuf, JSON walking included),
# nlohmann-json's template instantiations, CLI11, the C++ library. Prints a table.
#   scripts/binary-size.sh [build/cmd/os-update]
set -euo pipefail
bin=${1:-build/cmd/os-update}
[ -x "$bin" ] || { echo "no $bin: build first" >&2; exit 1; }
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
strip -o "$tmp" "$bin"
stripped=$(stat -c %s "$tmp")
nm --size-sort -S -C "$bin" | python3 -c '
import sys, collections
share = collections.Counter()
for line in sys.stdin:
    p = line.split(None, 3)
    if len(p) < 4: continue
    size, name = int(p[1], 16), p[3]
    if name.startswith("osu::tuf"): share["TUF (lib/tuf)"] += size
    elif "nlohmann" in name: share["nlohmann-json instantiations"] += size
    elif "CLI::" in name: share["CLI11"] += size
    elif "osu::" in name: share["os-update, the rest"] += size
    elif name.startswith("std::") or "__gnu_cxx" in name: share["C++ library templates"] += size
    else: share["other (C, runtime)"] += size
total = sum(share.values())
print("| %-32s | %9s | share |" % ("code by origin (symbols)", "bytes"))
print("|" + "-" * 34 + "|" + "-" * 11 + "|-------|")
for k, v in share.most_common():
    print(f"| {k:<32} | {v:>9,} | {100*v/total:4.1f}% |")
print("| %-32s | %9s |       |" % ("all symbols", f"{total:,}"))
'
printf '| %-32s | %9s |       |\n' "os-update stripped (file)" "$(printf "%'d" "$stripped")"
