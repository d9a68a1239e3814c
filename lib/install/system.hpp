// The state of the device as os-update sees it: slots, which one runs, what is recorded.
// Everything comes from the Config's paths, so a test can build a whole system in a temp dir.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "record/record.hpp"
#include "slots/slots.hpp"

namespace osu {

struct SystemState {
  Config config;
  SlotPair slots;
  SlotId booted = SlotId::A;
  std::optional<SlotId> committed;  // unknown until the bootloader env is read (activation)
  std::array<std::optional<Record>, 2> records;
  std::string cmdline;
  std::string mountinfo;

  const std::optional<Record>& record(SlotId s) const { return records[static_cast<size_t>(s)]; }
  // The running version: the booted slot's verified record, else os-release's IMAGE_VERSION or
  // VERSION_ID (a freshly flashed device has no record yet). Empty when unknown.
  std::string installed_version;
};

Expected<SystemState> LoadSystemState(const Config& config);

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
