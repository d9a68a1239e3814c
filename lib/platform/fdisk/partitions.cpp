// ReadDiskPartitions with libfdisk: the GPT of a disk or of a disk image file, read-only.
#include <fcntl.h>
#include <libfdisk.h>
#include <sys/stat.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>

#include "common/fd.hpp"
#include "slots/block_sysfs.hpp"
#include "slots/slots.hpp"

namespace osu {
namespace {

struct ContextDeleter {
  void operator()(fdisk_context* c) const { fdisk_unref_context(c); }
};
struct TableDeleter {
  void operator()(fdisk_table* t) const { fdisk_unref_table(t); }
};

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Expected<std::vector<Partition>> ReadDiskPartitions(const std::string& disk) {
  struct stat st {};
  if (::stat(disk.c_str(), &st) != 0) {
    // The disk comes from the configuration (or its default): a missing one is a config error.
    if (errno == ENOENT || errno == ENOTDIR) {
      return ErrnoError("slots.disk '" + disk + "'", errno, ErrorKind::Usage);
    }
    return ErrnoError("Failed to stat '" + disk + "'", errno);
  }
  auto fd = Fd::Open(disk, O_RDONLY);
  if (!fd) return fd.error();

  // Declared after fd: the context lets go of the descriptor before it is closed.
  std::unique_ptr<fdisk_context, ContextDeleter> cxt(fdisk_new_context());
  if (!cxt) return DeviceError("Failed to read the partition table of '" + disk + "': out of memory");
  // By fd, so that the descriptor is ours (O_CLOEXEC, closed by Fd); read-only.
  if (int rc = fdisk_assign_device_by_fd(cxt.get(), fd->get(), disk.c_str(), 1); rc < 0) {
    return ErrnoError("Failed to read the partition table of '" + disk + "'", -rc);
  }
  if (!fdisk_has_label(cxt.get()) || !fdisk_is_label(cxt.get(), GPT)) {
    return StateError("'" + disk + "' has no GPT partition table");
  }

  fdisk_table* raw = nullptr;
  int rc = fdisk_get_partitions(cxt.get(), &raw);
  std::unique_ptr<fdisk_table, TableDeleter> table(raw);
  if (rc < 0) {
    return ErrnoError("Failed to read the partitions of '" + disk + "'", -rc);
  }

  const uint64_t sector = fdisk_get_sector_size(cxt.get());
  const bool block = S_ISBLK(st.st_mode);
  std::vector<Partition> parts;
  for (size_t i = 0; i < fdisk_table_get_nents(table.get()); ++i) {
    fdisk_partition* pa = fdisk_table_get_partition(table.get(), i);
    if (!pa || !fdisk_partition_is_used(pa) || !fdisk_partition_has_start(pa)) continue;
    Partition p;
    p.disk = disk;
    p.number = static_cast<int>(fdisk_partition_get_partno(pa) + 1);
    p.offset = fdisk_partition_get_start(pa) * sector;
    p.size = fdisk_partition_get_size(pa) * sector;
    if (const char* name = fdisk_partition_get_name(pa)) p.label = name;
    if (const char* uuid = fdisk_partition_get_uuid(pa)) p.partuuid = Lower(uuid);
    if (block) {
      if (auto node = FindPartitionNode(st.st_rdev, p.number)) {
        p.device = node->device;
        p.devno = node->devno;
      }
    }
    parts.push_back(std::move(p));
  }
  return parts;
}

}  // namespace osu
