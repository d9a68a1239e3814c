#include "install/lock.hpp"

#include <fcntl.h>
#include <sys/file.h>

#include <cerrno>

namespace osu {

Expected<Fd> AcquireLock(const std::string& path) {
  auto fd = Fd::Open(path, O_RDWR | O_CREAT, 0600);
  if (!fd) return fd.error();
  if (::flock(fd->get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK)
      return StateError("another os-update is running (lock '" + path + "' is held)");
    return ErrnoError("Failed to lock '" + path + "'");
  }
  return std::move(*fd);
}

}  // namespace osu
