// The data path on a memory device: exact copies, size and hash refusals, failures on either
// side, skip-unchanged. The sha256 oracle is `sha256sum`, not our hasher.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "device/block_device.hpp"
#include "install/stream_copy.hpp"
#include "support/support.hpp"

namespace {

using osu::ErrorKind;

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

std::string OracleSha256(const std::vector<uint8_t>& data) {
  osu::test::TempDir dir;
  osu::test::WriteFile(dir / "data", std::string(data.begin(), data.end()));
  return osu::test::Sha256OfFile(dir / "data");
}

// Hands out the data in odd-sized pieces (1..7919 bytes), like a decoder would; can fail
// with a given error after a given number of bytes.
class PiecewiseReader final : public osu::Reader {
 public:
  explicit PiecewiseReader(const std::vector<uint8_t>& data) : data_(data) {}
  osu::Expected<size_t> Read(std::span<uint8_t> buf) override {
    if (fail_at && pos >= *fail_at) return osu::SourceError("Connection reset while reading");
    size_t piece = std::min<size_t>({buf.size(), data_.size() - pos, 1 + (calls_++ * 104729) % 7919});
    if (fail_at) piece = std::min(piece, *fail_at - pos);
    std::copy_n(data_.begin() + static_cast<std::ptrdiff_t>(pos), piece, buf.begin());
    pos += piece;
    return piece;
  }
  std::optional<size_t> fail_at;
  size_t pos = 0;

 private:
  const std::vector<uint8_t>& data_;
  size_t calls_ = 0;
};

osu::CopyOptions Options(const std::vector<uint8_t>& image, const std::string& sha) {
  osu::CopyOptions o;
  o.expected_size = image.size();
  o.expected_sha256 = sha;
  o.chunk_size = 64 * 1024;
  o.buffers = 3;
  return o;
}

bool AllZero(const std::vector<uint8_t>& v, size_t from) {
  return std::all_of(v.begin() + static_cast<std::ptrdiff_t>(from), v.end(),
                     [](uint8_t b) { return b == 0; });
}

}  // namespace

TEST_CASE("StreamToDevice copies an image exactly and reports its sha256") {
  // Sizes: a chunk multiple, neither chunk nor 4096 multiple, smaller than a chunk, empty.
  for (size_t size : {size_t{4 * 65536}, size_t{3 * 65536 + 12345}, size_t{1000}, size_t{0}}) {
    CAPTURE(size);
    auto image = RandomBytes(size, static_cast<uint32_t>(size));
    std::string sha = OracleSha256(image);
    osu::MemoryBlockDevice dev(size + 100000);
    PiecewiseReader reader(image);
    std::vector<uint64_t> progress;
    auto options = Options(image, sha);
    options.progress = [&](uint64_t done) { progress.push_back(done); };

    auto stats = osu::StreamToDevice(reader, dev, options);
    INFO((stats ? "" : stats.error().message()));
    REQUIRE(stats);
    CHECK(stats->sha256 == sha);
    CHECK(stats->bytes == size);
    CHECK(stats->bytes_written == size);
    CHECK(std::equal(image.begin(), image.end(), dev.data().begin()));
    CHECK(AllZero(dev.data(), size));
    CHECK(dev.syncs == 1);
    if (size > 0) CHECK(progress.back() == size);
    CHECK(std::is_sorted(progress.begin(), progress.end()));
  }
}

TEST_CASE("StreamToDevice accepts upper-case expected sha256 and a single buffer") {
  auto image = RandomBytes(200000, 7);
  std::string sha = OracleSha256(image);
  std::transform(sha.begin(), sha.end(), sha.begin(), ::toupper);
  osu::MemoryBlockDevice dev(image.size());
  PiecewiseReader reader(image);
  auto options = Options(image, sha);
  options.buffers = 1;
  auto stats = osu::StreamToDevice(reader, dev, options);
  REQUIRE(stats);
  CHECK(std::equal(image.begin(), image.end(), dev.data().begin()));
}

