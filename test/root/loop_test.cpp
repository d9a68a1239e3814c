// Slots on real block devices: a layout image on a loop device, found by libfdisk and by the
// libblkid scan, and a mounted slot seen in the real /proc/self/mountinfo.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "slots/slots.hpp"
#include "support/support.hpp"

using osu::SlotId;
using osu::test::MustRun;
using osu::test::Run;
using osu::test::TempDir;

namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// Attaches an image to a loop device with its partitions; detaches at scope exit, even when
// a REQUIRE fails in between.
class LoopDevice {
 public:
  explicit LoopDevice(const std::string& image) {
    auto r = Run("losetup -fP --show '" + image + "'");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    device_ = Trim(r.output);
    try {  // a failed REQUIRE throws out of the constructor: no destructor would detach
      // A kernel without the GPT parser (CONFIG_EFI_PARTITION off, as on some CI VMs) scans
      // nothing: add the partitions from user space as udev-less systems do.
      if (!WaitFor(device_ + "p2")) MustRun("partx -a '" + device_ + "'");
      REQUIRE(WaitFor(device_ + "p4"));
    } catch (...) {
      Run("losetup -d '" + device_ + "'");
      throw;
    }
  }
  ~LoopDevice() {
    if (!device_.empty()) Run("losetup -d '" + device_ + "'");
  }
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;
  const std::string& device() const { return device_; }

 private:
  static bool WaitFor(const std::string& node) {
    for (int i = 0; i < 20; ++i) {
      struct stat st {};
      if (::stat(node.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string device_;
};

class Mount {
 public:
  Mount(const std::string& device, const std::string& dir) : dir_(dir) {
    MustRun("mount '" + device + "' '" + dir + "'");
    mounted_ = true;
  }
  ~Mount() {
    if (mounted_) Run("umount '" + dir_ + "'");
  }
  Mount(const Mount&) = delete;
  Mount& operator=(const Mount&) = delete;

 private:
  std::string dir_;
  bool mounted_ = false;
};

dev_t DevnoOf(const std::string& node) {
  struct stat st {};
  REQUIRE(::stat(node.c_str(), &st) == 0);
  return st.st_rdev;
}

}  // namespace

TEST_CASE("slots on a loop device: partition nodes, blkid scan and mounts") {
  osu::test::SkipUnlessRoot("the loop device test");
  for (const char* tool : {"losetup", "partx", "sfdisk", "mkfs.ext4", "mount"}) {
    osu::test::RequireTool(tool);
  }
  TempDir dir;
  std::string image = dir / "disk.img";
  MustRun("'" + osu::test::SourceDir() + "/scripts/make-disk.sh' x86-kvm '" + image + "' 8G");
  LoopDevice loop(image);
  const std::string& dev = loop.device();

  auto parts = osu::ReadDiskPartitions(dev);
  REQUIRE(parts.ok());
  REQUIRE(parts->size() == 4);
  for (const auto& p : *parts) {
    INFO(p.number);
    CHECK(p.disk == dev);
    CHECK(p.device == dev + "p" + std::to_string(p.number));
    CHECK(p.devno == DevnoOf(p.device));
  }

  auto slots = osu::FindSlots(dev, osu::SlotLabels{});
  REQUIRE(slots.ok());
  const auto& a = (*slots)[SlotId::A];
  const auto& b = (*slots)[SlotId::B];
  CHECK(a.Describe() == dev + "p2");
  CHECK(a.WritePath() == dev + "p2");
  CHECK(a.WriteOffset() == 0);

  // The scan sees every disk of the host; ours must be among what it finds, exactly so.
  auto scanned = osu::ScanPartitionsByLabel({"p.lxreadonly", "p.lxrootclone1"});
  REQUIRE(scanned.ok());
  for (const auto* slot : {&a, &b}) {
    INFO(slot->part.device);
    const osu::Partition* hit = nullptr;
    for (const auto& p : *scanned) {
      if (p.device == slot->part.device) hit = &p;
    }
    REQUIRE(hit);
    CHECK(hit->disk == dev);
    CHECK(hit->number == slot->part.number);
    CHECK(hit->label == slot->part.label);
    CHECK(hit->partuuid == slot->part.partuuid);
    CHECK(hit->devno == slot->part.devno);
    CHECK(hit->offset == slot->part.offset);
    CHECK(hit->size == slot->part.size);
  }

  // root=/dev/... compares device numbers: the node name is not what matters.
  auto booted = osu::FindBootedSlot(*slots, "root=" + dev + "p3", "");
  REQUIRE(booted.ok());
  CHECK(*booted == SlotId::B);

  MustRun("mkfs.ext4 -q -F '" + b.part.device + "'");
  MustRun("mkdir '" + (dir / "mnt point") + "'");
  CHECK_FALSE(osu::IsSlotMounted(b, osu::test::ReadFile("/proc/self/mountinfo")));
  {
    Mount mount(b.part.device, dir / "mnt point");
    auto mountinfo = osu::test::ReadFile("/proc/self/mountinfo");
    CHECK(osu::IsSlotMounted(b, mountinfo));
    CHECK_FALSE(osu::IsSlotMounted(a, mountinfo));
  }
  CHECK_FALSE(osu::IsSlotMounted(b, osu::test::ReadFile("/proc/self/mountinfo")));
}
