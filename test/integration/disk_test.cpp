// Slots on disk image files built from partition-layouts/ with the real sfdisk, which is also
// the oracle for what ReadDiskPartitions must report.
#include <catch2/catch.hpp>
#include <regex>

#include "slots/slots.hpp"
#include "support/support.hpp"

using osu::SlotId;
using osu::test::MustRun;
using osu::test::TempDir;

namespace {

struct Expect {
  uint64_t start = 0, size = 0;  // sectors
  std::string uuid, name;
};

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// sfdisk --json, one partition object at a time (its output is regular: one key per line).
std::vector<Expect> SfdiskPartitions(const std::string& image) {
  auto json = MustRun("sfdisk --json '" + image + "'");
  REQUIRE(json.find("\"sectorsize\": 512") != std::string::npos);
  std::vector<Expect> out;
  std::regex object(R"re(\{[^{}]*"node"[^{}]*\})re");
  auto field = [](const std::string& obj, const std::string& key) {
    std::smatch m;
    std::regex re("\"" + key + R"re(":\s*"?([^",\n]*)"?)re");
    return std::regex_search(obj, m, re) ? m[1].str() : std::string();
  };
  for (auto it = std::sregex_iterator(json.begin(), json.end(), object);
       it != std::sregex_iterator(); ++it) {
    std::string obj = it->str();
    out.push_back({std::stoull(field(obj, "start")), std::stoull(field(obj, "size")),
                   Lower(field(obj, "uuid")), field(obj, "name")});
  }
  return out;
}

std::string MakeDisk(const TempDir& dir, const std::string& layout) {
  std::string image = dir / (layout + ".img");
  MustRun("'" + osu::test::SourceDir() + "/scripts/make-disk.sh' " + layout + " '" + image +
          "' 8G");
  return image;
}

std::string MakeDiskFromScript(const TempDir& dir, const std::string& script) {
  std::string image = dir / "custom.img";
  osu::test::WriteFile(dir / "custom.sfdisk", script);
  MustRun("truncate -s 64M '" + image + "' && sfdisk -q '" + image + "' < '" +
          (dir / "custom.sfdisk") + "'");
  return image;
}

}  // namespace

TEST_CASE("each partition layout reads back as sfdisk reports it") {
  osu::test::RequireTool("sfdisk");
  TempDir dir;
  for (std::string layout : {"x86-kvm", "rpi4", "rpi5"}) {
    INFO(layout);
    std::string image = MakeDisk(dir, layout);
    auto expect = SfdiskPartitions(image);
    REQUIRE(expect.size() == 4);

    auto parts = osu::ReadDiskPartitions(image);
    REQUIRE(parts.ok());
    REQUIRE(parts->size() == expect.size());
    for (size_t i = 0; i < expect.size(); ++i) {
      const auto& p = (*parts)[i];
      CHECK(p.number == static_cast<int>(i + 1));
      CHECK(p.disk == image);
      CHECK(p.device.empty());
      CHECK(p.devno == 0);
      CHECK(p.offset == expect[i].start * 512);
      CHECK(p.size == expect[i].size * 512);
      CHECK(p.label == expect[i].name);
      CHECK(p.partuuid == expect[i].uuid);
      CHECK(p.partuuid.size() == 36);
      CHECK(p.offset % (1 << 20) == 0);  // 1 MiB aligned
    }
    CHECK((*parts)[0].label == (layout == "x86-kvm" ? "p.UEFI" : "p.boot"));
    CHECK((*parts)[3].label == "p.lxdata");

    auto slots = osu::FindSlots(image, osu::SlotLabels{});
    REQUIRE(slots.ok());
    const auto& a = (*slots)[SlotId::A];
    const auto& b = (*slots)[SlotId::B];
    CHECK(a.part.label == "p.lxreadonly");
    CHECK(b.part.label == "p.lxrootclone1");
    CHECK(a.part.size == 2ull << 30);
    CHECK(b.part.size == 2ull << 30);
    CHECK(b.WritePath() == image);
    CHECK(b.WriteOffset() == expect[2].start * 512);
    CHECK(b.Describe() == image + " partition 3");

    // What a kexec'd or rebooted system would see: root= naming slot B by its PARTUUID.
    auto booted = osu::FindBootedSlot(*slots, "ro root=PARTUUID=" + expect[2].uuid, "");
    REQUIRE(booted.ok());
    CHECK(*booted == SlotId::B);
  }
}

TEST_CASE("a disk whose slot labels are missing or doubled is refused") {
  osu::test::RequireTool("sfdisk");
  TempDir dir;
  auto image = MakeDiskFromScript(dir,
                                  "label: gpt\n"
                                  "size=8MiB, name=\"root-a\"\n"
                                  "size=8MiB, name=\"p.lxrootclone1\"\n"
                                  "size=8MiB, name=\"p.lxrootclone1\"\n");
  auto r = osu::FindSlots(image, osu::SlotLabels{});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind() == osu::ErrorKind::State);
  CHECK(r.error().message() == "no partition labelled 'p.lxreadonly' on '" + image + "'");

  auto twice = osu::FindSlots(image, osu::SlotLabels{"root-a", "p.lxrootclone1"});
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().kind() == osu::ErrorKind::State);
  CHECK(twice.error().message() == "partition label 'p.lxrootclone1' found twice on '" + image +
                                       "': " + image + " partition 2 and " + image +
                                       " partition 3");
}

TEST_CASE("configured labels other than KIWI's work") {
  osu::test::RequireTool("sfdisk");
  TempDir dir;
  auto image = MakeDiskFromScript(dir,
                                  "label: gpt\n"
                                  "size=8MiB, name=\"rootfs-b\"\n"
                                  "size=8MiB, name=\"rootfs-a\"\n");
  auto r = osu::FindSlots(image, osu::SlotLabels{"rootfs-a", "rootfs-b"});
  REQUIRE(r.ok());
  CHECK((*r)[SlotId::A].part.number == 2);
  CHECK((*r)[SlotId::B].part.number == 1);
  CHECK((*r)[SlotId::B].part.offset == 1 << 20);
}

TEST_CASE("a disk that is not GPT, or not there, is a clear error") {
  osu::test::RequireTool("sfdisk");
  TempDir dir;
  auto mbr = MakeDiskFromScript(dir, "label: dos\nsize=8MiB, type=83\nsize=8MiB, type=83\n");
  auto r = osu::ReadDiskPartitions(mbr);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind() == osu::ErrorKind::State);
  CHECK(r.error().message() == "'" + mbr + "' has no GPT partition table");

  osu::test::WriteFile(dir / "empty.img", std::string(1 << 20, '\0'));
  auto empty = osu::ReadDiskPartitions(dir / "empty.img");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.error().message() == "'" + (dir / "empty.img") + "' has no GPT partition table");

  auto missing = osu::FindSlots(dir / "nope.img", osu::SlotLabels{});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind() == osu::ErrorKind::Usage);
  CHECK(missing.error().message() ==
        "slots.disk '" + (dir / "nope.img") + "': No such file or directory");
}
