#!/bin/bash
# KIWI runs this chrooted in the image tree after the packages, the overlay (root/ and the
# profile's directory) and os-update's archive (stage.sh) are in place, before the disk is made.
# It enables os-update's units and stages the boot partition in /boot/efi, which KIWI copies
# onto the ESP (x86-kvm) or the Pi's FAT boot partition (rpi4, rpi5):
#   x86-kvm  EFI/BOOT/BOOTX64.EFI (grub/grub.cfg inside), osu/grubenv + .bak, osu/A/...
#   rpi4     Pi firmware, config.txt, u-boot.bin, boot.scr (uboot-scripts/boot.cmd), osu/A/...
#   rpi5     Pi firmware files, pi-firmware/ (config.txt, tryboot.txt, osu/*.txt), osu/A/...
# Slot A's kernel command line names its root by PARTLABEL; os-update writes PARTUUID= for the
# slots it installs. Slot B (KIWI's clone) gets no boot files: the first update fills it.
# KIWI's environment first: /.profile sets kiwi_profiles and kiwi_iversion (not -u clean).
test -f /.kconfig && . /.kconfig
test -f /.profile && . /.profile
set -euo pipefail

die() { echo "config.sh: $*" >&2; exit 1; }
profile=${kiwi_profiles:-}
case "$profile" in x86-kvm|rpi4|rpi5) ;; *) die "build exactly one profile (x86-kvm, rpi4, rpi5), got '$profile'";; esac

# Install os-update: the one place it gets into the image. stage.sh put either the package
# (--deb) here, or its `cmake --install` tree already unpacked in /usr (--build). The package's
# dependencies are in config.kiwi's package list; our /etc/os-update.yml (the profile overlay)
# is kept over the package's example conffile.
if [ -f /var/cache/os-update/os-update.deb ]; then
  dpkg -i --force-confold /var/cache/os-update/os-update.deb
  rm -rf /var/cache/os-update
  dpkg -s os-update | sed -n 's/^Version: /config.sh: os-update package installed, version /p'
fi
[ -x /usr/bin/os-update ] || die "/usr/bin/os-update missing: run kiwi/stage.sh before kiwi-ng (see kiwi/README.md)"
[ -s /etc/os-update.yml ] || die "/etc/os-update.yml missing (profile overlay kiwi/$profile/)"
ls /etc/os-update/keys/*.pem >/dev/null 2>&1 || die "no public key in /etc/os-update/keys (stage.sh --key)"

# The version os-update reports for a slot without a record, and puts in the factory record.
sed -i '/^IMAGE_VERSION=/d' /usr/lib/os-release
echo "IMAGE_VERSION=${kiwi_iversion:-1.0.0}" >> /usr/lib/os-release

# Read-only root: an empty machine-id makes systemd use a transient one; mount points.
: > /etc/machine-id
mkdir -p /boot/efi /data
# Nothing installs packages on a read-only root: apt's lists and downloaded .debs (~100 MB)
# stay out of the squashfs.
apt-get clean
rm -rf /var/lib/apt/lists/*

# kexec-tools (for os-update's kexec) would otherwise load /vmlinuz at boot and turn every
# reboot into a kexec of it: a reboot must go through the firmware and GRUB's slot choice.
sed -i 's/^LOAD_KEXEC=.*/LOAD_KEXEC=false/' /etc/default/kexec

# os-update's units (installed by its `cmake --install`, in the archive).
systemctl enable os-update-commit.service os-update-trial-timeout.timer

# The initrd must mount a squashfs root by PARTLABEL: Debian's initramfs-tools does both; the
# module list is in /etc/initramfs-tools/modules (overlay).
update-initramfs -u -k all
kver=$(ls /lib/modules | sort -V | tail -n1)
[ -n "$kver" ] && [ -f "/boot/vmlinuz-$kver" ] && [ -f "/boot/initrd.img-$kver" ] \
  || die "no kernel and initrd in /boot"

