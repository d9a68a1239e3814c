#include "install/system.hpp"

#include <sstream>

#include "boot/selection_copy.hpp"
#include "bootenv/pi_firmware.hpp"
#include "common/fd.hpp"

namespace osu {

std::string VersionFromOsRelease(const std::string& text) {
  std::string image_version, version_id;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    if (key == "IMAGE_VERSION") image_version = value;
    if (key == "VERSION_ID") version_id = value;
  }
  return image_version.empty() ? version_id : image_version;
}

std::unique_ptr<BootEnv> MakeBootEnv(const Config& config) {
  if (config.bootloader == Bootloader::Grub) return MakeGrubEnv(config.GrubenvPath());
  if (config.bootloader == Bootloader::PiFirmware) return MakePiFirmwareEnv(config.boot_path);
  return WithSelectionCopy(MakeUbootEnv(config.fw_env_config),
                           config.boot_path + kSelectionCopyPath);
}

Expected<SystemState> LoadSystemState(const Config& config, BootEnv& env) {
  SystemState state;
  state.config = config;
  auto slots = FindSlots(config.disk, config.labels);
  if (!slots) return slots.error();
  state.slots = *slots;

  auto cmdline = ReadFile(config.cmdline_path);
  if (!cmdline) return cmdline.error().Context("kernel command line (system.cmdline)");
  state.cmdline = *cmdline;
  auto mountinfo = ReadFile(config.mountinfo_path);
  // Not every fake system has one; without it only the command line can name the booted slot.
  state.mountinfo = mountinfo ? *mountinfo : "";

  auto booted = FindBootedSlot(state.slots, state.cmdline, state.mountinfo);
  if (!booted) return booted.error();
  state.booted = *booted;

  const BootPartition boot = state.boot();
  for (SlotId s : {SlotId::A, SlotId::B}) state.records[static_cast<size_t>(s)] = boot.LoadRecord(s);

  if (env.Exists()) {
    auto vars = env.Load();
    if (!vars) return vars.error();
    state.selection = ParseSelection(*vars);
    state.committed = state.selection->committed();
    state.trial = state.booted != *state.committed;
  } else {
    state.trial = KernelCmdline(state.cmdline).Get("osu.trial").has_value();
  }

  const auto& own = state.record(state.booted);
  if (own && own->state == SlotState::Verified) {
    state.installed_version = own->version;
  } else if (auto os_release = ReadFile(config.os_release_path)) {
    state.installed_version = VersionFromOsRelease(*os_release);
  }
  return state;
}

}  // namespace osu
