// zstd with libzstd: streaming decoder (concatenated frames) and a multi-threaded encoder.
#include <zdict.h>
#include <zstd.h>

#include <memory>
#include <vector>

#include "compress/codecs.hpp"

namespace osu::codec {
namespace {

struct DStreamFree {
  void operator()(ZSTD_DStream* d) const { ZSTD_freeDStream(d); }
};
struct CCtxFree {
  void operator()(ZSTD_CCtx* c) const { ZSTD_freeCCtx(c); }
};
struct DCtxFree {
  void operator()(ZSTD_DCtx* d) const { ZSTD_freeDCtx(d); }
};

class ZstdDecoder final : public Reader {
 public:
  ZstdDecoder(Reader& compressed, ZSTD_DStream* ds) : in_(compressed), ds_(ds), buf_(kInputChunk) {}

  Expected<size_t> Read(std::span<uint8_t> out) override {
    if (done_ || out.empty()) return size_t{0};
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    while (o.pos < o.size) {
      if (in_buf_.pos == in_buf_.size && !eof_) {
        auto n = in_.Read(buf_);
        if (!n) return n.error();
        eof_ = *n == 0;
        in_buf_ = ZSTD_inBuffer{buf_.data(), *n, 0};
      }
      const size_t in_before = in_buf_.pos, out_before = o.pos;
      const size_t ret = ZSTD_decompressStream(ds_.get(), &o, &in_buf_);
      if (ZSTD_isError(ret)) {
        return VerificationError(std::string("corrupt zstd stream: ") + ZSTD_getErrorName(ret));
      }
      const bool progress = in_buf_.pos != in_before || o.pos != out_before;
      // 0 = a frame is complete and flushed; only meaningful when the call did something
      // (an idle call after a frame reports the next frame's header size instead).
      if (progress) frame_complete_ = ret == 0, seen_input_ = true;
      if (eof_ && in_buf_.pos == in_buf_.size && !progress) {
        if (!frame_complete_ || !seen_input_) return VerificationError("zstd stream is truncated");
        done_ = true;
        break;
      }
    }
    return o.pos;
  }

 private:
  Reader& in_;
  std::unique_ptr<ZSTD_DStream, DStreamFree> ds_;
  std::vector<uint8_t> buf_;
  ZSTD_inBuffer in_buf_{nullptr, 0, 0};
  bool eof_ = false, done_ = false, frame_complete_ = false, seen_input_ = false;
};

}  // namespace

Expected<std::unique_ptr<Reader>> MakeZstdDecoder(Reader& compressed,
                                                  std::span<const uint8_t> dictionary) {
  ZSTD_DStream* ds = ZSTD_createDStream();
  if (!ds) return DeviceError("Failed to start the zstd decoder: out of memory");
  // Take ownership before anything can fail.
  auto decoder = std::make_unique<ZstdDecoder>(compressed, ds);
  size_t ret = ZSTD_initDStream(ds);
  if (ZSTD_isError(ret)) {
    return DeviceError(std::string("Failed to start the zstd decoder: ") + ZSTD_getErrorName(ret));
  }
  if (!dictionary.empty()) {
    ret = ZSTD_DCtx_loadDictionary(ds, dictionary.data(), dictionary.size());
    if (ZSTD_isError(ret))
      return VerificationError(std::string("bad zstd dictionary: ") + ZSTD_getErrorName(ret));
  }
  return std::unique_ptr<Reader>(std::move(decoder));
}

Result ZstdEncode(Reader& input, const ChunkSink& out, const EncodeOptions& options) {
  std::unique_ptr<ZSTD_CCtx, CCtxFree> cctx(ZSTD_createCCtx());
  if (!cctx) return DeviceError("Failed to start the zstd encoder: out of memory");
  const int level = options.level < 0 ? 3 : options.level;
  const ZSTD_bounds levels = ZSTD_cParam_getBounds(ZSTD_c_compressionLevel);
  if (level > levels.upperBound) {
    return UsageError("zstd level " + std::to_string(level) + " is out of range 1-" +
                      std::to_string(levels.upperBound));
  }
  auto set = [&](ZSTD_cParameter p, int v) { return ZSTD_CCtx_setParameter(cctx.get(), p, v); };
  size_t ret = set(ZSTD_c_compressionLevel, level);
  if (!ZSTD_isError(ret)) ret = set(ZSTD_c_checksumFlag, 1);
  if (ZSTD_isError(ret)) {
    return UsageError(std::string("Failed to configure the zstd encoder: ") +
                      ZSTD_getErrorName(ret));
  }
  const unsigned threads = options.threads == 0 ? OnlineCpus() : options.threads;
  // A libzstd built without threads refuses workers: it still compresses, on one core.
  (void)set(ZSTD_c_nbWorkers, static_cast<int>(threads));

  std::vector<uint8_t> in_buf(kInputChunk), out_buf(ZSTD_CStreamOutSize());
  for (;;) {
    auto n = input.Read(in_buf);
    if (!n) return n.error();
    const ZSTD_EndDirective mode = *n == 0 ? ZSTD_e_end : ZSTD_e_continue;
    ZSTD_inBuffer in{in_buf.data(), *n, 0};
    // Drain until this chunk is consumed (continue) or the frame is fully flushed (end).
    for (;;) {
      ZSTD_outBuffer o{out_buf.data(), out_buf.size(), 0};
      const size_t remaining = ZSTD_compressStream2(cctx.get(), &o, &in, mode);
      if (ZSTD_isError(remaining)) {
        return DeviceError(std::string("zstd encoder failed: ") + ZSTD_getErrorName(remaining));
      }
      if (o.pos > 0) {
        if (auto r = out(std::span<const uint8_t>(out_buf.data(), o.pos)); !r) return r;
      }
      if (mode == ZSTD_e_end ? remaining == 0 : in.pos == in.size) break;
    }
    if (mode == ZSTD_e_end) return {};
  }
}

}  // namespace osu::codec

