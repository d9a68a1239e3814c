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
#include "delta/chunk_index.hpp"
#include "delta/chunker.hpp"
#include "io/stream.hpp"

namespace osu {
namespace {

uint64_t Le(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// The files an install would have listed: the slot snippet, the record and the chunk list
// (a record made again finds the last one's) are the bootloader's and os-update's own, not
// the bundle's.
Expected<std::vector<FileEntry>> BootFiles(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return ErrnoError("Failed to open the slot's boot directory '" + dir + "'", errno,
                            ErrorKind::Usage);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == ".." || name == "record.yml" || name == "grub.cfg" ||
        name == "boot.env" || name == "cmdline.txt" || name == "chunks.idx")
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

// The slot's first `length` bytes at `offset` of `fd`, as a Reader (exactly that many: a
// short read is an error).
class SlotReader final : public Reader {
 public:
  SlotReader(int fd, uint64_t offset, uint64_t length, std::string what)
      : fd_(fd), offset_(offset), left_(length), what_(std::move(what)) {}
  Expected<size_t> Read(std::span<uint8_t> buf) override {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), left_));
    if (n == 0) return size_t{0};
    if (auto r = PReadExact(fd_, buf.first(n), offset_, what_); !r) return r.error();
    offset_ += n;
    left_ -= n;
    return n;
  }

 private:
  int fd_;
  uint64_t offset_, left_;
  std::string what_;
};

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

  // One pass over the slot: the image's sha256 and its chunk list (with the chunk sizes a
  // bundle is made with; a list of other sizes is not used, the slot is read then).
  SlotReader slot_reader(fd->get(), part->offset, size, what);
  Sha256 hash;
  ChunkIndex list;
  list.image_size = size;
  auto cut = ForEachChunk(slot_reader, size, list.sizes,
                          [&](uint64_t offset, std::span<const uint8_t> bytes) -> Result {
                            hash.Update(bytes);
                            ChunkEntry c;
                            c.offset = offset;
                            c.size = static_cast<uint32_t>(bytes.size());
                            c.compressed_size = c.size;  // a list has no frames: as if stored raw
                            c.digest = DigestOf(bytes);
                            list.chunks.push_back(c);
                            return {};
                          });
  if (!cut) return cut.error();

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
  // The list first: a record without its list is a slot that is read, a list without a
  // record is never looked at.
  const BootPartition boot(request.boot_path);
  if (auto r = boot.SaveChunkList(request.slot, SerializeChunkIndex(list)); !r) return r.error();
  if (auto r = boot.SaveRecord(record); !r) return r.error();
  return record;
}

}  // namespace osu
