// zstd "patch-from" by the prefix API: each segment of the new image is one frame whose
// prefix is the whole base image; long-distance matching finds what moved far in it.
#include <zstd.h>

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
  ZstdSegmentEncoder(ZSTD_CCtx* c, std::span<const uint8_t> base, int window_log, int level)
      : cctx_(c), base_(base), window_log_(window_log), level_(level) {}

  Expected<std::vector<uint8_t>> Encode(std::span<const uint8_t> segment) override {
    ZSTD_CCtx* c = cctx_.get();
    (void)ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
    size_t r = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level_);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, window_log_);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_enableLongDistanceMatching, 1);
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
    // A prefix is used for one frame only: set again for every segment.
    if (!ZSTD_isError(r)) r = ZSTD_CCtx_refPrefix(c, base_.data(), base_.size());
    if (ZSTD_isError(r)) return DeviceError("Failed to configure the zstd patch encoder: " + Name(r));
    std::vector<uint8_t> frame(ZSTD_compressBound(segment.size()));
    r = ZSTD_compress2(c, frame.data(), frame.size(), segment.data(), segment.size());
    if (ZSTD_isError(r)) return DeviceError("zstd patch encoder failed: " + Name(r));
    frame.resize(r);
    return frame;
  }

 private:
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx_;
  std::span<const uint8_t> base_;
  int window_log_, level_;
};

class ZstdSegmentDecoder final : public SegmentDecoder {
 public:
  ZstdSegmentDecoder(ZSTD_DCtx* d, std::span<const uint8_t> base) : dctx_(d), base_(base) {}

  Result Decode(std::span<const uint8_t> frame, std::span<uint8_t> out) override {
    // Refuse before decoding what would not fit exactly: one frame, its size in the header.
    const size_t frame_size = ZSTD_findFrameCompressedSize(frame.data(), frame.size());
    if (ZSTD_isError(frame_size) || frame_size != frame.size()) {
      return VerificationError("not one complete zstd frame");
    }
    const unsigned long long content = ZSTD_getFrameContentSize(frame.data(), frame.size());
    if (content != out.size()) return VerificationError("zstd frame of another size");
    size_t r = ZSTD_DCtx_reset(dctx_.get(), ZSTD_reset_session_only);
    if (!ZSTD_isError(r)) r = ZSTD_DCtx_refPrefix(dctx_.get(), base_.data(), base_.size());
    if (ZSTD_isError(r)) return DeviceError("Failed to start the zstd patch decoder: " + Name(r));
    // Single-shot: the output buffer is the window, the prefix is read in place (mmap).
    r = ZSTD_decompressDCtx(dctx_.get(), out.data(), out.size(), frame.data(), frame.size());
    if (ZSTD_isError(r)) return VerificationError("corrupt zstd frame: " + Name(r));
    if (r != out.size()) return VerificationError("zstd frame of another size");
    return {};
  }

 private:
  std::unique_ptr<ZSTD_DCtx, DCtxFree> dctx_;
  std::span<const uint8_t> base_;
};

}  // namespace

Expected<std::unique_ptr<SegmentEncoder>> MakeSegmentEncoder(std::span<const uint8_t> base,
                                                             uint32_t segment_size, int level) {
  const ZSTD_bounds levels = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel);
  if (level < 1 || level > levels.upperBound) {
    return UsageError("zstd level " + std::to_string(level) + " is out of range 1-" +
                      std::to_string(levels.upperBound));
  }
  // The window must reach from a segment's end back to the start of the base.
  const ZSTD_bounds logs = ZSTD_cParam_getBounds(ZSTD_c_windowLog);
  int window_log = logs.lowerBound;
  while ((uint64_t{1} << window_log) < base.size() + segment_size) ++window_log;
  const int max_log = logs.upperBound;
  if (window_log > max_log) {
    return UsageError("base image of " + std::to_string(base.size()) +
                      " bytes is too large for a zstd window (at most 2^" +
                      std::to_string(max_log) + " bytes with the segment)");
  }
  ZSTD_CCtx* c = ZSTD_createCCtx();
  if (!c) return DeviceError("Failed to start the zstd patch encoder: out of memory");
  return std::unique_ptr<SegmentEncoder>(
      std::make_unique<ZstdSegmentEncoder>(c, base, window_log, level));
}

Expected<std::unique_ptr<SegmentDecoder>> MakeSegmentDecoder(std::span<const uint8_t> base) {
  ZSTD_DCtx* d = ZSTD_createDCtx();
  if (!d) return DeviceError("Failed to start the zstd patch decoder: out of memory");
  // Only the streaming decoder enforces this limit today; say so in case that changes.
  (void)ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax,
                               ZSTD_dParam_getBounds(ZSTD_d_windowLogMax).upperBound);
  return std::unique_ptr<SegmentDecoder>(std::make_unique<ZstdSegmentDecoder>(d, base));
}

size_t MaxFrameSize(size_t size) { return ZSTD_compressBound(size); }

}  // namespace osu::delta
