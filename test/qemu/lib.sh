# Shared by the QEMU end-to-end scripts (sourced, not run). Paths, SKIP checks, and the
# helpers that scenarios are written with: a VM is a directory with a disk copy, its own
# OVMF vars and its serial log; the ESP is read and written with mtools at its offset.
QEMU_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$QEMU_DIR/../.." && pwd)
# Survives between runs (the rootfs takes minutes); CI builds it once.
CACHE=${OSU_QEMU_CACHE:-/var/tmp/osu-qemu}
BUILD_DIR=${OSU_BUILD_DIR:-$SRC/build}
# OSU_BIN given (ctest does): use the binaries there; else build them in BUILD_DIR.
OSU_BIN_GIVEN=${OSU_BIN:+1}
OSU_BIN=${OSU_BIN:-$BUILD_DIR/cmd}
export CACHE BUILD_DIR OSU_BIN  # make-disk.sh and build-rootfs.sh run as their own processes
OVMF_CODE=${OVMF_CODE:-/usr/share/OVMF/OVMF_CODE_4M.fd}
OVMF_VARS=${OVMF_VARS:-/usr/share/OVMF/OVMF_VARS_4M.fd}
COMPATIBLE=osu-qemu-x86_64
# Byte offsets of the partitions of partition-layouts/x86-kvm.sfdisk (sectors * 512).
ESP_OFFSET=$((2048 * 512))
SLOT_A_OFFSET=$((526336 * 512))
SLOT_B_OFFSET=$((4720640 * 512))
# Slot A's kernel command line (its /osu/A/grub.cfg); GRUB adds root= and osu.slot=.
GUEST_CMDLINE="console=ttyS0,115200 ro quiet systemd.show_status=0 panic=10"

# grep -q at the end of a pipeline stops reading at the first match: the writer then dies of
# SIGPIPE and pipefail fails the pipeline. This reads everything.
grep_q() { grep "$@" > /dev/null; }
# For the wall time vm_pass reports: the whole script, preparation included.
VM_START=${VM_START:-$(date +%s)}
QEMU_TAG=qemu
. "$QEMU_DIR/common.sh"

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

