// --apply by partial fetch (issue 11): a device that runs v1 in slot B fetches from v2's
// bundle only the chunks it lacks, from a file and from a real nginx; every bad input ends
// in a verified slot A or in a clear error with A not verified and nothing else changed.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <random>

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

std::string RecordA(FakeDevice& d) { return ReadFile(d.boot() + "/osu/A/record.yml"); }
bool VerifiedA(FakeDevice& d) { return RecordA(d).find("state: verified") != std::string::npos; }

uint64_t JsonNumber(const std::string& out, const std::string& key) {
  auto p = out.rfind("\"" + key + "\":");
  REQUIRE(p != std::string::npos);
  return std::stoull(out.substr(p + key.size() + 3));
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
    bytes[bytes.size() - 200000] ^= 0x55;  // inside the image member's frames
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
  Fixture f;
  FakeDevice& d = f.d;
  SECTION("single-range GETs") {
    NginxServer nginx;
    std::filesystem::copy_file(f.b2, nginx.root() + "/v2.osu");
    auto r = Update(d, {"--apply", nginx.Url("v2.osu"), "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    CHECK(JsonNumber(r.out, "fetched_bytes") < std::filesystem::file_size(f.b2) / 4);
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(f.v2));
    CHECK(VerifiedA(d));
  }
  SECTION("Range ignored (max_ranges 0): a warning, then one full download") {
    NginxServer nginx(NginxOptions{false, "max_ranges 0;"});
    std::filesystem::copy_file(f.b2, nginx.root() + "/v2.osu");
    auto r = Update(d, {"--apply", nginx.Url("v2.osu"), "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out + r.err, Catch::Contains("ignored the Range"));
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"full\""));
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(f.v2));
    CHECK(VerifiedA(d));
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
  const std::vector<std::string> dict{"--dictionary-size", "32768"};
  const std::string b1 = d.MakeBundle("v1.osu", v1, "1.0", "zstd", dict);
  const std::string b2 = d.MakeBundle("v2.osu", v2, "2.0", "zstd", dict);
  RunningV1InB(d, b1);
  std::string bytes = ReadFile(b2);
  REQUIRE(bytes.find("format: 3\n") != std::string::npos);
  const size_t dict_header = MemberHeader(bytes, "v2.img.zst.dict");

  SECTION("by chunks, each frame decoded with the dictionary") {
    auto r = Update(d, {"--apply", b2, "--no-activate", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"chunks\""));
    CHECK(JsonNumber(r.out, "fetched_bytes") < bytes.size() / 2);
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(v2));
    CHECK(VerifiedA(d));
  }
  SECTION("the full path decodes the whole stream with it") {
    auto r = Update(d, {"--apply", b2, "--no-activate", "--no-delta", "--json"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"way\":\"full\""));
    CHECK(d.RegionSha256(d.SlotA(), kSize) == Sha256OfFile(v2));
    CHECK(VerifiedA(d));
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
