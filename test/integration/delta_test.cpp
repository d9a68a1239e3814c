// --apply by partial fetch (issue 11): a device that runs v1 in slot B fetches from v2's
// bundle only the chunks it lacks, from a file and from a real nginx; every bad input ends
// in a verified slot A or in a clear error with A not verified and nothing else changed.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <functional>
#include <numeric>
#include <random>
#include <sstream>

#include "bundle/bundle.hpp"
#include "bundle/manifest.hpp"
#include "crypto/signature.hpp"
#include "delta/chunk_index.hpp"
#include "delta/patch_format.hpp"
#include "install/apply_delta.hpp"
#include "integration/block_images.hpp"
#include "support/device.hpp"
#include "support/nginx.hpp"
#include "support/support.hpp"

using namespace osu::test;

namespace {

constexpr uint64_t kSize = 4u << 20;

// v2: v1 with three 20 KiB stretches rewritten and 8 KiB inserted (files that moved).
std::string ChangedImage(FakeDevice& d, const std::string& v1) {
  std::string data = ReadFile(v1);
  for (uint64_t at : {300000u, 1900000u, 3500000u})
    for (uint64_t i = 0; i < 20000; ++i) data[at + i] = static_cast<char>(i * 7 + at);
  data.insert(1000000, std::string(8192, 'x'));
  data.resize(kSize);
  const std::string p = d.path("v2.img");
  WriteFile(p, data);
  return p;
}

// v1 applied with kexec into B, booted and committed there: the next apply targets A.
void RunningV1InB(FakeDevice& d, const std::string& v1_bundle) {
  auto r = Update(d, {"--apply", v1_bundle});
  INFO(r.err);
  REQUIRE(r.code == 0);
  d.SetCmdline("console=ttyS0 ro quiet root=PARTLABEL=p.lxrootclone1 osu.slot=B osu.trial=1");
  r = Update(d, {"--commit"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  d.SetCmdline("console=ttyS0 ro quiet root=PARTLABEL=p.lxrootclone1 osu.slot=B");
  REQUIRE(d.EnvVar("OSU_ORDER") == "B A");
}

// Where a bundle's chunk index member starts, and the member (its size from its tar header).
size_t IndexAt(const std::string& bundle) {
  const size_t at = bundle.find("OSUCHIDX");
  REQUIRE(at != std::string::npos);
  REQUIRE(at % 512 == 0);
  return at;
}
std::string IndexOf(const std::string& bundle) {
  const size_t at = IndexAt(bundle);
  return bundle.substr(at, std::stoull(bundle.substr(at - 512 + 124, 12), nullptr, 8));
}

std::string RecordA(FakeDevice& d) { return ReadFile(d.boot() + "/osu/A/record.yml"); }
bool VerifiedA(FakeDevice& d) { return RecordA(d).find("state: verified") != std::string::npos; }

uint64_t JsonNumber(const std::string& out, const std::string& key) {
  auto p = out.rfind("\"" + key + "\":");
  REQUIRE(p != std::string::npos);
  return std::stoull(out.substr(p + key.size() + 3));
}

// Applies `bundle` into slot A (--no-activate --json and `extra`) and checks what the user
// would: the way taken, slot A byte for byte `image`'s kSize bytes, its record verified.
osu::test::MainResult AppliedTo(FakeDevice& d, const std::string& bundle, const std::string& way,
                                const std::string& image, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--apply", bundle, "--no-activate", "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = Update(d, args);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"way\":\"" + way + "\""));
  CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(image));
  CHECK(VerifiedA(d));
  return r;
}

struct Fixture {
  FakeDevice d;
  std::string v1 = d.MakeImage("v1.img", kSize, 7);
  std::string v2 = ChangedImage(d, v1);
  std::string b1 = d.MakeBundle("v1.osu", v1, "1.0", "zstd");
  std::string b2 = d.MakeBundle("v2.osu", v2, "2.0", "zstd");
  Fixture() { RunningV1InB(d, b1); }
};

}  // namespace

// The patch path (lib/delta/patch.hpp) end to end: `<bundle>.delta-<base>` beside v2's
// bundle, the base in slot B as the fake device keeps it (at an offset in its disk image).
namespace {

// os-update-bundle delta FROM TO in 1 MiB segments (four for these images): the patch's path,
// named for FROM's image (`from_image`) beside TO.
std::string MakePatch(FakeDevice& d, const std::string& from, const std::string& from_image,
                      const std::string& to) {
  auto r = osu::test::RunBundle({"delta", "--from", from, "--to", to, "--key", d.private_key(),
                                 "--segment-size", std::to_string(1u << 20)});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const std::string path = to + ".delta-" + Sha256OfFile(from_image).substr(0, 16);
  REQUIRE(std::filesystem::exists(path));
  return path;
}

struct PatchFixture : Fixture {
  std::string patch = MakePatch(d, b1, v1, b2);
  uint64_t patch_size = std::filesystem::file_size(patch);
  uint64_t bundle_size = std::filesystem::file_size(b2);
  std::string slot_b = d.Fingerprint(d.SlotB());
};

// What the device fetches besides the image: the bundle's front (manifest, signature, chunk
// index) in growing ranges from 64 KiB.
constexpr uint64_t kFront = 1u << 20;

void CheckAppliedV2(PatchFixture& f, const osu::test::MainResult& r) {
  FakeDevice& d = f.d;
  CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(f.v2));
  CHECK(VerifiedA(d));
  CHECK(d.Fingerprint(d.SlotB()) == f.slot_b);  // the booted slot is only read
  // Never more than one full download, whatever failed on the way.
  CHECK(JsonNumber(r.out, "fetched_bytes") < f.bundle_size);
}

}  // namespace

