// Slots without a disk: the kernel command line, the booted-slot rules, label selection and
// mountinfo, all on fake text and fake partitions.
#include <sys/sysmacros.h>

#include <catch2/catch.hpp>

#include "install/apply.hpp"
#include "slots/mountinfo.hpp"
#include "slots/slots.hpp"

using osu::KernelCmdline;
using osu::Partition;
using osu::SlotId;

namespace {

Partition Part(int number, const std::string& label, const std::string& uuid, dev_t devno,
               const std::string& device) {
  Partition p;
  p.disk = "/dev/osu-test-vda";
  p.device = device;
  p.number = number;
  p.offset = static_cast<uint64_t>(number) << 30;
  p.size = 1ull << 30;
  p.label = label;
  p.partuuid = uuid;
  p.devno = devno;
  return p;
}

const std::string kUuidA = "0d5ac6a7-3a57-4c43-9b7b-6f1b1c0a0a02";
const std::string kUuidB = "9f2ae0c1-5b1d-4e8e-8a35-2b64d3a1b003";

osu::SlotPair Pair() {
  std::vector<Partition> parts = {
      Part(1, "p.UEFI", "11111111-2222-3333-4444-555555555555", makedev(253, 1),
           "/dev/osu-test-vda1"),
      Part(2, "p.lxreadonly", kUuidA, makedev(253, 2), "/dev/osu-test-vda2"),
      Part(3, "p.lxrootclone1", kUuidB, makedev(253, 3), "/dev/osu-test-vda3"),
      Part(4, "p.lxdata", "66666666-7777-8888-9999-000000000000", makedev(253, 4),
           "/dev/osu-test-vda4")};
  auto pair = osu::SelectSlots(parts, osu::SlotLabels{}, "/dev/osu-test-vda");
  REQUIRE(pair.ok());
  return *pair;
}

// Real-looking /proc/self/mountinfo with the root file system on `root`.
std::string MountInfo(const std::string& root) {
  return "22 1 " + root + " / / rw,relatime shared:1 - ext4 /dev/root ro\n"
         "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
         "24 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs devtmpfs rw,size=4096k\n"
         "30 22 253:1 / /boot rw,relatime shared:20 - vfat /dev/vda1 rw,fmask=0022\n";
}

}  // namespace

TEST_CASE("the kernel command line is split the way the kernel does it") {
  KernelCmdline c(
      "BOOT_IMAGE=/vmlinuz-6.1 root=PARTUUID=ABC ro  quiet\tconsole=ttyS0,115200 "
      "\"dyndbg=file foo.c +p\" foo=\"a b\" osu.slot=A osu.slot=B empty= x=y=z -- single "
      "osu.slot=A\n");
  CHECK(c.Get("root") == "PARTUUID=ABC");
  CHECK(c.Get("console") == "ttyS0,115200");
  CHECK(c.Get("dyndbg") == "file foo.c +p");
  CHECK(c.Get("foo") == "a b");
  CHECK(c.Get("osu.slot") == "B");  // last wins, and nothing after "--" counts
  CHECK(c.Get("empty") == "");
  CHECK(c.Get("x") == "y=z");       // the first '=' splits
  CHECK(c.Get("quiet") == "");      // present without a value
  CHECK_FALSE(c.Get("single").has_value());
  CHECK_FALSE(c.Get("splash").has_value());

  REQUIRE(c.args().size() == 11);
  CHECK(c.args()[2].first == "ro");
  CHECK_FALSE(c.args()[2].second.has_value());
  CHECK(c.args()[4].second == "ttyS0,115200");
}

TEST_CASE("a quoted argument without '=' is one argument without its quotes") {
  KernelCmdline c("\"a b\" c");
  REQUIRE(c.args().size() == 2);
  CHECK(c.args()[0].first == "a b");
  CHECK_FALSE(c.args()[0].second.has_value());
  CHECK(c.args()[1].first == "c");
  CHECK(KernelCmdline("").args().empty());
  CHECK(KernelCmdline(" \n").args().empty());
}

TEST_CASE("osu.slot= decides the booted slot before anything else") {
  auto pair = Pair();
  auto b = osu::FindBootedSlot(pair, "root=PARTUUID=" + kUuidA + " osu.slot=b",
                               MountInfo("253:2"));
  REQUIRE(b.ok());
  CHECK(*b == SlotId::B);

  auto bad = osu::FindBootedSlot(pair, "osu.slot=C root=PARTUUID=" + kUuidA, "");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().kind() == osu::ErrorKind::State);
  CHECK(bad.error().message() == "kernel command line has osu.slot='C'; expected A or B");
}

