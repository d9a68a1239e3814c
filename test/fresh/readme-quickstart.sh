#!/usr/bin/env bash
# test/fresh/readme-quickstart.sh [DIR]: the README's first command, exactly as written, run as
# root on a fresh Debian 12 without sudo: a debootstrap (minbase) chroot in DIR (default
# /var/tmp/osu-fresh), this checkout's HEAD copied in, proc/sys/dev mounted in a private mount
# namespace (gone when it ends). Root, network to the Debian archive the host's apt uses, and
# about 3 GB; 40 minutes on a loaded 2-core VM, so not part of CI (test/shell/readme_setup.sh
# is the quick check of every case with stubs). Services are not started in the chroot
# (policy-rc.d), as in Debian's container images.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
root=${1:-/var/tmp/osu-fresh}
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root (debootstrap, chroot)"; exit 77; }
command -v debootstrap >/dev/null || { echo "SKIP: debootstrap is not installed"; exit 77; }
# The archive the host already uses for bookworm (no mirror named here).
uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' | awk '$2 == "bookworm" { print $1; exit }')
[ -n "$uri" ] || { echo "readme-quickstart: the host's apt has no bookworm source"; exit 1; }
cmd=$(sed -n 's/^    \(scripts\/install-deps\.sh && scripts\/demo\.sh\)$/\1/p' "$src/README.md")
[ -n "$cmd" ] || { echo "readme-quickstart: the README's first command not found"; exit 1; }
start=$(date +%s)

[ -x "$root/bin/bash" ] || debootstrap --variant=minbase bookworm "$root" "$uri" >"$root.debootstrap.log"
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
rm -rf "$root/root/os-update" && mkdir -p "$root/root/os-update"
git -C "$src" archive HEAD | tar -x -C "$root/root/os-update"
echo "readme-quickstart: running '$cmd' as root in $root"
unshare -m --propagation private bash -c '
  set -e; root=$1; cmd=$2
  mount -t proc proc "$root/proc"; mount -t sysfs sys "$root/sys"; mount --rbind /dev "$root/dev"
  exec chroot "$root" /usr/bin/env -i HOME=/root \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin bash -c "
      ! command -v sudo >/dev/null || { echo \"sudo is installed: not the case to test\"; exit 1; }
      cd /root/os-update && $cmd"' _ "$root" "$cmd"
echo "readme-quickstart: passed in $(( $(date +%s) - start )) s (chroot left in $root)"
