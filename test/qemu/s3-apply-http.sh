#!/usr/bin/env bash
# S3: the 2.0 bundle over HTTP. nginx on the host's 127.0.0.1 serves it; the VM's user
# networking is `restrict=on` (no way out) with one guestfwd: 10.0.2.100:80 in the guest is
# relayed to that nginx only (tcp-relay.py, one per connection). In slot A, `--check` of the URL
# reads only the head of the bundle (a ranged request), `--apply` of it installs B and kexecs;
# B commits after boot-complete. nginx's access log shows both transfers.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
prepare
vm_new s3-apply-http

bundle 2.0 "$VM_DIR/update.osu" zstd
mkdir -p "$VM_DIR/www"
ln "$VM_DIR/update.osu" "$VM_DIR/www/update.osu"
size=$(stat -c %s "$VM_DIR/update.osu")
nginx_start "$VM_DIR/www"
relay="$(command -v python3) $QEMU_DIR/tcp-relay.py 127.0.0.1 $NGINX_PORT $VM_DIR/relay.log"

cat > "$VM_DIR/agent.sh" <<AGENT
case \$OSU_BOOT in
  1) # The guest's side of the network: a static address on the first NIC (systemd-networkd).
     mkdir -p /run/systemd/network
     printf '[Match]\nName=en*\n[Network]\nAddress=10.0.2.15/24\n' > /run/systemd/network/50-osu-test.network
     systemctl start systemd-networkd
     for i in \$(seq 60); do timeout 2 bash -c 'exec 3<>/dev/tcp/10.0.2.100/80' 2>/dev/null && break; sleep 1; done
     # restrict=on: the host's loopback (10.0.2.2 in slirp) is not reachable.
     timeout 5 bash -c 'exec 3<>/dev/tcp/10.0.2.2/$NGINX_PORT' 2>/dev/null && echo "host loopback: reachable" \\
       || echo "host loopback: unreachable"
     os-update --check http://10.0.2.100/update.osu --json; echo "check exited \$?"
     os-update --apply http://10.0.2.100/update.osu --json; echo "apply exited \$?" ;;
  *) os-update --status --json ;;
esac
AGENT
vm_agent "$VM_DIR/agent.sh"

log "power-on: --check and --apply over HTTP in A, kexec into B, commit"
vm_boot --timeout 1500 --net "guestfwd=tcp:10.0.2.100:80-cmd:$relay"
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

# The server's view: a small ranged GET for --check, then the whole bundle for --apply.
access=$(grep '^GET /update.osu ' "$NGINX_DIR/access.log" || true)
log "nginx access log: $(paste -sd';' <<<"$access")"
expect "--check: one ranged request" "$(sed -n 1p <<<"$access" | awk '{print $3, $5}')" "206 range=bytes=0-49151"
got=$(sed -n 1p <<<"$access" | awk '{print $4}')
[ "$got" -le 49152 ] || die "--check read $got bytes, more than the head of the bundle"
expect "--apply: the whole bundle" "$(sed -n 2p <<<"$access" | awk '{print $3, $4, $5}')" "200 $size range=-"
expect "requests" "$(wc -l <<<"$access")" 2
vm_pass "S3 apply over HTTP from nginx on 127.0.0.1 (restrict=on), kexec, commit"
