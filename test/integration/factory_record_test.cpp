// os-update-bundle record: the factory record an image build writes for slot A (kiwi/finish.sh
// runs it on the KIWI disk), read back by `os-update --status` as os-update's own. The file
// systems are made by mksquashfs and mkfs.ext4, the hashes checked with sha256sum.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>

#include "bootpart/boot_partition.hpp"
#include "delta/chunk_index.hpp"
#include "record/record.hpp"
#include "support/device.hpp"
#include "support/support.hpp"

using namespace osu::test;  // NOLINT: test helpers

namespace {

// Puts `image` at the start of slot A, as KIWI dd's its squashfs into p.lxreadonly, and stages
// A's boot directory as kiwi/config.sh does (kernel, initrd, GRUB snippet; no record yet).
void FactorySlotA(FakeDevice& d, const std::string& image) {
  MustRun("dd if='" + image + "' of='" + d.disk() + "' bs=1M seek=" +
          std::to_string(d.SlotA().offset) + " oflag=seek_bytes conv=notrunc status=none");
  std::filesystem::remove(d.boot() + "/osu/A/record.yml");
  WriteFile(d.boot() + "/osu/A/grub.cfg", "set osu_root=\"PARTLABEL=p.lxreadonly\"\n");
}

MainResult Record(FakeDevice& d, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"record", "--disk", d.disk(), "--boot-path", d.boot(),
                                   "--version", "1.0.0", "--compatible", "demo-x86_64",
                                   "--cmdline", "console=ttyS0,115200 ro"};
  if (std::find(extra.begin(), extra.end(), "--slot") == extra.end())
    extra.insert(extra.end(), {"--slot", "A"});
  args.insert(args.end(), extra.begin(), extra.end());
  return RunBundle(args);
}

std::string FileSize(const std::string& path) {
  return std::to_string(std::filesystem::file_size(path));
}

// The record written, and `os-update --status` reading slot A as `image` (sha256sum, size).
void RecordAndCheck(FakeDevice& d, const std::string& image) {
  FactorySlotA(d, image);
  auto r = Record(d);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.find("slot A verified, version 1.0.0") != std::string::npos);
  CHECK(StatusField(d, "slots.A.state") == "\"verified\"");
  CHECK(StatusField(d, "slots.A.sha256") == "\"" + Sha256OfFile(image) + "\"");
  CHECK(StatusField(d, "slots.A.image_size") == FileSize(image));
}

// A squashfs of d.path("tree") (etc/os-release; `payload` random bytes in payload when > 0,
// `added` in added when > 0) at d.path(name).
void Squashfs(FakeDevice& d, const std::string& name, size_t payload, size_t added = 0) {
  std::filesystem::create_directories(d.path("tree/etc"));
  WriteFile(d.path("tree/etc/os-release"), "IMAGE_VERSION=1.0.0\n");
  if (payload) MustRun("head -c " + std::to_string(payload) + " /dev/urandom > '" + d.path("tree/payload") + "'");
  if (added) MustRun("head -c " + std::to_string(added) + " /dev/urandom > '" + d.path("tree/added") + "'");
  MustRun("mksquashfs '" + d.path("tree") + "' '" + d.path(name) + "' -comp xz -quiet -noappend >/dev/null");
}

}  // namespace

TEST_CASE("record: a squashfs slot A is verified by --status, with sha256sum's hash") {
  RequireTool("mksquashfs");
  FakeDevice d;
  Squashfs(d, "a.sqfs", 200000);
  RecordAndCheck(d, d.path("a.sqfs"));
  CHECK(StatusField(d, "slots.A.version") == "\"1.0.0\"");
  // The boot files an install would list (not the GRUB snippet), read back by os-update.
  auto record = osu::BootPartition(d.boot()).LoadRecord(osu::SlotId::A);
  REQUIRE(record);
  REQUIRE(record->boot_files.size() == 2);
  for (const auto& f : record->boot_files) {
    const std::string path = d.boot() + "/osu/A/" + f.name;
    CHECK((f.name == "initrd.img" || f.name == "vmlinuz"));
    CHECK(std::to_string(f.size) == FileSize(path));
    CHECK(f.sha256 == Sha256OfFile(path));
  }
  CHECK(record->cmdline == "console=ttyS0,115200 ro");
  CHECK(record->compatible == "demo-x86_64");
}

TEST_CASE("record: an ext4 slot's image is its blocks, and --size overrides") {
  RequireTool("mkfs.ext4");
  FakeDevice d;
  MustRun("truncate -s 6M '" + d.path("a.ext4") + "' && mkfs.ext4 -q -F '" + d.path("a.ext4") +
          "'");
  RecordAndCheck(d, d.path("a.ext4"));
  CHECK(StatusField(d, "slots.A.image_size") == std::to_string(6u << 20));

  auto r = Record(d, {"--size", "4096"});
  REQUIRE(r.code == 0);
  CHECK(StatusField(d, "slots.A.image_size") == "4096");
  CHECK(StatusField(d, "slots.A.sha256") ==
        "\"" + d.RegionSha256(d.SlotA(), 4096) + "\"");
}

