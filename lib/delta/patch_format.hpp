// The patch file's header (lib/delta/README.md): fixed fields, one entry per segment, then the
// signature over both. Internal to lib/delta.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace osu::delta {

inline constexpr char kMagic[8] = {'O', 'S', 'U', 'P', 'A', 'T', 'C', 'H'};
inline constexpr uint32_t kFormat = 1;
inline constexpr size_t kFixedSize = 8 + 4 + 4 + 8 + 64 + 8 + 64 + 4;
inline constexpr size_t kEntrySize = 4 + 64;
// A device holds one segment and one frame: this bounds what a header may ask of it.
inline constexpr uint32_t kMinSegment = 64u << 10, kMaxSegment = 32u << 20;
inline constexpr uint32_t kSignatureLimit = 16u << 10;

struct SegmentEntry {
  uint32_t frame_size = 0;
  std::string sha256;  // of the decoded segment, hex
};

struct PatchHeader {
  uint32_t segment_size = 0;
  uint64_t base_size = 0, target_size = 0;
  std::string base_sha256, target_sha256;  // hex
  std::vector<SegmentEntry> segments;

  // Bytes of segment i of the target image.
  uint32_t SegmentLength(size_t i) const;
};

uint64_t SegmentCount(uint64_t target_size, uint32_t segment_size);

// The fixed fields; entries are appended by SerializeEntries. Both are what is signed.
std::string SerializeFixed(const PatchHeader& h);
std::string SerializeEntries(const PatchHeader& h);

// Parses the fixed fields (magic, format, sizes, hashes; segments left empty, count returned).
// Errors are Verification errors without context.
Expected<PatchHeader> ParseFixed(const std::string& bytes, uint32_t* segment_count);
// Parses `count` entries; a frame larger than its segment can encode to is refused.
Result ParseEntries(const std::string& bytes, PatchHeader& h);

bool IsSha256Hex(const std::string& s);

}  // namespace osu::delta
