// The skip-unchanged default: on for flash, off for image files and spinning disks, forced by
// install.skip_unchanged. Block devices are classified from a fake sysfs laid out like the
// kernel's: /sys/dev/block/MAJ:MIN symlinks into /sys/devices, partitions inside their disk.
#include <catch2/catch.hpp>
#include <filesystem>

#include "config/config.hpp"
#include "device/storage_media.hpp"
#include "support/support.hpp"

using osu::StorageMedia;
using osu::test::TempDir;
using osu::test::WriteFile;
namespace fs = std::filesystem;

namespace {

// <sys>/devices/<bus>/block/<disk> with queue/rotational (if given) and partition 2, and
// their dev/block symlinks (disk: MAJ:0, partition: MAJ:2).
void AddDisk(const TempDir& sys, const std::string& disk, unsigned major,
             const std::string& rotational, const std::string& part_name) {
  const std::string dir = sys / "devices/platform/block/" + disk;
  fs::create_directories(dir + "/queue");
  fs::create_directories(dir + "/" + part_name);
  if (!rotational.empty()) WriteFile(dir + "/queue/rotational", rotational + "\n");
  WriteFile(dir + "/" + part_name + "/partition", "2\n");
  fs::create_directories(sys / "dev/block");
  const std::string m = std::to_string(major);
  fs::create_directory_symlink("../../devices/platform/block/" + disk, sys / "dev/block/" + m + ":0");
  fs::create_directory_symlink("../../devices/platform/block/" + disk + "/" + part_name,
                               sys / "dev/block/" + m + ":2");
}

}  // namespace

TEST_CASE("storage media: block devices classified from sysfs", "[skip]") {
  TempDir sys;
  AddDisk(sys, "nvme0n1", 259, "0", "nvme0n1p2");
  AddDisk(sys, "sda", 8, "1", "sda2");
  AddDisk(sys, "mmcblk0", 179, "", "mmcblk0p2");  // an old kernel without queue/rotational
  AddDisk(sys, "vdb", 253, "", "vdb2");

  CHECK(osu::ClassifyBlockDevice(sys.path(), 259, 0) == StorageMedia::Flash);
  CHECK(osu::ClassifyBlockDevice(sys.path(), 259, 2) == StorageMedia::Flash);  // via its disk
  CHECK(osu::ClassifyBlockDevice(sys.path(), 8, 0) == StorageMedia::Rotational);
  CHECK(osu::ClassifyBlockDevice(sys.path(), 8, 2) == StorageMedia::Rotational);
  CHECK(osu::ClassifyBlockDevice(sys.path(), 179, 2) == StorageMedia::Flash);
  CHECK(osu::ClassifyBlockDevice(sys.path(), 253, 2) == StorageMedia::Unknown);
  CHECK(osu::ClassifyBlockDevice(sys.path(), 7, 0) == StorageMedia::Unknown);  // not there
}

TEST_CASE("storage media: an image file is a file, whatever sysfs says", "[skip]") {
  TempDir dir;
  WriteFile(dir / "disk.img", std::string(4096, '\0'));
  CHECK(osu::ProbeStorageMedia(dir / "disk.img", dir / "no-sys") == StorageMedia::File);
  CHECK(osu::ProbeStorageMedia(dir / "missing.img") == StorageMedia::Unknown);
  CHECK(osu::ProbeStorageMedia(dir.path()) == StorageMedia::Unknown);  // a directory
}

TEST_CASE("storage media: the real /sys agrees with itself", "[skip]") {
  // /dev/loop0's disk is its own queue: whatever the kernel says, it is one of the two.
  osu::test::SkipUnless(fs::exists("/sys/dev/block/7:0/queue/rotational"),
                        "no /sys/dev/block/7:0 (loop0) on this machine");
  const std::string rot = osu::test::ReadFile("/sys/dev/block/7:0/queue/rotational");
  CHECK(osu::ClassifyBlockDevice("/sys", 7, 0) ==
        (rot == "0\n" ? StorageMedia::Flash : StorageMedia::Rotational));
}

TEST_CASE("skip-unchanged: unset means flash only, and true and false force it", "[skip]") {
  for (auto media : {StorageMedia::File, StorageMedia::Rotational, StorageMedia::Unknown}) {
    INFO(osu::StorageMediaName(media));
    CHECK_FALSE(osu::SkipUnchangedFor(std::nullopt, media));
    CHECK(osu::SkipUnchangedFor(true, media));
    CHECK_FALSE(osu::SkipUnchangedFor(false, media));
  }
  CHECK(osu::SkipUnchangedFor(std::nullopt, StorageMedia::Flash));
  CHECK(osu::SkipUnchangedFor(true, StorageMedia::Flash));
  CHECK_FALSE(osu::SkipUnchangedFor(false, StorageMedia::Flash));
}

TEST_CASE("config: install.skip_unchanged is unset, true or false", "[skip][config]") {
  auto unset = osu::ParseConfig("install:\n  verify: true\n", "c.yml");
  REQUIRE(unset);
  CHECK_FALSE(unset->skip_unchanged.has_value());
  auto null = osu::ParseConfig("install:\n  skip_unchanged: ~\n", "c.yml");
  REQUIRE(null);
  CHECK_FALSE(null->skip_unchanged.has_value());
  auto on = osu::ParseConfig("install:\n  skip_unchanged: true\n", "c.yml");
  REQUIRE(on);
  CHECK(on->skip_unchanged == std::optional<bool>(true));
  auto off = osu::ParseConfig("install:\n  skip_unchanged: no\n", "c.yml");
  REQUIRE(off);
  CHECK(off->skip_unchanged == std::optional<bool>(false));
  auto bad = osu::ParseConfig("install:\n  skip_unchanged: sometimes\n", "c.yml");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message() ==
        "config 'c.yml': line 2: install.skip_unchanged must be true or false");
}
