#include "config/config.hpp"

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <set>

#include "common/fd.hpp"

namespace osu {
namespace {

class ConfigReader {
 public:
  ConfigReader(const YAML::Node& root, const std::string& path) : root_(root), path_(path) {}

  Error Bad(const YAML::Node& node, const std::string& key, const std::string& why) const {
    std::string where = "config '" + path_ + "'";
    if (node.Mark().line >= 0) where += ": line " + std::to_string(node.Mark().line + 1);
    return UsageError(where + ": " + key + " " + why);
  }

  // A scalar at section.key; absent and null both leave `out` untouched.
  Result String(const char* section, const char* key, std::string& out) const {
    YAML::Node node = Child(section, key);
    if (!node || node.IsNull()) return {};
    if (!node.IsScalar()) return Bad(node, Name(section, key), "must be a string");
    out = node.Scalar();
    return {};
  }

  Result Bool(const char* section, const char* key, bool& out) const {
    YAML::Node node = Child(section, key);
    if (!node || node.IsNull()) return {};
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value))
      return Bad(node, Name(section, key), "must be true or false");
    out = value;
    return {};
  }

  // Tri-state: absent or null leave `out` unset ("decide automatically").
  Result Bool(const char* section, const char* key, std::optional<bool>& out) const {
    bool value = false;
    YAML::Node node = Child(section, key);
    if (!node || node.IsNull()) return {};
    if (auto r = Bool(section, key, value); !r) return r;
    out = value;
    return {};
  }

  Result Unsigned(const char* section, const char* key, unsigned& out) const {
    YAML::Node node = Child(section, key);
    if (!node || node.IsNull()) return {};
    const std::string& s = node.Scalar();
    if (!node.IsScalar() || s.empty() || s.find_first_not_of("0123456789") != std::string::npos ||
        s.size() > 4)
      return Bad(node, Name(section, key), "must be a small non-negative number");
    out = static_cast<unsigned>(std::stoul(s));
    return {};
  }

  // A number in [0, max]; for limits larger than Unsigned()'s few digits.
  Result Number(const char* section, const char* key, unsigned max, unsigned& out) const {
    YAML::Node node = Child(section, key);
    if (!node || node.IsNull()) return {};
    const std::string s = node.IsScalar() ? node.Scalar() : "";
    const std::string why = "must be a number from 0 to " + std::to_string(max);
    if (s.empty() || s.size() > 10 || s.find_first_not_of("0123456789") != std::string::npos)
      return Bad(node, Name(section, key), why);
    unsigned long long v = std::stoull(s);
    if (v > max) return Bad(node, Name(section, key), why);
    out = static_cast<unsigned>(v);
    return {};
  }

  Result StringList(const char* section, const char* key, std::vector<std::string>& out) const {
    YAML::Node node = Child(section, key);
    if (!node || node.IsNull()) return {};
    if (node.IsScalar()) {  // a single file is fine too
      out = {node.Scalar()};
      return {};
    }
    if (!node.IsSequence()) return Bad(node, Name(section, key), "must be a list of file names");
    out.clear();
    for (const auto& item : node) {
      if (!item.IsScalar() || item.Scalar().empty())
        return Bad(item, Name(section, key), "must be a list of file names");
      out.push_back(item.Scalar());
    }
    return {};
  }

  // One of `choices`; absent or null leaves `out`.
  template <class T>
  Result Choice(const char* section, const char* key,
                const std::vector<std::pair<const char*, T>>& choices, T& out) const {
    YAML::Node node = section ? Child(section, key) : root_[key];
    const std::string name = section ? Name(section, key) : key;
    if (!node || node.IsNull()) return {};
    std::string allowed;
    for (const auto& [text, value] : choices) {
      if (node.IsScalar() && node.Scalar() == text) {
        out = value;
        return {};
      }
      allowed += allowed.empty() ? std::string(text) : std::string(" or ") + text;
    }
    return Bad(node, name, "must be " + allowed);
  }

  // Unknown sections and keys are errors: a typo must not silently fall back to a default.
  Result CheckKnown() const {
    static const std::set<std::string> kSections = {"update", "slots", "boot", "system",
                                                    "install", "tuf"};
    static const std::set<std::string> kKeys = {
        "update.server", "update.name", "update.pkey", "update.keys", "update.compatible",
        "update.ca_file", "update.pinned_pubkey", "update.connect_timeout",
        "update.low_speed_limit", "update.low_speed_time", "update.retries", "update.known_hosts",
        "update.allow_unsigned_ssh", "update.delta_prefer", "update.link_rate", "slots.disk", "slots.a", "slots.b", "boot.path", "boot.bootloader",
        "boot.grubenv", "boot.fw_env_config", "system.cmdline", "system.systemd", "system.device_tree",
        "system.mountinfo", "system.lock", "system.os_release", "system.machine_id", "install.verify",
        "install.skip_unchanged", "install.threads", "tuf.root", "tuf.state_dir", "tuf.build_time"};
    // yaml-cpp keeps a repeated key and answers lookups with the first: a second `boot:`
    // section would be silently ignored, so a repeat is an error like an unknown key.
    std::set<std::string> seen;
    for (const auto& section : root_) {
      const std::string name = section.first.Scalar();
      if (!seen.insert(name).second) return Bad(section.first, name, "appears twice");
      if (name == "activation") continue;  // the one top-level scalar
      if (!kSections.count(name)) return Bad(section.first, name, "is not a known section");
      if (section.second.IsNull()) continue;
      if (!section.second.IsMap()) return Bad(section.second, name, "must be a mapping");
      for (const auto& entry : section.second) {
        const std::string full = name + "." + entry.first.Scalar();
        if (!seen.insert(full).second) return Bad(entry.first, full, "appears twice");
        if (!kKeys.count(full)) return Bad(entry.first, full, "is not a known key");
      }
    }
    return {};
  }

