// Build side of patch format 2: the zstd blocks inside images (a squashfs compresses every
// data and fragment block on its own). A byte-level patch cannot reuse a block whose file
// changed: its compressed bytes are new from the first change on. Format 2 carries such a
// block uncompressed, patched against the decoded blocks of the base that hold the same
// content, and the device compresses it again; that gives back the same bytes only with the
// same zstd (level, parameters and version), so a block goes this way only if compressing
// its content reproduces it here, and the segment's sha256 catches a device that differs.
// Measured and explained in lib/delta/README.md ("Format 2").
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "delta/patch_format.hpp"

namespace osu::delta {

struct ImageBlock {
  uint64_t offset = 0;
  uint32_t size = 0;
  uint32_t content_size = 0;
  int level = 0;  // the level that reproduces it (changed blocks only)
  bool checksum = false;
};

// Every zstd frame in `image` whose header states its content size (at most kMaxBlock).
std::vector<ImageBlock> FindBlocks(std::span<const uint8_t> image);

// The frames of `target` that are not in `base` byte for byte and that compressing their
// content again reproduces, at the level found for each (on `threads` threads).
std::vector<ImageBlock> FindChangedBlocks(std::span<const uint8_t> target,
                                          const std::vector<ImageBlock>& base_blocks,
                                          std::span<const uint8_t> base, unsigned threads);

// The target cut into segments that decode to at most `segment_size` bytes, at block
// boundaries, each with the base blocks its changed blocks most resemble (found by sampled
// content anchors), at most kMaxBasePrefix decoded bytes of them per segment. A changed block
// that resembles none stays as it is (compressed), as do the bytes between blocks. With
// `recompress_share` < 1, at most that share of the content of the blocks that resemble some
// is left for the device to compress again: the blocks cheapest to carry as they are (fewest
// patch bytes per byte of content saved) stay compressed first.
struct SegmentPlan {
  uint64_t offset = 0;  // in the target
  SegmentEntry entry;   // length, decoded_length, base_blocks, blocks (frame and hash unset)
};
std::vector<SegmentPlan> PlanSegments(std::span<const uint8_t> base,
                                      const std::vector<ImageBlock>& base_blocks,
                                      std::span<const uint8_t> target,
                                      const std::vector<ImageBlock>& changed,
                                      uint32_t segment_size, double recompress_share = 1.0);

// Decodes segment `plan` of `target` (changed blocks uncompressed) into `out` (its
// decoded_length bytes).
Result DecodeSegment(std::span<const uint8_t> target, const SegmentPlan& plan,
                     std::span<uint8_t> out);

// Decodes `blocks` of `base` one after the other into `out` (their content sizes summed).
Result DecodeBaseBlocks(std::span<const uint8_t> base, const std::vector<BaseBlock>& blocks,
                        std::span<uint8_t> out);
uint64_t DecodedSize(const std::vector<BaseBlock>& blocks);

}  // namespace osu::delta
