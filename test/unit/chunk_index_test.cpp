// The chunk index's versions: 2, 3 and 4 (written: 16-byte digests; 3 with a window, 4 with
// references to earlier chunks too) and 1
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
  std::string v5 = good;
  v5[8] = 5;
  refused(v5, "unsupported version 5");
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

namespace {

// `n` chunks of 64 KiB under version 4, with the references `refs` (chunk, referenced).
osu::ChunkIndex WithRefs(size_t n, const std::vector<std::pair<uint32_t, uint32_t>>& refs) {
  osu::ChunkIndex idx;
  idx.sizes = osu::ChunkSizes{16384, 65536, 65536};
  idx.window = 1u << 20;
  idx.refs = 2;
  idx.chunks.resize(n);
  for (auto& c : idx.chunks) {
    c.size = 65536;
    c.compressed_size = 100;
    idx.image_size += c.size;
  }
  for (auto [chunk, of] : refs) idx.chunks[chunk].refs[idx.chunks[chunk].ref_count++] = of;
  return idx;
}

}  // namespace

TEST_CASE("chunk index: version 4 carries references to earlier chunks, what they hold bounded") {
  const osu::ChunkIndex idx = WithRefs(6, {{3, 0}, {3, 1}, {5, 0}});
  const std::string bytes = osu::SerializeChunkIndex(idx);
  CHECK(bytes[8] == 4);
  CHECK(bytes.size() == 48 + 6 * 24 + 8 + 3 * 8);
  auto back = osu::ParseChunkIndex(bytes, "t");
  REQUIRE(back);
  CHECK(back->refs == 2);
  CHECK(back->chunks[3].ref_count == 2);
  CHECK(back->chunks[3].refs[0] == 0);
  CHECK(back->chunks[3].refs[1] == 1);
  CHECK(back->chunks[5].ref_count == 1);
  // Last uses: chunk 0 until chunk 5, chunk 1 until chunk 3; held at most 2 chunks at once.
  CHECK(back->chunks[0].last_use == 5);
  CHECK(back->chunks[1].last_use == 3);
  CHECK(back->chunks[2].last_use == 0);
  CHECK(osu::DeriveLastUses(back->chunks) == 2 * 65536);
  CHECK(osu::SerializeChunkIndex(*back) == bytes);

  auto refused = [](const osu::ChunkIndex& forged, const std::string& why) {
    auto r = osu::ParseChunkIndex(osu::SerializeChunkIndex(forged), "x.osu");
    INFO(why);
    REQUIRE_FALSE(r);
    INFO(r.error().message());
    CHECK(r.error().message().find(why) != std::string::npos);
  };
  refused(WithRefs(6, {{3, 3}}), "reference 0 (chunk 3 to chunk 3): not to an earlier chunk");
  refused(WithRefs(6, {{2, 4}}), "reference 0 (chunk 2 to chunk 4): not to an earlier chunk");
  {
    // The writer lists references in chunk order: swapped, the second goes back.
    std::string swapped = osu::SerializeChunkIndex(WithRefs(6, {{2, 1}, {4, 0}}));
    const size_t first = swapped.size() - 16;
    swapped = swapped.substr(0, first) + swapped.substr(first + 8, 8) + swapped.substr(first, 8);
    auto r = osu::ParseChunkIndex(swapped, "x.osu");
    REQUIRE_FALSE(r);
    CHECK(r.error().message().find("reference 1 (chunk 2 to chunk 1): out of order") !=
          std::string::npos);
  }
  osu::ChunkIndex three = WithRefs(6, {{4, 0}, {4, 1}});
  three.refs = 1;  // the header allows one a chunk
  refused(three, "reference 1 (chunk 4 to chunk 1): more than 1");
  osu::ChunkIndex none = WithRefs(6, {});
  none.refs = 3;
  refused(none, "references per chunk 3 out of range 1-2");
  std::string cut = bytes;
  cut.resize(cut.size() - 8);  // the last reference gone, its count kept
  auto r = osu::ParseChunkIndex(cut, "x.osu");
  REQUIRE_FALSE(r);
  CHECK(r.error().message().find("does not match its 6 chunks and 3 references") != std::string::npos);
  // 260 chunks of 64 KiB each referred to by a chunk after all of them: 16.25 MiB held at once.
  std::vector<std::pair<uint32_t, uint32_t>> late;
  for (uint32_t j = 0; j < 260; ++j) late.emplace_back(260 + j / 2, j);
  refused(WithRefs(400, late), "its referenced chunks need 17039360 bytes kept at once, at most 16777216");
  late.resize(256);  // 16 MiB: the bound itself
  CHECK(osu::ParseChunkIndex(osu::SerializeChunkIndex(WithRefs(400, late)), "t"));
}

TEST_CASE("chunk stream: a chunk's prefix is the chunks it refers to, then the window") {
  // Chunk i is 1000 + i bytes of value i; a 3000-byte window, references as the index says.
  osu::ChunkIndex idx;
  idx.sizes = osu::ChunkSizes{256, 1024, 4096};
  idx.window = 3000;
  idx.refs = 2;
  for (uint32_t i = 0; i < 12; ++i) {
    osu::ChunkEntry c;
    c.size = 1000 + i;
    c.compressed_size = 1;
    idx.chunks.push_back(c);
  }
  auto add = [&](uint32_t chunk, uint32_t of) {
    idx.chunks[chunk].refs[idx.chunks[chunk].ref_count++] = of;
  };
  add(6, 0);
  add(6, 2);
  add(9, 2);
  add(11, 1);
  add(11, 9);
  osu::DeriveLastUses(idx.chunks);
  class Recorder final : public osu::ChunkStream {
   public:
    explicit Recorder(const osu::ChunkIndex& i) : ChunkStream(i) {}
    std::vector<std::vector<uint8_t>> prefixes;

   private:
    osu::Result Fill(size_t i, std::span<uint8_t> into, std::span<const uint8_t> prefix) override {
      prefixes.emplace_back(prefix.begin(), prefix.end());
      std::fill(into.begin(), into.end(), static_cast<uint8_t>(i));
      return {};
    }
  } stream(idx);
  std::vector<uint8_t> image;
  std::vector<uint8_t> buf(777);
  for (;;) {
    auto n = stream.Read(buf);
    REQUIRE(n);
    if (*n == 0) break;
    image.insert(image.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
  }
  REQUIRE(stream.prefixes.size() == 12);
  size_t at = 0;
  for (uint32_t i = 0; i < 12; ++i) {
    std::vector<uint8_t> want;
    for (uint32_t k = 0; k < idx.chunks[i].ref_count; ++k)
      want.insert(want.end(), idx.chunks[idx.chunks[i].refs[k]].size,
                  static_cast<uint8_t>(idx.chunks[i].refs[k]));
    const size_t w = std::min<size_t>(at, 3000);
    want.insert(want.end(), image.begin() + static_cast<long>(at - w), image.begin() + static_cast<long>(at));
    INFO("chunk " << i);
    CHECK(stream.prefixes[i] == want);
    at += idx.chunks[i].size;
  }
  CHECK(image.size() == at);
}