TEST_CASE("StreamToDevice refuses a longer image and writes nothing past the expected size") {
  auto image = RandomBytes(300000, 1);
  for (uint64_t expected : {uint64_t{200000}, uint64_t{4 * 65536}, uint64_t{299999}}) {
    CAPTURE(expected);
    osu::MemoryBlockDevice dev(image.size() + 65536);
    PiecewiseReader reader(image);
    auto options = Options(image, OracleSha256(image));
    options.expected_size = expected;
    auto stats = osu::StreamToDevice(reader, dev, options);
    REQUIRE_FALSE(stats);
    CHECK(stats.error().kind() == ErrorKind::Verification);
    CHECK(stats.error().message() ==
          "image is longer than the manifest's " + std::to_string(expected) + " bytes");
    CHECK(AllZero(dev.data(), expected));
    CHECK(dev.syncs == 0);
    CHECK(reader.pos <= expected + 65536);  // it stopped reading at once
  }
}

TEST_CASE("StreamToDevice refuses a shorter image") {
  auto image = RandomBytes(150000, 2);
  osu::MemoryBlockDevice dev(300000);
  PiecewiseReader reader(image);
  auto options = Options(image, OracleSha256(image));
  options.expected_size = 200000;
  auto stats = osu::StreamToDevice(reader, dev, options);
  REQUIRE_FALSE(stats);
  CHECK(stats.error().kind() == ErrorKind::Verification);
  CHECK(stats.error().message() ==
        "image is shorter than the manifest says: got 150000 of 200000 bytes");
  CHECK(dev.syncs == 0);
}

TEST_CASE("StreamToDevice refuses an image whose sha256 differs") {
  auto image = RandomBytes(150000, 3);
  std::string sha = OracleSha256(image);
  auto other = image;
  other[140000] ^= 1;
  osu::MemoryBlockDevice dev(image.size());
  PiecewiseReader reader(other);
  auto stats = osu::StreamToDevice(reader, dev, Options(image, sha));
  REQUIRE_FALSE(stats);
  CHECK(stats.error().kind() == ErrorKind::Verification);
  CHECK(stats.error().message() ==
        "image sha256 mismatch: expected " + sha + ", got " + OracleSha256(other));
  CHECK(dev.syncs == 0);
}

TEST_CASE("StreamToDevice refuses an image larger than the device before writing") {
  auto image = RandomBytes(100000, 4);
  osu::MemoryBlockDevice dev(99999, "/dev/vdb3");
  PiecewiseReader reader(image);
  auto stats = osu::StreamToDevice(reader, dev, Options(image, OracleSha256(image)));
  REQUIRE_FALSE(stats);
  CHECK(stats.error().message() ==
        "image of 100000 bytes does not fit in '/dev/vdb3' (99999 bytes)");
  CHECK(dev.bytes_written() == 0);
}

TEST_CASE("StreamToDevice keeps the kind of the reader's error") {
  auto image = RandomBytes(500000, 5);
  osu::MemoryBlockDevice dev(image.size());
  PiecewiseReader reader(image);
  reader.fail_at = 300001;
  auto stats = osu::StreamToDevice(reader, dev, Options(image, OracleSha256(image)));
  REQUIRE_FALSE(stats);
  CHECK(stats.error().kind() == ErrorKind::Source);
  CHECK(stats.error().message() == "Connection reset while reading");
  CHECK(dev.syncs == 0);
}

TEST_CASE("StreamToDevice reports a failed write as a device error and stops reading") {
  auto image = RandomBytes(2000000, 6);
  osu::MemoryBlockDevice dev(image.size(), "/dev/vdb3");
  dev.fail_write_after = 2;
  PiecewiseReader reader(image);
  auto stats = osu::StreamToDevice(reader, dev, Options(image, OracleSha256(image)));
  REQUIRE_FALSE(stats);
  CHECK(stats.error().kind() == ErrorKind::Device);
  CHECK(stats.error().message() ==
        "Failed to write '/dev/vdb3' at offset 131072: No space left on device");
  CHECK(dev.bytes_written() == 2 * 65536);
  CHECK(dev.syncs == 0);
  // Bounded by the buffers in flight, not the whole image.
  CHECK(reader.pos <= 2 * 65536 + 4 * 65536);
}

