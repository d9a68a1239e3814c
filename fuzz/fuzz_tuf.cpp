// TUF metadata from any bytes, as a device reads it from a server before any signature check:
// ParseRoot/ParseTimestamp/ParseSnapshot/ParseTargets. A document that parses must parse again,
// to the same fields and the same canonical bytes, when its canonical "signed" is wrapped in a
// new envelope (what a signer signs is what a verifier reads). Then VerifyThreshold with a
// fixed trusted root (the seed 1.root.json, whose keys signed the seeds, so mutations outside
// "signed" keep valid signatures) for the document's role, and a parsed root against itself.
// Property: a document passes the fixed root's threshold only if a seed with the same role and
// signed bytes passed it (no fuzzed keyid, signature list or key can forge a vote).
#include <dirent.h>

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>

#include "fuzz_check.hpp"
#include "tuf/metadata.hpp"

#ifndef OSU_FUZZ_DIR
#error "OSU_FUZZ_DIR must name the fuzz/ source directory"
#endif

namespace {

using namespace osu::tuf;

const char* const kSeeds = OSU_FUZZ_DIR "/corpus/fuzz_tuf";

bool Same(const Signed& a, const Signed& b) {
  return a.type == b.type && a.spec_version == b.spec_version && a.version == b.version &&
         a.expires == b.expires && a.expires_text == b.expires_text;
}
bool Same(const MetaInfo& a, const MetaInfo& b) {
  return a.version == b.version && a.length == b.length && a.hashes == b.hashes;
}
bool Same(const Root& a, const Root& b) {
  if (!Same(static_cast<const Signed&>(a), b) || a.consistent_snapshot != b.consistent_snapshot ||
      a.keys.size() != b.keys.size() || a.roles.size() != b.roles.size())
    return false;
  for (const auto& [id, k] : a.keys) {
    auto it = b.keys.find(id);
    if (it == b.keys.end() || it->second.keytype != k.keytype || it->second.scheme != k.scheme ||
        it->second.value != k.value)
      return false;
  }
  for (const auto& [name, r] : a.roles) {
    auto it = b.roles.find(name);
    if (it == b.roles.end() || it->second.keyids != r.keyids || it->second.threshold != r.threshold)
      return false;
  }
  return true;
}
bool Same(const Timestamp& a, const Timestamp& b) {
  return Same(static_cast<const Signed&>(a), b) && Same(a.snapshot, b.snapshot);
}
bool Same(const Snapshot& a, const Snapshot& b) {
  if (!Same(static_cast<const Signed&>(a), b) || a.meta.size() != b.meta.size()) return false;
  for (const auto& [name, m] : a.meta) {
    auto it = b.meta.find(name);
    if (it == b.meta.end() || !Same(m, it->second)) return false;
  }
  return true;
}
bool Same(const Targets& a, const Targets& b) {
  if (!Same(static_cast<const Signed&>(a), b) || a.targets.size() != b.targets.size()) return false;
  for (const auto& [name, t] : a.targets) {
    auto it = b.targets.find(name);
    if (it == b.targets.end()) return false;
    const TargetFile& u = it->second;
    const BundleFields &x = t.bundle, &y = u.bundle;
    if (t.length != u.length || t.hashes != u.hashes || x.version != y.version ||
        x.compatible != y.compatible || x.min_version != y.min_version ||
        x.manifest_sha256 != y.manifest_sha256 || x.rollout.has_value() != y.rollout.has_value())
      return false;
    if (x.rollout && (x.rollout->percent != y.rollout->percent || x.rollout->salt != y.rollout->salt))
      return false;
  }
  return true;
}

// The fixed trusted root, and the (role, signed bytes) pairs the seeds got past it.
struct Fixture {
  Root root;
  std::set<std::pair<std::string, std::string>> signed_by_seeds;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

Fixture* fixture = nullptr;

// Parses `bytes` as role T, checks the round trip and the threshold; returns whether it parsed.
template <class T, class Parse>
bool Exercise(Parse parse, const std::string& role, const std::string& bytes,
              std::set<std::pair<std::string, std::string>>* passed) {
  auto md = parse(bytes, "fuzz.json");
  if (!md) {
    osu::fuzz::Check(!md.error().message().empty(), "an error without a message");
    return false;
  }
  osu::fuzz::Check(md->bytes == bytes, "Metadata.bytes is not the input");
  osu::fuzz::Check(md->signed_.type == role, "parsed as " + role + " with _type " + md->signed_.type);
  // Canonical JSON escapes only '"' and '\' (as TUF's reference implementations sign), so a
  // string holding a control character is not JSON any more: no round trip for those.
  bool control = false;
  for (char c : md->canonical) control = control || static_cast<unsigned char>(c) < 0x20;
  if (!control) {
    const std::string again_bytes = "{\"signatures\":[],\"signed\":" + md->canonical + "}";
    auto again = parse(again_bytes, "canonical");
    if (!again) osu::fuzz::Fail("canonical form does not parse again: " + again.error().message());
    osu::fuzz::Check(again->canonical == md->canonical, "canonical form is not a fixed point");
    osu::fuzz::Check(Same(md->signed_, again->signed_), "canonical form parses to other fields");
  }
  const bool ok = static_cast<bool>(
      VerifyThreshold(fixture->root, role, md->canonical, md->signatures, "fuzz.json"));
  if (passed) {
    if (ok) passed->insert({role, md->canonical});
  } else if (ok) {
    osu::fuzz::Check(fixture->signed_by_seeds.count({role, md->canonical}) == 1,
                     role + " passed the fixed root's threshold with bytes no seed had signed");
  }
  if constexpr (std::is_same_v<T, Root>) {
    // Root N+1 is checked against itself too (section 5.3.5): keyids, keys and thresholds
    // all come from the input here.
    (void)VerifyThreshold(md->signed_, "root", md->canonical, md->signatures, "fuzz.json");
  }
  return true;
}

// One input: every role parser (the _type decides which accepts it).
int RunOne(const std::string& bytes, std::set<std::pair<std::string, std::string>>* passed) {
  int parsed = 0;
  parsed += Exercise<Root>(ParseRoot, "root", bytes, passed);
  parsed += Exercise<Timestamp>(ParseTimestamp, "timestamp", bytes, passed);
  parsed += Exercise<Snapshot>(ParseSnapshot, "snapshot", bytes, passed);
  parsed += Exercise<Targets>(ParseTargets, "targets", bytes, passed);
  osu::fuzz::Check(parsed <= 1, "one document parsed as two roles");
  return parsed;
}

}  // namespace

// The fixed root, and a self-test: every seed parses, and the four roles' seeds pass the
// threshold (otherwise the signature path would go unfuzzed).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto root = ParseRoot(ReadAll(std::string(kSeeds) + "/1.root.json"), "seed 1.root.json");
  if (!root) osu::fuzz::Fail("self-test: " + root.error().message());
  fixture = new Fixture{root->signed_, {}};
  DIR* dir = opendir(kSeeds);
  osu::fuzz::Check(dir != nullptr, std::string("self-test: no ") + kSeeds);
  while (const dirent* e = readdir(dir)) {
    const std::string name = e->d_name;
    if (name[0] == '.') continue;
    osu::fuzz::Check(RunOne(ReadAll(std::string(kSeeds) + "/" + name), &fixture->signed_by_seeds) == 1,
                     "self-test: seed " + name + " does not parse");
  }
  closedir(dir);
  for (const char* role : {"root", "timestamp", "snapshot", "targets"}) {
    bool found = false;
    for (const auto& p : fixture->signed_by_seeds) found = found || p.first == role;
    osu::fuzz::Check(found, std::string("self-test: no seed passes the ") + role + " threshold");
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)RunOne(std::string(reinterpret_cast<const char*>(data), size), nullptr);
  return 0;
}
