#include <catch2/catch.hpp>

#include "config/config.hpp"
#include "install/system.hpp"
#include "install/version.hpp"
#include "bootpart/boot_partition.hpp"
#include "record/record.hpp"
#include "support/support.hpp"

using osu::ParseConfig;

TEST_CASE("config: EOS keys keep their meaning, missing keys are absent", "[config]") {
  auto c = ParseConfig("update:\n  server: https://updates.example.com/eos\n  name: eos-kvm\n"
                       "  pkey: /etc/os-update/id_ed25519\n",
                       "eos.yml");
  REQUIRE(c);
  CHECK(c->server == "https://updates.example.com/eos");
  CHECK(c->name == "eos-kvm");
  CHECK(c->pkey == "/etc/os-update/id_ed25519");
  CHECK(c->DefaultSource() == "https://updates.example.com/eos/eos-kvm.osu");
  CHECK(c->compatible.empty());  // absent, not "null"
  CHECK(c->labels.a == "p.lxreadonly");
  CHECK(c->labels.b == "p.lxrootclone1");
  CHECK(c->boot_path == "/boot");
  CHECK(c->cmdline_path == "/proc/cmdline");
  CHECK(c->delta_prefer == osu::DeltaPrefer::Time);  // the way that ends soonest
  CHECK(c->link_rate == 0);                           // measured
}

TEST_CASE("config: null values leave defaults, never the string \"null\"", "[config]") {
  auto c = ParseConfig("update:\n  compatible: ~\n  server: null\nslots:\n  a:\n", "n.yml");
  REQUIRE(c);
  CHECK(c->compatible.empty());
  CHECK(c->server.empty());
  CHECK(c->labels.a == "p.lxreadonly");
}

TEST_CASE("config: every key", "[config]") {
  auto c = ParseConfig(R"(update:
  keys: [/k/a.pem, /k/b.pem]
  compatible: eos-rpi5
  ca_file: /etc/ssl/ca.pem
  delta_prefer: bytes
  link_rate: 1250000
slots:
  disk: /dev/mmcblk0
  a: rootA
  b: rootB
boot:
  path: /boot/firmware
system:
  cmdline: /tmp/cmdline
  mountinfo: /tmp/mountinfo
  lock: /tmp/lock
  os_release: /tmp/os-release
install:
  verify: true
  skip_unchanged: yes
  threads: 2
)",
                       "all.yml");
  REQUIRE(c);
  CHECK(c->keys == std::vector<std::string>{"/k/a.pem", "/k/b.pem"});
  CHECK(c->compatible == "eos-rpi5");
  CHECK(c->delta_prefer == osu::DeltaPrefer::Bytes);
  CHECK(c->link_rate == 1250000);
  CHECK(c->disk == "/dev/mmcblk0");
  CHECK(c->labels.a == "rootA");
  CHECK(c->labels.b == "rootB");
  CHECK(c->boot_path == "/boot/firmware");
  CHECK(c->verify_readback);
  CHECK(c->skip_unchanged);
  CHECK(c->threads == 2);
}

TEST_CASE("config: errors name the file, the line and the key", "[config]") {
  auto bad = [](const std::string& yaml) {
    auto c = ParseConfig(yaml, "/etc/os-update.yml");
    REQUIRE_FALSE(c);
    CHECK(c.error().kind() == osu::ErrorKind::Usage);
    return c.error().message();
  };
  CHECK_THAT(bad("update: [1, 2"), Catch::Contains("/etc/os-update.yml") &&
                                       Catch::Contains("not valid YAML"));
  CHECK_THAT(bad("update:\n  keys: {a: 1}\n"), Catch::Contains("line 2") &&
                                                   Catch::Contains("update.keys"));
  CHECK_THAT(bad("updates:\n  server: x\n"), Catch::Contains("updates is not a known section"));
  CHECK_THAT(bad("install:\n  verify: maybe\n"), Catch::Contains("install.verify"));
  CHECK_THAT(bad("install:\n  threads: -1\n"), Catch::Contains("install.threads"));
  CHECK_THAT(bad("update:\n  delta_prefer: fast\n"),
             Catch::Contains("update.delta_prefer") && Catch::Contains("must be time or bytes"));
  CHECK_THAT(bad("update:\n  link_rate: 10M\n"), Catch::Contains("update.link_rate"));
  CHECK_THAT(bad("slots:\n  a: same\n  b: same\n"), Catch::Contains("both 'same'"));
  CHECK_THAT(bad("- a\n- b\n"), Catch::Contains("mapping"));
  // yaml-cpp would answer with the first of two: the second must not be silently ignored.
  CHECK_THAT(bad("boot:\n  path: /boot\nboot:\n  bootloader: uboot\n"),
             Catch::Contains("line 3") && Catch::Contains("boot appears twice"));
  CHECK_THAT(bad("boot:\n  bootloader: grub\n  bootloader: uboot\n"),
             Catch::Contains("line 3") && Catch::Contains("boot.bootloader appears twice"));
}

