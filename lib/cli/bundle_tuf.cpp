// os-update-bundle tuf ...: the TUF repository's offline side (start it, add releases, sign
// one role file with one key, rotate keys, publish with the online keys, what expires when) and `verify`, the device's workflow run on a
// repository (the differential test's entry point, and a publisher's last check).
#include <CLI/CLI.hpp>

#include <fcntl.h>

#include <ctime>
#include <map>
#include <vector>

#include "bundle/bundle.hpp"
#include "common/fd.hpp"
#include "crypto/sha256.hpp"
#include "io/stream.hpp"
#include "tuf/repository.hpp"

#include "cli/bundle_tuf.hpp"
#include "common/json.hpp"
#include "common/text.hpp"
#include "tuf/metadata.hpp"
#include "tuf/tooling.hpp"
#include "tuf/trust.hpp"
#include "tuf/uri_source.hpp"

namespace osu::cli {
namespace {

Result RunTufVerify(const TufArgs& a, const Streams& s) {
  tuf::TrustOptions o;
  o.anchor_root = a.root;
  o.state_dir = a.state;
  o.clock.system = static_cast<int64_t>(std::time(nullptr));
  if (!a.time.empty()) {
    auto t = tuf::ParseUtcTime(a.time);
    if (!t) return UsageError("--time '" + Printable(a.time) + "' is not of the form 2030-01-31T00:00:00Z");
    o.clock.system = *t;
  }
  tuf::UriMetadataSource source(a.base, SourceOptions{});
  auto trusted = tuf::Refresh(source, o);
  if (!trusted) return trusted.error();
  Json out = Json::MakeObject()
                 .Set("root", trusted->root.signed_.version)
                 .Set("timestamp", trusted->timestamp.signed_.version)
                 .Set("snapshot", trusted->snapshot.signed_.version)
                 .Set("targets", trusted->targets.signed_.version)
                 .Set("bytes", trusted->bytes_fetched)
                 .Set("requests", static_cast<uint64_t>(trusted->requests));
  if (!trusted->clock.warning.empty()) out.Set("clock_warning", trusted->clock.warning);
  if (!a.target.empty()) {
    auto t = tuf::FindTarget(*trusted, a.target);
    if (!t) return t.error();
    out.Set("target", a.target)
        .Set("length", t->length)
        .Set("sha256", t->hashes.at("sha256"))
        .Set("file", tuf::TargetFileName(*trusted, a.target, *t))
        .Set("version", t->bundle.version);
    if (a.fetch_target) {
      const std::string file = tuf::TargetFileName(*trusted, a.target, *t);
      auto bytes = source.Fetch(file, t->length);
      if (!bytes) return bytes.error();
      if (!*bytes) return SourceError(source.Describe(file) + ": not found");
      if (auto r = tuf::CheckTargetBytes(*t, **bytes, source.Describe(file)); !r) return r.error();
      out.Set("target_verified", true);
    }
  }
  s.out << out.Dump() << "\n";
  return {};
}

// The role options of init and rotate: --ROLE-key (repeatable) and --ROLE-threshold.
void AddRoleOptions(CLI::App* cmd, TufArgs& a, bool required) {
  struct Opt { const char* role; std::vector<std::string>* keys; uint64_t* threshold; };
  for (auto [role, keys, threshold] : {Opt{"root", &a.root_keys, &a.root_threshold},
                                       Opt{"targets", &a.targets_keys, &a.targets_threshold},
                                       Opt{"snapshot", &a.snapshot_keys, &a.snapshot_threshold},
                                       Opt{"timestamp", &a.timestamp_keys, &a.timestamp_threshold}}) {
    auto* o = cmd->add_option(std::string("--") + role + "-key", *keys,
                              std::string("PEM key of the ") + role + " role (repeatable)" +
                                  (required ? "" : "; given: the role's whole new key list"));
    if (required) o->required();
    cmd->add_option(std::string("--") + role + "-threshold", *threshold,
                    std::string("Signatures of distinct ") + role + " keys required")
        ->capture_default_str();
  }
}

Expected<std::map<std::string, tuf::RoleKeys>> RoleKeysOf(const TufArgs& a) {
  std::map<std::string, tuf::RoleKeys> out;
  struct Opt { const char* role; const std::vector<std::string>* keys; uint64_t threshold; };
  for (auto [role, keys, threshold] : {Opt{"root", &a.root_keys, a.root_threshold},
                                       Opt{"targets", &a.targets_keys, a.targets_threshold},
                                       Opt{"snapshot", &a.snapshot_keys, a.snapshot_threshold},
                                       Opt{"timestamp", &a.timestamp_keys, a.timestamp_threshold}}) {
    tuf::RoleKeys rk;
    rk.threshold = threshold;
    for (const auto& path : *keys) {
      auto key = TufPublicKeyOf(path);
      if (!key) return key.error();
      rk.keys.push_back(*key);
    }
    out[role] = rk;
  }
  return out;
}

tuf::RepositoryTimes TimesOf(const TufArgs& a, int64_t tuf::RepositoryTimes::*days) {
  tuf::RepositoryTimes t;
  t.now = static_cast<int64_t>(std::time(nullptr));
  if (a.expires_days > 0) t.*days = a.expires_days;
  if (a.snapshot_days > 0) t.snapshot_days = a.snapshot_days;
  return t;
}

// A bundle file as a target: its length and sha256, and the custom fields from its manifest.
Expected<tuf::TargetEntry> TargetOfBundle(const std::string& path, const TufArgs& a) {
  auto fd = Fd::Open(path, O_RDONLY);
  if (!fd) return UsageError(fd.error().message());
  auto reader = MakeFdReader(fd->Release(), true, "'" + path + "'");
  auto b = BundleReader::OpenUnverified(*reader, "'" + path + "'");
  if (!b) return b.error();
  const Manifest& m = (*b)->manifest();
  tuf::TargetEntry e;
  e.name = BaseName(path);
  e.bundle.version = m.version;
  e.bundle.compatible = m.compatible;
  e.bundle.min_version = m.min_version.value_or("");
  e.bundle.manifest_sha256 = Sha256Hex((*b)->manifest_bytes());
  if (a.rollout >= 0) e.bundle.rollout = tuf::Rollout{static_cast<unsigned>(a.rollout), a.salt};
  auto whole = Fd::Open(path, O_RDONLY);
  if (!whole) return UsageError(whole.error().message());
  Sha256 sha;
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    auto n = ReadFull(whole->get(), buf, "'" + path + "'");
    if (!n) return n.error();
    if (*n == 0) break;
    sha.Update(std::span<const uint8_t>(buf.data(), *n));
    e.length += *n;
  }
  e.sha256 = sha.HexDigest();
  return e;
}

void AddRepositoryCommands(CLI::App* tuf, TufArgs& a, std::function<Result()>& action,
                           const Streams& streams) {
  auto* init = tuf->add_subcommand("init", "Start a repository: 1.root.json and an empty targets.json, unsigned.");
  init->footer("Then each root key holder signs 1.root.json, a targets key holder signs targets.json\n"
               "(tuf sign), and CI runs 'tuf timestamp' with the online keys. Example:\n"
               "  os-update-bundle tuf init repo --root-key alice.pub --root-key bob.pub --root-threshold 2 \\\n"
               "    --targets-key release.pub --snapshot-key online.pub --timestamp-key online.pub");
  init->add_option("DIR", a.dir, "Repository directory (created)")->required();
  AddRoleOptions(init, a, true);
  init->add_flag("--no-consistent-snapshot", a.no_consistent, "Plain file names (default: N.snapshot.json, SHA256.NAME)");
  init->add_option("--expires", a.expires_days, "Days until root expires (default 365)");
  init->callback([&] {
    action = [&]() -> Result {
      auto roles = RoleKeysOf(a);
      if (!roles) return roles.error();
      if (auto r = tuf::InitRepository(a.dir, *roles, !a.no_consistent, TimesOf(a, &tuf::RepositoryTimes::root_days)); !r) return r;
      streams.out << "started " << Printable(a.dir) << ": sign 1.root.json with " << a.root_threshold
                  << " root key(s) and targets.json with " << a.targets_threshold
                  << " targets key(s), then run 'tuf timestamp'\n";
      return {};
    };
  });

  auto* add = tuf->add_subcommand("add", "Add release bundles as targets (a new targets version, unsigned).");
  add->footer("Each bundle is linked (else copied) into DIR under the name devices fetch. Without\n"
              "a bundle: only a new version and expiry (re-sign after a key rotation). Example:\n"
              "  os-update-bundle tuf add repo eos-3.0.osu --rollout 20 --salt r3");
  add->add_option("DIR", a.dir, "Repository directory")->required();
  add->add_option("BUNDLE", a.bundles, "Bundle files (name, length, sha256 and manifest fields read from each)");
  add->add_option("--rollout", a.rollout, "Offer to this percentage of devices (0-100)")->check(CLI::Range(0, 100));
  add->add_option("--salt", a.salt, "Rollout salt (a new one reshuffles the devices)");
  add->add_option("--expires", a.expires_days, "Days until targets expires (default 90)");
  add->callback([&] {
    action = [&]() -> Result {
      if (a.rollout >= 0 && a.salt.empty()) return UsageError("--rollout needs --salt");
      std::vector<tuf::TargetEntry> entries;
      for (const auto& path : a.bundles) {
        auto e = TargetOfBundle(path, a);
        if (!e) return e.error();
        if (auto r = tuf::PlaceTarget(a.dir, path, *e); !r) return r;
        entries.push_back(*e);
      }
      auto v = tuf::AddTargets(a.dir, entries, TimesOf(a, &tuf::RepositoryTimes::targets_days));
      if (!v) return v.error();
      for (const auto& e : entries)
        streams.out << "target " << Printable(e.name) << ": version " << Printable(e.bundle.version) << ", "
                    << e.length << " bytes, sha256 " << e.sha256 << "\n";
      streams.out << "targets.json v" << *v << " written, unsigned: sign it with 'tuf sign'\n";
      return {};
    };
  });

  auto* rot = tuf->add_subcommand("rotate", "Write root N+1 with new keys for the roles given (unsigned).");
  rot->footer("Root N+1 needs the threshold of root N's keys and of its own (tuf sign, once per\n"
              "key). Example (retire a leaked targets key):\n"
              "  os-update-bundle tuf rotate repo --targets-key new-release.pub");
  rot->add_option("DIR", a.dir, "Repository directory")->required();
  AddRoleOptions(rot, a, false);
  rot->add_option("--expires", a.expires_days, "Days until the new root expires (default 365)");
  rot->callback([&] {
    action = [&]() -> Result {
      auto roles = RoleKeysOf(a);
      if (!roles) return roles.error();
      auto v = tuf::RotateRoot(a.dir, *roles, TimesOf(a, &tuf::RepositoryTimes::root_days));
      if (!v) return v.error();
      streams.out << v.value() << ".root.json written, unsigned: sign it with the old root keys and the new\n";
      return {};
    };
  });

  auto* ts = tuf->add_subcommand("timestamp", "Publish: sign a new snapshot (if targets changed) and timestamp.");
  ts->footer("Run from CI with the online key(s), at least daily (the timestamp expires). Checks the\n"
             "offline signatures of the newest root and of targets.json first. Example:\n"
             "  os-update-bundle tuf timestamp repo --key online.pem");
  ts->add_option("DIR", a.dir, "Repository directory")->required();
  ts->add_option("--key", a.online_keys, "PEM private key of the snapshot and/or timestamp role (repeatable)")->required();
  ts->add_option("--expires", a.expires_days, "Days until timestamp expires (default 1)");
  ts->add_option("--snapshot-expires", a.snapshot_days, "Days until a new snapshot expires (default 7)");
  ts->callback([&] {
    action = [&]() -> Result {
      auto p = tuf::Publish(a.dir, a.online_keys, TimesOf(a, &tuf::RepositoryTimes::timestamp_days));
      if (!p) return p.error();
      streams.out << "published root v" << p->root << ", targets v" << p->targets << ", snapshot v"
                  << p->snapshot << (p->new_snapshot ? " (new)" : " (kept)") << ", timestamp v"
                  << p->timestamp << "\n";
      return {};
    };
  });
}

}  // namespace

