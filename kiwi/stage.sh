#!/usr/bin/env bash
# stage.sh (--deb os-update_*.deb | --build BUILD_DIR) --key PUBLIC.pem [--arch amd64|arm64]
# Packs os-update for the image as kiwi/os-update-<arch>.tar.gz, which config.kiwi's <archive>
# extracts into the tree before config.sh runs, with the public key that signs the bundles
# (/etc/os-update/keys/release.pub.pem) and either
#   --deb:   the package, as /var/cache/os-update/os-update.deb; config.sh installs it with dpkg
#            (so `dpkg -s os-update` works in the image) and deletes the file;
#   --build: its `cmake --install` tree (/usr/bin/os-update{,-bundle}, the units, the GRUB and
#            U-Boot scripts), unpacked as it is: the mechanism until the package is on main.
# Either must be for the image's architecture and Debian 12 (its libraries are the image's).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build="" deb="" key="" arch=amd64
usage() { echo "usage: $0 (--deb FILE.deb | --build BUILD_DIR) --key PUBLIC.pem [--arch amd64|arm64]" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --deb) deb=$2; shift 2 ;;
    --key) key=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$key" ] && [ -n "$build$deb" ] && [ -z "$build" -o -z "$deb" ] || usage
openssl pkey -pubin -in "$key" -noout 2>/dev/null || { echo "stage.sh: '$key' is not a PEM public key" >&2; exit 1; }
out=$here/os-update-$arch.tar.gz
tree=$(mktemp -d); trap 'rm -rf "$tree"' EXIT
if [ -n "$deb" ]; then
  got="$(dpkg-deb -f "$deb" Package 2>/dev/null) $(dpkg-deb -f "$deb" Architecture 2>/dev/null)"
  [ "$got" = "os-update $arch" ] || { echo "stage.sh: '$deb' is not the os-update package for $arch ('$got')" >&2; exit 1; }
  install -D -m 0644 "$deb" "$tree/var/cache/os-update/os-update.deb"
else
  [ -x "$build/cmd/os-update" ] || { echo "stage.sh: no os-update in '$build/cmd' (build it first)" >&2; exit 1; }
  if ldd "$build/cmd/os-update" 2>/dev/null | grep -qE 'lib(a|ub|t)san'; then
    echo "stage.sh: '$build' is a sanitizer build; use a release build" >&2; exit 1
  fi
  DESTDIR=$tree cmake --install "$build" --prefix /usr --strip >/dev/null
fi
install -D -m 0644 "$key" "$tree/etc/os-update/keys/release.pub.pem"
tar --owner=0 --group=0 -C "$tree" -czf "$out.tmp" .
mv "$out.tmp" "$out"
echo "stage.sh: $out"; tar -tzf "$out" | grep -v '/$' | sed 's/^\./  /'
