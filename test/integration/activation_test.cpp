// Activation, --commit and --rollback end to end on a disk image: apply, "boot" the new slot
// (the kernel command line the fake activator was given, or SimulateBoot on the env left
// behind), commit, roll back. grub-editenv and fw_printenv, not our code, read the env;
// python3's json reads --status --json.
#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "boot/selection.hpp"
#include "support/device.hpp"
#include "support/support.hpp"

using namespace osu::test;

namespace {

constexpr uint64_t kImageSize = 2u << 20;

osu::EnvVars ParseLines(const std::string& text) {
  osu::EnvVars vars;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) vars[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return vars;
}

// The grubenv and its backup, byte for byte, with their modification times.
std::string EnvFiles(FakeDevice& d) {
  std::ostringstream s;
  for (const std::string& p : {d.grubenv(), d.grubenv() + ".bak"}) {
    s << p << " " << Sha256OfFile(p) << " "
      << std::filesystem::last_write_time(p).time_since_epoch().count() << "\n";
  }
  return s.str();
}

// Everything a refused command must leave alone: both slots, both boot dirs, env, config.
std::string Everything(FakeDevice& d) {
  std::ostringstream s;
  s << d.Snapshot() << "slot B: " << d.Fingerprint(d.SlotB()) << "\n" << EnvFiles(d) << d.Env();
  for (const char* dir : {"/osu/A", "/osu/B", "/osu"}) {
    if (!std::filesystem::exists(d.boot() + dir)) continue;
    for (const auto& e : std::filesystem::directory_iterator(d.boot() + dir))
      if (e.is_regular_file()) s << e.path().string() << " " << Sha256OfFile(e.path().string()) << "\n";
  }
  return s.str();
}

void SetRecordState(FakeDevice& d, char slot, const std::string& state) {
  const std::string p = d.boot() + "/osu/" + slot + "/record.yml";
  std::string text = ReadFile(p);
  const auto pos = text.find("state: verified");
  REQUIRE(pos != std::string::npos);
  text.replace(pos, 15, "state: " + state);
  WriteFile(p, text);
}

// apply v2 with kexec; returns the command line the activator was asked to kexec with.
std::string ApplyKexec(FakeDevice& d, const std::string& bundle) {
  auto r = Update(d, {"--apply", bundle});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const auto calls = LastActivatorCalls();
  REQUIRE(calls.size() == 2);
  const std::string load = "load " + d.boot() + "/osu/B/vmlinuz " + d.boot() + "/osu/B/initrd.img ";
  REQUIRE(calls[0].rfind(load, 0) == 0);
  CHECK(calls[1] == "kexec");
  return calls[0].substr(load.size());
}

// The device after a kexec into v2 in slot B and its commit: B booted and committed.
void CommittedB(FakeDevice& d, const std::string& bundle) {
  d.SetCmdline(ApplyKexec(d, bundle));
  auto r = Update(d, {"--commit"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE(d.EnvVar("OSU_ORDER") == "B A");
}

}  // namespace

TEST_CASE("kexec flow: apply, trial in B, apply refused, commit, commit again", "[activation]") {
  FakeDevice d;
  const std::string v2 = d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 21), "2.0");
  const std::string cmdline = ApplyKexec(d, v2);
  CHECK(cmdline == "console=ttyS0 ro quiet root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1");
  // kexec leaves the bootloader's default alone: a power cut now boots A.
  CHECK(d.EnvVar("OSU_ORDER") == "A B");
  CHECK(d.EnvVar("OSU_TRY") == "<unset>");

  d.SetCmdline(cmdline);  // now running B
  CHECK(StatusField(d, "booted") == "\"B\"");
  CHECK(StatusField(d, "committed") == "\"A\"");
  CHECK(StatusField(d, "trial") == "true");
  CHECK(StatusField(d, "try") == "null");
  CHECK(StatusField(d, "slots.B.attempts_left") == "0");
  CHECK(StatusField(d, "installed_version") == "\"2.0\"");

