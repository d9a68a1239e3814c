// Internal seam between lib/delta and libzstd (lib/platform/zstd/patch_codec.cpp): one frame
// per segment of the new image, with a prefix (the whole base image, after the decoded base
// blocks a segment asks for) it may copy from. Not for use elsewhere.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/error.hpp"

namespace osu::delta {

class SegmentEncoder {
 public:
  virtual ~SegmentEncoder() = default;
  // One complete frame (content size in its header) for `segment`, matches from `prefix`
  // (at most the max_prefix bytes given at creation).
  virtual Expected<std::vector<uint8_t>> Encode(std::span<const uint8_t> prefix,
                                                std::span<const uint8_t> segment) = 0;
};
// One encoder per thread. The window reaches from a segment's end to a prefix's start.
Expected<std::unique_ptr<SegmentEncoder>> MakeSegmentEncoder(uint64_t max_prefix,
                                                             uint32_t segment_size, int level);

class SegmentDecoder {
 public:
  virtual ~SegmentDecoder() = default;
  // Decodes the single frame `frame` into `out`, which must fit it exactly, with `prefix`;
  // any other content (corrupt, two frames, a size other than out.size()): Verification error.
  virtual Result Decode(std::span<const uint8_t> prefix, std::span<const uint8_t> frame,
                        std::span<uint8_t> out) = 0;
};
// Single-shot decoding: no window buffer is allocated, the prefix is read in place.
Expected<std::unique_ptr<SegmentDecoder>> MakeSegmentDecoder();

// The largest frame a segment of `size` bytes can encode to.
size_t MaxFrameSize(size_t size);

// zstd frames inside an image (a squashfs's data and fragment blocks): found, decoded, and
// made again, so that a patch can describe a changed block by its uncompressed bytes.
struct EmbeddedFrame {
  uint32_t size = 0;          // compressed bytes
  uint32_t content_size = 0;  // decoded bytes, from the frame header
  bool checksum = false;      // has a content checksum (ZSTD_compressCCtx's frames have none)
};
// The zstd frame that starts at data[0], if one does whose header states a content size of
// 1 to max_content bytes and whose blocks are all within `data`.
std::optional<EmbeddedFrame> ProbeFrame(std::span<const uint8_t> data, uint32_t max_content);
// Decodes one whole frame into `out` (exactly its size): Verification error otherwise.
Result DecodeFrame(std::span<const uint8_t> frame, std::span<uint8_t> out);
// Compresses `raw` as ZSTD_compressCCtx does at `level` (how mksquashfs makes its blocks) into
// `out`; the frame's size, or an error when it does not fit. Same bytes on the same zstd.
class FrameCompressor {
 public:
  virtual ~FrameCompressor() = default;
  virtual Expected<size_t> Compress(std::span<const uint8_t> raw, int level,
                                    std::span<uint8_t> out) = 0;
};
Expected<std::unique_ptr<FrameCompressor>> MakeFrameCompressor();
// The zstd levels ProbeFrame's frames may have been made at: 1 to this.
int MaxFrameLevel();

}  // namespace osu::delta