void AddTufCommands(CLI::App& app, TufArgs& verify, std::function<Result()>& action,
                    const Streams& streams) {
  auto* tuf = app.add_subcommand("tuf", "TUF repository: init, add, sign, rotate, timestamp, expiry, verify.");
  tuf->require_subcommand(1);

  auto* v = tuf->add_subcommand("verify", "Run the device's TUF workflow on a repository (exit 2 if refused).");
  v->footer("Example: os-update-bundle tuf verify --root root.json --state /tmp/tuf-state "
            "--base http://127.0.0.1:8080/repo --target eos.osu");
  v->add_option("--root", verify.root, "The trusted root.json (as shipped in the image)")->required();
  v->add_option("--state", verify.state, "Trust state directory (written when accepted)")->required();
  v->add_option("--base", verify.base, "URL or directory the metadata files are in")->required();
  v->add_option("--target", verify.target, "A target to look up in the verified targets");
  v->add_flag("--fetch-target", verify.fetch_target, "Also download the target and check its length and sha256");
  v->add_option("--time", verify.time, "Judge expiry at this time instead of the clock (tests)");
  v->callback([&] { action = [&] { return RunTufVerify(verify, streams); }; });

  std::string& file = verify.file;
  std::string& key = verify.key;
  auto* sign = tuf->add_subcommand("sign", "Add one key's signature to a role's metadata file.");
  sign->footer("Example (each holder of a root key, on their own machine):\n"
               "  os-update-bundle tuf sign 2.root.json --key alice-root.pem");
  sign->add_option("FILE", file, "Metadata file (its \"signed\" is what is signed)")->required();
  sign->add_option("--key", key, "PEM private key (ed25519, P-256 or RSA)")->required();
  sign->callback([&] {
    action = [&]() -> Result {
      auto id = tuf::SignMetadataFile(file, key);
      if (!id) return id.error();
      streams.out << "signed " << Printable(file) << " with keyid " << *id << "\n";
      return {};
    };
  });

  auto* k = tuf->add_subcommand("key", "Print a PEM key's TUF keyid and the object root.json lists.");
  k->add_option("PEM", key, "PEM key, private or public")->required();
  k->callback([&] {
    action = [&]() -> Result {
      auto pub = TufPublicKeyOf(key);
      if (!pub) return pub.error();
      streams.out << tuf::KeyId(*pub) << " " << tuf::KeyJson(*pub) << "\n";
      return {};
    };
  });

  AddRepositoryCommands(tuf, verify, action, streams);

  std::string& dir = verify.dir;
  auto* e = tuf->add_subcommand("expiry", "Print each metadata file's role, version and expiry.");
  e->add_option("DIR", dir, "Repository metadata directory")->required();
  e->callback([&] {
    action = [&]() -> Result {
      auto text = tuf::DescribeExpiry(dir, static_cast<int64_t>(std::time(nullptr)));
      if (!text) return text.error();
      streams.out << *text;
      return {};
    };
  });
}

}  // namespace osu::cli
