// The ssh:// source as EOS's update servers run it: a real sshd on 127.0.0.1 whose
// authorized_keys forces `cat <name>.raw.dev` for the device key. Unsigned raw images are
// accepted only with update.allow_unsigned_ssh, and still hashed and recorded.
#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "config/config.hpp"
#include "install/raw_image.hpp"
#include "install/system.hpp"
#include "record/record.hpp"
#include "support/device.hpp"
#include "support/sshd.hpp"
#include "support/support.hpp"

using namespace osu::test;

namespace {

constexpr uint64_t kImageSize = 3u << 20;

// Everything a refused command must leave alone: both slots, the boot directory, env, config.
std::string Everything(FakeDevice& d) {
  std::ostringstream s;
  s << d.Snapshot() << "slot B: " << d.Fingerprint(d.SlotB()) << "\n" << d.Env();
  for (const auto& e : std::filesystem::recursive_directory_iterator(d.boot()))
    if (e.is_regular_file()) s << e.path().string() << " " << Sha256OfFile(e.path().string()) << "\n";
  return s.str();
}

std::string SshConfig(const SshServer& sshd, const std::string& key, bool allow) {
  return "  server: " + sshd.Server() + "\n  name: eos\n  pkey: " + key +
         "\n  known_hosts: " + sshd.known_hosts() + "\n  connect_timeout: 10\n" +
         (allow ? "  allow_unsigned_ssh: true\n" : "");
}

std::string RecordB(FakeDevice& d) {
  const std::string p = d.boot() + "/osu/B/record.yml";
  return FileExists(p) ? ReadFile(p) : "";
}

}  // namespace

TEST_CASE("ssh: an opted-in raw image lands in slot B, hashed and recorded as unsigned", "[ssh]") {
  FakeDevice d;
  const std::string image = d.MakeImage("eos.raw.dev", kImageSize, 51);
  SshServer sshd("cat '" + image + "'");
  d.WriteConfig("", "demo-x86_64", SshConfig(sshd, sshd.device_key(), true));
  // An older install's boot files in B do not belong to the new root file system.
  std::filesystem::create_directories(d.boot() + "/osu/B");
  WriteFile(d.boot() + "/osu/B/vmlinuz", "old kernel");
  const std::string before = d.Snapshot();

  auto r = RunUpdate({"--config", d.config(), "--apply"});  // update.server + name + .raw.dev
  INFO(r.out << r.err << sshd.Log());
  REQUIRE(r.code == 0);
  const std::string sha = Sha256OfFile(image);
  CHECK(d.RegionSha256(d.SlotB(), kImageSize) == sha);
  const std::string record = RecordB(d);
  CHECK_THAT(record, Catch::Contains("state: verified"));
  CHECK_THAT(record, Catch::Contains("sha256: \"" + sha + "\""));
  CHECK_THAT(record, Catch::Contains("size: " + std::to_string(kImageSize)));
  CHECK_THAT(record, Catch::Contains("source: \"ssh (unsigned)\""));
  CHECK_FALSE(FileExists(d.boot() + "/osu/B/vmlinuz"));
  CHECK_THAT(r.out, Catch::Contains("Not activated"));
  CHECK(LastActivatorCalls().empty());
  CHECK(d.Snapshot() == before);  // slot A, its record, the committed slot, the config
  CHECK_THAT(sshd.Log(), Catch::Contains("Accepted publickey"));

  // Nothing to boot in B (no kernel came with it): a rollback there is refused.
  const std::string env_before = d.Env();
  auto rb = RunUpdate({"--config", d.config(), "--rollback"});
  CHECK(rb.code == 4);
  CHECK_THAT(rb.err, Catch::Contains("slot B has no boot files (installed from ssh (unsigned))"));
  CHECK(d.Env() == env_before);
}

TEST_CASE("ssh: with install.skip_unchanged the same raw image again writes nothing", "[ssh][skip]") {
  FakeDevice d;
  const std::string image = d.MakeImage("eos.raw.dev", kImageSize, 53);
  SshServer sshd("cat '" + image + "'");
  d.WriteConfig("install:\n  skip_unchanged: true\n", "demo-x86_64",
                SshConfig(sshd, sshd.device_key(), true));
  for (int run = 1; run <= 2; ++run) {
    auto r = RunUpdate({"--config", d.config(), "--apply", "--json"});
    INFO("run " << run << ": " << r.out << r.err << sshd.Log());
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("Writing only the blocks that differ (install.skip_unchanged, image file)"));
    // Slot B starts as zeros, so even the first run skips the image's zero blocks.
    if (run == 1) CHECK_THAT(r.out, Catch::Contains("Wrote ") && !Catch::Contains("Wrote 0 B"));
    if (run == 2) CHECK_THAT(r.out, Catch::Contains("Wrote 0 B of 3.0 MiB; the rest was unchanged"));
    CHECK(d.RegionSha256(d.SlotB(), kImageSize) == Sha256OfFile(image));
    CHECK_THAT(RecordB(d), Catch::Contains("state: verified"));
  }
}

