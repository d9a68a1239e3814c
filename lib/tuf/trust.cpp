#include "tuf/trust.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "common/fd.hpp"
#include "common/text.hpp"
#include "crypto/sha256.hpp"

namespace osu::tuf {
namespace {

constexpr const char* kClockFile = "accepted-at";

// A local copy: absent, or its bytes (an unreadable state file is a Device error).
Expected<std::optional<std::string>> ReadState(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::optional<std::string>();
  auto bytes = ReadFile(path);
  if (!bytes) return bytes.error();
  return std::optional<std::string>(std::move(bytes).value());
}

ClockUsed ChooseTime(const Clock& clock, int64_t accepted_at) {
  ClockUsed c{clock.system, "system", ""};
  if (clock.build_time > c.now) c = {clock.build_time, "build time", ""};
  if (accepted_at > c.now) c = {accepted_at, "last accepted refresh", ""};
  if (c.source != "system")
    c.warning = "system clock (" + FormatUtcTime(clock.system) + ") is behind the " + c.source +
                " (" + FormatUtcTime(c.now) + "): expiry judged at the latter";
  return c;
}

Result CheckExpiry(const Signed& s, const std::string& what, const ClockUsed& clock) {
  if (s.expires > clock.now) return {};
  return VerificationError(what + " expired at " + s.expires_text + " (now " +
                           FormatUtcTime(clock.now) + " by the " + clock.source +
                           "): a freeze or an unmaintained repository");
}

// Length and hashes the referring role gave for a file (section 5.5.2, 5.6.2).
Result CheckMetaInfo(const std::string& bytes, const MetaInfo& info, const std::string& what) {
  if (info.length && bytes.size() != *info.length)
    return VerificationError(what + ": " + std::to_string(bytes.size()) + " bytes, expected " +
                             std::to_string(*info.length));
  for (const auto& [alg, hex] : info.hashes) {
    if (alg != "sha256") continue;  // the others are not computed; sha256 is required below
    if (Sha256Hex(bytes) != hex)
      return VerificationError(what + ": sha256 does not match the one its referrer lists");
  }
  if (!info.hashes.empty() && !info.hashes.count("sha256"))
    return VerificationError(what + ": its referrer lists no sha256 (only sha256 is checked)");
  return {};
}

struct Fetcher {
  MetadataSource& source;
  uint64_t bytes = 0;
  unsigned requests = 0;
  Expected<std::optional<std::string>> Get(const std::string& name, uint64_t max) {
    ++requests;
    auto r = source.Fetch(name, max);
    if (r && *r) bytes += (*r)->size();
    return r;
  }
  Expected<std::string> Need(const std::string& name, uint64_t max) {
    auto r = Get(name, max);
    if (!r) return r.error();
    if (!*r) return SourceError(source.Describe(name) + ": not found");
    return std::move(**r);
  }
};

bool SameKeys(const Root& a, const Root& b, const std::string& role) {
  auto keys = [](const Root& r, const std::string& name) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& id : r.roles.at(name).keyids) out.push_back({r.keys.at(id).keytype, r.keys.at(id).value});
    std::sort(out.begin(), out.end());
    return out;
  };
  return keys(a, role) == keys(b, role) && a.roles.at(role).threshold == b.roles.at(role).threshold;
}

// The trusted root (5.2): the image's anchor or the state's, whichever is newer. Each must
// be signed by its own threshold; a state root that is not is an error, not a reset.
Expected<Metadata<Root>> LoadTrustedRoot(const TrustOptions& o) {
  auto anchor_bytes = ReadFile(o.anchor_root, ErrorKind::Usage);
  if (!anchor_bytes) return anchor_bytes.error().Context("TUF anchor (tuf.root)");
  auto anchor = ParseRoot(*anchor_bytes, o.anchor_root);
  if (!anchor) return anchor.error();
  if (auto r = VerifyThreshold(anchor->signed_, "root", anchor->canonical, anchor->signatures,
                               o.anchor_root);
      !r)
    return r.error();
  auto state = ReadState(o.state_dir, "root.json");
  if (!state) return state.error();
  if (!*state) return anchor;
  const std::string what = o.state_dir + "/root.json";
  auto local = ParseRoot(**state, what);
  if (!local) return local.error().Context("trust state (remove " + o.state_dir + " to start again from the image's root)");
  if (auto r = VerifyThreshold(local->signed_, "root", local->canonical, local->signatures, what); !r)
    return r.error();
  return local->signed_.version >= anchor->signed_.version ? std::move(local).value()
                                                           : std::move(anchor).value();
}

// A local copy of `role`, if it parses and the trusted root's role signed it; else nothing
// (python-tuf and tuf-js ignore a local copy that does not load the same way).
template <class T, class Parse>
std::optional<Metadata<T>> LoadLocal(const TrustOptions& o, const Root& root, const std::string& role,
                                     Parse parse) {
  auto bytes = ReadState(o.state_dir, role + ".json");
  if (!bytes || !*bytes) return std::nullopt;
  auto m = parse(**bytes, o.state_dir + "/" + role + ".json");
  if (!m) return std::nullopt;
  if (!VerifyThreshold(root, role, m->canonical, m->signatures, "")) return std::nullopt;
  return std::move(m).value();
}

}  // namespace

