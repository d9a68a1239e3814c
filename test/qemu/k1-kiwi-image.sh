#!/usr/bin/env bash
# K1: the KIWI-built x86-kvm image (kiwi/build.sh, via build-kiwi-image.sh), as users get it:
# OVMF, its grub-mkstandalone GRUB, slot A = KIWI's squashfs, os-update from its package (or
# install tree), slot A's factory record from finish.sh. Nothing in slot A is changed. The test
# reaches the guest only through the ESP and the kernel command line of the slot's GRUB snippet
# (/osu/A/grub.cfg, not part of the record): systemd.run starts the QEMU tests' agent
# (guest/osu-test-agent, copied to the ESP) as a transient unit once /boot/efi is mounted.
#   power-on 1  A (factory): --status shows the factory record; --apply of 2.0 over HTTP
#               (nginx on 127.0.0.1, restrict=on + one guestfwd), kexec into B's trial; B
#               commits after boot-complete
#   power-on 2  cold boot: GRUB boots B; --rollback --reboot: GRUB boots the factory A;
#               --apply 2.0 again (--allow-downgrade: it was rolled back), kexec, power cut
#               while B's trial boots
#   power-on 3  A, committed; B's trial did not stick
# 2.0 is a changed copy of the image's own squashfs (unsquashfs, IMAGE_VERSION=2.0.0 and a
# marker file, mksquashfs -comp zstd as KIWI makes it), with slot A's kernel and initrd.
# Measured (host clock of the serial log): kexec A->B vs reboot B->A, each from os-update's
# activation message to boot-complete.target, split into shutdown, firmware+GRUB, kernel and
# initrd, systemd; and systemd-analyze in the guest.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
require_qemu_host
KIWI_OUT=$CACHE/kiwi KIWI_KEYS=$CACHE/kiwi-keys
image=$(ls "$KIWI_OUT"/*.raw 2>/dev/null | head -n1 || true)
[ -n "$image" ] && [ -f "$KIWI_OUT.stamp" ] ||
  skip "no KIWI image in $KIWI_OUT: test/qemu/build-kiwi-image.sh builds it (kiwi-ng, root, Debian's mirror; ~10 min)"
[ -x "$OSU_BIN/os-update-bundle" ] || die "no os-update-bundle in $OSU_BIN"
for tool in unsquashfs mksquashfs; do command -v "$tool" >/dev/null || skip "'$tool' is missing (squashfs-tools)"; done
COMPATIBLE=osu-x86_64-kvm

# KIWI's partition order is not partition-layouts/' (kiwi/README.md): offsets from its GPT.
part_start() { sfdisk --json "$image" | python3 -c 'import json,sys
for p in json.load(sys.stdin)["partitiontable"]["partitions"]:
    if p.get("name") == sys.argv[1]: print(p["start"] * 512)' "$1"; }
ESP_OFFSET=$(part_start p.UEFI) SLOT_A_OFFSET=$(part_start p.lxreadonly) SLOT_B_OFFSET=$(part_start p.lxrootclone1)

vm_new k1-kiwi-image "$image"
e=$(esp "$VM_DISK")

# The agent: systemd.run (systemd-run-generator) runs osu-test/agent-start from the ESP in a
# normal multi-user boot; it starts the agent as a unit that waits for /boot/efi. No spaces:
# GRUB's linux command escapes quotes, so a kernel argument cannot hold a quoted value.
# systemd.mask: the image's getty on ttyS0 hangs up the console when it starts (vhangup), and
# the agent's output with it (the test disks mask it in their root file system).
AGENT_ARGS='systemd.run=/boot/efi/osu-test/agent-start systemd.run_success_action=none systemd.run_failure_action=none systemd.unit=multi-user.target systemd.wants=kernel-command-line.service systemd.mask=serial-getty@ttyS0.service console=ttyS0,115200'
printf '#!/bin/sh\nexec systemd-run --no-block --unit=osu-test-agent --property=RequiresMountsFor=/boot/efi /bin/bash /boot/efi/osu-test/agent\n' > "$VM_DIR/agent-start"
mmd -i "$e" ::osu-test
mcopy -i "$e" "$QEMU_DIR/guest/osu-test-agent" ::osu-test/agent
mcopy -i "$e" "$VM_DIR/agent-start" ::osu-test/agent-start
mcopy -n -i "$e" ::osu/A/grub.cfg "$VM_DIR/a-grub.cfg"
cmdline=$(sed -n 's/^set osu_cmdline="\(.*\)"$/\1/p' "$VM_DIR/a-grub.cfg")
[ -n "$cmdline" ] || die "no osu_cmdline in the image's /osu/A/grub.cfg"
sed "s|^set osu_cmdline=\"\(.*\)\"\$|set osu_cmdline=\"\1 $AGENT_ARGS\"|" "$VM_DIR/a-grub.cfg" > "$VM_DIR/a-grub.test.cfg"
grep -q 'agent-start' "$VM_DIR/a-grub.test.cfg" || die "could not add the agent to /osu/A/grub.cfg"
mcopy -o -i "$e" "$VM_DIR/a-grub.test.cfg" ::osu/A/grub.cfg

# 2.0: the image's own squashfs, changed; cached per KIWI image.
v2=$CACHE/kiwi-k1/$( { cat "$KIWI_OUT.stamp"; echo "$AGENT_ARGS"; } | sha256sum | cut -c1-16)
if [ ! -f "$v2/done" ]; then
  rm -rf "$CACHE/kiwi-k1"; mkdir -p "$v2"
  start=$(date +%s)
  unsquashfs -q -n -o "$SLOT_A_OFFSET" -d "$v2/tree" "$image" >/dev/null
  sed -i 's/^IMAGE_VERSION=.*/IMAGE_VERSION=2.0.0/' "$v2/tree/usr/lib/os-release"
  echo "K1 2.0" > "$v2/tree/etc/osu-k1-version"
  # zstd as KIWI makes it (config.kiwi); level 3, not mksquashfs's 15: a test image, made fast.
  mksquashfs "$v2/tree" "$v2/root.sqfs" -comp zstd -Xcompression-level 3 -b 1M -noappend -quiet >/dev/null
  rm -rf "$v2/tree"
  mcopy -n -i "$e" ::osu/A/vmlinuz ::osu/A/initrd.img "$v2/"
  # The squashfs is compressed already: the bundle stores it as it is.
  "$OSU_BIN/os-update-bundle" create --image "$v2/root.sqfs" --compression none \
    --boot-file "$v2/vmlinuz" --boot-file "$v2/initrd.img" --cmdline "$cmdline $AGENT_ARGS" \
    --compatible "$COMPATIBLE" --version 2.0.0 --key "$KIWI_KEYS/signing.pem" --output "$v2/update.osu" >/dev/null
  touch "$v2/done"
  log "2.0 bundle (squashfs $(( $(stat -c %s "$v2/root.sqfs") >> 20 )) MiB) made in $(( $(date +%s) - start ))s"
fi
mkdir -p "$VM_DIR/www"; ln "$v2/update.osu" "$VM_DIR/www/update.osu"
nginx_start "$VM_DIR/www"
relay="$(command -v python3) $QEMU_DIR/tcp-relay.py 127.0.0.1 $NGINX_PORT $VM_DIR/relay.log"

cat > "$VM_DIR/agent.sh" <<'AGENT'
# When boot-complete.target was reached, in seconds before now (the host dates this line).
bc=$(systemctl show -P ActiveEnterTimestampMonotonic boot-complete.target)
echo "BOOT-COMPLETE-AGO $(awk -v bc="$bc" '{ printf "%.2f", $1 - bc / 1e6 }' /proc/uptime)"
systemd-analyze | head -n1 | sed 's/^/ANALYZE /'
systemd-analyze blame --no-pager | head -n 8 | sed 's/^/BLAME /'
systemd-analyze critical-chain --no-pager boot-complete.target 2>/dev/null | tail -n +3 | head -n 12 | sed 's/^/CHAIN /'
# The test's network, by hand: the image configures none (no networkd .network, no DHCP client).
net() {
  local dev; dev=$(ls /sys/class/net | grep -m1 '^en')
  ip link set "$dev" up && ip addr add 10.0.2.15/24 dev "$dev"
  for i in $(seq 60); do timeout 2 bash -c 'exec 3<>/dev/tcp/10.0.2.100/80' 2>/dev/null && break; sleep 1; done
}
os-update --status --json
case $OSU_BOOT in
  1) echo "dpkg: $(dpkg-query -W -f '${Package} ${Version} ${Status}' os-update 2>&1)"
     net; os-update --apply http://10.0.2.100/update.osu --json; echo "apply exited $?" ;;
  3) os-update --rollback --reboot --json; echo "rollback exited $?" ;;
  4) net; os-update --apply http://10.0.2.100/update.osu --allow-downgrade --json; echo "apply exited $?" ;;
