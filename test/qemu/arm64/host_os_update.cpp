// os-update for the QEMU U-Boot scenario, run on the host against the VM's disk image and
// pflash env: the real command line and code paths, except that "reboot" returns instead of
// rebooting the host. The scenario then powers the VM on, which is that reboot.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli.hpp"

namespace {

class VmRebootActivator final : public osu::Activator {
 public:
  osu::Result LoadKexec(const std::string&, const std::string&, const std::string&) override {
    return osu::UsageError("kexec into a QEMU disk image from the host is not possible");
  }
  osu::Result Kexec() override {
    return osu::UsageError("kexec into a QEMU disk image from the host is not possible");
  }
  // The env already holds OSU_TRY: the next power-on of the VM is the reboot.
  osu::Result Reboot(const std::string&) override {
    std::cerr << "os-update (qemu host): reboot requested; the scenario powers the VM on\n";
    return {};
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  osu::cli::Platform platform;
  platform.make_activator = [](const std::string&) -> std::unique_ptr<osu::Activator> {
    return std::make_unique<VmRebootActivator>();
  };
  platform.activate_from_image_file = true;
  return osu::cli::UpdateMain(args, osu::cli::Streams{std::cin, std::cout, std::cerr}, platform);
}
