// os-update --apply/--check/--status end to end on a disk image built from
// partition-layouts/, with real bundles and real signatures. Every bad input asserts the exit
// code, the message, and that nothing outside the target slot changed.
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>

#include "bundle/bundle.hpp"
#include "bundle/manifest.hpp"
#include "crypto/signature.hpp"
#include "support/device.hpp"
#include "support/support.hpp"

using namespace osu::test;

namespace {

constexpr uint64_t kImageSize = 9u << 20;  // several 4 MiB chunks
constexpr uint64_t kOddSize = kImageSize + 12345;  // not a multiple of 4096 either

MainResult Apply(FakeDevice& d, const std::string& source, std::vector<std::string> more = {}) {
  std::vector<std::string> args{"--config", d.config(), "--apply", source};
  args.insert(args.end(), more.begin(), more.end());
  return RunUpdate(args);
}

std::string RecordState(FakeDevice& d, char slot) {
  const std::string p = d.boot() + "/osu/" + slot + "/record.yml";
  if (!FileExists(p)) return "none";
  auto text = ReadFile(p);
  auto pos = text.find("state: ");
  return text.substr(pos + 7, text.find('\n', pos) - pos - 7);
}

// The members of a good bundle, unpacked with the real tar.
struct Members {
  std::string dir;
  std::string manifest, signature;
  osu::Manifest parsed;
};
Members Unpack(FakeDevice& d, const std::string& bundle, const std::string& into) {
  Members m;
  m.dir = d.path(into);
  std::filesystem::create_directories(m.dir);
  MustRun("tar -xf '" + bundle + "' -C '" + m.dir + "'");
  m.manifest = ReadFile(m.dir + "/manifest.yaml");
  m.signature = ReadFile(m.dir + "/manifest.sig");
  auto parsed = osu::ParseManifest(m.manifest);
  REQUIRE(parsed);
  m.parsed = *parsed;
  return m;
}

// Content that names a file to copy instead of bytes. A NUL-framed prefix, because member
// bytes are arbitrary: a signature starts with any byte (a one-character marker such as '@'
// made 1 run in 256 read a signature as a path).
const std::string kFileRef("\0file\0", 6);
std::string FileRef(const std::string& path) { return kFileRef + path; }

// Writes a bundle member by member; FileRef entries name files in the unpack dir.
std::string Forge(FakeDevice& d, const std::string& name,
                  const std::vector<std::pair<std::string, std::string>>& members) {
  const std::string out = d.path(name);
  auto w = osu::BundleWriter::Create(out);
  REQUIRE(w);
  for (const auto& [member, content] : members) {
    const bool from_file = content.starts_with(kFileRef);
    auto added = from_file ? (*w)->AddFile(member, content.substr(kFileRef.size()))
                           : (*w)->AddBytes(member, content);
    INFO("member " << member << ": " << (added ? std::string("added") : added.error().message()));
    REQUIRE(added);
  }
  auto closed = (*w)->Close();
  INFO((closed ? std::string("closed") : closed.error().message()));
  REQUIRE(closed);
  return out;
}

std::string SignWith(const std::string& manifest, const std::string& key) {
  auto sig = osu::Sign(manifest, key);
  REQUIRE(sig);
  return *sig;
}

// A bundle whose manifest was edited by `edit` and signed again with the trusted key.
std::string ForgeEdited(FakeDevice& d, const std::string& good, const std::string& name,
                        const std::function<void(osu::Manifest&)>& edit,
                        const std::string& image_override = "") {
  Members m = Unpack(d, good, name + ".d");
  osu::Manifest edited = m.parsed;
  edit(edited);
  const std::string text = osu::SerializeManifest(edited);
  std::vector<std::pair<std::string, std::string>> members{
      {"manifest.yaml", text}, {"manifest.sig", SignWith(text, d.private_key())}};
  for (const auto& f : m.parsed.boot_files) members.emplace_back(f.name, FileRef(m.dir + "/" + f.name));
  members.emplace_back(m.parsed.image.name,
                       image_override.empty() ? FileRef(m.dir + "/" + m.parsed.image.name)
                                              : image_override);
  return Forge(d, name, members);
}

// Asserts a refused apply: exit code, message, nothing outside slot B changed, and slot B is
// not recorded as verified.
void ExpectRefused(FakeDevice& d, const std::string& before, const MainResult& r, int code,
                   const std::string& message) {
  INFO("stderr: " << r.err);
  CHECK(r.code == code);
  CHECK_THAT(r.err, Catch::Contains(message));
  CHECK(HasOneErrorLine(r.err));
  CHECK(d.Snapshot() == before);
  CHECK(RecordState(d, 'B') != "verified");
}

}  // namespace