  // Invariant 5: no install while the trial runs, whatever the source or flags.
  const std::string v3 = d.MakeBundle("v3.osu", d.MakeImage("v3.img", kImageSize, 22), "3.0");
  const std::string before = Everything(d);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--apply", v3}, {"--apply", v2, "--allow-downgrade"}, {"--apply", v3, "--dry-run"},
           {"--apply", v3, "--reboot"}, {"--apply", d.path("missing.osu")}}) {
    auto r = Update(d, args);
    INFO(args[1] << ": " << r.err);
    CHECK(r.code == 4);
    CHECK_THAT(r.err, Catch::Contains("slot B runs as an uncommitted trial"));
    CHECK_THAT(r.err, Catch::Contains("--commit or --rollback"));
    CHECK(HasOneErrorLine(r.err));
    CHECK(LastActivatorCalls().empty());
  }
  CHECK(Everything(d) == before);

  auto c = Update(d, {"--commit"});
  INFO(c.err);
  REQUIRE(c.code == 0);
  CHECK_THAT(c.out, Catch::Contains("Committed slot B (version 2.0)"));
  CHECK(d.EnvVar("OSU_ORDER") == "B A");
  CHECK(d.EnvVar("OSU_B_LEFT") == "3");
  CHECK(d.EnvVar("OSU_A_LEFT") == "3");  // A stays the fallback
  CHECK(d.EnvVar("OSU_TRY") == "<unset>");
  // The backup copy that grub.cfg falls back to says the same.
  CHECK(MustRun("grub-editenv '" + d.grubenv() + ".bak' list") == d.Env());
  CHECK(StatusField(d, "trial") == "false");
  CHECK(StatusField(d, "committed") == "\"B\"");
  CHECK(StatusField(d, "booted") == "\"B\"");
  // A cold boot now picks B.
  CHECK(osu::SimulateBoot(osu::ParseSelection(ParseLines(d.Env()))).slot == osu::SlotId::B);

  // The commit unit runs on every boot: on a normal boot with nothing to change, no write.
  const std::string env_before = EnvFiles(d);
  auto again = Update(d, {"--commit", "--json"});
  INFO(again.err);
  CHECK(again.code == 0);
  CHECK_THAT(again.out, Catch::Contains("\"changed\":false"));
  CHECK(EnvFiles(d) == env_before);
}

TEST_CASE("reboot flow: one-shot OSU_TRY, the bootloader tries B once", "[activation]") {
  FakeDevice d;
  const std::string v2 = d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 23), "2.0");
  // B had boot attempts (a KIWI image's clone of A does): apply takes them away first.
  MustRun("grub-editenv '" + d.grubenv() + "' set OSU_B_LEFT=2");
  auto r = Update(d, {"--apply", v2, "--reboot"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(LastActivatorCalls() == std::vector<std::string>{"reboot"});
  CHECK(d.EnvVar("OSU_TRY") == "B");
  CHECK(d.EnvVar("OSU_ORDER") == "A B");  // the default is unchanged until --commit
  CHECK(d.EnvVar("OSU_B_LEFT") == "0");
  CHECK(d.EnvVar("OSU_A_LEFT") == "3");
  CHECK(MustRun("grub-editenv '" + d.grubenv() + ".bak' list") == d.Env());

  auto boot = osu::SimulateBoot(osu::ParseSelection(ParseLines(d.Env())));
  CHECK(boot.slot == osu::SlotId::B);
  CHECK(boot.trial);
  CHECK_FALSE(boot.env_after.try_slot.has_value());
  // The trial that never commits: the next boot is A again.
  auto next = osu::SimulateBoot(boot.env_after);
  CHECK(next.slot == osu::SlotId::A);
  CHECK_FALSE(next.trial);

  // Boot B as the bootloader would (it cleared OSU_TRY), then commit.
  MustRun("grub-editenv '" + d.grubenv() + "' unset OSU_TRY");
  d.SetCmdline("root=PARTLABEL=p.lxrootclone1 osu.slot=B console=ttyS0 quiet osu.trial=1");
  CHECK(StatusField(d, "trial") == "true");
  auto c = Update(d, {"--commit"});
  INFO(c.err);
  REQUIRE(c.code == 0);
  CHECK(d.EnvVar("OSU_ORDER") == "B A");
  CHECK(d.EnvVar("OSU_B_LEFT") == "3");
}

TEST_CASE("commit refuses a trial of a slot that is not verified", "[activation][bad]") {
  FakeDevice d;
  const std::string v2 = d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 24), "2.0");
  d.SetCmdline(ApplyKexec(d, v2));
  const std::string what = GENERATE("installing", "invalid", "boot file changed", "no record");
  if (what == "boot file changed") {
    WriteFile(d.boot() + "/osu/B/vmlinuz", ReadFile(d.boot() + "/osu/B/vmlinuz") + "x");
  } else if (what == "no record") {
    std::filesystem::remove(d.boot() + "/osu/B/record.yml");
  } else {
    SetRecordState(d, 'B', what);
  }
  const std::string before = Everything(d);
  auto r = Update(d, {"--commit"});
  INFO(what << ": " << r.err);
  CHECK(r.code == 4);
  CHECK_THAT(r.err, Catch::Contains("cannot commit the trial of slot B"));
  CHECK(HasOneErrorLine(r.err));
  CHECK(Everything(d) == before);
  CHECK(d.EnvVar("OSU_ORDER") == "A B");
}

