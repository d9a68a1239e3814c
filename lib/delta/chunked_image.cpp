#include "delta/chunked_image.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "common/text.hpp"

namespace osu {
namespace {

// Chunks compressed together before their frames are written: ~16 MiB of input in flight.
constexpr size_t kBatch = 1024;
// Dictionary training input at most: 64 MiB of chunks.
constexpr uint64_t kSampleBudget = 64u << 20;

// A dictionary from every k-th chunk that is not all zeros, k chosen so that the samples
// stay near kSampleBudget: zstd asks for about 100 times the dictionary's size. Empty when
// zstd cannot train one.
template <typename ChunksOf>
Expected<std::string> TrainDictionary(const ChunksOf& chunks_of, uint64_t length, size_t capacity) {
  const uint64_t budget = std::min<uint64_t>(kSampleBudget, uint64_t{capacity} * 100);
  const uint64_t every = std::max<uint64_t>(1, length / budget);
  std::string samples;
  std::vector<size_t> sizes;
  uint64_t n = 0;
  auto r = chunks_of([&](uint64_t, std::span<const uint8_t> data) -> Result {
    if (n++ % every != 0) return {};
    if (std::all_of(data.begin(), data.end(), [](uint8_t b) { return b == 0; })) return {};
    samples.append(reinterpret_cast<const char*>(data.data()), data.size());
    sizes.push_back(data.size());
    return {};
  });
  if (!r) return r.error();
  auto dict = ZstdTrainDictionary(samples, sizes, capacity);
  if (!dict) return std::string();
  return dict;
}

}  // namespace

Expected<ChunkedImage> WriteChunkedImage(const std::string& image, const std::string& output,
                                         const EncodeOptions& base_options, const ChunkSizes& sizes,
                                         size_t dictionary_size, uint32_t window) {
  if (window > kMaxChunkWindow)
    return UsageError("--chunk-window must be at most " + std::to_string(kMaxChunkWindow));
  if (window > 0 && dictionary_size > 0)
    return UsageError("a dictionary and a chunk window do not combine (use --chunk-window 0)");
  const EncodeOptions options =
      window > 0 && base_options.level < 0
          ? EncodeOptions{base_options.threads, kWindowedChunkLevel, base_options.xz_block_size}
          : base_options;
  auto in = Fd::Open(image, O_RDONLY);
  if (!in) return UsageError(in.error().message());
  const off_t end = ::lseek(in->get(), 0, SEEK_END);
  if (end < 0) return ErrnoError("Failed to seek in " + InQuotes(image));
  const uint64_t length = static_cast<uint64_t>(end);
  auto chunks_of = [&](const std::function<Result(uint64_t, std::span<const uint8_t>)>& each)
      -> Result {
    if (::lseek(in->get(), 0, SEEK_SET) < 0) return ErrnoError("Failed to seek in " + InQuotes(image));
    auto reader = MakeFdReader(in->get(), false, InQuotes(image));
    return ForEachChunk(*reader, length, sizes, each);
  };

  ChunkedImage result;
  std::optional<ZstdDictionary> dictionary;
  if (dictionary_size > 0) {
    auto trained = TrainDictionary(chunks_of, length, dictionary_size);
    if (!trained) return trained.error();
    if (!trained->empty()) {
      auto loaded = ZstdDictionary::ForCompression(AsBytes(*trained), options.level);
      if (!loaded) return loaded.error();
      dictionary = std::move(loaded).value();
      result.dictionary = std::move(trained).value();
    }
  }

  auto out = Fd::Open(output, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (!out) return out.error();
  const unsigned threads = options.threads == 0
                               ? std::max(1u, std::thread::hardware_concurrency())
                               : options.threads;
  ChunkIndex& index = result.index;
  index.sizes = sizes;
  index.window = window;
  // The batch's chunks back to back after the `window` image bytes before the first of them:
  // every frame's prefix is in `data`, and frames are compressed independently on all cores.
  std::vector<uint8_t> data;
  std::vector<size_t> batch;  // where each chunk of the batch starts in `data`
  std::vector<std::string> frames;
  uint64_t compressed = 0;
  const ZstdDictionary* dict = dictionary ? &*dictionary : nullptr;

  auto flush = [&]() -> Result {
    frames.assign(batch.size(), {});
    std::vector<Result> results(threads);
    std::atomic<size_t> next{0};
    auto work = [&](unsigned t) {
      for (size_t i; (i = next++) < batch.size();) {
        const size_t start = batch[i], stop = i + 1 < batch.size() ? batch[i + 1] : data.size();
        const size_t from = start - std::min<size_t>(window, start);
        const std::span<const uint8_t> all(data);
        if (auto r = ZstdCompressFrame(all.subspan(start, stop - start), options.level, frames[i],
                                       dict, all.subspan(from, start - from));
            !r) {
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
      if (auto r = WriteAll(out->get(), AsBytes(frames[i]), InQuotes(output)); !r) return r;
    }
    batch.clear();
    const size_t keep = std::min<size_t>(window, data.size());
    data.erase(data.begin(), data.end() - static_cast<ptrdiff_t>(keep));
    return {};
  };

  auto r = chunks_of([&](uint64_t offset, std::span<const uint8_t> chunk) -> Result {
    ChunkEntry e;
    e.offset = offset;
    e.size = static_cast<uint32_t>(chunk.size());
    e.digest = DigestOf(chunk);
    index.chunks.push_back(e);
    batch.push_back(data.size());
    data.insert(data.end(), chunk.begin(), chunk.end());
    return batch.size() == kBatch ? flush() : Result{};
  });
  if (!r) return r.error();
  if (auto f = flush(); !f) return f.error();
  if (::fsync(out->get()) != 0) return ErrnoError("Failed to fsync " + InQuotes(output));
  index.image_size = length;
  index.compressed_size = compressed;
  return result;
}

namespace {

class WindowedImageDecoder final : public ChunkStream {
 public:
  WindowedImageDecoder(Reader& frames, std::shared_ptr<const ChunkIndex> index)
      : ChunkStream(*index), frames_(frames), index_(std::move(index)) {}

 private:
  Result Fill(size_t i, std::span<uint8_t> into) override {
    const ChunkEntry& c = index_->chunks[i];
    const std::string what = "chunk " + std::to_string(i) + " (image bytes " +
                             std::to_string(c.offset) + "+" + std::to_string(c.size) + ")";
    frame_.resize(c.compressed_size);
    for (size_t got = 0; got < frame_.size();) {
      auto n = frames_.Read(std::span<uint8_t>(frame_).subspan(got));
      if (!n) return n.error();
      if (*n == 0)
        return VerificationError("image member is truncated: " + what + "'s frame ends after " +
                                 std::to_string(got) + " of " + std::to_string(frame_.size()) +
                                 " bytes");
      got += *n;
    }
    if (auto r = ZstdDecompressFrame(frame_, into, nullptr, window().prefix()); !r)
      return r.error().Context(what);
    return {};
  }

  // After the last frame the member must end: bytes the index does not describe are refused.
  Result End() override {
    uint8_t extra;
    auto n = frames_.Read(std::span<uint8_t>(&extra, 1));
    if (!n) return n.error();
    if (*n != 0)
      return VerificationError("image member is longer than its " +
                               std::to_string(index_->compressed_size) + " bytes of frames");
    return {};
  }

  Reader& frames_;
  std::shared_ptr<const ChunkIndex> index_;  // ChunkStream refers to its chunks
  std::vector<uint8_t> frame_;
};

}  // namespace

std::unique_ptr<Reader> MakeWindowedImageDecoder(Reader& frames,
                                                 std::shared_ptr<const ChunkIndex> index) {
  return std::make_unique<WindowedImageDecoder>(frames, std::move(index));
}

}  // namespace osu
