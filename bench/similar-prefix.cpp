// An experiment, not built with the project (session 11, for a possible bundle format 5):
// chunk frames whose zstd prefix is [the up to K earlier chunks most like this one] + [the
// window before the chunk], against the window alone, on fixed 16 KiB chunks at level LEVEL.
// "Most like": the most content anchors in common (1 in 256 positions, as lib/delta/blocks.cpp
// finds base blocks), at least 2, outside the window. Prints both totals.
//   g++ -O2 -std=c++20 bench/similar-prefix.cpp -lzstd -o /tmp/similar-prefix
//   /tmp/similar-prefix IMAGE LEVEL WINDOW K [STRIDE]   (STRIDE n: every nth chunk only)
// 1 GiB ext4 of bench/delta.sh, level 9, 2 MiB, stride 8: K=1 93.7%, K=2 89.9%, K=4 88.9% of
// the window-only bytes (lib/delta/README.md).
#include <zstd.h>
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>
#include <atomic>
#include <unordered_map>
#include <vector>
static uint64_t L64(const uint8_t* p) { uint64_t v; memcpy(&v, p, 8); return v; }
template <class F> void Anchors(const uint8_t* d, size_t n, F&& f) {
  const uint64_t k1 = 0x9e3779b97f4a7c15ull, k2 = 0xc2b2ae3d27d4eb4full, k3 = 0x165667b19e3779f9ull, k4 = 0xd6e8feb86659fd93ull;
  for (size_t p = 0; p + 32 <= n; ++p) {
    const uint8_t* a = d + p;
    if (((L64(a) * k1) >> 56) != 0) continue;
    f((L64(a) * k1) ^ (L64(a + 8) * k2) ^ (L64(a + 16) * k3) ^ (L64(a + 24) * k4));
    p += 31;
  }
}
int main(int argc, char** argv) {
  std::ifstream in(argv[1], std::ios::binary);
  std::vector<uint8_t> img((std::istreambuf_iterator<char>(in)), {});
  const int level = atoi(argv[2]); const size_t window = strtoull(argv[3], 0, 10); const int K = atoi(argv[4]);
  const size_t stride = argc > 5 ? atoi(argv[5]) : 1;
  const size_t C = 16384, n = (img.size() + C - 1) / C;
  // Anchor -> first chunk holding it; per chunk its similar earlier chunks (outside the window).
  std::unordered_map<uint64_t, uint32_t> first;
  std::vector<std::vector<uint32_t>> like(n);
  size_t zero_chunks = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* d = img.data() + i * C; size_t len = std::min(C, img.size() - i * C);
    std::map<uint32_t, uint32_t> votes; std::vector<uint64_t> keys;
    Anchors(d, len, [&](uint64_t k) { keys.push_back(k); auto it = first.find(k); if (it != first.end()) ++votes[it->second]; });
    std::vector<std::pair<uint32_t, uint32_t>> r;
    for (auto [c, v] : votes) if (v >= 2 && (i - c) * C > window) r.push_back({v, c});
    std::sort(r.rbegin(), r.rend());
    for (int k = 0; k < K && k < (int)r.size(); ++k) like[i].push_back(r[k].second);
    for (auto k : keys) first.emplace(k, (uint32_t)i);
  }
  std::atomic<size_t> next{0}; std::atomic<uint64_t> plain{0}, sim{0}; std::atomic<size_t> used{0};
  auto work = [&] {
    ZSTD_CCtx* c = ZSTD_createCCtx(); std::vector<uint8_t> pre, out(ZSTD_compressBound(C));
    for (size_t i; (i = next.fetch_add(stride)) < n;) {
      const uint8_t* d = img.data() + i * C; size_t len = std::min(C, img.size() - i * C);
      size_t wstart = i * C > window ? i * C - window : 0;
      auto comp = [&](const uint8_t* p, size_t pn) {
        ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
        ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level);
        int wl = 10; while ((1ull << wl) < pn + len) ++wl;
        ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, std::max(wl, 10));
        ZSTD_CCtx_setParameter(c, ZSTD_c_contentSizeFlag, 0);
        if (pn) ZSTD_CCtx_refPrefix(c, p, pn);
        return ZSTD_compress2(c, out.data(), out.size(), d, len);
      };
      size_t a = comp(img.data() + wstart, i * C - wstart);
      plain += a;
      if (like[i].empty()) { sim += a; continue; }
      pre.clear();
      for (uint32_t s : like[i]) pre.insert(pre.end(), img.begin() + s * C, img.begin() + std::min(img.size(), s * C + C));
      pre.insert(pre.end(), img.begin() + wstart, img.begin() + i * C);
      size_t b = comp(pre.data(), pre.size());
      if (b < a) { sim += b; ++used; } else sim += a;
    }
    ZSTD_freeCCtx(c);
  };
  std::vector<std::thread> t; for (int k = 0; k < 2; ++k) t.emplace_back(work); for (auto& x : t) x.join();
  printf("chunks %zu (every %zu): window-only %llu, with similar %llu (%.1f%%), chunks helped %zu\n", n, stride,
         (unsigned long long)plain.load(), (unsigned long long)sim.load(), 100.0 * sim / plain, used.load());
}
