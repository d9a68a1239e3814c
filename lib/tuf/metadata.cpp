#include "tuf/metadata.hpp"

#include <ctime>
#include <set>

#include "common/text.hpp"
#include "tuf/canonical.hpp"

namespace osu::tuf {
namespace {

using nlohmann::json;

// Every accessor below fails with one line naming the file and the field.
struct Reader {
  const std::string& what;
  Error Bad(const std::string& field, const std::string& why) const {
    return VerificationError(what + ": " + field + " " + why);
  }
  Expected<const json*> Object(const json& parent, const std::string& key, const std::string& path) const {
    auto it = parent.find(key);
    if (it == parent.end()) return Bad(path, "is missing");
    if (!it->is_object()) return Bad(path, "must be an object");
    return &*it;
  }
  Expected<std::string> String(const json& parent, const std::string& key, const std::string& path) const {
    auto it = parent.find(key);
    if (it == parent.end()) return Bad(path, "is missing");
    if (!it->is_string()) return Bad(path, "must be a string");
    return it->get<std::string>();
  }
  Expected<uint64_t> Count(const json& parent, const std::string& key, const std::string& path,
                           uint64_t min) const {
    auto it = parent.find(key);
    if (it == parent.end()) return Bad(path, "is missing");
    if (!it->is_number_integer() || (it->is_number_integer() && !it->is_number_unsigned() &&
                                     it->get<int64_t>() < 0))
      return Bad(path, "must be a non-negative integer");
    uint64_t v = it->get<uint64_t>();
    if (v < min) return Bad(path, "must be at least " + std::to_string(min));
    return v;
  }
};

struct Parsed {
  json doc;
  std::vector<SignatureEntry> signatures;
  std::string canonical;
};

Expected<Parsed> ParseEnvelope(const std::string& bytes, const std::string& what) {
  Parsed p;
  p.doc = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (p.doc.is_discarded()) return VerificationError(what + ": not valid JSON");
  if (!p.doc.is_object()) return VerificationError(what + ": not a JSON object");
  Reader r{what};
  auto sigs = p.doc.find("signatures");
  if (sigs == p.doc.end() || !sigs->is_array()) return r.Bad("signatures", "must be an array");
  std::set<std::string> seen;
  for (const auto& s : *sigs) {
    if (!s.is_object()) return r.Bad("signatures[]", "must be objects");
    auto keyid = r.String(s, "keyid", "signatures[].keyid");
    if (!keyid) return keyid.error();
    auto sig = r.String(s, "sig", "signatures[].sig");
    if (!sig) return sig.error();
    // Both reference clients refuse a keyid signing twice; it can never count twice anyway.
    if (!seen.insert(*keyid).second)
      return r.Bad("signatures", "lists keyid " + Printable(*keyid) + " more than once");
    auto raw = BytesOfHex(*sig);
    if (!raw) return r.Bad("signatures[].sig", "is not hex (keyid " + Printable(*keyid) + ")");
    p.signatures.push_back({*keyid, *raw});
  }
  auto s = r.Object(p.doc, "signed", "signed");
  if (!s) return s.error();
  auto canonical = Canonical(**s, what);
  if (!canonical) return canonical.error();
  p.canonical = std::move(canonical).value();
  return p;
}

Result ParseCommon(const json& s, const std::string& type, const Reader& r, Signed& out) {
  auto t = r.String(s, "_type", "_type");
  if (!t) return t.error();
  if (*t != type) return r.Bad("_type", "is '" + Printable(*t) + "', expected '" + type + "'");
  out.type = *t;
  auto spec = r.String(s, "spec_version", "spec_version");
  if (!spec) return spec.error();
  // "1.0.31" or "1.0": major 1, numeric parts (as python-tuf and tuf-js read it).
  std::vector<std::string> parts{""};
  for (char c : *spec) {
    if (c == '.') parts.emplace_back();
    else if (c >= '0' && c <= '9') parts.back().push_back(c);
    else parts = {};
    if (parts.empty()) break;
  }
  bool numeric = parts.size() == 2 || parts.size() == 3;
  for (const auto& p : parts) numeric = numeric && !p.empty();
  if (!numeric || parts[0] != "1")
    return r.Bad("spec_version", "'" + Printable(*spec) + "' is not a 1.x TUF specification version");
  out.spec_version = *spec;
  auto v = r.Count(s, "version", "version", 1);
  if (!v) return v.error();
  out.version = *v;
  auto e = r.String(s, "expires", "expires");
  if (!e) return e.error();
  auto when = ParseUtcTime(*e);
  if (!when) return r.Bad("expires", "'" + Printable(*e) + "' is not of the form 2030-01-31T00:00:00Z");
  out.expires = *when;
  out.expires_text = *e;
  return {};
}

Expected<MetaInfo> ParseMetaInfo(const json& m, const std::string& path, const Reader& r) {
  if (!m.is_object()) return r.Bad(path, "must be an object");
  MetaInfo info;
  auto v = r.Count(m, "version", path + ".version", 1);
  if (!v) return v.error();
  info.version = *v;
  if (m.contains("length")) {
    auto l = r.Count(m, "length", path + ".length", 0);
    if (!l) return l.error();
    info.length = *l;
  }
  if (m.contains("hashes")) {
    auto h = r.Object(m, "hashes", path + ".hashes");
    if (!h) return h.error();
    for (const auto& [alg, hex] : (*h)->items()) {
      if (!hex.is_string()) return r.Bad(path + ".hashes." + Printable(alg), "must be a string");
      info.hashes[alg] = hex.get<std::string>();
    }
    if (info.hashes.empty()) return r.Bad(path + ".hashes", "is empty");
  }
  return info;
}

// The envelope and the fields every role shares.
template <class T>
Expected<std::pair<Parsed, T>> ParseRole(const std::string& bytes, const std::string& what,
                                         const std::string& type) {
  auto p = ParseEnvelope(bytes, what);
  if (!p) return p.error();
  T role;
  if (auto c = ParseCommon(p->doc["signed"], type, Reader{what}, role); !c) return c.error();
  return std::pair<Parsed, T>(std::move(p).value(), std::move(role));
}

template <class T>
Metadata<T> Wrap(Parsed&& p, T&& s, const std::string& bytes) {
  return Metadata<T>{std::move(s), std::move(p.signatures), std::move(p.canonical), bytes};
}

}  // namespace

std::optional<int64_t> ParseUtcTime(const std::string& t) {
  // Exactly YYYY-MM-DDTHH:MM:SSZ, as the spec writes it.
  if (t.size() != 20 || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
      t[16] != ':' || t[19] != 'Z')
    return std::nullopt;
  for (size_t i = 0; i < 19; ++i)
    if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && (t[i] < '0' || t[i] > '9'))
      return std::nullopt;
  auto num = [&](size_t at, size_t n) { return std::stoi(t.substr(at, n)); };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60)
    return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

