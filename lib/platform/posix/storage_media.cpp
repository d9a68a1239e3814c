// The storage medium of a slot from stat(2) and sysfs (no C library needed beyond POSIX).
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <filesystem>
#include <fstream>

#include "device/storage_media.hpp"

namespace osu {
namespace {

std::string FirstLine(const std::filesystem::path& path) {
  std::ifstream f(path);
  std::string line;
  if (f) std::getline(f, line);
  return line;
}

}  // namespace

StorageMedia ClassifyBlockDevice(const std::string& sys_root, unsigned major, unsigned minor) {
  namespace fs = std::filesystem;
  std::error_code ec;
  // A symlink into /sys/devices/...; a partition's directory sits inside its disk's, and only
  // the disk has queue/.
  fs::path dev = fs::canonical(sys_root + "/dev/block/" + std::to_string(major) + ":" +
                                   std::to_string(minor),
                               ec);
  if (ec) return StorageMedia::Unknown;
  fs::path disk = fs::exists(dev / "partition", ec) ? dev.parent_path() : dev;
  // (e)MMC and SD cards: flash whatever their queue says on old kernels.
  if (disk.filename().string().rfind("mmcblk", 0) == 0) return StorageMedia::Flash;
  const std::string rotational = FirstLine(disk / "queue" / "rotational");
  if (rotational == "0") return StorageMedia::Flash;
  if (rotational == "1") return StorageMedia::Rotational;
  return StorageMedia::Unknown;
}

StorageMedia ProbeStorageMedia(const std::string& path, const std::string& sys_root) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return StorageMedia::Unknown;
  if (S_ISREG(st.st_mode)) return StorageMedia::File;
  if (!S_ISBLK(st.st_mode)) return StorageMedia::Unknown;
  return ClassifyBlockDevice(sys_root, major(st.st_rdev), minor(st.st_rdev));
}

}  // namespace osu
