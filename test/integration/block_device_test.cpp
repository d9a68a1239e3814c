// Slot regions of sparse disk image files: what lies outside the region never changes, the
// region never grows, O_DIRECT carries the aligned bulk. Oracles: dd, sha256sum, fincore.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "device/block_device.hpp"
#include "install/stream_copy.hpp"
#include "support/support.hpp"

namespace {

using osu::test::MustRun;
using osu::test::TempDir;

constexpr uint64_t kMiB = 1 << 20;

// sha256 of `count` bytes of `path` at `skip`, through dd: not our code.
std::string PartSha(const std::string& path, uint64_t skip, uint64_t count) {
  return MustRun("dd if='" + path + "' bs=1M iflag=skip_bytes,count_bytes status=none skip=" +
                 std::to_string(skip) + " count=" + std::to_string(count) + " | sha256sum")
      .substr(0, 64);
}

std::string DataSha(const TempDir& dir, const uint8_t* data, size_t n) {
  osu::test::WriteFile(dir / "expected", std::string(data, data + n));
  return osu::test::Sha256OfFile(dir / "expected");
}

// 4096-aligned, like the copy buffers.
struct AlignedBytes {
  explicit AlignedBytes(size_t n, uint32_t seed)
      : size(n), p(static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096))) {
    std::mt19937 rng(seed);
    for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(rng());
  }
  ~AlignedBytes() { std::free(p); }
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;
  std::span<const uint8_t> span() const { return {p, size}; }
  size_t size;
  uint8_t* p;
};

// A 32 MiB sparse image with random bytes in the MiB before `offset` and after the region.
std::string MakeImage(const TempDir& dir, uint64_t offset, uint64_t size) {
  std::string img = dir / "disk.img";
  MustRun("truncate -s 32M '" + img + "'");
  MustRun("head -c 1048576 /dev/urandom | dd of='" + img + "' bs=1M conv=notrunc status=none " +
          "oflag=seek_bytes seek=" + std::to_string(offset - kMiB));
  MustRun("head -c 1048576 /dev/urandom | dd of='" + img + "' bs=1M conv=notrunc status=none " +
          "oflag=seek_bytes seek=" + std::to_string(offset + size));
  return img;
}

osu::BlockDeviceOptions Region(uint64_t offset, uint64_t size, bool direct = true) {
  osu::BlockDeviceOptions o;
  o.offset = offset;
  o.size = size;
  o.direct = direct;
  return o;
}

}  // namespace

TEST_CASE("A region of an image file is written without touching the bytes around it") {
  TempDir dir;
  // Aligned (O_DIRECT bulk) and unaligned (buffered only) region starts.
  for (uint64_t offset : {uint64_t{4 * kMiB}, uint64_t{4 * kMiB + 1000}}) {
    CAPTURE(offset);
    const uint64_t size = 6 * kMiB + 512;
    std::string img = MakeImage(dir, offset, size);
    std::string before = PartSha(img, 0, offset);
    std::string after = PartSha(img, offset + size, 32 * kMiB - offset - size);

    auto dev = osu::OpenBlockDevice(img, Region(offset, size));
    REQUIRE(dev);
    CHECK((*dev)->size() == size);
    CHECK((*dev)->name() == img + "@" + std::to_string(offset));
    // Data of a size that is neither a chunk nor a 4096 multiple, written in two pieces.
    AlignedBytes data(3 * kMiB + 1234, 1);
    REQUIRE((*dev)->WriteAt(0, data.span().first(2 * kMiB)));
    REQUIRE((*dev)->WriteAt(2 * kMiB, data.span().subspan(2 * kMiB)));
    REQUIRE((*dev)->Sync());
    CHECK((*dev)->bytes_written() == data.size);

    CHECK(PartSha(img, offset, data.size) == DataSha(dir, data.p, data.size));
    CHECK(PartSha(img, 0, offset) == before);
    CHECK(PartSha(img, offset + size, 32 * kMiB - offset - size) == after);
    CHECK(MustRun("stat -c %s '" + img + "'") == "33554432\n");

    // And it reads back the same through both paths (aligned and not).
    std::vector<uint8_t> back(data.size);
    auto n = (*dev)->ReadAt(0, back);
    REQUIRE(n);
    CHECK(*n == data.size);
    CHECK(std::equal(back.begin(), back.end(), data.p));
  }
}

