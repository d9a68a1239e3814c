#include "compress/compression.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "common/fd.hpp"
#include "compress/codecs.hpp"

namespace osu {
namespace codec {
namespace {

// "none": the image is stored as is; forwarding keeps the one data path for every codec.
class PassthroughDecoder final : public Reader {
 public:
  explicit PassthroughDecoder(Reader& inner) : inner_(inner) {}
  Expected<size_t> Read(std::span<uint8_t> buf) override { return inner_.Read(buf); }

 private:
  Reader& inner_;
};

}  // namespace

std::unique_ptr<Reader> MakePassthroughDecoder(Reader& compressed) {
  return std::make_unique<PassthroughDecoder>(compressed);
}

unsigned OnlineCpus() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<unsigned>(n) : 1u;
}

}  // namespace codec

Expected<Compression> ParseCompression(const std::string& name) {
  if (name == "none") return Compression::None;
  if (name == "xz") return Compression::Xz;
  if (name == "zstd") return Compression::Zstd;
  if (name == "gzip") return Compression::Gzip;
  return VerificationError("Unknown image compression '" + name +
                           "' (expected none, xz, zstd or gzip)");
}

std::string CompressionName(Compression c) {
  switch (c) {
    case Compression::None: return "none";
    case Compression::Xz: return "xz";
    case Compression::Zstd: return "zstd";
    case Compression::Gzip: return "gzip";
  }
  return "unknown";
}

Expected<std::unique_ptr<Reader>> MakeDecoder(Compression c, Reader& compressed,
                                              unsigned threads,
                                              std::span<const uint8_t> dictionary) {
  switch (c) {
    case Compression::None: return codec::MakePassthroughDecoder(compressed);
    case Compression::Xz: return codec::MakeXzDecoder(compressed, threads);
    case Compression::Zstd: return codec::MakeZstdDecoder(compressed, dictionary);
    case Compression::Gzip: return codec::MakeGzipDecoder(compressed);
  }
  return UsageError("Unknown compression");
}

namespace {

Result Encode(Compression c, int in_fd, const std::string& input, int out,
              const std::string& output, const EncodeOptions& options) {
  auto reader = MakeFdReader(in_fd, false, "'" + input + "'");
  const std::string out_name = "'" + output + "'";
  codec::ChunkSink sink = [out, &out_name](std::span<const uint8_t> chunk) {
    return WriteAll(out, chunk, out_name);
  };
  Result r;
  switch (c) {
    case Compression::None: {
      std::vector<uint8_t> buf(codec::kInputChunk);
      for (;;) {
        auto n = reader->Read(buf);
        if (!n) return n.error();
        if (*n == 0) break;
        if (r = sink(std::span<const uint8_t>(buf.data(), *n)); !r) return r;
      }
      break;
    }
    case Compression::Xz: r = codec::XzEncode(*reader, sink, options); break;
    case Compression::Zstd: r = codec::ZstdEncode(*reader, sink, options); break;
    case Compression::Gzip: r = codec::GzipEncode(*reader, sink, options); break;
  }
  if (!r) return r.error().Context("Failed to compress '" + input + "' with " + CompressionName(c));
  if (::fsync(out) != 0) return ErrnoError("Failed to fsync " + out_name);
  return {};
}

}  // namespace

Result CompressFile(Compression c, const std::string& input, const std::string& output,
                    const EncodeOptions& options) {
  auto in_fd = Fd::Open(input, O_RDONLY);
  if (!in_fd) return in_fd.error();
  // Truncating the output must never destroy the input (same file under another name).
  struct stat in_st {}, out_st {};
  if (::fstat(in_fd->get(), &in_st) == 0 && ::stat(output.c_str(), &out_st) == 0 &&
      in_st.st_dev == out_st.st_dev && in_st.st_ino == out_st.st_ino) {
    return UsageError("Refusing to compress '" + input + "' onto itself ('" + output + "')");
  }
  auto out_fd = Fd::Open(output, O_WRONLY | O_CREAT | O_TRUNC);
  if (!out_fd) return out_fd.error();
  Result r = Encode(c, in_fd->get(), input, out_fd->get(), output, options);
  if (!r) ::unlink(output.c_str());  // a partial file must not pass for a compressed image
  return r;
}

}  // namespace osu
