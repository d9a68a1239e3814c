#!/usr/bin/env bash
# build-kiwi-image.sh: the x86-kvm image of kiwi/ for scenario K1, built by kiwi/build.sh into
# $CACHE/kiwi (reused while os-update, kiwi/ and this script are unchanged; --force rebuilds).
# os-update goes in from OSU_DEB (a .deb) when given, else from the build tree (OSU_BIN's).
# The signing key pair is made once in $CACHE/kiwi-keys (K1 signs its bundles with it).
# Prints and records in $CACHE/figures.txt the image's size and the build time.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_qemu_host
command -v kiwi-ng >/dev/null || skip "kiwi-ng is missing (Debian package 'kiwi')"
KIWI_OUT=$CACHE/kiwi KIWI_KEYS=$CACHE/kiwi-keys
[ "${1:-}" != --force ] || rm -rf "$KIWI_OUT"
[ -x "$OSU_BIN/os-update-bundle" ] || die "no os-update-bundle in $OSU_BIN"
mkdir -p "$KIWI_KEYS"
[ -s "$KIWI_KEYS/signing.pub.pem" ] ||
  "$OSU_BIN/os-update-bundle" keygen --private "$KIWI_KEYS/signing.pem" --public "$KIWI_KEYS/signing.pub.pem" >/dev/null
if [ -n "${OSU_DEB:-}" ]; then from=(--deb "$OSU_DEB"); input=$OSU_DEB
else from=(--build "$(dirname "$OSU_BIN")"); input=$OSU_BIN/os-update; fi
stamp=$(cat "$input" "$0" "$KIWI_KEYS/signing.pub.pem" $(find "$SRC/kiwi" -type f ! -name '*.tar.gz' | sort) \
          "$SRC"/systemd/* "$SRC/grub/grub.cfg" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$KIWI_OUT.stamp" 2>/dev/null)" = "$stamp" ] && ls "$KIWI_OUT"/*.raw >/dev/null 2>&1; then
  log "KIWI image: reusing $(ls "$KIWI_OUT"/*.raw)"; exit 0
fi
rm -f "$KIWI_OUT.stamp"
start=$(date +%s)
# zstd level 3 (kiwi/build.sh): a test image, made fast, as K1 makes its 2.0.
"$SRC/kiwi/build.sh" --profile x86-kvm --key "$KIWI_KEYS/signing.pub.pem" "${from[@]}" \
  --target-dir "$KIWI_OUT" --zstd-level 3 > "$CACHE/kiwi-build.log" 2>&1 \
  || { tail -n 40 "$CACHE/kiwi-build.log" >&2; die "kiwi/build.sh failed (log: $CACHE/kiwi-build.log)"; }
seconds=$(( $(date +%s) - start ))
image=$(ls "$KIWI_OUT"/*.raw | head -n1)
echo "$stamp" > "$KIWI_OUT.stamp"
sqfs=$(sed -n 's/.* verified, version [^,]*, \([0-9]*\) bytes,.*/\1/p' "$CACHE/kiwi-build.log" | tail -n1)
{
  echo "KIWI x86-kvm image: built in ${seconds}s; $(basename "$image") $(( $(stat -c %s "$image") >> 20 )) MiB" \
       "($(( $(du -k "$image" | cut -f1) >> 10 )) MiB allocated), slot A squashfs $(( ${sqfs:-0} >> 20 )) MiB"
} | tee -a "$CACHE/figures.txt"
