// After --apply: making the verified slot run (kexec, or the bootloader's one-shot try and a
// reboot); --commit: making it the default once boot-complete.target was reached; --rollback.
#pragma once

#include <string>

#include "activate/activator.hpp"
#include "bootenv/boot_env.hpp"
#include "install/system.hpp"

namespace osu {

struct ActivationPlan {
  Activation mode = Activation::Kexec;
  SlotId slot = SlotId::B;
  std::string kernel, initrd, cmdline;  // kexec only
  // --activate --allow-downgrade of a version this device rolled back from: taken off the
  // rejected list just before the switch, or the trial's --commit would refuse it.
  std::string readmit_version;
  std::string Describe() const;
};

// Checks that `slot` may be booted: its record is verified, its boot files are there with the
// recorded size and sha256 (State error otherwise), and works out what kexec would load.
Expected<ActivationPlan> PlanActivation(const SystemState& state, SlotId slot, Activation mode);

// --activate: the slot not booted, installed earlier by --apply --no-activate, planned as --apply
// would after its copy. Refused like --apply during a trial (State); when the slot has no
// verified, complete record (State); when its version was rolled back from (Verification),
// unless allow_downgrade.
Expected<ActivationPlan> PlanInactiveActivation(const SystemState& state, Activation mode,
                                                bool allow_downgrade);

// kexec: load and jump, env untouched. reboot: OSU_TRY=<slot> in the env, then reboot.
// Returns only on failure (or with a fake activator).
Result Activate(const SystemState& state, const ActivationPlan& plan, BootEnv& env,
                Activator& activator);

struct ChangeResult {
  std::string message;  // what was done, one line
  bool changed = false; // whether the boot env or a record was written
  bool damaged_record = false;  // --commit on a normal boot: the booted slot's record is not verified
};

// In a trial: the booted slot becomes the default (first in OSU_ORDER, attempts reset), and
// its record notes when it was first committed. The trial slot must be bootable; a trial of a
// version rolled back (in this boot, by --rollback) is not committed: State error.
// On a normal boot: the booted slot's attempts are reset whatever its record says (a damaged
// record is reported in the message and `damaged_record`, not refused), and a verified record
// that never was marked committed (the factory slot's) is.
Expected<ChangeResult> Commit(const SystemState& state, BootEnv& env);

// The other slot becomes the default, only if its record is verified and complete and it has
// been committed before (State error otherwise, with a hint to --activate); the booted slot's
// version is remembered as rejected and its attempts set to 0.
Expected<ChangeResult> Rollback(const SystemState& state, BootEnv& env);

}  // namespace osu
