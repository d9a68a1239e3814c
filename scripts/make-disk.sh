#!/bin/sh
# make-disk.sh LAYOUT OUTPUT [SIZE]: a sparse disk image partitioned with one of
# partition-layouts/ (LAYOUT: x86-kvm, rpi4, rpi5, or a path to an .sfdisk file).
# SIZE as truncate(1) takes it, default 8G (sparse: costs no space until written).
set -eu

usage() { echo "usage: $0 LAYOUT OUTPUT [SIZE]" >&2; exit 1; }
[ $# -ge 2 ] && [ $# -le 3 ] || usage
layout=$1 output=$2 size=${3:-8G}

here=$(cd "$(dirname "$0")" && pwd)
case $layout in
  */*|*.sfdisk) script=$layout ;;
  *) script=$here/../partition-layouts/$layout.sfdisk ;;
esac
[ -r "$script" ] || { echo "$0: no layout '$layout' ($script)" >&2; exit 1; }
[ -b "$output" ] && { echo "$0: '$output' is a block device; refusing (use sfdisk directly)" >&2; exit 1; }

rm -f "$output"
truncate -s "$size" "$output"
sfdisk --quiet --no-reread --no-tell-kernel "$output" < "$script"
sfdisk --list "$output"
