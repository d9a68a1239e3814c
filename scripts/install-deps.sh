#!/usr/bin/env bash
# Installs everything os-update needs to build, test and run its demo on Debian 12.
# Used by .ci/run and by the README's set-up commands. Needs root (or sudo).
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  build-essential cmake pkg-config ca-certificates \
  libblkid-dev libfdisk-dev libarchive-dev liblzma-dev libssl-dev libyaml-cpp-dev \
  libcli11-dev catch2 libzstd-dev libcurl4-openssl-dev zlib1g-dev libubootenv-dev \
  libubootenv-tool u-boot-tools grub-common grub-emu \
  openssl xz-utils zstd gzip tar e2fsprogs fdisk util-linux mount \
  dosfstools mtools nginx time python3 clang libclang-rt-14-dev \
  ovmf debootstrap grub-efi-amd64-bin kiwi squashfs-tools u-boot-qemu openssh-server openssh-client systemd \
  rsync gdisk kpartx parted qemu-utils debian-archive-keyring \
  >/dev/null
# QEMU from bookworm-backports (10.x): 7.2's pflash corrupts U-Boot's env on saveenv. Both
# system emulators come from there, as they share qemu-system-common.
grep -rqs '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/ ||
  echo 'deb http://deb.debian.org/debian bookworm-backports main' |
  $SUDO tee /etc/apt/sources.list.d/os-update-backports.list >/dev/null
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends -t bookworm-backports \
  qemu-system-x86 qemu-system-arm >/dev/null
