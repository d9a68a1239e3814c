// A file as a signed manifest and a slot's record list it: name, size, sha256.
#pragma once

#include <cstdint>
#include <string>

namespace osu {

struct FileEntry {
  std::string name;    // tar member name; a plain file name for boot files (content_rules)
  uint64_t size = 0;   // bytes (the uncompressed size, for the image)
  std::string sha256;  // lower-case hex of those bytes
};

}  // namespace osu
