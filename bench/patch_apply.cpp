// osu-bench-patch-apply: a patch and its base image in, the new image's sha256 checked, with
// decode time and peak memory split into anonymous (the process's own) and file-backed pages
// (the mapped base), sampled from /proc/self/status after every read. For bench/patch.sh.
#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "common/fd.hpp"
#include "crypto/sha256.hpp"
#include "delta/patch.hpp"
#include "io/stream.hpp"

namespace {

// RssAnon and RssFile in KiB.
void SampleRss(uint64_t& anon, uint64_t& file) {
  std::ifstream status("/proc/self/status");
  std::string key;
  uint64_t kib;
  while (status >> key) {
    if (key == "RssAnon:" && status >> kib) anon = std::max(anon, kib);
    else if (key == "RssFile:" && status >> kib) file = std::max(file, kib);
  }
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "osu-bench-patch-apply: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    return Fail("usage: osu-bench-patch-apply BASE BASE_SHA256 PATCH PUBLIC_KEY TARGET_SIZE "
                "TARGET_SHA256 OUTPUT|-");
  }
  const std::vector<std::string> a(argv + 1, argv + argc);
  auto base = osu::Fd::Open(a[0], O_RDONLY);
  auto patch = osu::Fd::Open(a[2], O_RDONLY);
  if (!base || !patch) return Fail("cannot open the base or the patch");
  osu::PatchExpectation expect;
  expect.base_sha256 = a[1];
  expect.base_size = static_cast<uint64_t>(::lseek(base->get(), 0, SEEK_END));
  expect.keys = {a[3]};
  expect.target_size = std::stoull(a[4]);
  expect.target_sha256 = a[5];
  osu::Fd out;
  if (a[6] != "-") {
    auto o = osu::Fd::Open(a[6], O_WRONLY | O_CREAT | O_TRUNC);
    if (!o) return Fail(o.error().message());
    out = std::move(o).value();
  }

  const auto start = std::chrono::steady_clock::now();
  const osu::PatchBase slot{base->get(), 0, expect.base_size, a[0]};
  auto reader = osu::OpenPatchedImage(slot, osu::MakeFdReader(patch->Release(), true, a[2]),
                                      expect, a[2]);
  if (!reader) return Fail(reader.error().message());
  osu::Sha256 hash;
  std::vector<uint8_t> buf(1u << 20);
  uint64_t total = 0, anon = 0, file = 0;
  for (;;) {
    auto n = (*reader)->Read(buf);
    if (!n) return Fail(n.error().message());
    if (*n == 0) break;
    const std::span<const uint8_t> data(buf.data(), *n);
    hash.Update(data);
    if (out.valid()) {
      if (auto r = osu::WriteAll(out.get(), data, a[6]); !r) return Fail(r.error().message());
    }
    total += *n;
    SampleRss(anon, file);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (total != expect.target_size || hash.HexDigest() != expect.target_sha256) {
    return Fail("the output is not the new image");
  }
  std::printf("decode_s=%.2f rss_anon_peak_mib=%.1f rss_file_peak_mib=%.1f bytes=%llu\n",
              seconds, static_cast<double>(anon) / 1024, static_cast<double>(file) / 1024,
              static_cast<unsigned long long>(total));
  return 0;
}