TEST_CASE("StreamToDevice with skip_unchanged writes only the chunks that differ") {
  auto image = RandomBytes(10 * 65536 + 777, 8);
  std::string sha = OracleSha256(image);
  osu::MemoryBlockDevice dev(image.size() + 4096);
  std::copy(image.begin(), image.end(), dev.data().begin());
  auto options = Options(image, sha);
  options.skip_unchanged = true;

  SECTION("identical data: nothing written") {
    PiecewiseReader reader(image);
    auto stats = osu::StreamToDevice(reader, dev, options);
    REQUIRE(stats);
    CHECK(stats->bytes == image.size());
    CHECK(stats->bytes_written == 0);
    CHECK(dev.bytes_written() == 0);
    CHECK(dev.syncs == 1);
  }
  SECTION("two 4 KiB blocks and the tail differ: only they are written") {
    dev.data()[3 * 65536 + 5] ^= 0xff;
    dev.data()[7 * 65536] ^= 0xff;
    dev.data()[10 * 65536 + 776] ^= 0xff;
    PiecewiseReader reader(image);
    auto stats = osu::StreamToDevice(reader, dev, options);
    REQUIRE(stats);
    CHECK(stats->bytes_written == 2 * 4096 + 777);
    CHECK(dev.bytes_written() == 2 * 4096 + 777);
    CHECK(std::equal(image.begin(), image.end(), dev.data().begin()));
  }
}

// Logs every transfer: what the skip path asks of the medium.
class RecordingDevice final : public osu::BlockDevice {
 public:
  explicit RecordingDevice(uint64_t size) : mem_(size, "/dev/mmcblk0p3") {}
  uint64_t size() const override { return mem_.size(); }
  const std::string& name() const override { return mem_.name(); }
  osu::Result WriteAt(uint64_t offset, std::span<const uint8_t> data) override {
    writes.emplace_back(offset, data.size());
    return mem_.WriteAt(offset, data);
  }
  osu::Expected<size_t> ReadAt(uint64_t offset, std::span<uint8_t> data) override {
    if (fail_read_at == offset)
      return osu::DeviceError("Failed to read '" + name() + "' at offset " + std::to_string(offset) +
                              ": Input/output error");
    reads.emplace_back(offset, data.size());
    aligned_reads = aligned_reads && reinterpret_cast<uintptr_t>(data.data()) % 4096 == 0;
    return mem_.ReadAt(offset, data);
  }
  osu::Result Sync() override { return mem_.Sync(); }
  uint64_t bytes_written() const override { return mem_.bytes_written(); }
  std::vector<uint8_t>& data() { return mem_.data(); }

  std::vector<std::pair<uint64_t, size_t>> reads, writes;
  bool aligned_reads = true;
  std::optional<uint64_t> fail_read_at;

 private:
  osu::MemoryBlockDevice mem_;
};

TEST_CASE("skip_unchanged reads whole chunks and writes each run of changed blocks once") {
  constexpr size_t kChunk = 256 * 1024;
  auto image = RandomBytes(3 * kChunk + 1000, 11);
  RecordingDevice dev(image.size());
  std::copy(image.begin(), image.end(), dev.data().begin());
  // Chunk 0: blocks 2, 3, 4 (adjacent: one write) and block 10. Chunk 1: untouched.
  // Chunk 2: its last block. The tail: its last byte.
  for (size_t at : std::initializer_list<size_t>{2 * 4096 + 17, 3 * 4096 + 0, 4 * 4096 + 4095, 10 * 4096 + 9,
                                                 3 * kChunk - 1, 3 * kChunk + 999})
    dev.data()[at] ^= 0x5a;
  auto options = Options(image, OracleSha256(image));
  options.chunk_size = kChunk;
  options.skip_unchanged = true;
  PiecewiseReader reader(image);
  auto stats = osu::StreamToDevice(reader, dev, options);
  REQUIRE(stats);
  CHECK(std::equal(image.begin(), image.end(), dev.data().begin()));
  using Io = std::vector<std::pair<uint64_t, size_t>>;
  CHECK(dev.reads == Io{{0, kChunk}, {kChunk, kChunk}, {2 * kChunk, kChunk}, {3 * kChunk, 1000}});
  CHECK(dev.aligned_reads);
  CHECK(dev.writes == Io{{2 * 4096, 3 * 4096},
                         {10 * 4096, 4096},
                         {3 * kChunk - 4096, 4096},
                         {3 * kChunk, 1000}});
  CHECK(stats->bytes_written == 5 * 4096 + 1000);
}