TEST_CASE("partial fetch from a file: only what slot B lacks, slot A verified", "[delta]") {
  Fixture f;
  FakeDevice& d = f.d;
  const uint64_t bundle_size = std::filesystem::file_size(f.b2);

  SECTION("apply") {
    auto r = Update(d, {"--apply", f.b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    CHECK(JsonNumber(r.out, "fetched_bytes") < bundle_size / 4);
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(f.v2));
    CHECK(VerifiedA(d));
    CHECK(ReadFile(d.boot() + "/osu/A/vmlinuz") == ReadFile(d.path("vmlinuz")));
    // B's chunks came from its stored chunk list (v1's index, kept when v1 was installed);
    // A now keeps v2's, byte for byte the bundle's index member.
    CHECK_THAT(r.out, Catch::Contains("Chunks of slot B: its stored chunk list"));
    const std::string b2 = ReadFile(f.b2);
    const size_t at = b2.find("OSUCHIDX");
    REQUIRE(at != std::string::npos);
    const std::string list = ReadFile(d.boot() + "/osu/A/chunks.idx");
    CHECK(b2.compare(at, list.size(), list) == 0);
    CHECK_THAT(RecordA(d), !Catch::Contains("chunks.idx"));  // not a boot file
  }
  SECTION("without B's chunk list: slot B is read for its chunks, the same bytes fetched") {
    auto with = Update(d, {"--apply", f.b2, "--dry-run", "--json"});
    REQUIRE(with.code == 0);
    CHECK_THAT(with.out, Catch::Contains("stored chunk list"));
    std::filesystem::remove(d.boot() + "/osu/B/chunks.idx");
    auto without = Update(d, {"--apply", f.b2, "--dry-run", "--json"});
    REQUIRE(without.code == 0);
    CHECK(JsonNumber(with.out, "download_bytes") == JsonNumber(without.out, "download_bytes"));
    auto r = Update(d, {"--apply", f.b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, !Catch::Contains("stored chunk list"));
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    CHECK(JsonNumber(r.out, "fetched_bytes") < bundle_size / 4);
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(f.v2));
    CHECK(VerifiedA(d));
  }
  SECTION("B's chunk list out of date (v2's, B holds v1): a warning, the slots read, A verified") {
    const std::string bytes = ReadFile(f.b2);
    WriteFile(d.boot() + "/osu/B/chunks.idx", IndexOf(bytes));
    auto r = Update(d, {"--apply", f.b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("warning: a stored chunk list is out of date, reading the slots"));
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(f.v2));
    CHECK(VerifiedA(d));
  }
  SECTION("--no-delta downloads the whole bundle") {
    auto r = Update(d, {"--apply", f.b2, "--no-activate", "--no-delta", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"full\""));
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(f.v2));
  }
  SECTION("--dry-run prints the bytes to download and writes nothing") {
    const std::string before = d.Snapshot() + d.Fingerprint(d.SlotA()) + RecordA(d);
    auto r = Update(d, {"--apply", f.b2, "--dry-run", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    const uint64_t planned = JsonNumber(r.out, "download_bytes");
    CHECK(planned > 0);
    CHECK(planned < bundle_size / 4);
    CHECK(d.Snapshot() + d.Fingerprint(d.SlotA()) + RecordA(d) == before);
  }
  SECTION("slot B changed under its record: the changed chunks are fetched") {
    std::string zeros(200000, 'z');
    {
      FILE* disk = std::fopen(d.disk().c_str(), "r+b");
      REQUIRE(disk);
      std::fseek(disk, static_cast<long>(d.SlotB().offset + 1000000), SEEK_SET);
      std::fwrite(zeros.data(), 1, zeros.size(), disk);
      std::fclose(disk);
    }
    auto r = Update(d, {"--apply", f.b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(f.v2));
    CHECK(VerifiedA(d));
  }
  SECTION("a tampered chunk: the full download finds it too, A not verified, B untouched") {
    std::string bytes = ReadFile(f.b2);
    // A frame the device must fetch: the chunk of v2's image bytes rewritten at 3,500,000.
    auto index = osu::ParseChunkIndex(IndexOf(bytes), "v2");
    REQUIRE(index);
    const size_t image = bytes.find(std::string("v2.img.zst") + '\0') + 512;
    REQUIRE(image % 512 == 0);
    for (const auto& c : index->chunks)
      if (c.offset <= 3510000 && 3510000 < c.offset + c.size)
        bytes[image + c.compressed_offset + c.compressed_size / 2] ^= 0x55;
    WriteFile(f.b2, bytes);
    const std::string before = d.Snapshot();
    auto r = Update(d, {"--apply", f.b2, "--no-activate"});
    INFO(r.out << r.err);
    CHECK(r.code == 2);
    CHECK(!VerifiedA(d));
    CHECK(d.EnvVar("OSU_ORDER") == "B A");
  }
  SECTION("a tampered index: refused before anything is written") {
    std::string bytes = ReadFile(f.b2);
    const auto at = bytes.find("OSUCHIDX");
    REQUIRE(at != std::string::npos);
    bytes[at + 100] ^= 0x01;
    WriteFile(f.b2, bytes);
    const std::string before = RecordA(d) + d.Fingerprint(d.SlotA());
    auto r = Update(d, {"--apply", f.b2, "--no-activate"});
    INFO(r.out << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains("chunk index") && Catch::Contains("sha256 mismatch"));
    CHECK(RecordA(d) + d.Fingerprint(d.SlotA()) == before);
  }
}

TEST_CASE("partial fetch over http from nginx, and from a server that ignores Range", "[delta][http]") {
  PatchFixture f;  // its patch is served only where a section says so
  FakeDevice& d = f.d;
  SECTION("single-range GETs; no patch beside the bundle (404): a note, no warning") {
    NginxServer nginx;
    std::filesystem::copy_file(f.b2, nginx.root() + "/v2.osu");
    auto r = Update(d, {"--apply", nginx.Url("v2.osu"), "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(nginx.AccessLog(), Catch::Contains("GET /" + std::filesystem::path(f.patch).filename().string() + " 404"));
    CHECK_THAT(r.out, Catch::Contains("No patch for slot B"));
    CHECK_THAT(r.out + r.err, !Catch::Contains("warning:"));
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    CHECK(JsonNumber(r.out, "fetched_bytes") < std::filesystem::file_size(f.b2) / 4);
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(f.v2));
    CHECK(VerifiedA(d));
  }
  SECTION("Range ignored (max_ranges 0), a patch beside: a warning, then one full download") {
    NginxServer nginx(NginxOptions{false, "max_ranges 0;"});
    std::filesystem::copy_file(f.b2, nginx.root() + "/v2.osu");
    std::filesystem::copy_file(f.patch, nginx.root() + "/" + std::filesystem::path(f.patch).filename().string());
    auto r = Update(d, {"--apply", nginx.Url("v2.osu"), "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out + r.err, Catch::Contains("ignored the Range"));
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"full\""));
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(f.v2));
    CHECK(VerifiedA(d));
  }
}


TEST_CASE("patch: v1 booted in slot B, v2 through the patch from a file source", "[delta]") {
  PatchFixture f;
  FakeDevice& d = f.d;
  INFO("patch " << f.patch_size << " bytes, bundle " << f.bundle_size);
  REQUIRE(f.patch_size * 4 < f.bundle_size);

  SECTION("apply: the patch, the held boot files copied") {
    auto r = Update(d, {"--apply", f.b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"patch\""));
    const uint64_t fetched = JsonNumber(r.out, "fetched_bytes");
    CHECK(fetched >= f.patch_size);
    CHECK(fetched < f.patch_size + kFront);
    CHECK_THAT(r.out, !Catch::Contains("warning:"));
    CheckAppliedV2(f, r);
  }
  SECTION("--dry-run prints the patch's bytes and writes nothing") {
    const std::string before = d.Snapshot() + RecordA(d);
    auto r = Update(d, {"--apply", f.b2, "--dry-run", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"patch\""));
    CHECK(JsonNumber(r.out, "download_bytes") == f.patch_size);
    CHECK(d.Snapshot() + RecordA(d) == before);
    r = Update(d, {"--apply", f.b2, "--dry-run"});
    CHECK_THAT(r.out + r.err, Catch::Contains(std::to_string(f.patch_size) + " bytes"));
  }
  SECTION("no patch for this base (ENOENT): a note, no warning, the chunks") {
    std::filesystem::remove(f.patch);
    auto r = Update(d, {"--apply", f.b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("No patch for slot B"));
    CHECK_THAT(r.out + r.err, !Catch::Contains("warning:"));
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    CheckAppliedV2(f, r);
  }
  SECTION("a patch for another base under this base's name: refused at its header, the chunks") {
    const std::string v0 = d.MakeImage("v0.img", kSize, 9);
    const std::string b0 = d.MakeBundle("v0.osu", v0, "0.9", "zstd");
    std::filesystem::rename(MakePatch(d, b0, v0, f.b2), f.patch);
    auto r = Update(d, {"--apply", f.b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("warning: patch") &&
                          Catch::Contains("patch is for base image " + Sha256OfFile(v0).substr(0, 16)));
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    CheckAppliedV2(f, r);
  }
  SECTION("a truncated patch, a tampered segment, or slot B changed under its record: the chunks") {
    const std::string full = ReadFile(f.patch);
    const std::string how = GENERATE(std::string("truncated"), std::string("tampered"),
                                     std::string("base changed"));
    INFO(how);
    if (how == "truncated") {
      WriteFile(f.patch, full.substr(0, full.size() * 3 / 5));
    } else if (how == "tampered") {
      std::string p = full;
      p[p.size() - 100] = static_cast<char>(p[p.size() - 100] ^ 0x20);  // the last segment
      WriteFile(f.patch, p);
    } else {
      FILE* disk = std::fopen(d.disk().c_str(), "r+b");
      REQUIRE(disk);
      std::fseek(disk, static_cast<long>(d.SlotB().offset + 2500000), SEEK_SET);
      const std::string junk(300000, 'j');
      std::fwrite(junk.data(), 1, junk.size(), disk);
      std::fclose(disk);
      f.slot_b = d.Fingerprint(d.SlotB());
    }
    auto r = Update(d, {"--apply", f.b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("warning: the patch failed, trying the chunks"));
    CHECK_THAT(r.out, Catch::Contains(how == "truncated" ? "truncated" : "segment "));
    // B's stored chunk list promised the bytes that changed: the slots are read after all.
    if (how == "base changed")
      CHECK_THAT(r.out, Catch::Contains("warning: a stored chunk list is out of date"));
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    CheckAppliedV2(f, r);
  }
  SECTION("v1 in the target slot, another release booted: no patch is asked for, the chunks reuse it") {
    // v1.5 into A, booted and committed there: B (the target now) holds v1, verified.
    const std::string v15 = d.MakeImage("v15.img", kSize, 8);
    const std::string b15 = d.MakeBundle("v15.osu", v15, "1.5", "zstd");
    auto r = Update(d, {"--apply", b15, "--no-delta"});
    REQUIRE(r.code == 0);
    d.SetCmdline("console=ttyS0 ro quiet root=PARTLABEL=p.lxreadonly osu.slot=A osu.trial=1");
    REQUIRE(Update(d, {"--commit"}).code == 0);
    d.SetCmdline("console=ttyS0 ro quiet root=PARTLABEL=p.lxreadonly osu.slot=A");
    r = Update(d, {"--apply", f.b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("No patch for slot A"));
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    CHECK(d.RegionSha256(d.SlotB(), kSize) == Sha256OfFile(f.v2));
    CHECK(ReadFile(d.boot() + "/osu/B/record.yml").find("state: verified") != std::string::npos);
    // v2 moved v1's bytes after 1 MB up by 8 KiB: the target slot serves only chunks it holds
    // at or after their place in v2 (it is written front to back), the rest is fetched.
    CHECK_THAT(r.out, Catch::Contains("from slot B"));
    CHECK(JsonNumber(r.out, "reused_bytes") > 0);
    CHECK(JsonNumber(r.out, "fetched_bytes") < f.bundle_size);
  }
}

TEST_CASE("delta_prefer time: a patch is left only where the whole bundle would end sooner",
          "[delta]") {
  using osu::PatchSlowerThanWhole;
  const uint64_t whole = 200'000'000, patch = 14'000'000;
  // 10 MiB/s: 1.3 s for the patch's bytes, 3 s to compress, against 19 s for the whole.
  CHECK(PatchSlowerThanWhole(patch, 3.0, whole, 10.0 * (1 << 20)).empty());
  // 1 GB/s (loopback): 0.2 s for the whole bundle.
  CHECK_THAT(PatchSlowerThanWhole(patch, 3.0, whole, 1e9),
             Catch::Contains("~3.0 s here") && Catch::Contains("at 1000.0 MB/s (~200 ms)"));
  // The download and the compressing overlap: the longer decides, not the sum.
  CHECK(PatchSlowerThanWhole(patch, 0.9, whole, 1e8 * 2).empty());  // max(0.07, 0.9) < 1.0
  CHECK_FALSE(PatchSlowerThanWhole(patch, 1.1, whole, 1e8 * 2).empty());
  // Nothing to compress again, or no estimate: the patch (the fewest bytes).
  CHECK(PatchSlowerThanWhole(patch, 0, whole, 1e9).empty());
  CHECK(PatchSlowerThanWhole(patch, 3.0, whole, 0).empty());
}

TEST_CASE("patch format 2: changed zstd blocks (a squashfs's) compressed again on the device",
          "[delta]") {
  FakeDevice d;
  const auto pair = osu::test::blocks::MakePair();
  const std::string v1 = d.path("v1.sqfs"), v2 = d.path("v2.sqfs");
  WriteFile(v1, pair.base);
  WriteFile(v2, pair.target);
  const std::string b1 = d.MakeBundle("v1.osu", v1, "1.0", "zstd");
  const std::string b2 = d.MakeBundle("v2.osu", v2, "2.0", "zstd");
  RunningV1InB(d, b1);
  const std::string patch = MakePatch(d, b1, v1, b2);
  REQUIRE(osu::test::blocks::Parse(ReadFile(patch)).h.format == osu::delta::kFormatBlocks);
  const std::string slot_b = d.Fingerprint(d.SlotB());
  auto check_v2 = [&](const osu::test::MainResult& r) {
    CHECK(d.RegionSha256(d.SlotA(), pair.target.size()) == Sha256OfFile(v2));
    CHECK(VerifiedA(d));
    CHECK(d.Fingerprint(d.SlotB()) == slot_b);  // the base slot is only read
    CHECK(JsonNumber(r.out, "fetched_bytes") < std::filesystem::file_size(b2));
  };

  // The content of the blocks the header lists to compress again: the device's CPU cost.
  uint64_t recompress = 0;
  for (const auto& e : osu::test::blocks::Parse(ReadFile(patch)).h.segments)
    for (const auto& b : e.blocks) recompress += b.content_size;
  REQUIRE(recompress > 0);

  SECTION("the patch: slot A holds v2, verified") {
    // A slow link (1 MB/s): the patch ends long before the whole bundle would.
    d.WriteConfig("", "demo-x86_64", "  link_rate: 1000000\n");
    auto plan = Update(d, {"--apply", b2, "--dry-run", "--json"});
    INFO(plan.out << plan.err);
    REQUIRE(plan.code == 0);
    CHECK(JsonNumber(plan.out, "recompress_bytes") == recompress);
    auto said = Update(d, {"--apply", b2, "--dry-run"});
    CHECK_THAT(said.out, Catch::Contains("and compressing " + std::to_string(recompress) +
                                         " bytes of zstd blocks again"));
    auto r = Update(d, {"--apply", b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"patch\""));
    CHECK(JsonNumber(r.out, "recompress_bytes") == recompress);
    CHECK_THAT(r.out + r.err, !Catch::Contains("warning:"));
    CHECK(JsonNumber(r.out, "fetched_bytes") < std::filesystem::file_size(patch) + kFront);
    check_v2(r);
  }
  SECTION("a link faster than this device compresses: the chunks, and the reason said") {
    // 4 GB/s: the whole bundle (a few MB) in a millisecond or two, against compressing three
    // 128 KiB blocks at level 12 again.
    d.WriteConfig("", "demo-x86_64", "  link_rate: 4000000000\n");
    auto plan = Update(d, {"--apply", b2, "--dry-run"});
    INFO(plan.out << plan.err);
    REQUIRE(plan.code == 0);
    CHECK_THAT(plan.out + plan.err, Catch::Contains("not used: compressing its zstd blocks again takes") &&
                             Catch::Contains("by partial fetch"));
    auto r = Update(d, {"--apply", b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\"") &&
                          Catch::Contains("at 4000.0 MB/s") &&
                          Catch::Contains("update.delta_prefer: bytes takes it"));
    CHECK_THAT(r.out + r.err, !Catch::Contains("warning:"));
    check_v2(r);
    CHECK(JsonNumber(r.out, "fetched_bytes") > std::filesystem::file_size(patch));
  }
  SECTION("update.delta_prefer: bytes: the patch on that link too") {
    d.WriteConfig("", "demo-x86_64", "  link_rate: 4000000000\n  delta_prefer: bytes\n");
    auto r = Update(d, {"--apply", b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"patch\""));
    CHECK(JsonNumber(r.out, "fetched_bytes") < std::filesystem::file_size(patch) + kFront);
    check_v2(r);
  }
  SECTION("a device whose zstd compresses otherwise than the builder's: a warning, the chunks") {
    d.WriteConfig("", "demo-x86_64", "  delta_prefer: bytes\n");
    // Signed by the builder's key: only the bytes this device makes differ (as another zstd
    // version's would).
    auto p = osu::test::blocks::Parse(ReadFile(patch));
    osu::test::blocks::WithBlocks(p).blocks.front().level = 3;
    WriteFile(patch, osu::test::blocks::Signed(p, d.private_key()));
    auto r = Update(d, {"--apply", b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("warning: the patch failed, trying the chunks") &&
                          Catch::Contains("compresses otherwise than the builder's"));
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    check_v2(r);
  }
}

TEST_CASE("patch: over http from nginx in growing single-range GETs", "[delta][http]") {
  PatchFixture f;
  FakeDevice& d = f.d;
  const std::string patch_name = std::filesystem::path(f.patch).filename().string();
  NginxServer nginx;
  std::filesystem::copy_file(f.b2, nginx.root() + "/v2.osu");
  std::filesystem::copy_file(f.patch, nginx.root() + "/" + patch_name);
  auto r = Update(d, {"--apply", nginx.Url("v2.osu"), "--no-activate", "--json"});
  INFO(r.out << r.err << nginx.AccessLog());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"way\":\"patch\""));
  const uint64_t fetched = JsonNumber(r.out, "fetched_bytes");
  CHECK(fetched >= f.patch_size);
  CHECK(fetched < f.patch_size + kFront);
  CHECK_THAT(nginx.AccessLog(), Catch::Contains("GET /" + patch_name + " 206"));
  CheckAppliedV2(f, r);
}

TEST_CASE("patch: a device that takes the patch never downloads the bundle's chunk index",
          "[delta][http]") {
  // 1 KiB chunks: an index of ~100 KiB, past the bundle's first 64 KiB range. The
  // patch way needs the manifest only; the index is read when the chunks are needed.
  FakeDevice d;
  const std::string v1 = d.MakeImage("v1.img", kSize, 7);
  const std::string v2 = ChangedImage(d, v1);
  const std::vector<std::string> small{"--chunk-size", "1024"};
  const std::string b1 = d.MakeBundle("v1.osu", v1, "1.0", "zstd", small);
  const std::string b2 = d.MakeBundle("v2.osu", v2, "2.0", "zstd", small);
  RunningV1InB(d, b1);
  const std::string patch = MakePatch(d, b1, v1, b2);
  // Where v2's index ends in the bundle: past the first range, or the test proves nothing.
  const std::string bundle = ReadFile(b2);
  const uint64_t index_end = IndexAt(bundle) + IndexOf(bundle).size();
  REQUIRE(index_end > (64u << 10) + 1);
  NginxServer nginx;
  std::filesystem::copy_file(b2, nginx.root() + "/v2.osu");
  std::filesystem::copy_file(patch, nginx.root() + "/" + std::filesystem::path(patch).filename().string());
  auto bundle_bytes = [&] {
    uint64_t sent = 0;
    std::istringstream log(nginx.AccessLog());
    for (std::string method, uri, status; log >> method >> uri >> status;) {
      uint64_t bytes = 0;
      log >> bytes;
      if (uri == "/v2.osu") sent += bytes;
      log.ignore(1 << 20, '\n');
    }
    return sent;
  };

  SECTION("patch: the bundle's first range only") {
    auto r = Update(d, {"--apply", nginx.Url("v2.osu"), "--no-activate", "--json"});
    INFO(r.out << r.err << nginx.AccessLog());
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"patch\""));
    CHECK(bundle_bytes() <= (64u << 10) + 1);  // a 1-byte probe for its size, the first range
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(v2));
  }
  SECTION("a patch for another base: the index is fetched then, and the chunks taken") {
    std::filesystem::remove(nginx.root() + "/" + std::filesystem::path(patch).filename().string());
    auto r = Update(d, {"--apply", nginx.Url("v2.osu"), "--no-activate", "--json"});
    INFO(r.out << r.err << nginx.AccessLog());
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    CHECK(bundle_bytes() >= index_end);  // the index came too
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(v2));
  }
}
namespace {

// Text-like records (a small vocabulary): what a zstd dictionary can learn from.
std::string TextImage(FakeDevice& d, const std::string& name, unsigned seed, uint64_t size) {
  static const char* kWords[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot",
                                 "golf", "hotel", "india", "juliet", "kilo", "lima"};
  std::mt19937 rng(seed);
  std::string data;
  for (unsigned n = 0; data.size() < size; ++n)
    data += "record " + std::to_string(n) + " name=" + kWords[rng() % 12] + " value=" +
            kWords[rng() % 12] + "-" + std::to_string(rng() % 1000) + "\n";
  data.resize(size);
  const std::string p = d.path(name);
  WriteFile(p, data);
  return p;
}

// Where a tar member's header starts (its name followed by a NUL: the manifest quotes it).
size_t MemberHeader(const std::string& tar, const std::string& name) {
  const size_t at = tar.find(name + std::string(1, '\0'));
  REQUIRE(at != std::string::npos);
  REQUIRE(at % 512 == 0);
  return at;
}

}  // namespace

TEST_CASE("partial fetch with a zstd dictionary (format 3)", "[delta]") {
  FakeDevice d;
  const std::string v1 = TextImage(d, "v1.img", 1, kSize);
  std::string text = ReadFile(v1);
  for (uint64_t at : {500000u, 2500000u}) text.replace(at, 30000, ReadFile(TextImage(d, "n.img", 9, 30000)));
  const std::string v2 = d.path("v2.img");
  WriteFile(v2, text);
  // A dictionary and a window do not combine: format 3 is made with --chunk-window 0.
  const std::vector<std::string> dict{"--dictionary-size", "32768", "--chunk-window", "0"};
  const std::string b1 = d.MakeBundle("v1.osu", v1, "1.0", "zstd", dict);
  const std::string b2 = d.MakeBundle("v2.osu", v2, "2.0", "zstd", dict);
  RunningV1InB(d, b1);
  std::string bytes = ReadFile(b2);
  REQUIRE(bytes.find("format: 3\n") != std::string::npos);
  const size_t dict_header = MemberHeader(bytes, "v2.img.zst.dict");

  SECTION("by chunks, each frame decoded with the dictionary") {
    auto r = AppliedTo(d, b2, "chunks", v2);
    CHECK(JsonNumber(r.out, "fetched_bytes") < bytes.size() / 2);
  }
  SECTION("the full path decodes the whole stream with it") {
    AppliedTo(d, b2, "full", v2, {"--no-delta"});
  }
  SECTION("a tampered dictionary: refused before a byte is written, either way") {
    bytes[dict_header + 512 + 100] ^= 0x01;
    WriteFile(b2, bytes);
    const std::string before = RecordA(d) + d.Fingerprint(d.SlotA());
    for (const char* way : {"--json", "--no-delta"}) {
      auto r = Update(d, {"--apply", b2, "--no-activate", way});
      INFO(way << r.out << r.err);
      CHECK(r.code == 2);
      CHECK_THAT(r.err, Catch::Contains("zstd dictionary") && Catch::Contains("sha256 mismatch"));
      CHECK(RecordA(d) + d.Fingerprint(d.SlotA()) == before);
    }
  }
  SECTION("a missing dictionary member: refused before a byte is written") {
    const uint64_t size = std::stoull(bytes.substr(dict_header + 124, 11), nullptr, 8);
    bytes.erase(dict_header, 512 + (size + 511) / 512 * 512);
    WriteFile(b2, bytes);
    const std::string before = RecordA(d) + d.Fingerprint(d.SlotA());
    auto r = Update(d, {"--apply", b2, "--no-activate"});
    INFO(r.out << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains("expected zstd dictionary 'v2.img.zst.dict'"));
    CHECK(RecordA(d) + d.Fingerprint(d.SlotA()) == before);
  }
}

// Format 4 (the default): each chunk's frame refers to the image bytes before it, so both
// ways decode with the image they have assembled so far: the full path frame by frame with
// the index, the partial path with the slot's own chunks and the fetched ones in order.
namespace {

// `bundle` rewritten with its chunk index edited by `edit`, the manifest updated to the new
// index's size and sha256 and signed again with the device's trusted key.
std::string ForgeIndex(FakeDevice& d, const std::string& bundle, const std::string& name,
                       const std::function<void(std::string&)>& edit) {
  const std::string dir = d.path(name + ".d");
  std::filesystem::create_directories(dir);
  MustRun("tar -xf " + bundle + " -C " + dir);
  std::vector<std::string> members;
  std::istringstream list(MustRun("tar -tf " + bundle));
  for (std::string line; std::getline(list, line);) members.push_back(line);
  auto manifest = osu::ParseManifest(ReadFile(dir + "/manifest.yaml"));
  REQUIRE(manifest);
  REQUIRE(manifest->index);
  std::string index = ReadFile(dir + "/" + manifest->index->name);
  edit(index);
  WriteFile(dir + "/" + manifest->index->name, index);
  manifest->index->size = index.size();
  manifest->index->sha256 = Sha256OfFile(dir + "/" + manifest->index->name);
  const std::string text = osu::SerializeManifest(*manifest);
  auto sig = osu::Sign(text, d.private_key());
  REQUIRE(sig);
  WriteFile(dir + "/manifest.yaml", text);
  WriteFile(dir + "/manifest.sig", *sig);
  const std::string out = d.path(name);
  auto w = osu::BundleWriter::Create(out);
  REQUIRE(w);
  for (const auto& m : members) REQUIRE((*w)->AddFile(m, dir + "/" + m));
  REQUIRE((*w)->Close());
  return out;
}

}  // namespace

TEST_CASE("partial fetch in format 4: frames made with the image before them", "[delta]") {
  FakeDevice d;
  // 64 KiB pieces, each one of 8 random blocks: a chunk alone does not compress, with the
  // image before it as its prefix it does (as an ext4's repeated blocks).
  std::mt19937_64 rng(5);
  std::vector<std::string> blocks(8, std::string(64u << 10, '\0'));
  for (auto& b : blocks)
    for (auto& c : b) c = static_cast<char>(rng());
  std::string text;
  while (text.size() < kSize) text += blocks[rng() % blocks.size()];
  const std::string v1 = d.path("v1.img");
  WriteFile(v1, text);
  // v2: three stretches edited every 64th byte (new chunks whose frames refer to the bytes
  // before them) and 5000 bytes inserted.
  for (uint64_t at : {700000u, 1900000u, 2900000u})
    for (uint64_t i = 0; i < 30000; i += 64) text[at + i] = static_cast<char>(~text[at + i]);
  text.insert(1500000, std::string(5000, 'x'));
  text.resize(kSize);
  const std::string v2 = d.path("v2.img");
  WriteFile(v2, text);
  // --chunk-refs 0: format 4 as devices that read formats up to 4 take it.
  const std::string b1 = d.MakeBundle("v1.osu", v1, "1.0", "zstd", {"--chunk-refs", "0"});
  const std::string b2 = d.MakeBundle("v2.osu", v2, "2.0", "zstd", {"--chunk-refs", "0"});
  RunningV1InB(d, b1);
  REQUIRE(ReadFile(b2).find("format: 4\n") != std::string::npos);
  const std::string slot_b = d.Fingerprint(d.SlotB());

  SECTION("by chunks: only what B lacks is fetched, A byte-identical and verified") {
    auto r = AppliedTo(d, b2, "chunks", v2);
    CHECK(JsonNumber(r.out, "fetched_bytes") < std::filesystem::file_size(b2) / 2);
    CHECK(JsonNumber(r.out, "reused_bytes") > kSize / 2);
    CHECK(d.Fingerprint(d.SlotB()) == slot_b);
  }
  SECTION("the full path decodes frame by frame with the index") {
    AppliedTo(d, b2, "full", v2, {"--no-delta"});
  }
  SECTION("--chunk-window 0 (format 2, for older devices) still applies by chunks") {
    const std::string two = d.MakeBundle("v2-f2.osu", v2, "2.0", "zstd", {"--chunk-window", "0"});
    REQUIRE(ReadFile(two).find("format: 2\n") != std::string::npos);
    CHECK(std::filesystem::file_size(two) > std::filesystem::file_size(b2));
    AppliedTo(d, two, "chunks", v2);
  }
  SECTION("a signed index whose window is not the frames' one: both ways fail, A not verified") {
    // 4 KiB instead of 2 MiB: frames that refer further back (most here) no longer decode.
    const std::string forged = ForgeIndex(d, b2, "forged.osu", [](std::string& index) {
      REQUIRE(index[8] == 3);
      const uint32_t window = 4096;
      std::memcpy(index.data() + 24, &window, sizeof window);
    });
    const std::string before = RecordA(d);
    auto r = Update(d, {"--apply", forged, "--no-activate", "--json"});
    INFO(r.out << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.out, Catch::Contains("warning:"));  // the chunks failed: the whole bundle next
    CHECK_THAT(r.err, Catch::Contains("chunk ") && Catch::Contains("zstd frame"));
    CHECK(!VerifiedA(d));
    CHECK(d.EnvVar("OSU_ORDER") == "B A");
    CHECK(d.Fingerprint(d.SlotB()) == slot_b);
    auto verify = RunBundle({"verify", forged, "--key", d.public_key()});
    CHECK(verify.code == 2);
  }
  SECTION("a signed index without a window under format 4: refused before a byte is written") {
    const std::string forged = ForgeIndex(d, b2, "nowindow.osu", [](std::string& index) {
      REQUIRE(index[8] == 3);
      index.erase(24, 4);
      index[8] = 2;
    });
    const std::string before = RecordA(d) + d.Fingerprint(d.SlotA());
    for (const char* way : {"--json", "--no-delta"}) {
      auto r = Update(d, {"--apply", forged, "--no-activate", way});
      INFO(way << r.out << r.err);
      CHECK(r.code == 2);
      CHECK_THAT(r.err, Catch::Contains("format 4 needs a"));
      CHECK(RecordA(d) + d.Fingerprint(d.SlotA()) == before);
    }
  }
}

TEST_CASE("partial fetch in format 5: frames that refer to earlier chunks like them", "[delta]") {
  FakeDevice d;
  // 1 MiB of 16 distinct random 64 KiB blocks, 2.5 MiB of other random bytes, then the 16
  // blocks again in another order, each with a few bytes changed: the last MiB's chunks are
  // like chunks 3.5 MiB back, outside any frame's 2 MiB window.
  std::mt19937_64 rng(11);
  auto random = [&](size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  };
  std::vector<std::string> blocks;
  for (int i = 0; i < 16; ++i) blocks.push_back(random(64u << 10));
  std::string text;
  for (const auto& b : blocks) text += b;
  text += random((5u << 20) / 2);
  std::vector<size_t> order(blocks.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  for (size_t i : order) {
    std::string b = blocks[i];
    for (size_t at = 1000; at < b.size(); at += 9000) b[at] = static_cast<char>(~b[at]);
    text += b;
  }
  text.resize(kSize, '\0');
  const std::string v1 = d.path("v1.img");
  WriteFile(v1, text);
  // v2: a stretch of the repeated blocks rewritten (their chunks are fetched, and their
  // frames need the first MiB's chunks) and one of the first ones (a referenced chunk is new).
  for (uint64_t i = 0; i < 60000; i += 50) text[(7u << 19) + i] ^= 0x5a;
  for (uint64_t i = 0; i < 3000; i += 30) text[200000 + i] ^= 0x33;
  const std::string v2 = d.path("v2.img");
  WriteFile(v2, text);
  // Level 9, the default (the tests' level 1 hashes too little of a prefix to find the
  // referenced chunks before the window: they would not pay, and the builder would drop them).
  const std::string b1 = d.MakeBundle("v1.osu", v1, "1.0", "zstd", {"--level", "9"});
  const std::string b2 = d.MakeBundle("v2.osu", v2, "2.0", "zstd", {"--level", "9"});
  RunningV1InB(d, b1);
  REQUIRE(ReadFile(b2).find("format: 5\n") != std::string::npos);
  auto made = osu::ParseChunkIndex(IndexOf(ReadFile(b2)), "v2");
  REQUIRE(made);
  CHECK(made->refs == 2);
  size_t referring = 0;
  for (const auto& c : made->chunks) referring += c.ref_count > 0;
  CHECK(referring > 20);  // the last half MiB's chunks, most of them
  // Without the references those frames hold their blocks whole: 400 KiB more at least.
  const std::string four =
      d.MakeBundle("v2-f4.osu", v2, "2.0", "zstd", {"--level", "9", "--chunk-refs", "0"});
  CHECK(std::filesystem::file_size(four) > std::filesystem::file_size(b2) + (400u << 10));
  const std::string slot_b = d.Fingerprint(d.SlotB());

  SECTION("by chunks: only what B lacks is fetched, A byte-identical and verified") {
    auto r = AppliedTo(d, b2, "chunks", v2);
    CHECK(JsonNumber(r.out, "fetched_bytes") < std::filesystem::file_size(b2) / 4);
    CHECK(d.Fingerprint(d.SlotB()) == slot_b);
  }
  SECTION("the full path decodes with the chunks it keeps for later frames") {
    AppliedTo(d, b2, "full", v2, {"--no-delta"});
  }
  SECTION("a signed index whose references point elsewhere: both ways fail, A not verified") {
    const std::string forged = ForgeIndex(d, b2, "forged.osu", [](std::string& index) {
      REQUIRE(index[8] == 4);
      // Every reference to chunk r made one to chunk r+1 (still earlier than its chunk).
      uint64_t count = 0;
      auto parsed = osu::ParseChunkIndex(index, "x");
      REQUIRE(parsed);
      const size_t at = 48 + parsed->chunks.size() * 24;  // the header, the chunks
      std::memcpy(&count, index.data() + at, sizeof count);
      REQUIRE(count > 0);
      for (uint64_t k = 0; k < count; ++k) {
        uint32_t chunk, of;
        std::memcpy(&chunk, index.data() + at + 8 + 8 * k, 4);
        std::memcpy(&of, index.data() + at + 8 + 8 * k + 4, 4);
        if (of + 1 < chunk) ++of;
        std::memcpy(index.data() + at + 8 + 8 * k + 4, &of, 4);
      }
    });
    auto r = Update(d, {"--apply", forged, "--no-activate", "--json"});
    INFO(r.out << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.out, Catch::Contains("warning:"));  // the chunks failed: the whole bundle next
    CHECK(!VerifiedA(d));
    CHECK(d.EnvVar("OSU_ORDER") == "B A");
    CHECK(d.Fingerprint(d.SlotB()) == slot_b);
    CHECK(RunBundle({"verify", forged, "--key", d.public_key()}).code == 2);
  }
  SECTION("a signed format 4 index under format 5, or the other way: refused before writing") {
    const std::string four_index = IndexOf(ReadFile(four));
    const std::string forged =
        ForgeIndex(d, b2, "noref.osu", [&](std::string& index) { index = four_index; });
    const std::string before = RecordA(d) + d.Fingerprint(d.SlotA());
    for (const char* way : {"--json", "--no-delta"}) {
      auto r = Update(d, {"--apply", forged, "--no-activate", way});
      INFO(way << r.out << r.err);
      CHECK(r.code == 2);
      CHECK_THAT(r.err, Catch::Contains("format 5 needs references between chunks"));
      CHECK(RecordA(d) + d.Fingerprint(d.SlotA()) == before);
    }
  }
}
