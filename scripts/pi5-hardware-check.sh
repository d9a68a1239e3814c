#!/bin/bash
# pi5-hardware-check.sh: for an owner of a Raspberry Pi 5 running the rpi5 image (kiwi/,
# boot.bootloader: pi-firmware). Walks the Pi firmware path that no emulator here can run:
#   1. factory: slot A committed, config.txt -> A, the watchdog armed
#   2. --apply GOOD --reboot: the firmware's tryboot boots slot B as a trial (osu.trial=1)
#   3. boot-complete commits B (os-update-commit.service); config.txt -> B; a plain reboot
#      boots B again
#   4. --apply BAD --reboot: a kernel that never comes up in slot A; the reset (panic=10, or
#      the watchdog) reads config.txt and B boots again, committed, no trial
# Run it as root after every boot until it prints PASS or FAIL (it reboots the Pi itself
# between steps; state and the report are kept in $OSU_CHECK_DIR, default /data/pi5-check):
#   scripts/pi5-hardware-check.sh GOOD.osu BAD.osu
# GOOD.osu: a signed bundle of a newer image for this device (update.compatible osu-rpi5).
# BAD.osu:  the same image and kernel with an initrd that is not one: the kernel finds no
#   root, panics, and panic=10 (the image's command line) resets the board, e.g.
#   head -c 1048576 /dev/urandom > initrd.img
#   os-update-bundle create --image rootfs.img --boot-file vmlinuz --boot-file initrd.img \
#     --boot-file bcm2712-rpi-5-b.dtb --cmdline "..." --version 9.9 ...
#   (a kernel that hangs before systemd arms the watchdog is not reset by anything: say so if
#   the Pi stays dark for more than a minute, then power-cycle it: config.txt boots B)
# Send the report ($OSU_CHECK_DIR/report.txt) with the output of `os-update --status`.
set -euo pipefail

dir=${OSU_CHECK_DIR:-/data/pi5-check}
osu=${OSU:-os-update}
[ "$(id -u)" -eq 0 ] || { echo "run as root" >&2; exit 1; }
mkdir -p "$dir"
state=$(cat "$dir/state" 2>/dev/null || echo start)
if [ "$state" = start ]; then
  [ $# -eq 2 ] || { echo "usage: $0 GOOD.osu BAD.osu (first run; later runs need no arguments)" >&2; exit 1; }
  cp "$1" "$dir/good.osu"
  cp "$2" "$dir/bad.osu"
  : > "$dir/report.txt"
fi

say() { echo "$*" | tee -a "$dir/report.txt"; }
fail() { say "FAIL ($state): $*"; "$osu" --status >> "$dir/report.txt" 2>&1 || true; echo fail > "$dir/state"; exit 1; }
status_json() { "$osu" --status --json; }
# One field of the one-line --status --json (the names used here are unique in it).
field() { status_json | grep -o "\"$1\": *[^,}]*" | head -n1 | sed 's/^[^:]*: *//; s/"//g'; }
expect() { local got; got=$(field "$1"); [ "$got" = "$2" ] || fail "$1 is '$got', expected '$2'"; say "ok: $1 = $2"; }
next() { echo "$1" > "$dir/state"; }
reboot_now() { say "-- $1; run $0 again after the boot"; sync; systemctl reboot; exit 0; }

# Waits up to 5 minutes for os-update-commit.service (after boot-complete.target) to commit.
wait_commit() {
  for _ in $(seq 60); do
    [ "$(field committed)" = "$(field booted)" ] && return 0
    sleep 5
  done
  fail "the trial was not committed within 5 minutes (systemctl status os-update-commit.service)"
}

say "== $(date -u +%FT%TZ) step '$state', kernel $(uname -r), $(tr -d '\0' < /proc/device-tree/model 2>/dev/null || echo 'model unknown')"
case "$state" in
  start)
    expect booted A
    expect committed A
    expect trial false
    expect config_txt A
    expect tryboot_flag false
    [ -e /dev/watchdog0 ] || fail "no /dev/watchdog0: a hung trial would not be reset"
    wd=$(systemctl show -p RuntimeWatchdogUSec --value)
    [ "$wd" != 0 ] && [ "$wd" != infinity ] || fail "systemd does not pet the watchdog (RuntimeWatchdogUSec=$wd)"
    say "ok: watchdog /dev/watchdog0, RuntimeWatchdogUSec=$wd"
    next trial
    say "-- os-update --apply good.osu --reboot (tryboot into B)"
    "$osu" --apply "$dir/good.osu" --reboot 2>&1 | tee -a "$dir/report.txt"
    fail "os-update --apply --reboot returned instead of rebooting"
    ;;
  trial)
    expect booted B
    expect tryboot_flag true
    grep -qw osu.trial=1 /proc/cmdline || fail "/proc/cmdline has no osu.trial=1: $(cat /proc/cmdline)"
    say "ok: /proc/cmdline marks the trial"
    wait_commit
    expect committed B
    expect config_txt B
    next committed
    reboot_now "plain reboot: config.txt must boot B"
    ;;
  committed)
    expect booted B
    expect committed B
    expect trial false
    expect tryboot_flag false
    next failed-trial
    say "-- os-update --apply bad.osu --reboot (tryboot into a kernel that never comes up)"
    "$osu" --apply "$dir/bad.osu" --reboot 2>&1 | tee -a "$dir/report.txt"
    fail "os-update --apply --reboot returned instead of rebooting"
    ;;
  failed-trial)
    expect booted B
    expect committed B
    expect trial false
    expect tryboot_flag false
    expect config_txt B
    # The normal boot's commit points tryboot.txt back at the committed slot.
    "$osu" --commit | tee -a "$dir/report.txt"
    expect tryboot_txt B
    "$osu" --status >> "$dir/report.txt"
    say "PASS: apply, tryboot trial, commit, plain reboot, failing trial back in B"
    next done
    ;;
  done) cat "$dir/report.txt" ;;
  fail) echo "the check failed earlier; report in $dir/report.txt (remove $dir/state to start over)"; exit 1 ;;
  *) fail "unknown state '$state' in $dir/state" ;;
esac
