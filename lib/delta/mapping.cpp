#include "delta/mapping.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace osu::delta {

Expected<Mapping> Mapping::Create(int fd, uint64_t offset, uint64_t size, const std::string& what,
                                  size_t room) {
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
  if (room == 0) {
    void* p = ::mmap(nullptr, map_size, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(offset - skip));
    if (p == MAP_FAILED) return ErrnoError("Failed to map " + what);
    return Mapping(static_cast<const uint8_t*>(p), map_size, static_cast<size_t>(skip),
                   static_cast<size_t>(size), 0);
  }
  // [anonymous pages][the file from the page that holds `offset`]: the room is the last
  // `room` bytes before the image, partly in the file's first page when `offset` is not
  // page-aligned: that page alone is mapped copy-on-write (MAP_PRIVATE, written in memory
  // only), the rest shared and read-only like the mapping without room.
  const size_t pages = (room + page - 1) / page * page;
  if (map_size > SIZE_MAX - pages) return UsageError("Cannot map " + what + ": too large");
  void* area = ::mmap(nullptr, pages + map_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) return ErrnoError("Failed to map " + what);
  auto* base = static_cast<uint8_t*>(area);
  const auto file_at = static_cast<off_t>(offset - skip);
  const size_t cow = skip ? std::min<size_t>(page, map_size) : 0;
  bool ok = ::mmap(base, pages, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                   -1, 0) != MAP_FAILED;
  if (ok && cow) {
    ok = ::mmap(base + pages, cow, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
                file_at) != MAP_FAILED;
  }
  if (ok && map_size > cow) {
    ok = ::mmap(base + pages + cow, map_size - cow, PROT_READ, MAP_SHARED | MAP_FIXED, fd,
                file_at + static_cast<off_t>(cow)) != MAP_FAILED;
  }
  if (!ok) {
    const int saved = errno;
    ::munmap(area, pages + map_size);
    errno = saved;
    return ErrnoError("Failed to map " + what);
  }
  return Mapping(base, pages + map_size, pages + static_cast<size_t>(skip),
                 static_cast<size_t>(size), room);
}

Mapping::~Mapping() {
  if (map_) ::munmap(const_cast<uint8_t*>(map_), map_size_);
}

}  // namespace osu::delta
