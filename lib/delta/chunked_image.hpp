// Build side of a partial-fetch bundle: the image compressed as one zstd frame per chunk.
#pragma once

#include <memory>
#include <string>

#include "common/error.hpp"
#include "compress/compression.hpp"
#include "delta/chunk_index.hpp"
#include "io/stream.hpp"

namespace osu {

struct ChunkedImage {
  ChunkIndex index;
  std::string dictionary;  // empty: frames made without one
};

// Level 9 at the default window: on the 1 GiB ext4 of bench/delta.sh, 114.8% of the xz full
// bundle in 182 s on 2 cores (xz: 177 s), where level 6 made 117.9% in 109 s and level 12
// 114.2% in 353 s (lib/delta/README.md, format 4).
inline constexpr int kWindowedChunkLevel = 9;

// The rules of a chunked image's options, as Usage errors in the words of `os-update-bundle
// create`: --chunk-window at most kMaxChunkWindow, --chunk-refs at most kMaxChunkRefs and only
// with a window, --dictionary-size only without one.
Result CheckChunkOptions(uint32_t window, uint32_t refs, size_t dictionary_size);

// Cuts `image` into content-defined chunks, compresses each into its own zstd frame (on
// `options.threads` cores, in batches so that memory stays bounded) and writes the frames
// in order to `output`. With `dictionary_size` > 0, a zstd dictionary of at most that many
// bytes is first trained from a sample of the chunks (a first pass over the image) and every
// frame made with it: small frames lose most of their context, a dictionary gives some back.
// When zstd cannot train one (too little data), the frames are made without.
// With `window` > 0 (format 4), each frame is made with the up to `window` image bytes before
// its chunk as its zstd prefix (index version 3); not with a dictionary (a Usage error).
// With `refs` > 0 (format 5, needs a window), a chunk's prefix also starts with up to `refs`
// earlier chunks outside the window that share the most content anchors with it (index
// version 4; lib/delta/README.md, format 5). Options that break CheckChunkOptions' rules are
// Usage errors.
Expected<ChunkedImage> WriteChunkedImage(const std::string& image, const std::string& output,
                                         const EncodeOptions& options, const ChunkSizes& sizes = {},
                                         size_t dictionary_size = 0, uint32_t window = 0,
                                         uint32_t refs = 0);

// The full path of a format-4 bundle: the image member (`frames`, not owned) decoded frame by
// frame as `index` lays it out, each with the last `index->window` bytes of output as its
// prefix (DecodeWindow: memory ~2 x window + a chunk and a frame). A frame that does not
// decode to its chunk's size, a member shorter or longer than the index says: a Verification
// error naming the chunk. The whole image's sha256 is the caller's to check, as for any image.
std::unique_ptr<Reader> MakeWindowedImageDecoder(Reader& frames,
                                                 std::shared_ptr<const ChunkIndex> index);

}  // namespace osu