TEST_CASE("apply installs a signed bundle into the inactive slot, every codec", "[apply]") {
  const char* codec = GENERATE("xz", "zstd", "gzip", "none");
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", kOddSize, 7);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", codec);
  const std::string before = d.Snapshot();

  auto r = Apply(d, bundle);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("Installed 2.0 into slot B"));
  const auto calls = LastActivatorCalls();

  // The user's check: slot B holds exactly the image (sha256sum as the oracle).
  CHECK(d.RegionSha256(d.SlotB(), kOddSize) == Sha256OfFile(image));
  CHECK(d.Snapshot() == before);
  CHECK(RecordState(d, 'B') == "verified");
  for (const auto& f : d.BootFiles())
    CHECK(ReadFile(d.boot() + "/osu/B/" + std::filesystem::path(f).filename().string()) ==
          ReadFile(f));

  auto status = RunUpdate({"--config", d.config(), "--status", "--json"});
  REQUIRE(status.code == 0);
  CHECK_THAT(status.out, Catch::Contains("\"booted\":\"A\""));
  CHECK_THAT(status.out, Catch::Contains("\"committed\":\"A\""));
  CHECK_THAT(status.out, Catch::Contains("\"trial\":false"));

  // Default activation on x86: kexec of B's kernel with root= rewritten, env untouched but for
  // B being out of the fallback order while it was rewritten (grub-editenv reads it).
  REQUIRE(calls.size() == 2);
  CHECK(calls[0] == "load " + d.boot() + "/osu/B/vmlinuz " + d.boot() +
                        "/osu/B/initrd.img console=ttyS0 ro quiet root=PARTLABEL=p.lxrootclone1 "
                        "osu.slot=B osu.trial=1");
  CHECK(calls[1] == "kexec");
  CHECK(d.EnvVar("OSU_ORDER") == "A B");
  CHECK(d.EnvVar("OSU_B_LEFT") == "0");
  CHECK(d.EnvVar("OSU_TRY") == "<unset>");
  CHECK_THAT(ReadFile(d.boot() + "/osu/B/grub.cfg"), Catch::Contains("set osu_root=\"PARTUUID="));
  CHECK_THAT(status.out, Catch::Contains("\"version\":\"2.0\""));
  CHECK_THAT(status.out, Catch::Contains("\"state\":\"verified\""));
  CHECK_THAT(status.out, Catch::Contains("\"sha256\":\"" + Sha256OfFile(image) + "\""));
}

TEST_CASE("apply reads file://, stdin, and reports JSON lines", "[apply]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", kImageSize, 8);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "zstd");
  SECTION("file://") {
    auto r = Apply(d, "file://" + bundle, {"--json"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"event\":\"result\""));
    CHECK_THAT(r.out, Catch::Contains("\"slot\":\"B\""));
  }
  SECTION("stdin") {
    auto r = RunUpdate({"--config", d.config(), "--apply", "-"}, ReadFile(bundle));
    INFO(r.err);
    REQUIRE(r.code == 0);
  }
  CHECK(d.RegionSha256(d.SlotB(), kImageSize) == Sha256OfFile(image));
}

