// The Pi firmware backend (boot.bootloader: pi-firmware) through the real os-update on a
// temp-directory Pi 5 device: every state of the firmware's files along apply, trial, commit,
// a failing trial and rollback, held to golden files (test/golden/pi-firmware/, regenerated
// with OSU_UPDATE_GOLDEN=1 build/test/osu-tests "[pi-firmware]"), and what a simulated Pi 5
// firmware (support/pi_firmware_sim.hpp) boots from each, cold and with the tryboot flag.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>

#include "bootenv/pi_firmware.hpp"
#include "support/device.hpp"
#include "support/pi_firmware_sim.hpp"
#include "support/support.hpp"

using namespace osu::test;

namespace {

// The files the firmware reads, the PARTUUIDs (random per disk) replaced by a name.
std::string FirmwareFiles(FakeDevice& d) {
  std::string out;
  for (const char* f : {"config.txt", "tryboot.txt", osu::kPiCommittedCopy, osu::kPiCommitted,
                        osu::kPiTrial, osu::kPiTrialCmdline, "osu/A/cmdline.txt",
                        "osu/B/cmdline.txt"}) {
    const std::string path = d.boot() + "/" + f;
    out += std::string("==> ") + f + " <==\n";
    if (!std::filesystem::exists(path)) {
      out += "(missing)\n";
      continue;
    }
    std::string text = ReadFile(path);
    for (auto pos = text.find("PARTUUID="); pos != std::string::npos;
         pos = text.find("PARTUUID=", pos + 1)) {
      const auto end = text.find_first_of(" \n", pos);
      text.replace(pos + 9, end - pos - 9, "<uuid>");
    }
    out += text;
  }
  return out;
}

std::string Boots(FakeDevice& d) {
  std::string out;
  for (bool flag : {false, true}) {
    const PiFirmwareBoot b = SimulatePiFirmware(d.boot(), flag);
    std::string cmdline = b.cmdline;
    if (auto pos = cmdline.find("PARTUUID="); pos != std::string::npos)
      cmdline.replace(pos + 9, cmdline.find(' ', pos) - pos - 9, "<uuid>");
    out += std::string(flag ? "tryboot flag" : "cold") + ": " +
           (b.started ? b.kernel + " " + b.initrd + " " + b.dtb + " '" + cmdline + "'"
                      : "nothing boots: " + b.why) + "\n";
  }
  return out;
}

void Golden(FakeDevice& d, const std::string& state) {
  const std::string actual = FirmwareFiles(d) + "==> the simulated firmware <==\n" + Boots(d);
  const std::string path = SourceDir() + "/test/golden/pi-firmware/" + state + ".txt";
  if (const char* u = std::getenv("OSU_UPDATE_GOLDEN"); u && *u == '1') WriteFile(path, actual);
  INFO("state " << state << " (OSU_UPDATE_GOLDEN=1 rewrites " << path << ")");
  REQUIRE(std::filesystem::exists(path));
  CHECK(actual == ReadFile(path));
}

std::string Bundle(FakeDevice& d, const std::string& version, const std::string& kernel) {
  const std::string image = d.MakeImage("v" + version + ".img", 256 * 1024, 7);
  const std::string dir = d.path("k" + version);
  std::filesystem::create_directories(dir);
  WriteFile(dir + "/vmlinuz", kernel + " " + version + "\n");
  WriteFile(dir + "/initrd.img", "initrd " + version + "\n");
  WriteFile(dir + "/" + kPi5DeviceTree, "device tree " + version + "\n");
  const std::string out = d.path("v" + version + ".osu");
  auto r = RunBundle({"create", "--image", image, "--compression", "zstd", "--cmdline",
                      "console=serial0,115200 rootwait", "--compatible", "demo-x86_64",
                      "--version", version, "--key", d.private_key(), "--output", out,
                      "--boot-file", dir + "/vmlinuz", "--boot-file", dir + "/initrd.img",
                      "--boot-file", dir + "/" + kPi5DeviceTree});
  INFO(r.err);
  REQUIRE(r.code == 0);
  return out;
}

// The firmware's boot: the command line it passes becomes the device's.
void BootWith(FakeDevice& d, bool tryboot_flag) {
  const PiFirmwareBoot b = SimulatePiFirmware(d.boot(), tryboot_flag);
  REQUIRE(b.started);
  d.SetCmdline(b.cmdline);
}

}  // namespace

