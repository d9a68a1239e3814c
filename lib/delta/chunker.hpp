// Content-defined chunking (a gear rolling hash, FastCDC's normalized cut points): the same
// bytes cut at the same places wherever they sit in an image, so a file system rebuilt with
// its files at other offsets still shares most chunks with the last one.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "common/error.hpp"
#include "io/stream.hpp"

namespace osu {

// 4/16/64 KiB: the sizes measured best on rebuilt ext4 and squashfs (issue 11's table; see
// bench/delta.sh). Builder and device must agree: the index records them and a device chunks
// its slots with the index's values.
struct ChunkSizes {
  uint32_t min = 4u << 10;
  uint32_t avg = 16u << 10;
  uint32_t max = 64u << 10;
  bool operator==(const ChunkSizes&) const = default;
};

// The length of the chunk at the front of `data`. `data` is shorter than sizes.max only at
// the end of the input, where the rest is one chunk.
size_t NextCut(std::span<const uint8_t> data, const ChunkSizes& sizes);

// Cuts the first `length` bytes of `input` into chunks, calling `chunk(offset, bytes)` for
// each, in order. Memory: one buffer of 1 MiB plus sizes.max.
Result ForEachChunk(Reader& input, uint64_t length, const ChunkSizes& sizes,
                    const std::function<Result(uint64_t offset, std::span<const uint8_t>)>& chunk);

}  // namespace osu
