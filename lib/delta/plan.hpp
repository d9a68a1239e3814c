// Device side of a partial fetch: which chunks of the new image the device already holds
// (in its booted slot, its target slot, or as zeros) and which ranges of the bundle it must
// fetch; then the image itself, assembled chunk by chunk, each checked before it is handed on.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "compress/compression.hpp"
#include "delta/chunk_index.hpp"
#include "delta/range_source.hpp"
#include "io/stream.hpp"

namespace osu {

// A region of a slot to look for chunks in: a block device or file at an offset.
struct LocalImage {
  std::string name;  // "slot A", for messages
  std::string path;
  uint64_t offset = 0;
  uint64_t size = 0;  // bytes to chunk from the start of the slot
  // The slot being written: a chunk found at slot offset X may be used only for image bytes
  // at or before X (the slot is written front to back; bytes before the write are gone).
  bool is_target = false;
  // The chunks this image is known to hold (the slot's stored chunk list, made with the same
  // chunk sizes as the index): used instead of reading the slot. Each chunk taken from it is
  // hashed again before it is used, like any local chunk.
  std::shared_ptr<const ChunkIndex> known;
};

struct DeltaPlan {
  enum class From : uint8_t { Fetch, Local, Zero };
  struct Source {
    From from = From::Fetch;
    uint8_t local = 0;    // index into the locals given to PlanDelta
    uint64_t offset = 0;  // in that local image
  };
  struct Range {
    uint64_t offset = 0, length = 0;  // in the image member
  };
  std::vector<Source> sources;  // one per chunk of the index
  std::vector<Range> ranges;    // merged, in order
  uint64_t fetch_bytes = 0;     // compressed bytes in `ranges` (gaps merged in included)
  std::vector<uint64_t> reused; // image bytes taken from each local
  uint64_t zero_bytes = 0;
};

// Reads each local image once (sequentially, chunked like the index says; a local with a
// `known` chunk list is not read) and keeps only the positions of chunks the index needs: memory is the index plus one hash table of its chunks.
// Consecutive fetched chunks merge into one range when the gap between them is at most
// `merge_gap` bytes and the range stays under `max_range`. An unreadable local is skipped.
DeltaPlan PlanDelta(const ChunkIndex& index, const std::vector<LocalImage>& locals,
                    uint64_t merge_gap = 4u << 10, uint64_t max_range = 8u << 20,
                    const std::function<void(const std::string&)>& warn = {});

struct DeltaCounters {
  uint64_t fetched = 0;  // bytes received for the image
  uint64_t reused = 0;   // image bytes from the slots and zeros
  bool stale_list = false;  // a chunk a stored chunk list (`known`) promised was not there
};

// The new image, decoded, front to back: local chunks read again and checked, fetched frames
// decoded and checked, each against the index's sha256 before a byte of it is handed on. Any
// mismatch (a slot that changed, a server answering other bytes) is a Verification error
// naming the chunk. `member_offset`: where the image member's data starts in the bundle.
// `dictionary`: the bundle's (format 3), nullptr before.
std::unique_ptr<Reader> MakePlannedImage(const ChunkIndex& index, const DeltaPlan& plan,
                                         const std::vector<LocalImage>& locals,
                                         RangeSource& bundle, uint64_t member_offset,
                                         const ZstdDictionary* dictionary,
                                         DeltaCounters* counters);

}  // namespace osu