TEST_CASE("the booted slot comes from the kernel command line", "[apply]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", kImageSize, 9);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "zstd");
  d.SetCmdline("console=ttyS0 root=PARTLABEL=p.lxrootclone1 osu.slot=B");
  MustRun("grub-editenv '" + d.grubenv() + "' set OSU_ORDER='B A'");  // B is committed
  const std::string a_before = d.Fingerprint(d.SlotA());
  const std::string b_before = d.Fingerprint(d.SlotB());
  auto r = Apply(d, bundle);
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("into slot A"));
  CHECK(d.Fingerprint(d.SlotB()) == b_before);  // booted B untouched
  CHECK(d.Fingerprint(d.SlotA()) != a_before);
  CHECK(d.RegionSha256(d.SlotA(), kImageSize) == Sha256OfFile(image));
}

TEST_CASE("check reads only manifest and signature and compares versions", "[check]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", kImageSize, 10);
  const std::string v2 = d.MakeBundle("v2.osu", image, "2.0", "xz");
  SECTION("the booted slot's record gives the installed version") {
    auto r = RunUpdate({"--config", d.config(), "--check", v2});
    CHECK(r.code == 100);
    CHECK_THAT(r.out, Catch::Contains("Installed: 1.0 (slot A)"));
  }
  SECTION("freshly flashed device without a record: version from os-release") {
    std::filesystem::remove(d.boot() + "/osu/A/record.yml");
    WriteFile(d.path("os-release"), "ID=eos\nIMAGE_VERSION=1.4\n");
    auto r = RunUpdate({"--config", d.config(), "--check", v2});
    CHECK(r.code == 100);
    CHECK_THAT(r.out, Catch::Contains("Installed: 1.4"));
    CHECK_THAT(r.out, Catch::Contains("Available: 2.0"));
    auto j = RunUpdate({"--config", d.config(), "--check", v2, "--json"});
    CHECK(j.code == 100);
    CHECK_THAT(j.out, Catch::Contains("\"update_available\":true"));
  }
  SECTION("up to date") {
    std::filesystem::remove(d.boot() + "/osu/A/record.yml");
    WriteFile(d.path("os-release"), "ID=eos\nIMAGE_VERSION=2.0\n");
    auto r = RunUpdate({"--config", d.config(), "--check", v2});
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("Up to date"));
  }
  SECTION("never reads the image: a bundle cut right after the signature still checks") {
    Members m = Unpack(d, v2, "cut.d");
    const std::string cut = Forge(d, "cut.osu", {{"manifest.yaml", m.manifest},
                                                 {"manifest.sig", m.signature}});
    auto r = RunUpdate({"--config", d.config(), "--check", cut});
    CHECK(r.code == 100);
  }
  SECTION("a bad signature is exit 2, not 'update available'") {
    Members m = Unpack(d, v2, "bad.d");
    std::string sig = m.signature;
    sig[5] = static_cast<char>(sig[5] ^ 1);
    const std::string bad = Forge(d, "bad.osu", {{"manifest.yaml", m.manifest}, {"manifest.sig", sig}});
    auto r = RunUpdate({"--config", d.config(), "--check", bad});
    CHECK(r.code == 2);
  }
}

TEST_CASE("bad config is a usage error and changes nothing", "[apply][bad]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", kImageSize, 11);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "zstd");
  const std::string before = d.Snapshot();
  SECTION("missing") {
    auto r = RunUpdate({"--config", d.path("nope.yml"), "--apply", bundle});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("nope.yml") && Catch::Contains("No such file"));
  }
  SECTION("malformed") {
    WriteFile(d.path("bad.yml"), "update:\n  keys: [a, b\n");
    auto r = RunUpdate({"--config", d.path("bad.yml"), "--apply", bundle});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("bad.yml") && Catch::Contains("line"));
  }
  SECTION("unknown key") {
    WriteFile(d.path("typo.yml"), "update:\n  compatibel: x\n");
    auto r = RunUpdate({"--config", d.path("typo.yml"), "--status"});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("update.compatibel is not a known key"));
  }
  CHECK(d.Snapshot() == before);
  CHECK(RecordState(d, 'B') == "none");
}