TEST_CASE("commit on a normal boot gives the booted slot its attempts back", "[activation]") {
  FakeDevice d;
  MustRun("grub-editenv '" + d.grubenv() + "' set OSU_A_LEFT=1");  // the bootloader counted down
  auto r = Update(d, {"--commit", "--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"changed\":true"));
  CHECK(d.EnvVar("OSU_A_LEFT") == "3");
  CHECK(d.EnvVar("OSU_ORDER") == "A B");
  CHECK(MustRun("grub-editenv '" + d.grubenv() + ".bak' list") == d.Env());

  SECTION("also when the booted slot's record is damaged: health is boot-complete, not a file") {
    MustRun("grub-editenv '" + d.grubenv() + "' set OSU_A_LEFT=1");
    const std::string what = GENERATE("invalid", "garbled");
    if (what == "garbled")
      WriteFile(d.boot() + "/osu/A/record.yml", "slot: A\nstate: [\n");
    else
      SetRecordState(d, 'A', what);
    auto damaged = Update(d, {"--commit", "--json"});
    INFO(damaged.err);
    CHECK(damaged.code == 0);
    CHECK_THAT(damaged.out, Catch::Contains("its record is damaged"));
    CHECK(d.EnvVar("OSU_A_LEFT") == "3");
    CHECK(d.EnvVar("OSU_ORDER") == "A B");
    CHECK(osu::SimulateBoot(osu::ParseSelection(ParseLines(d.Env()))).slot == osu::SlotId::A);
  }
}

