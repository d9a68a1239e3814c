// zstd "patch-from" by the prefix API: each segment of the new image is one frame whose
// prefix is the whole base image (after the decoded base blocks the segment asks for);
// long-distance matching finds what moved far in it. And the frames inside images.
#include <zstd.h>

#include <cstring>
#include <string>

#include "delta/patch_codec.hpp"

namespace osu::delta {
namespace {

struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

std::string Name(size_t code) { return ZSTD_getErrorName(code); }

class ZstdSegmentEncoder final : public SegmentEncoder {
 public:
  ZstdSegmentEncoder(ZSTD_CCtx* c, uint64_t max_prefix, int window_log, int level)
      : cctx_(c), max_prefix_(max_prefix), window_log_(window_log), level_(level) {}

  Expected<std::vector<uint8_t>> Encode(std::span<const uint8_t> prefix,
                                        std::span<const uint8_t> segment) override {
    if (prefix.size() > max_prefix_) return UsageError("zstd patch prefix larger than planned");
    ZSTD_CCtx* c = cctx_.get();
    (void)ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
    size_t r = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level_);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, window_log_);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_enableLongDistanceMatching, 1);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
    // A prefix is used for one frame only: set again for every segment.
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_refPrefix(c, prefix.data(), prefix.size());
    if (ZSTD_isError(r)) return DeviceError("Failed to configure the zstd patch encoder: " + Name(r));
    std::vector<uint8_t> frame(ZSTD_compressBound(segment.size()));
    r = ZSTD_compress2(c, frame.data(), frame.size(), segment.data(), segment.size());
    if (ZSTD_isError(r)) return DeviceError("zstd patch encoder failed: " + Name(r));
    frame.resize(r);
    return frame;
  }

 private:
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx_;
  uint64_t max_prefix_;
  int window_log_, level_;
};

class ZstdSegmentDecoder final : public SegmentDecoder {
 public:
  explicit ZstdSegmentDecoder(ZSTD_DCtx* d) : dctx_(d) {}

  Result Decode(std::span<const uint8_t> prefix, std::span<const uint8_t> frame,
                std::span<uint8_t> out) override {
    // Refuse before decoding what would not fit exactly: one frame, its size in the header.
    const size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
    if (ZSTD_isError(frame_size) || frame_size != frame.size()) {
      return VerificationError("not one complete zstd frame");
    }
    const unsigned long long content = ZSTD_getFrameContentSize(frame.data(), frame.size());
    if (content != out.size()) return VerificationError("zstd frame of another size");
    size_t r = ZSTD_DCtx_reset(dctx_.get(), ZSTD_reset_session_only);
    if (!ZSTD_isError(r)) r = ZSTD_DCtx_refPrefix(dctx_.get(), prefix.data(), prefix.size());
    if (ZSTD_isError(r)) return DeviceError("Failed to start the zstd patch decoder: " + Name(r));
    // Single-shot: the output buffer is the window, the prefix is read in place (mmap).
    r = ZSTD_decompressDCtx(dctx_.get(), out.data(), out.size(), frame.data(), frame.size());
    if (ZSTD_isError(r)) return VerificationError("corrupt zstd frame: " + Name(r));
    if (r != out.size()) return VerificationError("zstd frame of another size");
    return {};
  }

 private:
  std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx_;
};

class ZstdFrameCompressor final : public FrameCompressor {
 public:
  explicit ZstdFrameCompressor(ZSTD_CCtx* c) : cctx_(c) {}
  Expected<size_t> Compress(std::span<const uint8_t> raw, int level,
                            std::span<uint8_t> out) override {
    // The simple API, as mksquashfs calls it: its defaults are what made the block.
    const size_t r = ZSTD_compressCCtx(cctx_.get(), out.data(), out.size(), raw.data(),
                                       raw.size(), level);
    if (ZSTD_isError(r)) return VerificationError("zstd block compression failed: " + Name(r));
    return r;
  }

 private:
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx_;
};

}  // namespace

Expected<std::unique_ptr<SegmentEncoder>> MakeSegmentEncoder(uint64_t max_prefix,
                                                             uint32_t segment_size, int level) {
  const ZSTD_bounds levels = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel);
  if (level < 1 || level > levels.upperBound) {
    return UsageError("zstd level " + std::to_string(level) + " is out of range 1-" +
                      std::to_string(levels.upperBound));
  }
  // The window must reach from a segment's end back to the start of the base.
  const ZSTD_bounds logs = ZSTD_cParam_getBounds(ZSTD_c_windowLog);
  int window_log = logs.lowerBound;
  while ((uint64_t{1} << window_log) < max_prefix + segment_size) ++window_log;
  const int max_log = logs.upperBound;
  if (window_log > max_log) {
    return UsageError("base image of " + std::to_string(max_prefix) +
                      " bytes is too large for a zstd window (at most 2^" +
                      std::to_string(max_log) + " bytes with the segment)");
  }
  ZSTD_CCtx* c = ZSTD_createCCtx();
  if (!c) return DeviceError("Failed to start the zstd patch encoder: out of memory");
  return std::unique_ptr<SegmentEncoder>(
      std::make_unique<ZstdSegmentEncoder>(c, max_prefix, window_log, level));
}

Expected<std::unique_ptr<SegmentDecoder>> MakeSegmentDecoder() {
  ZSTD_DCtx* d = ZSTD_createDCtx();
  if (!d) return DeviceError("Failed to start the zstd patch decoder: out of memory");
  // Only the streaming decoder enforces this limit today; say so in case that changes.
  (void)ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax,
                               ZSTD_dParam_getBounds(ZSTD_d_windowLogMax).upperBound);
  return std::unique_ptr<SegmentDecoder>(std::make_unique<ZstdSegmentDecoder>(d));
}

size_t MaxFrameSize(size_t size) { return ZSTD_compressBound(size); }

std::optional<EmbeddedFrame> ProbeFrame(std::span<const uint8_t> data, uint32_t max_content) {
  static constexpr uint8_t kFrameMagic[4] = {0x28, 0xb5, 0x2f, 0xfd};
  if (data.size() < 4 || std::memcmp(data.data(), kFrameMagic, 4) != 0) return std::nullopt;
  const unsigned long long content = ZSTD_getFrameContentSize(data.data(), data.size());
  if (content == ZSTD_CONTENTSIZE_UNKNOWN || content == ZSTD_CONTENTSIZE_ERROR || content == 0 ||
      content > max_content) {
    return std::nullopt;
  }
  const size_t size = ZSTD_findFrameCompressedSize(data.data(), data.size());
  if (ZSTD_isError(size) || size > UINT32_MAX) return std::nullopt;
  // Frame_Header_Descriptor (RFC 8878 3.1.1.1.1), after the magic: bit 2 is the checksum flag.
  return EmbeddedFrame{static_cast<uint32_t>(size), static_cast<uint32_t>(content),
                       (data[4] & 0x04) != 0};
}

Result DecodeFrame(std::span<const uint8_t> frame, std::span<uint8_t> out) {
  const size_t r = ZSTD_decompress(out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(r)) return VerificationError("corrupt zstd block: " + Name(r));
  if (r != out.size()) return VerificationError("zstd block of another size");
  return {};
}

Expected<std::unique_ptr<FrameCompressor>> MakeFrameCompressor() {
  ZSTD_CCtx* c = ZSTD_createCCtx();
  if (!c) return DeviceError("Failed to start the zstd block compressor: out of memory");
  return std::unique_ptr<FrameCompressor>(std::make_unique<ZstdFrameCompressor>(c));
}

int MaxFrameLevel() { return ZSTD_maxCLevel(); }

}  // namespace osu::delta
