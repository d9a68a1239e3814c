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
  // closes). `offset` need not be page-aligned. With `room`, that many writable bytes of
  // anonymous memory come right before them (a zstd prefix must be one run of bytes: decoded
  // blocks, then the base); the file's pages are then mapped copy-on-write, never written back.
  static Expected<Mapping> Create(int fd, uint64_t offset, uint64_t size, const std::string& what,
                                  size_t room = 0);
  Mapping(Mapping&& o) noexcept
      : map_(o.map_), map_size_(o.map_size_), skip_(o.skip_), size_(o.size_), room_(o.room_) {
    o.map_ = nullptr;
  }
  Mapping& operator=(Mapping&&) = delete;
  Mapping(const Mapping&) = delete;
  ~Mapping();

  std::span<const uint8_t> bytes() const { return {map_ + skip_, size_}; }
  // The last n (at most `room`) bytes before bytes(), to write; and those n bytes with bytes().
  std::span<uint8_t> Room(size_t n) { return {const_cast<uint8_t*>(map_) + skip_ - n, n}; }
  std::span<const uint8_t> WithRoom(size_t n) const { return {map_ + skip_ - n, n + size_}; }
  size_t room() const { return room_; }

 private:
  Mapping(const uint8_t* map, size_t map_size, size_t skip, size_t size, size_t room)
      : map_(map), map_size_(map_size), skip_(skip), size_(size), room_(room) {}
  const uint8_t* map_;  // page-aligned start of the mapping (of the room's pages, if any)
  size_t map_size_, skip_, size_, room_;
};

}  // namespace osu::delta
