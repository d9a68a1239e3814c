// --apply and --check over HTTP(S) from a real nginx on 127.0.0.1 (the full download; --no-delta
// where a test counts connections: the partial fetch is delta_test.cpp): TLS with a test CA and a
// pinned key, resume after a cut, a trickle below the low-speed limit, an http_proxy; a
// resume that joined two bundles earns one download from byte 0; --check of any manifest
// size the local --check reads.
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <thread>

#include "support/device.hpp"
#include "support/fault_proxy.hpp"
#include "support/nginx.hpp"
#include "support/support.hpp"

using namespace osu::test;

namespace {

bool RecordVerified(FakeDevice& d) {
  const std::string p = d.boot() + "/osu/B/record.yml";
  return FileExists(p) && ReadFile(p).find("state: verified") != std::string::npos;
}

}  // namespace

TEST_CASE("apply over https with the configured CA, and check transfers only the head", "[http]") {
  FakeDevice d;
  // zstd: a partial-fetch bundle, whose chunk index (~120 KiB here) follows the signature.
  const std::string compression = GENERATE(std::string("xz"), std::string("zstd"));
  INFO(compression);
  const uint64_t size = compression == "zstd" ? 48u << 20 : 16u << 20;
  const std::string image = d.MakeImage("rootfs.img", size, 41);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", compression);
  NginxServer nginx(NginxOptions{true, ""});
  std::filesystem::copy_file(bundle, nginx.root() + "/eos.osu");
  d.WriteConfig("", "demo-x86_64", "  ca_file: " + nginx.ca_file() + "\n");

  SECTION("check") {
    WriteFile(d.path("os-release"), "IMAGE_VERSION=1.0\n");
    auto r = RunUpdate({"--config", d.config(), "--check", nginx.Url("eos.osu")});
    INFO(r.err);
    CHECK(r.code == 100);
    // nginx's own log of bytes sent: the head of the bundle, not the image. nginx logs the
    // request when it notices the client has gone, which may come a moment after our exit.
    std::string log = nginx.AccessLog();
    for (int i = 0; i < 100 && log.find("GET /eos.osu ") == std::string::npos; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      log = nginx.AccessLog();
    }
    INFO(log);
    auto pos = log.find("GET /eos.osu ");
    REQUIRE(pos != std::string::npos);
    std::istringstream line(log.substr(pos));
    std::string method, uri;
    int status = 0;
    uint64_t sent = 0;
    line >> method >> uri >> status >> sent;
    CHECK(sent < 64 * 1024);
    // One request: the manifest and signature only, never the chunk index after them.
    CHECK(log.find("GET /eos.osu ", pos + 1) == std::string::npos);
  }
  SECTION("apply") {
    auto r = RunUpdate({"--config", d.config(), "--apply", nginx.Url("eos.osu")});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(d.RegionSha256(d.SlotB(), size) == Sha256OfFile(image));
    CHECK(RecordVerified(d));
  }
}

TEST_CASE("HTTP 404 and 500 are source errors (exit 3) and change nothing", "[http][bad]") {
  FakeDevice d;
  NginxServer nginx(NginxOptions{false, "location = /broken.osu { return 500; }"});
  const std::string before = d.Snapshot();
  SECTION("404") {
    auto r = RunUpdate({"--config", d.config(), "--apply", nginx.Url("missing.osu")});
    CHECK(r.code == 3);
    CHECK_THAT(r.err, Catch::Contains("404"));
  }
  SECTION("500") {
    auto r = RunUpdate({"--config", d.config(), "--apply", nginx.Url("broken.osu")});
    CHECK(r.code == 3);
    CHECK_THAT(r.err, Catch::Contains("500"));
  }
  CHECK(d.Snapshot() == before);
  CHECK_FALSE(FileExists(d.boot() + "/osu/B/record.yml"));
}

