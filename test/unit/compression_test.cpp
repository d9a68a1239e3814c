// Every codec round-trips, agrees with the real xz/zstd/gzip tools in both directions, and
// turns corrupt or cut input into a Verification error, never into silently wrong data.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "compress/compression.hpp"
#include "support/support.hpp"

using namespace osu;
using osu::test::MustRun;
using osu::test::TempDir;

namespace {

std::string Q(const std::string& s) { return "'" + s + "'"; }

// A few MiB that look like a root image: text, random (already compressed) data, zeros.
std::string MixedData(size_t mib) {
  std::string s;
  uint32_t seed = 12345;
  while (s.size() < mib << 20) {
    for (int i = 0; i < 2000; ++i) s += "usr/lib/libexample.so." + std::to_string(i % 97) + "\n";
    for (int i = 0; i < 100000; ++i) {
      seed = seed * 1664525u + 1013904223u;
      s.push_back(static_cast<char>(seed >> 24));
    }
    s.append(70000, '\0');
  }
  s.resize(mib << 20);
  return s;
}

// Hands out its string in pieces of `chunk` bytes: decoders must cope with any split.
class StringReader final : public Reader {
 public:
  explicit StringReader(std::string data, size_t chunk = 65536)
      : data_(std::move(data)), chunk_(chunk) {}
  Expected<size_t> Read(std::span<uint8_t> buf) override {
    size_t n = std::min({buf.size(), chunk_, data_.size() - pos_});
    std::copy_n(data_.data() + pos_, n, buf.data());
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  size_t chunk_, pos_ = 0;
};

class FailingReader final : public Reader {
 public:
  Expected<size_t> Read(std::span<uint8_t>) override {
    return SourceError("Failed to read 'http://server/bundle': Connection reset by peer");
  }
};

// Decodes all of `compressed` with our decoder, reading `out_chunk` bytes at a time.
Expected<std::string> Decode(Compression c, const std::string& compressed,
                             size_t out_chunk = 1u << 20, size_t in_chunk = 65536,
                             unsigned threads = 0) {
  StringReader in(compressed, in_chunk);
  auto decoder = MakeDecoder(c, in, threads);
  if (!decoder) return decoder.error();
  std::string out;
  std::vector<uint8_t> buf(out_chunk);
  for (;;) {
    auto n = (*decoder)->Read(buf);
    if (!n) return n.error();
    if (*n == 0) return out;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
}

struct Tool {
  Compression c;
  const char* compress;    // stdin -> stdout
  const char* decompress;  // file -> stdout
};
const Tool kTools[] = {
    {Compression::Xz, "xz -T2 -1 -c", "xz -dc"},
    {Compression::Zstd, "zstd -q -c", "zstd -q -dc"},
    {Compression::Gzip, "gzip -c", "gzip -dc"},
};

EncodeOptions Fast() {
  EncodeOptions o;
  o.level = 1;
  o.xz_block_size = 1u << 20;
  return o;
}

}  // namespace

TEST_CASE("compression names parse and print", "[compress]") {
  for (auto c : {Compression::None, Compression::Xz, Compression::Zstd, Compression::Gzip}) {
    auto parsed = ParseCompression(CompressionName(c));
    REQUIRE(parsed.ok());
    CHECK(*parsed == c);
  }
  auto bad = ParseCompression("bzip2");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind() == ErrorKind::Verification);
  CHECK(bad.error().message().find("'bzip2'") != std::string::npos);
}

TEST_CASE("every codec round-trips and agrees with the real tools", "[compress]") {
  TempDir dir;
  const std::string data = MixedData(5);
  osu::test::WriteFile(dir / "image", data);
  const std::string image_sha = osu::test::Sha256OfFile(dir / "image");

  SECTION("none") {
    REQUIRE(CompressFile(Compression::None, dir / "image", dir / "copy", {}).ok());
    CHECK(osu::test::ReadFile(dir / "copy") == data);
    auto out = Decode(Compression::None, data);
    REQUIRE(out.ok());
    CHECK(*out == data);
  }
  for (const auto& tool : kTools) {
    const std::string name = CompressionName(tool.c);
    osu::test::RequireTool(name);
    DYNAMIC_SECTION(name) {
      const std::string ours = dir / ("ours." + name), theirs = dir / ("theirs." + name);
      auto r = CompressFile(tool.c, dir / "image", ours, Fast());
      INFO((r.ok() ? std::string() : r.error().message()));
      REQUIRE(r.ok());

      // Ours decoded by the real tool and by us, with awkward buffer sizes too.
      MustRun(std::string(tool.decompress) + " " + Q(ours) + " > " + Q(dir / "out"));
      CHECK(osu::test::Sha256OfFile(dir / "out") == image_sha);
      const std::string compressed = osu::test::ReadFile(ours);
      CHECK(compressed.size() < data.size());
      for (size_t out_chunk : {size_t{4097}, size_t{1} << 20}) {
        auto out = Decode(tool.c, compressed, out_chunk, 1000);
        REQUIRE(out.ok());
        CHECK((*out == data));
      }

      // The real tool's output decoded by us.
      MustRun(std::string(tool.compress) + " < " + Q(dir / "image") + " > " + Q(theirs));
      auto out = Decode(tool.c, osu::test::ReadFile(theirs));
      REQUIRE(out.ok());
      CHECK((*out == data));
    }
  }
}

TEST_CASE("default options compress with each codec's default level", "[compress]") {
  TempDir dir;
  osu::test::WriteFile(dir / "image", MixedData(2));
  for (auto c : {Compression::Xz, Compression::Zstd, Compression::Gzip}) {
    REQUIRE(CompressFile(c, dir / "image", dir / "out", {}).ok());
    auto out = Decode(c, osu::test::ReadFile(dir / "out"));
    REQUIRE(out.ok());
    CHECK((*out == osu::test::ReadFile(dir / "image")));
  }
  auto bad = CompressFile(Compression::Xz, dir / "image", dir / "bad.xz", {.level = 12});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind() == ErrorKind::Usage);
  CHECK_FALSE(osu::test::FileExists(dir / "bad.xz"));  // no partial output left behind
  MustRun("ln -s image " + Q(dir / "alias"));
  auto onto_itself = CompressFile(Compression::Gzip, dir / "image", dir / "alias", {});
  REQUIRE_FALSE(onto_itself.ok());
  CHECK(onto_itself.error().kind() == ErrorKind::Usage);
  CHECK((osu::test::ReadFile(dir / "image") == MixedData(2)));
  auto missing = CompressFile(Compression::Zstd, dir / "nope", dir / "out", {});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message().find(dir / "nope") != std::string::npos);
}