TEST_CASE("skip_unchanged onto a device that differs everywhere writes each chunk once") {
  constexpr size_t kChunk = 128 * 1024;
  auto image = RandomBytes(4 * kChunk, 12);
  RecordingDevice dev(image.size());  // all zeros
  auto options = Options(image, OracleSha256(image));
  options.chunk_size = kChunk;
  options.skip_unchanged = true;
  PiecewiseReader reader(image);
  auto stats = osu::StreamToDevice(reader, dev, options);
  REQUIRE(stats);
  CHECK(std::equal(image.begin(), image.end(), dev.data().begin()));
  CHECK(dev.writes.size() == 4);
  for (const auto& [offset, len] : dev.writes) CHECK(len == kChunk);
  CHECK(stats->bytes_written == image.size());
}

TEST_CASE("StreamToDevice verifies the read-back") {
  auto image = RandomBytes(5 * 65536 + 100, 9);
  osu::MemoryBlockDevice dev(image.size());
  PiecewiseReader reader(image);
  auto options = Options(image, OracleSha256(image));
  options.verify_readback = true;
  auto stats = osu::StreamToDevice(reader, dev, options);
  INFO((stats ? "" : stats.error().message()));
  REQUIRE(stats);
}

// Reads back what it stores with one bit flipped: a medium that lies.
class FlakyDevice final : public osu::BlockDevice {
 public:
  explicit FlakyDevice(uint64_t size) : mem_(size, "/dev/flaky") {}
  uint64_t size() const override { return mem_.size(); }
  const std::string& name() const override { return mem_.name(); }
  osu::Result WriteAt(uint64_t offset, std::span<const uint8_t> data) override {
    return mem_.WriteAt(offset, data);
  }
  osu::Expected<size_t> ReadAt(uint64_t offset, std::span<uint8_t> data) override {
    auto n = mem_.ReadAt(offset, data);
    if (n && *n > 0) data[0] ^= 1;
    return n;
  }
  osu::Result Sync() override { return mem_.Sync(); }
  uint64_t bytes_written() const override { return mem_.bytes_written(); }

 private:
  osu::MemoryBlockDevice mem_;
};

TEST_CASE("StreamToDevice detects a read-back that differs") {
  auto image = RandomBytes(3 * 65536, 10);
  std::string sha = OracleSha256(image);
  FlakyDevice dev(image.size());
  PiecewiseReader reader(image);
  auto options = Options(image, sha);
  options.verify_readback = true;
  auto stats = osu::StreamToDevice(reader, dev, options);
  REQUIRE_FALSE(stats);
  CHECK(stats.error().kind() == ErrorKind::Device);
  CHECK(stats.error().message().rfind(
            "Read-back of '/dev/flaky' does not match what was written: expected sha256 " + sha, 0) == 0);
}

TEST_CASE("StreamToDevice rejects a chunk size that O_DIRECT cannot use") {
  std::vector<uint8_t> image(10);
  osu::MemoryBlockDevice dev(10);
  PiecewiseReader reader(image);
  auto options = Options(image, OracleSha256(image));
  options.chunk_size = 1000;
  auto stats = osu::StreamToDevice(reader, dev, options);
  REQUIRE_FALSE(stats);
  CHECK(stats.error().kind() == ErrorKind::Usage);
}

TEST_CASE("skip_unchanged: a target that cannot be read fails the copy, that chunk unwritten") {
  constexpr size_t kChunk = 64 * 1024;
  auto image = RandomBytes(6 * kChunk, 13);
  RecordingDevice dev(image.size());
  dev.fail_read_at = 3 * kChunk;
  auto options = Options(image, OracleSha256(image));
  options.skip_unchanged = true;
  PiecewiseReader reader(image);
  auto stats = osu::StreamToDevice(reader, dev, options);
  REQUIRE_FALSE(stats);
  CHECK(stats.error().message() == "Failed to read '/dev/mmcblk0p3' at offset 196608: Input/output error");
  for (const auto& [offset, len] : dev.writes) CHECK(offset + len <= 3 * kChunk);
}

// size_is_limit: an unsigned raw stream, whose length and sha256 only its end tells.
osu::CopyOptions SlotLimit(uint64_t slot_size) {
  osu::CopyOptions o;
  o.size_is_limit = true;
  o.expected_size = slot_size;
  o.chunk_size = 64 * 1024;
  o.buffers = 3;
  return o;
}