Expected<Trusted> Refresh(MetadataSource& source, const TrustOptions& o) {
  Fetcher fetch{source};
  // 5.1: the time of this update, fixed.
  int64_t accepted_at = 0;
  if (auto c = ReadState(o.state_dir, kClockFile); c && *c) accepted_at = std::atoll((*c)->c_str());
  const ClockUsed clock = ChooseTime(o.clock, accepted_at);

  // 5.2, 5.3: the root chain, one version at a time.
  auto trusted_root = LoadTrustedRoot(o);
  if (!trusted_root) return trusted_root.error();
  Metadata<Root> root = std::move(trusted_root).value();
  const Root first_root = root.signed_;
  for (unsigned i = 0; i < o.limits.root_rotations; ++i) {
    const std::string name = std::to_string(root.signed_.version + 1) + ".root.json";
    const std::string what = source.Describe(name);
    auto bytes = fetch.Get(name, o.limits.root);
    if (!bytes) return bytes.error();
    if (!*bytes) break;
    auto next = ParseRoot(**bytes, what);
    if (!next) return next.error();
    if (auto r = VerifyThreshold(root.signed_, "root", next->canonical, next->signatures,
                                 what + " (by the trusted root v" + std::to_string(root.signed_.version) + ")");
        !r)
      return r.error();
    if (auto r = VerifyThreshold(next->signed_, "root", next->canonical, next->signatures,
                                 what + " (by its own keys)");
        !r)
      return r.error();
    if (next->signed_.version != root.signed_.version + 1)
      return VerificationError(what + ": version " + std::to_string(next->signed_.version) +
                               ", expected " + std::to_string(root.signed_.version + 1));
    root = std::move(next).value();
  }
  if (auto r = CheckExpiry(root.signed_, "root.json v" + std::to_string(root.signed_.version), clock); !r)
    return r.error();
  const Root& R = root.signed_;

  // 5.3.11: rotated timestamp or snapshot keys make the local copies worthless (this is how a
  // fast-forward attack is recovered from).
  const bool rotated = !SameKeys(first_root, R, "timestamp") || !SameKeys(first_root, R, "snapshot");
  auto local_ts = rotated ? std::nullopt : LoadLocal<Timestamp>(o, R, "timestamp", ParseTimestamp);
  auto local_snap = rotated ? std::nullopt : LoadLocal<Snapshot>(o, R, "snapshot", ParseSnapshot);
  auto local_targets = LoadLocal<Targets>(o, R, "targets", ParseTargets);

  // 5.4: timestamp.
  const std::string ts_what = source.Describe("timestamp.json");
  auto ts_bytes = fetch.Need("timestamp.json", o.limits.timestamp);
  if (!ts_bytes) return ts_bytes.error();
  auto ts = ParseTimestamp(*ts_bytes, ts_what);
  if (!ts) return ts.error();
  if (auto r = VerifyThreshold(R, "timestamp", ts->canonical, ts->signatures, ts_what); !r) return r.error();
  if (local_ts) {
    const auto& old = local_ts->signed_;
    if (ts->signed_.version < old.version)
      return VerificationError(ts_what + ": version " + std::to_string(ts->signed_.version) +
                               " is older than the trusted " + std::to_string(old.version) + " (rollback)");
    if (ts->signed_.snapshot.version < old.snapshot.version)
      return VerificationError(ts_what + ": lists snapshot version " + std::to_string(ts->signed_.snapshot.version) +
                               ", older than the trusted " + std::to_string(old.snapshot.version) + " (rollback)");
    // An equal version keeps the trusted copy (5.4.3.1), whose expiry then decides.
    if (ts->signed_.version == old.version) ts = std::move(*local_ts);
  }
  if (auto r = CheckExpiry(ts->signed_, "timestamp.json v" + std::to_string(ts->signed_.version), clock); !r)
    return r.error();
  const MetaInfo& snap_info = ts->signed_.snapshot;

  // 5.5: snapshot. The local copy serves when it is the one the timestamp names.
  const std::string snap_name =
      R.consistent_snapshot ? std::to_string(snap_info.version) + ".snapshot.json" : "snapshot.json";
  const std::string snap_what = source.Describe(snap_name);
  std::optional<Metadata<Snapshot>> snap;
  if (local_snap && local_snap->signed_.version == snap_info.version &&
      CheckMetaInfo(local_snap->bytes, snap_info, ""))
    snap = *local_snap;
  if (!snap) {
    auto bytes = fetch.Need(snap_name, snap_info.length.value_or(o.limits.snapshot));
    if (!bytes) return bytes.error();
    if (auto r = CheckMetaInfo(*bytes, snap_info, snap_what); !r) return r.error();
    auto parsed = ParseSnapshot(*bytes, snap_what);
    if (!parsed) return parsed.error();
    if (auto r = VerifyThreshold(R, "snapshot", parsed->canonical, parsed->signatures, snap_what); !r)
      return r.error();
    if (parsed->signed_.version != snap_info.version)
      return VerificationError(snap_what + ": version " + std::to_string(parsed->signed_.version) +
                               ", the timestamp names " + std::to_string(snap_info.version) + " (mix-and-match)");
    if (local_snap)
      for (const auto& [name, old] : local_snap->signed_.meta) {
        auto it = parsed->signed_.meta.find(name);
        if (it == parsed->signed_.meta.end())
          return VerificationError(snap_what + ": no longer lists " + Printable(name) + " (rollback)");
        if (it->second.version < old.version)
          return VerificationError(snap_what + ": " + Printable(name) + " version " + std::to_string(it->second.version) +
                                   " is older than the trusted " + std::to_string(old.version) + " (rollback)");
      }
    snap = std::move(parsed).value();
  }
  if (auto r = CheckExpiry(snap->signed_, "snapshot.json v" + std::to_string(snap->signed_.version), clock); !r)
    return r.error();
  for (const auto& [name, info] : snap->signed_.meta)
    if (name != "targets.json")
      return VerificationError(snap_what + ": lists " + Printable(name) +
                               ": delegated roles are not supported by os-update");
  auto tinfo = snap->signed_.meta.find("targets.json");
  if (tinfo == snap->signed_.meta.end()) return VerificationError(snap_what + ": lists no targets.json");

  // 5.6: targets.
  const std::string tg_name = R.consistent_snapshot
                                  ? std::to_string(tinfo->second.version) + ".targets.json"
                                  : "targets.json";
  const std::string tg_what = source.Describe(tg_name);
  std::optional<Metadata<Targets>> targets;
  if (local_targets && local_targets->signed_.version == tinfo->second.version &&
      CheckMetaInfo(local_targets->bytes, tinfo->second, ""))
    targets = *local_targets;
  if (!targets) {
    auto bytes = fetch.Need(tg_name, tinfo->second.length.value_or(o.limits.targets));
    if (!bytes) return bytes.error();
    if (auto r = CheckMetaInfo(*bytes, tinfo->second, tg_what); !r) return r.error();
    auto parsed = ParseTargets(*bytes, tg_what);
    if (!parsed) return parsed.error();
    if (auto r = VerifyThreshold(R, "targets", parsed->canonical, parsed->signatures, tg_what); !r)
      return r.error();
    if (parsed->signed_.version != tinfo->second.version)
      return VerificationError(tg_what + ": version " + std::to_string(parsed->signed_.version) +
                               ", the snapshot names " + std::to_string(tinfo->second.version) + " (mix-and-match)");
    targets = std::move(parsed).value();
  }
  if (auto r = CheckExpiry(targets->signed_, "targets.json v" + std::to_string(targets->signed_.version), clock); !r)
    return r.error();

  Trusted t{std::move(root), std::move(*ts), std::move(*snap), std::move(*targets), clock,
            fetch.bytes, fetch.requests};
  if (o.dry_run) return t;
  // All verified: the state moves forward, root first (a cut between files leaves a newer
  // root with older copies, which the next refresh handles as after a rotation).
  if (auto r = MakeDirectories(o.state_dir); !r) return r.error();
  for (auto [name, bytes] : {std::pair{"root.json", &t.root.bytes}, {"timestamp.json", &t.timestamp.bytes},
                             {"snapshot.json", &t.snapshot.bytes}, {"targets.json", &t.targets.bytes}})
    if (auto r = InstallFile(o.state_dir + "/" + name, *bytes); !r) return r.error();
  if (auto r = InstallFile(o.state_dir + "/" + kClockFile, std::to_string(clock.now) + "\n"); !r)
    return r.error();
  return t;
}

