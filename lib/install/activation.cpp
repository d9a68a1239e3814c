#include "install/activation.hpp"

#include <sys/stat.h>


#include "common/fault.hpp"
#include "common/fd.hpp"
#include "crypto/sha256.hpp"
#include "install/apply.hpp"
#include "install/version.hpp"

namespace osu {
namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Result CheckBootable(const SystemState& state, SlotId slot) {
  return state.boot().CheckBootable(slot, state.record(slot));
}

BootSelection CurrentOrFactory(const SystemState& state) {
  return state.selection ? *state.selection : FactorySelection();
}

Result WriteSelection(BootEnv& env, const BootSelection& sel, const std::string& step) {
  FaultPoint(step);
  return env.Apply(SelectionChanges(sel));
}

// Taken off the rejected list last, just before the switch: a refusal leaves it as it was.
Result Readmit(const SystemState& state, const ActivationPlan& plan) {
  if (plan.readmit_version.empty()) return {};
  return state.boot().Readmit(plan.readmit_version);
}

}  // namespace

std::string ActivationPlan::Describe() const {
  if (mode == Activation::Reboot)
    return "set OSU_TRY=" + SlotName(slot) + " and reboot into slot " + SlotName(slot) + " once";
  return "kexec into slot " + SlotName(slot) + ": kernel " + kernel + ", initrd " + initrd +
         ", command line '" + cmdline + "'";
}

Expected<ActivationPlan> PlanActivation(const SystemState& state, SlotId slot, Activation mode) {
  if (slot == state.booted) return StateError("slot " + SlotName(slot) + " is already running");
  if (auto r = CheckBootable(state, slot); !r) return r.error();
  ActivationPlan plan;
  plan.mode = mode;
  plan.slot = slot;
  if (mode == Activation::Reboot) {
    if (!state.selection)
      return StateError("no boot env (" + BootloaderName(state.config.bootloader) +
                        ") to set a one-shot try in; a factory image must ship one");
    return plan;
  }
  const std::string dir = state.boot().SlotDirectory(slot);
  for (const char* name : {"vmlinuz", "Image", "bzImage"}) {
    if (Exists(dir + "/" + name)) {
      plan.kernel = dir + "/" + name;
      break;
    }
  }
  for (const char* name : {"initrd.img", "initrd"}) {
    if (Exists(dir + "/" + name)) {
      plan.initrd = dir + "/" + name;
      break;
    }
  }
  if (plan.kernel.empty() || plan.initrd.empty())
    return StateError("slot " + SlotName(slot) +
                      " has no kernel (vmlinuz) and initrd (initrd.img) in " + dir + " to kexec");
  auto cmdline = KexecCmdline(state.cmdline, state.slots[slot]);
  if (!cmdline) return cmdline.error();
  plan.cmdline = *cmdline;
  return plan;
}

Expected<ActivationPlan> PlanInactiveActivation(const SystemState& state, Activation mode,
                                                bool allow_downgrade) {
  // The same refusal as --apply: a second switch during a trial could leave no good slot.
  if (auto r = CheckInstallAllowed(state); !r) return r.error();
  const SlotId slot = OtherSlot(state.booted);
  const auto& record = state.record(slot);
  auto plan = PlanActivation(state, slot, mode);
  // No record, or not verified: what --activate needs is an --apply, so say so.
  if (!plan && (!record || record->state != SlotState::Verified))
    return StateError(plan.error().message() + "; run --apply first");
  if (!plan) return plan.error();
  if (state.boot().WasRolledBack(record->version)) {
    if (!allow_downgrade)
      return VerificationError("version " + record->version + " in slot " + SlotName(slot) +
                               " was rolled back on this device (use --allow-downgrade)");
    plan->readmit_version = record->version;
  }
  // The same floor as --apply: the slot may hold an older version than the one running.
  if (auto r = CheckVersionFloor(state, "slot " + SlotName(slot), record->version,
                                 record->min_version, allow_downgrade);
      !r)
    return r.error();
  return plan;
}

Result Activate(const SystemState& state, const ActivationPlan& plan, BootEnv& env,
                Activator& activator) {
  if (plan.mode == Activation::Kexec) {
    if (auto r = activator.LoadKexec(plan.kernel, plan.initrd, plan.cmdline); !r) return r;
    FaultPoint("activate: kexec loaded");
    if (auto r = Readmit(state, plan); !r) return r;
    return activator.Kexec();
  }
  if (auto r = Readmit(state, plan); !r) return r;
  BootSelection sel = CurrentOrFactory(state);
  sel.try_slot = plan.slot;
  if (auto r = WriteSelection(env, sel, "activate: boot env, OSU_TRY"); !r) return r;
  FaultPoint("activate: before reboot");
  return activator.Reboot(env.TrialRebootArgument());
}