 private:
  static std::string Name(const char* section, const char* key) {
    return std::string(section) + "." + key;
  }
  YAML::Node Child(const char* section, const char* key) const {
    YAML::Node s = root_[section];
    if (!s || !s.IsMap()) return YAML::Node();
    return s[key];
  }

  const YAML::Node& root_;
  const std::string& path_;
};

}  // namespace

std::string BootloaderName(Bootloader b) {
  switch (b) {
    case Bootloader::Grub: return "grub";
    case Bootloader::Uboot: return "uboot";
    case Bootloader::PiFirmware: return "pi-firmware";
  }
  return "?";
}
std::string ActivationName(Activation a) { return a == Activation::Kexec ? "kexec" : "reboot"; }

std::string Config::DefaultSource() const {
  if (server.empty() || name.empty()) return "";
  std::string base = server;
  while (!base.empty() && base.back() == '/') base.pop_back();
  // EOS wrote its server as user@host: no scheme, so not a path or a URL of ours.
  const bool eos_ssh = base.find("://") == std::string::npos &&
                       base.find('@') != std::string::npos && base.find('/') == std::string::npos;
  if (eos_ssh) base = "ssh://" + base;
  if (base.rfind("ssh://", 0) == 0) return base + "/" + name + ".raw.dev";
  return base + "/" + name + ".osu";
}

Expected<Config> ParseConfig(const std::string& yaml, const std::string& path) {
  Config config;
  config.path = path;
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return UsageError("config '" + path + "': line " + std::to_string(e.mark.line + 1) +
                      ": not valid YAML: " + e.msg);
  }
  if (!root || root.IsNull()) return config;  // an empty file: all defaults
  if (!root.IsMap()) return UsageError("config '" + path + "': must be a mapping of sections");

  try {
    ConfigReader r(root, path);
    for (Result res : {r.CheckKnown(), r.String("update", "server", config.server),
                       r.String("update", "name", config.name),
                       r.String("update", "pkey", config.pkey),
                       r.StringList("update", "keys", config.keys),
                       r.String("update", "compatible", config.compatible),
                       r.String("update", "ca_file", config.ca_file),
                       r.String("update", "pinned_pubkey", config.pinned_pubkey),
                       r.Number("update", "connect_timeout", 3600, config.connect_timeout_s),
                       r.Number("update", "low_speed_limit", 1u << 30, config.low_speed_limit),
                       r.Number("update", "low_speed_time", 3600, config.low_speed_time_s),
                       r.Number("update", "retries", 20, config.retries),
                       r.String("update", "known_hosts", config.known_hosts),
                       r.Bool("update", "allow_unsigned_ssh", config.allow_unsigned_ssh),
                       r.Choice<DeltaPrefer>("update", "delta_prefer",
                                             {{"time", DeltaPrefer::Time}, {"bytes", DeltaPrefer::Bytes}},
                                             config.delta_prefer),
                       r.Number("update", "link_rate", 4000000000u, config.link_rate),
                       r.String("slots", "disk", config.disk),
                       r.String("slots", "a", config.labels.a),
                       r.String("slots", "b", config.labels.b),
                       r.String("boot", "path", config.boot_path),
                       r.Choice<Bootloader>("boot", "bootloader",
                                            {{"grub", Bootloader::Grub}, {"uboot", Bootloader::Uboot},
                                             {"pi-firmware", Bootloader::PiFirmware}},
                                            config.bootloader),
                       r.String("boot", "grubenv", config.grubenv),
                       r.String("boot", "fw_env_config", config.fw_env_config),
                       r.Choice<Activation>(nullptr, "activation",
                                            {{"kexec", Activation::Kexec},
                                             {"reboot", Activation::Reboot}},
                                            config.activation),
                       r.String("system", "systemd", config.systemd_path),
                       r.String("system", "device_tree", config.device_tree_path),
                       r.String("system", "cmdline", config.cmdline_path),
                       r.String("system", "mountinfo", config.mountinfo_path),
                       r.String("system", "lock", config.lock_path),
                       r.String("system", "os_release", config.os_release_path),
                       r.String("system", "machine_id", config.machine_id_path),
                       r.Bool("install", "verify", config.verify_readback),
                       r.Bool("install", "skip_unchanged", config.skip_unchanged),
                       r.Unsigned("install", "threads", config.threads),
                       r.String("tuf", "root", config.tuf_root),
                       r.String("tuf", "state_dir", config.tuf_state_dir),
                       r.String("tuf", "build_time", config.tuf_build_time)}) {
      if (!res) return res.error();
    }
  } catch (const YAML::Exception& e) {
    return UsageError("config '" + path + "': " + e.what());
  }
  // libcurl's only other form is a key file; one form keeps the pin readable in the config.
  if (!config.pinned_pubkey.empty() && config.pinned_pubkey.rfind("sha256//", 0) != 0)
    return UsageError("config '" + path + "': update.pinned_pubkey must be 'sha256//<base64 of "
                      "the SPKI digest>' (several joined with ';')");
  if (config.labels.a == config.labels.b)
    return UsageError("config '" + path + "': slots.a and slots.b are both '" + config.labels.a +
                      "'");
  return config;
}

Expected<Config> LoadConfig(const std::string& path, bool explicit_path) {
  auto text = ReadFile(path, ErrorKind::Usage);
  if (!text) {
    struct stat st {};
    if (!explicit_path && ::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
      Config defaults;
      return defaults;
    }
    return UsageError("config " + text.error().message());
  }
  return ParseConfig(*text, path);
}

}  // namespace osu
