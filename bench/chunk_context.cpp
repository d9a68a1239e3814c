// osu-bench-chunk-context IMAGE WINDOW LEVEL [LIMIT]: what a partial-fetch bundle's image member
// would weigh if each chunk's zstd frame could refer to the WINDOW bytes of the image before it
// (a device rebuilds the image in order, so it holds them when it decodes a fetched chunk; the
// full path would decode frame by frame with that prefix). WINDOW 0 is today's format:
// independent frames. Chunks cut as create cuts them (delta/chunker.hpp). An experiment for
// the ext4 bundle's size (lib/delta/README.md), not a format os-update reads.
#include <zstd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "delta/chunker.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: osu-bench-chunk-context IMAGE WINDOW LEVEL [LIMIT]\n");
    return 2;
  }
  auto file = osu::ReadFile(argv[1]);
  if (!file) {
    std::fprintf(stderr, "osu-bench-chunk-context: %s\n", file.error().message().c_str());
    return 1;
  }
  std::string image = std::move(file).value();
  if (argc > 4) image.resize(std::min<size_t>(image.size(), std::strtoull(argv[4], nullptr, 0)));
  const size_t window = std::strtoull(argv[2], nullptr, 0);
  const int level = std::atoi(argv[3]);
  const osu::ChunkSizes sizes;
  ZSTD_CCtx* c = ZSTD_createCCtx();
  std::vector<char> out(ZSTD_compressBound(sizes.max));
  const auto* data = reinterpret_cast<const uint8_t*>(image.data());
  size_t total = 0, chunks = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t pos = 0; pos < image.size(); ++chunks) {
    const size_t cut = osu::NextCut(std::span(data + pos, image.size() - pos), sizes);
    ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
    ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(c, ZSTD_c_checksumFlag, 0);
    const size_t from = pos > window ? pos - window : 0;
    if (window && pos > from) ZSTD_CCtx_refPrefix(c, data + from, pos - from);
    const size_t n = ZSTD_compress2(c, out.data(), out.size(), data + pos, cut);
    if (ZSTD_isError(n)) {
      std::fprintf(stderr, "osu-bench-chunk-context: %s\n", ZSTD_getErrorName(n));
      return 1;
    }
    total += n;
    pos += cut;
  }
  ZSTD_freeCCtx(c);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("window %zu level %d: %zu chunks, %zu bytes of %zu (%.1f%%), %.1f s\n", window, level,
              chunks, total, image.size(), 100.0 * static_cast<double>(total) / static_cast<double>(image.size()), s);
  return 0;
}
