// Whether the device may install at all: checked before a source is opened, and by Apply().
#include "install/apply.hpp"

namespace osu {

Result CheckInstallAllowed(const SystemState& state) {
  const Slot& target = state.slots[OtherSlot(state.booted)];
  const std::string letter(1, SlotLetter(target.id));
  // Invariant 5: a trial must end (commit or rollback) before the next install, or the
  // install would overwrite the only known-good slot.
  if (state.trial)
    return StateError("slot " + SlotName(state.booted) +
                      " runs as an uncommitted trial" +
                      (state.committed
                           ? " (committed: " + SlotName(*state.committed) + ")"
                           : "") +
                      "; run --commit or --rollback first");
  if (!state.slots.overlap.empty())
    return StateError(state.slots.overlap + ": writing slot " + letter +
                      " would write through it; fix the partition table or slots.* labels");
  // Invariant 1: never the booted slot, the committed slot, or a mounted device.
  if (state.committed && *state.committed == target.id)
    return StateError("slot " + letter + " is the committed slot");
  if (IsSlotMounted(target, state.mountinfo))
    return StateError("target slot " + letter + " (" + target.Describe() + ") is mounted");
  return {};
}

}  // namespace osu
