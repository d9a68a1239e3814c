// TUF mode of --check (README "Trust"): a repository written here, signed with real keys one
// role at a time (os-update-bundle tuf sign), served by nginx on 127.0.0.1. --check reads the
// metadata only, answers from the target's signed fields, holds a staged rollout back, and a
// refusal changes nothing in the trust state. The workflow itself is judged against tuf-js
// in test/tuf (shell test tuf_differential).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <sstream>
#include <thread>

#include "crypto/sha256.hpp"
#include "crypto/tuf_key.hpp"
#include "support/device.hpp"
#include "support/nginx.hpp"
#include "support/support.hpp"
#include "tuf/canonical.hpp"
#include "tuf/metadata.hpp"
#include "tuf/tooling.hpp"

using namespace osu::test;
using nlohmann::json;

namespace {

std::string In(int64_t seconds) {
  return osu::tuf::FormatUtcTime(static_cast<int64_t>(std::time(nullptr)) + seconds);
}

// A TUF repository in `dir`: one key per role, metadata written and signed role by role.
struct Repo {
  std::string dir, keys;
  std::map<std::string, std::string> key_paths, key_ids;
  json key_objects = json::object();
  Repo(const std::string& d, const std::string& k) : dir(d), keys(k) {
    std::filesystem::create_directories(dir);
    std::filesystem::create_directories(keys);
    for (const char* role : {"root", "timestamp", "snapshot", "targets"}) {
      const std::string p = keys + "/" + role + ".pem";
      REQUIRE(osu::GenerateTufKey(p, "ed25519"));
      auto pub = osu::TufPublicKeyOf(p);
      REQUIRE(pub);
      key_paths[role] = p;
      key_ids[role] = osu::tuf::KeyId(*pub);
      key_objects[key_ids[role]] = json::parse(osu::tuf::KeyJson(*pub));
    }
  }
  void Sign(const std::string& file, const std::string& role) {
    auto r = RunBundle({"tuf", "sign", dir + "/" + file, "--key", key_paths[role]});
    INFO(r.err);
    REQUIRE(r.code == 0);
  }
  void Put(const std::string& file, const json& signed_, const std::string& role) {
    WriteFile(dir + "/" + file, json{{"signed", signed_}, {"signatures", json::array()}}.dump(1));
    Sign(file, role);
  }
  void Root(int version = 1) {
    json roles = json::object();
    for (const auto& [role, id] : key_ids) roles[role] = {{"keyids", {id}}, {"threshold", 1}};
    Put(std::to_string(version) + ".root.json",
        {{"_type", "root"}, {"spec_version", "1.0.31"}, {"version", version}, {"expires", In(365 * 86400)},
         {"consistent_snapshot", false}, {"keys", key_objects}, {"roles", roles}},
        "root");
  }
  // targets, snapshot and timestamp of the given versions, listing eos.osu with `custom`.
  void Release(int version, const json& custom, const std::string& bundle, int64_t ts_expires = 86400) {
    Put("targets.json",
        {{"_type", "targets"}, {"spec_version", "1.0.31"}, {"version", version}, {"expires", In(30 * 86400)},
         {"targets", {{"eos.osu", {{"length", bundle.size()}, {"hashes", {{"sha256", osu::Sha256Hex(bundle)}}}, {"custom", custom}}}}}},
        "targets");
    Put("snapshot.json",
        {{"_type", "snapshot"}, {"spec_version", "1.0.31"}, {"version", version}, {"expires", In(7 * 86400)},
         {"meta", {{"targets.json", {{"version", version}}}}}},
        "snapshot");
    const std::string snap = ReadFile(dir + "/snapshot.json");
    Put("timestamp.json",
        {{"_type", "timestamp"}, {"spec_version", "1.0.31"}, {"version", version}, {"expires", In(ts_expires)},
         {"meta", {{"snapshot.json", {{"version", version}, {"length", snap.size()}, {"hashes", {{"sha256", osu::Sha256Hex(snap)}}}}}}}},
        "timestamp");
  }
};

// Every file of the state directory with its content ("" when the directory is absent).
std::string StateOf(const std::string& dir) {
  std::string out;
  if (!std::filesystem::exists(dir)) return out;
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().string());
  std::sort(names.begin(), names.end());
  for (const auto& n : names) out += n + "\n" + ReadFile(n) + "\n";
  return out;
}

// Root v1 of the repository in t/repo, as shipped in the image (t/anchor.json).
std::string ShipRoot(const TempDir& t) {
  const std::string anchor = t / "anchor.json";
  std::filesystem::copy_file(t / "repo/1.root.json", anchor);
  return anchor;
}

