// What os-update knows of a slot, and its on-disk format. The file,
//   <boot.path>/osu/<A|B>/record.yml   next to   <boot.path>/osu/<A|B>/<boot files>,
// is read and written only by bootpart/ (BootPartition). A slot is bootable only when its
// record says "verified".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/file_entry.hpp"
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
  // When this content first ran to boot-complete and became the committed slot (--commit);
  // empty while it never has. --rollback returns only to such a slot.
  std::string committed_at;
  // The signed manifest's downgrade floor, kept for --activate (which has no manifest).
  std::string min_version;
  std::string reason;      // why Invalid
  // How the content was verified when it was not a signed bundle: "ssh (unsigned)" for a raw
  // image accepted by update.allow_unsigned_ssh (sha256 and size are then only what arrived).
  std::string source;
};

std::string SerializeRecord(const Record& record);
Expected<Record> ParseRecord(const std::string& yaml);

std::string UtcNow();

}  // namespace osu
