// Build side of a partial-fetch bundle: the image compressed as one zstd frame per chunk.
#pragma once

#include <string>

#include "common/error.hpp"
#include "compress/compression.hpp"
#include "delta/chunk_index.hpp"

namespace osu {

// Cuts `image` into content-defined chunks, compresses each into its own zstd frame (on
// `options.threads` cores, in batches so that memory stays bounded) and writes the frames
// in order to `output`. Returns the index that describes them.
Expected<ChunkIndex> WriteChunkedImage(const std::string& image, const std::string& output,
                                       const EncodeOptions& options, const ChunkSizes& sizes = {});

}  // namespace osu
