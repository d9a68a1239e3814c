#!/usr/bin/env bash
# S11: trust that survives a retired key (issue 15, README "Trust"). A device on release 2.0
# (slot B, committed; host_install) whose image ships root v1 and keeps its TUF state on the
# data partition (outside both slots). The repository is made on the host with
# `os-update-bundle tuf` only and served by nginx as in S3, in three states:
#   before/  root v1 (targets key K1), release 2.0
#   after/   root v2: the targets key rotated to K2 (signed by the root key, old and new
#            threshold), release 3.0 signed by K2 only
#   bad/     what a holder of the retired K1 (and of the online key) can publish: root v1 only,
#            newer targets/snapshot/timestamp versions, release 3.0 listed, signed by K1
# In B: --check of before/ (up to date), --apply of after/ (walks root v1 -> v2, installs 3.0
# into A, kexec). In A, after its trial committed: --check and --apply of bad/ are refused
# (exit 2, "targets keys"), and the trust state, slots and boot env are unchanged.
# One power-on (plus the kexec).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s11-tuf-rotation

bundle 2.0 "$VM_DIR/eos-2.0.osu" zstd
bundle 3.0 "$VM_DIR/eos-3.0.osu" zstd
host_install "$VM_DIR/eos-2.0.osu"

tuf() { "$OSU_BIN/os-update-bundle" tuf "$@" >> "$VM_DIR/tuf.log" 2>&1 || { cat "$VM_DIR/tuf.log" >&2; die "os-update-bundle tuf $*"; }; }
k=$VM_DIR/keys; mkdir -p "$k"
for name in root online release1 release2; do
  "$OSU_BIN/os-update-bundle" keygen --private "$k/$name.pem" --public "$k/$name.pub" >/dev/null
done
www=$VM_DIR/www; mkdir -p "$www"
tuf init "$www/before" --root-key "$k/root.pub" --targets-key "$k/release1.pub" \
  --snapshot-key "$k/online.pub" --timestamp-key "$k/online.pub"
tuf sign "$www/before/1.root.json" --key "$k/root.pem"
tuf add "$www/before" "$VM_DIR/eos-2.0.osu"
tuf sign "$www/before/targets.json" --key "$k/release1.pem"
tuf timestamp "$www/before" --key "$k/online.pem"
cp -a "$www/before" "$www/after"
tuf rotate "$www/after" --targets-key "$k/release2.pub"
tuf sign "$www/after/2.root.json" --key "$k/root.pem"
tuf add "$www/after" "$VM_DIR/eos-3.0.osu"
tuf sign "$www/after/targets.json" --key "$k/release2.pem"
tuf timestamp "$www/after" --key "$k/online.pem"
cp -a "$www/before" "$www/bad"
tuf add "$www/bad" "$VM_DIR/eos-3.0.osu"
tuf sign "$www/bad/targets.json" --key "$k/release1.pem"
tuf timestamp "$www/bad" --key "$k/online.pem"
tuf add "$www/bad"
tuf sign "$www/bad/targets.json" --key "$k/release1.pem"
tuf timestamp "$www/bad" --key "$k/online.pem"
log "repository: $(grep -c . "$VM_DIR/tuf.log") lines of tooling output; bad/: $(tail -n1 "$VM_DIR/tuf.log")"
esp_put "$VM_DISK" "$www/before/1.root.json" tuf-root.json

nginx_start "$www"
relay="$(command -v python3) $QEMU_DIR/tcp-relay.py 127.0.0.1 $NGINX_PORT $VM_DIR/relay.log"

