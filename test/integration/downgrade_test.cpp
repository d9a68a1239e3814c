// The downgrade floor end to end on a disk image: a bundle older than the installed version,
// one whose min_version the device does not meet yet, and a version rolled back from. Each is
// refused by --apply (exit 2, one line naming the versions, nothing changed) and not offered
// by --check (exit 0); --allow-downgrade lets the first and the last through, never the floor.
#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "support/device.hpp"
#include "support/support.hpp"

using namespace osu::test;

namespace {

constexpr uint64_t kImageSize = 2u << 20;

// Everything a refused apply must leave alone: both slots, the boot directories with their
// records, the boot env and its backup byte for byte, the rejected list, the config.
std::string Everything(FakeDevice& d) {
  std::ostringstream s;
  s << d.Snapshot() << "slot B: " << d.Fingerprint(d.SlotB()) << "\n";
  for (const std::string& p : {d.grubenv(), d.grubenv() + ".bak"}) s << p << " " << Sha256OfFile(p) << "\n";
  for (const char* dir : {"/osu", "/osu/A", "/osu/B"}) {
    if (!std::filesystem::exists(d.boot() + dir)) continue;
    for (const auto& e : std::filesystem::directory_iterator(d.boot() + dir))
      if (e.is_regular_file()) s << e.path().string() << " " << Sha256OfFile(e.path().string()) << "\n";
  }
  return s.str();
}

void ExpectRefused(FakeDevice& d, const std::string& before, const MainResult& r,
                   const std::string& message) {
  INFO("stderr: " << r.err);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains(message));
  CHECK(HasOneErrorLine(r.err));
  CHECK(LastActivatorCalls().empty());
  CHECK(Everything(d) == before);
}

// Installed into slot B and verified: its bytes are the image's, its record says so.
void ExpectInstalled(FakeDevice& d, const MainResult& r, const std::string& image,
                     const std::string& version) {
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
  CHECK(d.RegionSha256(d.SlotB(), kImageSize) == Sha256OfFile(image));
  const std::string record = ReadFile(d.boot() + "/osu/B/record.yml");
  CHECK_THAT(record, Catch::Contains("state: verified"));
  CHECK_THAT(record, Catch::Contains("version: \"" + version + "\"") ||
                         Catch::Contains("version: " + version + "\n"));
}

// The installed version from os-release, as on a freshly flashed device without a record.
void Installed(FakeDevice& d, const std::string& version) {
  std::filesystem::remove(d.boot() + "/osu/A/record.yml");
  WriteFile(d.path("os-release"), "ID=eos\nIMAGE_VERSION=" + version + "\n");
}

}  // namespace

TEST_CASE("an older bundle is refused, naming both versions, and changes nothing", "[downgrade]") {
  // Versions compare as versions: 1.10 is newer than 1.9, a release newer than its rc.
  const auto versions = GENERATE(table<std::string, std::string>(
      {{"1.0", "0.9"}, {"1.10", "1.9"}, {"2.0", "2.0~rc1"}}));
  const std::string installed = std::get<0>(versions), older = std::get<1>(versions);
  FakeDevice d;
  if (installed != "1.0") Installed(d, installed);  // 1.0: slot A's record
  const std::string image = d.MakeImage("old.img", kImageSize, 31);
  const std::string bundle = d.MakeBundle("old.osu", image, older);
  const std::string before = Everything(d), snapshot = d.Snapshot();

  auto r = Update(d, {"--apply", bundle});
  ExpectRefused(d, before, r,
                "bundle version " + older + " is older than the installed " + installed +
                    " (use --allow-downgrade)");
  CHECK_FALSE(FileExists(d.boot() + "/osu/B/record.yml"));

  SECTION("--check: not an update, exit 0") {
    auto c = Update(d, {"--check", bundle});
    CHECK(c.code == 0);
    CHECK_THAT(c.out, Catch::Contains("Up to date"));
    auto j = Update(d, {"--check", bundle, "--json"});
    CHECK(j.code == 0);
    CHECK_THAT(j.out, Catch::Contains("\"update_available\":false"));
    CHECK(Everything(d) == before);
  }
  SECTION("--allow-downgrade installs it") {
    auto forced = Update(d, {"--apply", bundle, "--allow-downgrade", "--no-activate"});
    ExpectInstalled(d, forced, image, older);
    CHECK(d.Snapshot() == snapshot);  // slot A, its record and the committed slot untouched
  }
}

TEST_CASE("the installed version again is a reinstall, not a downgrade", "[downgrade]") {
  FakeDevice d;
  const std::string image = d.MakeImage("same.img", kImageSize, 32);
  auto r = Update(d, {"--apply", d.MakeBundle("same.osu", image, "1.0"), "--no-activate"});
  ExpectInstalled(d, r, image, "1.0");
}