TEST_CASE("bad bundles are refused with exit 2 and change nothing outside the target", "[apply][bad]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", kImageSize, 12);
  const std::string good = d.MakeBundle("good.osu", image, "2.0", "xz");
  const std::string good_zstd = d.MakeBundle("good-zstd.osu", image, "2.0", "zstd", {"--no-chunks"});
  Members m = Unpack(d, good, "good.d");
  const std::string before = d.Snapshot();
  auto boot_members = [&](const Members& mm) {
    std::vector<std::pair<std::string, std::string>> v;
    for (const auto& f : mm.parsed.boot_files) v.emplace_back(f.name, FileRef(mm.dir + "/" + f.name));
    return v;
  };

  SECTION("not a tar") {
    WriteFile(d.path("junk.osu"), std::string(10000, 'x'));
    ExpectRefused(d, before, Apply(d, d.path("junk.osu")), 2, "not a tar archive");
  }
  SECTION("manifest missing") {
    auto v = boot_members(m);
    v.insert(v.begin(), {"manifest.sig", m.signature});
    ExpectRefused(d, before, Apply(d, Forge(d, "x.osu", v)), 2, "manifest.yaml");
  }
  SECTION("manifest not first") {
    auto v = boot_members(m);
    v.insert(v.begin() + 1, {"manifest.yaml", m.manifest});
    v.insert(v.begin() + 2, {"manifest.sig", m.signature});
    ExpectRefused(d, before, Apply(d, Forge(d, "x.osu", v)), 2, "manifest.yaml");
  }
  SECTION("signature missing") {
    auto v = boot_members(m);
    v.insert(v.begin(), {"manifest.yaml", m.manifest});
    v.emplace_back(m.parsed.image.name, FileRef(m.dir + "/" + m.parsed.image.name));
    ExpectRefused(d, before, Apply(d, Forge(d, "x.osu", v)), 2, "manifest.sig");
  }
  SECTION("signed by an unknown key") {
    MustRun("openssl genpkey -algorithm ed25519 -out '" + d.path("other.pem") + "'");
    auto v = boot_members(m);
    v.insert(v.begin(), {"manifest.sig", SignWith(m.manifest, d.path("other.pem"))});
    v.insert(v.begin(), {"manifest.yaml", m.manifest});
    v.emplace_back(m.parsed.image.name, FileRef(m.dir + "/" + m.parsed.image.name));
    ExpectRefused(d, before, Apply(d, Forge(d, "x.osu", v)), 2, "does not match");
  }
  SECTION("manifest modified after signing (one flipped byte)") {
    std::string text = m.manifest;
    auto pos = text.find("2.0");
    text[pos] = '3';
    auto v = boot_members(m);
    v.insert(v.begin(), {"manifest.sig", m.signature});
    v.insert(v.begin(), {"manifest.yaml", text});
    v.emplace_back(m.parsed.image.name, FileRef(m.dir + "/" + m.parsed.image.name));
    ExpectRefused(d, before, Apply(d, Forge(d, "x.osu", v)), 2, "does not match");
  }
  SECTION("one flipped byte in a boot file") {
    std::string kernel = ReadFile(m.dir + "/vmlinuz");
    kernel[kernel.size() / 2] = static_cast<char>(kernel[kernel.size() / 2] ^ 0x20);
    std::vector<std::pair<std::string, std::string>> v{
        {"manifest.yaml", m.manifest}, {"manifest.sig", m.signature}, {"vmlinuz", kernel},
        {"initrd.img", FileRef(m.dir + "/initrd.img")},
        {m.parsed.image.name, FileRef(m.dir + "/" + m.parsed.image.name)}};
    ExpectRefused(d, before, Apply(d, Forge(d, "x.osu", v)), 2, "vmlinuz");
    CHECK(RecordState(d, 'B') == "invalid");
  }
  SECTION("one flipped byte in the compressed image") {
    std::string xz = ReadFile(m.dir + "/" + m.parsed.image.name);
    xz[xz.size() / 2] = static_cast<char>(xz[xz.size() / 2] ^ 0x01);
    auto v = boot_members(m);
    v.insert(v.begin(), {"manifest.sig", m.signature});
    v.insert(v.begin(), {"manifest.yaml", m.manifest});
    v.emplace_back(m.parsed.image.name, xz);
    ExpectRefused(d, before, Apply(d, Forge(d, "x.osu", v)), 2, "slot B");
    CHECK(RecordState(d, 'B') == "invalid");
  }
  SECTION("corrupt zstd stream") {
    Members z = Unpack(d, good_zstd, "z.d");
    std::string zs = ReadFile(z.dir + "/" + z.parsed.image.name);
    for (size_t i = zs.size() / 3; i < zs.size() / 3 + 64; ++i) zs[i] = '\x55';
    auto v = boot_members(z);
    v.insert(v.begin(), {"manifest.sig", z.signature});
    v.insert(v.begin(), {"manifest.yaml", z.manifest});
    v.emplace_back(z.parsed.image.name, zs);
    ExpectRefused(d, before, Apply(d, Forge(d, "x.osu", v)), 2, "slot B");
  }
  SECTION("image larger than the slot") {
    auto big = ForgeEdited(d, good, "big.osu",
                           [&](osu::Manifest& mm) { mm.image.size = d.SlotB().size + 4096; });
    ExpectRefused(d, before, Apply(d, big), 2, "does not fit slot B");
    CHECK(RecordState(d, 'B') == "none");  // refused before anything was written
  }
  SECTION("wrong compatible") {
    auto other = ForgeEdited(d, good, "other.osu",
                             [](osu::Manifest& mm) { mm.compatible = "eos-rpi5"; });
    ExpectRefused(d, before, Apply(d, other), 2, "'eos-rpi5'");
    CHECK(RecordState(d, 'B') == "none");
  }
  SECTION("image shorter than the manifest says") {
    auto longer = ForgeEdited(d, good, "short.osu",
                              [](osu::Manifest& mm) { mm.image.size += 4096; });
    ExpectRefused(d, before, Apply(d, longer), 2, "shorter");
  }
  SECTION("image longer than the manifest says") {
    auto shorter = ForgeEdited(d, good, "long.osu",
                               [](osu::Manifest& mm) { mm.image.size -= 4096; });
    ExpectRefused(d, before, Apply(d, shorter), 2, "longer");
  }
  SECTION("truncated at several points") {
    const std::string all = ReadFile(good);
    // Inside the first header, the manifest, a boot file, the image, the image's last block.
    // (A cut of only the tar trailer's zero blocks leaves every member whole and verified.)
    for (size_t cut : {size_t{100}, size_t{1024}, size_t{4096}, size_t{120000}, all.size() / 3,
                       all.size() - 3000}) {
      WriteFile(d.path("cut.osu"), all.substr(0, cut));
      auto r = Apply(d, d.path("cut.osu"));
      INFO("cut at " << cut << ": " << r.err);
      CHECK(r.code == 2);
      CHECK_THAT(r.err, Catch::Contains("truncated") || Catch::Contains("not a tar") ||
                            Catch::Contains("not signed"));
      CHECK(d.Snapshot() == before);
      CHECK(RecordState(d, 'B') != "verified");
    }
  }
}

