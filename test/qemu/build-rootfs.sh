#!/usr/bin/env bash
# build-rootfs.sh [--force]: a Debian bookworm systemd root file system for the QEMU tests, in
# $CACHE/rootfs (reused when present; --force rebuilds it). Holds the kernel and initrd the
# ESP gets. Everything else (fstab, os-update, its config, keys and units, the test agent) is
# added per slot image by slot_image() in lib.sh: it changes more often than Debian does.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_qemu_host

ROOTFS=$CACHE/rootfs
if [ "${1:-}" = --force ]; then rm -rf "$ROOTFS" "$CACHE/rootfs.stamp"; fi
# Rebuilt when this script changed (its hash is the stamp).
stamp=$(sha256sum < "$0" | cut -d' ' -f1)
if [ "$(cat "$CACHE/rootfs.stamp" 2>/dev/null)" = "$stamp" ]; then log "rootfs: reusing $ROOTFS"; exit 0; fi
rm -rf "$ROOTFS"; mkdir -p "$CACHE"

# The mirror apt uses here (the only network there may be).
MIRROR=${DEBIAN_MIRROR:-$("$SRC/scripts/debian-mirror.sh")}

# Runtime libraries of os-update: the packages owning what it links (same Debian release), plus
# a fixed list for when it is not built yet.
LIBS="libarchive13 libblkid1 libcurl4 libfdisk1 liblzma5 libssl3 libstdc++6 libubootenv0.1 libyaml-cpp0.7 libzstd1 zlib1g"
if [ -x "$OSU_BIN/os-update" ]; then
  for lib in $(ldd "$OSU_BIN/os-update" | awk '$3 ~ /^\// {print $3}'); do
    dpkg -S "$lib" 2>/dev/null || dpkg -S "$(realpath "$lib")" 2>/dev/null || true
  done | cut -d: -f1 | sort -u > "$CACHE/libs.txt"
  LIBS="$LIBS $(tr '\n' ' ' < "$CACHE/libs.txt")"
fi
LIBS=$(tr ' ' '\n' <<<"$LIBS" | sed '/^$/d' | sort -u | tr '\n' ',')

start=$(date +%s)
log "debootstrap bookworm from $MIRROR into $ROOTFS"
debootstrap --variant=minbase \
  --include="systemd-sysv,udev,kmod,linux-image-amd64,initramfs-tools,e2fsprogs,dosfstools,util-linux,${LIBS%,}" \
  bookworm "$ROOTFS" "$MIRROR" > "$CACHE/debootstrap.log" 2>&1 \
  || { tail -n 30 "$CACHE/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE/debootstrap.log)"; }
log "debootstrap took $(( $(date +%s) - start ))s"

# Smaller image = faster apply under TCG: no docs, locales, or drivers a QEMU guest never uses.
rm -rf "$ROOTFS"/usr/share/{doc,man,info,locale}/* "$ROOTFS"/var/cache/apt/*.bin \
       "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*_* 
kmods=$(echo "$ROOTFS"/lib/modules/*)
rm -rf "$kmods"/kernel/{sound,drivers/gpu,drivers/media,drivers/infiniband,drivers/staging,drivers/net/wireless,drivers/net/ethernet,drivers/bluetooth,drivers/iio,drivers/isdn,net/wireless,net/mac80211,net/bluetooth}
chroot "$ROOTFS" depmod "$(basename "$kmods")"

# The initrd again, now with the pruned module tree.
chroot "$ROOTFS" update-initramfs -u -k all > "$CACHE/initramfs.log" 2>&1 \
  || { cat "$CACHE/initramfs.log" >&2; die "update-initramfs failed"; }
echo "$stamp" > "$CACHE/rootfs.stamp"
log "rootfs ready in $(( $(date +%s) - start ))s: $ROOTFS ($(du -sh "$ROOTFS" | cut -f1))"
