// Slot regions on block devices and disk image files, with O_DIRECT for the aligned bulk of
// every transfer (it bypasses the page cache) and a buffered fd for unaligned tails.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>

#include "common/fd.hpp"
#include "device/block_device.hpp"

namespace osu {
namespace {

constexpr uint64_t kDirectAlign = 4096;

bool Aligned(uint64_t v) { return v % kDirectAlign == 0; }
bool Aligned(const void* p) { return Aligned(reinterpret_cast<uintptr_t>(p)); }

class PosixBlockDevice final : public BlockDevice {
 public:
  PosixBlockDevice(Fd fd, Fd direct_fd, std::string name, uint64_t offset, uint64_t size)
      : fd_(std::move(fd)),
        direct_fd_(std::move(direct_fd)),
        direct_(direct_fd_.valid()),
        name_(std::move(name)),
        offset_(offset),
        size_(size) {}

  uint64_t size() const override { return size_; }
  const std::string& name() const override { return name_; }
  uint64_t bytes_written() const override { return written_.load(); }

  Result WriteAt(uint64_t offset, std::span<const uint8_t> data) override {
    if (offset > size_ || data.size() > size_ - offset) {
      return DeviceError("Failed to write '" + name_ + "': " + std::to_string(data.size()) +
                         " bytes at offset " + std::to_string(offset) + " pass its end (" +
                         std::to_string(size_) + " bytes)");
    }
    size_t done = 0;
    if (UseDirect(offset, data.data())) {
      auto n = TransferDirect(offset, const_cast<uint8_t*>(data.data()), data.size(), true);
      if (!n) return n.error();
      done = *n;
    }
    if (done < data.size()) {
      auto r = PWriteAll(fd_.get(), data.subspan(done), offset_ + offset + done, "'" + name_ + "'");
      if (!r) return r;
    }
    written_ += data.size();
    return {};
  }

  Expected<size_t> ReadAt(uint64_t offset, std::span<uint8_t> data) override {
    if (offset > size_) {
      return DeviceError("Failed to read '" + name_ + "' at offset " + std::to_string(offset) +
                         ": past its end (" + std::to_string(size_) + " bytes)");
    }
    size_t want = static_cast<size_t>(std::min<uint64_t>(data.size(), size_ - offset));
    size_t done = 0;
    if (UseDirect(offset, data.data())) {
      auto n = TransferDirect(offset, data.data(), want, false);
      if (!n) return n.error();
      done = *n;
    }
    while (done < want) {
      ssize_t n = ::pread(fd_.get(), data.data() + done, want - done,
                          static_cast<off_t>(offset_ + offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        return ErrnoError("Failed to read '" + name_ + "' at offset " +
                          std::to_string(offset + done));
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    return done;
  }

  Result Sync() override {
    if (::fdatasync(fd_.get()) != 0) return ErrnoError("Failed to sync '" + name_ + "'");
    // Clean pages are no longer needed, and a read-back verify must come from the medium.
    (void)::posix_fadvise(fd_.get(), static_cast<off_t>(offset_), static_cast<off_t>(size_),
                          POSIX_FADV_DONTNEED);
    return {};
  }

 private:
  bool UseDirect(uint64_t offset, const void* p) const {
    return direct_.load(std::memory_order_relaxed) && Aligned(offset_ + offset) && Aligned(p);
  }

  // Moves the largest aligned prefix of [p, p+len) through the O_DIRECT fd; returns how much
  // it moved (the caller does the rest buffered). EINVAL means the file system refuses
  // O_DIRECT for this file: from then on everything goes buffered.
  Expected<size_t> TransferDirect(uint64_t offset, uint8_t* p, size_t len, bool write) {
    size_t aligned_len = len - len % kDirectAlign;
    size_t done = 0;
    while (done < aligned_len) {
      off_t at = static_cast<off_t>(offset_ + offset + done);
      ssize_t n = write ? ::pwrite(direct_fd_.get(), p + done, aligned_len - done, at)
                        : ::pread(direct_fd_.get(), p + done, aligned_len - done, at);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EINVAL && done == 0) {
        direct_ = false;
        return size_t{0};
      }
      if (n < 0) {
        return ErrnoError(std::string("Failed to ") + (write ? "write" : "read") + " '" + name_ +
                          "' at offset " + std::to_string(offset + done));
      }
      if (n == 0) {
        if (!write) break;
        return DeviceError("Failed to write '" + name_ + "': no space at offset " +
                           std::to_string(offset + done));
      }
      done += static_cast<size_t>(n);
      if (!Aligned(done)) break;  // a short unaligned transfer: finish buffered
    }
    return done;
  }

  Fd fd_;
  Fd direct_fd_;
  std::atomic<bool> direct_;
  std::string name_;
  uint64_t offset_;
  uint64_t size_;
  std::atomic<uint64_t> written_{0};
};

}  // namespace

Expected<std::unique_ptr<BlockDevice>> OpenBlockDevice(const std::string& path,
                                                       const BlockDeviceOptions& options) {
  std::string name = options.offset ? path + "@" + std::to_string(options.offset) : path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoError("Failed to open '" + path + "'");
  bool is_block = S_ISBLK(st.st_mode);
  if (!is_block && !S_ISREG(st.st_mode)) {
    return DeviceError("Failed to open '" + path + "': not a block device or regular file");
  }

  int flags = O_RDWR;
  if (is_block && options.exclusive) flags |= O_EXCL;
  int raw = ::open(path.c_str(), flags | O_CLOEXEC);
  if (raw < 0 && errno == EBUSY) {
    return StateError("'" + path + "' is in use (mounted or held by another program)");
  }
  if (raw < 0) return ErrnoError("Failed to open '" + path + "'");
  Fd fd(raw);

  uint64_t total = 0;
  if (::ioctl(fd.get(), BLKGETSIZE64, &total) != 0) {
    if (errno != ENOTTY) return ErrnoError("Failed to get the size of '" + path + "'");
    if (::fstat(fd.get(), &st) != 0) return ErrnoError("Failed to stat '" + path + "'");
    total = static_cast<uint64_t>(st.st_size);
  }
  if (options.offset > total) {
    return DeviceError("Region of '" + path + "' starts at " + std::to_string(options.offset) +
                       ", past its end (" + std::to_string(total) + " bytes)");
  }
  uint64_t size = options.size ? options.size : total - options.offset;
  if (size > total - options.offset) {
    return DeviceError("Region of '" + path + "' [" + std::to_string(options.offset) + ", " +
                       std::to_string(options.offset + size) + ") passes its end (" +
                       std::to_string(total) + " bytes)");
  }

  Fd direct;
  int sector = 512;
  if (is_block && ::ioctl(fd.get(), BLKSSZGET, &sector) != 0) sector = 512;
  if (options.direct && Aligned(options.offset) && sector > 0 &&
      kDirectAlign % static_cast<unsigned>(sector) == 0) {
    // Reopen the very inode we hold (not the path again); without O_EXCL, which we hold.
    int d = ::open(("/proc/self/fd/" + std::to_string(fd.get())).c_str(),
                   O_RDWR | O_DIRECT | O_CLOEXEC);
    if (d < 0 && errno == ENOENT) d = ::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
    // Refused (EINVAL: the file system has no O_DIRECT): buffered I/O still works.
    if (d >= 0) direct = Fd(d);
  }
  return std::unique_ptr<BlockDevice>(
      new PosixBlockDevice(std::move(fd), std::move(direct), std::move(name), options.offset, size));
}

}  // namespace osu