TEST_CASE("rollback from a committed B back to A", "[activation][rollback]") {
  FakeDevice d;
  const std::string v2 = d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 25), "2.0");
  CommittedB(d, v2);

  SECTION("--rollback makes A the default and remembers 2.0 as rejected") {
    auto r = Update(d, {"--rollback"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("slot A (version 1.0)"));
    CHECK(LastActivatorCalls().empty());  // no --reboot: stays up until the user reboots
    CHECK(d.EnvVar("OSU_ORDER") == "A B");
    CHECK(d.EnvVar("OSU_A_LEFT") == "3");
    CHECK(d.EnvVar("OSU_B_LEFT") == "0");
    CHECK(d.EnvVar("OSU_TRY") == "<unset>");
    CHECK(MustRun("grub-editenv '" + d.grubenv() + ".bak' list") == d.Env());
    CHECK(ReadFile(d.boot() + "/osu/rejected") == "2.0\n");
    CHECK(osu::SimulateBoot(osu::ParseSelection(ParseLines(d.Env()))).slot == osu::SlotId::A);

    auto check = Update(d, {"--check", v2});
    CHECK(check.code == 0);
    CHECK_THAT(check.out, Catch::Contains("version 2.0 was rolled back on this device"));

    // Reboot into A; 2.0 is not installed again unless asked for.
    d.SetCmdline("console=ttyS0 root=PARTLABEL=p.lxreadonly ro quiet");
    CHECK(StatusField(d, "trial") == "false");
    const std::string before = d.Snapshot();
    auto again = Update(d, {"--apply", v2});
    CHECK(again.code == 2);
    CHECK_THAT(again.err, Catch::Contains("version 2.0 was rolled back on this device"));
    CHECK(HasOneErrorLine(again.err));
    CHECK(d.Snapshot() == before);
    // Asked for explicitly, it installs, and its trial may be committed again.
    auto forced = Update(d, {"--apply", v2, "--allow-downgrade"});
    INFO(forced.err);
    REQUIRE(forced.code == 0);
    CHECK(d.Snapshot() == before);
    CHECK(ReadFile(d.boot() + "/osu/rejected").find("2.0") == std::string::npos);
    const auto calls = LastActivatorCalls();
    REQUIRE(calls.size() == 2);
    d.SetCmdline(calls[0].substr(calls[0].find("console=")));
    auto c = Update(d, {"--commit"});
    INFO(c.err);
    CHECK(c.code == 0);
    CHECK(d.EnvVar("OSU_ORDER") == "B A");
  }
  SECTION("--rollback --reboot goes there now") {
    auto r = Update(d, {"--rollback", "--reboot"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(LastActivatorCalls() == std::vector<std::string>{"reboot"});
    CHECK(d.EnvVar("OSU_ORDER") == "A B");
  }
  SECTION("--rollback --dry-run writes nothing") {
    const std::string before = Everything(d);
    auto r = Update(d, {"--rollback", "--dry-run"});
    CHECK(r.code == 0);
    CHECK(Everything(d) == before);
  }
  SECTION("not to a slot that is no longer verified") {
    const std::string what = GENERATE("installing", "invalid", "boot file changed");
    if (what == "boot file changed")
      WriteFile(d.boot() + "/osu/A/initrd.img", "tampered\n");
    else
      SetRecordState(d, 'A', what);
    const std::string before = Everything(d);
    auto r = Update(d, {"--rollback", "--reboot"});
    INFO(what << ": " << r.err);
    CHECK(r.code == 4);
    CHECK_THAT(r.err, Catch::Contains("cannot roll back to slot A"));
    CHECK(HasOneErrorLine(r.err));
    CHECK(LastActivatorCalls().empty());
    CHECK(Everything(d) == before);
    CHECK_FALSE(FileExists(d.boot() + "/osu/rejected"));
  }
}

TEST_CASE("a rollback during the trial is not undone by the commit unit", "[activation][rollback]") {
  FakeDevice d;
  const std::string v2 = d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 27), "2.0");
  d.SetCmdline(ApplyKexec(d, v2));
  auto r = Update(d, {"--rollback"});  // e.g. a failing health check, before boot-complete
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(d.EnvVar("OSU_ORDER") == "A B");
  CHECK(d.EnvVar("OSU_B_LEFT") == "0");
  const std::string before = Everything(d);
  auto c = Update(d, {"--commit"});
  INFO(c.err);
  CHECK(c.code == 4);
  CHECK_THAT(c.err, Catch::Contains("version 2.0 was rolled back on this device"));
  CHECK(HasOneErrorLine(c.err));
  CHECK(Everything(d) == before);
  CHECK(osu::SimulateBoot(osu::ParseSelection(ParseLines(d.Env()))).slot == osu::SlotId::A);
}

TEST_CASE("rollback to a slot that was never installed is refused", "[activation][rollback][bad]") {
  FakeDevice d;  // factory: A booted, B empty and without a record
  const std::string before = Everything(d);
  auto r = Update(d, {"--rollback"});
  CHECK(r.code == 4);
  CHECK_THAT(r.err, Catch::Contains("slot B has no record"));
  CHECK(HasOneErrorLine(r.err));
  CHECK(Everything(d) == before);
  CHECK_FALSE(FileExists(d.boot() + "/osu/rejected"));
}

