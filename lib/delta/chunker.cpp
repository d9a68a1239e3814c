#include "delta/chunker.hpp"

#include <array>
#include <bit>
#include <cstring>
#include <vector>

namespace osu {
namespace {

// The gear table: 256 fixed pseudo-random words (splitmix64 from a fixed seed). Changing it
// changes every cut point, so it is part of the bundle format.
constexpr std::array<uint64_t, 256> MakeGear() {
  std::array<uint64_t, 256> g{};
  uint64_t x = 0x6f732d7570646174ULL;  // "os-updat"
  for (auto& v : g) {
    x += 0x9e3779b97f4a7c15ULL;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    v = z ^ (z >> 31);
  }
  return g;
}
constexpr std::array<uint64_t, 256> kGear = MakeGear();

// A mask of `bits` one-bits spread over the high half of the word, where the gear hash has
// seen the most bytes.
uint64_t Mask(int bits) {
  uint64_t m = 0;
  for (int i = 0; i < bits; ++i) m |= uint64_t{1} << (63 - i * 2);
  return m;
}

}  // namespace

size_t NextCut(std::span<const uint8_t> data, const ChunkSizes& sizes) {
  const size_t n = data.size();
  if (n <= sizes.min) return n;
  // Normalized chunking: a stricter mask before the average size, a looser one after, so
  // that chunk sizes gather around the average.
  const int bits = static_cast<int>(std::bit_width(sizes.avg)) - 1;
  const uint64_t strict = Mask(bits + 2), loose = Mask(bits - 2);
  const size_t end = std::min<size_t>(n, sizes.max), normal = std::min<size_t>(end, sizes.avg);
  uint64_t h = 0;
  size_t i = sizes.min;
  for (; i < normal; ++i) {
    h = (h << 1) + kGear[data[i]];
    if (!(h & strict)) return i + 1;
  }
  for (; i < end; ++i) {
    h = (h << 1) + kGear[data[i]];
    if (!(h & loose)) return i + 1;
  }
  return end;
}

Result ForEachChunk(Reader& input, uint64_t length, const ChunkSizes& sizes,
                    const std::function<Result(uint64_t, std::span<const uint8_t>)>& chunk) {
  std::vector<uint8_t> buf((1u << 20) + sizes.max);
  size_t have = 0;
  uint64_t offset = 0, read = 0;
  bool eof = false;
  for (;;) {
    while (!eof && have < buf.size() && read < length) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size() - have, length - read));
      auto n = input.Read(std::span<uint8_t>(buf.data() + have, want));
      if (!n) return n.error();
      if (*n == 0) eof = true;
      have += *n;
      read += *n;
    }
    if (read == length) eof = true;
    size_t pos = 0;
    while (have - pos >= sizes.max || (eof && pos < have)) {
      const size_t cut = NextCut(std::span<const uint8_t>(buf.data() + pos, have - pos), sizes);
      if (auto r = chunk(offset, std::span<const uint8_t>(buf.data() + pos, cut)); !r) return r;
      pos += cut;
      offset += cut;
    }
    if (eof && pos == have) return {};
    std::memmove(buf.data(), buf.data() + pos, have - pos);
    have -= pos;
  }
}

}  // namespace osu
