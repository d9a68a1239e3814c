// The seam that leaves the running system: kexec into a new kernel, or reboot. Real: the
// kexec_file_load and reboot syscalls (through systemd when it runs). Fake: records calls.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "slots/slots.hpp"

namespace osu {

class Activator {
 public:
  virtual ~Activator() = default;
  // Loads kernel + initrd with `cmdline` for a later Kexec() (kexec_file_load: the kernel
  // checks the image's signature where the platform demands it).
  virtual Result LoadKexec(const std::string& kernel, const std::string& initrd,
                           const std::string& cmdline) = 0;
  // Executes the loaded kernel: `systemctl kexec` under systemd (units stop cleanly), else
  // the reboot syscall. Returns only on failure.
  virtual Result Kexec() = 0;
  // Reboots through firmware and bootloader (`systemctl reboot`, else the reboot syscall).
  // `argument` non-empty: passed to the firmware (LINUX_REBOOT_CMD_RESTART2; systemd passes
  // `systemctl reboot ARG` on the same way), e.g. the Pi's "0 tryboot".
  virtual Result Reboot(const std::string& argument) = 0;
};

// `systemd_runtime_dir` is /run/systemd/system on a device: present means systemd runs.
std::unique_ptr<Activator> MakeSystemActivator(const std::string& systemd_runtime_dir);

// Records calls, in its own list or in one the caller keeps across activators.
class FakeActivator final : public Activator {
 public:
  FakeActivator() : calls(own_calls_) {}
  explicit FakeActivator(std::vector<std::string>& log) : calls(log) {}
  FakeActivator(const FakeActivator&) = delete;
  FakeActivator& operator=(const FakeActivator&) = delete;
  Result LoadKexec(const std::string& kernel, const std::string& initrd,
                   const std::string& cmdline) override;
  Result Kexec() override;
  Result Reboot(const std::string& argument) override;

  // "load <kernel> <initrd> <cmdline>", "kexec", "reboot", "reboot <argument>"
  std::vector<std::string>& calls;
  bool fail_load = false;

 private:
  std::vector<std::string> own_calls_;
};

// The command line for kexec'ing into `target`: every argument of `current` is kept except
// root=, osu.slot=, osu.trial and BOOT_IMAGE=; then exactly one root= naming the target in the
// same form the current one used (PARTUUID=, PARTLABEL= or /dev/ path), osu.slot=<target>, and
// osu.trial=1; init's arguments after a "--" stay after it. A current command line with
// neither a usable root= nor osu.slot= is an error (State): it would boot who knows what.
Expected<std::string> KexecCmdline(const std::string& current, const Slot& target);

}  // namespace osu