cat > "$VM_DIR/agent.sh" <<'AGENT'
# What the image would ship: root v1 as tuf.root, the TUF state on the data partition.
setup() {
  mkdir -p /run/osu-tuf /run/osu-data
  cp /boot/efi/tuf-root.json /run/osu-tuf/root.json
  { cat /etc/os-update.yml; printf 'tuf:\n  root: /run/osu-tuf/root.json\n  state_dir: /run/osu-data/os-update/tuf\n'; } > /run/osu-tuf/os-update.yml
  mount /dev/disk/by-partlabel/p.lxdata /run/osu-data  # the read-only root has no /var/lib/os-update of its own
  mkdir -p /run/systemd/network
  printf '[Match]\nName=en*\n[Network]\nAddress=10.0.2.15/24\n' > /run/systemd/network/50-osu-test.network
  systemctl start systemd-networkd
  for i in $(seq 60); do timeout 2 bash -c 'exec 3<>/dev/tcp/10.0.2.100/80' 2>/dev/null && break; sleep 1; done
}
osu() { os-update --config /run/osu-tuf/os-update.yml "$@"; }
fingerprint() { (cd /run/osu-data/os-update/tuf && sha256sum * | sha256sum | cut -c1-16); cat /boot/efi/osu/grubenv /boot/efi/osu/*/record.yml | sha256sum | cut -c1-16; }
case $OSU_BOOT in
  1) mkfs.ext4 -q -F -L osu-data /dev/disk/by-partlabel/p.lxdata
     setup
     osu --check http://10.0.2.100/before/eos-2.0.osu --json; echo "check before exited $?"
     echo "state files: $(ls /run/osu-data/os-update/tuf | paste -sd' ')"
     osu --apply http://10.0.2.100/after/eos-3.0.osu --json; echo "apply after exited $?" ;;
  *) setup
     os-update --status --json
     before=$(fingerprint | paste -sd' ')
     osu --check http://10.0.2.100/bad/eos-3.0.osu --json; echo "check bad exited $?"
     osu --apply http://10.0.2.100/bad/eos-3.0.osu --json; echo "apply bad exited $?"
     after=$(fingerprint | paste -sd' ')
     echo "unchanged: $([ "$before" = "$after" ] && echo yes || echo "no ($before / $after)")"
     echo "state root $(grep -o '"version": *[0-9]*' /run/osu-data/os-update/tuf/root.json | tr -d ' "')" ;;
esac
AGENT
vm_agent "$VM_DIR/agent.sh"

log "power-on: in B (2.0) --check before/, --apply after/ (root v2, 3.0), kexec into A, commit; bad/ refused"
vm_boot --timeout 1500 --net "guestfwd=tcp:10.0.2.100:80-cmd:$relay"
out1=$(agent_output 1)
expect "boot 1" "$(agent_begin 1 | cut -d' ' -f2-5)" "boot=1 slot=B trial=0 system=running"
expect "boot 1: --check of release 2 with root v1 (up to date)" "$(sed -n 's/^check before exited //p' <<<"$out1")" 0
grep -q '"message":"kexec into slot A' <<<"$out1" || die "boot 1: --apply did not kexec into A: $(tail -n 5 <<<"$out1")"
grep -q '^apply after exited [1-9]' <<<"$out1" && die "boot 1: --apply failed: $(tail -n 5 <<<"$out1")"

out2=$(agent_output 2)
expect "boot 2" "$(agent_begin 2 | cut -d' ' -f2-5)" "boot=2 slot=A trial=1 system=running"
status=$(agent_json 2 booted)
expect "boot 2: committed slot" "$(json_get "$status" committed)" A
expect "boot 2: slot A version" "$(json_get "$status" slots.A.version)" 3.0
want=$(sha256sum < "$VM_DIR/eos-3.0.osu.img" | cut -d' ' -f1)
expect "slot A content sha256 (host)" "$(disk_sha256 "$SLOT_A_OFFSET" "$(stat -c %s "$VM_DIR/eos-3.0.osu.img")")" "$want"
expect "boot 2: --check of bad/ (retired targets key)" "$(sed -n 's/^check bad exited //p' <<<"$out2")" 2
expect "boot 2: --apply of bad/" "$(sed -n 's/^apply bad exited //p' <<<"$out2")" 2
grep -q 'valid signatures\? of distinct targets keys, the threshold is 1' <<<"$out2" ||
  die "boot 2: bad/ not refused for its targets signature: $out2"
expect "boot 2: trust state and boot env after the refusals" "$(sed -n 's/^unchanged: //p' <<<"$out2")" yes
expect "boot 2: the trust state's root (on the data partition, kept across the slot switch)" \
  "$(sed -n 's/^state root //p' <<<"$out2")" "version:2"
vm_pass "S11 TUF: root rotation and 3.0 by the new targets key installed and committed; the retired key refused"