TEST_CASE("manifests that fail validation are refused before anything is written", "[apply][bad]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", kImageSize, 13);
  const std::string good = d.MakeBundle("good.osu", image, "2.0", "xz");
  Members m = Unpack(d, good, "m.d");
  const std::string before = d.Snapshot();
  auto forge_text = [&](const std::string& name, const std::string& text) {
    return Forge(d, name, {{"manifest.yaml", text}, {"manifest.sig", SignWith(text, d.private_key())},
                           {"vmlinuz", FileRef(m.dir + "/vmlinuz")},
                           {"initrd.img", FileRef(m.dir + "/initrd.img")},
                           {m.parsed.image.name, FileRef(m.dir + "/" + m.parsed.image.name)}});
  };
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    auto pos = s.find(from);
    REQUIRE(pos != std::string::npos);
    return s.replace(pos, from.size(), to);
  };
  SECTION("unknown compression") {
    auto b = forge_text("c.osu", replace(m.manifest, "compression: xz", "compression: lz4"));
    ExpectRefused(d, before, Apply(d, b), 2, "lz4");
  }
  SECTION("boot file name with '/'") {
    auto b = forge_text("s.osu", replace(m.manifest, "name: \"vmlinuz\"", "name: \"../../EFI/vmlinuz\""));
    ExpectRefused(d, before, Apply(d, b), 2, "EFI/vmlinuz");
  }
  SECTION("boot file name '..'") {
    auto b = forge_text("d.osu", replace(m.manifest, "name: \"vmlinuz\"", "name: \"..\""));
    ExpectRefused(d, before, Apply(d, b), 2, "..");
  }
  CHECK(RecordState(d, 'B') == "none");
}