// `tuf verify` of eos.osu in t/repo from `anchor`, trust state in t/state.
std::vector<std::string> VerifyArgs(const TempDir& t, const std::string& anchor) {
  return {"tuf", "verify", "--root", anchor, "--state", t / "state", "--base", t / "repo", "--target", "eos.osu"};
}

}  // namespace

TEST_CASE("tuf: --check over http reads only metadata and answers from the signed target", "[tuf][http]") {
  FakeDevice d;
  NginxServer nginx;
  Repo repo(nginx.root(), d.path("tuf-keys"));
  repo.Root();
  const std::string bundle = "not even a bundle: --check never reads it\n";
  WriteFile(nginx.root() + "/eos.osu", bundle);
  WriteFile(d.path("os-release"), "IMAGE_VERSION=1.0\n");
  WriteFile(d.path("machine-id"), "0123456789abcdef0123456789abcdef\n");
  std::filesystem::copy_file(nginx.root() + "/1.root.json", d.path("root.json"));
  const std::string state = d.path("var/tuf");
  d.WriteConfig("  machine_id: " + d.path("machine-id") + "\ntuf:\n  root: " + d.path("root.json") +
                "\n  state_dir: " + state + "\n");
  const std::vector<std::string> check = {"--config", d.config(), "--check", nginx.Url("eos.osu"), "--json"};

  SECTION("an update, then the same metadata again, then a rolled-back timestamp refused") {
    repo.Release(2, {{"version", "2.0"}, {"compatible", "demo-x86_64"}}, bundle);
    auto r = RunUpdate(check);
    INFO(r.out << r.err);
    REQUIRE(r.code == 100);
    auto line = json::parse(r.out);
    CHECK(line["available"] == "2.0");
    CHECK(line["update_available"] == true);
    CHECK(FileExists(state + "/timestamp.json"));
    // nginx's log: what the check asked for, and never the bundle.
    std::string log = nginx.AccessLog();
    for (int i = 0; i < 50 && log.find("/targets.json") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      log = nginx.AccessLog();
    }
    INFO(log);
    CHECK(log.find("GET /eos.osu") == std::string::npos);
    CHECK(log.find("GET /2.root.json") != std::string::npos);
    CHECK(log.find("GET /timestamp.json") != std::string::npos);

    const std::string accepted = StateOf(state);
    repo.Release(1, {{"version", "3.0"}, {"compatible", "demo-x86_64"}}, bundle);
    auto back = RunUpdate(check);
    INFO(back.out << back.err);
    CHECK(back.code == 2);
    CHECK(back.err.find("rollback") != std::string::npos);
    CHECK(StateOf(state) == accepted);
  }
  SECTION("an expired timestamp is refused and the state is not created") {
    repo.Release(2, {{"version", "2.0"}, {"compatible", "demo-x86_64"}}, bundle, -60);
    auto r = RunUpdate(check);
    INFO(r.out << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find("timestamp.json v2 expired") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(state));
  }
  SECTION("a target for another device is refused") {
    repo.Release(2, {{"version", "2.0"}, {"compatible", "other-board"}}, bundle);
    auto r = RunUpdate(check);
    CHECK(r.code == 2);
    CHECK(r.err.find("other-board") != std::string::npos);
  }
  SECTION("a staged rollout holds this device back, and says why") {
    // Find a salt that puts this machine id above 30%, one that puts it below.
    std::string above, below;
    for (int i = 0; above.empty() || below.empty(); ++i) {
      const std::string salt = "salt" + std::to_string(i);
      unsigned bucket = 0;
      osu::tuf::Rollout ro{30, salt};
      const std::string digest = osu::Sha256Hex(salt + ":0123456789abcdef0123456789abcdef");
      bucket = static_cast<unsigned>(std::stoull(digest.substr(0, 16), nullptr, 16) % 100);
      (bucket < 30 ? below : above) = salt;
    }
    repo.Release(2, {{"version", "2.0"}, {"compatible", "demo-x86_64"}, {"rollout", {{"percent", 30}, {"salt", above}}}}, bundle);
    auto held = RunUpdate(check);
    INFO(held.out << held.err);
    CHECK(held.code == 0);
    CHECK(json::parse(held.out)["reason"].get<std::string>().find("held back: rolled out to 30%") != std::string::npos);

    repo.Release(3, {{"version", "2.1"}, {"compatible", "demo-x86_64"}, {"rollout", {{"percent", 30}, {"salt", below}}}}, bundle);
    auto in = RunUpdate(check);
    INFO(in.out << in.err);
    CHECK(in.code == 100);

    std::filesystem::remove(d.path("machine-id"));
    auto no_id = RunUpdate(check);
    INFO(no_id.out << no_id.err);
    CHECK(no_id.code == 0);
    CHECK(no_id.err.find("warning: no machine id") != std::string::npos);
    CHECK(json::parse(no_id.out)["reason"].get<std::string>().find("waits for 100%") != std::string::npos);
  }
}

