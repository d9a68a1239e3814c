// The bootloader environment: the seam through which os-update tells the bootloader what to
// boot. Two real backends (GRUB's grubenv block with a backup copy; U-Boot's env through
// libubootenv) and a fake for tests. Values are plain strings; the boot-selection model on
// top of it lives in boot/selection.hpp.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/error.hpp"

namespace osu {

using EnvVars = std::map<std::string, std::string>;
// name -> new value, or nullopt to remove the variable.
using EnvChanges = std::map<std::string, std::optional<std::string>>;

class BootEnv {
 public:
  virtual ~BootEnv() = default;
  // All variables. A missing or unreadable env: Device error naming it (callers decide whether
  // "missing" is acceptable; see Exists()).
  virtual Expected<EnvVars> Load() = 0;
  // Applies `changes` to the current variables and writes the result crash-safely: after a
  // power cut at any instant the bootloader reads either the old or the new env, never a mix
  // or nothing. Variables not named in `changes` are kept as they are.
  virtual Result Apply(const EnvChanges& changes) = 0;
  // Whether any copy of the env exists (a factory image has one; os-update creates a missing
  // env only when told to).
  virtual bool Exists() const = 0;
  virtual std::string Describe() const = 0;  // "grubenv '/boot/efi/osu/grubenv'"
  // What the reboot into a one-shot try passes to the reboot syscall: "" for a plain reboot
  // (GRUB, U-Boot read OSU_TRY themselves); the Pi firmware needs its tryboot flag. Pure, so
  // that a wrapper cannot drop it.
  virtual std::string TrialRebootArgument() const = 0;
};

// GRUB: `path` is the primary grubenv (exactly 1024 bytes, "# GRUB Environment Block\n",
// "name=value\n" lines, '#' padding, as grub-editenv writes it); `path` + ".bak" is the backup
// copy that grub/grub.cfg falls back to when the primary does not load.
std::unique_ptr<BootEnv> MakeGrubEnv(const std::string& path);

// U-Boot: through libubootenv with `fw_env_config` (fw_env.config syntax; one line = single
// env, two lines = redundant env).
std::unique_ptr<BootEnv> MakeUbootEnv(const std::string& fw_env_config);

// In-memory fake for unit tests; can be told to fail the next Apply.
class FakeBootEnv final : public BootEnv {
 public:
  Expected<EnvVars> Load() override;
  Result Apply(const EnvChanges& changes) override;
  bool Exists() const override { return exists; }
  std::string Describe() const override { return "fake boot env"; }
  std::string TrialRebootArgument() const override { return ""; }

  EnvVars vars;
  bool exists = true;
  bool fail_next_apply = false;
  int applies = 0;
};

}  // namespace osu
