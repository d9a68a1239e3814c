// A fixed pool of aligned chunk buffers passed from one producer (the calling thread) to
// consumers that each run on their own thread and see every chunk in order: decode on one
// core while hashing and writing proceed on the others, in bounded memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/error.hpp"

namespace osu {

// Buffers aligned for O_DIRECT.
struct AlignedFree {
  void operator()(uint8_t* p) const;
};
using AlignedBuffer = std::unique_ptr<uint8_t, AlignedFree>;
AlignedBuffer AllocateAligned(size_t size);  // 4096-aligned; throws std::bad_alloc

class ChunkPipeline {
 public:
  // Fills `buf` from stream position `offset`: completely, except at the end of the data.
  // Returns the byte count (0 = nothing left) or an error.
  using Producer = std::function<Expected<size_t>(uint64_t offset, std::span<uint8_t> buf)>;
  using Consumer = std::function<Result(uint64_t offset, std::span<const uint8_t> data)>;

  ChunkPipeline(std::vector<uint8_t*> buffers, size_t chunk_size)
      : buffers_(std::move(buffers)), chunk_size_(chunk_size) {}

  // Runs until the producer reaches the end or anyone fails; returns the first error (of
  // whichever side). Every consumer thread is joined before it returns. `after[k]`, when
  // given, makes consumer k take a chunk only once consumer after[k] (< k) is done with it (a
  // writer after the reader of what the target holds there).
  Result Run(const Producer& produce, const std::vector<Consumer>& consumers,
             const std::vector<std::optional<size_t>>& after = {});

 private:
  std::vector<uint8_t*> buffers_;
  size_t chunk_size_;
};

}  // namespace osu
