// A read-only shared mapping of the first bytes of a file or block device: the base image as
// a zstd prefix without copying it (its pages are the page cache's, not the process's own).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/error.hpp"

namespace osu::delta {

class Mapping {
 public:
  // `size` bytes from offset 0 of `fd` (not owned; the mapping stays valid after it closes).
  static Expected<Mapping> Create(int fd, uint64_t size, const std::string& what);
  Mapping(Mapping&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr; }
  Mapping& operator=(Mapping&&) = delete;
  Mapping(const Mapping&) = delete;
  ~Mapping();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  Mapping(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  const uint8_t* data_;
  size_t size_;
};

}  // namespace osu::delta
