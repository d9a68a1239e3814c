#include "record/record.hpp"

#include <yaml-cpp/yaml.h>

#include <cstdio>

#include <ctime>


namespace osu {

std::string SlotStateName(SlotState s) {
  switch (s) {
    case SlotState::Installing: return "installing";
    case SlotState::Verified: return "verified";
    case SlotState::Invalid: return "invalid";
  }
  return "invalid";
}

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm {};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

namespace {

// A YAML double-quoted scalar that reads back byte for byte. yaml-cpp's emitter replaces bytes
// that are not UTF-8 with U+FFFD, and a record must say exactly what the signed manifest said
// (the installed version is compared with bundles' versions).
std::string Quoted(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

}  // namespace

std::string SerializeRecord(const Record& r) {
  std::string s;
  s += "slot: " + SlotName(r.slot) + "\n";
  s += "state: " + SlotStateName(r.state) + "\n";
  s += "version: " + Quoted(r.version) + "\n";
  s += "compatible: " + Quoted(r.compatible) + "\n";
  s += "sha256: " + Quoted(r.sha256) + "\n";
  s += "size: " + std::to_string(r.size) + "\n";
  s += "cmdline: " + Quoted(r.cmdline) + "\n";
  s += r.boot_files.empty() ? "boot_files: []\n" : "boot_files:\n";
  for (const auto& f : r.boot_files) {
    s += "  - {name: " + Quoted(f.name) + ", size: " + std::to_string(f.size) +
         ", sha256: " + Quoted(f.sha256) + "}\n";
  }
  s += "updated_at: " + Quoted(r.updated_at) + "\n";
  if (!r.reason.empty()) s += "reason: " + Quoted(r.reason) + "\n";
  if (!r.source.empty()) s += "source: " + Quoted(r.source) + "\n";
  if (!r.committed_at.empty()) s += "committed_at: " + Quoted(r.committed_at) + "\n";
  if (!r.min_version.empty()) s += "min_version: " + Quoted(r.min_version) + "\n";
  return s;
}

Expected<Record> ParseRecord(const std::string& yaml) {
  try {
    YAML::Node n = YAML::Load(yaml);
    if (!n.IsMap()) return DeviceError("record is not a mapping");
    Record r;
    auto slot = ParseSlotLetter(n["slot"].as<std::string>());
    if (!slot) return DeviceError("record has an unknown slot");
    r.slot = *slot;
    const std::string state = n["state"].as<std::string>();
    if (state == "verified") r.state = SlotState::Verified;
    else if (state == "installing") r.state = SlotState::Installing;
    else if (state == "invalid") r.state = SlotState::Invalid;
    else return DeviceError("record has an unknown state '" + state + "'");
    r.version = n["version"].as<std::string>("");
    r.compatible = n["compatible"].as<std::string>("");
    r.sha256 = n["sha256"].as<std::string>("");
    r.size = n["size"].as<uint64_t>(0);
    r.cmdline = n["cmdline"].as<std::string>("");
    r.updated_at = n["updated_at"].as<std::string>("");
    r.reason = n["reason"].as<std::string>("");
    r.source = n["source"].as<std::string>("");
    r.committed_at = n["committed_at"].as<std::string>("");
    r.min_version = n["min_version"].as<std::string>("");
    if (n["boot_files"] && n["boot_files"].IsSequence()) {
      for (const auto& f : n["boot_files"]) {
        r.boot_files.push_back(FileEntry{f["name"].as<std::string>(), f["size"].as<uint64_t>(),
                                         f["sha256"].as<std::string>()});
      }
    }
    // A verified record must carry what makes it verifiable.
    if (r.state == SlotState::Verified && (r.sha256.size() != 64 || r.version.empty()))
      return DeviceError("record says verified but has no sha256 or version");
    return r;
  } catch (const YAML::Exception& e) {
    return DeviceError(std::string("record is malformed: ") + e.what());
  }
}

}  // namespace osu
