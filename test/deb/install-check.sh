#!/usr/bin/env bash
# test/deb/install-check.sh [DEB]: installs the package as a Debian 12 user would
# (`apt-get install ./os-update_*.deb`), checks what it put where, then purges it and checks
# that nothing of it is left, so later CI stages see the machine as before. Root only; refuses
# to touch a machine where os-update is already installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=${1:-$(ls build/deb/os-update_*.deb 2>/dev/null | head -1)}
[ -f "$deb" ] || { echo "install-check: no package (run scripts/build-deb.sh)"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: install-check needs root (apt-get install)"; exit 77; }
if dpkg -s os-update >/dev/null 2>&1; then
  echo "install-check: os-update is already installed here; not touching it"; exit 1
fi
fail() { echo "install-check: FAIL: $*"; exit 1; }
# Match a command's output only once it has all been read: `cmd | grep -q` under pipefail fails
# whenever grep exits before cmd's last write (SIGPIPE), as it did once --help passed 4 KiB.
has() { local pattern=$1 out; shift; out=$("$@") || return 1; grep -q -- "$pattern" <<<"$out"; }
purge() { DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq os-update >/dev/null; }
start=$(date +%s)

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "./${deb#./}" >/dev/null
trap 'purge || true' EXIT
has '^Status: install ok installed$' dpkg -s os-update || fail "dpkg -s: not installed"
echo "installed: $(dpkg-query -W -f '${Package} ${Version} ${Architecture}, depends: ${Depends}' os-update)"
# Runtime dependencies come from ${shlibs:Depends}: the libraries the binaries link.
for lib in libblkid1 libfdisk1 libarchive13 liblzma5 libssl3 libyaml-cpp0.7 libzstd1 libcurl4 libubootenv0.1; do
  has "$lib" dpkg-query -W -f '${Depends}' os-update || fail "Depends lacks $lib"
done

has '^Usage: /usr/bin/os-update' /usr/bin/os-update --help || fail "os-update --help"
[ "$(/usr/bin/os-update --version)" = "os-update $(dpkg-query -W -f '${Version}' os-update)" ] ||
  fail "os-update --version is not the package's version"
has '^Subcommands:' /usr/bin/os-update-bundle --help || fail "os-update-bundle --help"
for f in /lib/systemd/system/os-update-commit.service /lib/systemd/system/os-update-trial-timeout.service \
         /lib/systemd/system/os-update-trial-timeout.timer \
         /usr/lib/systemd/system.conf.d/os-update-watchdog.conf \
         /usr/share/os-update/grub/grub.cfg /usr/share/os-update/uboot/boot.cmd \
         /usr/share/os-update/pi-firmware/config.txt /usr/share/os-update/pi-firmware/tryboot.txt \
         /usr/share/os-update/pi-firmware/osu/committed.txt \
         /usr/share/os-update/partition-layouts/x86-kvm.sfdisk \
         /usr/share/os-update/partition-layouts/rpi4.sfdisk /usr/share/os-update/partition-layouts/rpi5.sfdisk \
         /usr/share/man/man8/os-update.8.gz /usr/share/man/man1/os-update-bundle.1.gz \
         /usr/share/man/man5/os-update.yml.5.gz \
         /usr/share/bash-completion/completions/os-update \
         /usr/share/bash-completion/completions/os-update-bundle /etc/os-update.yml; do
  [ -f "$f" ] || fail "$f is missing"
done
grep -qx /etc/os-update.yml /var/lib/dpkg/info/os-update.conffiles || fail "/etc/os-update.yml is not a conffile"
cmp -s /etc/os-update.yml examples/os-update.yml || fail "/etc/os-update.yml is not examples/os-update.yml"
# Enabled the Debian way (deb-systemd-helper, from the units' [Install] sections), not started.
for link in multi-user.target.wants/os-update-commit.service timers.target.wants/os-update-trial-timeout.timer; do
  [ -L "/etc/systemd/system/$link" ] || fail "/etc/systemd/system/$link: not enabled"
done
[ ! -e /run/os-update-committed ] || fail "installing the package ran the commit"
# The shipped configuration: every key commented out, so os-update reads it and uses defaults.
rc=0; out=$(/usr/bin/os-update --status 2>&1) || rc=$?
[ "$rc" -ne 1 ] || fail "os-update --status with the shipped /etc/os-update.yml: $out"
if command -v man >/dev/null; then
  has 'update.compatible' env MANWIDTH=80 man os-update.yml 2>/dev/null || fail "man os-update.yml"
fi
echo "install-check: binaries, units (enabled, not started), scripts, layouts, conffile, man pages, completion"

purge
trap - EXIT
! dpkg -s os-update >/dev/null 2>&1 || fail "still installed after purge"
for f in /usr/bin/os-update /etc/os-update.yml /lib/systemd/system/os-update-commit.service \
         /etc/systemd/system/multi-user.target.wants/os-update-commit.service \
         /etc/systemd/system/timers.target.wants/os-update-trial-timeout.timer; do
  [ ! -e "$f" ] && [ ! -L "$f" ] || fail "$f left after purge"
done
echo "install-check: purged, nothing left ($(( $(date +%s) - start )) s)"
