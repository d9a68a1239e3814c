#include "delta/mapping.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

namespace osu::delta {

Expected<Mapping> Mapping::Create(int fd, uint64_t offset, uint64_t size, const std::string& what) {
  if (size == 0 || size > SIZE_MAX) {
    return UsageError("Cannot map " + what + " of " + std::to_string(size) + " bytes");
  }
  // Reading past the end of what is mapped faults (SIGBUS): refuse a shorter file or device.
  // lseek answers for both (st_size is 0 for a block device).
  const off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) return ErrnoError("Failed to find the size of " + what);
  const uint64_t held = std::max<uint64_t>(static_cast<uint64_t>(end), offset) - offset;
  if (held < size) {
    return StateError(what + " holds " + std::to_string(held) + " bytes from byte " +
                      std::to_string(offset) + ", not the " + std::to_string(size) +
                      " of the image");
  }
  // mmap wants a page-aligned offset: map from the page that holds `offset`.
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t skip = offset % page;
  if (size + skip > SIZE_MAX) return UsageError("Cannot map " + what + ": too large");
  const size_t map_size = static_cast<size_t>(size + skip);
  void* p = ::mmap(nullptr, map_size, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset - skip));
  if (p == MAP_FAILED) return ErrnoError("Failed to map " + what);
  return Mapping(static_cast<const uint8_t*>(p), map_size, static_cast<size_t>(skip),
                 static_cast<size_t>(size));
}

Mapping::~Mapping() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

}  // namespace osu::delta