esac
AGENT
esp_put "$VM_DISK" "$VM_DIR/agent.sh" test-agent.sh
net="guestfwd=tcp:10.0.2.100:80-cmd:$relay"
# The image's failed units, if any, as the agent saw them (not the test's to judge).
failed_units() { tr -d '\r' < "$VM_LOG" | grep -a '^OSU-AGENT-FAILED' | sort -u | sed 's/^/[qemu] note: /' >&2 || true; }
between() { tr -d '\r' < "$VM_LOG" | sed -n "/^OSU-AGENT-BEGIN boot=$1 /,/^OSU-AGENT-BEGIN boot=$2 /p"; }
env_var() { esp_grubenv "$VM_DISK" | sed -n "s/^$1=//p"; }

log "power-on 1: factory A, --apply 2.0 over HTTP, kexec into B, commit"
vm_boot --timeout 1500 --net "$net"
expect "boot 1" "$(agent_begin 1 | cut -d' ' -f2-4)" "boot=1 slot=A trial=0"
status=$(agent_json 1 booted)
expect "boot 1: slot A (factory record)" "$(json_get "$status" slots.A.state)/$(json_get "$status" slots.A.version)" verified/1.0.0
a_sha=$(json_get "$status" slots.A.sha256) a_size=$(json_get "$status" slots.A.image_size)
expect "boot 1: factory record's sha256 = slot A's squashfs (host)" "$(disk_sha256 "$SLOT_A_OFFSET" "$a_size")" "$a_sha"
agent_output 1 | grep '^dpkg: ' | sed 's/^/[qemu] /' >&2
if tar -tzf "$SRC/kiwi/os-update-amd64.tar.gz" 2>/dev/null | grep_q os-update.deb; then
  agent_output 1 | grep_q '^dpkg: os-update .* install ok installed$' || die "boot 1: dpkg does not know os-update"
