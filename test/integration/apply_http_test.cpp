// --apply and --check over HTTP(S) from a real nginx on 127.0.0.1.
#include <catch2/catch.hpp>
#include <filesystem>
#include <sstream>

#include "support/device.hpp"
#include "support/nginx.hpp"
#include "support/support.hpp"

using namespace osu::test;

namespace {

bool RecordVerified(FakeDevice& d) {
  const std::string p = d.boot() + "/osu/B/record.yml";
  return FileExists(p) && ReadFile(p).find("state: verified") != std::string::npos;
}

}  // namespace

TEST_CASE("apply over https with the configured CA; check transfers only the head", "[http]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", 16u << 20, 41);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "xz");
  NginxServer nginx(NginxOptions{true, ""});
  std::filesystem::copy_file(bundle, nginx.root() + "/eos.osu");
  d.WriteConfig("", "demo-x86_64", "  ca_file: " + nginx.ca_file() + "\n");

  SECTION("check") {
    WriteFile(d.path("os-release"), "IMAGE_VERSION=1.0\n");
    auto r = RunUpdate({"--config", d.config(), "--check", nginx.Url("eos.osu")});
    INFO(r.err);
    CHECK(r.code == 100);
    // nginx's own log of bytes sent: the head of the bundle, not the image.
    const std::string log = nginx.AccessLog();
    INFO(log);
    auto pos = log.find("GET /eos.osu ");
    REQUIRE(pos != std::string::npos);
    std::istringstream line(log.substr(pos));
    std::string method, uri;
    int status = 0;
    uint64_t sent = 0;
    line >> method >> uri >> status >> sent;
    CHECK(sent < 64 * 1024);
  }
  SECTION("apply") {
    auto r = RunUpdate({"--config", d.config(), "--apply", nginx.Url("eos.osu")});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK(d.RegionSha256(d.SlotB(), 16u << 20) == Sha256OfFile(image));
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
