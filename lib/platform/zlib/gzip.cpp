// gzip with zlib: a streaming decoder (multi-member, as `gzip -dc` accepts) and an encoder.
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <memory>
#include <vector>

#include "compress/codecs.hpp"

namespace osu::codec {
namespace {

constexpr int kGzipWindowBits = 15 + 16;  // 32 KiB window, gzip header and trailer

std::string ZlibReason(const z_stream& z, int ret) {
  if (z.msg) return z.msg;
  return zError(ret);
}

class GzipDecoder final : public Reader {
 public:
  explicit GzipDecoder(Reader& compressed) : in_(compressed), buf_(kInputChunk) {}
  ~GzipDecoder() override {
    if (initialized_) inflateEnd(&z_);
  }
  GzipDecoder(const GzipDecoder&) = delete;
  GzipDecoder& operator=(const GzipDecoder&) = delete;

  Result Init() {
    int ret = inflateInit2(&z_, kGzipWindowBits);
    if (ret != Z_OK) {
      return DeviceError("Failed to start the gzip decoder: " + ZlibReason(z_, ret));
    }
    initialized_ = true;
    return {};
  }

  Expected<size_t> Read(std::span<uint8_t> out) override {
    size_t produced = 0;
    while (!done_ && produced < out.size()) {
      if (z_.avail_in == 0 && !eof_) {
        auto n = in_.Read(buf_);
        if (!n) return n.error();
        eof_ = *n == 0;
        z_.next_in = buf_.data();
        z_.avail_in = static_cast<uInt>(*n);
      }
      if (z_.avail_in == 0 && eof_) {
        // Input over: fine between members, a truncation inside one.
        if (!member_ended_) return VerificationError("gzip stream is truncated");
        done_ = true;
        break;
      }
      if (member_ended_) {  // more input after a member: the next member starts
        if (int r = inflateReset(&z_); r != Z_OK) {
          return DeviceError("Failed to reset the gzip decoder: " + ZlibReason(z_, r));
        }
        member_ended_ = false;
      }
      const uInt room = static_cast<uInt>(std::min<size_t>(out.size() - produced, UINT_MAX));
      z_.next_out = out.data() + produced;
      z_.avail_out = room;
      int ret = inflate(&z_, Z_NO_FLUSH);
      produced += room - z_.avail_out;
      if (ret == Z_STREAM_END) {
        member_ended_ = true;
      } else if (ret == Z_BUF_ERROR) {
        // No progress possible with what we gave it: only a refill helps (loop), or the
        // input is exhausted (handled above).
        if (z_.avail_in != 0) return VerificationError("corrupt gzip stream: no progress");
      } else if (ret != Z_OK) {
        return VerificationError("corrupt gzip stream: " + ZlibReason(z_, ret));
      }
    }
    return produced;
  }

 private:
  Reader& in_;
  std::vector<uint8_t> buf_;
  z_stream z_{};
  bool initialized_ = false, eof_ = false, done_ = false, member_ended_ = false;
};

struct DeflateEnd {
  void operator()(z_stream* z) const { deflateEnd(z); }
};

}  // namespace

Expected<std::unique_ptr<Reader>> MakeGzipDecoder(Reader& compressed) {
  auto decoder = std::make_unique<GzipDecoder>(compressed);
  if (auto r = decoder->Init(); !r) return r.error();
  return std::unique_ptr<Reader>(std::move(decoder));
}

Result GzipEncode(Reader& input, const ChunkSink& out, const EncodeOptions& options) {
  const int level = options.level < 0 ? Z_DEFAULT_COMPRESSION : options.level;
  if (level > 9) return UsageError("gzip level " + std::to_string(level) + " is out of range 0-9");
  z_stream z{};
  int ret = deflateInit2(&z, level, Z_DEFLATED, kGzipWindowBits, 8, Z_DEFAULT_STRATEGY);
  if (ret != Z_OK) return UsageError("Failed to start the gzip encoder: " + ZlibReason(z, ret));
  std::unique_ptr<z_stream, DeflateEnd> guard(&z);
  std::vector<uint8_t> in_buf(kInputChunk), out_buf(kInputChunk);
  for (;;) {
    auto n = input.Read(in_buf);
    if (!n) return n.error();
    const int flush = *n == 0 ? Z_FINISH : Z_NO_FLUSH;
    z.next_in = in_buf.data();
    z.avail_in = static_cast<uInt>(*n);
    do {
      z.next_out = out_buf.data();
      z.avail_out = static_cast<uInt>(out_buf.size());
      ret = deflate(&z, flush);
      if (ret == Z_STREAM_ERROR) return DeviceError("gzip encoder failed: " + ZlibReason(z, ret));
      const size_t produced = out_buf.size() - z.avail_out;
      if (produced > 0) {
        if (auto r = out(std::span<const uint8_t>(out_buf.data(), produced)); !r) return r;
      }
    } while (z.avail_out == 0);
    if (ret == Z_STREAM_END) return {};
  }
}

}  // namespace osu::codec
