#!/usr/bin/env bash
# S9: power lost right after --apply --no-activate renamed the new kernel and initrd into
# /osu/B on the real vfat ESP and wrote B's verified record: the guest's page cache dies with
# the machine, long before its writeback (30 s). On vfat a renamed file's cluster and size
# reach its directory entry only with its own inode, so without the fsync after the rename
# B's kernel would be empty while its record says verified. Here, read on the host right
# after the cut, B's kernel and initrd are what its record says; the next power-on boots A,
# reports B verified, and `--activate --kexec` boots B's kernel.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s9-power-cut-after-boot-file-swap
bundle 2.0 "$VM_DIR/update.osu" zstd
bundle_disk "$VM_DIR/update.osu" "$VM_DIR/bundle-disk.img"

cat > "$VM_DIR/agent.sh" <<'AGENT'
case $OSU_BOOT in
  1) os-update --apply /dev/vdb --no-activate --json ;;
  2) os-update --status --json; os-update --activate --kexec --json ;;
  *) os-update --status --json ;;
esac
AGENT
vm_agent "$VM_DIR/agent.sh"

log "power-on 1: cut as soon as --apply reports its result"
vm_boot --timeout 900 --disk2 "$VM_DIR/bundle-disk.img" \
  --cut '^OSU-AGENT\[1\] \{.*"event":"result","action":"apply"'

log "after the cut, on the host: B's record and boot files as mtools reads the ESP"
record=$(esp_cat "$VM_DISK" osu/B/record.yml) || die "osu/B/record.yml unreadable after the cut"
expect "B's record state" "$(sed -n 's/^state: *"\{0,1\}\([a-z]*\)"\{0,1\}$/\1/p' <<< "$record")" verified
for name in vmlinuz initrd.img; do
  line=$(grep -F "name: \"$name\"" <<< "$record") || die "B's record names no $name"
  want=$(sed -n 's/.*sha256: "\([0-9a-f]*\)".*/\1/p' <<< "$line")
  rm -f "$VM_DIR/$name"
  esp_get "$VM_DISK" "osu/B/$name" "$VM_DIR/$name" || die "osu/B/$name unreadable after the cut"
  expect "osu/B/$name after the cut ($(stat -c %s "$VM_DIR/$name") bytes)" \
    "$(sha256sum "$VM_DIR/$name" | cut -d' ' -f1)" "$want"
done

log "power-on 2: A boots, B verified; --activate --kexec starts B's kernel (boot 3)"
vm_boot --timeout 900
expect "boot 2" "$(agent_begin 2 | cut -d' ' -f2-5)" "boot=2 slot=A trial=0 system=running"
expect "B's state on boot 2" "$(json_get "$(agent_json 2 booted)" slots.B.state)" verified
expect "boot 3" "$(agent_begin 3 | cut -d' ' -f2-5)" "boot=3 slot=B trial=1 system=running"
vm_pass "S9 power cut right after the boot-file swap: B's kernel and initrd intact, B boots"