# slot_image VERSION OUT [OVERLAY]: the rootfs with this tree's os-update, agent and units,
# IMAGE_VERSION=VERSION, and the files of the directory OVERLAY (a scenario's extra units), as
# an ext4 image sized to its content (mounted read-only in the guest).
slot_image() {
  local version=$1 out=$2 overlay=${3:-} r=$ROOTFS
  [ -f "$CACHE/rootfs.stamp" ] || die "no rootfs in $ROOTFS: run test/qemu/build-rootfs.sh"
  # The rootfs is the cache: an overlay's files are removed again after the image is made, and
  # here too, in case a run died before that.
  overlay_remove
  # / stays read-only: the slot's content must keep matching its record's sha256.
  cat > "$r/etc/fstab" <<'FSTAB'
PARTLABEL=p.UEFI  /boot/efi  vfat   umask=0077  0 0
tmpfs             /tmp       tmpfs  mode=1777   0 0
tmpfs             /var/tmp   tmpfs  mode=1777   0 0
FSTAB
  mkdir -p "$r/boot/efi"
  echo osu-qemu > "$r/etc/hostname"
  : > "$r/etc/machine-id"
  # No getty on the serial console: only kernel, systemd and the agent write there.
  ln -sfn /dev/null "$r/etc/systemd/system/serial-getty@ttyS0.service"
  ln -sfn /dev/null "$r/etc/systemd/system/getty@tty1.service"
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
  mkdir -p "$r/etc/systemd/system/multi-user.target.wants"
  local unit
  for unit in osu-test-agent.service osu-test-boot-complete.service; do
    install -m 0644 "$QEMU_DIR/guest/$unit" "$r/etc/systemd/system/"
    ln -sfn "../$unit" "$r/etc/systemd/system/multi-user.target.wants/$unit"
  done
  # The product's units, once the repository has them.
  for unit in "$SRC"/systemd/*.service "$SRC"/systemd/*.target "$SRC"/systemd/*.timer; do
    [ -f "$unit" ] || continue
    install -m 0644 "$unit" "$r/etc/systemd/system/"
    chroot "$r" systemctl enable "$(basename "$unit")" >/dev/null 2>&1 \
      || log "note: could not enable $(basename "$unit") (no [Install] section?)"
  done
  # Manager settings (the watchdog), as the file itself says where it goes.
  for unit in "$SRC"/systemd/*.conf; do
    [ -f "$unit" ] && install -D -m 0644 "$unit" "$r/usr/lib/systemd/system.conf.d/$(basename "$unit")"
  done
  if chroot "$r" ldd /usr/bin/os-update | grep 'not found' >&2; then
    die "the rootfs lacks libraries os-update needs: test/qemu/build-rootfs.sh --force"
  fi
  if [ -n "$overlay" ]; then
    (cd "$overlay" && find . -mindepth 1 | sort -r) > "$CACHE/rootfs.overlay"
    cp -a "$overlay/." "$r/"
  fi
  local kib; kib=$(du -sk "$r" | cut -f1)
  rm -f "$out"
  mkfs.ext4 -q -F -L "osu-root" -d "$r" "$out" "$(( kib * 5 / 4 / 1024 + 64 ))M" >/dev/null
  overlay_remove
}
# The files an overlay added to the rootfs (deepest first; directories only when empty).
overlay_remove() {
  [ -f "$CACHE/rootfs.overlay" ] || return 0
  local f
  while IFS= read -r f; do
    if [ -d "$ROOTFS/$f" ] && [ ! -L "$ROOTFS/$f" ]; then rmdir "$ROOTFS/$f" 2>/dev/null || true
    else rm -f "$ROOTFS/$f"; fi
  done < "$CACHE/rootfs.overlay"
  rm -f "$CACHE/rootfs.overlay"
}

# A bundle of a slot image: bundle VERSION OUT [compression [OVERLAY]]. The image goes to
# OUT.img, its boot files to OUT.boot/. Made once per content and kept in $CACHE/bundles (a
# bundle takes ~30 s; most scenarios use the same 2.0): OUT and OUT.img are hard links there.
bundle() {
  local version=$1 out=$2 comp=${3:-zstd} overlay=${4:-}
  local base variant dir
  # What every bundle is made of: rootfs, os-update, units, agent, keys, this file.
  base=$(cat "$CACHE/rootfs.stamp" "$OSU_BIN/os-update" "$SRC"/systemd/* "$QEMU_DIR"/guest/* \
             "$QEMU_DIR/lib.sh" "$KEYS/test.pub.pem" | sha256sum | cut -c1-16)
  variant=$version-$comp
  [ -z "$overlay" ] || variant=$variant-$(cd "$overlay" && find . -mindepth 1 | sort | \
    while IFS= read -r f; do echo "$f"; [ -L "$f" ] && readlink "$f"; [ -f "$f" ] && cat "$f"; done | \
    sha256sum | cut -c1-16)
  dir=$CACHE/bundles/$base/$variant
  if [ ! -f "$dir/done" ]; then
    find "$CACHE/bundles" -mindepth 1 -maxdepth 1 ! -name "$base" -exec rm -rf {} + 2>/dev/null || true
    rm -rf "$dir"; mkdir -p "$dir"
    local start; start=$(date +%s)
    slot_image "$version" "$dir/b.osu.img" "$overlay"
    boot_files "$dir/b.osu.boot"
    "$OSU_BIN/os-update-bundle" create --image "$dir/b.osu.img" --compression "$comp" \
      --boot-file "$dir/b.osu.boot/vmlinuz" --boot-file "$dir/b.osu.boot/initrd.img" \
      --cmdline "$GUEST_CMDLINE" --compatible "$COMPATIBLE" --version "$version" \
      --key "$KEYS/test.pem" --output "$dir/b.osu" >/dev/null
    touch "$dir/done"
    log "bundle $version ($comp${overlay:+, overlay $(basename "$overlay")}) made in $(( $(date +%s) - start ))s"
  else
    log "bundle $version ($comp${overlay:+, overlay $(basename "$overlay")}): reusing $dir"
  fi
  rm -rf "$out" "$out.img" "$out.boot"
  ln "$dir/b.osu" "$out"; ln "$dir/b.osu.img" "$out.img"; cp -r "$dir/b.osu.boot" "$out.boot"
}

# bundle_patch OLD NEW: os-update-bundle delta from bundle OLD to bundle NEW (both made by
# `bundle`), named as a device looks for it (NEW.delta-<16 hex of OLD's image sha256>) beside
# NEW; prints that path. 32 MiB segments: the encoder indexes the whole base once per segment.
# Made once per pair of images and kept in $CACHE/bundles (about a minute for 600 MB images).
bundle_patch() {
  local old=$1 new=$2 name dir cached start
  name=$(basename "$new").delta-$(sha256sum < "$old.img" | cut -c1-16)
  # NEW is a hard link into its bundle's cache directory: the patch is kept there.
  dir=$(find "$CACHE/bundles" -name b.osu -samefile "$new" -printf '%h\n' | head -n1)
  [ -n "$dir" ] || die "bundle_patch: $new is not a bundle made by 'bundle'"
  cached=$dir/patch-${name##*.delta-}
  if [ ! -s "$cached" ]; then
    start=$(date +%s)
    "$OSU_BIN/os-update-bundle" delta --from "$old" --to "$new" --key "$KEYS/test.pem" \
      --segment-size $((32 << 20)) --output "$cached.tmp" >/dev/null
    mv "$cached.tmp" "$cached"
    log "patch $(basename "$old") -> $(basename "$new") made in $(( $(date +%s) - start ))s"
  fi
  rm -f "$(dirname "$new")/$name"
  ln "$cached" "$(dirname "$new")/$name"
  echo "$(dirname "$new")/$name"
}

# bundle_disk BUNDLE OUT: the bundle as a disk for --disk2 (/dev/vdb in the guest), whole
# sectors; tar ignores the zeros after its end.
bundle_disk() { cp "$1" "$2"; truncate -s %1M "$2"; }

# ---- Scenarios: prepare, boot, read what the agent said ----------------------------------

# os-update built (BUILD_DIR; ctest passes OSU_BIN instead), the rootfs, and the factory disk
# $CACHE/base.img, rebuilt only when one of its inputs changed.
prepare() {
  require_qemu_host
  mkdir -p "$CACHE"
  if [ -z "$OSU_BIN_GIVEN" ]; then
    [ -f "$BUILD_DIR/CMakeCache.txt" ] || cmake -S "$SRC" -B "$BUILD_DIR" >/dev/null
    cmake --build "$BUILD_DIR" -j2 --target os-update os-update-bundle > "$CACHE/build.log" 2>&1 \
      || { grep -E 'error|Error' "$CACHE/build.log" | head -n 5 >&2; die "building os-update in $BUILD_DIR failed"; }
  fi
  [ -x "$OSU_BIN/os-update" ] || die "no os-update in $OSU_BIN"
  # The guest has no sanitizer runtimes (and TCG is slow enough already).
  if ldd "$OSU_BIN/os-update" | grep_q -E 'lib(a|ub|t)san'; then skip "os-update is a sanitizer build"; fi
  "$QEMU_DIR/build-rootfs.sh"
  ensure_keys
  local stamp
  stamp=$(cat "$OSU_BIN/os-update" "$SRC/grub/grub.cfg" "$QEMU_DIR"/guest/* "$QEMU_DIR/lib.sh" \
              "$QEMU_DIR/make-disk.sh" "$CACHE/rootfs.stamp" "$SRC"/systemd/* 2>/dev/null | sha256sum)
  if [ ! -f "$CACHE/base.img" ] || [ "$(cat "$CACHE/base.img.stamp" 2>/dev/null)" != "$stamp" ]; then
    "$QEMU_DIR/make-disk.sh" "$CACHE/base.img.new" 1.0
    mv "$CACHE/base.img.new" "$CACHE/base.img"
    echo "$stamp" > "$CACHE/base.img.stamp"
  else
    log "disk: reusing $CACHE/base.img"
  fi
}

# vm_new NAME [DISK]: a fresh VM from the factory disk (or DISK), in $CACHE/runs/NAME (VM_DIR, VM_DISK, VM_LOG).
# The run directory is removed when the scenario passes (vm_pass), kept when it fails.
vm_new() {
  VM_DIR=$CACHE/runs/$1
  rm -rf "$VM_DIR"; mkdir -p "$VM_DIR"
  VM_DISK=$VM_DIR/disk.img VM_LOG=$VM_DIR/serial.log
  cp --sparse=always "${2:-$CACHE/base.img}" "$VM_DISK"
  VM_CLEANUP=()
  trap 'vm_keep' EXIT
}
# Commands run when the scenario ends, passed or not (e.g. stopping nginx).
vm_cleanup() { local c; for c in "${VM_CLEANUP[@]}"; do eval "$c" || true; done; VM_CLEANUP=(); }
vm_keep() {
  local rc=$?
  vm_cleanup
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -n "${VM_DIR:-}" ]; then
    echo "[qemu] kept for inspection: $VM_DIR (serial log: $VM_LOG)" >&2
    if [ -f "$VM_LOG" ]; then echo "[qemu] last lines of the serial log:" >&2; tail -n 25 "$VM_LOG" | tr -d '\r' >&2; fi
  fi
}
vm_pass() {
  trap - EXIT; vm_cleanup; rm -rf "$VM_DIR"
  echo "[qemu] PASS: $* (wall time $(( $(date +%s) - VM_START ))s)"
}

# vm_agent FILE: the script the agent runs on every boot (env: OSU_BOOT, OSU_SLOT, OSU_TRIAL).
vm_agent() { esp_put "$VM_DISK" "$1" test-agent.sh; }

# vm_boot [run-vm.sh options]: one power-on, until the guest powers off (or the cut).
# A guest kernel that stalled under TCG (run-vm.sh exit 125: the emulator's fault, not the
# scenario's) makes the whole scenario start over from a fresh disk, once; its serial log is
# kept as $CACHE/runs/NAME.stalled.log. A second stall fails.
vm_boot() {
  local start rc=0; start=$(date +%s)
  "$QEMU_DIR/run-vm.sh" "$@" "$VM_DISK" "$VM_LOG" || rc=$?
  log "boot took $(( $(date +%s) - start ))s"
  if [ "$rc" -eq 125 ] && [ -z "${OSU_QEMU_RESTARTED:-}" ]; then
    cp "$VM_LOG" "$VM_DIR.stalled.log"
    log "the guest kernel stalled (serial log kept: $VM_DIR.stalled.log): the scenario starts over, once"
    vm_cleanup; trap - EXIT
    OSU_QEMU_RESTARTED=1 exec bash "$0"
  fi
  [ "$rc" -eq 0 ] || die "run-vm.sh exited $rc (serial log: $VM_LOG)"
}

# What the agent printed in boot N: its lines (prefix removed), its BEGIN line, its exit code.
# A line the agent prints while systemd shuts down (os-update's kexec message) can share the
# console line with a status message's padding: match the marker anywhere in the line.
agent_output() { tr -d '\r' < "$VM_LOG" | sed -n "s/^.*OSU-AGENT\[$1\] //p"; }
agent_begin() { tr -d '\r' < "$VM_LOG" | grep -m1 "^OSU-AGENT-BEGIN boot=$1 " || true; }
agent_rc() { tr -d '\r' < "$VM_LOG" | sed -n "s/^OSU-AGENT-END boot=$1 rc=//p" | tail -n1; }
# The first JSON object line the agent printed in boot N that has key KEY.
agent_json() { agent_output "$1" | grep -m1 "^{.*\"$2\"" || true; }

# sha256 of the first SIZE bytes of the slot at OFFSET in the VM's disk, read on the host.
disk_sha256() { dd if="$VM_DISK" bs=4M skip="$1" count="$2" iflag=skip_bytes,count_bytes status=none | sha256sum | cut -d' ' -f1; }

# ---- Host-side helpers ----------------------------------------------------------------------

# Host time of the first serial line matching REGEX (ERE) that comes after the first line
# matching AFTER (or from the start): line_time REGEX [AFTER]. Empty when there is none.
line_time() {
  awk -v re="$1" -v after="${2:-}" '
    after != "" && !seen { if (substr($0, index($0, " ") + 1) ~ after) seen = 1; next }
    substr($0, index($0, " ") + 1) ~ re { print $1; exit }' "$VM_LOG.times"
}
# seconds FROM TO: TO - FROM with one decimal.
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# host_install BUNDLE: a shortcut to "slot B holds BUNDLE, committed" for scenarios whose point
# comes after it. os-update itself does it on the host, as --apply in slot A and the commit of
# B's trial would: slots.disk is the VM's disk image, boot.path a copy of the ESP's osu/
# (mtools), written back afterwards. Minutes of TCG saved; the result is the same bytes.
host_install() {
  local h=$VM_DIR/host e; e=$(esp "$VM_DISK")
  rm -rf "$h"; mkdir -p "$h/boot"
  mcopy -s -n -i "$e" ::osu "$h/boot/"
  echo "IMAGE_VERSION=1.0" > "$h/os-release"
  cat > "$h/os-update.yml" <<YAML
update:
  keys: [$KEYS/test.pub.pem]
  compatible: $COMPATIBLE
slots:
  disk: $VM_DISK
boot:
  path: $h/boot
  bootloader: grub
system:
  cmdline: $h/cmdline
  mountinfo: /dev/null
  lock: $h/os-update.lock
  os_release: $h/os-release
  systemd: $h/no-systemd
YAML
  echo "$GUEST_CMDLINE osu.slot=A" > "$h/cmdline"
  "$OSU_BIN/os-update" --config "$h/os-update.yml" --apply "$1" --no-activate > "$h/apply.log" 2>&1 \
    || { cat "$h/apply.log" >&2; die "host_install: --apply --no-activate failed"; }
  echo "$GUEST_CMDLINE osu.slot=B osu.trial=1" > "$h/cmdline"
  "$OSU_BIN/os-update" --config "$h/os-update.yml" --commit > "$h/commit.log" 2>&1 \
    || { cat "$h/commit.log" >&2; die "host_install: --commit failed"; }
  mcopy -s -o -i "$e" "$h/boot/osu" ::
  log "host_install: slot B holds $(basename "$1"), committed ($(tail -n1 "$h/commit.log"))"
}

# nginx_start ROOT: nginx on 127.0.0.1 serving ROOT (private config, free port, stopped when
# the scenario ends). Sets NGINX_PORT; NGINX_DIR/access.log has "METHOD URI STATUS BYTES range=R".
nginx_start() {
  command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || skip "nginx is not installed"
  local nginx; nginx=$(command -v nginx || echo /usr/sbin/nginx)
  NGINX_DIR=$VM_DIR/nginx
  mkdir -p "$NGINX_DIR"
  local attempt
  for attempt in 1 2 3; do
    NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat > "$NGINX_DIR/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/error.log info;
events { worker_connections 64; }
http {
  log_format osu '\$request_method \$uri \$status \$body_bytes_sent range=\$http_range';
  access_log $NGINX_DIR/access.log osu;
  client_body_temp_path $NGINX_DIR/client_body;
  proxy_temp_path $NGINX_DIR/proxy;
  fastcgi_temp_path $NGINX_DIR/fastcgi;
  uwsgi_temp_path $NGINX_DIR/uwsgi;
  scgi_temp_path $NGINX_DIR/scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $1;
  }
}
CONF
    "$nginx" -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" -e "$NGINX_DIR/error.log" > "$NGINX_DIR/nginx.out" 2>&1 &
    NGINX_PID=$!
    VM_CLEANUP+=("kill $NGINX_PID 2>/dev/null; wait $NGINX_PID 2>/dev/null")
    local i
    for i in $(seq 50); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$NGINX_PORT") 2>/dev/null; then
        log "nginx on 127.0.0.1:$NGINX_PORT serving $1"; return 0
      fi
      kill -0 "$NGINX_PID" 2>/dev/null || break
      sleep 0.2
    done
    kill "$NGINX_PID" 2>/dev/null; wait "$NGINX_PID" 2>/dev/null || true
  done
  cat "$NGINX_DIR/nginx.out" "$NGINX_DIR/error.log" >&2 2>/dev/null || true
  die "nginx did not start"
}
