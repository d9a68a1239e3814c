// install.skip_unchanged through a real --apply on a disk image: forced on, a re-apply writes
// nothing and the slot still verifies; unset, an image file gets the plain full write.
#include <catch2/catch.hpp>
#include <string>

#include "support/device.hpp"
#include "support/support.hpp"

using namespace osu::test;

namespace {

constexpr uint64_t kImageSize = 6u << 20;

// bytes_written of the --json result line.
uint64_t BytesWritten(const MainResult& r) {
  const std::string key = "\"bytes_written\":";
  const auto pos = r.out.rfind(key);
  REQUIRE(pos != std::string::npos);
  return std::stoull(r.out.substr(pos + key.size()));
}

MainResult Apply(FakeDevice& d, const std::string& bundle) {
  auto r = RunUpdate({"--config", d.config(), "--apply", bundle, "--no-activate", "--json"});
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  CHECK(d.RegionSha256(d.SlotB(), kImageSize) == Sha256OfFile(d.path("v2.img")));
  return r;
}

}  // namespace

TEST_CASE("skip_unchanged forced on: a re-apply writes nothing and verifies", "[apply][skip]") {
  FakeDevice d;
  d.WriteConfig("install:\n  skip_unchanged: true\n");
  const std::string v2 = d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 41), "2.0");
  auto first = Apply(d, v2);
  CHECK_THAT(first.out, Catch::Contains("Writing only the blocks that differ (install.skip_unchanged, image file)"));
  // Slot B starts as zeros: the image's zero runs are already there.
  CHECK(BytesWritten(first) < kImageSize);
  CHECK(BytesWritten(first) > 0);
  auto again = Apply(d, v2);
  CHECK(BytesWritten(again) == 0);
  CHECK_THAT(ReadFile(d.boot() + "/osu/B/record.yml"), Catch::Contains("state: verified"));
}

TEST_CASE("skip_unchanged unset: an image file is written whole", "[apply][skip]") {
  FakeDevice d;
  const std::string v2 = d.MakeBundle("v2.osu", d.MakeImage("v2.img", kImageSize, 42), "2.0");
  auto first = Apply(d, v2);
  CHECK_THAT(first.out, !Catch::Contains("Writing only the blocks that differ"));
  CHECK(BytesWritten(first) == kImageSize);
  CHECK(BytesWritten(Apply(d, v2)) == kImageSize);
}