TEST_CASE("tuf: --apply installs only the bundle its target entry binds", "[tuf][http]") {
  FakeDevice d;
  NginxServer nginx;
  Repo repo(nginx.root(), d.path("tuf-keys"));
  repo.Root();
  const std::string image = d.MakeImage("rootfs.img", 4u << 20, 7);
  const std::string bundle_path = d.MakeBundle("v2.osu", image, "2.0", "zstd");
  std::filesystem::copy_file(bundle_path, nginx.root() + "/eos.osu");
  const std::string bundle = ReadFile(bundle_path);
  auto manifest = RunBundle({"manifest", bundle_path});
  REQUIRE(manifest.code == 0);
  WriteFile(d.path("os-release"), "IMAGE_VERSION=1.0\n");
  std::filesystem::copy_file(nginx.root() + "/1.root.json", d.path("root.json"));
  const std::string state = d.path("var/tuf");
  d.WriteConfig("tuf:\n  root: " + d.path("root.json") + "\n  state_dir: " + state + "\n");
  const std::vector<std::string> apply = {"--config", d.config(), "--apply", nginx.Url("eos.osu"), "--no-activate"};

  SECTION("a manifest other than the one the target lists: refused, nothing changed") {
    repo.Release(2, {{"version", "2.0"}, {"compatible", "demo-x86_64"}, {"manifest_sha256", osu::Sha256Hex("other")}}, bundle);
    const std::string before = d.Snapshot();
    const std::string slot_b = d.Fingerprint(d.SlotB());
    auto r = RunUpdate(apply);
    INFO(r.out << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find("custom.manifest_sha256") != std::string::npos);
    CHECK(d.Snapshot() == before);
    CHECK(d.Fingerprint(d.SlotB()) == slot_b);
  }
  SECTION("no manifest hash in the target: refused before the bundle is opened") {
    repo.Release(2, {{"version", "2.0"}, {"compatible", "demo-x86_64"}}, bundle);
    auto r = RunUpdate(apply);
    CHECK(r.code == 2);
    CHECK(r.err.find("lists no custom.manifest_sha256") != std::string::npos);
  }
  // The target's length bounds the download and its sha256 covers the whole bundle, also the
  // bytes after the manifest that no manifest hash covers (tar headers, padding).
  const json listed = {{"version", "2.0"}, {"compatible", "demo-x86_64"}, {"manifest_sha256", osu::Sha256Hex(manifest.out)}};
  auto refused_after_manifest = [&](const std::string& served, const std::string& why, bool full) {
    repo.Release(2, listed, bundle);
    WriteFile(nginx.root() + "/eos.osu", served);
    const std::string before = d.Snapshot();
    std::vector<std::string> args = apply;
    if (full) args.push_back("--no-delta");
    auto r = RunUpdate(args);
    INFO(r.out << r.err);
    CHECK(r.code == 2);
    CHECK(r.err.find("(against its TUF target): " + why) != std::string::npos);
    CHECK(d.Snapshot() == before);
    const std::string record = d.boot() + "/osu/B/record.yml";
    CHECK((!FileExists(record) || ReadFile(record).find("state: verified") == std::string::npos));
  };
  SECTION("a server sending more bytes than the target's length: refused, one byte past it read") {
    refused_after_manifest(bundle + std::string(1 << 20, 'x'),
                           "size mismatch (expected " + std::to_string(bundle.size()) + " bytes, got more)", true);
  }
  SECTION("a server whose bundle is longer than the target's length: no partial fetch either") {
    refused_after_manifest(bundle + std::string(1 << 20, 'x'),
                           "size mismatch (expected " + std::to_string(bundle.size()) + " bytes, got " +
                               std::to_string(bundle.size() + (1 << 20)) + ")", false);
  }
  SECTION("bytes after the manifest that differ from the target's: refused by the whole hash") {
    std::string changed = bundle;
    changed.back() = 'x';  // the archive's end padding: covered by no manifest hash
    refused_after_manifest(changed, "sha256 mismatch (expected " + osu::Sha256Hex(bundle), true);
  }
  SECTION("a release its rollout holds back: --apply refuses, --ignore-rollout installs it") {
    json paused = listed;
    paused["rollout"] = {{"percent", 0}, {"salt", "r2"}};  // paused: no device is in
    repo.Release(2, paused, bundle);
    const std::string before = d.Snapshot();
    const std::string slot_b = d.Fingerprint(d.SlotB());
    auto held = RunUpdate(apply);
    INFO(held.out << held.err);
    CHECK(held.code == 2);
    CHECK(held.err.find("2.0 is held back: rolled out to 0% of devices") != std::string::npos);
    CHECK(held.err.find("--ignore-rollout installs it anyway") != std::string::npos);
    CHECK(d.Snapshot() == before);
    CHECK(d.Fingerprint(d.SlotB()) == slot_b);
    std::vector<std::string> anyway = apply;
    anyway.push_back("--ignore-rollout");
    auto r = RunUpdate(anyway);
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(r.err.find("installing it (--ignore-rollout)") != std::string::npos);
    CHECK(ReadFile(d.boot() + "/osu/B/record.yml").find("state: verified") != std::string::npos);
  }
  SECTION("a bundle without a signature member installs by partial fetch, no fallback") {
    // TUF needs no signature member: the members after the manifest start 512 bytes earlier.
    // Slot B holds the listed (signed) bundle's image; the unsigned one differs in its last
    // MiB: the chunks way fetches that MiB and the boot files by range.
    repo.Release(2, listed, bundle);
    REQUIRE(RunUpdate(apply).code == 0);
    std::string next = ReadFile(image);
    for (size_t i = 3 << 20; i < next.size(); i += 97) next[i] = static_cast<char>(next[i] ^ 0x5a);
    WriteFile(d.path("next.img"), next);
    const std::string unsigned_path = d.path("v2u.osu");
    std::vector<std::string> args{"create", "--image", d.path("next.img"), "--compression", "zstd", "--cmdline",
                                  "console=ttyS0 quiet", "--compatible", "demo-x86_64", "--version", "2.1",
                                  "--unsigned", "--output", unsigned_path, "--level", "1"};
    for (const auto& f : d.BootFiles()) args.insert(args.end(), {"--boot-file", f});
    REQUIRE(RunBundle(args).code == 0);
    // create --unsigned writes an empty signature member; another tool may write none.
    MustRun("tar --delete -f " + unsigned_path + " manifest.sig");
    REQUIRE(MustRun("tar -tf " + unsigned_path).find("manifest.sig") == std::string::npos);
    const std::string served = ReadFile(unsigned_path);
    WriteFile(nginx.root() + "/eos.osu", served);
    auto m = RunBundle({"manifest", unsigned_path});
    REQUIRE(m.code == 0);
    repo.Release(3, {{"version", "2.1"}, {"compatible", "demo-x86_64"}, {"manifest_sha256", osu::Sha256Hex(m.out)}}, served);
    std::vector<std::string> json_apply = apply;
    json_apply.push_back("--json");
    auto r = RunUpdate(json_apply);
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(r.out.find("\"way\":\"chunks\"") != std::string::npos);
    CHECK((r.out + r.err).find("warning") == std::string::npos);
    CHECK(ReadFile(d.boot() + "/osu/B/record.yml").find("state: verified") != std::string::npos);
    CHECK(d.RegionSha256(d.SlotB(), next.size()) == osu::Sha256Hex(next));
  }
  SECTION("the listed bundle installs") {
    repo.Release(2, {{"version", "2.0"}, {"compatible", "demo-x86_64"}, {"manifest_sha256", osu::Sha256Hex(manifest.out)}}, bundle);
    auto r = RunUpdate(apply);
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(ReadFile(d.boot() + "/osu/B/record.yml").find("state: verified") != std::string::npos);
  }
}

