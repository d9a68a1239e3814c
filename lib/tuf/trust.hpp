// The client workflow of TUF 1.0.x, section 5 "Detailed client workflow": root rotation
// N -> N+1 (each new root signed by the old root's threshold and its own), timestamp ->
// snapshot -> targets with lengths, hashes and versions, versions never going back, expiry of
// every role, consistent snapshots, an upper bound on every file fetched.
//
// The trust state lives in a directory outside both slots and only moves forward: it is
// written (atomically, file by file, root first) only after the whole refresh succeeded, so a
// refusal changes nothing there. Without a state the anchor is the root.json shipped in the
// image; with both, the one of higher version wins, so a re-flashed slot does not roll trust
// back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "tuf/metadata.hpp"

namespace osu::tuf {

// Where metadata comes from (an http base URL, a directory beside a bundle, a test).
class MetadataSource {
 public:
  virtual ~MetadataSource() = default;
  // The file `name` ("timestamp.json", "3.root.json"), at most `max_bytes`: a longer file is
  // a Verification error; nullopt when the source says it does not exist (HTTP 404, ENOENT).
  virtual Expected<std::optional<std::string>> Fetch(const std::string& name, uint64_t max_bytes) = 0;
  // For messages: where `name` is read from.
  virtual std::string Describe(const std::string& name) const = 0;
};

// The time expiry is judged against (see README, "Trust"): the newest of the system clock,
// the image's build time and the time of the last refresh accepted on this device. A system
// clock behind the other two is a stated fact (`warning`), never a silent pass.
struct Clock {
  int64_t system = 0;      // time(2)
  int64_t build_time = 0;  // the image's (0: unknown)
};
struct ClockUsed {
  int64_t now = 0;
  std::string source;   // "system", "build time", "last accepted refresh"
  std::string warning;  // "" when the system clock was used
};

struct Limits {
  uint64_t root = 512 * 1024;        // every N.root.json
  uint64_t timestamp = 16 * 1024;
  uint64_t snapshot = 2 * 1024 * 1024;  // when timestamp gives no length
  uint64_t targets = 8 * 1024 * 1024;   // when snapshot gives no length
  unsigned root_rotations = 32;         // per refresh (python-tuf's bound)
};

struct TrustOptions {
  std::string state_dir = "/var/lib/os-update/tuf";
  std::string anchor_root;  // root.json shipped in the image
  Clock clock;
  Limits limits;
  bool dry_run = false;     // verify, but do not write the state (tests, --check --dry-run)
};

struct Trusted {
  Metadata<Root> root;
  Metadata<Timestamp> timestamp;
  Metadata<Snapshot> snapshot;
  Metadata<Targets> targets;
  ClockUsed clock;
  uint64_t bytes_fetched = 0;
  unsigned requests = 0;
};

// Section 5.1-5.6. Errors: Verification (signatures, versions, hashes, expiry, too large),
// Source (the server), Usage (no anchor), Device (the state directory).
Expected<Trusted> Refresh(MetadataSource& source, const TrustOptions& options);

// The target `name` of the trusted targets; Verification error when it is not listed.
Expected<TargetFile> FindTarget(const Trusted& trusted, const std::string& name);

// A target's bytes against its entry: length, then sha256 (section 5.7.3). Verification error.
Result CheckTargetBytes(const TargetFile& target, const std::string& bytes, const std::string& what);

// Where a target is fetched from, relative to the metadata base: HASH.NAME under consistent
// snapshots (section 5.7.3), else NAME.
std::string TargetFileName(const Trusted& trusted, const std::string& name, const TargetFile& t);

}  // namespace osu::tuf