std::string FormatUtcTime(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Expected<Metadata<Root>> ParseRoot(const std::string& bytes, const std::string& what) {
  auto p = ParseRole<Root>(bytes, what, "root");
  if (!p) return p.error();
  auto& [envelope, root] = *p;
  const json& s = envelope.doc["signed"];
  Reader r{what};
  auto cs = s.find("consistent_snapshot");
  if (cs != s.end()) {
    if (!cs->is_boolean()) return r.Bad("consistent_snapshot", "must be true or false");
    root.consistent_snapshot = cs->get<bool>();
  }
  auto keys = r.Object(s, "keys", "keys");
  if (!keys) return keys.error();
  for (const auto& [id, k] : (*keys)->items()) {
    const std::string path = "keys." + Printable(id);
    if (!k.is_object()) return r.Bad(path, "must be an object");
    TufPublicKey key;
    auto kt = r.String(k, "keytype", path + ".keytype");
    if (!kt) return kt.error();
    auto sc = r.String(k, "scheme", path + ".scheme");
    if (!sc) return sc.error();
    auto kv = r.Object(k, "keyval", path + ".keyval");
    if (!kv) return kv.error();
    auto pub = r.String(**kv, "public", path + ".keyval.public");
    if (!pub) return pub.error();
    root.keys[id] = TufPublicKey{*kt, *sc, *pub};
  }
  auto roles = r.Object(s, "roles", "roles");
  if (!roles) return roles.error();
  for (const char* name : {"root", "timestamp", "snapshot", "targets"}) {
    const std::string path = std::string("roles.") + name;
    auto role = r.Object(**roles, name, path);
    if (!role) return role.error();
    KeyRole kr;
    auto t = r.Count(**role, "threshold", path + ".threshold", 1);
    if (!t) return t.error();
    kr.threshold = *t;
    auto ids = (*role)->find("keyids");
    if (ids == (*role)->end() || !ids->is_array()) return r.Bad(path + ".keyids", "must be an array");
    std::set<std::string> seen;
    for (const auto& id : *ids) {
      if (!id.is_string()) return r.Bad(path + ".keyids", "must hold strings");
      if (!seen.insert(id.get<std::string>()).second)
        return r.Bad(path + ".keyids", "lists " + Printable(id.get<std::string>()) + " twice");
      if (!root.keys.count(id.get<std::string>()))
        return r.Bad(path + ".keyids", "names " + Printable(id.get<std::string>()) + ", not in keys");
      kr.keyids.push_back(id.get<std::string>());
    }
    root.roles[name] = kr;
  }
  return Wrap(std::move(envelope), std::move(root), bytes);
}

Expected<Metadata<Timestamp>> ParseTimestamp(const std::string& bytes, const std::string& what) {
  auto p = ParseRole<Timestamp>(bytes, what, "timestamp");
  if (!p) return p.error();
  auto& [envelope, ts] = *p;
  const json& s = envelope.doc["signed"];
  Reader r{what};
  auto meta = r.Object(s, "meta", "meta");
  if (!meta) return meta.error();
  auto it = (*meta)->find("snapshot.json");
  if (it == (*meta)->end()) return r.Bad("meta", "has no snapshot.json");
  auto info = ParseMetaInfo(*it, "meta.snapshot.json", r);
  if (!info) return info.error();
  ts.snapshot = *info;
  return Wrap(std::move(envelope), std::move(ts), bytes);
}

Expected<Metadata<Snapshot>> ParseSnapshot(const std::string& bytes, const std::string& what) {
  auto p = ParseRole<Snapshot>(bytes, what, "snapshot");
  if (!p) return p.error();
  auto& [envelope, snap] = *p;
  const json& s = envelope.doc["signed"];
  Reader r{what};
  auto meta = r.Object(s, "meta", "meta");
  if (!meta) return meta.error();
  for (const auto& [name, m] : (*meta)->items()) {
    auto info = ParseMetaInfo(m, "meta." + Printable(name), r);
    if (!info) return info.error();
    snap.meta[name] = *info;
  }
  return Wrap(std::move(envelope), std::move(snap), bytes);
}

Expected<Metadata<Targets>> ParseTargets(const std::string& bytes, const std::string& what) {
  auto p = ParseRole<Targets>(bytes, what, "targets");
  if (!p) return p.error();
  auto& [envelope, tg] = *p;
  const json& s = envelope.doc["signed"];
  Reader r{what};
  auto d = s.find("delegations");
  if (d != s.end() && !(d->is_object() && d->value("roles", json::array()).empty() &&
                        d->value("keys", json::object()).empty()))
    return VerificationError(what + ": delegations are not supported by os-update (sign every "
                                    "bundle with the top-level targets role)");
  auto targets = r.Object(s, "targets", "targets");
  if (!targets) return targets.error();
  for (const auto& [name, t] : (*targets)->items()) {
    const std::string path = "targets." + Printable(name);
    if (!t.is_object()) return r.Bad(path, "must be an object");
    TargetFile f;
    auto l = r.Count(t, "length", path + ".length", 0);
    if (!l) return l.error();
    f.length = *l;
    auto h = r.Object(t, "hashes", path + ".hashes");
    if (!h) return h.error();
    for (const auto& [alg, hex] : (*h)->items()) {
      if (!hex.is_string()) return r.Bad(path + ".hashes", "must hold strings");
      f.hashes[alg] = hex.get<std::string>();
    }
    if (f.hashes.empty()) return r.Bad(path + ".hashes", "is empty");
    auto custom = t.find("custom");
    if (custom != t.end() && custom->is_object()) {
      // Fields os-update does not know stay the publisher's; wrong types are refused.
      for (auto [key, field] : {std::pair{"version", &f.bundle.version},
                                {"compatible", &f.bundle.compatible},
                                {"min_version", &f.bundle.min_version},
                                {"manifest_sha256", &f.bundle.manifest_sha256}}) {
        if (!custom->contains(key)) continue;
        auto v = r.String(*custom, key, path + ".custom." + key);
        if (!v) return v.error();
        *field = *v;
      }
      if (custom->contains("rollout")) {
        auto ro = r.Object(*custom, "rollout", path + ".custom.rollout");
        if (!ro) return ro.error();
        auto pct = r.Count(**ro, "percent", path + ".custom.rollout.percent", 0);
        if (!pct) return pct.error();
        if (*pct > 100) return r.Bad(path + ".custom.rollout.percent", "must be at most 100");
        auto salt = r.String(**ro, "salt", path + ".custom.rollout.salt");
        if (!salt) return salt.error();
        f.bundle.rollout = Rollout{static_cast<unsigned>(*pct), *salt};
      }
    }
    tg.targets[name] = f;
  }
  return Wrap(std::move(envelope), std::move(tg), bytes);
}

Result VerifyThreshold(const Root& root, const std::string& role, const std::string& canonical,
                       const std::vector<SignatureEntry>& signatures, const std::string& what) {
  const KeyRole& kr = root.roles.at(role);
  std::set<std::pair<std::string, std::string>> counted;  // (keytype, public value)
  for (const auto& sig : signatures) {
    if (std::find(kr.keyids.begin(), kr.keyids.end(), sig.keyid) == kr.keyids.end()) continue;
    const TufPublicKey& key = root.keys.at(sig.keyid);
    auto ok = VerifyTufSignature(key, canonical, sig.sig);
    // A key this client cannot use is not a vote, as in python-tuf and tuf-js; the threshold
    // then decides.
    if (ok && *ok) counted.insert({key.keytype, key.value});
  }
  if (counted.size() >= kr.threshold) return {};
  return VerificationError(what + ": " + std::to_string(counted.size()) + " valid signature" +
                           (counted.size() == 1 ? "" : "s") + " of distinct " + role +
                           " keys, the threshold is " + std::to_string(kr.threshold));
}

}  // namespace osu::tuf
