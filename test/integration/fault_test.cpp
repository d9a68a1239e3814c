// Crash safety by fault injection: os-update stops dead at every named step of --apply,
// --activate, --commit and --rollback (after every write, before every fsync, rename and env write). After
// each stop the disk image is "booted" by evaluating its boot env exactly as grub/grub.cfg does
// (SimulateBoot, which the grub-emu test holds to the real grub.cfg), and the test asserts:
// the slot that boots is verified and its bytes are what its record says; the committed slot
// changed only inside --commit/--rollback; a torn primary grubenv still boots a verified slot;
// and the next os-update run succeeds.
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>

#include "boot/selection.hpp"
#include "bootenv/boot_env.hpp"
#include "common/fault.hpp"
#include "bootpart/boot_partition.hpp"
#include "record/record.hpp"
#include "support/device.hpp"
#include "support/lifecycle.hpp"
#include "support/support.hpp"

using namespace osu::test;

namespace {

struct Scenario {
  std::string name;
  std::vector<std::string> action;             // os-update arguments after --config
  std::function<void(FakeDevice&)> setup;      // brings the device to where the action runs
  bool may_change_committed = false;
};

std::vector<Scenario> Scenarios() {
  return {
      {"apply, kexec activation", {"--apply", Shared().v2}, [](FakeDevice&) {}, false},
      {"apply, reboot activation", {"--apply", Shared().v2, "--reboot"}, [](FakeDevice&) {},
       false},
      {"commit of a kexec trial", {"--commit"}, ApplyAndRunTrial, true},
      {"rollback from a committed update", {"--rollback"}, ApplyTrialCommit, true},
      // The target is the verified fallback slot, with boot attempts left: they must be gone
      // before its first byte is overwritten.
      {"apply over the fallback slot", {"--apply", Shared().v2}, ApplyTrialCommit, false},
      {"activate --reboot of a slot applied with --no-activate", {"--activate", "--reboot"},
       InstalledNotActivated, false},
      // Takes the version off the rejected list before OSU_TRY: a stop between the two must
      // leave A booting.
      {"activate --reboot --allow-downgrade of a version rolled back from",
       {"--activate", "--reboot", "--allow-downgrade"}, RolledBackFromB, false},
  };
}

void ExpectVerified(FakeDevice& d, osu::SlotId slot);

// Not only the slot booted next: if it failed again and again (never committing), every slot
// the bootloader would fall back to must be verified as well.
void ExpectBootsVerifiedSlot(FakeDevice& d, const std::string& context) {
  INFO(context);
  auto env = osu::MakeGrubEnv(d.grubenv());
  auto vars = env->Load();
  INFO("grubenv: " << (vars ? "" : vars.error().message()));
  REQUIRE(vars);
  osu::BootSelection sel = osu::ParseSelection(*vars);
  bool checked[2] = {false, false};
  for (int boot = 0; boot < 2 * osu::kMaxAttempts + 2; ++boot) {
    const osu::BootOutcome outcome = osu::SimulateBoot(sel);
    INFO("boot " << boot + 1 << " of a slot that keeps failing");
    if (!checked[static_cast<int>(outcome.slot)]) ExpectVerified(d, outcome.slot);
    checked[static_cast<int>(outcome.slot)] = true;
    sel = outcome.env_after;
  }
}

void ExpectVerified(FakeDevice& d, osu::SlotId slot) {
  const osu::BootOutcome boot{slot, false, {}};
  const auto record = osu::BootPartition(d.boot()).LoadRecord(boot.slot);
  INFO("boots slot " << osu::SlotLetter(boot.slot));
  REQUIRE(record);
  CHECK(record->state == osu::SlotState::Verified);
  // The record is not enough: the slot's bytes must be what it says (dd | sha256sum).
  const Region region = boot.slot == osu::SlotId::A ? d.SlotA() : d.SlotB();
  CHECK(d.RegionSha256(region, record->size) == record->sha256);
  for (const auto& f : record->boot_files) {
    const std::string path =
        d.boot() + "/osu/" + std::string(1, osu::SlotLetter(boot.slot)) + "/" + f.name;
    REQUIRE(FileExists(path));
    CHECK(Sha256OfFile(path) == f.sha256);
  }
}

}  // namespace

TEST_CASE("a stop at any step of apply, activate, commit or rollback leaves a device that boots a verified slot",
          "[fault]") {
  for (const Scenario& scenario : Scenarios()) {
    // Which steps does this action pass? Run it once, recording.
    std::vector<std::string> steps;
    {
      FakeDevice d;
      UseSharedKeys(d);
      scenario.setup(d);
      std::vector<std::string> args{"--config", d.config()};
      args.insert(args.end(), scenario.action.begin(), scenario.action.end());
      osu::fault::StartRecording();
      auto r = RunUpdate(args);
      steps = osu::fault::StopRecording();
      INFO(scenario.name << ": " << r.err);
      REQUIRE(r.code == 0);
    }
    INFO(scenario.name << ": " << steps.size() << " steps");
    REQUIRE(steps.size() >= 3);

    for (const std::string& step : steps) {
      FakeDevice d;
      UseSharedKeys(d);
      scenario.setup(d);
      const std::string committed_before = d.EnvVar("OSU_ORDER").substr(0, 1);
      std::vector<std::string> args{"--config", d.config()};
      args.insert(args.end(), scenario.action.begin(), scenario.action.end());

      osu::fault::ArmForTest(step);
      bool stopped = false;
      try {
        (void)RunUpdate(args);
      } catch (const osu::FaultInjected& f) {
        stopped = f.step == step;
      }
      osu::fault::ArmForTest("");
      const std::string where = scenario.name + ", stopped at '" + step + "'";
      INFO(where);
      REQUIRE(stopped);

      ExpectBootsVerifiedSlot(d, where);
      if (!scenario.may_change_committed)
        CHECK(d.EnvVar("OSU_ORDER").substr(0, 1) == committed_before);

      // A torn write of the primary grubenv (half a block) must not matter either.
      if (FileExists(d.grubenv())) {
        const std::string whole = ReadFile(d.grubenv());
        WriteFile(d.grubenv(), whole.substr(0, whole.size() / 2));
        ExpectBootsVerifiedSlot(d, where + ", then the primary grubenv torn in half");
        WriteFile(d.grubenv(), whole);
      }

      // And the device is not stuck: the same action, run again, completes.
      auto again = RunUpdate(args);
      INFO("rerun: " << again.err);
      CHECK(again.code == 0);
      ExpectBootsVerifiedSlot(d, where + ", after running the action again");
    }
  }
}
