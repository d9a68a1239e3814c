// The dangerous seam: the bytes of a slot. A slot is a region [offset, offset+size) of a
// block device or of a disk image file. Real implementation: platform/posix; tests use
// MemoryBlockDevice.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/error.hpp"

namespace osu {

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  virtual uint64_t size() const = 0;
  virtual const std::string& name() const = 0;  // for messages: "/dev/vda3" or "disk.img@1048576"
  // offset is relative to the region; writes never extend past size() (Device error).
  virtual Result WriteAt(uint64_t offset, std::span<const uint8_t> data) = 0;
  virtual Expected<size_t> ReadAt(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual Result Sync() = 0;
  // Bytes written through this object so far (for skip-unchanged figures).
  virtual uint64_t bytes_written() const = 0;
};

struct BlockDeviceOptions {
  uint64_t offset = 0;         // region start in `path`
  uint64_t size = 0;           // region length; 0 = to the end of the file/device
  bool exclusive = true;       // O_EXCL on block devices: fails with EBUSY if mounted/in use
  bool direct = true;          // O_DIRECT when offset/size allow it (bypasses the page cache)
};

// Opens for writing. Regular files and block devices alike (ENOTTY from BLKGETSIZE64 means
// a regular file). A mounted block device: State error "'/dev/x' is in use (mounted?)".
Expected<std::unique_ptr<BlockDevice>> OpenBlockDevice(const std::string& path,
                                                       const BlockDeviceOptions& options);

// In-memory device for unit tests; can be told to fail at a given write.
class MemoryBlockDevice final : public BlockDevice {
 public:
  explicit MemoryBlockDevice(uint64_t size, std::string name = "memory");
  uint64_t size() const override { return data_.size(); }
  const std::string& name() const override { return name_; }
  Result WriteAt(uint64_t offset, std::span<const uint8_t> data) override;
  Expected<size_t> ReadAt(uint64_t offset, std::span<uint8_t> data) override;
  Result Sync() override;
  uint64_t bytes_written() const override { return written_; }

  std::vector<uint8_t>& data() { return data_; }
  int fail_write_after = -1;  // >= 0: that many writes succeed, then ENOSPC-like failure
  int syncs = 0;

 private:
  std::vector<uint8_t> data_;
  std::string name_;
  uint64_t written_ = 0;
  int writes_ = 0;
};

}  // namespace osu
