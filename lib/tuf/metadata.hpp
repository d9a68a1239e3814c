// TUF 1.0.x metadata (theupdateframework/specification): the four top-level roles parsed
// from their JSON, and the check that a role's threshold of keys signed it. Parsing refuses
// what this first version does not speak (delegations, another spec major version) with a
// one-line Verification error naming the file.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "crypto/tuf_key.hpp"

namespace osu::tuf {

struct Signed {
  std::string type;          // "_type": root, timestamp, snapshot, targets
  std::string spec_version;  // "1.0.x" (major 1 only)
  uint64_t version = 0;      // >= 1
  int64_t expires = 0;       // seconds since the epoch (UTC)
  std::string expires_text;  // as written, "2030-01-01T00:00:00Z"
};

struct KeyRole {
  std::vector<std::string> keyids;
  uint64_t threshold = 1;
};

struct Root : Signed {
  bool consistent_snapshot = false;
  std::map<std::string, TufPublicKey> keys;  // by keyid
  std::map<std::string, KeyRole> roles;      // root, timestamp, snapshot, targets
};

struct MetaInfo {
  uint64_t version = 0;
  std::optional<uint64_t> length;
  std::map<std::string, std::string> hashes;  // algorithm -> hex; only sha256/sha512 known
};

struct Timestamp : Signed {
  MetaInfo snapshot;  // meta["snapshot.json"]
};

struct Snapshot : Signed {
  std::map<std::string, MetaInfo> meta;  // "targets.json" (delegated roles refused)
};

// A rollout: a device takes the target when (hash of its id and salt) mod 100 < percent.
struct Rollout {
  unsigned percent = 100;
  std::string salt;
};

// What os-update reads of a target's "custom": a bundle's identity and policy.
struct BundleFields {
  std::string version, compatible, min_version;
  std::string manifest_sha256;  // sha256 of the bundle's manifest member (checked first)
  std::optional<Rollout> rollout;
};

struct TargetFile {
  uint64_t length = 0;
  std::map<std::string, std::string> hashes;
  BundleFields bundle;
};

struct Targets : Signed {
  std::map<std::string, TargetFile> targets;  // by target path
};

struct SignatureEntry {
  std::string keyid;
  std::string sig;  // raw bytes (the file holds hex)
};

template <class T>
struct Metadata {
  T signed_;
  std::vector<SignatureEntry> signatures;
  std::string canonical;  // canonical JSON of "signed": what the signatures cover
  std::string bytes;      // the file as fetched (stored as is)
};

// `what` names the file in errors ("timestamp.json from http://...").
Expected<Metadata<Root>> ParseRoot(const std::string& bytes, const std::string& what);
Expected<Metadata<Timestamp>> ParseTimestamp(const std::string& bytes, const std::string& what);
Expected<Metadata<Snapshot>> ParseSnapshot(const std::string& bytes, const std::string& what);
Expected<Metadata<Targets>> ParseTargets(const std::string& bytes, const std::string& what);

// Whether `role` of `root` signed `canonical` with at least its threshold of distinct keys: a
// keyid, and a key listed under two keyids, count once. Error names what is short.
Result VerifyThreshold(const Root& root, const std::string& role, const std::string& canonical,
                       const std::vector<SignatureEntry>& signatures, const std::string& what);

// "2030-01-01T00:00:00Z" -> seconds since the epoch; nullopt for any other form.
std::optional<int64_t> ParseUtcTime(const std::string& text);
std::string FormatUtcTime(int64_t t);

}  // namespace osu::tuf
