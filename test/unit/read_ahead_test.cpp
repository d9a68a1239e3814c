// The patch download's read-ahead: the same bytes in the same order whatever the sizes, the
// inner error after the bytes before it, nothing read before the first Read, never more than
// its capacity ahead.
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "io/read_ahead.hpp"

namespace {

// Hands out `data` in pieces of 1..4999 bytes, counting them; fails after `fail_at` bytes.
class Source final : public osu::Reader {
 public:
  Source(const std::vector<uint8_t>& data, std::atomic<size_t>& given,
         std::optional<size_t> fail_at = std::nullopt)
      : data_(data), given_(given), fail_at_(fail_at) {}
  osu::Expected<size_t> Read(std::span<uint8_t> buf) override {
    const size_t end = fail_at_.value_or(data_.size());
    if (pos_ == end && fail_at_) return osu::SourceError("Connection reset at byte " + std::to_string(pos_));
    const size_t n = std::min<size_t>({buf.size(), end - pos_, 1 + (calls_++ * 7919) % 4999});
    std::copy_n(data_.begin() + static_cast<long>(pos_), n, buf.begin());
    pos_ += n;
    given_ += n;
    return n;
  }

 private:
  const std::vector<uint8_t>& data_;
  std::atomic<size_t>& given_;
  std::optional<size_t> fail_at_;
  size_t pos_ = 0, calls_ = 0;
};

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Reads everything in pieces of 1..3001 bytes; the error, if any, ends it.
std::vector<uint8_t> ReadAll(osu::Reader& r, std::optional<osu::Error>* error = nullptr) {
  std::vector<uint8_t> out, buf(3001);
  for (size_t k = 0;; ++k) {
    auto n = r.Read(std::span<uint8_t>(buf.data(), 1 + (k * 104729) % buf.size()));
    if (!n) {
      if (error) *error = n.error();
      return out;
    }
    if (*n == 0) return out;
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<long>(*n));
  }
}

}  // namespace

TEST_CASE("read-ahead hands out the inner reader's bytes in order, then the end") {
  const auto data = RandomBytes(1 << 20, 11);
  for (size_t capacity : {size_t{1}, size_t{4096}, size_t{10007}, size_t{2} << 20}) {
    CAPTURE(capacity);
    std::atomic<size_t> given{0};
    auto r = osu::MakeReadAhead(std::make_unique<Source>(data, given), capacity, 3333);
    CHECK(ReadAll(*r) == data);
    uint8_t extra;
    auto n = r->Read(std::span<uint8_t>(&extra, 1));
    REQUIRE(n);
    CHECK(*n == 0);
  }
}

TEST_CASE("read-ahead gives the inner error after every byte before it") {
  const auto data = RandomBytes(300000, 12);
  std::atomic<size_t> given{0};
  auto r = osu::MakeReadAhead(std::make_unique<Source>(data, given, 123457), 65536, 8192);
  std::optional<osu::Error> error;
  const auto got = ReadAll(*r, &error);
  CHECK(got == std::vector<uint8_t>(data.begin(), data.begin() + 123457));
  REQUIRE(error);
  CHECK(error->kind() == osu::ErrorKind::Source);
  CHECK(error->message() == "Connection reset at byte 123457");
  auto again = r->Read(std::span<uint8_t>(const_cast<uint8_t*>(data.data()), 0));
  REQUIRE(again);  // an empty read is no read
}

TEST_CASE("read-ahead reads nothing until asked, and never more than its capacity ahead") {
  const auto data = RandomBytes(1 << 20, 13);
  std::atomic<size_t> given{0};
  {
    auto r = osu::MakeReadAhead(std::make_unique<Source>(data, given), 50000, 4096);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(given == 0);  // a dry run opens the patch and decodes nothing
    uint8_t one;
    REQUIRE(r->Read(std::span<uint8_t>(&one, 1)));
    CHECK(one == data[0]);
    // The thread fills its ring and waits: at most the capacity past what was taken.
    for (int i = 0; i < 1000 && given < 50001; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(given == 50001);
  }  // destroyed with its thread waiting for room: returns
  CHECK(given < data.size());
}
