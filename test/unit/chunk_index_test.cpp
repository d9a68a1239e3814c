// The chunk index's versions: 2 and 3 (written: 16-byte digests; 3 with a window) and 1
// (read: whole sha256s, cut to 16 bytes), and the layout checks a forged index meets. Digests against sha256sum's.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "delta/chunk_index.hpp"
#include "delta/chunker.hpp"
#include "support/support.hpp"

namespace {

osu::ChunkIndex Sample() {
  osu::ChunkIndex idx;
  idx.sizes = osu::ChunkSizes{4096, 16384, 65536};
  const std::vector<std::vector<uint8_t>> chunks = {std::vector<uint8_t>(5000, 'a'),
                                                     std::vector<uint8_t>(7000, 'b')};
  for (const auto& c : chunks) {
    osu::ChunkEntry e;
    e.size = static_cast<uint32_t>(c.size());
    e.compressed_size = 20;
    e.digest = osu::DigestOf(c);
    idx.chunks.push_back(e);
    idx.image_size += c.size();
  }
  return idx;
}

// The version 1 layout, as bundles made before 2026-12 carry it: 32 bytes of sha256 a chunk.
std::string SerializeV1(const osu::ChunkIndex& idx, const std::vector<std::string>& sha_hex) {
  std::string s = osu::SerializeChunkIndex(idx).substr(0, 40);
  s[8] = 1;
  for (size_t i = 0; i < idx.chunks.size(); ++i) {
    std::string e(8, '\0');
    for (int b = 0; b < 4; ++b) {
      e[static_cast<size_t>(b)] = static_cast<char>((idx.chunks[i].size >> (8 * b)) & 0xff);
      e[static_cast<size_t>(4 + b)] = static_cast<char>((idx.chunks[i].compressed_size >> (8 * b)) & 0xff);
    }
    for (size_t k = 0; k < 32; ++k) e.push_back(static_cast<char>(std::stoul(sha_hex[i].substr(k * 2, 2), nullptr, 16)));
    s += e;
  }
  return s;
}

std::string Hex(const osu::Digest& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string h;
  for (uint8_t b : d) h += {kHex[b >> 4], kHex[b & 15]};
  return h;
}

}  // namespace

TEST_CASE("chunk index: version 2 round trip, 24 bytes a chunk, digests are sha256's first half") {
  osu::test::RequireTool("sha256sum");
  const osu::ChunkIndex idx = Sample();
  const std::string bytes = osu::SerializeChunkIndex(idx);
  CHECK(bytes.size() == 40 + 2 * 24);
  auto back = osu::ParseChunkIndex(bytes, "t");
  REQUIRE(back);
  REQUIRE(back->chunks.size() == 2);
  CHECK(back->chunks[1].offset == 5000);
  CHECK(back->chunks[1].compressed_offset == 20);
  CHECK(back->compressed_size == 40);
  const std::string a = osu::test::MustRun("head -c 5000 /dev/zero | tr '\\0' a | sha256sum").substr(0, 64);
  CHECK(Hex(back->chunks[0].digest) == a.substr(0, 32));
  CHECK(back->chunks[0].digest == idx.chunks[0].digest);
}

TEST_CASE("chunk index: version 1 (whole sha256) still reads, cut to 16 bytes") {
  osu::test::RequireTool("sha256sum");
  const osu::ChunkIndex idx = Sample();
  const std::vector<std::string> sha = {
      osu::test::MustRun("head -c 5000 /dev/zero | tr '\\0' a | sha256sum").substr(0, 64),
      osu::test::MustRun("head -c 7000 /dev/zero | tr '\\0' b | sha256sum").substr(0, 64)};
  const std::string v1 = SerializeV1(idx, sha);
  CHECK(v1.size() == 40 + 2 * 40);
  auto back = osu::ParseChunkIndex(v1, "old.osu");
  REQUIRE(back);
  REQUIRE(back->chunks.size() == 2);
  CHECK(Hex(back->chunks[0].digest) == sha[0].substr(0, 32));
  CHECK(back->chunks[1].digest == idx.chunks[1].digest);
  // A version 1 body under a version 2 header is the wrong size for it.
  std::string mixed = v1;
  mixed[8] = 2;
  auto bad = osu::ParseChunkIndex(mixed, "old.osu");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message().find("does not match its 2 chunks") != std::string::npos);
}