namespace {

// The SPKI pin of a PEM certificate, as curl wants it, computed by openssl (the oracle).
std::string PinOf(const std::string& cert) {
  std::string b64 = MustRun("openssl x509 -in '" + cert +
                            "' -pubkey -noout | openssl pkey -pubin -outform der | "
                            "openssl dgst -sha256 -binary | openssl enc -base64");
  while (!b64.empty() && b64.back() == '\n') b64.pop_back();
  return "sha256//" + b64;
}

// Sets an environment variable for one scope (the tests run os-update in-process).
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("https with a pinned public key: the right pin installs, a wrong one is refused",
          "[http][pin]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", 4u << 20, 43);
  NginxServer nginx(NginxOptions{true, ""});
  std::filesystem::copy_file(d.MakeBundle("v2.osu", image, "2.0", "zstd"), nginx.root() + "/eos.osu");
  const std::string server_cert = std::filesystem::path(nginx.ca_file()).parent_path() / "server.crt";
  const std::string ca = "  ca_file: " + nginx.ca_file() + "\n";

  SECTION("the server's key") {
    d.WriteConfig("", "demo-x86_64", ca + "  pinned_pubkey: " + PinOf(server_cert) + "\n");
    auto r = RunUpdate({"--config", d.config(), "--apply", nginx.Url("eos.osu"), "--no-activate"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(d.RegionSha256(d.SlotB(), 4u << 20) == Sha256OfFile(image));
    CHECK(RecordVerified(d));
  }
  SECTION("another key (the CA's): exit 3, nothing changed") {
    d.WriteConfig("", "demo-x86_64", ca + "  pinned_pubkey: " + PinOf(nginx.ca_file()) + "\n");
    const std::string before = d.Snapshot() + d.Fingerprint(d.SlotB());
    auto r = RunUpdate({"--config", d.config(), "--apply", nginx.Url("eos.osu"), "--no-activate"});
    INFO(r.err);
    CHECK(r.code == 3);
    CHECK(HasOneErrorLine(r.err));
    CHECK_THAT(r.err, Catch::Contains("public key"));
    CHECK(d.Snapshot() + d.Fingerprint(d.SlotB()) == before);
    CHECK_FALSE(FileExists(d.boot() + "/osu/B/record.yml"));
  }
}

TEST_CASE("a cut download is resumed and the retry shows with its offset", "[http][retry]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", 8u << 20, 44);
  NginxServer nginx;
  std::filesystem::copy_file(d.MakeBundle("v2.osu", image, "2.0", "gzip"), nginx.root() + "/eos.osu");
  FaultProxy proxy(nginx.port(), 1u << 20);
  ScopedEnv no_proxy("no_proxy", "127.0.0.1");
  auto r = RunUpdate({"--config", d.config(), "--apply", proxy.Url("/eos.osu"), "--no-activate",
                       "--no-delta"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.err, Catch::Matches("(.|\n)*retry 1/3 at byte [1-9][0-9]*: (.|\n)*"));
  CHECK(proxy.connections() == 2);
  CHECK(d.RegionSha256(d.SlotB(), 8u << 20) == Sha256OfFile(image));
  CHECK(RecordVerified(d));
}

TEST_CASE("a trickle below update.low_speed_limit aborts after the retries (exit 3)",
          "[http][slow]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", 4u << 20, 45);
  NginxServer nginx;
  std::filesystem::copy_file(d.MakeBundle("v2.osu", image, "2.0", "none"), nginx.root() + "/eos.osu");
  d.WriteConfig("", "demo-x86_64",
                "  low_speed_limit: 2000\n  low_speed_time: 2\n  retries: 1\n"
                "  connect_timeout: 5\n");
  const std::string before = d.Snapshot();
  // The head (manifest, signature, boot files) arrives fast; the image at 200 B/s.
  FaultProxyOptions trickle;
  trickle.trickle_after = 256 * 1024;
  trickle.trickle_rate = 200;
  trickle.every_connection = true;
  FaultProxy proxy(nginx.port(), trickle);
  ScopedEnv no_proxy("no_proxy", "127.0.0.1");
  const auto start = std::chrono::steady_clock::now();
  auto r = RunUpdate({"--config", d.config(), "--apply", proxy.Url("/eos.osu"), "--no-activate",
                       "--no-delta"});
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO(r.err);
  CHECK(r.code == 3);
  CHECK_THAT(r.err, Catch::Contains("too slow"));
  CHECK_THAT(r.err, Catch::Matches("(.|\n)*retry 1/1 at byte [1-9][0-9]*: (.|\n)*"));
  CHECK(seconds < 45);  // about 2 x (5 s of fast-start average + 2 s too slow)
  CHECK(d.Snapshot() == before);
  CHECK_FALSE(RecordVerified(d));
}

TEST_CASE("http_proxy from the environment carries the download", "[http][proxy]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", 2u << 20, 46);
  NginxServer origin;
  std::filesystem::copy_file(d.MakeBundle("v2.osu", image, "2.0", "xz"), origin.root() + "/eos.osu");
  // nginx as a plain-http forward proxy: it takes absolute-form requests and passes them on.
  NginxServer proxy(NginxOptions{
      false, "location / { proxy_pass http://127.0.0.1:" + std::to_string(origin.port()) +
                 "; proxy_set_header Range $http_range; proxy_set_header If-Range $http_if_range; }"});
  ScopedEnv http_proxy("http_proxy", ("http://127.0.0.1:" + std::to_string(proxy.port())).c_str());
  ScopedEnv no_proxy("no_proxy", nullptr);
  ScopedEnv no_proxy_upper("NO_PROXY", nullptr);
  auto r = RunUpdate({"--config", d.config(), "--apply", origin.Url("eos.osu"), "--no-activate"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(d.RegionSha256(d.SlotB(), 2u << 20) == Sha256OfFile(image));
  INFO("proxy log:\n" << proxy.AccessLog());
  CHECK_THAT(proxy.AccessLog(), Catch::Contains("GET /eos.osu 200"));
  CHECK_THAT(origin.AccessLog(), Catch::Contains("GET /eos.osu 200"));
}

namespace {

// 2020-01-01 00:00:00 UTC: long before the server's Date, so nginx's ETag is trusted to resume.
void Settle(const std::string& path) { MustRun("touch -d @1577836800 '" + path + "'"); }


}  // namespace

TEST_CASE("a resume that joined two bundles with the same ETag is downloaded once more from byte 0",
          "[http][retry]") {
  FakeDevice d;
  const std::string image_a = d.MakeImage("a.img", 8u << 20, 47);
  const std::string image_b = d.MakeImage("b.img", 8u << 20, 48);
  const std::string bundle_a = d.MakeBundle("a.osu", image_a, "2.0", "none");
  const std::string bundle_b = d.MakeBundle("b.osu", image_b, "2.0", "none");
  REQUIRE(std::filesystem::file_size(bundle_a) == std::filesystem::file_size(bundle_b));
  NginxServer nginx;
  const std::string served = nginx.root() + "/eos.osu";
  std::filesystem::copy_file(bundle_a, served);
  Settle(served);
  // The cut: b replaces a with a's mtime and size, so nginx's ETag and Last-Modified stay.
  FaultProxy proxy(nginx.port(), 4u << 20, [&] {
    Run("cp '" + bundle_b + "' '" + served + ".new' && touch -r '" + served + "' '" + served +
        ".new' && mv '" + served + ".new' '" + served + "'");
  });
  ScopedEnv no_proxy("no_proxy", "127.0.0.1");
  auto r = RunUpdate({"--config", d.config(), "--apply", proxy.Url("/eos.osu"), "--no-activate",
                       "--no-delta"});
  INFO(r.err << nginx.AccessLog());
  REQUIRE(r.code == 0);
  CHECK(CountOf(r.err, "once more from byte 0") == 1);
  CHECK_THAT(r.err, Catch::Contains("two versions of it may have been joined"));
  // The resume was a Range on the unchanged ETag, and the fresh download got all of b.
  CHECK_THAT(nginx.AccessLog(), Catch::Matches("(.|\n)*206 [0-9]+ range=bytes=[1-9][0-9]*- if_range=\\\\x22(.|\n)*"));
  CHECK(d.RegionSha256(d.SlotB(), 8u << 20) == Sha256OfFile(image_b));
  CHECK(RecordVerified(d));
}

TEST_CASE("a bundle corrupt on the server is reported after at most one download from byte 0",
          "[http][retry][bad]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", 8u << 20, 49);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "none");
  NginxServer nginx;
  const std::string served = nginx.root() + "/eos.osu";
  // One byte of the image flipped: the signature holds, the image's sha256 does not.
  std::string bytes = ReadFile(bundle);
  const size_t image_at = bytes.find(ReadFile(image).substr(0, 4096));
  REQUIRE(image_at != std::string::npos);
  bytes[image_at + (6u << 20)] = static_cast<char>(bytes[image_at + (6u << 20)] ^ 0x01);
  WriteFile(served, bytes);
  Settle(served);
  ScopedEnv no_proxy("no_proxy", "127.0.0.1");

