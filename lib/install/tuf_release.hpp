// A bundle as a TUF target (README "Trust"): with tuf.root set, the release on offer is the
// target named like the bundle in the verified targets metadata of update.server, and what
// --check says comes from its signed custom fields (version, compatible, min_version,
// rollout) after a few kilobytes of metadata, without touching the bundle.
#pragma once

#include <string>

#include "install/apply.hpp"
#include "source/source.hpp"
#include "tuf/trust.hpp"

namespace osu {

struct TufRelease {
  tuf::Trusted trusted;
  std::string target_name;  // the bundle's file name, as listed in targets.json
  tuf::TargetFile target;
  std::string bundle_uri;   // where its bytes are (HASH.NAME under consistent snapshots)
};

// Refreshes the trust state from the metadata beside `bundle_uri` and finds its target.
Expected<TufRelease> ResolveTufRelease(const Config& config, const std::string& bundle_uri,
                                       const SourceOptions& options, int64_t system_time);

// --check's answer for the target: JudgeRelease on its fields, then the rollout.
Expected<CheckResult> CheckTufRelease(const SystemState& state, const TufRelease& release);

// A target's rollout judged for this device: `held` with the reason (no machine id: held until
// 100%, with a warning); else `reason` is the suffix saying where the device stands ("" without
// a rollout). --check reports it; --apply refuses a held release unless --ignore-rollout.
struct RolloutVerdict {
  bool held = false;
  std::string reason, warning;
};
RolloutVerdict JudgeRollout(const Config& config, const tuf::BundleFields& fields);

// Whether a device with `machine_id` is inside the rollout: the first 8 bytes of
// sha256(salt ":" machine_id), big-endian, mod 100, below the percentage.
bool InRollout(const tuf::Rollout& rollout, const std::string& machine_id, unsigned* bucket);

}  // namespace osu
