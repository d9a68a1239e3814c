// Content anchors: how patch format 2 finds the base blocks a changed block resembles and
// bundle format 5 the earlier chunks a chunk resembles. Positions whose 8 bytes hash to a
// value with a zero top byte (1 in 256, found again wherever the same bytes are), keyed by a
// hash of the 32 bytes there; after an anchor the next 32 bytes are skipped, so a run of one
// byte value gives few.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <span>
#include <utility>
#include <vector>

namespace osu::delta {

template <typename F>
void ForEachAnchor(std::span<const uint8_t> data, F&& f) {
  constexpr uint64_t k1 = 0x9e3779b97f4a7c15ull, k2 = 0xc2b2ae3d27d4eb4full,
                     k3 = 0x165667b19e3779f9ull, k4 = 0xd6e8feb86659fd93ull;
  auto load = [](const uint8_t* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  };
  for (size_t p = 0; p + 32 <= data.size(); ++p) {
    const uint8_t* at = data.data() + p;
    if (((load(at) * k1) >> 56) != 0) continue;
    f((load(at) * k1) ^ (load(at + 8) * k2) ^ (load(at + 16) * k3) ^ (load(at + 24) * k4));
    p += 31;
  }
}

// The (at most `k`) candidates with the most votes, two votes at least: most votes first,
// the lower number first among equals.
inline std::vector<uint32_t> MostVoted(const std::map<uint32_t, uint32_t>& votes, size_t k) {
  std::vector<std::pair<uint32_t, uint32_t>> ranked;  // votes, candidate
  for (const auto& [candidate, n] : votes) {
    if (n >= 2) ranked.emplace_back(n, candidate);
  }
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::vector<uint32_t> out;
  for (size_t i = 0; i < ranked.size() && i < k; ++i) out.push_back(ranked[i].second);
  return out;
}

}  // namespace osu::delta