TEST_CASE("root= names the booted slot by PARTUUID, PARTLABEL or device") {
  auto pair = Pair();
  // Mounted at / says A throughout: root= must win over it.
  const auto mi = MountInfo("253:2");
  std::string upper = kUuidB;
  for (auto& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  for (const std::string& cmdline :
       {"root=PARTUUID=" + kUuidB, "ro root=PARTUUID=" + upper + " rootwait",
        std::string("root=PARTLABEL=p.lxrootclone1"), std::string("root=/dev/osu-test-vda3"),
        "root=overlay:PARTUUID=" + kUuidB}) {
    INFO(cmdline);
    auto id = osu::FindBootedSlot(pair, cmdline, mi);
    REQUIRE(id.ok());
    CHECK(*id == SlotId::B);
  }
}

TEST_CASE("without a usable root= the device mounted at / decides") {
  auto pair = Pair();
  for (const char* cmdline :
       {"quiet", "root=/dev/mapper/osu-test-verity", "root=UUID=5e1f0a", "root"}) {
    INFO(cmdline);
    auto id = osu::FindBootedSlot(pair, cmdline, MountInfo("253:3"));
    REQUIRE(id.ok());
    CHECK(*id == SlotId::B);
  }
  // A later mount on / covers the first one.
  auto covered = osu::FindBootedSlot(
      pair, "", MountInfo("253:3") + "40 22 253:2 / / rw - ext4 /dev/vda2 rw\n");
  REQUIRE(covered.ok());
  CHECK(*covered == SlotId::A);
}

TEST_CASE("a booted slot that cannot be told is a State error saying what was seen") {
  auto pair = Pair();
  auto r = osu::FindBootedSlot(pair, "root=PARTUUID=deadbeef-0000 quiet", MountInfo("0:31"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind() == osu::ErrorKind::State);
  CHECK(r.error().message() ==
        "cannot tell the booted slot: kernel command line has no osu.slot= and its "
        "root=PARTUUID=deadbeef-0000, / is mounted from 0:31; that matches neither slot A "
        "(/dev/osu-test-vda2, PARTUUID " + kUuidA + ", 253:2) nor B (/dev/osu-test-vda3, "
        "PARTUUID " + kUuidB + ", 253:3)");

  auto none = osu::FindBootedSlot(pair, "quiet", "");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().message().find("it has no root=, no device is mounted at /") !=
        std::string::npos);
}

TEST_CASE("slots are selected by label; missing or doubled labels are State errors") {
  auto pair = Pair();
  CHECK(pair[SlotId::A].part.number == 2);
  CHECK(pair[SlotId::B].part.number == 3);
  CHECK(pair[SlotId::A].id == SlotId::A);
  CHECK(pair[SlotId::B].Describe() == "/dev/osu-test-vda3");
  CHECK(pair[SlotId::B].WritePath() == "/dev/osu-test-vda3");
  CHECK(pair[SlotId::B].WriteOffset() == 0);

  std::vector<Partition> parts = {Part(2, "p.lxreadonly", kUuidA, 0, ""),
                                  Part(3, "other", kUuidB, 0, "")};
  auto missing = osu::SelectSlots(parts, osu::SlotLabels{}, "disk.img");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind() == osu::ErrorKind::State);
  CHECK(missing.error().message() == "no partition labelled 'p.lxrootclone1' on 'disk.img'");

  auto custom = osu::SelectSlots(parts, osu::SlotLabels{"other", "p.lxreadonly"}, "disk.img");
  REQUIRE(custom.ok());
  CHECK((*custom)[SlotId::A].part.number == 3);
  CHECK((*custom)[SlotId::B].Describe() == "/dev/osu-test-vda partition 2");
  CHECK((*custom)[SlotId::B].WritePath() == "/dev/osu-test-vda");
  CHECK((*custom)[SlotId::B].WriteOffset() == 2ull << 30);

  parts.push_back(Part(5, "p.lxreadonly", "x", makedev(8, 17), "/dev/sdb1"));
  auto twice = osu::SelectSlots(parts, osu::SlotLabels{"p.lxreadonly", "other"}, "any disk");
  REQUIRE_FALSE(twice.ok());
  CHECK(twice.error().kind() == osu::ErrorKind::State);
  CHECK(twice.error().message() ==
        "partition label 'p.lxreadonly' found twice on 'any disk': /dev/osu-test-vda "
        "partition 2 and /dev/sdb1");
}