TEST_CASE("min_version is a floor of the running version that --allow-downgrade does not lift",
          "[downgrade]") {
  FakeDevice d;  // runs 1.0
  const std::string image = d.MakeImage("v3.img", kImageSize, 33);
  const std::string v3 = d.MakeBundle("v3.osu", image, "3.0", "xz", {"--min-version", "2.0"});
  const std::string before = Everything(d);
  const std::string message = "bundle 3.0 needs at least version 2.0 installed, this device runs 1.0";

  ExpectRefused(d, before, Update(d, {"--apply", v3}), message);
  // A migration step cannot be skipped: the flag is about older bundles, not this.
  ExpectRefused(d, before, Update(d, {"--apply", v3, "--allow-downgrade"}), message);
  CHECK_FALSE(FileExists(d.boot() + "/osu/B/record.yml"));

  // --check does not offer what --apply would refuse.
  auto c = Update(d, {"--check", v3});
  CHECK(c.code == 0);
  CHECK_THAT(c.out, Catch::Contains(message.substr(std::string("bundle ").size())));
  auto j = Update(d, {"--check", v3, "--json"});
  CHECK(j.code == 0);
  CHECK_THAT(j.out, Catch::Contains("\"update_available\":false"));
  CHECK(Everything(d) == before);

  SECTION("a device at the floor takes it") {
    Installed(d, "2.0");
    CHECK(Update(d, {"--check", v3}).code == 100);
    ExpectInstalled(d, Update(d, {"--apply", v3, "--no-activate"}), image, "3.0");
  }
  SECTION("a device past the floor too") {
    Installed(d, "2.5");
    ExpectInstalled(d, Update(d, {"--apply", v3, "--no-activate"}), image, "3.0");
  }
  SECTION("a device whose version is unknown does not meet it") {
    // No record for the booted slot, an os-release without IMAGE_VERSION or VERSION_ID.
    std::filesystem::remove(d.boot() + "/osu/A/record.yml");
    WriteFile(d.path("os-release"), "ID=eos\nNAME=\"EOS\"\n");
    const std::string unknown = Everything(d);
    const std::string why = "needs at least version 2.0 installed, and this device's version is "
                            "unknown (slot A has no verified record, '" + d.path("os-release") +
                            "' no IMAGE_VERSION or VERSION_ID)";
    ExpectRefused(d, unknown, Update(d, {"--apply", v3}), "bundle 3.0 " + why);
    auto unknown_check = Update(d, {"--check", v3, "--json"});
    CHECK(unknown_check.code == 0);
    CHECK_THAT(unknown_check.out, Catch::Contains("\"update_available\":false"));
    CHECK(Everything(d) == unknown);
    // Without a floor, an unknown version takes any bundle.
    const std::string plain = d.MakeBundle("v3-plain.osu", image, "3.0");
    CHECK(Update(d, {"--check", plain}).code == 100);
  }
}

TEST_CASE("a version rolled back from is refused until allowed, and newer ones are not",
          "[downgrade][rollback]") {
  FakeDevice d;
  const std::string v2 = d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 34), "2.0");
  // Install 2.0 into B, boot it (the command line the fake kexec was given), commit, roll back
  // to 1.0 in A and boot A again.
  auto applied = Update(d, {"--apply", v2});
  INFO(applied.err);
  REQUIRE(applied.code == 0);
  const auto calls = LastActivatorCalls();
  REQUIRE(calls.size() == 2);
  d.SetCmdline(calls[0].substr(calls[0].find("console=")));
  REQUIRE(Update(d, {"--commit"}).code == 0);
  REQUIRE(Update(d, {"--rollback"}).code == 0);
  d.SetCmdline("console=ttyS0 root=PARTLABEL=p.lxreadonly ro quiet");
  REQUIRE(ReadFile(d.boot() + "/osu/rejected") == "2.0\n");
  const std::string before = Everything(d);

  // Newer than the running 1.0, but rolled back from: not offered, not installed.
  auto c = Update(d, {"--check", v2, "--json"});
  CHECK(c.code == 0);
  CHECK_THAT(c.out, Catch::Contains("\"update_available\":false"));
  CHECK_THAT(c.out, Catch::Contains("version 2.0 was rolled back on this device"));
  ExpectRefused(d, before, Update(d, {"--apply", v2}),
                "version 2.0 was rolled back on this device (use --allow-downgrade)");

  SECTION("a newer fix is offered and installs; 2.0 stays rejected") {
    const std::string image = d.MakeImage("v21.img", kImageSize, 35);
    const std::string v21 = d.MakeBundle("v21.osu", image, "2.1");
    CHECK(Update(d, {"--check", v21}).code == 100);
    ExpectInstalled(d, Update(d, {"--apply", v21, "--no-activate"}), image, "2.1");
    CHECK(ReadFile(d.boot() + "/osu/rejected") == "2.0\n");
    CHECK(Update(d, {"--check", v2}).code == 0);
  }
  SECTION("--allow-downgrade installs it and forgets the rejection") {
    auto forced = Update(d, {"--apply", v2, "--allow-downgrade", "--no-activate"});
    ExpectInstalled(d, forced, d.path("v2.img"), "2.0");
    CHECK(ReadFile(d.boot() + "/osu/rejected").find("2.0") == std::string::npos);
  }
}