fi
agent_output 1 | grep_q '"message":"kexec into slot B' || die "boot 1: --apply did not kexec into B: $(agent_output 1 | tail -n 5)"
expect "boot 2" "$(agent_begin 2 | cut -d' ' -f2-4)" "boot=2 slot=B trial=1"
status=$(agent_json 2 booted)
expect "boot 2: committed slot (after boot-complete)" "$(json_get "$status" committed)" B
expect "boot 2: slot B" "$(json_get "$status" slots.B.state)/$(json_get "$status" slots.B.version)" verified/2.0.0
expect "slot B content (host)" "$(disk_sha256 "$SLOT_B_OFFSET" "$(stat -c %s "$v2/root.sqfs")")" "$(sha256sum < "$v2/root.sqfs" | cut -d' ' -f1)"

log "power-on 2: cold boot into B; --rollback --reboot to A; --apply again, power cut in B's trial"
vm_boot --timeout 1800 --net "$net" --cut 'kexec_core: Starting new kernel' --cut-after 5
between 2 3 | grep_q 'os-update: booting slot B$' || die "the cold boot did not boot B"
expect "boot 3" "$(agent_begin 3 | cut -d' ' -f2-4)" "boot=3 slot=B trial=0"
agent_output 3 | grep_q '"action":"rollback"' || die "boot 3: --rollback failed: $(agent_output 3 | tail -n 3)"
# `systemctl reboot` returns once the job is queued: exit 0 may still be printed. Only a failure counts.
agent_output 3 | grep_q '^rollback exited [1-9]' && die "boot 3: --rollback failed: $(agent_output 3 | tail -n 3)"
between 3 4 | grep_q 'os-update: booting slot A$' || die "--rollback --reboot did not boot A"
expect "boot 4" "$(agent_begin 4 | cut -d' ' -f2-4)" "boot=4 slot=A trial=0"
status=$(agent_json 4 booted)
expect "boot 4: committed slot" "$(json_get "$status" committed)" A
expect "boot 4: slot A is the factory system" "$(json_get "$status" slots.A.version)/$(json_get "$status" slots.A.sha256)" "1.0.0/$a_sha"
agent_output 4 | grep_q '"message":"kexec into slot B' || die "boot 4: --apply did not kexec into B: $(agent_output 4 | tail -n 5)"
tr -d '\r' < "$VM_LOG" | grep_q '^OSU-AGENT-BEGIN boot=5 ' && die "the cut came too late: B's trial started its agent"
expect "after the cut: OSU_ORDER" "$(env_var OSU_ORDER)" "A B"

