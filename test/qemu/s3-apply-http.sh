#!/usr/bin/env bash
# S3: the 2.0 bundle over HTTP. nginx on the host's 127.0.0.1 serves it; the VM's user
# networking is `restrict=on` (no way out) with one guestfwd: 10.0.2.100:80 in the guest is
# relayed to that nginx only (tcp-relay.py, one per connection). In slot A, `--check` of the URL
# reads only the head of the bundle (a ranged request), `--apply` of it installs B and kexecs;
# B commits after boot-complete. nginx's access log shows both transfers.
# Then the delta (issue 11) on the same power-on: in committed B, `--apply` of 3.0 finds
# `update3.osu.delta-<2.0's image>` beside it and fetches only that patch (ranged GETs) and the
# head of 3.0's bundle, decodes it against the booted slot B into A, kexecs; A commits.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s3-apply-http

bundle 2.0 "$VM_DIR/update.osu" zstd
bundle 3.0 "$VM_DIR/update3.osu" zstd
patch=$(bundle_patch "$VM_DIR/update.osu" "$VM_DIR/update3.osu")
mkdir -p "$VM_DIR/www"
ln "$VM_DIR/update.osu" "$VM_DIR/www/update.osu"
ln "$VM_DIR/update3.osu" "$VM_DIR/www/update3.osu"
ln "$patch" "$VM_DIR/www/$(basename "$patch")"
size=$(stat -c %s "$VM_DIR/update.osu")
size3=$(stat -c %s "$VM_DIR/update3.osu")
patch_size=$(stat -c %s "$patch")
log "3.0: bundle $size3 bytes, patch against 2.0 $patch_size bytes"
nginx_start "$VM_DIR/www"
relay="$(command -v python3) $QEMU_DIR/tcp-relay.py 127.0.0.1 $NGINX_PORT $VM_DIR/relay.log"

cat > "$VM_DIR/agent.sh" <<AGENT
# The guest's side of the network: a static address on the first NIC (systemd-networkd), in /run.
net_up() {
  mkdir -p /run/systemd/network
  printf '[Match]\nName=en*\n[Network]\nAddress=10.0.2.15/24\n' > /run/systemd/network/50-osu-test.network
  systemctl start systemd-networkd
  for i in \$(seq 60); do timeout 2 bash -c 'exec 3<>/dev/tcp/10.0.2.100/80' 2>/dev/null && break; sleep 1; done
}
case \$OSU_BOOT in
  1) net_up
     # restrict=on: the host's loopback (10.0.2.2 in slirp) is not reachable.
     timeout 5 bash -c 'exec 3<>/dev/tcp/10.0.2.2/$NGINX_PORT' 2>/dev/null && echo "host loopback: reachable" \\
       || echo "host loopback: unreachable"
     os-update --check http://10.0.2.100/update.osu --json; echo "check exited \$?"
     # The whole bundle in one GET (the full path; the delta is 3.0's, below).
     os-update --apply http://10.0.2.100/update.osu --json --no-delta; echo "apply exited \$?" ;;
  2) os-update --status --json
     net_up
     # The booted slot B holds 2.0, verified: 3.0 through the patch beside it, into A.
     # --no-activate first: a kexec cuts the result line short, and it says the way and the bytes.
     os-update --apply http://10.0.2.100/update3.osu --json --no-activate; echo "apply 3.0 exited \$?"
     os-update --activate --kexec --json ;;
  *) os-update --status --json ;;
esac
AGENT
vm_agent "$VM_DIR/agent.sh"

log "power-on: --check and --apply over HTTP in A, kexec into B, commit; 3.0 by patch, kexec into A, commit"
vm_boot --timeout 2100 --net "guestfwd=tcp:10.0.2.100:80-cmd:$relay"
out=$(agent_output 1)
expect "boot 1" "$(agent_begin 1 | cut -d' ' -f2-5)" "boot=1 slot=A trial=0 system=running"
expect "boot 1: host loopback through restrict=on" "$(sed -n 's/^host loopback: //p' <<<"$out")" unreachable
expect "boot 1: --check exit code (update available)" "$(sed -n 's/^check exited //p' <<<"$out")" 100
grep -q '"available":"2.0".*"update_available":true' <<<"$out" || die "boot 1: --check did not offer 2.0: $out"
grep -q '"message":"kexec into slot B' <<<"$out" || die "boot 1: --apply did not kexec into B: $(tail -n 5 <<<"$out")"
# `systemctl kexec` returns once the job is queued: exit 0 may still be printed. Only a failure counts.
grep -q '^apply exited [1-9]' <<<"$out" && die "boot 1: --apply failed: $(tail -n 5 <<<"$out")"

