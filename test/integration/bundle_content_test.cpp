// Signed but hostile bundle content (bundle/content_rules.hpp), end to end: for every rule,
// `os-update-bundle create` refuses to build it (exit 1, no output file), and a bundle forged
// with the device's own signing key is refused by `--check` and `--apply` (exit 2) before a
// byte is written: slot B's bytes, every file under the boot directory (records, boot files,
// grubenv) and the env as grub-editenv reads it are exactly as before. Text from the bundle
// is escaped in every message and every --json line is JSON (python3 as the oracle).
#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <sstream>

#include "bundle/manifest.hpp"
#include "crypto/sha256.hpp"
#include "integration/bundle_fixture.hpp"
#include "support/device.hpp"
#include "support/support.hpp"

using namespace osu::test;  // NOLINT: test helpers

namespace {

// All a refused command must leave alone, slot B and its record included.
std::string Everything(const FakeDevice& d) {
  std::ostringstream s;
  s << d.Snapshot() << "slot B: " << d.Fingerprint(d.SlotB()) << "\nenv:\n" << d.Env() << "\n";
  for (const auto& e : std::filesystem::recursive_directory_iterator(d.boot()))
    if (e.is_regular_file())
      s << e.path().string() << ": " << osu::Sha256Hex(ReadFile(e.path().string())) << "\n";
  return s.str();
}

// A device whose slot B already holds a verified install (so "unchanged" means something),
// and the members of that good bundle to forge from.
struct Device {
  FakeDevice d;
  std::string good, kernel, initrd, image;
  osu::Manifest base;