namespace {

// The first commit of a slot's content, kept in its record: --rollback returns only to a slot
// that has run to boot-complete and been the default. Written after the env, so a power cut
// between the two leaves a committed slot whose next normal boot's --commit writes it.
Result MarkCommitted(const SystemState& state, SlotId slot) {
  const auto& record = state.record(slot);
  if (!record || record->state != SlotState::Verified || !record->committed_at.empty())
    return {};
  Record committed = *record;
  committed.committed_at = UtcNow();
  FaultPoint("commit: record committed_at");
  return state.boot().SaveRecord(committed);
}

}  // namespace

Expected<ChangeResult> Commit(const SystemState& state, BootEnv& env) {
  const SlotId booted = state.booted;
  const auto& record = state.record(booted);
  if (!state.selection)
    return StateError("no boot env (" + env.Describe() + "): nothing to commit to; a factory "
                      "image must ship one");
  BootSelection sel = *state.selection;
  ChangeResult result;
  if (state.trial) {
    if (auto r = CheckBootable(state, booted); !r)
      return r.error().Context("cannot commit the trial of slot " + SlotName(booted));
    // A --rollback earlier in this boot must not be undone by the commit unit that follows.
    if (state.boot().WasRolledBack(record->version))
      return StateError("cannot commit the trial of slot " + SlotName(booted) + ": version " +
                        record->version + " was rolled back on this device (--apply "
                        "--allow-downgrade installs it again)");
    sel.order = {booted, OtherSlot(booted)};
    sel.attempts(booted) = kMaxAttempts;
    sel.try_slot.reset();
    if (auto r = WriteSelection(env, sel, "commit: boot env"); !r) return r.error();
    if (auto r = MarkCommitted(state, booted); !r) return r.error();
    result.changed = true;
    result.message = "Committed slot " + SlotName(booted) + " (version " + record->version +
                     "): it is now the default";
    return result;
  }
  // A normal boot of the committed slot: it reached boot-complete again, so it keeps its
  // place and gets its attempts back whatever its record says (health is decided by
  // boot-complete, not by a file): a damaged record must not make the bootloader fall back.
  std::string warning;
  if (record && record->state != SlotState::Verified)
    warning = "; its record is damaged (state " + SlotStateName(record->state) +
              (record->reason.empty() ? "" : ": " + record->reason) +
              "): --status shows it, the next --apply writes the other slot as usual";
  if (sel.attempts(booted) != kMaxAttempts || sel.try_slot) {
    sel.attempts(booted) = kMaxAttempts;
    sel.try_slot.reset();
    if (auto r = WriteSelection(env, sel, "commit: boot env, attempts reset"); !r)
      return r.error();
    result.changed = true;
    result.message = "Slot " + SlotName(booted) + " is committed and good; attempts reset";
  } else {
    // No env write on every boot: flash wears out.
    result.message = "Slot " + SlotName(booted) + " is committed and good; nothing to change";
  }
  if (record && record->committed_at.empty() && record->state == SlotState::Verified) {
    if (auto r = MarkCommitted(state, booted); !r) return r.error();
    result.changed = true;
  }
  result.message += warning;
  result.damaged_record = !warning.empty();
  return result;
}

Expected<ChangeResult> Rollback(const SystemState& state, BootEnv& env) {
  const SlotId booted = state.booted;
  const SlotId other = OtherSlot(booted);
  if (auto r = CheckBootable(state, other); !r)
    return r.error().Context("cannot roll back to slot " + SlotName(other));
  // Only back to what has run: a slot that was written and never booted to boot-complete
  // (--apply --no-activate) would become the default with nothing proven to fall back to.
  if (state.record(other)->committed_at.empty())
    return StateError("cannot roll back to slot " + SlotName(other) + " (version " +
                      state.record(other)->version +
                      "): it has never run as the committed slot; start it as a trial with "
                      "--activate");
  if (!state.selection)
    return StateError("no boot env (" + env.Describe() + ") to roll back in");
  ChangeResult result;
  if (const auto& rec = state.record(booted); rec && rec->state == SlotState::Verified)
    if (auto r = state.boot().Reject(rec->version); !r) return r.error();
  BootSelection sel = *state.selection;
  sel.order = {other, booted};
  sel.attempts(other) = kMaxAttempts;
  sel.attempts(booted) = 0;
  sel.try_slot.reset();
  if (auto r = WriteSelection(env, sel, "rollback: boot env"); !r) return r.error();
  result.changed = true;
  const auto& to = state.record(other);
  result.message = "Rolled back: slot " + SlotName(other) +
                   (to ? " (version " + to->version + ")" : "") +
                   " is the default from the next boot";
  return result;
}

}  // namespace osu
