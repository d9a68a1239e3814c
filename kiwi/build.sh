#!/usr/bin/env bash
# build.sh --profile P --key PUBLIC.pem (--deb os-update_*.deb | --build BUILD_DIR) --target-dir DIR
#          [--zstd-level N]
# Builds one profile of this description with kiwi-ng, then writes slot A's factory record
# (finish.sh). What this host needs that KIWI does not do by itself is here and only here:
#  1. Repositories: config.kiwi names none. The URI of every Debian suite the image needs is
#     taken from the build host's own apt sources (sources.list, *.list, deb822 *.sources), so
#     the image comes from the mirror the host already uses, and no host is named in the repo.
#  2. No vfat in the host kernel (the project's machines): kiwi-ng mounts the FAT boot
#     partition only to rsync /boot/efi onto it. build-host/mount and umount (first on PATH),
#     when /proc/filesystems has no vfat, stage that mount in a directory and write it onto
#     the partition with mtools at umount. Every other mount is the real one.
#  3. GnuPG: KIWI builds apt's keyring with gpg, which needs a private GNUPGHOME.
#  4. --zstd-level N: KIWI gives mksquashfs no compression level (zstd's default is 15);
#     build-host/mksquashfs adds it (CI: 3, ~23x less CPU for an ~8% bigger squashfs).
# Prints the disk's path, its size and the build time.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
usage() { echo "usage: $0 --profile x86-kvm|rpi4|rpi5 --key PUBLIC.pem (--deb FILE.deb | --build BUILD_DIR) --target-dir DIR [--zstd-level N]" >&2; exit 1; }
die() { echo "build.sh: $*" >&2; exit 1; }
profile="" key="" deb="" build="" target="" zstd_level=""
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) profile=$2; shift 2 ;;
    --key) key=$2; shift 2 ;;
    --deb) deb=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --target-dir) target=$2; shift 2 ;;
    --zstd-level) zstd_level=$2; shift 2 ;;
    *) usage ;;
  esac
done
[ -n "$profile" ] && [ -n "$key" ] && [ -n "$target" ] && [ -n "$deb$build" ] || usage
[[ -z "$zstd_level" || "$zstd_level" =~ ^([1-9]|1[0-9]|2[0-2])$ ]] || die "--zstd-level must be 1-22, got '$zstd_level'"
case "$profile" in
  x86-kvm) arch=amd64 components="main" ;;
  rpi4|rpi5) arch=arm64 components="main non-free-firmware" ;;
  *) die "unknown profile '$profile'" ;;
esac
[ "$(id -u)" -eq 0 ] || die "kiwi-ng needs root"
command -v kiwi-ng >/dev/null || die "kiwi-ng is missing (Debian package 'kiwi')"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
[ -f "$keyring" ] || die "$keyring is missing (package debian-archive-keyring)"

# 1. Repositories from the host's apt sources (build-host/apt-uri).
repos=()
# bookworm last: kiwi-ng bootstraps from the last added apt repository (--add-repo cannot mark
# one use_for_bootstrap).
suites="bookworm-updates bookworm"
# rpi5: its kernel (config.kiwi) is from bookworm-backports.
[ "$profile" = rpi5 ] && suites="bookworm-backports $suites"
for suite in $suites; do
  uri=$("$here/build-host/apt-uri" "$suite") || die "the host's apt sources have no '$suite': add it, kiwi-ng takes its URI from there"
  # source,type,alias,priority,imageinclude,package_gpgcheck,{signing_keys},components,distribution,repo_gpgcheck
  repos+=(--add-repo "$uri,apt-deb,$suite,,false,false,{file://$keyring},$components,$suite,true")
  echo "build.sh: $suite from $uri (the host's apt source)"
done

# os-update into the image: the one install step (stage.sh packs it, config.sh installs it).
if [ -n "$deb" ]; then
  "$here/stage.sh" --deb "$deb" --key "$key" --arch "$arch"
else
  "$here/stage.sh" --build "$build" --key "$key" --arch "$arch"
fi

# 2. FAT without vfat in the kernel, 4. the zstd level: build-host/'s mount, umount and
# mksquashfs are the real ones unless OSU_FAT_SHIM_STATE / OSU_SQUASHFS_ZSTD_LEVEL are set.
state=$(mktemp -d /var/tmp/osu-kiwi-host.XXXXXX)
trap 'rm -rf "$state"' EXIT
export PATH="$here/build-host:$PATH"
if [ -n "$zstd_level" ]; then
  export OSU_SQUASHFS_ZSTD_LEVEL=$zstd_level
  echo "build.sh: the squashfs is made with zstd level $zstd_level (kiwi/build-host/mksquashfs)"
fi
if ! grep -qw vfat /proc/filesystems && ! modprobe -q vfat 2>/dev/null; then
  command -v mcopy >/dev/null || die "no vfat in this kernel and no mtools for the work-around"
  export OSU_FAT_SHIM_STATE=$state
  echo "build.sh: no vfat in this kernel: FAT partitions are written with mtools (kiwi/build-host/)"
fi
# 3. gpg for apt's keyring.
mkdir -p -m 0700 "$state/gnupg"
export GNUPGHOME=$state/gnupg

rm -rf "$target"
start=$(date +%s)
kiwi-ng --profile "$profile" --config "$here/kiwi.yml" system build \
  --description "$here" --target-dir "$target" --ignore-repos "${repos[@]}"
disk=$(ls "$target"/*.raw | head -n1)
# The factory record, by the os-update-bundle of the os-update that went into the image.
if [ -n "$deb" ]; then
  dpkg-deb -x "$deb" "$state/deb"
  export OSU_BUNDLE=$state/deb/usr/bin/os-update-bundle
else
  export OSU_BUNDLE=$build/cmd/os-update-bundle
fi
"$here/finish.sh" "$disk" "$profile"
seconds=$(( $(date +%s) - start ))
echo "build.sh: $disk: $(stat -c %s "$disk") bytes ($(du -k "$disk" | cut -f1) KiB allocated), built in ${seconds} s"
