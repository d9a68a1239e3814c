// The two command lines. cmd/ only forwards argv here; tests call these directly.
#pragma once

#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "activate/activator.hpp"
#include "bootenv/boot_env.hpp"
#include "config/config.hpp"

#include "common/error.hpp"

namespace osu::cli {

struct Streams {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

// Exit codes, documented in the README and decided only in ExitCode().
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;
inline constexpr int kExitVerification = 2;
inline constexpr int kExitSource = 3;
inline constexpr int kExitState = 4;
inline constexpr int kExitDevice = 5;
inline constexpr int kExitUpdateAvailable = 100;
int ExitCode(const Error& error);

// What leaves the running system, and the bootloader env. The real one kexecs and reboots and
// opens the env the config names; tests pass fakes.
struct Platform {
  std::function<std::unique_ptr<Activator>(const std::string& systemd_dir)> make_activator;
  std::function<std::unique_ptr<BootEnv>(const Config& config)> make_boot_env;
  // The real platform refuses to kexec or reboot when slots.disk is an image file: the running
  // system does not boot from it (the demo, a build host). Tests with a fake activator allow it.
  bool activate_from_image_file = false;
};
Platform SystemPlatform();

int UpdateMain(const std::vector<std::string>& args, const Streams& streams);
int UpdateMain(const std::vector<std::string>& args, const Streams& streams,
               const Platform& platform);
int BundleMain(const std::vector<std::string>& args, const Streams& streams);

}  // namespace osu::cli
