// ParseManifest on any bytes; what parses must serialize to bytes that parse to the same
// Manifest and serialize identically again (the signed bytes are deterministic). The content
// rules then judge it: a refusal is one escaped line, and whatever passes is safe to stage.
#include <cstddef>
#include <cstdint>
#include <string>

#include "bundle/content_rules.hpp"
#include "bundle/manifest.hpp"
#include "fuzz_check.hpp"

namespace {

bool SameEntry(const osu::FileEntry& a, const osu::FileEntry& b) {
  return a.name == b.name && a.size == b.size && a.sha256 == b.sha256;
}

bool Same(const osu::Manifest& a, const osu::Manifest& b) {
  if (a.format != b.format || a.compatible != b.compatible || a.version != b.version ||
      a.min_version != b.min_version || a.cmdline != b.cmdline ||
      a.compression != b.compression || !SameEntry(a.image, b.image) ||
      a.boot_files.size() != b.boot_files.size())
    return false;
  for (size_t i = 0; i < a.boot_files.size(); ++i)
    if (!SameEntry(a.boot_files[i], b.boot_files[i])) return false;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  auto parsed = osu::ParseManifest(yaml);
  if (!parsed) {
    osu::fuzz::Check(!parsed.error().message().empty(), "an error without a message");
    return 0;
  }
  const std::string serialized = osu::SerializeManifest(*parsed);
  auto again = osu::ParseManifest(serialized);
  if (!again) osu::fuzz::Fail("serialized manifest does not parse: " + again.error().message());
  osu::fuzz::Check(Same(*parsed, *again), "manifest changed in a serialize/parse round trip:\n" +
                                               serialized);
  osu::fuzz::Check(osu::SerializeManifest(*again) == serialized,
                   "serializing the same manifest twice gave different bytes");
  if (auto content = osu::CheckBundleContent(*parsed); !content) {
    const std::string& message = content.error().message();
    osu::fuzz::Check(message.find_first_of("\n\r\x1b") == std::string::npos,
                     "a content refusal that is not one escaped line: " + message);
  } else {
    for (const auto& f : parsed->boot_files)
      osu::fuzz::Check(!f.name.empty() && f.name[0] != '.' &&
                           f.name.find('/') == std::string::npos &&
                           f.name.size() <= osu::kMaxFileName,
                       "content rules passed a boot file name that cannot be staged: " + f.name);
  }
  return 0;
}