namespace {

// boot.bootloader: uboot with a redundant env (two copies made by mkenvimage -r), as on a
// Raspberry Pi. The keys go into the boot: section WriteConfig already wrote.
std::string UseUboot(FakeDevice& d, const std::string& vars) {
  for (const char* tool : {"mkenvimage", "fw_printenv", "fw_setenv"}) RequireTool(tool);
  WriteFile(d.path("env.txt"), vars);
  for (const char* copy : {"env0.bin", "env1.bin"})
    MustRun("mkenvimage -r -s 0x4000 -o '" + d.path(copy) + "' '" + d.path("env.txt") + "'");
  const std::string fw_config = d.path("fw_env.config");
  WriteFile(fw_config, d.path("env0.bin") + " 0x0 0x4000\n" + d.path("env1.bin") + " 0x0 0x4000\n");
  std::string config = ReadFile(d.config());
  const std::string boot_line = "  path: " + d.boot() + "\n";
  const auto pos = config.find(boot_line);
  REQUIRE(pos != std::string::npos);
  config.insert(pos + boot_line.size(),
                "  bootloader: uboot\n  fw_env_config: " + fw_config + "\n");
  WriteFile(d.config(), config);
  return fw_config;
}

// From the whole listing: `fw_printenv -n` prints "" and exits 0 for a missing variable.
std::string PrintEnv(const std::string& fw_config, const std::string& name) {
  const auto vars = ParseLines(MustRun("fw_printenv -c '" + fw_config + "'"));
  return vars.count(name) ? vars.at(name) : "<unset>";
}

}  // namespace

TEST_CASE("U-Boot: apply --reboot sets OSU_TRY, commit after the trial", "[activation][uboot]") {
  FakeDevice d;
  const std::string fw = UseUboot(d, "bootcmd=run distro_bootcmd\nbootdelay=2\nOSU_ORDER=A B\n"
                                     "OSU_A_LEFT=3\nOSU_B_LEFT=3\n");
  const std::string v2 = d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 26), "2.0");
  auto r = Update(d, {"--apply", v2, "--reboot"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(LastActivatorCalls() == std::vector<std::string>{"reboot"});
  CHECK(PrintEnv(fw, "OSU_TRY") == "B");
  CHECK(PrintEnv(fw, "OSU_B_LEFT") == "0");
  CHECK(PrintEnv(fw, "OSU_ORDER") == "A B");
  CHECK(PrintEnv(fw, "OSU_A_LEFT") == "3");
  CHECK(PrintEnv(fw, "bootcmd") == "run distro_bootcmd");  // not ours: kept
  // The grubenv the fixture made is not what this device boots with: untouched.
  CHECK(d.EnvVar("OSU_TRY") == "<unset>");
  CHECK(FileExists(d.boot() + "/osu/B/boot.env"));
  CHECK_FALSE(FileExists(d.boot() + "/osu/B/grub.cfg"));

  // The bootloader: boot.cmd clears OSU_TRY and boots B with the slot's boot.env.
  const auto vars = ParseLines(MustRun("fw_printenv -c '" + fw + "'"));
  auto boot = osu::SimulateBoot(osu::ParseSelection(vars));
  REQUIRE(boot.slot == osu::SlotId::B);
  REQUIRE(boot.trial);
  MustRun("fw_setenv -c '" + fw + "' OSU_TRY");
  CHECK(PrintEnv(fw, "OSU_TRY") == "<unset>");
  const auto slot_env = ParseLines(ReadFile(d.boot() + "/osu/B/boot.env"));
  REQUIRE(slot_env.count("osu_root"));
  d.SetCmdline("root=" + slot_env.at("osu_root") + " osu.slot=B " + slot_env.at("osu_cmdline") +
               " osu.trial=1");
  CHECK(StatusField(d, "booted") == "\"B\"");
  CHECK(StatusField(d, "trial") == "true");

  auto c = Update(d, {"--commit"});
  INFO(c.err);
  REQUIRE(c.code == 0);
  CHECK(PrintEnv(fw, "OSU_ORDER") == "B A");
  CHECK(PrintEnv(fw, "OSU_B_LEFT") == "3");
  CHECK(PrintEnv(fw, "bootcmd") == "run distro_bootcmd");
  CHECK(StatusField(d, "trial") == "false");
  CHECK(StatusField(d, "committed") == "\"B\"");
}

TEST_CASE("the real platform will not kexec or reboot a host whose slots are an image file",
          "[activation][bad]") {
  FakeDevice d;
  const std::string v2 = d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 23), "2.0");
  const std::string before = Everything(d);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--apply", v2}, {"--apply", v2, "--kexec"}, {"--apply", v2, "--reboot"},
           {"--rollback", "--reboot"}}) {
    std::vector<std::string> full{"--config", d.config()};
    full.insert(full.end(), args.begin(), args.end());
    auto r = RunUpdateAsHost(full);
    INFO(args.back() << ": " << r.err);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("is an image file, not a disk this system boots from"));
    CHECK_THAT(r.err, Catch::Contains("--no-activate"));
    CHECK(HasOneErrorLine(r.err));
    CHECK(LastActivatorCalls().empty());
  }
  CHECK(Everything(d) == before);

  // Installing without leaving the system is what such a host can do.
  auto ok = RunUpdateAsHost({"--config", d.config(), "--apply", v2, "--no-activate"});
  INFO(ok.err);
  CHECK(ok.code == 0);
  CHECK_THAT(ok.out, Catch::Contains("Not activated (--no-activate)"));
  CHECK(LastActivatorCalls().empty());
  CHECK(d.EnvVar("OSU_ORDER") == "A B");
}

