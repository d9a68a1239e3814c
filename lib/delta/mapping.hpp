// A read-only shared mapping of a region of a file or block device (a slot, wherever the
// device layer keeps it): the base image as a zstd prefix without copying it (its pages are
// the page cache's, not the process's own).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "common/error.hpp"

namespace osu::delta {

class Mapping {
 public:
  // `size` bytes from byte `offset` of `fd` (not owned; the mapping stays valid after it
  // closes). `offset` need not be page-aligned.
  static Expected<Mapping> Create(int fd, uint64_t offset, uint64_t size, const std::string& what);
  Mapping(Mapping&& o) noexcept : map_(o.map_), map_size_(o.map_size_), skip_(o.skip_), size_(o.size_) {
    o.map_ = nullptr;
  }
  Mapping& operator=(Mapping&&) = delete;
  Mapping(const Mapping&) = delete;
  ~Mapping();

  std::span<const uint8_t> bytes() const { return {map_ + skip_, size_}; }

 private:
  Mapping(const uint8_t* map, size_t map_size, size_t skip, size_t size)
      : map_(map), map_size_(map_size), skip_(skip), size_(size) {}
  const uint8_t* map_;  // page-aligned start of the mapping
  size_t map_size_, skip_, size_;
};

}  // namespace osu::delta