TEST_CASE("ssh: without update.allow_unsigned_ssh nothing is fetched or changed (exit 2)", "[ssh]") {
  FakeDevice d;
  const std::string image = d.MakeImage("eos.raw.dev", kImageSize, 52);
  SshServer sshd("cat '" + image + "'");
  d.WriteConfig("", "demo-x86_64", SshConfig(sshd, sshd.device_key(), false));
  const std::string before = Everything(d);
  auto r = RunUpdate({"--config", d.config(), "--apply"});
  INFO(r.err);
  CHECK(r.code == 2);
  CHECK(HasOneErrorLine(r.err));
  CHECK_THAT(r.err, Catch::Contains("unsigned raw image; set update.allow_unsigned_ssh: true"));
  CHECK(Everything(d) == before);
  CHECK_THAT(sshd.Log(), !Catch::Contains("Accepted publickey"));  // not even connected

  auto check = RunUpdate({"--config", d.config(), "--check"});
  CHECK(check.code == 1);
  CHECK_THAT(check.err, Catch::Contains("--check needs a signed bundle"));
}

TEST_CASE("ssh: TUF mode refuses a raw image even with update.allow_unsigned_ssh (exit 2)", "[ssh][tuf]") {
  FakeDevice d;
  const std::string image = d.MakeImage("eos.raw.dev", kImageSize, 54);
  SshServer sshd("cat '" + image + "'");
  WriteFile(d.path("root.json"), "{}");
  d.WriteConfig("tuf:\n  root: " + d.path("root.json") + "\n", "demo-x86_64",
                SshConfig(sshd, sshd.device_key(), true));
  const std::string before = Everything(d);
  auto r = RunUpdate({"--config", d.config(), "--apply"});
  INFO(r.out << r.err);
  CHECK(r.code == 2);
  CHECK(HasOneErrorLine(r.err));
  CHECK_THAT(r.err, Catch::Contains("installs only bundles its targets metadata lists"));
  CHECK(Everything(d) == before);
  CHECK_THAT(sshd.Log(), !Catch::Contains("Accepted publickey"));  // not even connected
}

TEST_CASE("ssh: a key the server refuses, or a host key not in known_hosts: exit 3", "[ssh]") {
  FakeDevice d;
  const std::string image = d.MakeImage("eos.raw.dev", kImageSize, 53);
  SshServer sshd("cat '" + image + "'");
  SECTION("the wrong device key") {
    d.WriteConfig("", "demo-x86_64", SshConfig(sshd, sshd.other_key(), true));
    const std::string before = Everything(d);
    auto r = RunUpdate({"--config", d.config(), "--apply"});
    INFO(r.err);
    CHECK(r.code == 3);
    CHECK(HasOneErrorLine(r.err));
    CHECK_THAT(r.err, Catch::Contains("Permission denied"));
    CHECK(Everything(d) == before);
  }
  SECTION("a server whose host key is not the known one") {
    d.WriteConfig("", "demo-x86_64", SshConfig(sshd, sshd.device_key(), true));
    MustRun("ssh-keygen -q -t ed25519 -N '' -f '" + d.path("impostor") + "' && printf '[127.0.0.1]:" +
            std::to_string(sshd.port()) + " ' > '" + sshd.known_hosts() + "' && cat '" +
            d.path("impostor.pub") + "' >> '" + sshd.known_hosts() + "'");
    const std::string before = Everything(d);
    auto r = RunUpdate({"--config", d.config(), "--apply"});
    INFO(r.err);
    CHECK(r.code == 3);
    CHECK_THAT(r.err, Catch::Contains("Host key verification failed"));
    CHECK(Everything(d) == before);
  }
}

TEST_CASE("ssh: a stream the server ends with an error is never recorded as verified", "[ssh]") {
  FakeDevice d;
  const std::string image = d.MakeImage("eos.raw.dev", kImageSize, 54);
  // EOS's cat dying half-way: part of the image, then a failure status.
  SshServer sshd("head -c 1048576 '" + image + "'; exit 7");
  d.WriteConfig("", "demo-x86_64", SshConfig(sshd, sshd.device_key(), true));
  const std::string before = d.Snapshot();
  auto r = RunUpdate({"--config", d.config(), "--apply"});
  INFO(r.err);
  CHECK(r.code == 3);
  CHECK(HasOneErrorLine(r.err));
  CHECK_THAT(r.err, Catch::Contains("the server's command failed (exit status 7)"));
  CHECK_THAT(RecordB(d), Catch::Contains("state: invalid"));
  CHECK(d.Snapshot() == before);
}

TEST_CASE("raw image: the writer stops at the slot's end", "[ssh][raw]") {
  FakeDevice d;
  d.WriteConfig("", "demo-x86_64", "  allow_unsigned_ssh: true\n");
  auto config = osu::LoadConfig(d.config(), true);
  REQUIRE(config.ok());
  auto env = osu::MakeBootEnv(*config);
  auto state = osu::LoadSystemState(*config, *env);
  REQUIRE(state.ok());
  // A 1 MiB slot B stands in for a full partition: the rest of the real B must stay untouched.
  constexpr uint64_t kSlot = 1u << 20;
  state->slots.slots[static_cast<size_t>(osu::SlotId::B)].part.size = kSlot;
  const Region beyond{d.SlotB().offset + kSlot, 4u << 20};
  const std::string beyond_before = d.Fingerprint(beyond);
  std::istringstream big(std::string(kSlot + 4096, 'x'));
  auto reader = osu::MakeIstreamReader(big, "test image");
  auto r = osu::ApplyRawImage(*state, *env, *reader, {"test image"}, {});
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind() == osu::ErrorKind::Verification);
  CHECK_THAT(r.error().message(), Catch::StartsWith("slot B: image is larger than the slot ('") &&
                                      Catch::EndsWith(", 1048576 bytes): stopped at the slot's end"));
  CHECK(d.Fingerprint(beyond) == beyond_before);
  CHECK_THAT(RecordB(d), Catch::Contains("state: invalid") && Catch::Contains("image is larger than the slot"));
}