Expected<TargetFile> FindTarget(const Trusted& trusted, const std::string& name) {
  auto it = trusted.targets.signed_.targets.find(name);
  if (it == trusted.targets.signed_.targets.end())
    return VerificationError("'" + Printable(name) + "' is not listed in the signed targets (targets.json v" +
                             std::to_string(trusted.targets.signed_.version) + ")");
  if (!it->second.hashes.count("sha256"))
    return VerificationError("target '" + Printable(name) + "' lists no sha256");
  return it->second;
}

Result CheckTargetBytes(const TargetFile& target, const std::string& bytes, const std::string& what) {
  if (bytes.size() != target.length)
    return VerificationError(what + ": " + std::to_string(bytes.size()) + " bytes, its target entry says " +
                             std::to_string(target.length));
  if (Sha256Hex(bytes) != target.hashes.at("sha256"))
    return VerificationError(what + ": sha256 does not match its target entry");
  return {};
}

std::string TargetFileName(const Trusted& trusted, const std::string& name, const TargetFile& t) {
  if (!trusted.root.signed_.consistent_snapshot) return name;
  auto slash = name.find_last_of('/');
  std::string dir = slash == std::string::npos ? "" : name.substr(0, slash + 1);
  return dir + t.hashes.at("sha256") + "." + name.substr(slash == std::string::npos ? 0 : slash + 1);
}

}  // namespace osu::tuf
