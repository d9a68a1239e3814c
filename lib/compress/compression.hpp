// Root image compression: decoders as pull readers, encoders for bundle creation.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "io/stream.hpp"

namespace osu {

enum class Compression { None, Xz, Zstd, Gzip };

// "none", "xz", "zstd", "gzip". Unknown name: Verification error (it comes from a manifest)
// naming the value.
Expected<Compression> ParseCompression(const std::string& name);
std::string CompressionName(Compression c);

// Wraps `compressed` (not owned, must outlive the decoder). `threads` is the number of
// decoder threads for multi-block xz (0 = number of online CPUs). A corrupt or truncated
// stream is a Verification error: "corrupt xz stream in image member: ...". `dictionary`:
// zstd only, the bundle's dictionary member (frames made with one need it); empty for none.
Expected<std::unique_ptr<Reader>> MakeDecoder(Compression c, Reader& compressed, unsigned threads,
                                              std::span<const uint8_t> dictionary = {});

// Compresses the file `input` into `output` (created/truncated). xz is multi-block
// (block size `xz_block_size`, default 16 MiB) so that devices decode it on all cores;
// threads 0 = all online CPUs. `level` -1 = the codec's default.
struct EncodeOptions {
  unsigned threads = 0;
  int level = -1;
  uint64_t xz_block_size = 16u << 20;
};
Result CompressFile(Compression c, const std::string& input, const std::string& output,
                    const EncodeOptions& options);

// A zstd dictionary loaded once and shared by threads: for compressing at one level, or for
// decoding. Frames made with it name its id and decode only with it.
class ZstdDictionary {
 public:
  static Expected<ZstdDictionary> ForCompression(std::span<const uint8_t> bytes, int level);
  static Expected<ZstdDictionary> ForDecoding(std::span<const uint8_t> bytes);
  const void* compress_handle() const { return cdict_.get(); }
  const void* decode_handle() const { return ddict_.get(); }

 private:
  std::shared_ptr<void> cdict_, ddict_;
};

// Trains a dictionary of at most `capacity` bytes from `samples` (concatenated, `sizes` each).
// Fails (a Usage error saying why) when zstd finds too little to learn from.
Expected<std::string> ZstdTrainDictionary(const std::string& samples,
                                          const std::vector<size_t>& sizes, size_t capacity);

// One chunk of a partial-fetch bundle as one zstd frame. Level -1 = 12: on a 96 MiB ext4 of
// /usr/share/doc, 19 made a 0.6% smaller bundle in 8 times the time (41 s against 5 s).
// `out` is replaced. With a dictionary, its level is used. `prefix`: bytes the frame may refer
// to as if they preceded it (ZSTD_CCtx_refPrefix; format 4 gives each chunk the image bytes
// before it); a frame made with a prefix decodes only with the same one. Not with a dictionary.
Result ZstdCompressFrame(std::span<const uint8_t> data, int level, std::string& out,
                         const ZstdDictionary* dictionary = nullptr,
                         std::span<const uint8_t> prefix = {});
// Decodes exactly one zstd frame into `out`, which must be exactly its size: a frame that
// decodes to any other length, or corrupt input, is a Verification error. `prefix`: the one
// the frame was made with (a wrong one decodes to other bytes or fails).
Result ZstdDecompressFrame(std::span<const uint8_t> frame, std::span<uint8_t> out,
                           const ZstdDictionary* dictionary = nullptr,
                           std::span<const uint8_t> prefix = {});

}  // namespace osu
