// Build side of a partial-fetch bundle: the image compressed as one zstd frame per chunk.
#pragma once

#include <string>

#include "common/error.hpp"
#include "compress/compression.hpp"
#include "delta/chunk_index.hpp"

namespace osu {

struct ChunkedImage {
  ChunkIndex index;
  std::string dictionary;  // empty: frames made without one
};

// Cuts `image` into content-defined chunks, compresses each into its own zstd frame (on
// `options.threads` cores, in batches so that memory stays bounded) and writes the frames
// in order to `output`. With `dictionary_size` > 0, a zstd dictionary of at most that many
// bytes is first trained from a sample of the chunks (a first pass over the image) and every
// frame made with it: small frames lose most of their context, a dictionary gives some back.
// When zstd cannot train one (too little data), the frames are made without.
Expected<ChunkedImage> WriteChunkedImage(const std::string& image, const std::string& output,
                                         const EncodeOptions& options, const ChunkSizes& sizes = {},
                                         size_t dictionary_size = 0);

}  // namespace osu
