#include "install/tuf_release.hpp"

#include <sys/stat.h>

#include <cctype>

#include "common/fd.hpp"
#include "common/text.hpp"
#include "crypto/sha256.hpp"
#include "tuf/uri_source.hpp"

namespace osu {
namespace {

// The image's build time: tuf.build_time, else the shipped root's modification time.
Expected<int64_t> BuildTime(const Config& config) {
  if (!config.tuf_build_time.empty()) {
    auto t = tuf::ParseUtcTime(config.tuf_build_time);
    if (!t) return UsageError("config '" + config.path + "': tuf.build_time must be of the form 2026-01-31T00:00:00Z");
    return *t;
  }
  struct stat st {};
  if (::stat(config.tuf_root.c_str(), &st) != 0)
    return ErrnoError("TUF anchor '" + config.tuf_root + "' (tuf.root)", errno, ErrorKind::Usage);
  return static_cast<int64_t>(st.st_mtime);
}

}  // namespace

Expected<TufRelease> ResolveTufRelease(const Config& config, const std::string& bundle_uri,
                                       const SourceOptions& options, int64_t system_time) {
  tuf::TrustOptions o;
  o.anchor_root = config.tuf_root;
  o.state_dir = config.tuf_state_dir;
  o.clock.system = system_time;
  auto build = BuildTime(config);
  if (!build) return build.error();
  o.clock.build_time = *build;
  tuf::UriMetadataSource source(tuf::MetadataBaseOf(bundle_uri), options);
  auto trusted = tuf::Refresh(source, o);
  if (!trusted) return trusted.error();
  const std::string name = BaseName(bundle_uri);
  auto target = tuf::FindTarget(*trusted, name);
  if (!target) return target.error();
  const std::string file = tuf::TargetFileName(*trusted, name, *target);
  return TufRelease{std::move(trusted).value(), name, *target, source.Uri(file)};
}

bool InRollout(const tuf::Rollout& rollout, const std::string& machine_id, unsigned* bucket) {
  const std::string digest = Sha256Hex(rollout.salt + ":" + machine_id);
  uint64_t v = std::stoull(digest.substr(0, 16), nullptr, 16);
  *bucket = static_cast<unsigned>(v % 100);
  return *bucket < rollout.percent;
}

RolloutVerdict JudgeRollout(const Config& config, const tuf::BundleFields& f) {
  RolloutVerdict v;
  if (!f.rollout || f.rollout->percent >= 100) return v;
  const tuf::Rollout& ro = *f.rollout;
  auto id = ReadFile(config.machine_id_path);
  std::string machine_id = id ? *id : "";
  while (!machine_id.empty() && std::isspace(static_cast<unsigned char>(machine_id.back()))) machine_id.pop_back();
  const std::string pct = std::to_string(ro.percent) + "%";
  if (machine_id.empty()) {
    v.held = true;
    v.reason = f.version + " is held back: rolled out to " + pct + " of devices and this one has no id (" +
               config.machine_id_path + "), so it waits for 100%";
    v.warning = "no machine id in " + config.machine_id_path;
    return v;
  }
  unsigned bucket = 0;
  v.held = !InRollout(ro, machine_id, &bucket);
  v.reason = v.held ? f.version + " is held back: rolled out to " + pct + " of devices, this one is at " +
                          std::to_string(bucket) + "% (sha256 of the salt and its machine id)"
                    : " (rollout " + pct + ", this device at " + std::to_string(bucket) + "%)";
  return v;
}

Expected<CheckResult> CheckTufRelease(const SystemState& state, const TufRelease& release) {
  const tuf::BundleFields& f = release.target.bundle;
  const std::string what = "target '" + Printable(release.target_name) + "'";
  if (f.version.empty() || f.compatible.empty())
    return VerificationError(what + ": custom.version and custom.compatible are required");
  Manifest m;
  m.version = f.version;
  m.compatible = f.compatible;
  if (!f.min_version.empty()) m.min_version = f.min_version;
  auto result = JudgeRelease(state, m, release.bundle_uri);
  if (!result) return result.error();
  result->warning = release.trusted.clock.warning;
  if (!result->update_available) return result;
  const RolloutVerdict v = JudgeRollout(state.config, f);
  if (!v.warning.empty()) result->warning += std::string(result->warning.empty() ? "" : "; ") + v.warning;
  if (v.held) {
    result->update_available = false;
    result->reason = v.reason;
  } else {
    result->reason += v.reason;
  }
  return result;
}

}  // namespace osu
