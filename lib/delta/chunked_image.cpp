#include "delta/chunked_image.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "common/text.hpp"

namespace osu {
namespace {

// Chunks compressed together before their frames are written: ~16 MiB of input in flight.
constexpr size_t kBatch = 1024;

Result WriteAll(int fd, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("Failed to write " + InQuotes(path));
    done += static_cast<size_t>(n);
  }
  return {};
}

}  // namespace

Expected<ChunkIndex> WriteChunkedImage(const std::string& image, const std::string& output,
                                       const EncodeOptions& options, const ChunkSizes& sizes) {
  auto in = Fd::Open(image, O_RDONLY);
  if (!in) return UsageError(in.error().message());
  const off_t end = ::lseek(in->get(), 0, SEEK_END);
  if (end < 0 || ::lseek(in->get(), 0, SEEK_SET) < 0)
    return ErrnoError("Failed to seek in " + InQuotes(image));
  auto out = Fd::Open(output, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (!out) return out.error();
  auto reader = MakeFdReader(in->Release(), true, InQuotes(image));

  const unsigned threads = options.threads == 0
                               ? std::max(1u, std::thread::hardware_concurrency())
                               : options.threads;
  ChunkIndex index;
  index.sizes = sizes;
  std::vector<std::vector<uint8_t>> batch;
  std::vector<std::string> frames;
  uint64_t compressed = 0;

  auto flush = [&]() -> Result {
    frames.assign(batch.size(), {});
    std::vector<Result> results(threads);
    std::atomic<size_t> next{0};
    auto work = [&](unsigned t) {
      for (size_t i; (i = next++) < batch.size();) {
        if (auto r = ZstdCompressFrame(batch[i], options.level, frames[i]); !r) {
          results[t] = r;
          return;
        }
      }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& th : pool) th.join();
    for (auto& r : results)
      if (!r) return r;
    for (size_t i = 0; i < batch.size(); ++i) {
      ChunkEntry& e = index.chunks[index.chunks.size() - batch.size() + i];
      e.compressed_size = static_cast<uint32_t>(frames[i].size());
      e.compressed_offset = compressed;
      compressed += frames[i].size();
      if (auto r = WriteAll(out->get(), frames[i], output); !r) return r;
    }
    batch.clear();
    return {};
  };

  auto r = ForEachChunk(*reader, static_cast<uint64_t>(end), sizes,
                        [&](uint64_t offset, std::span<const uint8_t> data) -> Result {
                          ChunkEntry e;
                          e.offset = offset;
                          e.size = static_cast<uint32_t>(data.size());
                          e.sha256 = DigestOf(data);
                          index.chunks.push_back(e);
                          batch.emplace_back(data.begin(), data.end());
                          return batch.size() == kBatch ? flush() : Result{};
                        });
  if (!r) return r.error();
  if (auto f = flush(); !f) return f.error();
  if (::fsync(out->get()) != 0) return ErrnoError("Failed to fsync " + InQuotes(output));
  index.image_size = static_cast<uint64_t>(end);
  index.compressed_size = compressed;
  return index;
}

}  // namespace osu
