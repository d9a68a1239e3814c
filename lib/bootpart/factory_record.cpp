#include "bootpart/factory_record.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <vector>

#include "bootpart/boot_partition.hpp"
#include "common/fd.hpp"
#include "crypto/sha256.hpp"

namespace osu {
namespace {

uint64_t Le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The files an install would have listed: the slot snippet and the record are the
// bootloader's and os-update's own, not the bundle's.
Expected<std::vector<FileEntry>> BootFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return ErrnoError("Failed to open the slot's boot directory '" + dir + "'", errno,
                            ErrorKind::Usage);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == ".." || name == "record.yml" || name == "grub.cfg" ||
        name == "boot.env" || name == "cmdline.txt")
      continue;
    struct stat st {};
    if (::stat((dir + "/" + name).c_str(), &st) == 0 && S_ISREG(st.st_mode)) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<FileEntry> files;
  for (const auto& name : names) {
    auto data = ReadFile(dir + "/" + name);
    if (!data) return data.error();
    files.push_back({name, data->size(), Sha256Hex(*data)});
  }
  if (files.empty())
    return UsageError("no boot files (kernel, initrd) in '" + dir +
                      "': the slot would not be bootable");
  return files;
}

}  // namespace

Expected<std::optional<uint64_t>> FileSystemImageSize(int fd, uint64_t offset,
                                                      const std::string& what) {
  std::array<uint8_t, 2048> sb {};
  if (auto r = PReadExact(fd, sb, offset, what); !r) return r.error();
  if (sb[0] == 'h' && sb[1] == 's' && sb[2] == 'q' && sb[3] == 's') {
    const uint64_t used = Le(&sb[40], 8);  // squashfs super_block.bytes_used
    return std::optional<uint64_t>((used + 4095) / 4096 * 4096);
  }
  const uint8_t* ext = &sb[1024];
  if (Le(ext + 0x38, 2) == 0xEF53) {
    const uint64_t block = 1024ull << Le(ext + 0x18, 4);
    uint64_t blocks = Le(ext + 0x04, 4);
    if (Le(ext + 0x60, 4) & 0x80) blocks |= Le(ext + 0x150, 4) << 32;  // INCOMPAT_64BIT
    return std::optional<uint64_t>(blocks * block);
  }
  return std::optional<uint64_t>();
}

Expected<Record> WriteFactoryRecord(const FactoryRecordRequest& request) {
  auto parts = ReadDiskPartitions(request.disk);
  if (!parts) return parts.error();
  const Partition* part = nullptr;
  for (const auto& p : *parts) {
    if (p.label != request.partition) continue;
    if (part)
      return UsageError("'" + request.disk + "' has two partitions labelled '" +
                        request.partition + "' (" + std::to_string(part->number) + " and " +
                        std::to_string(p.number) + ")");
    part = &p;
  }
  if (!part)
    return UsageError("'" + request.disk + "' has no partition labelled '" + request.partition +
                      "'");
  const std::string what =
      "slot " + SlotName(request.slot) + " ('" + request.disk + "' partition " +
      std::to_string(part->number) + ", " + request.partition + ")";

  auto fd = Fd::Open(request.disk, O_RDONLY);
  if (!fd) return fd.error();
  // On a disk device the partition's own node is not needed: read the disk at the offset.
  uint64_t size = 0;
  if (request.size) {
    size = *request.size;
  } else {
    auto detected = FileSystemImageSize(fd->get(), part->offset, what);
    if (!detected) return detected.error();
    if (!*detected)
      return UsageError(what + " holds no squashfs or ext2/3/4 file system: give its size");
    size = **detected;
  }
  if (size == 0 || size > part->size)
    return UsageError(what + ": an image of " + std::to_string(size) +
                      " bytes does not fit its " + std::to_string(part->size) + " bytes");

  auto boot_files = BootFiles(BootPartition(request.boot_path).SlotDirectory(request.slot));
  if (!boot_files) return boot_files.error();

  Sha256 hash;
  std::vector<uint8_t> buf(4u << 20);
  for (uint64_t done = 0; done < size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
    if (auto r = PReadExact(fd->get(), std::span(buf.data(), n), part->offset + done, what); !r)
      return r.error();
    hash.Update(std::span<const uint8_t>(buf.data(), n));
    done += n;
  }

  Record record;
  record.slot = request.slot;
  record.state = SlotState::Verified;
  record.version = request.version;
  record.compatible = request.compatible;
  record.sha256 = hash.HexDigest();
  record.size = size;
  record.cmdline = request.cmdline;
  record.boot_files = std::move(boot_files).value();
  record.updated_at = UtcNow();
  // The factory slot is the committed one (first in the factory env's OSU_ORDER): --rollback
  // may return to it.
  record.committed_at = record.updated_at;
  if (auto r = BootPartition(request.boot_path).SaveRecord(record); !r) return r.error();
  return record;
}

}  // namespace osu
