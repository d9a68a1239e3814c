// os-update-bundle tuf ...: the TUF repository's offline side (sign one role file with one
// key, a key's TUF form, what expires when) and `verify`, the device's workflow run on a
// repository (the differential test's entry point, and a publisher's last check).
#include <CLI/CLI.hpp>

#include <ctime>

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

}  // namespace

void AddTufCommands(CLI::App& app, TufArgs& verify, std::function<Result()>& action,
                    const Streams& streams) {
  auto* tuf = app.add_subcommand("tuf", "TUF metadata: sign a role file, key forms, expiry, verify.");
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
