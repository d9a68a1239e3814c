#include "device/storage_media.hpp"

namespace osu {

std::string StorageMediaName(StorageMedia media) {
  switch (media) {
    case StorageMedia::File: return "image file";
    case StorageMedia::Flash: return "flash";
    case StorageMedia::Rotational: return "rotational disk";
    case StorageMedia::Unknown: break;
  }
  return "unknown medium";
}

bool SkipUnchangedFor(std::optional<bool> configured, StorageMedia media) {
  if (configured) return *configured;
  // Unknown stays off: the plain full write is never wrong, only more wear.
  return media == StorageMedia::Flash;
}

}  // namespace osu
