#!/usr/bin/env bash
# Installs everything os-update needs to build, test, package and run its demo on Debian 12.
# Used by .ci/run and by the README's set-up commands. As root it runs apt-get itself (sudo
# need not exist); as another user it runs each apt step through sudo.
set -euo pipefail
as_root=(env DEBIAN_FRONTEND=noninteractive)
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null ||
    { echo "install-deps.sh: apt-get needs root: run this as root, or install sudo" >&2; exit 1; }
  as_root=(sudo "${as_root[@]}")
fi
as_root() { "${as_root[@]}" "$@"; }

as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends \
  build-essential cmake pkg-config ca-certificates \
  libblkid-dev libfdisk-dev libarchive-dev liblzma-dev libssl-dev libyaml-cpp-dev \
  libcli11-dev nlohmann-json3-dev catch2 libzstd-dev libcurl4-openssl-dev zlib1g-dev libubootenv-dev \
  libubootenv-tool u-boot-tools grub-common grub-emu \
  openssl xz-utils zstd gzip tar e2fsprogs fdisk util-linux mount \
  dosfstools mtools nginx time python3 clang libclang-rt-14-dev \
  ovmf debootstrap grub-efi-amd64-bin kiwi squashfs-tools u-boot-qemu device-tree-compiler openssh-server openssh-client systemd \
  rsync gdisk kpartx parted qemu-utils debian-archive-keyring \
  debhelper lintian man-db \
  >/dev/null
# --bench: the peers bench/delta.sh compares partial fetch with (not run in CI, not needed to
# build or test).
if [ "${1:-}" = "--bench" ]; then
  as_root apt-get install -y -qq --no-install-recommends casync zchunk >/dev/null
fi

# QEMU from bookworm-backports (10.x): 7.2's pflash corrupts U-Boot's env on saveenv. Both
# system emulators come from there, as they share qemu-system-common. The backports suite is
# added beside bookworm, from the same archive: its URI (and signed-by) are read from the
# configured apt sources, one-line (.list) or deb822 (.sources), so no mirror is named here.
eval "$(apt-config shell APT_LIST Dir::Etc::sourcelist/f APT_PARTS Dir::Etc::sourceparts/d)"
sources=()
for f in "$APT_LIST" "$APT_PARTS"*.list "$APT_PARTS"*.sources; do [ -f "$f" ] && sources+=("$f"); done
if ! grep -qsE '^[^#]*[[:space:]]bookworm-backports([[:space:]]|$)' "${sources[@]}" /dev/null; then
  entries=$(awk '
    # One-line format: deb [options] URI bookworm components
    FILENAME ~ /\.list$/ && $1 == "deb" {
      opts = ""; i = 2
      if ($2 ~ /^\[/) { while ($i !~ /\]$/) opts = opts $(i++) " "; opts = opts $(i++) " " }
      if ($(i + 1) == "bookworm") print "deb " opts $i " bookworm-backports main"
      next
    }
    # deb822: a paragraph per source, fields "Name: value", ended by a blank line.
    FILENAME ~ /\.sources$/ {
      if (FNR == 1 || $0 ~ /^[[:space:]]*$/) flush()
      if (match($0, /^[A-Za-z-]+:/)) {
        key = tolower(substr($0, 1, RLENGTH - 1)); val = substr($0, RLENGTH + 1)
        gsub(/^[[:space:]]+|[[:space:]]+$/, "", val); f[key] = val
      }
    }
    function flush(   n, uris, k, s) {
      if (f["types"] ~ /(^| )deb( |$)/ && (" " f["suites"] " ") ~ / bookworm / &&
          tolower(f["enabled"]) != "no") {
        # A Signed-By that is a key file is kept; an inline key (several lines) is not.
        s = f["signed-by"] ~ /^\// ? "[signed-by=" f["signed-by"] "] " : ""
        n = split(f["uris"], uris, /[[:space:]]+/)
        for (k = 1; k <= n; k++) print "deb " s uris[k] " bookworm-backports main"
      }
      delete f
    }
    END { flush() }' "${sources[@]}" | sort -u)
  [ -n "$entries" ] || {
    echo "install-deps.sh: no 'bookworm' source in $APT_LIST or $APT_PARTS to add bookworm-backports beside" >&2
    exit 1
  }
  printf '# Added by os-update scripts/install-deps.sh: QEMU 10 from backports.\n%s\n' "$entries" |
    as_root tee "${APT_PARTS}os-update-backports.list" >/dev/null
fi
as_root apt-get update -qq
as_root apt-get install -y -qq --no-install-recommends -t bookworm-backports \
  qemu-system-x86 qemu-system-arm >/dev/null
