#include "common/fd.hpp"

#include "common/fault.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace osu {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.Release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Expected<Fd> Fd::Open(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) return ErrnoError("Failed to open '" + path + "'");
  return Fd(fd);
}

Result WriteAll(int fd, std::span<const uint8_t> data, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("Failed to write " + what);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

Result PWriteAll(int fd, std::span<const uint8_t> data, uint64_t offset, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("Failed to write " + what + " at offset " + std::to_string(offset + done));
    }
    if (n == 0) return DeviceError("Failed to write " + what + ": no space at offset " +
                                   std::to_string(offset + done));
    done += static_cast<size_t>(n);
  }
  return {};
}

Result PReadExact(int fd, std::span<uint8_t> data, uint64_t offset, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::pread(fd, data.data() + done, data.size() - done,
                              static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("Failed to read " + what);
    if (n == 0) return DeviceError("Failed to read " + what + ": it ends early");
    done += static_cast<size_t>(n);
  }
  return {};
}

Expected<size_t> ReadFull(int fd, std::span<uint8_t> data, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::read(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("Failed to read " + what);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

Expected<std::string> ReadFile(const std::string& path, ErrorKind kind) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("Failed to open '" + path + "'", errno, kind);
  Fd guard(fd);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("Failed to read '" + path + "'", errno, kind);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string DirName(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return ".";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::string BaseName(const std::string& path) {
  auto pos = path.find_last_of('/');
  return pos == std::string::npos ? path : path.substr(pos + 1);
}

Result SyncDirectory(const std::string& dir) {
  auto fd = Fd::Open(dir, O_RDONLY | O_DIRECTORY);
  if (!fd) return fd.error();
  if (::fsync(fd->get()) != 0) return ErrnoError("Failed to fsync directory '" + dir + "'");
  return {};
}

Result MakeDirectories(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return {};
    return DeviceError("'" + dir + "' exists and is not a directory");
  }
  std::string parent = DirName(dir);
  if (parent != dir) {
    if (auto r = MakeDirectories(parent); !r) return r;
  }
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
    return ErrnoError("Failed to create directory '" + dir + "'");
  return SyncDirectory(parent);
}

Expected<Fd> CreateStagedFile(const std::string& staged, mode_t mode) {
  if (::unlink(staged.c_str()) != 0 && errno != ENOENT)
    return ErrnoError("Failed to remove the leftover '" + staged + "'");
  return Fd::Open(staged, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
}

Result RenameIntoPlace(const std::string& staged, const std::string& path) {
  if (::rename(staged.c_str(), path.c_str()) != 0)
    return ErrnoError("Failed to rename '" + staged + "' to '" + path + "'");
  // On vfat a rename leaves the entry at cluster 0 (new name) or at the replaced file's
  // clusters (existing name) until the moved file's own inode is written back, which only an
  // fsync of that file does, not one of the directory. Seen in QEMU: grubenv truncated to 0.
  FaultPoint("write " + BaseName(path) + ", before fsync after rename");
  auto fd = Fd::Open(path, O_RDONLY | O_NOFOLLOW);
  if (!fd) return fd.error();
  if (::fsync(fd->get()) != 0) return ErrnoError("Failed to fsync '" + path + "' after rename");
  return {};
}

Result InstallFile(const std::string& path, std::span<const uint8_t> data, mode_t mode) {
  const std::string dir = DirName(path);
  const std::string tmp = dir + "/." + BaseName(path) + ".tmp";
  auto fd = CreateStagedFile(tmp, mode);
  if (!fd) return fd.error();
  auto fail = [&](Error e) {
    ::unlink(tmp.c_str());
    return e;
  };
  if (auto r = WriteAll(fd->get(), data, "'" + tmp + "'"); !r) return fail(r.error());
  FaultPoint("write " + BaseName(path) + ", before fsync");
  if (::fsync(fd->get()) != 0) return fail(ErrnoError("Failed to fsync '" + tmp + "'"));
  FaultPoint("write " + BaseName(path) + ", before rename");
  if (auto r = RenameIntoPlace(tmp, path); !r) return fail(r.error());
  FaultPoint("write " + BaseName(path) + ", before directory fsync");
  return SyncDirectory(dir);
}

Result InstallFile(const std::string& path, const std::string& data, mode_t mode) {
  return InstallFile(path, std::span(reinterpret_cast<const uint8_t*>(data.data()), data.size()),
                     mode);
}

}  // namespace osu
