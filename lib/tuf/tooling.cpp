#include "tuf/tooling.hpp"

#include <dirent.h>

#include <algorithm>
#include <vector>

#include "common/fd.hpp"
#include "common/text.hpp"
#include "crypto/sha256.hpp"
#include "tuf/canonical.hpp"
#include "tuf/metadata.hpp"

namespace osu::tuf {

namespace {
nlohmann::json KeyObject(const TufPublicKey& key) {
  return {{"keytype", key.keytype}, {"scheme", key.scheme}, {"keyval", {{"public", key.value}}}};
}
}  // namespace

std::string KeyJson(const TufPublicKey& key) { return *Canonical(KeyObject(key), "key"); }
std::string KeyId(const TufPublicKey& key) { return Sha256Hex(KeyJson(key)); }

Expected<std::string> SignDocument(nlohmann::json& doc, const std::string& private_key_path,
                                   const std::string& what) {
  if (!doc.is_object() || !doc.contains("signed") || !doc["signed"].is_object())
    return UsageError(what + " is not TUF metadata (no \"signed\" object)");
  auto canonical = Canonical(doc["signed"], what);
  if (!canonical) return canonical.error();
  auto key = TufPublicKeyOf(private_key_path);
  if (!key) return key.error();
  auto sig = SignTuf(*canonical, private_key_path);
  if (!sig) return sig.error();
  const std::string keyid = KeyId(*key);
  auto& sigs = doc["signatures"];
  if (!sigs.is_array()) sigs = nlohmann::json::array();
  // The other holders' signatures stay: each adds theirs, none needs the others' keys.
  sigs.erase(std::remove_if(sigs.begin(), sigs.end(),
                            [&](const nlohmann::json& s) { return s.is_object() && s.value("keyid", "") == keyid; }),
             sigs.end());
  sigs.push_back({{"keyid", keyid}, {"sig", HexOf(*sig)}});
  return keyid;
}

Expected<nlohmann::json> ReadDocument(const std::string& path) {
  auto bytes = ReadFile(path, ErrorKind::Usage);
  if (!bytes) return bytes.error();
  auto doc = nlohmann::json::parse(*bytes, nullptr, false);
  if (doc.is_discarded()) return UsageError("'" + path + "' is not valid JSON");
  return doc;
}

Result WriteDocument(const std::string& path, const nlohmann::json& doc) {
  return InstallFile(path, doc.dump(1, ' ') + "\n");
}

Expected<std::string> SignMetadataFile(const std::string& path, const std::string& private_key_path) {
  auto doc = ReadDocument(path);
  if (!doc) return doc.error();
  auto keyid = SignDocument(*doc, private_key_path, "'" + path + "'");
  if (!keyid) return keyid.error();
  if (auto r = WriteDocument(path, *doc); !r) return r.error();
  return keyid;
}

Expected<std::string> DescribeExpiry(const std::string& dir, int64_t now) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return ErrnoError("Failed to open directory '" + dir + "'", errno, ErrorKind::Usage);
  std::vector<std::string> names;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.size() > 5 && n.substr(n.size() - 5) == ".json") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& n : names) {
    auto bytes = ReadFile(dir + "/" + n, ErrorKind::Usage);
    if (!bytes) continue;
    auto doc = nlohmann::json::parse(*bytes, nullptr, false);
    if (doc.is_discarded() || !doc.is_object() || !doc.contains("signed")) continue;
    const auto& s = doc["signed"];
    if (!s.is_object()) continue;
    const std::string expires = s.contains("expires") && s["expires"].is_string() ? s["expires"].get<std::string>() : "";
    auto t = ParseUtcTime(expires);
    const int64_t left = t ? (*t - now) / 86400 : 0;
    out += Printable(n) + ": " + Printable(s.contains("_type") && s["_type"].is_string() ? s["_type"].get<std::string>() : "?") + " v" +
           (s.contains("version") && s["version"].is_number_unsigned() ? std::to_string(s["version"].get<uint64_t>()) : "?") + ", expires " + Printable(expires) +
           (!t ? " (unreadable)" : *t <= now ? " (EXPIRED)" : " (in " + std::to_string(left) + " days)") + "\n";
  }
  return out;
}

}  // namespace osu::tuf
