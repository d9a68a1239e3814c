#!/usr/bin/env bash
# Builds the Debian package with the one documented command, `dpkg-buildpackage -b -us -uc`,
# moves what it writes to the parent directory into OUT (default build/deb/, where the KIWI
# build and CI pick up os-update_<version>_<arch>.deb), and runs lintian on it: an error or a
# warning fails (the remaining ones are overridden in debian/os-update.lintian-overrides, each
# with its reason). DEB_BUILD_OPTIONS passes through (nocheck: no test suite, not even built).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-$PWD/build/deb}
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
start=$(date +%s)
dpkg-buildpackage -b -us -uc
mkdir -p "$out"
rm -f "$out"/os-update*_"$version"_*
for f in ../os-update_"$version"_"$arch".{deb,buildinfo,changes} ../os-update-dbgsym_"$version"_"$arch".deb; do
  [ -f "$f" ] && mv "$f" "$out/"
done
echo "build-deb.sh: built in $(( $(date +%s) - start )) s: $out/os-update_${version}_$arch.deb"
lintian --fail-on error,warning --info "$out/os-update_${version}_$arch.changes"
echo "build-deb.sh: lintian: no errors, no warnings"
