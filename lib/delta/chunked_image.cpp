#include "delta/chunked_image.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <unordered_map>
#include <thread>
#include <vector>

#include "common/fd.hpp"
#include "common/text.hpp"
#include "delta/anchors.hpp"

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

// Version 4's references, chosen as chunks are cut: the earlier chunks (outside the window)
// sharing the most content anchors with a chunk are its candidates, and its references if
// the bytes a decoder holds for them stay within kMaxReferenceBytes at every point (`held`,
// per chunk). Every chunk that has them takes them: on the 1 GiB ext4 of bench/delta.sh,
// keeping them only where the frame came out smaller made the same bytes (90.1% of the
// window-only frames either way) in 1.5 times the create time (each chunk compressed twice).
class References {
 public:
  explicit References(uint32_t window) : window_(window) {}

  // The candidates of the chunk just appended to `chunks` (its bytes: `data`), best last.
  std::vector<uint32_t> Candidates(const std::vector<ChunkEntry>& chunks,
                                   std::span<const uint8_t> data, uint32_t k) {
    const uint32_t self = static_cast<uint32_t>(chunks.size() - 1);
    const uint64_t far = chunks.back().offset - std::min<uint64_t>(window_, chunks.back().offset);
    std::map<uint32_t, uint32_t> votes;
    keys_.clear();
    delta::ForEachAnchor(data, [&](uint64_t key) {
      keys_.push_back(key);
      auto it = first_.find(key);
      if (it != first_.end() && chunks[it->second].offset + chunks[it->second].size <= far)
        ++votes[it->second];
    });
    for (uint64_t key : keys_) first_.emplace(key, self);
    held_.push_back(0);
    auto best = delta::MostVoted(votes, k);
    std::reverse(best.begin(), best.end());
    return best;
  }

  // Whether chunk `i` may refer to `refs` (kept from their turn to chunk i's); if so, the
  // bytes are counted and their last use set.
  bool Admit(std::vector<ChunkEntry>& chunks, uint32_t i, std::span<const uint32_t> refs) {
    uint32_t from = i;
    for (uint32_t j : refs) from = std::min(from, std::max(j, chunks[j].last_use));
    for (uint32_t p = from; p < i; ++p) {
      uint64_t more = held_[p];
      for (uint32_t j : refs)
        if (p >= std::max(j, chunks[j].last_use)) more += chunks[j].size;
      if (more > kMaxReferenceBytes) return false;
    }
    for (uint32_t j : refs) {
      for (uint32_t p = std::max(j, chunks[j].last_use); p < i; ++p) held_[p] += chunks[j].size;
      chunks[j].last_use = i;
    }
    return true;
  }

 private:
  uint32_t window_;
  std::unordered_map<uint64_t, uint32_t> first_;  // anchor -> the first chunk holding it
  std::vector<uint64_t> keys_;
  std::vector<uint64_t> held_;  // referenced bytes a decoder holds after each chunk's turn
};

}  // namespace

Result CheckChunkOptions(uint32_t window, uint32_t refs, size_t dictionary_size) {
  if (window > kMaxChunkWindow)
    return UsageError("--chunk-window must be at most " + std::to_string(kMaxChunkWindow) + " bytes");
  if (refs > kMaxChunkRefs)
    return UsageError("--chunk-refs must be at most " + std::to_string(kMaxChunkRefs));
  if (refs > 0 && window == 0)
    return UsageError("--chunk-refs needs a --chunk-window: frames refer to earlier chunks only "
                      "beside a window (format 5)");
  if (window > 0 && dictionary_size > 0)
    return UsageError("--dictionary-size needs --chunk-window 0: a dictionary and a window do "
                      "not combine (format 3 or format 4)");
  return {};
}

Expected<ChunkedImage> WriteChunkedImage(const std::string& image, const std::string& output,
                                         const EncodeOptions& base_options, const ChunkSizes& sizes,
                                         size_t dictionary_size, uint32_t window, uint32_t refs) {
  if (auto r = CheckChunkOptions(window, refs, dictionary_size); !r) return r.error();
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
  index.refs = refs;
  References references(window);
  // The batch's chunks back to back after the `window` image bytes before the first of them:
  // every frame's prefix is in `data`, and frames are compressed independently on all cores.
  std::vector<uint8_t> data;
  std::vector<size_t> batch;  // where each chunk of the batch starts in `data`
  std::vector<std::string> frames;
  uint64_t compressed = 0;
  const ZstdDictionary* dict = dictionary ? &*dictionary : nullptr;

  auto flush = [&]() -> Result {
    frames.assign(batch.size(), {});
    const size_t first = index.chunks.size() - batch.size();
    std::vector<Result> results(threads);
    std::atomic<size_t> next{0};
    auto work = [&](unsigned t) {
      std::vector<uint8_t> prefix;  // the referenced chunks, then the window
      for (size_t i; (i = next++) < batch.size();) {
        const size_t start = batch[i], stop = i + 1 < batch.size() ? batch[i + 1] : data.size();
        const size_t from = start - std::min<size_t>(window, start);
        const std::span<const uint8_t> all(data);
        const auto chunk = all.subspan(start, stop - start), before = all.subspan(from, start - from);
        const ChunkEntry& e = index.chunks[first + i];
        Result r;
        if (e.ref_count == 0) {
          r = ZstdCompressFrame(chunk, options.level, frames[i], dict, before);
        } else {
          prefix.clear();
          for (uint32_t k = 0; k < e.ref_count && r; ++k) {
            const ChunkEntry& c = index.chunks[e.refs[k]];
            const size_t at = prefix.size();
            prefix.resize(at + c.size);
            r = PReadExact(in->get(), std::span(prefix).subspan(at), c.offset, InQuotes(image));
          }
          prefix.insert(prefix.end(), before.begin(), before.end());
          if (r) r = ZstdCompressFrame(chunk, options.level, frames[i], nullptr, prefix);
        }
        if (!r) {
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
      ChunkEntry& e = index.chunks[first + i];
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
    if (refs > 0) {
      const auto like = references.Candidates(index.chunks, chunk, refs);
      const auto at = static_cast<uint32_t>(index.chunks.size() - 1);
      if (!like.empty() && references.Admit(index.chunks, at, like)) {
        std::copy(like.begin(), like.end(), index.chunks.back().refs.begin());
        index.chunks.back().ref_count = static_cast<uint32_t>(like.size());
      }
    }
    batch.push_back(data.size());
    data.insert(data.end(), chunk.begin(), chunk.end());
    return batch.size() == kBatch ? flush() : Result{};
  });
  if (!r) return r.error();
  if (auto f = flush(); !f) return f.error();
  if (::fsync(out->get()) != 0) return ErrnoError("Failed to fsync " + InQuotes(output));
  index.image_size = length;
  index.compressed_size = compressed;
  // What every device checks (ParseChunkIndex): never write an index they would refuse.
  if (const uint64_t held = DeriveLastUses(index.chunks); held > kMaxReferenceBytes)
    return StateError("internal: chunk references hold " + std::to_string(held) + " bytes at once");
  return result;
}

namespace {

class WindowedImageDecoder final : public ChunkStream {
 public:
  WindowedImageDecoder(Reader& frames, std::shared_ptr<const ChunkIndex> index)
      : ChunkStream(*index), frames_(frames), index_(std::move(index)) {}

 private:
  Result Fill(size_t i, std::span<uint8_t> into, std::span<const uint8_t> prefix) override {
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
    if (auto r = ZstdDecompressFrame(frame_, into, nullptr, prefix); !r)
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
