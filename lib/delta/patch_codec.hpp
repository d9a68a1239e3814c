// Internal seam between lib/delta and libzstd (lib/platform/zstd/patch_codec.cpp): one frame
// per segment of the new image, the whole base image as its prefix. Not for use elsewhere.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/error.hpp"

namespace osu::delta {

class SegmentEncoder {
 public:
  virtual ~SegmentEncoder() = default;
  // One complete frame (content size in its header) for `segment`, matches from the base.
  virtual Expected<std::vector<uint8_t>> Encode(std::span<const uint8_t> segment) = 0;
};
// `base` must outlive the encoder. One encoder per thread.
Expected<std::unique_ptr<SegmentEncoder>> MakeSegmentEncoder(std::span<const uint8_t> base,
                                                             uint32_t segment_size, int level);

class SegmentDecoder {
 public:
  virtual ~SegmentDecoder() = default;
  // Decodes the single frame `frame` into `out`, which must fit it exactly; any other
  // content (corrupt, two frames, a size other than out.size()): Verification error.
  virtual Result Decode(std::span<const uint8_t> frame, std::span<uint8_t> out) = 0;
};
// `base` must outlive the decoder. Single-shot decoding: no window buffer is allocated.
Expected<std::unique_ptr<SegmentDecoder>> MakeSegmentDecoder(std::span<const uint8_t> base);

// The largest frame a segment of `size` bytes can encode to.
size_t MaxFrameSize(size_t size);

}  // namespace osu::delta