TEST_CASE("tuf: a root rotation is followed, and a lost state starts again from the image's root", "[tuf]") {
  TempDir t;
  Repo repo(t / "repo", t / "keys");
  repo.Root(1);
  const std::string anchor = ShipRoot(t);
  // Root v2: a new targets key, signed by the old root key (the root key stays).
  const std::string old_targets = repo.key_paths["targets"];
  const std::string fresh = t / "keys/targets2.pem";
  REQUIRE(osu::GenerateTufKey(fresh, "ed25519"));
  auto pub = osu::TufPublicKeyOf(fresh);
  REQUIRE(pub);
  repo.key_objects.erase(repo.key_ids["targets"]);
  repo.key_paths["targets"] = fresh;
  repo.key_ids["targets"] = osu::tuf::KeyId(*pub);
  repo.key_objects[repo.key_ids["targets"]] = json::parse(osu::tuf::KeyJson(*pub));
  repo.Root(2);
  repo.Release(1, {{"version", "2.0"}, {"compatible", "x"}}, "bundle");
  const std::vector<std::string> verify = VerifyArgs(t, anchor);
  auto ok = RunBundle(verify);
  INFO(ok.out << ok.err);
  REQUIRE(ok.code == 0);
  CHECK(json::parse(ok.out)["root"] == 2);

  // Release 3 (targets v2) signed by the retired key only: refused; the state keeps what it had.
  const std::string before = StateOf(t / "state");
  repo.Release(2, {{"version", "3.0"}, {"compatible", "x"}}, "bundle");
  auto doc = json::parse(ReadFile(t / "repo/targets.json"));
  doc["signatures"] = json::array();
  WriteFile(t / "repo/targets.json", doc.dump());
  REQUIRE(RunBundle({"tuf", "sign", t / "repo/targets.json", "--key", old_targets}).code == 0);
  auto bad = RunBundle(verify);
  INFO(bad.err);
  CHECK(bad.code == 2);
  CHECK(bad.err.find("targets.json") != std::string::npos);
  CHECK(StateOf(t / "state") == before);

  // State lost: from the anchor (v1) the chain is walked again to v2.
  std::filesystem::remove_all(t / "state");
  repo.Release(3, {{"version", "3.0"}, {"compatible", "x"}}, "bundle");
  auto again = RunBundle(verify);
  INFO(again.err);
  CHECK(again.code == 0);
  CHECK(json::parse(again.out)["root"] == 2);
}

