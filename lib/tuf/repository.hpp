// A TUF repository as a directory the publisher owns (README "Trust", "Keys offline"): the
// commands that write a role's "signed" part leave its signatures empty, and each key holder
// adds theirs with SignMetadataFile on their own machine; only `Publish` signs, with the online
// snapshot and timestamp keys. Under consistent snapshots the files the devices read are
// N.root.json, V.snapshot.json, V.targets.json and SHA256.NAME (spec 1.0.x section 5).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "crypto/tuf_key.hpp"
#include "tuf/metadata.hpp"

namespace osu::tuf {

// A role's keys as root lists them; given for every role by Init, for the changed ones by
// Rotate (an empty `keys` there leaves the role as it was).
struct RoleKeys {
  std::vector<TufPublicKey> keys;
  uint64_t threshold = 1;
};

struct RepositoryTimes {
  int64_t now = 0;
  int64_t root_days = 365, targets_days = 90, snapshot_days = 7, timestamp_days = 1;
};

// Writes 1.root.json (keys and thresholds of the four roles) and targets.json v1 (no targets),
// both unsigned. Refuses a directory that already holds a 1.root.json.
Result InitRepository(const std::string& dir, const std::map<std::string, RoleKeys>& roles,
                      bool consistent_snapshot, const RepositoryTimes& times);

// A bundle as a target entry (name, length and sha256 of the whole file, the custom fields).
struct TargetEntry {
  std::string name;
  uint64_t length = 0;
  std::string sha256;
  BundleFields bundle;
};

// targets.json with `entries` added or replaced, version + 1, expiry renewed, signatures
// cleared (they covered the old "signed"). No entries: only the new version and expiry (after
// a rotation of the targets keys, or before targets.json expires). Returns the new version.
Expected<uint64_t> AddTargets(const std::string& dir, const std::vector<TargetEntry>& entries,
                              const RepositoryTimes& times);

// Links (else copies) `file` into `dir` under the name devices fetch: SHA256.NAME under the
// newest root's consistent snapshots, else NAME.
Result PlaceTarget(const std::string& dir, const std::string& file, const TargetEntry& entry);

// N+1.root.json: the newest root with `changes` applied to its roles (keys no role lists any
// more are dropped), version + 1, expiry renewed, unsigned. The newest root must already carry
// its threshold of signatures. Returns N+1.
Expected<uint64_t> RotateRoot(const std::string& dir, const std::map<std::string, RoleKeys>& changes,
                              const RepositoryTimes& times);

struct Published {
  uint64_t root = 0, targets = 0, snapshot = 0, timestamp = 0;
  bool new_snapshot = false;
};

// What CI runs with the online keys (PEM private keys of the snapshot and/or timestamp roles):
// checks that the newest root is signed by its own threshold and its predecessor's and that
// targets.json meets its threshold, then writes a new snapshot (only when targets changed or
// the old one would expire before the new timestamp) and a new timestamp, both signed, the
// consistent-snapshot copies, and root.json (a copy of the newest N.root.json).
Expected<Published> Publish(const std::string& dir, const std::vector<std::string>& online_keys,
                            const RepositoryTimes& times);

}  // namespace osu::tuf