TEST_CASE("pi-firmware: apply, trial, commit, failing trial, rollback, golden files", "[pi-firmware]") {
  FakeDevice d("rpi5");
  d.UsePiFirmware();
  Golden(d, "1-factory");
  CHECK(StatusField(d, "committed") == "\"A\"");
  CHECK(StatusField(d, "pi_firmware.config_txt") == "\"A\"");
  CHECK(StatusField(d, "slots.A.attempts_left") == "null");

  // --apply --reboot: B's files, tryboot.txt selects B, the reboot carries the tryboot flag.
  auto r = Update(d, {"--apply", Bundle(d, "2.0", "good"), "--reboot"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(LastActivatorCalls() == std::vector<std::string>{"reboot 0 tryboot"});
  Golden(d, "2-applied-tryboot-b");
  CHECK(StatusField(d, "try") == "\"B\"");
  CHECK(StatusField(d, "pi_firmware.tryboot_txt") == "\"B\"");

  // The tryboot boot: B on trial; --commit makes config.txt select B.
  BootWith(d, true);
  CHECK(StatusField(d, "booted") == "\"B\"");
  CHECK(StatusField(d, "trial") == "true");
  r = Update(d, {"--commit"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  Golden(d, "3-committed-b");
  BootWith(d, false);
  CHECK(StatusField(d, "booted") == "\"B\"");
  CHECK(StatusField(d, "trial") == "false");
  // A normal boot's --commit writes nothing.
  const std::string before = FirmwareFiles(d);
  REQUIRE(Update(d, {"--commit"}).code == 0);
  CHECK(FirmwareFiles(d) == before);

  // A failing trial: 3.0's kernel never comes up; the reset (watchdog) reads config.txt: B.
  r = Update(d, {"--apply", Bundle(d, "3.0", "PANIC"), "--reboot"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  Golden(d, "4-applied-tryboot-a");
  BootWith(d, false);  // the trial's reset: no flag
  CHECK(StatusField(d, "booted") == "\"B\"");
  CHECK(StatusField(d, "committed") == "\"B\"");
  CHECK(StatusField(d, "trial") == "false");

  // --rollback to A is refused (A now holds 3.0, which never ran to boot-complete): exit 4,
  // nothing changed.
  const std::string held = FirmwareFiles(d);
  r = Update(d, {"--rollback"});
  CHECK(r.code == 4);
  CHECK(FirmwareFiles(d) == held);
  // The next --commit of the normal boot points tryboot.txt back at the committed slot.
  REQUIRE(Update(d, {"--commit"}).code == 0);
  Golden(d, "5-failed-trial-committed-b");
}

TEST_CASE("pi-firmware: --rollback from a committed update lands on the factory slot", "[pi-firmware]") {
  FakeDevice d("rpi5");
  d.UsePiFirmware();
  REQUIRE(Update(d, {"--apply", Bundle(d, "2.0", "good"), "--reboot"}).code == 0);
  BootWith(d, true);
  REQUIRE(Update(d, {"--commit"}).code == 0);
  BootWith(d, false);
  auto r = Update(d, {"--rollback", "--reboot"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(LastActivatorCalls() == std::vector<std::string>{"reboot"});
  Golden(d, "6-rolled-back-a");
  BootWith(d, false);
  CHECK(StatusField(d, "booted") == "\"A\"");
  CHECK(StatusField(d, "committed") == "\"A\"");
}

TEST_CASE("pi-firmware: a primary selection cut to nothing boots the copy's slot", "[pi-firmware]") {
  FakeDevice d("rpi5");
  d.UsePiFirmware();
  WriteFile(d.boot() + "/" + osu::kPiCommitted, "");
  const PiFirmwareBoot b = SimulatePiFirmware(d.boot(), false);
  REQUIRE(b.started);
  CHECK(b.kernel == "osu/A/vmlinuz");
  CHECK(StatusField(d, "committed") == "\"A\"");
  // Neither selects a slot: os-update refuses to guess (exit 5), the firmware boots nothing.
  WriteFile(d.boot() + "/" + osu::kPiCommittedCopy, "");
  CHECK_FALSE(SimulatePiFirmware(d.boot(), false).started);
  auto r = Update(d, {"--status"});
  CHECK(r.code == 5);
  CHECK(r.err.find("selects no slot") != std::string::npos);
}
