#!/usr/bin/env bash
# stage.sh --build BUILD_DIR --key PUBLIC.pem [--arch amd64|arm64]
# Packs os-update for the image: its `cmake --install` tree (/usr/bin/os-update{,-bundle}, the
# systemd units and watchdog drop-in, /usr/share/os-update/{grub/grub.cfg,uboot/boot.cmd}) plus
# the public key that signs the bundles (/etc/os-update/keys/release.pub.pem), as
# kiwi/os-update-<arch>.tar.gz, which config.kiwi's <archive> extracts into the image.
# The build must be for the image's architecture and Debian 12 (its libraries are the image's).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build="" key="" arch=amd64
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --key) key=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    *) echo "usage: $0 --build BUILD_DIR --key PUBLIC.pem [--arch amd64|arm64]" >&2; exit 1 ;;
  esac
done
[ -n "$build" ] && [ -n "$key" ] || { echo "usage: $0 --build BUILD_DIR --key PUBLIC.pem [--arch amd64|arm64]" >&2; exit 1; }
[ -x "$build/cmd/os-update" ] || { echo "stage.sh: no os-update in '$build/cmd' (build it first)" >&2; exit 1; }
openssl pkey -pubin -in "$key" -noout 2>/dev/null || { echo "stage.sh: '$key' is not a PEM public key" >&2; exit 1; }
if ldd "$build/cmd/os-update" 2>/dev/null | grep -qE 'lib(a|ub|t)san'; then
  echo "stage.sh: '$build' is a sanitizer build; use a release build" >&2; exit 1
fi
out=$here/os-update-$arch.tar.gz
tree=$(mktemp -d); trap 'rm -rf "$tree"' EXIT
DESTDIR=$tree cmake --install "$build" --prefix /usr --strip >/dev/null
install -D -m 0644 "$key" "$tree/etc/os-update/keys/release.pub.pem"
tar --owner=0 --group=0 -C "$tree" -czf "$out.tmp" .
mv "$out.tmp" "$out"
echo "stage.sh: $out"; tar -tzf "$out" | grep -v '/$' | sed 's/^\./  /'
