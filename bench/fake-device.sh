# A fake device for benchmarks that run the real os-update, sourced: a sparse GPT disk image
# (partition-layouts/x86-kvm, slots at their offsets in the file), slot A booted and holding
# IMAGE with a verified record and one boot file, a factory grubenv, and a config that points
# os-update at all of it. Needs REPO set.
# make_fake_device DIR IMAGE BOOT_FILE COMPATIBLE PUBLIC_KEY
make_fake_device() {
  local dev=$1 image=$2 boot_file=$3 compatible=$4 key=$5
  rm -rf "$dev" && mkdir -p "$dev/boot/osu/A"
  "$REPO/scripts/make-disk.sh" x86-kvm "$dev/disk.img" 8G >/dev/null
  local a_start
  a_start=$(sfdisk -d "$dev/disk.img" | awk -F'[=,]' '/p.lxreadonly/ {print $2 * 512}')
  dd if="$image" of="$dev/disk.img" bs=4M seek="$a_start" oflag=seek_bytes conv=notrunc status=none
  cp "$boot_file" "$dev/boot/osu/A/vmlinuz"
  cat > "$dev/boot/osu/A/record.yml" <<REC
slot: A
state: verified
version: "1.0.0"
compatible: "$compatible"
sha256: "$(sha256sum < "$image" | cut -d' ' -f1)"
size: $(stat -c %s "$image")
cmdline: "console=ttyS0"
boot_files:
  - {name: "vmlinuz", size: $(stat -c %s "$boot_file"), sha256: "$(sha256sum < "$boot_file" | cut -d' ' -f1)"}
updated_at: "2026-01-01T00:00:00Z"
committed_at: "2026-01-01T00:00:00Z"
REC
  echo "console=ttyS0 root=PARTLABEL=p.lxreadonly osu.slot=A ro" > "$dev/cmdline"
  echo "22 1 254:1 / / ro,relatime shared:1 - squashfs /dev/vda2 ro" > "$dev/mountinfo"
  echo "IMAGE_VERSION=1.0.0" > "$dev/os-release"
  grub-editenv "$dev/boot/osu/grubenv" create
  grub-editenv "$dev/boot/osu/grubenv" set OSU_ORDER='A B' OSU_A_LEFT=3 OSU_B_LEFT=0
  cp "$dev/boot/osu/grubenv" "$dev/boot/osu/grubenv.bak"
  cat > "$dev/os-update.yml" <<CFG
update:
  keys: [$key]
  compatible: $compatible
slots:
  disk: $dev/disk.img
boot:
  path: $dev/boot
system:
  cmdline: $dev/cmdline
  mountinfo: $dev/mountinfo
  lock: $dev/os-update.lock
  os_release: $dev/os-release
CFG
}

# peak_anon PID: "<largest RssAnon> <largest VmHWM>" (KiB) of PID, sampled every 20 ms until
# it exits. RssAnon leaves out file pages (the slots read and mapped: page cache); VmHWM is
# the kernel's own peak of both.
peak_anon() {
  local pid=$1 peak=0 hwm=0 line
  while line=$(awk '/^RssAnon:/ {a = $2} /^VmHWM:/ {h = $2} END {if (a != "") print a, h}' \
                 "/proc/$pid/status" 2>/dev/null) && [[ -n $line ]]; do
    set -- $line
    (( $1 > peak )) && peak=$1
    (( $2 > hwm )) && hwm=$2
    sleep 0.02
  done
  echo "$peak $hwm"
}
