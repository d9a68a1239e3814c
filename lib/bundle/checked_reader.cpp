#include "bundle/checked_reader.hpp"

#include <optional>

#include "crypto/sha256.hpp"

namespace osu {
namespace {

class CheckedReader final : public Reader {
 public:
  CheckedReader(Reader& inner, uint64_t size, std::string sha256, std::string what)
      : inner_(inner), size_(size), sha256_(std::move(sha256)), what_(std::move(what)) {}

  Expected<size_t> Read(std::span<uint8_t> buf) override {
    if (failed_) return *failed_;
    if (done_) return size_t{0};
    // Never ask for more than one byte past the expected size: an overlong stream is
    // caught without reading on.
    const uint64_t left = size_ - seen_;
    if (buf.size() > left + 1) buf = buf.first(static_cast<size_t>(left + 1));
    auto n = inner_.Read(buf);
    if (!n) return Failed(n.error());
    if (*n == 0) return Finish();
    if (*n > left) {
      return Failed(VerificationError(what_ + ": size mismatch (expected " +
                                      std::to_string(size_) + " bytes, got more)"));
    }
    seen_ += *n;
    hash_.Update(std::span<const uint8_t>(buf.data(), *n));
    return n;
  }

 private:
  Expected<size_t> Finish() {
    if (seen_ != size_) {
      return Failed(VerificationError(what_ + ": size mismatch (expected " +
                                      std::to_string(size_) + " bytes, got " +
                                      std::to_string(seen_) + ")"));
    }
    std::string got = hash_.HexDigest();
    if (got != sha256_) {
      return Failed(VerificationError(what_ + ": sha256 mismatch (expected " + sha256_ +
                                      ", got " + got + ")"));
    }
    done_ = true;
    return size_t{0};
  }

  Error Failed(Error e) {
    failed_ = e;
    return e;
  }

  Reader& inner_;
  uint64_t size_;
  std::string sha256_, what_;
  uint64_t seen_ = 0;
  Sha256 hash_;
  bool done_ = false;
  std::optional<Error> failed_;
};

}  // namespace

std::unique_ptr<Reader> MakeCheckedReader(Reader& inner, uint64_t size, std::string sha256,
                                          std::string what) {
  return std::make_unique<CheckedReader>(inner, size, std::move(sha256), std::move(what));
}

}  // namespace osu