namespace osu {

Expected<ZstdDictionary> ZstdDictionary::ForCompression(std::span<const uint8_t> bytes, int level) {
  ZstdDictionary d;
  d.cdict_ = std::shared_ptr<void>(ZSTD_createCDict(bytes.data(), bytes.size(), level < 0 ? 12 : level),
                                   [](void* p) { ZSTD_freeCDict(static_cast<ZSTD_CDict*>(p)); });
  if (!d.cdict_) return DeviceError("Failed to load the zstd dictionary for compression");
  return d;
}

Expected<ZstdDictionary> ZstdDictionary::ForDecoding(std::span<const uint8_t> bytes) {
  ZstdDictionary d;
  d.ddict_ = std::shared_ptr<void>(ZSTD_createDDict(bytes.data(), bytes.size()),
                                   [](void* p) { ZSTD_freeDDict(static_cast<ZSTD_DDict*>(p)); });
  if (!d.ddict_) return VerificationError("bad zstd dictionary");
  return d;
}

Expected<std::string> ZstdTrainDictionary(const std::string& samples,
                                          const std::vector<size_t>& sizes, size_t capacity) {
  std::string dict(capacity, '\0');
  const size_t n = ZDICT_trainFromBuffer(dict.data(), dict.size(), samples.data(), sizes.data(),
                                         static_cast<unsigned>(sizes.size()));
  if (ZDICT_isError(n))
    return UsageError(std::string("zstd dictionary training failed: ") + ZDICT_getErrorName(n));
  dict.resize(n);
  return dict;
}

Result ZstdCompressFrame(std::span<const uint8_t> data, int level, std::string& out,
                         const ZstdDictionary* dictionary, std::span<const uint8_t> prefix) {
  if (dictionary && !prefix.empty())
    return UsageError("a zstd frame is made with a dictionary or a prefix, not both");
  // One context per thread: chunks are compressed on all cores, each context reused.
  thread_local std::unique_ptr<ZSTD_CCtx, codec::CCtxFree> cctx(ZSTD_createCCtx());
  if (!cctx) return DeviceError("Failed to start the zstd encoder: out of memory");
  out.resize(ZSTD_compressBound(data.size()));
  size_t n;
  if (dictionary) {
    n = ZSTD_compress_usingCDict(cctx.get(), out.data(), out.size(), data.data(), data.size(),
                                 static_cast<const ZSTD_CDict*>(dictionary->compress_handle()));
  } else if (!prefix.empty()) {
    // The prefix holds for this frame only (zstd drops it after one), parameters are reset.
    n = ZSTD_CCtx_reset(cctx.get(), ZSTD_reset_session_and_parameters);
    if (!ZSTD_isError(n))
      n = ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, level < 0 ? 12 : level);
    if (!ZSTD_isError(n)) n = ZSTD_CCtx_refPrefix(cctx.get(), prefix.data(), prefix.size());
    if (!ZSTD_isError(n)) n = ZSTD_compress2(cctx.get(), out.data(), out.size(), data.data(), data.size());
  } else {
    n = ZSTD_compressCCtx(cctx.get(), out.data(), out.size(), data.data(), data.size(),
                          level < 0 ? 12 : level);
  }
  if (ZSTD_isError(n)) return DeviceError(std::string("zstd encoder failed: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return {};
}

Result ZstdDecompressFrame(std::span<const uint8_t> frame, std::span<uint8_t> out,
                           const ZstdDictionary* dictionary, std::span<const uint8_t> prefix) {
  if (dictionary && !prefix.empty())
    return UsageError("a zstd frame is decoded with a dictionary or a prefix, not both");
  thread_local std::unique_ptr<ZSTD_DCtx, codec::DCtxFree> dctx(ZSTD_createDCtx());
  if (!dctx) return DeviceError("Failed to start the zstd decoder: out of memory");
  size_t n;
  if (dictionary) {
    n = ZSTD_decompress_usingDDict(dctx.get(), out.data(), out.size(), frame.data(), frame.size(),
                                   static_cast<const ZSTD_DDict*>(dictionary->decode_handle()));
  } else {
    // Single-shot: the output buffer is the window and the prefix is read in place (by
    // reference, for this frame only), so decoding allocates nothing per frame.
    n = ZSTD_DCtx_reset(dctx.get(), ZSTD_reset_session_and_parameters);
    if (!ZSTD_isError(n) && !prefix.empty())
      n = ZSTD_DCtx_refPrefix(dctx.get(), prefix.data(), prefix.size());
    if (!ZSTD_isError(n))
      n = ZSTD_decompressDCtx(dctx.get(), out.data(), out.size(), frame.data(), frame.size());
  }
  if (ZSTD_isError(n)) return VerificationError(std::string("corrupt zstd frame: ") + ZSTD_getErrorName(n));
  if (n != out.size())
    return VerificationError("zstd frame decodes to " + std::to_string(n) + " bytes, expected " +
                             std::to_string(out.size()));
  return {};
}

}  // namespace osu
