// The repository tooling (os-update-bundle tuf init|add|sign|rotate|timestamp|expiry): a
// repository made only with these commands, keys held one per file as on separate machines,
// judged by the device's workflow (tuf verify --fetch-target). The same tooling's repository
// is also judged by tuf-js (test/tuf, case "repository made by os-update-bundle's tooling").
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>

#include "crypto/sha256.hpp"
#include "crypto/tuf_key.hpp"
#include "support/device.hpp"
#include "support/support.hpp"
#include "tuf/tooling.hpp"

using namespace osu::test;
using nlohmann::json;

namespace {

std::string Key(const TempDir& t, const std::string& name) {
  const std::string p = t / (name + ".pem");
  REQUIRE(osu::GenerateTufKey(p, "ed25519"));
  return p;
}

MainResult Tuf(std::vector<std::string> args) {
  args.insert(args.begin(), "tuf");
  return RunBundle(args);
}

#define REQUIRE_OK(r)          \
  do {                         \
    auto res_ = (r);           \
    INFO(res_.out << res_.err); \
    REQUIRE(res_.code == 0);   \
  } while (0)

json Doc(const std::string& path) { return json::parse(ReadFile(path)); }

}  // namespace

TEST_CASE("tuf tooling: a repository made only by the commands is accepted by the device's workflow", "[tuf]") {
  FakeDevice d;
  TempDir t;
  const std::string repo = t / "repo";
  const std::string alice = Key(t, "alice"), bob = Key(t, "bob"), release = Key(t, "release"),
                    online = Key(t, "online");
  REQUIRE_OK(Tuf({"init", repo, "--root-key", alice, "--root-key", bob, "--root-threshold", "2",
                  "--targets-key", release, "--snapshot-key", online, "--timestamp-key", online}));
  auto root1 = Doc(repo + "/1.root.json");
  CHECK(root1["signed"]["roles"]["root"]["threshold"] == 2);
  CHECK(root1["signed"]["consistent_snapshot"] == true);
  CHECK(root1["signatures"].empty());
  CHECK(Doc(repo + "/targets.json")["signed"]["targets"].empty());
  // A second init would overwrite the anchor devices hold: refused.
  CHECK(Tuf({"init", repo, "--root-key", alice, "--targets-key", release, "--snapshot-key", online,
             "--timestamp-key", online}).code == 1);

  // Publishing waits for the offline signatures: root's threshold of two, then targets.
  auto early = Tuf({"timestamp", repo, "--key", online});
  CHECK(early.code == 1);
  CHECK(early.err.find("0 valid signatures of distinct root keys, the threshold is 2") != std::string::npos);
  REQUIRE_OK(Tuf({"sign", repo + "/1.root.json", "--key", alice}));
  CHECK(Tuf({"timestamp", repo, "--key", online}).err.find("1 valid signature of distinct root keys") != std::string::npos);
  // Bob signs without Alice's key; her signature stays, and signing twice counts once.
  REQUIRE_OK(Tuf({"sign", repo + "/1.root.json", "--key", bob}));
  REQUIRE_OK(Tuf({"sign", repo + "/1.root.json", "--key", bob}));
  CHECK(Doc(repo + "/1.root.json")["signatures"].size() == 2);
  auto unsigned_targets = Tuf({"timestamp", repo, "--key", online});
  CHECK(unsigned_targets.code == 1);
  CHECK(unsigned_targets.err.find("targets.json v1") != std::string::npos);
  REQUIRE_OK(Tuf({"sign", repo + "/targets.json", "--key", release}));
  // The online key must be the one root lists for snapshot and timestamp.
  CHECK(Tuf({"timestamp", repo, "--key", release}).code == 1);
  REQUIRE_OK(Tuf({"timestamp", repo, "--key", online}));
  CHECK(FileExists(repo + "/root.json"));
  CHECK(FileExists(repo + "/1.snapshot.json"));
  CHECK(FileExists(repo + "/1.targets.json"));

  // A release: its name, length, sha256 and manifest fields, placed under its consistent name.
  const std::string image = d.MakeImage("rootfs.img", 1u << 20, 3);
  const std::string bundle = d.MakeBundle("eos-2.0.osu", image, "2.0", "zstd", {"--min-version", "1.0"});
  auto added = Tuf({"add", repo, bundle, "--rollout", "20", "--salt", "r2"});
  REQUIRE_OK(added);
  const std::string bytes = ReadFile(bundle);
  const std::string sha = osu::Sha256Hex(bytes);
  auto entry = Doc(repo + "/targets.json")["signed"]["targets"]["eos-2.0.osu"];
  CHECK(entry["length"] == bytes.size());
  CHECK(entry["hashes"]["sha256"] == sha);
  CHECK(entry["custom"]["version"] == "2.0");
  CHECK(entry["custom"]["compatible"] == "demo-x86_64");
  CHECK(entry["custom"]["min_version"] == "1.0");
  CHECK(entry["custom"]["manifest_sha256"] == osu::Sha256Hex(RunBundle({"manifest", bundle}).out));
  CHECK(entry["custom"]["rollout"] == json({{"percent", 20}, {"salt", "r2"}}));
  CHECK(Doc(repo + "/targets.json")["signed"]["version"] == 2);
  CHECK(Doc(repo + "/targets.json")["signatures"].empty());
  CHECK(ReadFile(repo + "/" + sha + ".eos-2.0.osu") == bytes);
  REQUIRE_OK(Tuf({"sign", repo + "/targets.json", "--key", release}));
  auto published = Tuf({"timestamp", repo, "--key", online});
  REQUIRE_OK(published);
  CHECK(published.out.find("snapshot v2 (new), timestamp v2") != std::string::npos);

  const std::string anchor = t / "anchor.json";
  std::filesystem::copy_file(repo + "/1.root.json", anchor);
  const std::vector<std::string> verify = {"verify", "--root", anchor, "--state", t / "state", "--base",
                                           repo, "--target", "eos-2.0.osu", "--fetch-target"};
  auto ok = Tuf(verify);
  INFO(ok.out << ok.err);
  REQUIRE(ok.code == 0);
  CHECK(json::parse(ok.out)["target_verified"] == true);
  CHECK(json::parse(ok.out)["version"] == "2.0");

  // CI's daily refresh: targets unchanged, so the snapshot stays and only the timestamp moves.
  auto daily = Tuf({"timestamp", repo, "--key", online});
  REQUIRE_OK(daily);
  CHECK(daily.out.find("snapshot v2 (kept), timestamp v3") != std::string::npos);

  // Rotation of a leaked targets key: root 2 needs both root keys (old threshold and new).
  const std::string release2 = Key(t, "release2");
  REQUIRE_OK(Tuf({"rotate", repo, "--targets-key", release2}));
  auto root2 = Doc(repo + "/2.root.json");
  CHECK(root2["signed"]["version"] == 2);
  CHECK(root2["signed"]["roles"]["root"] == root1["signed"]["roles"]["root"]);
  auto release_pub = osu::TufPublicKeyOf(release);
  REQUIRE(release_pub);
  CHECK_FALSE(root2["signed"]["keys"].contains(osu::tuf::KeyId(*release_pub)));
  REQUIRE_OK(Tuf({"sign", repo + "/2.root.json", "--key", alice}));
  CHECK(Tuf({"timestamp", repo, "--key", online}).err.find("2.root.json") != std::string::npos);
  REQUIRE_OK(Tuf({"sign", repo + "/2.root.json", "--key", bob}));
  REQUIRE_OK(Tuf({"add", repo}));  // a new targets version, for the new key to sign
  // Signed by the retired key only: the publisher's check refuses it as a device would.
  REQUIRE_OK(Tuf({"sign", repo + "/targets.json", "--key", release}));
  CHECK(Tuf({"timestamp", repo, "--key", online}).err.find("0 valid signatures of distinct targets keys") != std::string::npos);
  REQUIRE_OK(Tuf({"sign", repo + "/targets.json", "--key", release2}));
  REQUIRE_OK(Tuf({"timestamp", repo, "--key", online}));
  auto rotated = Tuf(verify);
  INFO(rotated.out << rotated.err);
  REQUIRE(rotated.code == 0);
  CHECK(json::parse(rotated.out)["root"] == 2);
  CHECK(json::parse(rotated.out)["targets"] == 3);

  auto expiry = Tuf({"expiry", repo});
  REQUIRE_OK(expiry);
  CHECK(expiry.out.find("timestamp.json: timestamp v4, expires ") != std::string::npos);
  CHECK(expiry.out.find("2.root.json: root v2, expires ") != std::string::npos);
}

