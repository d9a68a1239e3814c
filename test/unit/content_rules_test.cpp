// CheckBundleContent, rule by rule: what a correctly signed manifest may still not say. The
// same rules are asserted end to end in test/integration/bundle_content_test.cpp (create
// refuses, --apply and --check refuse with nothing changed).
#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "bundle/content_rules.hpp"

namespace {

const std::string kHex(64, 'a');

osu::Manifest Good() {
  osu::Manifest m;
  m.compatible = "eos-x86_64-kvm";
  m.version = "2.0.0";
  m.min_version = "1.0.0";
  m.cmdline = "console=ttyS0 quiet rootwait rootfstype=ext4";
  m.image = {"rootfs.img.xz", 4096, kHex};
  m.boot_files = {{"vmlinuz", 123, kHex}, {"initrd.img", 4567, kHex}};
  return m;
}

std::string ErrorOf(const std::function<void(osu::Manifest&)>& edit) {
  osu::Manifest m = Good();
  edit(m);
  auto r = osu::CheckBundleContent(m);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind() == osu::ErrorKind::Verification);
  CHECK(r.error().message().find('\n') == std::string::npos);
  CHECK(r.error().message().find('\x1b') == std::string::npos);
  return r.error().message();
}

bool Accepted(const std::function<void(osu::Manifest&)>& edit) {
  osu::Manifest m = Good();
  edit(m);
  auto r = osu::CheckBundleContent(m);
  if (!r) UNSCOPED_INFO(r.error().message());
  return r.ok();
}

}  // namespace

TEST_CASE("content rules: a plain manifest passes") { CHECK(Accepted([](osu::Manifest&) {})); }

TEST_CASE("content rules: boot file names are one safe, unreserved, stageable component") {
  auto named = [](std::string name) {
    return ErrorOf([&](osu::Manifest& m) { m.boot_files[0].name = name; });
  };
  CHECK(named("../vmlinuz") ==
        "manifest: boot_files[0].name '../vmlinuz' is not one file name: it contains '/'");
  CHECK(named("boot/vmlinuz").find("it contains '/'") != std::string::npos);
  for (const std::string dotted : {".", "..", ".hidden", ".vmlinuz.new", ".record.yml.tmp"}) {
    CAPTURE(dotted);
    CHECK(named(dotted).find("starts with '.'") != std::string::npos);
  }
  CHECK(named("") == "manifest: boot_files[0].name is empty");
  CHECK(named("vmlinuz.") == "manifest: boot_files[0].name 'vmlinuz.' ends with '.' (FAT drops it)");
  CHECK(named("a\x1b[2Jb") == "manifest: boot_files[0].name 'a\\x1b[2Jb' has a character other "
                              "than A-Z a-z 0-9 . _ + ~ -");
  CHECK(named("a b").find("has a character other than") != std::string::npos);
  CHECK(named("a\nb").find("'a\\nb'") != std::string::npos);
  CHECK(named("k\xff").find("'k\\xff'") != std::string::npos);
  for (const std::string reserved :
       {"record.yml", "grub.cfg", "boot.env", "manifest.yaml", "manifest.sig", "GRUB.CFG",
        "Record.yml"}) {
    CAPTURE(reserved);
    CHECK(named(reserved) == "manifest: boot_files[0].name '" + reserved +
                                 "' is reserved: os-update keeps its own file of that name");
  }
  // ".NAME.new" must fit NAME_MAX (255): 250 is the longest name that can be staged.
  CHECK(osu::kMaxFileName == 250);
  CHECK(Accepted([](osu::Manifest& m) { m.boot_files[0].name = std::string(250, 'k'); }));
  CHECK(named(std::string(251, 'k')) ==
        "manifest: boot_files[0].name '" + std::string(40, 'k') +
            "...' is 251 bytes, more than the 250 that can be staged on the boot partition");
  CHECK(Accepted([](osu::Manifest& m) {
    m.boot_files[0].name = "vmlinuz-6.1.0+rpt-rpi-v8~1_x";
    m.boot_files[1].name = "bcm2712-rpi-5-b.dtb";
  }));
}