  Device() {
    const std::string rootfs = d.MakeImage("rootfs.img", 1u << 20, 5);
    good = d.MakeBundle("good.osu", rootfs, "2.0");
    auto r = Update(d, {"--apply", good, "--no-activate"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    kernel = MustRun("tar -xOf " + good + " vmlinuz");
    initrd = MustRun("tar -xOf " + good + " initrd.img");
    image = MustRun("tar -xOf " + good + " rootfs.img.xz");
    auto parsed = osu::ParseManifest(bundle::ManifestOf(good));
    REQUIRE(parsed);
    base = *parsed;
  }

  // The good bundle with `edit` applied to its manifest, signed with the device's trusted key,
  // its members named as the edited manifest says.
  std::string Forge(const std::function<void(osu::Manifest&)>& edit) {
    osu::Manifest m = base;
    edit(m);
    std::vector<std::pair<std::string, std::string>> members;
    const std::vector<std::string> data{kernel, initrd};
    for (size_t i = 0; i < m.boot_files.size(); ++i)
      members.emplace_back(m.boot_files[i].name, i < data.size() ? data[i] : "x");
    members.emplace_back(m.image.name, image);
    const std::string out = d.path("hostile.osu");
    bundle::Forge(out, osu::SerializeManifest(m), d.private_key(), members);
    return out;
  }
};

struct Case {
  std::string what;
  std::function<void(osu::Manifest&)> edit;
  std::string message;  // a part of the one error line
};

std::vector<Case> HostileCases() {
  auto boot0 = [](std::string name) {
    return [name](osu::Manifest& m) { m.boot_files[0].name = name; };
  };
  return {
      {"a path", boot0("../vmlinuz"), "boot_files[0].name '../vmlinuz' is not one file name"},
      {"a hidden name", boot0(".vmlinuz.new"), "boot_files[0].name '.vmlinuz.new' starts with '.'"},
      {"the record's name", boot0("record.yml"), "'record.yml' is reserved"},
      {"GRUB's slot snippet", boot0("grub.cfg"), "'grub.cfg' is reserved"},
      {"U-Boot's slot snippet, other case", boot0("Boot.Env"), "'Boot.Env' is reserved"},
      {"a name too long to stage", boot0(std::string(251, 'k')), "is 251 bytes, more than the 250"},
      {"a terminal escape", boot0("k\x1b[2J"), "'k\\x1b[2J' has a character other than"},
      {"a trailing dot", boot0("vmlinuz."), "ends with '.'"},
      {"a duplicate, by case", [](osu::Manifest& m) { m.boot_files[1].name = "VMLINUZ"; },
       "boot_files[1].name 'VMLINUZ' is used twice"},
      {"root= in the cmdline", [](osu::Manifest& m) { m.cmdline = "quiet root=/dev/sda2"; },
       "sets 'root', which os-update sets itself"},
      {"osu.slot= in the cmdline", [](osu::Manifest& m) { m.cmdline = "osu.slot=A"; },
       "sets 'osu.slot'"},
      {"osu.trial in the cmdline", [](osu::Manifest& m) { m.cmdline = "quiet osu.trial=1"; },
       "sets 'osu.trial'"},
      {"-- in the cmdline", [](osu::Manifest& m) { m.cmdline = "quiet -- single"; },
       "holds '--'"},
      {"an open quote in the cmdline", [](osu::Manifest& m) { m.cmdline = "quiet \"x"; },
       "leaves a quote open"},
      {"a newline in the cmdline", [](osu::Manifest& m) { m.cmdline = "quiet\nroot=x"; },
       "'quiet\\nroot=x' has a character that is not printable ASCII"},
      {"a cmdline too long", [](osu::Manifest& m) { m.cmdline = std::string(1025, 'q'); },
       "is 1025 bytes, more than 1024"},
      {"a control character in the version", [](osu::Manifest& m) { m.version = "3.0\x07"; },
       "version '3.0\\x07' has a character other than"},
      {"a space in the version", [](osu::Manifest& m) { m.version = "3.0 final"; },
       "version '3.0 final' has a character other than"},
      {"a version too long", [](osu::Manifest& m) { m.version = std::string(129, '3'); },
       "version '" + std::string(40, '3') + "...' is 129 bytes"},
      {"an escape in min_version", [](osu::Manifest& m) { m.min_version = "1\x1b]0;x"; },
       "min_version '1\\x1b]0;x' has a character other than"},
      {"a newline in compatible", [](osu::Manifest& m) { m.compatible = "demo-x86_64\n"; },
       "compatible 'demo-x86_64\\n' has a character other than"},
      {"an empty version", [](osu::Manifest& m) { m.version = ""; }, "version is empty"},
      {"the image named as the signature", [](osu::Manifest& m) { m.image.name = "manifest.sig"; },
       "image.name 'manifest.sig' is reserved"},
      {"an image of 0 bytes", [](osu::Manifest& m) { m.image.size = 0; },
       "image.size is 0"},
  };
}

}  // namespace

TEST_CASE("hostile content: --check and --apply refuse a correctly signed bundle, nothing changes",
          "[apply][content]") {
  Device dev;
  const std::string before = Everything(dev.d);
  CHECK(dev.d.EnvVar("OSU_B_LEFT") == "0");  // B is verified, out of the boot order
  for (const Case& c : HostileCases()) {
    CAPTURE(c.what);
    const std::string bundle = dev.Forge(c.edit);
    // The forging is sound: the signature verifies with the device's key.
    CHECK(bundle::Verify(bundle, dev.d.public_key()).err.find("signature") == std::string::npos);
    for (const std::string action : {"--check", "--apply"}) {
      CAPTURE(action);
      auto r = Update(dev.d, {action, bundle});
      INFO("stderr: " << r.err);
      CHECK(r.code == 2);
      CHECK_THAT(r.err, Catch::StartsWith("os-update: '" + bundle + "': manifest: "));
      CHECK_THAT(r.err, Catch::Contains(c.message));
      CHECK(HasOneErrorLine(r.err));
      CHECK(r.err.find('\x1b') == std::string::npos);
      CHECK(Everything(dev.d) == before);
    }
    CHECK(LastActivatorCalls().empty());
  }
}

TEST_CASE("a cmdline with quotes: a GRUB device refuses to apply it, nothing changes",
          "[apply][content]") {
  // Valid for U-Boot and the Pi firmware, which pass it as written; GRUB's linux command would
  // hand the kernel a=\"b and c\" (the fake device boots with GRUB).
  Device dev;
  const std::string before = Everything(dev.d);
  const std::string bundle =
      dev.Forge([](osu::Manifest& m) { m.cmdline = "quiet dyndbg=\"file x.c +p\""; });
  auto r = Update(dev.d, {"--apply", bundle});
  INFO("stderr: " << r.err);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("the bundle's cmdline has a \", which GRUB's linux command"));
  CHECK(HasOneErrorLine(r.err));
  CHECK(Everything(dev.d) == before);
  CHECK(LastActivatorCalls().empty());
}

TEST_CASE("hostile content: os-update-bundle verify and info report it", "[content]") {
  Device dev;
  for (const Case& c : HostileCases()) {
    CAPTURE(c.what);
    const std::string bundle = dev.Forge(c.edit);
    auto verify = bundle::Verify(bundle, dev.d.public_key());
    bundle::RequireRefused(verify, "'" + bundle + "': manifest: ");
    CHECK_THAT(verify.err, Catch::Contains(c.message));
    auto info = RunBundle({"info", bundle});
    CHECK(info.code == 2);
    CHECK_THAT(info.out, Catch::Contains("members:"));  // shown, then judged
    CHECK(info.out.find('\x1b') == std::string::npos);
    CHECK(HasOneErrorLine(info.err, "os-update-bundle"));
    CHECK_THAT(info.err, Catch::Contains(c.message));
  }
}

TEST_CASE("hostile content: os-update-bundle create refuses to build it", "[content]") {
  bundle::Fixture f;
  const std::string out = f.dir / "out.osu";
  auto refused = [&](std::vector<std::string> args, const std::string& message) {
    auto r = RunBundle(args);
    INFO("stderr: " << r.err);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains(message));
    CHECK_THAT(r.err, Catch::Contains("(devices refuse such a bundle)"));
    CHECK(HasOneErrorLine(r.err, "os-update-bundle"));
    CHECK(r.err.find('\x1b') == std::string::npos);
    // Nothing written: no bundle, no temporary bundle, no compressed image.
    CHECK_FALSE(FileExists(out));
    CHECK_FALSE(FileExists(out + ".tmp"));
    CHECK_FALSE(FileExists(out + ".image.tmp"));
  };
  auto with = [&](const std::string& option, const std::string& value) {
    auto args = f.CreateArgs(out, "xz");
    auto it = std::find(args.begin(), args.end(), option);
    if (it == args.end()) {
      args.insert(args.end(), {option, value});
    } else {
      *(it + 1) = value;
    }
    args.insert(args.end(), {"--key", f.key});
    return args;
  };
  auto boot_file = [&](const std::string& name) {
    std::filesystem::create_directories(f.dir / "files");
    const std::string path = f.dir / "files/" + name;
    WriteFile(path, "a boot file");
    auto args = f.CreateArgs(out, "xz");  // vmlinuz, initrd.img, then this one
    args.insert(args.end(), {"--boot-file", path, "--key", f.key});
    return args;
  };
  refused(boot_file("record.yml"), "boot_files[2].name 'record.yml' is reserved");
  refused(boot_file("GRUB.CFG"), "'GRUB.CFG' is reserved");
  refused(boot_file("boot.env"), "'boot.env' is reserved");
  refused(boot_file(".hidden"), "'.hidden' starts with '.'");
  refused(boot_file(std::string(251, 'k')), "is 251 bytes, more than the 250");
  refused(boot_file("k\x1b[2J\n\xff"), "'k\\x1b[2J\\n\\xff' has a character other than");
  refused(boot_file("dot."), "ends with '.'");
  refused(boot_file("VMLINUZ"), "boot_files[2].name 'VMLINUZ' is used twice");
  refused(with("--cmdline", "quiet root=/dev/sda2"), "sets 'root'");
  refused(with("--cmdline", "osu.slot=B"), "sets 'osu.slot'");
  refused(with("--cmdline", "osu.trial=1"), "sets 'osu.trial'");
  refused(with("--cmdline", "quiet -- single"), "holds '--'");
  refused(with("--cmdline", "quiet \"x"), "leaves a quote open");
  refused(with("--cmdline", "a\tb"), "'a\\tb' has a character that is not printable ASCII");
  refused(with("--cmdline", std::string(1025, 'q')), "is 1025 bytes, more than 1024");
  refused(with("--version", "2.0\n\x1b[2J"), "version '2.0\\n\\x1b[2J' has a character other");
  refused(with("--version", "2.0 final"), "version '2.0 final' has a character other");
  refused(with("--version", std::string(129, '2')), "is 129 bytes, more than 128");
  refused(with("--version", ""), "version is empty");
  refused(with("--min-version", "-1"), "min_version '-1' does not start with a letter or digit");
  refused(with("--compatible", "eos x86"), "compatible 'eos x86' has a character other");
  WriteFile(f.dir / "empty.img", "");
  refused(with("--image", f.dir / "empty.img"), "image.size is 0");
  WriteFile(f.dir / "root fs.img", "x");
  refused(with("--image", f.dir / "root fs.img"), "image.name 'root fs.img.xz' has a character");