TEST_CASE("tuf tooling: bad input is refused with one line and changes nothing", "[tuf]") {
  TempDir t;
  const std::string repo = t / "repo";
  const std::string k = Key(t, "k");
  auto missing = Tuf({"init", repo, "--root-key", k, "--targets-key", k, "--snapshot-key", k});
  CHECK(missing.code != 0);
  CHECK_FALSE(std::filesystem::exists(repo + "/1.root.json"));
  auto threshold = Tuf({"init", repo, "--root-key", k, "--root-threshold", "2", "--targets-key", k,
                        "--snapshot-key", k, "--timestamp-key", k});
  CHECK(threshold.code == 1);
  CHECK(threshold.err.find("the root threshold must be between 1 and its 1 keys") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(repo + "/1.root.json"));
  REQUIRE_OK(Tuf({"init", repo, "--root-key", k, "--targets-key", k, "--snapshot-key", k,
                  "--timestamp-key", k, "--no-consistent-snapshot"}));
  const std::string targets = ReadFile(repo + "/targets.json");
  auto not_bundle = Tuf({"add", repo, repo + "/1.root.json"});
  CHECK(not_bundle.code != 0);
  CHECK(ReadFile(repo + "/targets.json") == targets);
  CHECK(Tuf({"add", repo, "--rollout", "10"}).err.find("--rollout needs --salt") != std::string::npos);
  auto unsigned_root = Tuf({"rotate", repo, "--targets-key", Key(t, "k2")});
  CHECK(unsigned_root.code == 1);
  CHECK_FALSE(std::filesystem::exists(repo + "/2.root.json"));
  CHECK(Tuf({"rotate", repo}).code != 0);
}

