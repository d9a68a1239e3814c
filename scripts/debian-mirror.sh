#!/bin/sh
# Prints the Debian archive URI this machine's apt is configured with (deb822 .sources first,
# then one-line .list files), so that no script names a registry host of its own.
# Exit 1 with a message on stderr when apt names none (then set the script's *MIRROR variable).
set -eu
APT_DIR=${APT_DIR:-/etc/apt}
uri=$(awk '
  tolower($1) == "uris:" { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }
' "$APT_DIR"/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$uri" ]; then
  uri=$(awk '$1 == "deb" {
      i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
      if ($i !~ /security/) { print $i; exit }
    }' "$APT_DIR"/sources.list "$APT_DIR"/sources.list.d/*.list 2>/dev/null || true)
fi
if [ -z "$uri" ]; then
  echo "debian-mirror.sh: no Debian archive in $APT_DIR/sources.list{,.d/} (set the mirror variable)" >&2
  exit 1
fi
echo "${uri%/}"
