// --apply on real loop devices (root only): the slot is a partition block device, the target
// may be mounted, the boot partition may be full.
#include <sys/mount.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>

#include "support/device.hpp"
#include "support/support.hpp"

using namespace osu::test;

namespace {

// Runs `undo` at scope exit, also when a REQUIRE throws.
struct Cleanup {
  std::function<void()> undo;
  ~Cleanup() {
    if (undo) undo();
  }
};

std::string AttachLoop(const std::string& image) {
  std::string dev = MustRun("losetup -fP --show '" + image + "'");
  while (!dev.empty() && (dev.back() == '\n' || dev.back() == ' ')) dev.pop_back();
  // This kernel may not parse GPT itself (no CONFIG_EFI_PARTITION): add the nodes with partx.
  if (!FileExists(dev + "p3")) Run("partx -a '" + dev + "' 2>/dev/null");
  return dev;
}

}  // namespace

TEST_CASE("apply onto a loop device writes the slot's partition node", "[root][apply]") {
  SkipUnlessRoot("installing onto a loop device");
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", 20u << 20, 31);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "xz");
  const std::string loop = AttachLoop(d.disk());
  Cleanup detach{[&] { Run("losetup -d " + loop); }};
  SkipUnless(FileExists(loop + "p3"), "the kernel made no partition nodes for " + loop);
  d.WriteConfig("", "demo-x86_64");
  MustRun("sed -i 's|disk: .*|disk: " + loop + "|' '" + d.config() + "'");
  const std::string before = d.Snapshot();

  auto r = RunUpdate({"--config", d.config(), "--apply", bundle});
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto status = RunUpdate({"--config", d.config(), "--status", "--json"});
  CHECK_THAT(status.out, Catch::Contains("\"device\":\"" + loop + "p3\""));
  auto got = MustRun("head -c " + std::to_string(20u << 20) + " " + loop + "p3 | sha256sum");
  CHECK(got.substr(0, 64) == Sha256OfFile(image));
  CHECK(d.Snapshot() == before);
}

TEST_CASE("a partial-fetch bundle on a block device (a medium written with dd) is read whole", "[root][apply][delta]") {
  SkipUnlessRoot("a bundle on a loop device");
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", 8u << 20, 33);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "zstd");  // chunked
  // As on a USB stick or a second disk: the bundle, then zeros up to whole sectors.
  MustRun("cp '" + bundle + "' '" + d.path("medium.img") + "' && truncate -s %1M '" +
          d.path("medium.img") + "'");
  std::string medium = MustRun("losetup -f --show '" + d.path("medium.img") + "'");
  while (!medium.empty() && (medium.back() == '\n' || medium.back() == ' ')) medium.pop_back();
  Cleanup detach{[&] { Run("losetup -d " + medium); }};

  auto r = RunUpdate({"--config", d.config(), "--apply", medium, "--no-activate", "--json"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"way\":\"full\""));
  CHECK(d.RegionSha256(d.SlotB(), 8u << 20) == Sha256OfFile(image));
}

TEST_CASE("apply refuses a mounted target slot and changes nothing", "[root][apply][bad]") {
  SkipUnlessRoot("mounting a slot");
  RequireTool("mkfs.ext4");
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", 8u << 20, 32);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "zstd");
  const std::string loop = AttachLoop(d.disk());
  Cleanup detach{[&] { Run("losetup -d " + loop); }};
  SkipUnless(FileExists(loop + "p3"), "the kernel made no partition nodes for " + loop);
  MustRun("mkfs.ext4 -q -F " + loop + "p3");
  std::filesystem::create_directories(d.path("mnt"));
  // Read-only, so that the file system itself (ext4 lazy init) does not change the bytes.
  MustRun("mount -o ro " + loop + "p3 '" + d.path("mnt") + "'");
  Cleanup unmount{[&] { Run("umount '" + d.path("mnt") + "'"); }};
  MustRun("sed -i 's|disk: .*|disk: " + loop + "|; s|mountinfo: .*|mountinfo: /proc/self/mountinfo|' '" +
          d.config() + "'");
  const std::string before = d.Snapshot();
  const std::string b_before = MustRun("sha256sum < " + loop + "p3");

  auto r = RunUpdate({"--config", d.config(), "--apply", bundle});
  INFO(r.err);
  CHECK(r.code == 4);
  CHECK_THAT(r.err, Catch::Contains("mounted"));
  CHECK(d.Snapshot() == before);
  CHECK(MustRun("sha256sum < " + loop + "p3") == b_before);
  CHECK_FALSE(FileExists(d.boot() + "/osu/B/record.yml"));
}

TEST_CASE("no space left on the boot partition: exit 5, slot B not verified", "[root][apply][bad]") {
  SkipUnlessRoot("mounting a small tmpfs as the boot partition");
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", 8u << 20, 33);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "zstd");
  // The boot files are 150 KB; this boot partition holds 64 KiB.
  // The boot partition's factory content (slot A, the env) moves onto the small file system.
  MustRun("cp -a '" + d.boot() + "' '" + d.path("boot.factory") + "'");
  MustRun("mount -t tmpfs -o size=64k osu-test-boot '" + d.boot() + "'");
  Cleanup unmount{[&] { Run("umount '" + d.boot() + "'"); }};
  MustRun("cp -a '" + d.path("boot.factory") + "/.' '" + d.boot() + "/'");
  const std::string before = d.Snapshot();

  auto r = RunUpdate({"--config", d.config(), "--apply", bundle});
  INFO(r.err);
  CHECK(r.code == 5);
  CHECK_THAT(r.err, Catch::Contains("No space left on device"));
  CHECK(HasOneErrorLine(r.err));
  CHECK(d.Snapshot() == before);
  const std::string record = d.boot() + "/osu/B/record.yml";
  if (FileExists(record)) CHECK_THAT(ReadFile(record), !Catch::Contains("state: verified"));
  // Nothing half-written is left behind.
  CHECK(MustRun("ls -A '" + d.boot() + "/osu/B' 2>/dev/null | grep -v record.yml || true").empty());
}
