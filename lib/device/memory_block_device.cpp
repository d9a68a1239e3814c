#include <algorithm>
#include <cstring>

#include "device/block_device.hpp"

namespace osu {

MemoryBlockDevice::MemoryBlockDevice(uint64_t size, std::string name)
    : data_(static_cast<size_t>(size), 0), name_(std::move(name)) {}

Result MemoryBlockDevice::WriteAt(uint64_t offset, std::span<const uint8_t> data) {
  if (offset > data_.size() || data.size() > data_.size() - offset) {
    return DeviceError("Failed to write '" + name_ + "': " + std::to_string(data.size()) +
                       " bytes at offset " + std::to_string(offset) + " pass its end (" +
                       std::to_string(data_.size()) + " bytes)");
  }
  if (fail_write_after >= 0 && writes_ >= fail_write_after) {
    return DeviceError("Failed to write '" + name_ + "' at offset " + std::to_string(offset) +
                       ": No space left on device");
  }
  ++writes_;
  std::copy(data.begin(), data.end(), data_.begin() + static_cast<std::ptrdiff_t>(offset));
  written_ += data.size();
  return {};
}

Expected<size_t> MemoryBlockDevice::ReadAt(uint64_t offset, std::span<uint8_t> data) {
  if (offset > data_.size()) {
    return DeviceError("Failed to read '" + name_ + "' at offset " + std::to_string(offset) +
                       ": past its end (" + std::to_string(data_.size()) + " bytes)");
  }
  size_t n = std::min(data.size(), static_cast<size_t>(data_.size() - offset));
  std::memcpy(data.data(), data_.data() + offset, n);
  return n;
}

Result MemoryBlockDevice::Sync() {
  ++syncs;
  return {};
}

}  // namespace osu