TEST_CASE("tuf: a next root nested too deep for canonical JSON is refused, nothing changed", "[tuf]") {
  TempDir t;
  Repo repo(t / "repo", t / "keys");
  repo.Root(1);
  const std::string anchor = ShipRoot(t);
  repo.Release(1, {{"version", "2.0"}, {"compatible", "x"}}, "bundle");
  const std::vector<std::string> verify = VerifyArgs(t, anchor);
  REQUIRE(RunBundle(verify).code == 0);
  const std::string before = StateOf(t / "state");
  // Read before any signature is checked, within the 512 KiB a root may have: the canonical
  // writer recursed once per level and overflowed the stack (fuzz/regressions/fuzz_tuf).
  const size_t levels = 200000;
  WriteFile(t / "repo/2.root.json", R"({"signatures":[],"signed":{"_type":"root","x":)" +
                                        std::string(levels, '[') + std::string(levels, ']') + "}}");
  auto bad = RunBundle(verify);
  INFO(bad.err);
  CHECK(bad.code == 2);
  CHECK(bad.err.find("2.root.json") != std::string::npos);
  CHECK(bad.err.find("nested deeper than 100 levels") != std::string::npos);
  CHECK(StateOf(t / "state") == before);
}

TEST_CASE("tuf: canonical JSON is OLPC's, as securesystemslib writes it", "[tuf]") {
  auto c = osu::tuf::Canonical(json::parse(R"({"b":[1,true,null],"a":"q\"\\\n","é":{}})"), "x");
  REQUIRE(c);
  CHECK(*c == "{\"a\":\"q\\\"\\\\\n\",\"b\":[1,true,null],\"\xc3\xa9\":{}}");
  CHECK_FALSE(osu::tuf::Canonical(json::parse(R"({"a":1.5})"), "x"));
  // 100 levels of nesting below the top are written, 101 refused (fuzz/fuzz_tuf's regression).
  auto nested = [](size_t depth) { return json::parse(std::string(depth, '[') + std::string(depth, ']')); };
  CHECK(osu::tuf::Canonical(nested(101), "x"));
  auto deep = osu::tuf::Canonical(nested(102), "x");
  REQUIRE_FALSE(deep);
  CHECK(deep.error().message() == "x: JSON nested deeper than 100 levels");
  CHECK(osu::tuf::ParseUtcTime("1970-01-02T00:00:00Z") == 86400);
  CHECK_FALSE(osu::tuf::ParseUtcTime("1970-01-02T00:00:00+01:00"));
  CHECK_FALSE(osu::tuf::ParseUtcTime("1970-13-02T00:00:00Z"));
}