TEST_CASE("xz output is multi-block and decodes the same on one thread or many", "[compress]") {
  osu::test::RequireTool("xz");
  TempDir dir;
  const std::string data = MixedData(6);
  osu::test::WriteFile(dir / "image", data);
  REQUIRE(CompressFile(Compression::Xz, dir / "image", dir / "image.xz", Fast()).ok());
  // --robot "file" line: file, streams, blocks, compressed, uncompressed, ratio, check, ...
  const std::string list = MustRun("xz --robot --list " + Q(dir / "image.xz"));
  auto line = list.substr(list.find("file\t"));
  std::vector<std::string> fields;
  for (size_t pos = 0, tab; pos != std::string::npos; pos = tab == std::string::npos ? tab : tab + 1) {
    tab = line.find_first_of("\t\n", pos);
    fields.push_back(line.substr(pos, tab == std::string::npos ? tab : tab - pos));
    if (tab != std::string::npos && line[tab] == '\n') break;
  }
  REQUIRE(fields.size() > 6);
  INFO(list);
  CHECK(fields[1] == "1");
  CHECK(std::stoul(fields[2]) == 6);  // 6 MiB in 1 MiB blocks
  CHECK(fields[6] == "CRC64");

  const std::string compressed = osu::test::ReadFile(dir / "image.xz");
  for (unsigned threads : {1u, 2u, 4u}) {
    auto out = Decode(Compression::Xz, compressed, 1u << 20, 1u << 20, threads);
    REQUIRE(out.ok());
    CHECK((*out == data));
  }
}