TEST_CASE("config: the default path may be missing, an explicit one may not", "[config]") {
  osu::test::TempDir dir;
  auto implicit = osu::LoadConfig(dir / "none.yml", false);
  REQUIRE(implicit);
  CHECK(implicit->boot_path == "/boot");
  auto explicit_missing = osu::LoadConfig(dir / "none.yml", true);
  REQUIRE_FALSE(explicit_missing);
  CHECK(explicit_missing.error().kind() == osu::ErrorKind::Usage);
  CHECK_THAT(explicit_missing.error().message(), Catch::Contains("none.yml"));
}

TEST_CASE("versions order like package versions", "[version]") {
  using osu::CompareVersions;
  CHECK(CompareVersions("1.0", "1.0") == 0);
  CHECK(CompareVersions("1.10", "1.9") > 0);
  CHECK(CompareVersions("2.0", "10.0") < 0);
  CHECK(CompareVersions("1.0.1", "1.0") > 0);
  CHECK(CompareVersions("1.0~rc1", "1.0") < 0);
  CHECK(CompareVersions("1.0a", "1.0") > 0);
  CHECK(CompareVersions("2024.05.1", "2024.5.1") == 0);
  CHECK(CompareVersions("1.0b", "1.0a") > 0);
}

TEST_CASE("os-release: IMAGE_VERSION first, VERSION_ID second", "[version]") {
  CHECK(osu::VersionFromOsRelease("ID=eos\nVERSION_ID=\"12\"\nIMAGE_VERSION='3.1'\n") == "3.1");
  CHECK(osu::VersionFromOsRelease("ID=eos\nVERSION_ID=\"12\"\n") == "12");
  CHECK(osu::VersionFromOsRelease("ID=eos\n").empty());
}

TEST_CASE("records round-trip, and anything unreadable is never verified", "[record]") {
  osu::test::TempDir dir;
  osu::Record r;
  r.slot = osu::SlotId::B;
  r.state = osu::SlotState::Verified;
  r.version = "2.0";
  r.compatible = "eos-x86_64-kvm";
  r.sha256 = std::string(64, 'a');
  r.size = 1234;
  r.cmdline = "console=ttyS0 \"quoted\"";
  r.boot_files = {{"vmlinuz", 10, std::string(64, 'b')}};
  r.updated_at = osu::UtcNow();
  r.committed_at = osu::UtcNow();
  r.min_version = "1.5";
  const osu::BootPartition boot(dir.path());
  REQUIRE(boot.SaveRecord(r));
  auto back = boot.LoadRecord(osu::SlotId::B);
  REQUIRE(back);
  CHECK(back->state == osu::SlotState::Verified);
  CHECK(back->version == "2.0");
  CHECK(back->cmdline == r.cmdline);
  CHECK(back->boot_files.size() == 1);
  CHECK(back->boot_files[0].sha256 == std::string(64, 'b'));
  CHECK(back->committed_at == r.committed_at);
  CHECK(back->min_version == "1.5");

  CHECK_FALSE(boot.LoadRecord(osu::SlotId::A));  // none yet

  osu::test::WriteFile(dir / "osu/B/record.yml", "state: verified\nslot: B\n: : :\n");
  auto garbled = boot.LoadRecord(osu::SlotId::B);
  REQUIRE(garbled);
  CHECK(garbled->state == osu::SlotState::Invalid);

  // A record copied into the other slot's directory does not vouch for it.
  osu::test::MustRun("mkdir -p '" + dir / "osu/A" + "'");
  osu::test::WriteFile(dir / "osu/A/record.yml", osu::SerializeRecord(r));
  auto swapped = boot.LoadRecord(osu::SlotId::A);
  REQUIRE(swapped);
  CHECK(swapped->state == osu::SlotState::Invalid);
}
