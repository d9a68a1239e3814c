// Shared by the fuzz targets: the input as a stream, handed out in chunks of a size the input
// decides (readers above see every split), and a bounded drain of what is read from it.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "fuzz_check.hpp"
#include "io/stream.hpp"

namespace osu::fuzz {

class BytesReader final : public osu::Reader {
 public:
  BytesReader(const uint8_t* data, size_t size, size_t chunk)
      : data_(data), size_(size), chunk_(chunk) {}
  osu::Expected<size_t> Read(std::span<uint8_t> buf) override {
    const size_t n = std::min({buf.size(), size_ - pos_, chunk_});
    if (n) std::memcpy(buf.data(), data_ + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  const uint8_t* data_;
  size_t size_, pos_ = 0, chunk_;
};

// Reads to the end, up to `limit` bytes; false on an error or at the limit.
inline bool Drain(osu::Reader& r, uint64_t limit) {
  std::vector<uint8_t> buf(64u << 10);
  uint64_t total = 0;
  for (;;) {
    auto n = r.Read(buf);
    if (!n) {
      Check(!n.error().message().empty(), "an error without a message");
      return false;
    }
    if (*n == 0) return true;
    Check(*n <= buf.size(), "a reader returned more than asked");
    total += *n;
    if (total >= limit) return false;
  }
}

}  // namespace osu::fuzz
