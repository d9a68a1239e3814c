// RAII file descriptor, and the file-system operations every other module shares.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <span>
#include <string>

#include "common/error.hpp"

namespace osu {

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.Release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

  // open(2) with O_CLOEXEC always added.
  static Expected<Fd> Open(const std::string& path, int flags, mode_t mode = 0644);

 private:
  int fd_ = -1;
};

// Writes all of data at the current position (retries short writes and EINTR).
Result WriteAll(int fd, std::span<const uint8_t> data, const std::string& what);
// pwrite(2) all of data at offset.
Result PWriteAll(int fd, std::span<const uint8_t> data, uint64_t offset, const std::string& what);
// pread(2) exactly data.size() bytes at offset: a file that ends before is a Device error.
Result PReadExact(int fd, std::span<uint8_t> data, uint64_t offset, const std::string& what);
// Reads up to data.size() bytes, retrying EINTR and short reads until EOF; returns bytes read.
Expected<size_t> ReadFull(int fd, std::span<uint8_t> data, const std::string& what);

Expected<std::string> ReadFile(const std::string& path, ErrorKind kind = ErrorKind::Device);

// The one atomic-install helper: write `data` to a temporary file in the same directory,
// fsync it, rename it over `path`, fsync it again, fsync the directory (CreateStagedFile and
// RenameIntoPlace below). A failed fsync is a failure.
Result InstallFile(const std::string& path, std::span<const uint8_t> data, mode_t mode = 0644);
Result InstallFile(const std::string& path, const std::string& data, mode_t mode = 0644);

// The two halves of InstallFile for a file written in pieces and moved into place later (the
// boot files, staged before the image and swapped in after it verified).
// Creates `staged` for writing: a leftover is removed first, then the file is created
// exclusively and never through a symlink (O_EXCL|O_NOFOLLOW).
Expected<Fd> CreateStagedFile(const std::string& staged, mode_t mode = 0644);
// Renames the staged file (written and fsynced) over `path`, then fsyncs it again under its
// new name: on vfat only that writes its clusters and size into the entry. The caller
// fsyncs the directory afterwards (once for several files).
Result RenameIntoPlace(const std::string& staged, const std::string& path);

// fsync a directory (after rename/unlink in it).
Result SyncDirectory(const std::string& dir);

// mkdir -p; directories created are fsynced into their parents.
Result MakeDirectories(const std::string& dir);

std::string DirName(const std::string& path);
std::string BaseName(const std::string& path);

}  // namespace osu
