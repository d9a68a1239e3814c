// What os-update knows of a slot, kept with that slot's boot files on the boot partition:
//   <boot.path>/osu/<A|B>/record.yml   next to   <boot.path>/osu/<A|B>/<boot files>
// Written atomically (InstallFile). A slot is bootable only when its record says "verified".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bundle/manifest.hpp"
#include "common/error.hpp"
#include "slots/slots.hpp"

namespace osu {

enum class SlotState {
  Installing,  // apply started: content unknown, never bootable
  Verified,    // content matched the signed manifest (size and sha256), boot files in place
  Invalid,     // apply failed; `reason` says why
};
std::string SlotStateName(SlotState s);

struct Record {
  SlotId slot = SlotId::A;
  SlotState state = SlotState::Installing;
  std::string version;
  std::string compatible;
  std::string sha256;  // of the uncompressed image
  uint64_t size = 0;   // bytes of the uncompressed image
  std::string cmdline;
  std::vector<FileEntry> boot_files;
  std::string updated_at;  // UTC, ISO 8601
  std::string reason;      // why Invalid
  // How the content was verified when it was not a signed bundle: "ssh (unsigned)" for a raw
  // image accepted by update.allow_unsigned_ssh (sha256 and size are then only what arrived).
  std::string source;
};

// <boot_path>/osu/<letter>
std::string SlotDirectory(const std::string& boot_path, SlotId slot);

// nullopt when the slot has no record. An unreadable or malformed record is returned as an
// Invalid record whose reason says so: it must never count as verified.
std::optional<Record> LoadRecord(const std::string& boot_path, SlotId slot);

// Atomic write (temp, fsync, rename, fsync directory); creates the slot directory.
Result SaveRecord(const std::string& boot_path, const Record& record);

// For an install that failed after its record said "installing": saves `record` as Invalid
// with the error as its reason, best effort ("installing" is not bootable either), and
// returns `error`.
Error SaveInvalidRecord(const std::string& boot_path, Record record, const Error& error);

std::string SerializeRecord(const Record& record);
Expected<Record> ParseRecord(const std::string& yaml);

std::string UtcNow();

}  // namespace osu