TEST_CASE("concatenated streams decode as their concatenation", "[compress]") {
  TempDir dir;
  osu::test::WriteFile(dir / "a", MixedData(1));
  osu::test::WriteFile(dir / "b", "second part\n");
  for (const auto& tool : kTools) {
    const std::string name = CompressionName(tool.c);
    DYNAMIC_SECTION(name) {
      REQUIRE(CompressFile(tool.c, dir / "a", dir / "a.c", Fast()).ok());
      REQUIRE(CompressFile(tool.c, dir / "b", dir / "b.c", Fast()).ok());
      auto out = Decode(tool.c, osu::test::ReadFile(dir / "a.c") + osu::test::ReadFile(dir / "b.c"));
      REQUIRE(out.ok());
      CHECK((*out == MixedData(1) + "second part\n"));
    }
  }
}

TEST_CASE("an empty image round-trips", "[compress]") {
  TempDir dir;
  osu::test::WriteFile(dir / "empty", "");
  for (const auto& tool : kTools) {
    REQUIRE(CompressFile(tool.c, dir / "empty", dir / "empty.c", {}).ok());
    CHECK(MustRun(std::string(tool.decompress) + " " + Q(dir / "empty.c")).empty());
    auto out = Decode(tool.c, osu::test::ReadFile(dir / "empty.c"));
    REQUIRE(out.ok());
    CHECK(out->empty());
  }
}

TEST_CASE("corrupt, truncated or padded streams are Verification errors", "[compress]") {
  TempDir dir;
  const std::string data = MixedData(3);
  osu::test::WriteFile(dir / "image", data);
  for (const auto& tool : kTools) {
    const std::string name = CompressionName(tool.c);
    REQUIRE(CompressFile(tool.c, dir / "image", dir / "c", Fast()).ok());
    const std::string good = osu::test::ReadFile(dir / "c");

    auto expect_error = [&](const std::string& input, const std::string& what) {
      auto out = Decode(tool.c, input);
      INFO(name << ": " << what);
      REQUIRE_FALSE(out.ok());
      CHECK(out.error().kind() == ErrorKind::Verification);
      return out.error().message();
    };
    for (double where : {0.1, 0.5, 0.9}) {
      std::string flipped = good;
      flipped[static_cast<size_t>(static_cast<double>(good.size()) * where)] ^= 0x10;
      CHECK(expect_error(flipped, "flipped byte").find("corrupt " + name + " stream") !=
            std::string::npos);
    }
    for (size_t keep : {good.size() / 2, good.size() - 1, size_t{0}}) {
      CHECK(expect_error(good.substr(0, keep), "truncated to " + std::to_string(keep)) ==
            name + " stream is truncated");
    }
    expect_error(good + "trailing garbage", "trailing garbage");
  }
}

TEST_CASE("a failing source surfaces as the source's own error", "[compress]") {
  for (auto c : {Compression::None, Compression::Xz, Compression::Zstd, Compression::Gzip}) {
    FailingReader in;
    auto decoder = MakeDecoder(c, in, 0);
    REQUIRE(decoder.ok());
    std::vector<uint8_t> buf(4096);
    auto n = (*decoder)->Read(buf);
    REQUIRE_FALSE(n.ok());
    CHECK(n.error().kind() == ErrorKind::Source);
    CHECK(n.error().message().find("Connection reset") != std::string::npos);
  }
}
