// A reader that keeps reading ahead of its caller on a thread of its own: a download goes on
// while the caller computes (the patch path decodes and compresses between reads).
#pragma once

#include <cstddef>
#include <memory>

#include "io/stream.hpp"

namespace osu {

// Reads `inner` up to `capacity` bytes ahead, `piece` bytes a read at most, from the first Read
// on (opening reads nothing). The caller gets the bytes in order, then the end or inner's
// error. Destroying it waits for a read of inner in progress to return.
std::unique_ptr<Reader> MakeReadAhead(std::unique_ptr<Reader> inner, size_t capacity,
                                      size_t piece = size_t{1} << 20);

}  // namespace osu