log "power-on 3: the cut trial did not stick: A"
vm_boot --timeout 900 --net "$net"
expect "boot 5" "$(agent_begin 5 | cut -d' ' -f2-4)" "boot=5 slot=A trial=0"
status=$(agent_json 5 booted)
expect "boot 5: committed slot" "$(json_get "$status" committed)" A

# Where the time goes: host time of serial lines (LOG.times), boot N's activation to N+1's
# boot-complete. kexec: A (boot 1) -> B (boot 2); reboot: B (boot 3) -> A (boot 4).
bc_time() { # host time of boot N's boot-complete.target
  local t ago; t=$(line_time "^OSU-AGENT[[]$1[]] BOOT-COMPLETE-AGO " "OSU-AGENT-BEGIN boot=$1 ")
  ago=$(agent_output "$1" | sed -n 's/^BOOT-COMPLETE-AGO //p' | head -n1)
  awk -v t="$t" -v a="$ago" 'BEGIN { printf "%.3f", t - a }'
}
phases() { # boot from-regex reset-regex: total, shutdown, firmware+GRUB, kernel+initrd, systemd
  local n=$1 t0 t1 tk tu ts tc
  t0=$(line_time "$2" "OSU-AGENT-BEGIN boot=$n ")
  t1=$(line_time "$3" "OSU-AGENT-BEGIN boot=$n ")
  tk=$(line_time 'Linux version [0-9]' "OSU-AGENT-BEGIN boot=$n ")
  tu=$(line_time 'Run /init as init process|Freeing unused kernel' "OSU-AGENT-BEGIN boot=$n ")
  ts=$(line_time 'systemd[[]1[]]: .*(running in system mode|Detected virtualization)|^Welcome to ' "OSU-AGENT-BEGIN boot=$n ")
  tc=$(bc_time $(( n + 1 )))
  [ -n "$t0" ] && [ -n "$t1" ] && [ -n "$tk" ] && [ -n "$ts" ] || die "timing lines missing for boot $n in $VM_LOG.times"
  printf '%s %s %s %s %s %s\n' "$(seconds "$t0" "$tc")" "$(seconds "$t0" "$t1")" "$(seconds "$t1" "$tk")" \
    "$(seconds "$tk" "$ts")" "$(seconds "$ts" "$tc")" "${tu:+$(seconds "$tk" "$tu")}"
}
read -r k_total k_down k_fw k_kern k_sysd _ < <(phases 1 '"message":"kexec into slot B' 'kexec_core: Starting new kernel')
read -r r_total r_down r_fw r_kern r_sysd _ < <(phases 3 '"action":"rollback"' 'reboot: Restarting system')
# The image's cold boot: power-on 1 (QEMU started) to its boot-complete.target.
c_on=$(line_time '^=== run-vm ') c_kern=$(line_time 'Linux version [0-9]')
c_sysd=$(line_time 'systemd[[]1[]]: .*(running in system mode|Detected virtualization)|^Welcome to ')
c_done=$(bc_time 1)
{
  echo "K1 (KIWI image) activation, os-update's message to boot-complete.target (s):"
  printf '  %-8s %7s %9s %14s %16s %9s\n' path total shutdown "firmware+GRUB" "kernel+initrd" systemd
  printf '  %-8s %7s %9s %14s %16s %9s\n' kexec "$k_total" "$k_down" "$k_fw" "$k_kern" "$k_sysd"
  printf '  %-8s %7s %9s %14s %16s %9s\n' reboot "$r_total" "$r_down" "$r_fw" "$r_kern" "$r_sysd"
  echo "  RATIO kexec/reboot (KIWI image) = $(awk -v k="$k_total" -v r="$r_total" 'BEGIN { printf "%.2f", k / r }')"
  echo "  cold boot (power-on to boot-complete.target): $(seconds "$c_on" "$c_done") s =" \
       "firmware+GRUB $(seconds "$c_on" "$c_kern") + kernel+initrd $(seconds "$c_kern" "$c_sysd") + systemd $(seconds "$c_sysd" "$c_done")"
  for n in 2 4; do agent_output "$n" | sed -n "s/^ANALYZE /  boot $n systemd-analyze: /p"; done
  agent_output 2 | sed -n 's/^BLAME /  boot 2 blame: /p' | head -n 5
} | tee -a "$CACHE/figures.txt"
failed_units
vm_pass "K1 KIWI image: factory A, 2.0 over HTTP, kexec, commit, cold boot B, rollback to A, cut trial back to A"