TEST_CASE("slot letters") {
  CHECK(osu::ParseSlotLetter("A") == SlotId::A);
  CHECK(osu::ParseSlotLetter("b") == SlotId::B);
  CHECK_FALSE(osu::ParseSlotLetter("").has_value());
  CHECK_FALSE(osu::ParseSlotLetter("AB").has_value());
  CHECK(osu::SlotLetter(osu::OtherSlot(SlotId::A)) == 'B');
}

TEST_CASE("mountinfo lines are parsed field by field, with octal escapes") {
  auto entries = osu::ParseMountInfo(
      "36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 shared:7 - ext3 /dev/root rw\n"
      "garbage line\n"
      "37 35 8:17 / /media/a\\134b\\011c rw - ext4 /dev/sd\\040b1 rw\n"
      "38 35 0:40 / /run rw - tmpfs tmpfs rw\n");
  REQUIRE(entries.size() == 3);
  CHECK(entries[0].devno == makedev(98, 0));
  CHECK(entries[0].root == "/mnt1");
  CHECK(entries[0].mount_point == "/mnt 2");
  CHECK(entries[0].fs_type == "ext3");
  CHECK(entries[0].source == "/dev/root");
  CHECK(entries[1].mount_point == "/media/a\\b\tc");
  CHECK(entries[1].source == "/dev/sd b1");
  CHECK(entries[2].devno == makedev(0, 40));
  CHECK(osu::DecodeMountInfoPath("a\\04") == "a\\04");  // cut escape kept as is
}

TEST_CASE("a slot is mounted when any mount comes from its device") {
  auto pair = Pair();
  const auto mi = MountInfo("253:2") + "50 22 253:2 /var /var rw - ext4 /dev/vda2 rw\n";
  CHECK(osu::IsSlotMounted(pair[SlotId::A], mi));
  CHECK_FALSE(osu::IsSlotMounted(pair[SlotId::B], mi));
  CHECK(osu::IsSlotMounted(pair[SlotId::B],
                           mi + "51 22 253:3 / /mnt/other\\040slot ro - ext4 /dev/vda3 ro\n"));
  // A slot in an image file has no device number: nothing can be mounted from it.
  osu::Slot image{SlotId::B, Part(3, "p.lxrootclone1", kUuidB, 0, "")};
  CHECK_FALSE(osu::IsSlotMounted(image, "1 0 0:0 / / rw - tmpfs x rw\n"));
}

TEST_CASE("slots that share bytes with another partition are noted, and no install is allowed",
          "[slots][bad]") {
  CHECK(Pair().overlap.empty());
  const std::string what = GENERATE("A and B", "B and the ESP");
  std::vector<Partition> parts = {
      Part(1, "p.UEFI", "11111111-2222-3333-4444-555555555555", makedev(253, 1),
           "/dev/osu-test-vda1"),
      Part(2, "p.lxreadonly", kUuidA, makedev(253, 2), "/dev/osu-test-vda2"),
      Part(3, "p.lxrootclone1", kUuidB, makedev(253, 3), "/dev/osu-test-vda3")};
  if (what == "A and B") parts[1].size += 4096;  // A's last block is B's first
  else parts[0].offset = parts[2].offset + parts[2].size - 512;  // the ESP starts inside B
  auto pair = osu::SelectSlots(parts, osu::SlotLabels{}, "/dev/osu-test-vda");
  REQUIRE(pair.ok());
  INFO(pair->overlap);
  CHECK_THAT(pair->overlap, Catch::Contains("overlaps"));
  CHECK_THAT(pair->overlap, Catch::Contains(what == "A and B" ? "/dev/osu-test-vda3" : "/dev/osu-test-vda1"));

  osu::SystemState state;
  state.slots = *pair;
  state.booted = SlotId::A;
  state.committed = SlotId::A;
  auto allowed = osu::CheckInstallAllowed(state);
  REQUIRE_FALSE(allowed.ok());
  CHECK(allowed.error().kind() == osu::ErrorKind::State);
  CHECK_THAT(allowed.error().message(), Catch::Contains("would write through it"));
}