TEST_CASE("size_is_limit: a stream up to the slot's size is copied and hashed as it arrived") {
  constexpr uint64_t kSlot = 6 * 65536;
  // Shorter than a chunk, not a chunk multiple, a chunk multiple, exactly the slot.
  for (size_t size : {size_t{1000}, size_t{3 * 65536 + 12345}, size_t{4 * 65536}, size_t{kSlot}}) {
    CAPTURE(size);
    auto image = RandomBytes(size, static_cast<uint32_t>(size) + 100);
    osu::MemoryBlockDevice dev(kSlot);
    PiecewiseReader reader(image);
    std::vector<uint64_t> progress;
    auto options = SlotLimit(kSlot);
    options.verify_readback = true;
    options.progress = [&](uint64_t done) { progress.push_back(done); };
    auto stats = osu::StreamToDevice(reader, dev, options);
    INFO((stats ? "" : stats.error().message()));
    REQUIRE(stats);
    CHECK(stats->sha256 == OracleSha256(image));
    CHECK(stats->bytes == size);
    CHECK(stats->bytes_written == size);
    CHECK(std::equal(image.begin(), image.end(), dev.data().begin()));
    CHECK(AllZero(dev.data(), size));
    CHECK(dev.syncs == 1);
    CHECK(progress.back() == size);
  }
}

TEST_CASE("size_is_limit: a stream longer than the slot fails and writes nothing past it") {
  auto image = RandomBytes(300000, 21);
  for (uint64_t slot : {uint64_t{200000}, uint64_t{4 * 65536}, uint64_t{299999}}) {
    CAPTURE(slot);
    // The device goes on past the slot, as the rest of a disk would.
    osu::MemoryBlockDevice dev(image.size() + 65536, "/dev/vdb3");
    PiecewiseReader reader(image);
    auto options = SlotLimit(slot);
    auto stats = osu::StreamToDevice(reader, dev, options);
    REQUIRE_FALSE(stats);
    CHECK(stats.error().kind() == ErrorKind::Verification);
    CHECK(stats.error().message() == "image is larger than the slot ('/dev/vdb3', " +
                                         std::to_string(slot) + " bytes): stopped at the slot's end");
    CHECK(AllZero(dev.data(), slot));
    CHECK(dev.syncs == 0);
    CHECK(reader.pos <= slot + 65536);  // it stopped reading at once
  }
}

TEST_CASE("size_is_limit: skip_unchanged writes only the blocks that differ") {
  auto image = RandomBytes(5 * 65536 + 333, 22);
  RecordingDevice dev(8 * 65536);
  std::copy(image.begin(), image.end(), dev.data().begin());
  dev.data()[65536 + 10] ^= 0xff;
  dev.data()[5 * 65536 + 332] ^= 0xff;
  auto options = SlotLimit(dev.size());
  options.skip_unchanged = true;
  PiecewiseReader reader(image);
  auto stats = osu::StreamToDevice(reader, dev, options);
  INFO((stats ? "" : stats.error().message()));
  REQUIRE(stats);
  CHECK(stats->sha256 == OracleSha256(image));
  CHECK(stats->bytes == image.size());
  CHECK(std::equal(image.begin(), image.end(), dev.data().begin()));
  using Io = std::vector<std::pair<uint64_t, size_t>>;
  CHECK(dev.writes == Io{{65536, 4096}, {5 * 65536, 333}});
  CHECK(stats->bytes_written == 4096 + 333);
}

TEST_CASE("size_is_limit: a limit beyond the device is the caller's error, nothing written") {
  std::vector<uint8_t> image(1000, 0x5a);
  osu::MemoryBlockDevice dev(65536, "/dev/vdb3");
  PiecewiseReader reader(image);
  auto stats = osu::StreamToDevice(reader, dev, SlotLimit(65537));
  REQUIRE_FALSE(stats);
  CHECK(stats.error().kind() == ErrorKind::Usage);
  CHECK(stats.error().message() == "Copy limit of 65537 bytes is beyond the end of '/dev/vdb3' (65536 bytes)");
  CHECK(dev.bytes_written() == 0);
}