namespace {

// --apply --no-activate of v2: B verified and recorded, nothing started, the env as it was.
void InstalledB(FakeDevice& d, const std::string& bundle) {
  auto r = Update(d, {"--apply", bundle, "--no-activate"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE(LastActivatorCalls().empty());
  REQUIRE(d.EnvVar("OSU_TRY") == "<unset>");
  REQUIRE(d.EnvVar("OSU_ORDER") == "A B");
}

using Calls = std::vector<std::vector<std::string>>;

// Each call fails with `code` and one error line that contains every one of `messages`,
// without a kexec or reboot; together they leave the device as it was.
void CheckRefused(FakeDevice& d, const Calls& calls, int code,
                  const std::vector<std::string>& messages, bool as_host = false) {
  const std::string before = Everything(d);
  for (const auto& args : calls) {
    std::vector<std::string> full{"--config", d.config()};
    full.insert(full.end(), args.begin(), args.end());
    auto r = as_host ? RunUpdateAsHost(full) : Update(d, args);
    INFO(args.back() << ": " << r.err);
    CHECK(r.code == code);
    for (const auto& m : messages) CHECK_THAT(r.err, Catch::Contains(m));
    CHECK(HasOneErrorLine(r.err));
    CHECK(LastActivatorCalls().empty());
  }
  CHECK(Everything(d) == before);
}

}  // namespace

TEST_CASE("activate: --activate --reboot starts a slot installed earlier with --no-activate",
          "[activation][activate]") {
  FakeDevice d;
  InstalledB(d, d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 31), "2.0"));

  // A dry run says what it would do and does nothing.
  const std::string before = Everything(d);
  auto dry = Update(d, {"--activate", "--reboot", "--dry-run"});
  INFO(dry.err);
  REQUIRE(dry.code == 0);
  CHECK_THAT(dry.out, Catch::Contains("Dry run: would set OSU_TRY=B and reboot into slot B once"));
  CHECK(LastActivatorCalls().empty());
  CHECK(Everything(d) == before);

