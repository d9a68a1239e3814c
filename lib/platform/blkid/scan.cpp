// ScanPartitionsByLabel with libblkid: probe every block device the kernel lists and keep the
// partitions whose GPT PARTLABEL is one of ours.
#include <blkid.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <memory>

#include "slots/block_sysfs.hpp"
#include "slots/slots.hpp"

namespace osu {
namespace {

struct CacheDeleter {
  void operator()(blkid_struct_cache* c) const { blkid_put_cache(c); }
};
struct DevIterDeleter {
  void operator()(blkid_struct_dev_iterate* i) const { blkid_dev_iterate_end(i); }
};
struct TagIterDeleter {
  void operator()(blkid_struct_tag_iterate* i) const { blkid_tag_iterate_end(i); }
};

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Partition Describe(blkid_dev dev, const std::string& label) {
  Partition p;
  p.device = blkid_dev_devname(dev);
  p.label = label;
  std::unique_ptr<blkid_struct_tag_iterate, TagIterDeleter> tags(blkid_tag_iterate_begin(dev));
  const char* type = nullptr;
  const char* value = nullptr;
  while (tags && blkid_tag_next(tags.get(), &type, &value) == 0) {
    if (std::string(type) == "PARTUUID") p.partuuid = Lower(value);
  }
  struct stat st {};
  if (::stat(p.device.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) {
    p.devno = st.st_rdev;
    char disk[256] = {};
    dev_t disk_devno = 0;
    if (blkid_devno_to_wholedisk(p.devno, disk, sizeof disk, &disk_devno) == 0) {
      p.disk = std::string("/dev/") + disk;
    }
    // sysfs counts in 512-byte units whatever the logical sector size.
    p.number = static_cast<int>(ReadBlockAttribute(p.devno, "partition").value_or(0));
    p.offset = ReadBlockAttribute(p.devno, "start").value_or(0) * 512;
    p.size = ReadBlockAttribute(p.devno, "size").value_or(0) * 512;
  }
  return p;
}

}  // namespace

Expected<std::vector<Partition>> ScanPartitionsByLabel(const std::vector<std::string>& labels) {
  blkid_cache raw = nullptr;
  // "/dev/null": start from nothing and never write the system's cache (/run/blkid).
  if (blkid_get_cache(&raw, "/dev/null") < 0 || !raw) {
    return DeviceError("Failed to scan block devices: cannot create a libblkid cache");
  }
  std::unique_ptr<blkid_struct_cache, CacheDeleter> cache(raw);
  if (blkid_probe_all(cache.get()) < 0) {
    return DeviceError("Failed to scan block devices: libblkid cannot list /proc/partitions");
  }

  std::vector<Partition> found;
  std::vector<std::string> wanted;  // each label once, so a partition is reported once
  for (const auto& label : labels) {
    if (std::find(wanted.begin(), wanted.end(), label) == wanted.end()) wanted.push_back(label);
  }
  for (const auto& label : wanted) {
    std::unique_ptr<blkid_struct_dev_iterate, DevIterDeleter> it(
        blkid_dev_iterate_begin(cache.get()));
    if (!it) return DeviceError("Failed to scan block devices: out of memory");
    blkid_dev_set_search(it.get(), "PARTLABEL", label.c_str());
    blkid_dev dev = nullptr;
    while (blkid_dev_next(it.get(), &dev) == 0) found.push_back(Describe(dev, label));
  }
  return found;
}

}  // namespace osu
