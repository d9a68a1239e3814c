#!/bin/bash
# The README's TUF walkthrough ("Keys offline", "A leaked targets key"), its commands exactly as
# written there, run in a scratch directory with this build's os-update-bundle; then the
# repository they made is judged by the device's workflow (release 3 from root v3, signed by
# the new targets key, accepted), and targets signed by the retired key alone not published.
set -euo pipefail
src=${OSU_SOURCE_DIR:?}
bin=${OSU_BIN:?}
[ -x "$bin/os-update-bundle" ] || { echo "SKIP: os-update-bundle is not built ($bin)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Every ```sh block that follows the marker line, in order.
awk '/^<!-- run by test\/shell\/tuf_readme.sh -->$/ {want=1; next}
     want && /^```sh$/ {inside=1; next}
     inside && /^```$/ {inside=0; want=0; next}
     inside {print}' "$src/README.md" > "$tmp/walkthrough.sh"
[ "$(grep -c 'os-update-bundle tuf' "$tmp/walkthrough.sh")" -ge 18 ] ||
  { echo "FAIL: the README's walkthrough not found"; cat "$tmp/walkthrough.sh"; exit 1; }

cd "$tmp"
export PATH="$bin:$PATH"
head -c 1048576 /dev/urandom > rootfs.img
for v in 2.0 3.0; do
  os-update-bundle create --image rootfs.img --compression zstd --level 1 --compatible demo-x86_64 \
    --version "$v" --unsigned --output "eos-$v.osu" >/dev/null
done
bash -euo pipefail walkthrough.sh > walkthrough.log 2>&1 || { cat walkthrough.log; echo "FAIL: the walkthrough failed"; exit 1; }
grep -q '^3.root.json: root v3, expires .*(in 36[45] days)$' walkthrough.log ||
  { cat walkthrough.log; echo "FAIL: tuf expiry did not list root v3"; exit 1; }

out=$(os-update-bundle tuf verify --root root.json --state state --base repo --target eos-3.0.osu --fetch-target)
echo "$out"
case $out in *'"root":3'*'"version":"3.0"'*'"target_verified":true'*) ;; *) echo "FAIL: release 3 not accepted"; exit 1 ;; esac

# Targets re-signed by the retired key alone:
cp -a repo repo.bad
os-update-bundle tuf add repo.bad >/dev/null
os-update-bundle tuf sign repo.bad/targets.json --key release.pem >/dev/null
# `tuf timestamp` refuses to publish it (the device's refusal: tuf_check_test, test/tuf, QEMU S11).
if os-update-bundle tuf timestamp repo.bad --key online.pem 2>err; then echo "FAIL: published"; exit 1; fi
grep -q '0 valid signatures of distinct targets keys' err || { cat err; exit 1; }
echo "walkthrough: release 3 accepted after two rotations; the retired targets key refused at publishing"
