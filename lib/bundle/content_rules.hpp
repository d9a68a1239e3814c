// What a device accepts in a bundle's signed content, beyond its syntax (ParseManifest): the
// one set of rules that `os-update-bundle create` refuses to build against, that `verify` and
// `info` report, and that `--apply` and `--check` refuse before a byte is written. A signature
// says who made a bundle, not that its content is safe to place on the boot partition.
#pragma once

#include <climits>
#include <cstddef>
#include <string>
#include <string_view>

#include "bundle/manifest.hpp"
#include "common/error.hpp"

namespace osu {

// Boot files are staged next to their final name as kStagedPrefix + NAME + kStagedSuffix
// (install/apply.cpp): that whole name must fit NAME_MAX, and the FAT boot partition's 255
// UTF-16 units (names are ASCII here, so bytes and units are the same count).
inline constexpr std::string_view kStagedPrefix = ".";
inline constexpr std::string_view kStagedSuffix = ".new";
inline constexpr size_t kMaxFileName = NAME_MAX - kStagedPrefix.size() - kStagedSuffix.size();
// version, min_version and compatible end up in records, the rejected list, messages and JSON.
inline constexpr size_t kMaxVersionLength = 128;
// Half of the kernel's 2048-byte COMMAND_LINE_SIZE (x86_64, arm64): the rest is for what the
// bootloader and os-update add (root=, osu.slot=, osu.trial=1, BOOT_IMAGE=).
inline constexpr size_t kMaxCmdlineLength = 1024;
// A zstd dictionary member is read into memory and loaded by every device: 8 MiB at most.
inline constexpr uint64_t kDictionaryLimit = 8u << 20;

// Every rule below, on the whole manifest; the first broken one as a Verification error that
// names the field: "manifest: boot_files[1].name 'grub.cfg' is reserved: ...".
//   - boot file and image names: one path component of A-Z a-z 0-9 . _ + ~ -, not starting
//     with '.' (os-update's staging and temporary names do), not ending in '.' (FAT drops
//     it), at most kMaxFileName bytes, not os-update's own (record.yml, grub.cfg, boot.env, cmdline.txt,
//     manifest.yaml, manifest.sig), no two the same ignoring case (FAT ignores it);
//   - version, min_version, compatible: 1..kMaxVersionLength of A-Z a-z 0-9 . _ + ~ : , -,
//     starting with a letter or digit;
//   - cmdline: printable ASCII, at most kMaxCmdlineLength bytes, no quote left open, no "--",
//     no root= and no osu.* key (os-update sets those for the slot it boots);
//   - the image: more than 0 bytes.
Result CheckBundleContent(const Manifest& m);

}  // namespace osu