efi=/boot/efi
slot_a=$efi/osu/A
rm -rf "${efi:?}"/*
mkdir -p "$slot_a"
cp "/boot/vmlinuz-$kver" "$slot_a/vmlinuz"
cp "/boot/initrd.img-$kver" "$slot_a/initrd.img"
root_a="PARTLABEL=p.lxreadonly"

if [ "$profile" = x86-kvm ]; then
  cmdline="console=ttyS0,115200 console=tty0 ro"
  # As grub/README.md says: one self-contained EFI binary with grub.cfg inside.
  mkdir -p "$efi/EFI/BOOT"
  grub-mkstandalone -O x86_64-efi -o "$efi/EFI/BOOT/BOOTX64.EFI" \
    --modules="part_gpt fat loadenv regexp search test linux" \
    "boot/grub/grub.cfg=/usr/share/os-update/grub/grub.cfg"
  # The factory env: A committed with 3 attempts; B has no system yet (0 attempts).
  grub-editenv "$efi/osu/grubenv" create
  grub-editenv "$efi/osu/grubenv" set OSU_ORDER="A B" OSU_A_LEFT=3 OSU_B_LEFT=0
  cp "$efi/osu/grubenv" "$efi/osu/grubenv.bak"
  # The format of GrubSlotConfig() (lib/bootenv/grub_slot_config.hpp).
  printf 'set osu_root="%s"\nset osu_cmdline="%s"\n' "$root_a" "$cmdline" > "$slot_a/grub.cfg"
elif [ "$profile" = rpi5 ]; then
  # No U-Boot: the firmware reads config.txt (or tryboot.txt after `reboot "0 tryboot"`) and
  # starts osu/<slot>/vmlinuz with that directory's initrd, device tree and cmdline.txt
  # (os_prefix). panic=10: a kernel that dies before systemd arms the watchdog still resets,
  # and a reset reads config.txt: the committed slot.
  cmdline="console=ttyAMA10,115200 console=tty1 ro rootwait panic=10"
  dtb=bcm2712-rpi-5-b.dtb
  fw=/usr/lib/raspi-firmware
  [ -d "$fw" ] && cp -r "$fw"/. "$efi/"
  dtb_src=$(find "/usr/lib/linux-image-$kver" -name "$dtb" | head -n1)
  [ -n "$dtb_src" ] || die "kernel $kver has no $dtb: the rpi5 kernel comes from bookworm-backports"
  cp "$dtb_src" "$slot_a/$dtb"
  # The overlays the firmware applies (dtoverlay=): shared by both slots (no osu/<S>/overlays/README).
  overlays=$(dirname "$dtb_src")/overlays
  [ -d "$overlays" ] && cp -r "$overlays" "$efi/overlays"
  cp -r /usr/share/os-update/pi-firmware/. "$efi/"
  rm -f "$efi/README.md"
  # The format of PiSlotCmdlineText() (lib/bootenv/pi_firmware.hpp).
  printf 'root=%s osu.slot=A %s\n' "$root_a" "$cmdline" > "$slot_a/cmdline.txt"
else
  cmdline="console=ttyS1,115200 console=tty1 ro rootwait"
  dtb=bcm2711-rpi-4-b.dtb
  # The Pi firmware reads config.txt from the FAT partition and starts U-Boot as the "kernel".
  fw=/usr/lib/raspi-firmware
  [ -d "$fw" ] || die "no Pi firmware in $fw (package raspi-firmware)"
  cp -r "$fw"/. "$efi/"
  dtb_src=$(find "/usr/lib/linux-image-$kver" -name "$dtb" | head -n1)
  if [ -n "$dtb_src" ]; then
    cp "$dtb_src" "$efi/$dtb"        # the firmware's device tree, passed on by U-Boot
    cp "$dtb_src" "$slot_a/$dtb"     # the slot's own, preferred by boot.cmd
  else
    echo "config.sh: warning: kernel $kver has no $dtb" >&2
  fi
  uboot=/usr/lib/u-boot/rpi_arm64/u-boot.bin
  [ -f "$uboot" ] || die "no $uboot (package u-boot-rpi)"
  cp "$uboot" "$efi/u-boot.bin"
  printf '%s\n' "arm_64bit=1" "enable_uart=1" "kernel=u-boot.bin" "device_tree=$dtb" > "$efi/config.txt"
  mkimage -A arm64 -T script -C none -d /usr/share/os-update/uboot/boot.cmd "$efi/boot.scr" >/dev/null
  # The factory env: the board's default env plus the selection (os-update never invents an
  # env). Without U-Boot's default env file there is none: see kiwi/README.md, limits.
  initial_env=$(ls /usr/lib/u-boot/rpi_arm64/u-boot-initial-env* 2>/dev/null | head -n1 || true)
  if [ -n "$initial_env" ]; then
    { grep -v '^OSU_' "$initial_env"; printf '%s\n' "OSU_ORDER=A B" OSU_A_LEFT=3 OSU_B_LEFT=0; } > /tmp/osu-env.txt
    mkenvimage -s 0x4000 -o "$efi/uboot.env" /tmp/osu-env.txt
    rm -f /tmp/osu-env.txt
  else
    echo "config.sh: warning: no u-boot-initial-env: no factory uboot.env" >&2
  fi
  # The format of UbootSlotEnv() (lib/bootenv/uboot_slot_config.hpp).
  printf 'osu_root=%s\nosu_cmdline=%s\n' "$root_a" "$cmdline" > "$slot_a/boot.env"
fi
echo "config.sh: $profile: boot partition staged, slot A boots root=$root_a $cmdline"