  auto r = Update(d, {"--activate", "--reboot", "--json"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(LastActivatorCalls() == std::vector<std::string>{"reboot"});
  CHECK_THAT(r.out, Catch::Contains("\"action\":\"activate\""));
  CHECK_THAT(r.out, Catch::Contains("\"activation\":\"reboot\""));
  CHECK_THAT(r.out, Catch::Contains("\"slot\":\"B\""));
  CHECK_THAT(r.out, Catch::Contains("\"version\":\"2.0\""));
  // grub-editenv reads what --apply --reboot would have left: a one-shot try of B, A the default.
  CHECK(d.EnvVar("OSU_TRY") == "B");
  CHECK(d.EnvVar("OSU_ORDER") == "A B");
  CHECK(d.EnvVar("OSU_A_LEFT") == "3");
  CHECK(d.EnvVar("OSU_B_LEFT") == "0");
  CHECK(MustRun("grub-editenv '" + d.grubenv() + ".bak' list") == d.Env());
  auto boot = osu::SimulateBoot(osu::ParseSelection(ParseLines(d.Env())));
  CHECK(boot.slot == osu::SlotId::B);
  CHECK(boot.trial);
}

TEST_CASE("activate: --activate --kexec loads the slot's kernel and command line, env untouched",
          "[activation][activate]") {
  FakeDevice d;
  InstalledB(d, d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 32), "2.0"));
  const std::string env_before = EnvFiles(d);
  auto r = Update(d, {"--activate", "--kexec"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("Slot B (version 2.0) is verified."));
  CHECK_THAT(r.out, Catch::Contains("Activating: kexec into slot B"));
  const auto calls = LastActivatorCalls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0] == "load " + d.boot() + "/osu/B/vmlinuz " + d.boot() + "/osu/B/initrd.img " +
                        "console=ttyS0 ro quiet root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1");
  CHECK(calls[1] == "kexec");
  CHECK(EnvFiles(d) == env_before);  // a power cut now boots A

  // The kexec'd trial commits as after --apply.
  d.SetCmdline(calls[0].substr(calls[0].find("console=")));
  auto c = Update(d, {"--commit"});
  INFO(c.err);
  CHECK(c.code == 0);
  CHECK(d.EnvVar("OSU_ORDER") == "B A");
}

TEST_CASE("activate: --activate refuses a slot that is not ready, and changes nothing",
          "[activation][activate][bad]") {
  FakeDevice d;
  const std::string what = GENERATE("no record", "installing", "invalid", "boot file changed",
                                    "boot file missing");
  if (what != "no record") {
    InstalledB(d, d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 33), "2.0"));
    if (what == "boot file changed")
      WriteFile(d.boot() + "/osu/B/vmlinuz", ReadFile(d.boot() + "/osu/B/vmlinuz") + "x");
    else if (what == "boot file missing")
      std::filesystem::remove(d.boot() + "/osu/B/initrd.img");
    else
      SetRecordState(d, 'B', what);
  }
  const std::string expected =
      what == "no record"   ? "slot B has no record: it was never installed by os-update; run --apply first"
      : what == "installing" ? "slot B is not verified (state installing); run --apply first"
      : what == "invalid"    ? "slot B is not verified (state invalid); run --apply first"
      : what == "boot file changed"
          ? "slot B is incomplete: boot file 'vmlinuz' no longer matches its record"
          : "slot B is incomplete";
  INFO(what);
  CheckRefused(d,
               {{"--activate"}, {"--activate", "--kexec"}, {"--activate", "--reboot"},
                {"--activate", "--dry-run"}, {"--activate", "--allow-downgrade"}},
               4, {expected});
}

TEST_CASE("activate: --activate refuses during a trial, as --apply does", "[activation][activate][bad]") {
  FakeDevice d;
  const std::string v2 = d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 34), "2.0");
  d.SetCmdline(ApplyKexec(d, v2));  // B runs as a trial; A is verified and the target
  CheckRefused(d, {{"--activate"}, {"--activate", "--reboot"}, {"--activate", "--dry-run"}}, 4,
               {"slot B runs as an uncommitted trial", "run --commit or --rollback first"});
}

