// Streams as composable pull readers: source -> tar member -> decoder -> hasher.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <memory>
#include <span>

#include "common/error.hpp"

namespace osu {

class Reader {
 public:
  virtual ~Reader() = default;
  // Reads up to buf.size() bytes; returns 0 only at the end of the stream.
  virtual Expected<size_t> Read(std::span<uint8_t> buf) = 0;
};

// Reads from an fd it does not own (stdin) or owns (a file).
std::unique_ptr<Reader> MakeFdReader(int fd, bool owned, std::string name);

// Reads `r` to its end, discarding the bytes (a checking reader then judges the whole).
Result Drain(Reader& r);

// Reads a std::istream (stdin in tests that run the CLI in-process).
std::unique_ptr<Reader> MakeIstreamReader(std::istream& in, std::string name);

// Reads a string it does not own (it must outlive the reader).
class StringReader final : public Reader {
 public:
  explicit StringReader(const std::string& data) : data_(data) {}
  Expected<size_t> Read(std::span<uint8_t> buf) override;

 private:
  const std::string& data_;
  size_t pos_ = 0;
};

// Calls `observe(n)` with the byte count of every successful read: progress, counters.
class CountingReader final : public Reader {
 public:
  CountingReader(Reader& inner, std::function<void(uint64_t total)> observe)
      : inner_(inner), observe_(std::move(observe)) {}
  Expected<size_t> Read(std::span<uint8_t> buf) override;
  uint64_t total() const { return total_; }

 private:
  Reader& inner_;
  std::function<void(uint64_t)> observe_;
  uint64_t total_ = 0;
};

}  // namespace osu
