// The boot-selection model, one for both bootloaders. grub/grub.cfg and
// uboot-scripts/boot.cmd implement SimulateBoot() step for step; the fault-injection tests
// "boot" a disk image by calling it on the env os-update left behind.
//
// Variables in the bootloader env:
//   OSU_ORDER    slots by preference, "A B" or "B A"; the first is the committed slot
//   OSU_A_LEFT   boot attempts left for A: "0".."3" (scripts can't do arithmetic: 3 at most)
//   OSU_B_LEFT   the same for B
//   OSU_TRY      "A" or "B": boot that slot once; the bootloader clears it before booting
//
// What the bootloader does on every boot:
//   1. OSU_TRY names a slot: clear OSU_TRY, save the env, boot that slot as a trial
//      (kernel command line gets osu.trial=1). Its attempts are not touched.
//   2. Else the first slot in OSU_ORDER whose attempts left are 1..3: decrement them, save the
//      env, boot it. (os-update --commit, run after boot-complete.target, resets them.)
//   3. Else (every slot out of attempts): boot the first slot in OSU_ORDER, env unchanged:
//      a device that still boots something can still be repaired.
// A missing OSU_ORDER means "A B"; missing or malformed attempts mean 0. Before step 1, U-Boot's
// boot.cmd restores a lost env (no OSU_ORDER) from os-update's copies (boot/selection_copy.hpp).
// Every boot puts on the kernel command line: root=<slot's root> osu.slot=<A|B>, plus the
// slot's own command line from its directory on the boot partition.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bootenv/boot_env.hpp"
#include "slots/slots.hpp"

namespace osu {

inline constexpr int kMaxAttempts = 3;

struct BootSelection {
  std::vector<SlotId> order{SlotId::A, SlotId::B};
  int left[2] = {0, 0};
  std::optional<SlotId> try_slot;

  int& attempts(SlotId s) { return left[static_cast<int>(s)]; }
  int attempts(SlotId s) const { return left[static_cast<int>(s)]; }
  SlotId committed() const { return order.empty() ? SlotId::A : order.front(); }
};

// Reads the OSU_* variables (lenient exactly as the scripts are: see above).
BootSelection ParseSelection(const EnvVars& vars);
// The OSU_* variables that represent `s` (all four; OSU_TRY = nullopt when unset).
EnvChanges SelectionChanges(const BootSelection& s);

// The factory env: OSU_ORDER="A B", both slots 3 attempts, no OSU_TRY.
BootSelection FactorySelection();

struct BootOutcome {
  SlotId slot = SlotId::A;
  bool trial = false;           // booted through OSU_TRY
  BootSelection env_after;      // what the bootloader saved before booting
};
BootOutcome SimulateBoot(const BootSelection& before);

}  // namespace osu
