# shellcheck shell=bash
# Helpers of both QEMU suites (x86 GRUB: lib.sh; aarch64 U-Boot: arm64/lib.sh), sourced by
# them: messages tagged with the suite (QEMU_TAG), JSON lookups, expectations.
QEMU_TAG=${QEMU_TAG:-qemu}
log() { printf '[%s %s] %s\n' "$QEMU_TAG" "$(date +%T)" "$*" >&2; }
die() { printf '[%s] FAIL: %s\n' "$QEMU_TAG" "$*" >&2; exit 1; }
# Exit 77 is ctest's SKIP; the reason is what a reader of the CI log needs.
skip() { printf '[%s] SKIP: %s\n' "$QEMU_TAG" "$*" >&2; exit 77; }

# json_get JSON DOTTED.PATH: a value ("null" when missing), e.g. json_get "$j" slots.A.state.
json_get() {
  python3 -c 'import json,sys
v=json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v=v.get(k) if isinstance(v,dict) else None
print(v if isinstance(v,str) else json.dumps(v))' "$1" "$2"
}

# expect WHAT GOT WANT
expect() { [ "$2" = "$3" ] || die "$1: got '$2', want '$3' (serial log: ${VM_LOG:-none})"; log "ok: $1 = $3"; }
