# Shared by the QEMU end-to-end scripts (sourced, not run). Paths, SKIP checks, and the
# helpers that scenarios are written with: a VM is a directory with a disk copy, its own
# OVMF vars and its serial log; the ESP is read and written with mtools at its offset.
QEMU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$QEMU_DIR/../.." && pwd)
# Survives between runs (the rootfs takes minutes); CI builds it once.
CACHE=${OSU_QEMU_CACHE:-/var/tmp/osu-qemu}
BUILD_DIR=${OSU_BUILD_DIR:-$SRC/build}
OSU_BIN=${OSU_BIN:-$BUILD_DIR/cmd}
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
COMPATIBLE=osu-qemu-x86_64
# Byte offsets of the partitions of partition-layouts/x86-kvm.sfdisk (sectors * 512).
ESP_OFFSET=$((2048 * 512))
SLOT_A_OFFSET=$((526336 * 512))
SLOT_B_OFFSET=$((4720640 * 512))
# Slot A's kernel command line (its /osu/A/grub.cfg); GRUB adds root= and osu.slot=.
GUEST_CMDLINE="console=ttyS0,115200 ro quiet systemd.show_status=0 panic=10"

log() { printf '[qemu %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '[qemu] FAIL: %s\n' "$*" >&2; exit 1; }
skip() { printf '[qemu] SKIP: %s\n' "$*" >&2; exit 77; }

# Exits 77 (ctest SKIP) with the reason when this machine cannot run the QEMU tests.
require_qemu_host() {
  [ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot)"
  local tool
  for tool in qemu-system-x86_64 debootstrap grub-mkstandalone grub-editenv mformat mcopy \
              mkfs.vfat mkfs.ext4 sfdisk; do
    command -v "$tool" >/dev/null || skip "'$tool' is missing (scripts/install-deps.sh)"
  done
  [ -r "$OVMF_CODE" ] || skip "no OVMF firmware at $OVMF_CODE (Debian package ovmf)"
  [ -d /usr/lib/grub/x86_64-efi ] || skip "no GRUB EFI modules (Debian package grub-efi-amd64-bin)"
}

# The ESP inside a disk image, as an mtools drive: esp_cp DISK SRC DST (::path for the ESP).
esp() { echo "$1@@$ESP_OFFSET"; }
esp_get() { mcopy -n -i "$(esp "$1")" "::$2" "$3"; }
esp_put() { mcopy -o -i "$(esp "$1")" "$2" "::$3"; }
esp_cat() { mtype -i "$(esp "$1")" "::$2"; }
esp_has() { mdir -b -i "$(esp "$1")" "::$2" >/dev/null 2>&1; }
# The grubenv's OSU_* lines, as the real GRUB tool reads them.
esp_grubenv() {
  local tmp; tmp=$(mktemp); esp_get "$1" osu/grubenv "$tmp" && grub-editenv "$tmp" list; rm -f "$tmp"
}

ROOTFS=$CACHE/rootfs
KEYS=$CACHE/keys

# The test signing key (a throwaway, made once per cache).
ensure_keys() {
  [ -s "$KEYS/test.pub.pem" ] && return 0
  mkdir -p "$KEYS"
  "$OSU_BIN/os-update-bundle" keygen --private "$KEYS/test.pem" --public "$KEYS/test.pub.pem" >/dev/null
}

# boot_files DIR: the rootfs's kernel and initrd as DIR/vmlinuz and DIR/initrd.img, the names
# grub/grub.cfg loads from /osu/<S>/ (slot A's files, and every bundle's).
boot_files() {
  mkdir -p "$1"
  cp "$(ls "$ROOTFS"/boot/vmlinuz-* | tail -n1)" "$1/vmlinuz"
  cp "$(ls "$ROOTFS"/boot/initrd.img-* | tail -n1)" "$1/initrd.img"
}

# slot_image VERSION OUT: the rootfs with this tree's os-update, agent and units, and
# IMAGE_VERSION=VERSION, as an ext4 image sized to its content (mounted read-only in the guest).
slot_image() {
  local version=$1 out=$2 r=$ROOTFS
  [ -f "$CACHE/rootfs.stamp" ] || die "no rootfs in $ROOTFS: run test/qemu/build-rootfs.sh"
  install -m 0755 "$OSU_BIN/os-update" "$r/usr/bin/os-update"
  install -D -m 0644 "$KEYS/test.pub.pem" "$r/etc/os-update/keys/test.pub.pem"
  cat > "$r/etc/os-update.yml" <<YAML
update:
  keys: [/etc/os-update/keys/test.pub.pem]
  compatible: $COMPATIBLE
boot:
  path: /boot/efi
YAML
  sed -i '/^IMAGE_VERSION=/d' "$r/usr/lib/os-release"
  echo "IMAGE_VERSION=$version" >> "$r/usr/lib/os-release"
  install -m 0755 "$QEMU_DIR/guest/osu-test-agent" "$r/usr/local/sbin/osu-test-agent"
  install -m 0644 "$QEMU_DIR/guest/osu-test-agent.service" "$r/etc/systemd/system/"
  mkdir -p "$r/etc/systemd/system/multi-user.target.wants"
  ln -sfn ../osu-test-agent.service "$r/etc/systemd/system/multi-user.target.wants/osu-test-agent.service"
  # The product's units, once the repository has them.
  local unit
  for unit in "$SRC"/systemd/*.service "$SRC"/systemd/*.target "$SRC"/systemd/*.timer; do
    [ -f "$unit" ] || continue
    install -m 0644 "$unit" "$r/etc/systemd/system/"
    chroot "$r" systemctl enable "$(basename "$unit")" >/dev/null 2>&1 \
      || log "note: could not enable $(basename "$unit") (no [Install] section?)"
  done
  if chroot "$r" ldd /usr/bin/os-update | grep 'not found' >&2; then
    die "the rootfs lacks libraries os-update needs: test/qemu/build-rootfs.sh --force"
  fi
  local kib; kib=$(du -sk "$r" | cut -f1)
  rm -f "$out"
  mkfs.ext4 -q -F -L "osu-root" -d "$r" "$out" "$(( kib * 5 / 4 / 1024 + 64 ))M" >/dev/null
}

# A bundle of a slot image: bundle VERSION OUT [compression]. The image goes to OUT.img.
bundle() {
  local version=$1 out=$2 comp=${3:-zstd}
  slot_image "$version" "$out.img"
  boot_files "$out.boot"
  "$OSU_BIN/os-update-bundle" create --image "$out.img" --compression "$comp" \
    --boot-file "$out.boot/vmlinuz" --boot-file "$out.boot/initrd.img" \
    --cmdline "$GUEST_CMDLINE" --compatible "$COMPATIBLE" --version "$version" \
    --key "$KEYS/test.pem" --output "$out" >/dev/null
}