  // The longest name that can be staged is built, and installs (test below).
  auto ok = RunBundle(boot_file(std::string(250, 'k')));
  INFO(ok.err);
  CHECK(ok.code == 0);
}

TEST_CASE("hostile content: a 250-byte boot file name is staged and installed", "[apply][content]") {
  Device dev;
  const std::string name(250, 'k');
  const std::string bundle = dev.Forge([&](osu::Manifest& m) {
    m.version = "2.1";
    m.boot_files.push_back({name, 1, osu::Sha256Hex("x")});
  });
  auto r = Update(dev.d, {"--apply", bundle, "--no-activate"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(ReadFile(dev.d.boot() + "/osu/B/" + name) == "x");
}

namespace {

// python3's json module, on strictly decoded UTF-8, as the oracle: every line one JSON object.
void RequireJsonLines(const std::string& out) {
  TempDir dir;
  WriteFile(dir / "out", out);
  auto r = Run("python3 -c 'import json,sys\n"
               "for l in open(sys.argv[1], \"rb\").read().decode(\"utf-8\").splitlines():\n"
               "    assert isinstance(json.loads(l), dict), l' " + dir / "out");
  INFO("output: " << out << "\npython3: " << r.output);
  CHECK(r.exit_code == 0);
  CHECK(!out.empty());
  CHECK(out.back() == '\n');
}

const std::string kHostileText = "a\n\x1b[2J\xff\xfe\xc2\x9b" "b";
const std::string kEscaped = "a\\n\\x1b[2J\\xff\\xfe\\u009bb";

}  // namespace

TEST_CASE("hostile text: names with a newline, escapes and bad UTF-8 print as one line, --json "
          "lines parse", "[apply][content]") {
  RequireTool("python3");
  Device dev;
  const std::string before = Everything(dev.d);

  SECTION("a boot file so named: refused before writing, the name escaped") {
    const std::string bundle =
        dev.Forge([](osu::Manifest& m) { m.boot_files[0].name = kHostileText; });
    for (const std::string action : {"--check", "--apply"}) {
      auto r = Update(dev.d, {action, bundle, "--json"});
      CHECK(r.code == 2);
      CHECK(HasOneErrorLine(r.err));
      CHECK_THAT(r.err, Catch::Contains("boot_files[0].name '" + kEscaped + "'"));
      RequireJsonLines(r.out);
      CHECK(Everything(dev.d) == before);
    }
    auto info = RunBundle({"info", bundle, "--json"});
    CHECK(info.code == 2);
    RequireJsonLines(info.out);
    CHECK(HasOneErrorLine(info.err, "os-update-bundle"));
    auto text = RunBundle({"info", bundle});
    CHECK_THAT(text.out, Catch::Contains("  " + kEscaped + "  boot file"));
    CHECK(text.out.find('\x1b') == std::string::npos);
  }
  SECTION("a member so named after the image: found after writing, the record's reason escaped") {
    const std::string bundle = dev.d.path("extra.osu");
    osu::Manifest m = dev.base;
    m.version = "2.1";
    bundle::Forge(bundle, osu::SerializeManifest(m), dev.d.private_key(),
                  {{"vmlinuz", dev.kernel}, {"initrd.img", dev.initrd},
                   {"rootfs.img.xz", dev.image}, {kHostileText, "x"}});
    auto r = Update(dev.d, {"--apply", bundle, "--json", "--no-activate"});
    CHECK(r.code == 2);
    CHECK(HasOneErrorLine(r.err));
    CHECK_THAT(r.err, Catch::Contains("unexpected member '" + kEscaped + "' after the image"));
    RequireJsonLines(r.out);
    auto status = Update(dev.d, {"--status"});
    CHECK_THAT(status.out, Catch::Contains("reason: '" + dev.d.path("extra.osu") +
                                           "': unexpected member '" + kEscaped + "'"));
    CHECK(status.out.find('\x1b') == std::string::npos);
    RequireJsonLines(Update(dev.d, {"--status", "--json"}).out);
  }
  SECTION("a source so named") {
    const std::string missing = dev.d.path(kHostileText + ".osu");
    auto r = Update(dev.d, {"--apply", missing, "--json"});
    CHECK(r.code == 3);
    CHECK(HasOneErrorLine(r.err));
    CHECK(r.err.find('\x1b') == std::string::npos);
    RequireJsonLines(r.out);
    CHECK(Everything(dev.d) == before);
  }
}
