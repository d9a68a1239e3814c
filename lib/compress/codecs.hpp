// Internal seam between compression.cpp and the codec libraries under platform/: one decoder
// factory and one encoder per codec. Not for use outside lib/compress and lib/platform.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "common/error.hpp"
#include "compress/compression.hpp"
#include "io/stream.hpp"

namespace osu::codec {

// Compressed input is pulled in chunks this large: few calls, and the xz decoder gets whole
// blocks' worth of input to hand to its threads.
inline constexpr size_t kInputChunk = 1u << 20;

// Receives encoder output in order.
using ChunkSink = std::function<Result(std::span<const uint8_t>)>;

std::unique_ptr<Reader> MakePassthroughDecoder(Reader& compressed);
Expected<std::unique_ptr<Reader>> MakeXzDecoder(Reader& compressed, unsigned threads);
Expected<std::unique_ptr<Reader>> MakeZstdDecoder(Reader& compressed,
                                                  std::span<const uint8_t> dictionary);
Expected<std::unique_ptr<Reader>> MakeGzipDecoder(Reader& compressed);

Result XzEncode(Reader& input, const ChunkSink& out, const EncodeOptions& options);
Result ZstdEncode(Reader& input, const ChunkSink& out, const EncodeOptions& options);
Result GzipEncode(Reader& input, const ChunkSink& out, const EncodeOptions& options);

// Online CPUs, at least 1: what threads = 0 means.
unsigned OnlineCpus();

}  // namespace osu::codec
