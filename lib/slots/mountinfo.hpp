// /proc/self/mountinfo, parsed (proc(5)): what is mounted where, from which device.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace osu {

struct MountEntry {
  dev_t devno = 0;          // field 3, major:minor (0:N for virtual file systems)
  std::string root;         // field 4, the mounted subtree of the file system
  std::string mount_point;  // field 5, octal escapes (\040) decoded
  std::string fs_type;      // after the " - " separator
  std::string source;       // the mount source ("/dev/vda2"), escapes decoded
};

// Lines that do not parse are skipped: mountinfo is the kernel's, not user input.
std::vector<MountEntry> ParseMountInfo(const std::string& text);

// The kernel's \ooo escapes in mountinfo paths (space, tab, newline, backslash), decoded.
std::string DecodeMountInfoPath(const std::string& field);

}  // namespace osu
