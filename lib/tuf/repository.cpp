#include "tuf/repository.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "common/fd.hpp"
#include "common/text.hpp"
#include "crypto/sha256.hpp"
#include "tuf/tooling.hpp"

namespace osu::tuf {
namespace {

using nlohmann::json;

constexpr const char* kSpecVersion = "1.0.31";
const char* const kRoles[] = {"root", "timestamp", "snapshot", "targets"};

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::string RootName(uint64_t version) { return std::to_string(version) + ".root.json"; }

json Header(const std::string& type, uint64_t version, int64_t expires) {
  return {{"_type", type}, {"spec_version", kSpecVersion}, {"version", version},
          {"expires", FormatUtcTime(expires)}};
}

json Unsigned(json signed_part) { return {{"signed", std::move(signed_part)}, {"signatures", json::array()}}; }

// The highest N with N.root.json in `dir` (0: none).
uint64_t NewestRootVersion(const std::string& dir) {
  uint64_t n = 0;
  while (Exists(dir + "/" + RootName(n + 1))) ++n;
  return n;
}

Expected<Metadata<Root>> LoadRoot(const std::string& dir, uint64_t version) {
  const std::string path = dir + "/" + RootName(version);
  auto bytes = ReadFile(path, ErrorKind::Usage);
  if (!bytes) return bytes.error();
  return ParseRoot(*bytes, "'" + path + "'");
}

// Root N carries its own threshold and, from N = 2, root N-1's: what a device will require.
Expected<Metadata<Root>> LoadSignedRoot(const std::string& dir) {
  const uint64_t n = NewestRootVersion(dir);
  if (n == 0) return UsageError("'" + dir + "' holds no 1.root.json: start it with 'tuf init'");
  auto root = LoadRoot(dir, n);
  if (!root) return root.error();
  const std::string hint = " (add signatures with 'os-update-bundle tuf sign " + dir + "/" + RootName(n) + " --key KEY')";
  if (auto r = VerifyThreshold(root->signed_, "root", root->canonical, root->signatures, RootName(n)); !r)
    return UsageError(r.error().message() + hint);
  if (n > 1) {
    auto previous = LoadRoot(dir, n - 1);
    if (!previous) return previous.error();
    if (auto r = VerifyThreshold(previous->signed_, "root", root->canonical, root->signatures,
                                 RootName(n) + " (by the keys of " + RootName(n - 1) + ")");
        !r)
      return UsageError(r.error().message() + hint);
  }
  return root;
}

json KeyObject(const TufPublicKey& key) {
  return {{"keytype", key.keytype}, {"scheme", key.scheme}, {"keyval", {{"public", key.value}}}};
}

Result SetRole(json& root, const std::string& role, const RoleKeys& rk) {
  if (rk.threshold < 1 || rk.threshold > rk.keys.size())
    return UsageError("the " + role + " threshold must be between 1 and its " +
                      std::to_string(rk.keys.size()) + " keys");
  json ids = json::array();
  for (const auto& k : rk.keys) {
    const std::string id = KeyId(k);
    if (std::find(ids.begin(), ids.end(), id) != ids.end())
      return UsageError("the same " + role + " key is given twice (keyid " + id + ")");
    ids.push_back(id);
    root["keys"][id] = KeyObject(k);
  }
  root["roles"][role] = {{"keyids", ids}, {"threshold", rk.threshold}};
  return {};
}

// Keys no role lists any more leave root's "keys".
void DropUnusedKeys(json& root) {
  std::set<std::string> used;
  for (const auto& [role, r] : root["roles"].items())
    for (const auto& id : r["keyids"]) used.insert(id.get<std::string>());
  for (auto it = root["keys"].begin(); it != root["keys"].end();)
    it = used.count(it.key()) ? std::next(it) : root["keys"].erase(it);
}

json MetaOf(const std::string& bytes, uint64_t version) {
  return {{"version", version}, {"length", bytes.size()}, {"hashes", {{"sha256", Sha256Hex(bytes)}}}};
}

// Signs `doc` with every key of `keys` that `role` lists in `root`; the threshold must be met.
Result SignRole(json& doc, const std::string& role, const std::string& what, const Root& root,
                const std::vector<std::pair<std::string, std::string>>& keys) {
  const auto& ids = root.roles.at(role).keyids;
  for (const auto& [keyid, path] : keys)
    if (std::find(ids.begin(), ids.end(), keyid) != ids.end())
      if (auto r = SignDocument(doc, path, what); !r) return r.error();
  return {};
}

}  // namespace

Result InitRepository(const std::string& dir, const std::map<std::string, RoleKeys>& roles,
                      bool consistent_snapshot, const RepositoryTimes& times) {
  if (Exists(dir + "/1.root.json"))
    return UsageError("'" + dir + "' already holds a repository (1.root.json); rotate it with 'tuf rotate'");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return UsageError("Failed to create '" + dir + "': " + ec.message());
  json root = Header("root", 1, times.now + times.root_days * 86400);
  root["consistent_snapshot"] = consistent_snapshot;
  root["keys"] = json::object();
  for (const char* role : kRoles) {
    auto it = roles.find(role);
    if (it == roles.end() || it->second.keys.empty())
      return UsageError(std::string("init needs at least one ") + role + " key (--" + role + "-key)");
    if (auto r = SetRole(root, role, it->second); !r) return r;
  }
  json targets = Header("targets", 1, times.now + times.targets_days * 86400);
  targets["targets"] = json::object();
  if (auto r = WriteDocument(dir + "/targets.json", Unsigned(targets)); !r) return r;
  return WriteDocument(dir + "/1.root.json", Unsigned(root));
}

Expected<uint64_t> AddTargets(const std::string& dir, const std::vector<TargetEntry>& entries,
                              const RepositoryTimes& times) {
  const std::string path = dir + "/targets.json";
  auto doc = ReadDocument(path);
  if (!doc) return doc.error();
  auto parsed = ParseTargets(doc->dump(), "'" + path + "'");
  if (!parsed) return UsageError(parsed.error().message());
  json& s = (*doc)["signed"];
  for (const auto& e : entries) {
    json custom = {{"version", e.bundle.version}, {"compatible", e.bundle.compatible},
                   {"manifest_sha256", e.bundle.manifest_sha256}};
    if (!e.bundle.min_version.empty()) custom["min_version"] = e.bundle.min_version;
    if (e.bundle.rollout) {
      if (e.bundle.rollout->percent > 100) return UsageError("--rollout must be at most 100 (percent)");
      custom["rollout"] = {{"percent", e.bundle.rollout->percent}, {"salt", e.bundle.rollout->salt}};
    }
    s["targets"][e.name] = {{"length", e.length}, {"hashes", {{"sha256", e.sha256}}}, {"custom", custom}};
  }
  const uint64_t version = parsed->signed_.version + 1;
  s["version"] = version;
  s["expires"] = FormatUtcTime(times.now + times.targets_days * 86400);
  (*doc)["signatures"] = json::array();
  if (auto r = WriteDocument(path, *doc); !r) return r.error();
  return version;
}

Result PlaceTarget(const std::string& dir, const std::string& file, const TargetEntry& entry) {
  const uint64_t n = NewestRootVersion(dir);
  if (n == 0) return UsageError("'" + dir + "' holds no 1.root.json: start it with 'tuf init'");
  auto root = LoadRoot(dir, n);
  if (!root) return root.error();
  const std::string dest =
      dir + "/" + (root->signed_.consistent_snapshot ? entry.sha256 + "." : "") + entry.name;
  std::error_code ec;
  if (std::filesystem::equivalent(file, dest, ec)) return {};
  std::filesystem::remove(dest, ec);
  if (::link(file.c_str(), dest.c_str()) == 0) return {};
  std::filesystem::copy_file(file, dest, ec);
  if (ec) return UsageError("Failed to copy '" + file + "' to '" + dest + "': " + ec.message());
  return {};
}

Expected<uint64_t> RotateRoot(const std::string& dir, const std::map<std::string, RoleKeys>& changes,
                              const RepositoryTimes& times) {
  auto current = LoadSignedRoot(dir);
  if (!current) return current.error();
  const uint64_t n = current->signed_.version;
  auto doc = ReadDocument(dir + "/" + RootName(n));
  if (!doc) return doc.error();
  json root = (*doc)["signed"];
  bool changed = false;
  for (const auto& [role, rk] : changes) {
    if (std::find(std::begin(kRoles), std::end(kRoles), role) == std::end(kRoles))
      return UsageError("no role '" + Printable(role) + "' (root, timestamp, snapshot, targets)");
    if (rk.keys.empty()) continue;
    if (auto r = SetRole(root, role, rk); !r) return r.error();
    changed = true;
  }
  if (!changed) return UsageError("rotate: give the new keys of at least one role (--ROLE-key)");
  DropUnusedKeys(root);
  root["version"] = n + 1;
  root["expires"] = FormatUtcTime(times.now + times.root_days * 86400);
  if (auto r = WriteDocument(dir + "/" + RootName(n + 1), Unsigned(root)); !r) return r.error();
  return n + 1;
}

Expected<Published> Publish(const std::string& dir, const std::vector<std::string>& online_keys,
                            const RepositoryTimes& times) {
  auto root = LoadSignedRoot(dir);
  if (!root) return root.error();
  const Root& R = root->signed_;
  const std::string tg_path = dir + "/targets.json";
  auto tg_bytes = ReadFile(tg_path, ErrorKind::Usage);
  if (!tg_bytes) return tg_bytes.error();
  auto targets = ParseTargets(*tg_bytes, "'" + tg_path + "'");
  if (!targets) return UsageError(targets.error().message());
  if (auto r = VerifyThreshold(R, "targets", targets->canonical, targets->signatures, "targets.json v" +
                               std::to_string(targets->signed_.version));
      !r)
    return UsageError(r.error().message() + " (add signatures with 'os-update-bundle tuf sign " + tg_path + " --key KEY')");
  std::vector<std::pair<std::string, std::string>> keys;  // keyid, PEM path
  for (const auto& path : online_keys) {
    auto pub = TufPublicKeyOf(path);
    if (!pub) return pub.error();
    keys.emplace_back(KeyId(*pub), path);
  }
  Published out{R.version, targets->signed_.version, 0, 0, false};
  const int64_t ts_expires = times.now + times.timestamp_days * 86400;

  // The snapshot stays unless targets changed or it would expire before the new timestamp.
  std::string snap_bytes;
  if (auto old = ReadFile(dir + "/snapshot.json", ErrorKind::Usage)) {
    auto snap = ParseSnapshot(*old, "'" + dir + "/snapshot.json'");
    if (!snap) return UsageError(snap.error().message());
    auto it = snap->signed_.meta.find("targets.json");
    const bool current = it != snap->signed_.meta.end() && it->second.version == out.targets &&
                         it->second.length == tg_bytes->size() &&
                         snap->signed_.expires > ts_expires &&
                         static_cast<bool>(VerifyThreshold(R, "snapshot", snap->canonical, snap->signatures, "snapshot.json"));
    out.snapshot = snap->signed_.version;
    if (current) snap_bytes = *old;
  }
  if (snap_bytes.empty()) {
    out.snapshot += 1;
    out.new_snapshot = true;
    json s = Header("snapshot", out.snapshot, times.now + times.snapshot_days * 86400);
    s["meta"] = {{"targets.json", MetaOf(*tg_bytes, out.targets)}};
    json doc = Unsigned(s);
    if (auto r = SignRole(doc, "snapshot", "snapshot.json", R, keys); !r) return r.error();
    snap_bytes = doc.dump(1, ' ') + "\n";
    auto check = ParseSnapshot(snap_bytes, "snapshot.json");
    if (!check) return check.error();
    if (auto r = VerifyThreshold(R, "snapshot", check->canonical, check->signatures, "snapshot.json"); !r)
      return UsageError(r.error().message() + ": give the snapshot role's online key(s) with --key");
  }

  json ts = Header("timestamp", 1, ts_expires);
  if (auto old = ReadFile(dir + "/timestamp.json", ErrorKind::Usage)) {
    auto t = ParseTimestamp(*old, "'" + dir + "/timestamp.json'");
    if (!t) return UsageError(t.error().message());
    ts["version"] = t->signed_.version + 1;
  }
  out.timestamp = ts["version"].get<uint64_t>();
  ts["meta"] = {{"snapshot.json", MetaOf(snap_bytes, out.snapshot)}};
  json ts_doc = Unsigned(ts);
  if (auto r = SignRole(ts_doc, "timestamp", "timestamp.json", R, keys); !r) return r.error();
  const std::string ts_bytes = ts_doc.dump(1, ' ') + "\n";
  auto ts_check = ParseTimestamp(ts_bytes, "timestamp.json");
  if (!ts_check) return ts_check.error();
  if (auto r = VerifyThreshold(R, "timestamp", ts_check->canonical, ts_check->signatures, "timestamp.json"); !r)
    return UsageError(r.error().message() + ": give the timestamp role's online key(s) with --key");

  // Written in the order a device reads backwards: what timestamp.json names exists first.
  auto root_bytes = ReadFile(dir + "/" + RootName(R.version), ErrorKind::Usage);
  if (!root_bytes) return root_bytes.error();
  if (auto r = InstallFile(dir + "/root.json", *root_bytes); !r) return r.error();
  if (R.consistent_snapshot) {
    if (auto r = InstallFile(dir + "/" + std::to_string(out.targets) + ".targets.json", *tg_bytes); !r) return r.error();
    if (auto r = InstallFile(dir + "/" + std::to_string(out.snapshot) + ".snapshot.json", snap_bytes); !r) return r.error();
  }
  if (auto r = InstallFile(dir + "/snapshot.json", snap_bytes); !r) return r.error();
  if (auto r = InstallFile(dir + "/timestamp.json", ts_bytes); !r) return r.error();
  return out;
}

}  // namespace osu::tuf