TEST_CASE("tuf: the metadata beside a bundle on a local directory or medium (file source)", "[tuf]") {
  FakeDevice d;
  TempDir t;
  // As on a USB stick: the repository's files and the bundle in one directory.
  const std::string medium = t / "media/OSU-UPDATE";
  const std::string k = Key(t, "k");
  REQUIRE_OK(Tuf({"init", medium, "--root-key", k, "--targets-key", k, "--snapshot-key", k, "--timestamp-key", k}));
  REQUIRE_OK(Tuf({"sign", medium + "/1.root.json", "--key", k}));
  const std::string image = d.MakeImage("rootfs.img", 1u << 20, 5);
  const std::string bundle = d.MakeBundle("eos.osu", image, "2.0", "zstd");
  REQUIRE_OK(Tuf({"add", medium, bundle}));
  REQUIRE_OK(Tuf({"sign", medium + "/targets.json", "--key", k}));
  REQUIRE_OK(Tuf({"timestamp", medium, "--key", k}));
  std::filesystem::copy_file(medium + "/1.root.json", d.path("root.json"));
  WriteFile(d.path("os-release"), "IMAGE_VERSION=1.0\n");
  const std::string state = d.path("var/tuf");
  d.WriteConfig("tuf:\n  root: " + d.path("root.json") + "\n  state_dir: " + state + "\n");
  // Devices name the bundle; its bytes are read from SHA256.eos.osu beside it (consistent
  // snapshots), the metadata from the same directory, through the same source layer.
  const std::string named = medium + "/eos.osu";
  CHECK_FALSE(FileExists(named));
  for (const std::string& uri : {named, "file://" + named}) {
    auto check = RunUpdate({"--config", d.config(), "--check", uri, "--json"});
    INFO(check.out << check.err);
    CHECK(check.code == 100);
    CHECK(json::parse(check.out)["available"] == "2.0");
  }
  SECTION("installed from the medium") {
    auto r = RunUpdate({"--config", d.config(), "--apply", named, "--no-activate"});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK(ReadFile(d.boot() + "/osu/B/record.yml").find("state: verified") != std::string::npos);
  }
  SECTION("a medium without the metadata: refused, nothing changed") {
    std::filesystem::remove(medium + "/timestamp.json");
    const std::string before = d.Snapshot();
    const std::string trust = ReadFile(state + "/timestamp.json");
    auto r = RunUpdate({"--config", d.config(), "--apply", named, "--no-activate"});
    INFO(r.out << r.err);
    CHECK(r.code == 3);
    CHECK(r.err.find("timestamp.json") != std::string::npos);
    CHECK(d.Snapshot() == before);
    CHECK(ReadFile(state + "/timestamp.json") == trust);
  }
}
