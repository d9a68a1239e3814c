// The state of the device as os-update sees it: slots, which one runs, what is recorded.
// Everything comes from the Config's paths, so a test can build a whole system in a temp dir.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string>

#include "boot/selection.hpp"
#include "bootpart/boot_partition.hpp"
#include "bootenv/boot_env.hpp"
#include "config/config.hpp"
#include "record/record.hpp"
#include "slots/slots.hpp"

namespace osu {

struct SystemState {
  Config config;
  SlotPair slots;
  SlotId booted = SlotId::A;
  std::optional<SlotId> committed;  // first in OSU_ORDER; unknown when there is no boot env
  std::optional<BootSelection> selection;  // the boot env's OSU_* variables, when it exists
  bool trial = false;  // booted != committed (or, without an env, osu.trial on the cmdline)
  std::array<std::optional<Record>, 2> records;
  std::string cmdline;
  std::string mountinfo;

  const std::optional<Record>& record(SlotId s) const { return records[static_cast<size_t>(s)]; }
  BootPartition boot() const { return BootPartition(config.boot_path); }
  // The running version: the booted slot's verified record, else os-release's IMAGE_VERSION or
  // VERSION_ID (a freshly flashed device has no record yet). Empty when unknown.
  std::string installed_version;
};

// Reads slots, command line, records and the boot env. An env that exists but cannot be read
// is an error (Device): deciding anything without it would be guessing.
Expected<SystemState> LoadSystemState(const Config& config, BootEnv& env);

// The env backend the config names: grubenv (+ backup) or U-Boot's through fw_env.config.
std::unique_ptr<BootEnv> MakeBootEnv(const Config& config);

// IMAGE_VERSION, else VERSION_ID, from os-release text; "" if neither.
std::string VersionFromOsRelease(const std::string& text);

// Progress of long work, for the bar or the JSON lines.
struct Progress {
  std::string phase;  // "download", "write", "verify"
  uint64_t done = 0;
  uint64_t total = 0;  // 0 when unknown
};
struct Reporter {
  std::function<void(const Progress&)> progress;  // may be empty
  std::function<void(const std::string&)> info;   // one line of narrative; may be empty
  void Info(const std::string& line) const {
    if (info) info(line);
  }
};

}  // namespace osu
