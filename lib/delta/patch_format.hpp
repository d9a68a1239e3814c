// The patch file's header (lib/delta/README.md): fixed fields, one entry per segment, in
// format 2 the segments' block records, then the signature over all of it. Internal to
// lib/delta.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace osu::delta {

inline constexpr char kMagic[8] = {'O', 'S', 'U', 'P', 'A', 'T', 'C', 'H'};
// 1: segments of the new image, each decoded against the base image.
// 2: segments may hold blocks to compress again (a squashfs's zstd blocks that changed): the
//    frame decodes to the segment with those blocks uncompressed, against the base image
//    after decoded blocks of the base.
inline constexpr uint32_t kFormat = 1, kFormatBlocks = 2;
inline constexpr size_t kFixedSize = 8 + 4 + 4 + 8 + 64 + 8 + 64 + 4;
inline constexpr size_t kEntrySize = 4 + 64;
inline constexpr size_t kEntrySize2 = 4 + 4 + 4 + 4 + 4 + 64;
inline constexpr size_t kRecordSize = 16;
// A device holds two segments and a frame: this bounds what a header may ask of it.
inline constexpr uint32_t kMinSegment = 64u << 10, kMaxSegment = 32u << 20;
inline constexpr uint32_t kSignatureLimit = 16u << 10;
// Format 2: a block decodes to at most 4 MiB (squashfs: 1 MiB); a segment's decoded base
// blocks (held before the base as its prefix) add up to at most 16 MiB; records at most 16 MiB.
inline constexpr uint32_t kMaxBlock = 4u << 20, kMaxBasePrefix = 16u << 20;
inline constexpr uint64_t kMaxRecordBytes = 16u << 20;

// A block of the base image decoded in front of it, for a segment's frame to copy from.
struct BaseBlock {
  uint64_t offset = 0;         // in the base image
  uint32_t size = 0;           // compressed
  uint32_t content_size = 0;   // decoded
};
// A block of the new image that the segment's frame holds uncompressed, at `offset` of the
// decoded frame; compressed again at `level` it must be `size` bytes (and the segment's hash
// says which).
struct Recompress {
  uint32_t offset = 0;
  uint32_t content_size = 0;
  uint32_t size = 0;
  int32_t level = 0;
};

struct SegmentEntry {
  uint32_t frame_size = 0;
  std::string sha256;           // of the segment of the new image, hex
  uint32_t length = 0;          // bytes of the new image
  uint32_t decoded_length = 0;  // bytes the frame decodes to (= length in format 1)
  std::vector<BaseBlock> base_blocks;
  std::vector<Recompress> blocks;
};

struct PatchHeader {
  uint32_t format = kFormat;
  uint32_t segment_size = 0;  // format 1: bytes of new image per segment; 2: most a frame decodes to
  uint64_t base_size = 0, target_size = 0;
  std::string base_sha256, target_sha256;  // hex
  std::vector<SegmentEntry> segments;

  // Format 1: bytes of segment i of the target image.
  uint32_t SegmentLength(size_t i) const;
};

uint64_t SegmentCount(uint64_t target_size, uint32_t segment_size);

// The fixed fields; then the entries and (format 2) the records. All three are what is signed.
std::string SerializeFixed(const PatchHeader& h);
std::string SerializeEntries(const PatchHeader& h);
std::string SerializeRecords(const PatchHeader& h);

// Parses the fixed fields (magic, format, sizes, hashes; segments left empty, count returned).
// Errors are Verification errors without context.
Expected<PatchHeader> ParseFixed(const std::string& bytes, uint32_t* segment_count);
size_t EntrySize(const PatchHeader& h);
// Parses the entries (EntrySize each): a frame larger than its segment can encode to, or
// segments that do not add up to the target, are refused.
Result ParseEntries(const std::string& bytes, PatchHeader& h);
// Format 2: the bytes of records the parsed entries announce (0 in format 1; ParseEntries
// refused more than kMaxRecordBytes).
uint64_t RecordBytes(const PatchHeader& h);
// Format 2: fills every segment's records and checks them against the segment and the base.
Result ParseRecords(const std::string& bytes, PatchHeader& h);

bool IsSha256Hex(const std::string& s);

}  // namespace osu::delta
