#include "bundle/content_rules.hpp"

#include <set>

#include "common/text.hpp"
#include "slots/slots.hpp"

namespace osu {
namespace {

Error Bad(const std::string& field, std::string_view value, const std::string& why) {
  return VerificationError("manifest: " + field + " " + InQuotes(value) + " " + why);
}

bool IsAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

std::string Lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// What os-update itself keeps in a slot's directory or the bundle: a boot file of that name
// would replace it, or be replaced by it.
const std::set<std::string>& ReservedNames() {
  static const std::set<std::string> names{"record.yml", "grub.cfg", "boot.env", "cmdline.txt",
                                           "chunks.idx", kManifestMember, kSignatureMember};
  return names;
}

Result CheckFileName(const std::string& field, const std::string& name) {
  if (name.empty()) return VerificationError("manifest: " + field + " is empty");
  for (char c : name) {
    if (c == '/') return Bad(field, name, "is not one file name: it contains '/'");
    if (!IsAlnum(c) && c != '.' && c != '_' && c != '+' && c != '~' && c != '-')
      return Bad(field, name, "has a character other than A-Z a-z 0-9 . _ + ~ -");
  }
  if (name.front() == '.')
    return Bad(field, name, "starts with '.' (os-update's staging and temporary names do)");
  if (name.back() == '.') return Bad(field, name, "ends with '.' (FAT drops it)");
  if (name.size() > kMaxFileName)
    return Bad(field, name.substr(0, 40) + "...",
               "is " + std::to_string(name.size()) + " bytes, more than the " +
                   std::to_string(kMaxFileName) + " that can be staged on the boot partition");
  if (ReservedNames().count(Lower(name)))
    return Bad(field, name, "is reserved: os-update keeps its own file of that name");
  return {};
}

Result CheckVersionLike(const std::string& field, const std::string& value) {
  if (value.empty()) return VerificationError("manifest: " + field + " is empty");
  if (value.size() > kMaxVersionLength)
    return Bad(field, value.substr(0, 40) + "...",
               "is " + std::to_string(value.size()) + " bytes, more than " +
                   std::to_string(kMaxVersionLength));
  for (char c : value) {
    if (!IsAlnum(c) && c != '.' && c != '_' && c != '+' && c != '~' && c != ':' && c != ',' &&
        c != '-')
      return Bad(field, value, "has a character other than A-Z a-z 0-9 . _ + ~ : , -");
  }
  if (!IsAlnum(value.front())) return Bad(field, value, "does not start with a letter or digit");
  return {};
}

Result CheckCmdline(const std::string& cmdline) {
  const std::string field = "cmdline";
  if (cmdline.size() > kMaxCmdlineLength)
    return Bad(field, cmdline.substr(0, 40) + "...",
               "is " + std::to_string(cmdline.size()) + " bytes, more than " +
                   std::to_string(kMaxCmdlineLength));
  for (char c : cmdline) {
    if (c < 0x20 || c > 0x7e)
      return Bad(field, cmdline, "has a character that is not printable ASCII");
  }
  // Both boot scripts append osu.trial=1 after the bundle's arguments: an open quote would
  // swallow it, a "--" would hand it to init.
  const KernelCmdline parsed(cmdline + " osu.end");
  if (parsed.init_args() || parsed.args().empty() || parsed.args().back().first != "osu.end")
    return Bad(field, cmdline,
               "leaves a quote open or holds '--': os-update's arguments after it would not "
               "reach the kernel");
  for (size_t i = 0; i + 1 < parsed.args().size(); ++i) {
    const std::string& key = parsed.args()[i].first;
    if (key == "root" || key.rfind("osu.", 0) == 0)
      return Bad(field, cmdline,
                 "sets " + InQuotes(key) +
                     ", which os-update sets itself for the slot it boots (root=, osu.*)");
  }
  return {};
}

}  // namespace

Result CheckBundleContent(const Manifest& m) {
  if (auto r = CheckVersionLike("compatible", m.compatible); !r) return r;
  if (auto r = CheckVersionLike("version", m.version); !r) return r;
  if (m.min_version)
    if (auto r = CheckVersionLike("min_version", *m.min_version); !r) return r;
  if (auto r = CheckCmdline(m.cmdline); !r) return r;
  if (m.image.size == 0)
    return VerificationError("manifest: image.size is 0: an empty image would erase a slot");
  if (auto r = CheckFileName("image.name", m.image.name); !r) return r;
  std::set<std::string> names{Lower(m.image.name)};
  for (size_t i = 0; i < m.boot_files.size(); ++i) {
    const std::string field = "boot_files[" + std::to_string(i) + "].name";
    const std::string& name = m.boot_files[i].name;
    if (auto r = CheckFileName(field, name); !r) return r;
    if (!names.insert(Lower(name)).second)
      return Bad(field, name, "is used twice (ignoring case, as FAT does; the image counts too)");
  }
  if (m.index) {
    if (auto r = CheckFileName("index.name", m.index->name); !r) return r;
    if (!names.insert(Lower(m.index->name)).second)
      return Bad("index.name", m.index->name, "is also the name of the image or a boot file");
  }
  if (m.dictionary) {
    if (auto r = CheckFileName("dictionary.name", m.dictionary->name); !r) return r;
    if (!names.insert(Lower(m.dictionary->name)).second)
      return Bad("dictionary.name", m.dictionary->name,
                 "is also the name of the image, the index or a boot file");
    if (m.dictionary->size > kDictionaryLimit)
      return Bad("dictionary.size", std::to_string(m.dictionary->size),
                 "is more than the limit of " + std::to_string(kDictionaryLimit) + " bytes");
  }
  return {};
}

}  // namespace osu