TEST_CASE("chunk index: forged layouts are refused with what is wrong") {
  const std::string good = osu::SerializeChunkIndex(Sample());
  auto refused = [](std::string bytes, const std::string& why) {
    auto r = osu::ParseChunkIndex(bytes, "x.osu");
    REQUIRE_FALSE(r);
    INFO(r.error().message());
    CHECK(r.error().message().find("chunk index of 'x.osu'") != std::string::npos);
    CHECK(r.error().message().find(why) != std::string::npos);
  };
  std::string v4 = good;
  v4[8] = 4;
  refused(v4, "unsupported version 4");
  refused(good.substr(0, good.size() - 1), "does not match");
  std::string size = good;
  size[24] = 1;  // image size no longer the sum of the chunks
  refused(size, "chunks add up to 12000 bytes");
  std::string zero = good;
  zero[40] = zero[41] = 0;
  zero[42] = zero[43] = 0;
  refused(zero, "chunk 0 has an impossible size");
  refused("OSUCHIDY" + good.substr(8), "not an os-update chunk index");
}

TEST_CASE("chunk index: version 3 carries the window, version 2 is written without one") {
  osu::ChunkIndex idx = Sample();
  CHECK(osu::SerializeChunkIndex(idx)[8] == 2);  // window 0: devices reading 1-2 read it
  idx.window = 2u << 20;
  const std::string bytes = osu::SerializeChunkIndex(idx);
  CHECK(bytes[8] == 3);
  CHECK(bytes.size() == 44 + 2 * 24);
  auto back = osu::ParseChunkIndex(bytes, "t");
  REQUIRE(back);
  CHECK(back->window == (2u << 20));
  CHECK(back->image_size == 12000);
  REQUIRE(back->chunks.size() == 2);
  CHECK(back->chunks[1].offset == 5000);
  CHECK(back->chunks[1].compressed_offset == 20);
  CHECK(back->chunks[1].digest == idx.chunks[1].digest);
  CHECK(osu::SerializeChunkIndex(*back) == bytes);

  auto refused = [](std::string b, const std::string& why) {
    auto r = osu::ParseChunkIndex(b, "x.osu");
    REQUIRE_FALSE(r);
    INFO(r.error().message());
    CHECK(r.error().message().find(why) != std::string::npos);
  };
  std::string zero = bytes;
  zero[24] = zero[25] = zero[26] = zero[27] = 0;
  refused(zero, "window 0 out of range 1-8388608");
  std::string huge = bytes;
  huge[27] = 1;  // 16 MiB + 2 MiB
  refused(huge, "out of range");
  refused(bytes.substr(0, 40), "truncated header");
  // A frame larger than any zstd makes of its chunk: the device would trust its size.
  osu::ChunkIndex fat = idx;
  fat.chunks[0].compressed_size = 5000 + 5000 / 128 + 1025;
  refused(osu::SerializeChunkIndex(fat), "chunk 0 has an impossible size");
  fat.chunks[0].compressed_size = 5000 + 5000 / 128 + 1024;
  CHECK(osu::ParseChunkIndex(osu::SerializeChunkIndex(fat), "t"));
}

TEST_CASE("decode window: each chunk's prefix is the image bytes before it, up to the window") {
  // A 10-byte window over chunks of 4, 7, 3, 9 and 12 bytes: the buffer slides, the prefix
  // stays the last 10 bytes of the "image" (byte i of the image is i).
  osu::DecodeWindow w(10);
  std::vector<uint8_t> image;
  for (size_t size : {4u, 7u, 3u, 9u, 12u, 1u}) {
    auto into = w.Next(size);
    REQUIRE(into.size() == size);
    const std::span<const uint8_t> prefix = w.prefix();
    const size_t want = std::min<size_t>(10, image.size());
    REQUIRE(prefix.size() == want);
    CHECK(std::equal(prefix.begin(), prefix.end(), image.end() - static_cast<long>(want)));
    for (auto& b : into) {
      b = static_cast<uint8_t>(image.size());
      image.push_back(b);
    }
    CHECK(std::equal(w.chunk().begin(), w.chunk().end(), image.end() - static_cast<long>(size)));
  }
  osu::DecodeWindow none(0);
  none.Next(5);
  none.Next(3);
  CHECK(none.prefix().empty());
}