TEST_CASE("record: bad input is one error line, exit 1, and no record") {
  RequireTool("mksquashfs");
  FakeDevice d;
  MustRun("head -c 1048576 /dev/zero > '" + d.path("zeros") + "'");
  FactorySlotA(d, d.path("zeros"));
  const std::string record = d.boot() + "/osu/A/record.yml";
  struct Case {
    std::vector<std::string> extra;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{}, "holds no squashfs or ext2/3/4 file system: give its size"},
      {{"--partition", "p.nothere"}, "has no partition labelled 'p.nothere'"},
      {{"--size", "99999999999"}, "does not fit its"},
      {{"--slot", "C"}, "--slot must be A or B"},
  };
  for (const auto& c : cases) {
    auto r = Record(d, c.extra);
    INFO(r.err);
    CHECK(r.code == 1);
    CHECK(HasOneErrorLine(r.err, "os-update-bundle"));
    CHECK(r.err.find(c.message) != std::string::npos);
    CHECK_FALSE(FileExists(record));
  }
  // No boot files: the record would make a slot that nothing can boot.
  MustRun("mksquashfs '" + d.boot() + "' '" + d.path("a.sqfs") + "' -quiet -noappend >/dev/null");
  FactorySlotA(d, d.path("a.sqfs"));
  std::filesystem::remove(d.boot() + "/osu/A/vmlinuz");
  std::filesystem::remove(d.boot() + "/osu/A/initrd.img");
  auto r = Record(d);
  CHECK(r.code == 1);
  CHECK(r.err.find("no boot files (kernel, initrd) in") != std::string::npos);
  CHECK_FALSE(FileExists(record));
}

TEST_CASE("record: the factory slot's chunk list spares the first partial fetch reading it") {
  RequireTool("mksquashfs");
  FakeDevice d;
  Squashfs(d, "a.sqfs", 3000000);
  FactorySlotA(d, d.path("a.sqfs"));
  REQUIRE(Record(d).code == 0);

  // The list describes the slot's image chunk by chunk: each digest is the chunk's own.
  const std::string list_path = d.boot() + "/osu/A/chunks.idx";
  REQUIRE(FileExists(list_path));
  // Made again (a build step run twice), the record does not take the list for a boot file.
  REQUIRE(Record(d).code == 0);
  auto record = osu::BootPartition(d.boot()).LoadRecord(osu::SlotId::A);
  REQUIRE(record);
  CHECK(record->boot_files.size() == 2);
  for (const auto& f : record->boot_files) CHECK(f.name != "chunks.idx");
  auto list = osu::ParseChunkIndex(ReadFile(list_path), list_path);
  REQUIRE(list);
  const std::string image = ReadFile(d.path("a.sqfs"));
  CHECK(list->image_size == image.size());
  REQUIRE(list->chunks.size() > 10);
  for (const auto& c : list->chunks) {
    auto bytes = std::span(reinterpret_cast<const uint8_t*>(image.data()) + c.offset, c.size);
    CHECK(osu::DigestOf(bytes) == c.digest);
  }

  // v2 keeps v1's payload and adds a file: a partial fetch reuses slot A's chunks through the
  // list (the same plan as with the slot read), and slot B ends verified with v2's image.
  Squashfs(d, "b.sqfs", 0, 200000);
  const std::string bundle = d.MakeBundle("v2.osu", d.path("b.sqfs"), "2.0.0", "zstd");
  const std::vector<std::string> plan = {"--config", d.config(), "--apply", bundle, "--dry-run", "--json"};
  auto with = RunUpdate(plan);
  INFO(with.out << with.err);
  REQUIRE(with.code == 0);
  CHECK(with.out.find("Chunks of slot A: its stored chunk list") != std::string::npos);
  std::filesystem::rename(list_path, list_path + ".away");
  auto without = RunUpdate(plan);
  REQUIRE(without.code == 0);
  CHECK(without.out.find("stored chunk list") == std::string::npos);
  auto planned = [](const std::string& out) {
    const auto p = out.find("\"download_bytes\":");
    REQUIRE(p != std::string::npos);
    return std::stoull(out.substr(p + 17));
  };
  CHECK(planned(with.out) == planned(without.out));
  CHECK(planned(with.out) < std::filesystem::file_size(bundle) / 2);
  std::filesystem::rename(list_path + ".away", list_path);
  auto r = RunUpdate({"--config", d.config(), "--apply", bundle, "--no-activate"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(d.RegionSha256(d.SlotB(), std::filesystem::file_size(d.path("b.sqfs"))) == Sha256OfFile(d.path("b.sqfs")));
  CHECK(ReadFile(d.boot() + "/osu/B/record.yml").find("state: verified") != std::string::npos);
}