TEST_CASE("content rules: no two members the same, ignoring case as FAT does") {
  CHECK(ErrorOf([](osu::Manifest& m) { m.boot_files[1].name = "vmlinuz"; }) ==
        "manifest: boot_files[1].name 'vmlinuz' is used twice (ignoring case, as FAT does; the "
        "image counts too)");
  CHECK(ErrorOf([](osu::Manifest& m) { m.boot_files[1].name = "VMLINUZ"; })
            .find("is used twice") != std::string::npos);
  CHECK(ErrorOf([](osu::Manifest& m) { m.boot_files[0].name = "rootfs.img.xz"; })
            .find("boot_files[0].name 'rootfs.img.xz' is used twice") != std::string::npos);
  CHECK(ErrorOf([](osu::Manifest& m) { m.image.name = "manifest.sig"; }) ==
        "manifest: image.name 'manifest.sig' is reserved: os-update keeps its own file of that "
        "name");
  CHECK(ErrorOf([](osu::Manifest& m) { m.image.name = "/dev/sda"; })
            .find("image.name '/dev/sda' is not one file name") != std::string::npos);
}

TEST_CASE("content rules: the command line cannot set what os-update sets") {
  auto cmdline = [](std::string text) {
    return ErrorOf([&](osu::Manifest& m) { m.cmdline = text; });
  };
  CHECK(cmdline("quiet root=/dev/sda1") ==
        "manifest: cmdline 'quiet root=/dev/sda1' sets 'root', which os-update sets itself for "
        "the slot it boots (root=, osu.*)");
  for (const std::string owned : {"osu.slot=B", "osu.trial=1", "osu.trial", "\"root=PARTUUID=x\"",
                                  "root=\"PARTLABEL=a b\"", "osu.anything=1"}) {
    CAPTURE(owned);
    CHECK(cmdline("quiet " + owned).find("which os-update sets itself") != std::string::npos);
  }
  CHECK(cmdline("quiet -- single").find("holds '--'") != std::string::npos);
  CHECK(cmdline("quiet \"x").find("leaves a quote open") != std::string::npos);
  CHECK(cmdline("quiet a=\"b").find("leaves a quote open") != std::string::npos);
  // The kernel splits at 0xa0 too: "quiet<nbsp>osu.slot=B" would set it.
  CHECK(cmdline("quiet\xa0osu.slot=B") ==
        "manifest: cmdline 'quiet\\xa0osu.slot=B' has a character that is not printable ASCII");
  CHECK(cmdline("quiet\nroot=x").find("not printable ASCII") != std::string::npos);
  CHECK(cmdline("quiet\x1b[2J").find("'quiet\\x1b[2J'") != std::string::npos);
  CHECK(cmdline(std::string(1025, 'q')).find("is 1025 bytes, more than 1024") != std::string::npos);
  CHECK(Accepted([](osu::Manifest& m) { m.cmdline = std::string(1024, 'q'); }));
  CHECK(Accepted([](osu::Manifest& m) { m.cmdline = ""; }));
  CHECK(Accepted([](osu::Manifest& m) { m.cmdline = "a=\"b c\" rootdelay=2 osu=1 xosu.slot=2"; }));
}

TEST_CASE("content rules: version, min_version and compatible: a charset and a length") {
  for (const std::string field : {"version", "min_version", "compatible"}) {
    CAPTURE(field);
    auto set = [&](std::string value) {
      return [field, value](osu::Manifest& m) {
        if (field == "version") m.version = value;
        if (field == "min_version") m.min_version = value;
        if (field == "compatible") m.compatible = value;
      };
    };
    CHECK(ErrorOf(set("")) == "manifest: " + field + " is empty");
    CHECK(ErrorOf(set("2.0 beta")) ==
          "manifest: " + field + " '2.0 beta' has a character other than A-Z a-z 0-9 . _ + ~ : , -");
    CHECK(ErrorOf(set("2.0\n")).find("'2.0\\n'") != std::string::npos);
    CHECK(ErrorOf(set("2\x1b]0;x\x07")).find("'2\\x1b]0;x\\x07'") != std::string::npos);
    CHECK(ErrorOf(set("2.\xc3\xa9")).find("has a character other") != std::string::npos);
    CHECK(ErrorOf(set("-1")) == "manifest: " + field + " '-1' does not start with a letter or digit");
    CHECK(ErrorOf(set(std::string(129, '1'))).find("is 129 bytes, more than 128") !=
          std::string::npos);
    CHECK(Accepted(set(std::string(128, '1'))));
    CHECK(Accepted(set("1:2.0~rc1+b1_x,vendor-board")));
  }
  CHECK(Accepted([](osu::Manifest& m) { m.min_version.reset(); }));
}

TEST_CASE("content rules: an image of 0 bytes is refused") {
  CHECK(ErrorOf([](osu::Manifest& m) { m.image.size = 0; }) ==
        "manifest: image.size is 0: an empty image would erase a slot");
  CHECK(Accepted([](osu::Manifest& m) { m.boot_files[0].size = 0; }));
}