TEST_CASE("activate: --activate of a version rolled back from needs --allow-downgrade",
          "[activation][activate][rollback]") {
  FakeDevice d;
  CommittedB(d, d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 35), "2.0"));
  auto rb = Update(d, {"--rollback"});
  INFO(rb.err);
  REQUIRE(rb.code == 0);
  d.SetCmdline("console=ttyS0 root=PARTLABEL=p.lxreadonly ro quiet");  // back in A
  REQUIRE(ReadFile(d.boot() + "/osu/rejected") == "2.0\n");

  CheckRefused(d, {{"--activate"}, {"--activate", "--reboot"}, {"--activate", "--dry-run"}}, 2,
               {"version 2.0 in slot B was rolled back on this device (use --allow-downgrade)"});

  // Asked for explicitly: tried once, and no longer rejected, so its trial may commit.
  auto r = Update(d, {"--activate", "--reboot", "--allow-downgrade"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(LastActivatorCalls() == std::vector<std::string>{"reboot"});
  CHECK(d.EnvVar("OSU_TRY") == "B");
  CHECK(ReadFile(d.boot() + "/osu/rejected").find("2.0") == std::string::npos);
  MustRun("grub-editenv '" + d.grubenv() + "' unset OSU_TRY");  // the bootloader's part
  d.SetCmdline("root=PARTLABEL=p.lxrootclone1 osu.slot=B console=ttyS0 quiet osu.trial=1");
  auto c = Update(d, {"--commit"});
  INFO(c.err);
  CHECK(c.code == 0);
  CHECK(d.EnvVar("OSU_ORDER") == "B A");
}

TEST_CASE("activate: a host whose slots are an image file is not kexec'd or rebooted",
          "[activation][activate][bad]") {
  FakeDevice d;
  InstalledB(d, d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 36), "2.0"));
  CheckRefused(d, {{"--activate"}, {"--activate", "--kexec"}, {"--activate", "--reboot"}}, 1,
               {"is an image file, not a disk this system boots from"}, /*as_host=*/true);
  // Planning leaves nothing, so it is allowed.
  const std::string before = Everything(d);
  auto dry = RunUpdateAsHost({"--config", d.config(), "--activate", "--dry-run"});
  INFO(dry.err);
  CHECK(dry.code == 0);
  CHECK(Everything(d) == before);
}

TEST_CASE("activate: --activate is one action, without a SOURCE", "[activation][activate][bad]") {
  FakeDevice d;
  const std::string before = Everything(d);
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--activate", "--apply", "x.osu"}, {"--activate", "--rollback"},
           {"--activate", "--no-activate"}, {"--activate", "x.osu"}, {"--activate", "--kexec", "--reboot"}}) {
    auto r = Update(d, args);
    INFO(args[1] << ": " << r.err);
    CHECK(r.code == 1);
    CHECK(LastActivatorCalls().empty());
  }
  CHECK(Everything(d) == before);
  auto help = Update(d, {"--help"});
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("--activate"));
}

TEST_CASE("rollback: never to a slot that was written but has not run (--apply --no-activate)",
          "[activation][rollback][bad]") {
  FakeDevice d;
  InstalledB(d, d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 41), "2.0"));
  // If B became the default with A out of attempts, a B that does not boot strands the device.
  CheckRefused(d, {{"--rollback"}, {"--rollback", "--reboot"}}, 4,
               {"cannot roll back to slot B", "never run as the committed slot", "--activate"});
  CHECK(d.EnvVar("OSU_ORDER") == "A B");
  CHECK(d.EnvVar("OSU_A_LEFT") == "3");
  // What the hint says works: a trial, then the commit makes B a slot one may roll back to.
  auto a = Update(d, {"--activate", "--reboot"});
  INFO(a.err);
  REQUIRE(a.code == 0);
  MustRun("grub-editenv '" + d.grubenv() + "' unset OSU_TRY");  // the bootloader's part
  d.SetCmdline("root=PARTLABEL=p.lxrootclone1 osu.slot=B console=ttyS0 quiet osu.trial=1");
  REQUIRE(Update(d, {"--commit"}).code == 0);
  d.SetCmdline("root=PARTLABEL=p.lxrootclone1 osu.slot=B console=ttyS0 quiet");
  auto back = Update(d, {"--rollback"});
  INFO(back.err);
  CHECK(back.code == 0);
  CHECK(d.EnvVar("OSU_ORDER") == "A B");
}

TEST_CASE("activate: an older version in the inactive slot keeps --apply's downgrade floor",
          "[activation][activate][bad]") {
  FakeDevice d;
  const std::string old = d.MakeBundle("v0.9.osu", d.MakeImage("v0.9.img", kImageSize, 42), "0.9");
  auto r = Update(d, {"--apply", old, "--no-activate", "--allow-downgrade"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CheckRefused(d, {{"--activate"}, {"--activate", "--reboot"}, {"--activate", "--dry-run"}}, 2,
               {"slot B version 0.9 is older than the installed 1.0 (use --allow-downgrade)"});
  auto forced = Update(d, {"--activate", "--reboot", "--allow-downgrade"});
  INFO(forced.err);
  CHECK(forced.code == 0);
  CHECK(d.EnvVar("OSU_TRY") == "B");
}
