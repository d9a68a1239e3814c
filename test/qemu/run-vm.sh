#!/usr/bin/env bash
# run-vm.sh [options] DISK LOG: boots DISK (raw) in qemu-system-x86_64 with OVMF under TCG
# (no KVM here) until the guest powers off. The serial console is appended to LOG. Guest
# reboots and kexecs stay in the same run. LOG.times gets every line again with the host's time
# (serial-times.py), for timings across reboots and kexec.
#   --timeout S       kill QEMU after S seconds (default 900): exit 124
#   --vars FILE       OVMF variable store of this VM (default DISK.vars, copied from OVMF's)
#   --disk2 FILE      a second virtio disk, read-only (/dev/vdb: a bundle, a script...)
#   --net OPTS        extra -netdev user options, e.g. guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:8080
#   --cut REGEX       power cut: kill -9 QEMU as soon as a line of this run's log matches REGEX;
#                     exit 0 when cut, 3 when the guest powered off without reaching REGEX
#   --cut-after S     with --cut: the power cut comes S seconds after the match
#   --no-reboot       a guest reboot ends the run (as a power off)
# Exit: QEMU's status (0: powered off), 124 timeout, 125 the guest kernel stalled (below).
#
# A stalled guest: under TCG on a loaded host, a guest kernel now and then stops getting its
# timer interrupts early in boot and never recovers (seen once in CI: RCU stall reports at 24,
# 45, 66 and 87 s, then silence until the timeout). When the kernel has reported
# STALL_REPORTS RCU stalls, the run ends at once with 125 instead of waiting for the timeout;
# the scenario decides what to do (lib.sh's vm_boot starts it over once).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
timeout=900 vars="" disk2="" net="" cut="" cut_after=0 extra=()
while [ $# -gt 2 ]; do
  case $1 in
    --timeout) timeout=$2; shift 2 ;;
    --vars) vars=$2; shift 2 ;;
    --disk2) disk2=$2; shift 2 ;;
    --net) net=",$2"; shift 2 ;;
    --cut) cut=$2; shift 2 ;;
    --cut-after) cut_after=$2; shift 2 ;;
    --no-reboot) extra+=(-no-reboot); shift ;;
    *) echo "$0: unknown option '$1'" >&2; exit 1 ;;
  esac
done
[ $# -eq 2 ] || { echo "usage: $0 [options] DISK LOG" >&2; exit 1; }
disk=$1 logfile=$2
vars=${vars:-$disk.vars}
[ -f "$vars" ] || cp "$OVMF_VARS" "$vars"
[ -z "$disk2" ] || extra+=(-drive "if=none,id=d1,file=$disk2,format=raw,readonly=on"
                          -device virtio-blk-pci,drive=d1)

touch "$logfile"
offset=$(stat -c %s "$logfile")
echo "=== run-vm $(date -u +%FT%TZ) $disk" >> "$logfile"
qemu-system-x86_64 -accel tcg -machine q35 -m 1024 -smp 2 -nodefaults -vga none \
  -display none -monitor none -rtc base=utc \
  -chardev "file,id=serial0,path=$logfile,append=on" -serial chardev:serial0 \
  -drive "if=pflash,format=raw,unit=0,readonly=on,file=$OVMF_CODE" \
  -drive "if=pflash,format=raw,unit=1,file=$vars" \
  -drive "if=none,id=d0,file=$disk,format=raw,cache=writeback" \
  -device virtio-blk-pci,drive=d0,bootindex=0 \
  -netdev "user,id=n0,restrict=on$net" -device virtio-net-pci,netdev=n0,romfile= \
  -device i6300esb -action watchdog=reset \
  "${extra[@]}" &
qemu=$!
log "QEMU pid $qemu, serial log: $logfile"
python3 "$QEMU_DIR/serial-times.py" "$logfile" "$offset" "$qemu" &
stamper=$!
# Never leave QEMU running (killed test, Ctrl-C); the stamper ends with QEMU: wait for it so
# that LOG.times is complete when this script ends.
trap '{ kill -9 "$qemu"; wait "$qemu"; } 2>/dev/null || true; wait "$stamper" 2>/dev/null || true' EXIT
trap 'exit 143' TERM INT

STALL_REPORTS=3
deadline=$(( $(date +%s) + timeout )) rc=""
while kill -0 "$qemu" 2>/dev/null; do
  stalls=$(tail -c +"$((offset + 1))" "$logfile" | grep -c -E 'rcu: INFO: rcu_[a-z]+ (self-)?detected stall' || true)
  if [ "$stalls" -ge "$STALL_REPORTS" ]; then
    { kill -9 "$qemu"; wait "$qemu"; } 2>/dev/null || true
    log "the guest kernel reported $stalls RCU stalls (its timer interrupts stopped): killed; serial log: $logfile"
    exit 125
  fi
  if [ -n "$cut" ] && tail -c +"$((offset + 1))" "$logfile" | tr -d '\r' | grep_q -E -- "$cut"; then
    if [ "$cut_after" != 0 ]; then
      log "matched /$cut/: power cut in ${cut_after}s"; sleep "$cut_after"
      kill -0 "$qemu" 2>/dev/null || { log "the guest powered off before the cut"; exit 3; }
    fi
    { kill -9 "$qemu"; wait "$qemu"; } 2>/dev/null || true
    log "power cut at /$cut/ (+${cut_after}s)"; exit 0
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    { kill -9 "$qemu"; wait "$qemu"; } 2>/dev/null || true
    log "timeout after ${timeout}s; serial log: $logfile"; exit 124
  fi
  sleep 0.5
done
wait "$qemu" || rc=$?
rc=${rc:-0}
log "QEMU exited ($rc); serial log: $logfile"
if [ -n "$cut" ]; then log "the guest never reached /$cut/"; exit 3; fi
exit "$rc"