expect "boot 2" "$(agent_begin 2 | cut -d' ' -f2-5)" "boot=2 slot=B trial=1 system=running"
status=$(agent_json 2 booted)
expect "boot 2: booted slot" "$(json_get "$status" booted)" B
expect "boot 2: committed slot" "$(json_get "$status" committed)" B
expect "boot 2: slot B version" "$(json_get "$status" slots.B.version)" 2.0
want=$(sha256sum < "$VM_DIR/update.osu.img" | cut -d' ' -f1)
expect "slot B content sha256 (host)" "$(disk_sha256 "$SLOT_B_OFFSET" "$(stat -c %s "$VM_DIR/update.osu.img")")" "$want"

# The server's view: one small ranged GET for --check (manifest and signature only: a
# partial-fetch bundle's chunk index stays on the server), then --apply --no-delta the whole
# bundle in one GET.
access=$(grep '^GET /update.osu ' "$NGINX_DIR/access.log" || true)
log "nginx access log: $(paste -sd';' <<<"$access")"
expect "--check: one ranged request" "$(sed -n 1p <<<"$access" | awk '{print $3, $5}')" "206 range=bytes=0-49151"
got=$(sed -n 1p <<<"$access" | awk '{print $4}')
[ "$got" -le 49152 ] || die "--check read $got bytes, more than the head of the bundle"
expect "--apply: the whole bundle" "$(sed -n 2p <<<"$access" | awk '{print $3, $4, $5}')" "200 $size range=-"
expect "requests for 2.0" "$(wc -l <<<"$access")" 2

# The delta: 3.0 through the patch against the booted B, fetched bytes the patch's and the
# head of 3.0's bundle (manifest, signature, chunk index), far below the bundle.
out=$(agent_output 2)
expect "boot 2: --apply 3.0 exit code" "$(sed -n 's/^apply 3.0 exited //p' <<<"$out")" 0
grep -q '"message":"kexec into slot A' <<<"$out" || die "boot 2: --activate did not kexec into A: $(tail -n 5 <<<"$out")"
result=$(grep -m1 '"fetched_bytes"' <<<"$out") || die "boot 2: no --json result of --apply 3.0: $(tail -n 5 <<<"$out")"
expect "3.0: way" "$(json_get "$result" way)" patch
fetched=$(json_get "$result" fetched_bytes)
log "3.0: fetched $fetched bytes in $(json_get "$result" requests) requests (bundle $size3, patch $patch_size)"
[ "$fetched" -ge "$patch_size" ] && [ "$fetched" -lt $((patch_size + (4 << 20))) ] \
  || die "3.0: fetched $fetched bytes, not the patch's $patch_size and the bundle's head"
[ "$fetched" -lt $((size3 / 10)) ] || die "3.0: fetched $fetched bytes, not well under the bundle's $size3"
access3=$(grep '^GET /update3.osu' "$NGINX_DIR/access.log" || true)
log "nginx access log (3.0): $(paste -sd';' <<<"$access3")"
grep_q -v ' 206 ' <<<"$access3" && die "3.0: a request that was not a range: $access3"
grep_q "^GET /$(basename "$patch") 206 " <<<"$access3" || die "3.0: the patch was not fetched: $access3"

expect "boot 3" "$(agent_begin 3 | cut -d' ' -f2-5)" "boot=3 slot=A trial=1 system=running"
status=$(agent_json 3 booted)
expect "boot 3: committed slot" "$(json_get "$status" committed)" A
expect "boot 3: slot A version" "$(json_get "$status" slots.A.version)" 3.0
expect "boot 3: slot A state" "$(json_get "$status" slots.A.state)" verified
want=$(sha256sum < "$VM_DIR/update3.osu.img" | cut -d' ' -f1)
expect "slot A content sha256 (host)" "$(disk_sha256 "$SLOT_A_OFFSET" "$(stat -c %s "$VM_DIR/update3.osu.img")")" "$want"
vm_pass "S3 apply over HTTP from nginx on 127.0.0.1 (restrict=on), kexec, commit; 3.0 by patch against the booted slot, commit"
