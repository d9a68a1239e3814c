// The chunk pipeline: every consumer sees every chunk in order; a consumer told to wait for
// another (the skip-unchanged writer after the target reader) never gets ahead of it, while
// the one it waits for may run ahead; any failure stops everyone without a hang.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "install/chunk_pipeline.hpp"

namespace {

using Chunks = std::vector<std::pair<uint64_t, size_t>>;
constexpr size_t kChunk = 4096;

struct Buffers {
  explicit Buffers(unsigned n) {
    for (unsigned i = 0; i < n; ++i) {
      owned.push_back(osu::AllocateAligned(kChunk));
      raw.push_back(owned.back().get());
    }
  }
  std::vector<osu::AlignedBuffer> owned;
  std::vector<uint8_t*> raw;
};

// `chunks` full chunks and a tail of 100 bytes; byte j of chunk c is (c + j) % 251.
osu::ChunkPipeline::Producer Counting(size_t chunks) {
  return [chunks](uint64_t offset, std::span<uint8_t> buf) -> osu::Expected<size_t> {
    const uint64_t c = offset / kChunk;
    if (c > chunks) return size_t{0};
    const size_t n = c == chunks ? 100 : buf.size();
    for (size_t j = 0; j < n; ++j) buf[j] = static_cast<uint8_t>((c + j) % 251);
    return n;
  };
}

bool Holds(uint64_t offset, std::span<const uint8_t> data) {
  for (size_t j = 0; j < data.size(); ++j)
    if (data[j] != static_cast<uint8_t>((offset / kChunk + j) % 251)) return false;
  return true;
}

}  // namespace

TEST_CASE("chunk pipeline: every consumer sees every chunk, in order, intact") {
  Buffers b(3);
  osu::ChunkPipeline pipeline(b.raw, kChunk);
  std::vector<Chunks> seen(3);
  std::atomic<bool> intact{true};
  auto record = [&](size_t k) {
    return [&, k](uint64_t offset, std::span<const uint8_t> data) -> osu::Result {
      seen[k].emplace_back(offset, data.size());
      if (!Holds(offset, data)) intact = false;
      return {};
    };
  };
  REQUIRE(pipeline.Run(Counting(20), {record(0), record(1), record(2)}, {std::nullopt, std::nullopt, 1}));
  Chunks expected;
  for (uint64_t c = 0; c < 20; ++c) expected.emplace_back(c * kChunk, kChunk);
  expected.emplace_back(20 * kChunk, 100);
  for (const auto& s : seen) CHECK(s == expected);
  CHECK(intact);
}

TEST_CASE("chunk pipeline: a consumer after another never overtakes it, and that one runs ahead") {
  const unsigned buffers = 4;
  Buffers b(buffers);
  osu::ChunkPipeline pipeline(b.raw, kChunk);
  std::atomic<int64_t> reader_done{0};
  std::atomic<int64_t> max_lead{0};
  std::atomic<bool> overtaken{false};
  auto reader = [&](uint64_t, std::span<const uint8_t>) -> osu::Result {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    ++reader_done;
    return {};
  };
  int64_t writer_done = 0;
  auto writer = [&](uint64_t offset, std::span<const uint8_t>) -> osu::Result {
    const auto chunk = static_cast<int64_t>(offset / kChunk);
    if (reader_done.load() <= chunk) overtaken = true;
    // A slow writer: the reader may get ahead, by at most the chunks in flight.
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    max_lead = std::max<int64_t>(max_lead, reader_done.load() - writer_done);
    ++writer_done;
    return {};
  };
  auto hash = [](uint64_t, std::span<const uint8_t>) -> osu::Result { return {}; };
  REQUIRE(pipeline.Run(Counting(30), {hash, reader, writer}, {std::nullopt, std::nullopt, 1}));
  CHECK_FALSE(overtaken);
  CHECK(writer_done == 31);
  CHECK(max_lead >= 2);  // the reads overlapped the writes
  CHECK(max_lead <= buffers);
}

TEST_CASE("chunk pipeline: a failure anywhere stops the waiting consumer too") {
  Buffers b(2);
  osu::ChunkPipeline pipeline(b.raw, kChunk);
  std::atomic<int> writes{0};
  auto fail_at = [](uint64_t at) {
    return [at](uint64_t offset, std::span<const uint8_t>) -> osu::Result {
      if (offset == at * kChunk) return osu::DeviceError("Failed to read '/dev/x' at offset " + std::to_string(offset));
      return {};
    };
  };
  auto fine = [](uint64_t, std::span<const uint8_t>) -> osu::Result { return {}; };
  auto writer = [&](uint64_t, std::span<const uint8_t>) -> osu::Result {
    ++writes;
    return {};
  };

  SECTION("the one it waits for") {
    auto r = pipeline.Run(Counting(50), {fine, fail_at(5), writer}, {std::nullopt, std::nullopt, 1});
    REQUIRE_FALSE(r);
    CHECK(r.error().message() == "Failed to read '/dev/x' at offset 20480");
    CHECK(writes <= 5);  // never the chunk whose read failed
  }
  SECTION("another consumer") {
    auto r = pipeline.Run(Counting(50), {fail_at(7), fine, writer}, {std::nullopt, std::nullopt, 1});
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == osu::ErrorKind::Device);
  }
  SECTION("the producer") {
    auto produce = [](uint64_t offset, std::span<uint8_t> buf) -> osu::Expected<size_t> {
      if (offset >= 9 * kChunk) return osu::SourceError("Connection reset");
      return buf.size();
    };
    auto r = pipeline.Run(produce, {fine, fine, writer}, {std::nullopt, std::nullopt, 1});
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == osu::ErrorKind::Source);
  }
}

TEST_CASE("chunk pipeline: a consumer can only wait for an earlier one") {
  Buffers b(2);
  osu::ChunkPipeline pipeline(b.raw, kChunk);
  auto fine = [](uint64_t, std::span<const uint8_t>) -> osu::Result { return {}; };
  for (auto after : {std::vector<std::optional<size_t>>{1, std::nullopt},
                     std::vector<std::optional<size_t>>{std::nullopt, 1},
                     std::vector<std::optional<size_t>>{std::nullopt, std::nullopt, 0}}) {
    auto r = pipeline.Run(Counting(3), {fine, fine}, after);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind() == osu::ErrorKind::Usage);
  }
}