TEST_CASE("disks without usable slots and missing sources", "[apply][bad]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", kImageSize, 14);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "zstd");
  const std::string before = d.Snapshot();
  SECTION("SOURCE not found") {
    ExpectRefused(d, before, Apply(d, d.path("missing.osu")), 3, "missing.osu");
  }
  SECTION("a disk without A/B labels") {
    d.WriteConfig("", "demo-x86_64");
    MustRun("sfdisk --part-label '" + d.disk() + "' 3 something-else >/dev/null 2>&1");
    auto r = Apply(d, bundle);
    CHECK(r.code == 4);
    CHECK_THAT(r.err, Catch::Contains("p.lxrootclone1"));
    MustRun("sfdisk --part-label '" + d.disk() + "' 3 p.lxrootclone1 >/dev/null 2>&1");
  }
  SECTION("a label found twice") {
    MustRun("sfdisk --part-label '" + d.disk() + "' 4 p.lxrootclone1 >/dev/null 2>&1");
    auto r = Apply(d, bundle);
    CHECK(r.code == 4);
    CHECK_THAT(r.err, Catch::Contains("p.lxrootclone1"));
    CHECK_THAT(r.err, Catch::Contains("twice") || Catch::Contains("more than once"));
  }
  SECTION("the booted slot cannot be told") {
    d.SetCmdline("console=ttyS0 quiet");
    auto r = Apply(d, bundle);
    CHECK(r.code == 4);
  }
  CHECK(d.Snapshot() == before);
  CHECK(RecordState(d, 'B') == "none");
}

TEST_CASE("a second os-update waits for nobody: the lock refuses it", "[apply][bad]") {
  FakeDevice d;
  const std::string image = d.MakeImage("rootfs.img", kImageSize, 15);
  const std::string bundle = d.MakeBundle("v2.osu", image, "2.0", "zstd");
  const std::string before = d.Snapshot();
  // flock(1) holds the lock as another process would.
  auto r = Run("flock -n '" + d.path("os-update.lock") + "' sh -c '" + BinaryDir() +
               "/cmd/os-update --config " + d.config() + " --apply " + bundle + "; echo rc=$?'");
  CHECK_THAT(r.output, Catch::Contains("another os-update is running"));
  CHECK_THAT(r.output, Catch::Contains("rc=4"));
  CHECK(d.Snapshot() == before);
}
