#include "delta/mapping.hpp"

#include <sys/mman.h>
#include <unistd.h>

namespace osu::delta {

Expected<Mapping> Mapping::Create(int fd, uint64_t size, const std::string& what) {
  if (size == 0 || size > SIZE_MAX) {
    return UsageError("Cannot map " + what + " of " + std::to_string(size) + " bytes");
  }
  // Reading past the end of what is mapped faults (SIGBUS): refuse a shorter file or device.
  // lseek answers for both (st_size is 0 for a block device).
  const off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) return ErrnoError("Failed to find the size of " + what);
  if (static_cast<uint64_t>(end) < size) {
    return StateError(what + " holds " + std::to_string(end) + " bytes, not the " +
                      std::to_string(size) + " of the image");
  }
  void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ErrnoError("Failed to map " + what);
  return Mapping(static_cast<const uint8_t*>(p), static_cast<size_t>(size));
}

Mapping::~Mapping() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace osu::delta