  SECTION("resumed after a cut: one more download, then exit 2") {
    FaultProxy proxy(nginx.port(), 2u << 20);
    auto r = RunUpdate({"--config", d.config(), "--apply", proxy.Url("/eos.osu"), "--no-activate",
                       "--no-delta"});
    INFO(r.err << nginx.AccessLog());
    CHECK(r.code == 2);
    CHECK(CountOf(r.err, "once more from byte 0") == 1);
    CHECK(CountOf(nginx.AccessLog(), " range=- ") == 2);  // the first download and the fresh one
    CHECK_THAT(r.err, Catch::Contains("os-update: "));
    CHECK(CountOf(r.err, "os-update: ") == 1);
  }
  SECTION("not resumed: exit 2 at once") {
    auto r = RunUpdate({"--config", d.config(), "--apply", nginx.Url("eos.osu"), "--no-activate",
                        "--no-delta"});
    INFO(r.err << nginx.AccessLog());
    CHECK(r.code == 2);
    CHECK(HasOneErrorLine(r.err));
    CHECK(CountOf(r.err, "once more") == 0);
    CHECK(CountOf(nginx.AccessLog(), "GET /eos.osu") == 1);
  }
  CHECK_FALSE(RecordVerified(d));
}

namespace {

// `bundle` with its manifest padded by a YAML comment to exactly `manifest_size` bytes and
// signed again with openssl: built with tar and openssl, not with os-update-bundle.
std::string WithManifestOf(FakeDevice& d, const std::string& bundle, size_t manifest_size,
                           const std::string& name) {
  const std::string dir = d.path(name + ".d");
  std::filesystem::create_directories(dir);
  const std::string members = MustRun("tar -tf '" + bundle + "' | tr '\\n' ' '");
  MustRun("tar -xf '" + bundle + "' -C '" + dir + "'");
  std::string manifest = ReadFile(dir + "/manifest.yaml");
  REQUIRE(manifest.size() + 3 <= manifest_size);
  manifest += "#" + std::string(manifest_size - manifest.size() - 2, 'x') + "\n";
  WriteFile(dir + "/manifest.yaml", manifest);
  MustRun("cd '" + dir + "' && openssl pkeyutl -sign -rawin -inkey '" + d.private_key() +
          "' -in manifest.yaml -out manifest.sig && tar -cf '" + d.path(name) + "' " + members);
  return d.path(name);
}

}  // namespace

TEST_CASE("check over http reads every manifest size the local --check reads", "[http]") {
  FakeDevice d;
  WriteFile(d.path("os-release"), "IMAGE_VERSION=1.0\n");
  const std::string image = d.MakeImage("rootfs.img", 1u << 20, 50);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "none");
  NginxServer nginx;
  // Over the old 48 KiB read limit; the bundle reader's limit (1 MiB); one byte over it.
  for (size_t size : {size_t{60} << 10, size_t{1} << 20, (size_t{1} << 20) + 1}) {
    INFO("manifest of " << size << " bytes");
    const std::string name = "m" + std::to_string(size) + ".osu";
    const std::string local = WithManifestOf(d, bundle, size, name);
    std::filesystem::copy_file(local, nginx.root() + "/" + name);
    auto here = RunUpdate({"--config", d.config(), "--check", local});
    auto there = RunUpdate({"--config", d.config(), "--check", nginx.Url(name)});
    INFO(here.err << there.err);
    CHECK(here.code == (size <= (1u << 20) ? 100 : 2));
    CHECK(there.code == here.code);
    if (here.code == 2) {
      CHECK_THAT(there.err, Catch::Contains("more than the limit of 1048576"));
      CHECK(HasOneErrorLine(there.err));
    }
  }
}
