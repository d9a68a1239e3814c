#include "install/activation.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "common/fault.hpp"
#include "common/fd.hpp"
#include "crypto/sha256.hpp"
#include "install/apply.hpp"

namespace osu {
namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// The record must say verified, and every boot file it lists must still be what it says.
Result CheckBootable(const SystemState& state, SlotId slot) {
  const auto& record = state.record(slot);
  if (!record)
    return StateError("slot " + SlotName(slot) +
                      " has no record: it was never installed by os-update");
  if (record->state != SlotState::Verified)
    return StateError("slot " + SlotName(slot) + " is not verified (state " +
                      SlotStateName(record->state) +
                      (record->reason.empty() ? "" : ": " + record->reason) + ")");
  // A raw image (ssh://, unsigned) brings no kernel: the bootloader would find nothing.
  if (record->boot_files.empty())
    return StateError("slot " + SlotName(slot) + " has no boot files" +
                      (record->source.empty() ? "" : " (installed from " + record->source + ")") +
                      ": the bootloader has nothing to boot there");
  const std::string dir = SlotDirectory(state.config.boot_path, slot);
  for (const auto& f : record->boot_files) {
    auto data = ReadFile(dir + "/" + f.name, ErrorKind::State);
    if (!data) return data.error().Context("slot " + SlotName(slot) + " is incomplete");
    if (data->size() != f.size || Sha256Hex(*data) != f.sha256)
      return StateError("slot " + SlotName(slot) + " is incomplete: boot file '" + f.name +
                        "' no longer matches its record");
  }
  return {};
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
  return ReadmitVersion(state.config.boot_path, plan.readmit_version,
                        "activate: rejected versions");
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
  const std::string dir = SlotDirectory(state.config.boot_path, slot);
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
  if (WasRolledBack(state.config.boot_path, record->version)) {
    if (!allow_downgrade)
      return VerificationError("version " + record->version + " in slot " + SlotName(slot) +
                               " was rolled back on this device (use --allow-downgrade)");
    plan->readmit_version = record->version;
  }
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
  return activator.Reboot();
}

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
    const auto rejected = LoadRejectedVersions(state.config.boot_path);
    if (std::find(rejected.begin(), rejected.end(), record->version) != rejected.end())
      return StateError("cannot commit the trial of slot " + SlotName(booted) + ": version " +
                        record->version + " was rolled back on this device (--apply "
                        "--allow-downgrade installs it again)");
    sel.order = {booted, OtherSlot(booted)};
    sel.attempts(booted) = kMaxAttempts;
    sel.try_slot.reset();
    if (auto r = WriteSelection(env, sel, "commit: boot env"); !r) return r.error();
    result.changed = true;
    result.message = "Committed slot " + SlotName(booted) +
                     (record ? " (version " + record->version + ")" : "") +
                     ": it is now the default";
    return result;
  }
  // A normal boot: the slot proved itself again; give it its attempts back.
  if (record && record->state != SlotState::Verified)
    return StateError("booted slot " + SlotName(booted) + " is not verified (state " +
                      SlotStateName(record->state) + ")");
  if (sel.attempts(booted) == kMaxAttempts && !sel.try_slot) {
    result.message = "Slot " + SlotName(booted) + " is committed and good; nothing to change";
    return result;  // no write on every boot: flash wears out
  }
  sel.attempts(booted) = kMaxAttempts;
  sel.try_slot.reset();
  if (auto r = WriteSelection(env, sel, "commit: boot env, attempts reset"); !r) return r.error();
  result.changed = true;
  result.message = "Slot " + SlotName(booted) + " is committed and good; attempts reset";
  return result;
}

Expected<ChangeResult> Rollback(const SystemState& state, BootEnv& env) {
  const SlotId booted = state.booted;
  const SlotId other = OtherSlot(booted);
  if (auto r = CheckBootable(state, other); !r)
    return r.error().Context("cannot roll back to slot " + SlotName(other));
  if (!state.selection)
    return StateError("no boot env (" + env.Describe() + ") to roll back in");
  ChangeResult result;
  if (const auto& rec = state.record(booted); rec && !rec->version.empty()) {
    auto rejected = LoadRejectedVersions(state.config.boot_path);
    if (std::find(rejected.begin(), rejected.end(), rec->version) == rejected.end()) {
      rejected.push_back(rec->version);
      FaultPoint("rollback: rejected versions");
      if (auto r = SaveRejectedVersions(state.config.boot_path, rejected); !r) return r.error();
    }
  }
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