TEST_CASE("A region never grows: writes past its end fail and change nothing") {
  TempDir dir;
  const uint64_t offset = 2 * kMiB, size = kMiB + 4096;
  std::string img = MakeImage(dir, offset, size);
  std::string after = PartSha(img, offset + size, 32 * kMiB - offset - size);
  auto dev = osu::OpenBlockDevice(img, Region(offset, size));
  REQUIRE(dev);
  AlignedBytes data(8192, 2);

  auto r = (*dev)->WriteAt(size - 4096, data.span());
  REQUIRE_FALSE(r);
  CHECK(r.error().kind() == osu::ErrorKind::Device);
  CHECK(r.error().message() == "Failed to write '" + img + "@2097152': 8192 bytes at offset " +
                                   std::to_string(size - 4096) + " pass its end (1052672 bytes)");
  CHECK_FALSE((*dev)->WriteAt(size + 1, data.span().first(1)));
  CHECK((*dev)->WriteAt(size - 4096, data.span().first(4096)));  // up to the end is fine
  REQUIRE((*dev)->Sync());
  CHECK(PartSha(img, offset + size, 32 * kMiB - offset - size) == after);

  // Reads stop at the region end.
  std::vector<uint8_t> buf(8192);
  auto n = (*dev)->ReadAt(size - 100, buf);
  REQUIRE(n);
  CHECK(*n == 100);
}

TEST_CASE("A region must lie within the file") {
  TempDir dir;
  std::string img = dir / "disk.img";
  MustRun("truncate -s 8M '" + img + "'");
  auto past = osu::OpenBlockDevice(img, Region(4 * kMiB, 4 * kMiB + 1));
  REQUIRE_FALSE(past);
  CHECK(past.error().kind() == osu::ErrorKind::Device);
  CHECK(past.error().message() ==
        "Region of '" + img + "' [4194304, 8388609) passes its end (8388608 bytes)");
  CHECK_FALSE(osu::OpenBlockDevice(img, Region(9 * kMiB, 0)));

  auto rest = osu::OpenBlockDevice(img, Region(3 * kMiB, 0));  // 0 = to the end
  REQUIRE(rest);
  CHECK((*rest)->size() == 5 * kMiB);

  auto missing = osu::OpenBlockDevice(dir / "nope.img", Region(0, 0));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message() ==
        "Failed to open '" + dir / "nope.img" + "': No such file or directory");
  CHECK_FALSE(osu::OpenBlockDevice(dir.path(), Region(0, 0)));  // a directory
}

TEST_CASE("O_DIRECT carries the aligned bulk, the unaligned tail goes buffered") {
  TempDir dir;
  std::string img = dir / "disk.img";
  auto resident = [&] { return std::stoull(MustRun("fincore -b -n -o RES '" + img + "'")); };
  AlignedBytes data(3 * kMiB + 1234, 3);

  // Fresh sparse files have nothing in the page cache: what appears there is our doing.
  MustRun("truncate -s 16M '" + img + "'");
  auto direct = osu::OpenBlockDevice(img, Region(kMiB, 8 * kMiB, true));
  REQUIRE(direct);
  REQUIRE((*direct)->WriteAt(0, data.span()));
  CHECK(resident() <= 4096);  // only the tail's page
  REQUIRE((*direct)->Sync());
  CHECK(PartSha(img, kMiB, data.size) == DataSha(dir, data.p, data.size));

  MustRun("rm '" + img + "' && truncate -s 16M '" + img + "'");
  auto buffered = osu::OpenBlockDevice(img, Region(kMiB, 8 * kMiB, false));
  REQUIRE(buffered);
  REQUIRE((*buffered)->WriteAt(0, data.span()));
  CHECK(resident() >= 3 * kMiB);  // the oracle can tell the two apart
  REQUIRE((*buffered)->Sync());
  CHECK(resident() == 0);  // Sync dropped the clean pages, so a read-back hits the medium
}

TEST_CASE("StreamToDevice into an image file region, verified by reading it back") {
  TempDir dir;
  const uint64_t offset = 4 * kMiB, size = 12 * kMiB;
  std::string img = MakeImage(dir, offset, size);
  std::string before = PartSha(img, 0, offset);
  std::string after = PartSha(img, offset + size, 32 * kMiB - offset - size);
  AlignedBytes data(9 * kMiB + 4097, 4);
  std::string sha = DataSha(dir, data.p, data.size);

  class SpanReader final : public osu::Reader {
   public:
    explicit SpanReader(std::span<const uint8_t> d) : d_(d) {}
    osu::Expected<size_t> Read(std::span<uint8_t> buf) override {
      size_t n = std::min({buf.size(), d_.size() - pos_, size_t{100003}});
      std::copy_n(d_.begin() + static_cast<std::ptrdiff_t>(pos_), n, buf.begin());
      pos_ += n;
      return n;
    }

   private:
    std::span<const uint8_t> d_;
    size_t pos_ = 0;
  } reader(data.span());

  auto dev = osu::OpenBlockDevice(img, Region(offset, size));
  REQUIRE(dev);
  osu::CopyOptions options;
  options.expected_size = data.size;
  options.expected_sha256 = sha;
  options.chunk_size = kMiB;
  options.verify_readback = true;
  auto stats = osu::StreamToDevice(reader, **dev, options);
  INFO((stats ? "" : stats.error().message()));
  REQUIRE(stats);
  CHECK(stats->sha256 == sha);
  CHECK(PartSha(img, offset, data.size) == sha);
  CHECK(PartSha(img, 0, offset) == before);
  CHECK(PartSha(img, offset + size, 32 * kMiB - offset - size) == after);
}
