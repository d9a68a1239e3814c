#include "record/record.hpp"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>

#include <ctime>

#include "common/fd.hpp"

namespace osu {

std::string SlotStateName(SlotState s) {
  switch (s) {
    case SlotState::Installing: return "installing";
    case SlotState::Verified: return "verified";
    case SlotState::Invalid: return "invalid";
  }
  return "invalid";
}

std::string SlotDirectory(const std::string& boot_path, SlotId slot) {
  return boot_path + "/osu/" + SlotLetter(slot);
}

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm tm {};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string SerializeRecord(const Record& r) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "slot" << YAML::Value << std::string(1, SlotLetter(r.slot));
  out << YAML::Key << "state" << YAML::Value << SlotStateName(r.state);
  out << YAML::Key << "version" << YAML::Value << YAML::DoubleQuoted << r.version;
  out << YAML::Key << "compatible" << YAML::Value << YAML::DoubleQuoted << r.compatible;
  out << YAML::Key << "sha256" << YAML::Value << r.sha256;
  out << YAML::Key << "size" << YAML::Value << r.size;
  out << YAML::Key << "cmdline" << YAML::Value << YAML::DoubleQuoted << r.cmdline;
  out << YAML::Key << "boot_files" << YAML::Value << YAML::BeginSeq;
  for (const auto& f : r.boot_files) {
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << f.name
        << YAML::Key << "size" << YAML::Value << f.size << YAML::Key << "sha256" << YAML::Value
        << f.sha256 << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "updated_at" << YAML::Value << r.updated_at;
  if (!r.reason.empty()) out << YAML::Key << "reason" << YAML::Value << YAML::DoubleQuoted << r.reason;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
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

std::optional<Record> LoadRecord(const std::string& boot_path, SlotId slot) {
  const std::string path = SlotDirectory(boot_path, slot) + "/record.yml";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return std::nullopt;
  auto text = ReadFile(path);
  if (!text) {
    Record bad;
    bad.slot = slot;
    bad.state = SlotState::Invalid;
    bad.reason = text.error().message();
    return bad;
  }
  auto record = ParseRecord(*text);
  if (!record || record->slot != slot) {
    Record bad;
    bad.slot = slot;
    bad.state = SlotState::Invalid;
    bad.reason = "'" + path + "': " +
                 (record ? std::string("record is for the other slot") : record.error().message());
    return bad;
  }
  return *record;
}

Result SaveRecord(const std::string& boot_path, const Record& record) {
  const std::string dir = SlotDirectory(boot_path, record.slot);
  if (auto r = MakeDirectories(dir); !r) return r;
  return InstallFile(dir + "/record.yml", SerializeRecord(record));
}

}  // namespace osu
