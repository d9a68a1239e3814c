#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "bundle/manifest.hpp"

namespace {

const std::string kHexA(64, 'a');
const std::string kHexB(64, 'b');

osu::Manifest Sample() {
  osu::Manifest m;
  m.compatible = "eos-x86_64-kvm";
  m.version = "2.0.0";
  m.min_version = "1.0.0";
  m.cmdline = "console=ttyS0 quiet";
  m.compression = osu::Compression::Xz;
  m.image = {"rootfs.img.xz", 1073741824, kHexA};
  m.boot_files = {{"vmlinuz", 123, kHexB}, {"initrd.img", 4567, kHexA}};
  return m;
}

// A valid manifest with one line replaced (or removed when `with` is empty).
std::string With(const std::string& key_prefix, const std::string& with) {
  std::string yaml = osu::SerializeManifest(Sample());
  auto pos = yaml.find(key_prefix);
  REQUIRE(pos != std::string::npos);
  auto end = yaml.find('\n', pos);
  return yaml.substr(0, pos) + with + yaml.substr(end + (with.empty() ? 1 : 0));
}

std::string ErrorOf(const std::string& yaml) {
  auto m = osu::ParseManifest(yaml);
  REQUIRE_FALSE(m.ok());
  CHECK(m.error().kind() == osu::ErrorKind::Verification);
  return m.error().message();
}

}  // namespace

TEST_CASE("manifest serializes to the documented layout, deterministically") {
  const std::string yaml = osu::SerializeManifest(Sample());
  CHECK(yaml ==
        "format: 1\n"
        "compatible: \"eos-x86_64-kvm\"\n"
        "version: \"2.0.0\"\n"
        "min_version: \"1.0.0\"\n"
        "cmdline: \"console=ttyS0 quiet\"\n"
        "image: {name: \"rootfs.img.xz\", compression: xz, size: 1073741824, sha256: \"" +
            kHexA +
            "\"}\n"
            "boot_files:\n"
            "  - {name: \"vmlinuz\", size: 123, sha256: \"" +
            kHexB +
            "\"}\n"
            "  - {name: \"initrd.img\", size: 4567, sha256: \"" +
            kHexA + "\"}\n");
  CHECK(osu::SerializeManifest(Sample()) == yaml);
}

TEST_CASE("manifest round-trips through parse and serialize") {
  osu::Manifest in = Sample();
  in.cmdline = "root=PARTUUID=x \"quoted\" back\\slash tab\there ünïcode";
  in.image.size = UINT64_MAX;
  in.compression = osu::Compression::Zstd;
  auto out = osu::ParseManifest(osu::SerializeManifest(in));
  REQUIRE(out.ok());
  CHECK(out->format == 1);
  CHECK(out->compatible == in.compatible);
  CHECK(out->version == in.version);
  CHECK(out->min_version == in.min_version);
  CHECK(out->cmdline == in.cmdline);
  CHECK(out->compression == osu::Compression::Zstd);
  CHECK(out->image.name == in.image.name);
  CHECK(out->image.size == UINT64_MAX);
  CHECK(out->image.sha256 == in.image.sha256);
  REQUIRE(out->boot_files.size() == 2);
  CHECK(out->boot_files[1].name == "initrd.img");
  CHECK(out->boot_files[1].size == 4567);
  CHECK(osu::SerializeManifest(*out) == osu::SerializeManifest(in));
}

TEST_CASE("manifest format 4: an index whose frames have a window, never with a dictionary") {
  osu::Manifest in = Sample();
  in.compression = osu::Compression::Zstd;
  in.index = osu::FileEntry{"rootfs.img.zst.index", 24, kHexB};
  in.windowed = true;
  const std::string yaml = osu::SerializeManifest(in);
  CHECK(yaml.rfind("format: 4\n", 0) == 0);
  auto out = osu::ParseManifest(yaml);
  REQUIRE(out.ok());
  CHECK(out->format == 4);
  CHECK(out->windowed);
  CHECK_FALSE(out->referenced);
  REQUIRE(out->index.has_value());
  CHECK(out->index->name == "rootfs.img.zst.index");
  // Format 5: windowed, and its frames refer to earlier chunks too.
  in.referenced = true;
  auto five = osu::ParseManifest(osu::SerializeManifest(in));
  REQUIRE(five.ok());
  CHECK(five->format == 5);
  CHECK(five->windowed);
  CHECK(five->referenced);
  in.referenced = false;
  in.windowed = false;
  auto two = osu::ParseManifest(osu::SerializeManifest(in));
  REQUIRE(two.ok());
  CHECK(two->format == 2);
  CHECK_FALSE(two->windowed);
  CHECK(ErrorOf(yaml + "dictionary: {name: \"d\", size: 1, sha256: \"" + kHexA + "\"}\n") ==
        "manifest: dictionary needs format 3");
}

TEST_CASE("manifest: optional min_version is absent, never \"null\"") {
  osu::Manifest in = Sample();
  in.min_version.reset();
  const std::string yaml = osu::SerializeManifest(in);
  CHECK(yaml.find("min_version") == std::string::npos);
  auto out = osu::ParseManifest(yaml);
  REQUIRE(out.ok());
  CHECK_FALSE(out->min_version.has_value());

  auto null = osu::ParseManifest(With("min_version:", "min_version: ~"));
  REQUIRE(null.ok());
  CHECK_FALSE(null->min_version.has_value());
  auto empty = osu::ParseManifest(With("min_version:", "min_version:"));
  REQUIRE(empty.ok());
  CHECK_FALSE(empty->min_version.has_value());
}

TEST_CASE("manifest: hand-written block style YAML is accepted, hex is normalized") {
  auto m = osu::ParseManifest(
      "format: 1\ncompatible: rpi4\nversion: 3.1\ncmdline: ''\n"
      "image:\n  name: root.img\n  compression: none\n  size: 10\n  sha256: " +
      std::string(64, 'C') + "\nboot_files: []\n");
  REQUIRE(m.ok());
  CHECK(m->version == "3.1");
  CHECK(m->compression == osu::Compression::None);
  CHECK(m->image.sha256 == std::string(64, 'c'));
  CHECK(m->boot_files.empty());
}

TEST_CASE("manifest: every missing required key is named") {
  for (const std::string key : {"format", "compatible", "version", "cmdline", "image",
                                "boot_files"}) {
    std::string yaml = osu::SerializeManifest(Sample());
    if (key == "boot_files") {
      yaml = yaml.substr(0, yaml.find("boot_files:"));
    } else {
      yaml = With(key + ":", "");
    }
    CAPTURE(key);
    CHECK(ErrorOf(yaml) == "manifest: missing required key '" + key + "'");
  }
  CHECK(ErrorOf(With("image:", "image: {name: a, compression: xz, size: 1}")) ==
        "manifest: missing required key 'image.sha256'");
  CHECK(ErrorOf(With("image:", "image: {compression: xz, size: 1, sha256: " + kHexA + "}")) ==
        "manifest: missing required key 'image.name'");
  CHECK(ErrorOf(With("image:", "image: {name: a, size: 1, sha256: " + kHexA + "}")) ==
        "manifest: missing required key 'image.compression'");
  CHECK(ErrorOf(With("  - {name: \"vmlinuz\"", "  - {name: vmlinuz, sha256: " + kHexA + "}")) ==
        "manifest: missing required key 'boot_files[0].size'");
}

TEST_CASE("manifest: wrong types, values and formats are named") {
  CHECK(ErrorOf(With("format:", "format: 6")) ==
        "manifest: unsupported format 6 (this os-update reads formats 1 to 5)");
  CHECK(ErrorOf(With("format:", "format: 2")) == "manifest: formats 2 to 5 need an index");
  CHECK(ErrorOf(With("format:", "format: 5")) == "manifest: formats 2 to 5 need an index");
  CHECK(ErrorOf(With("format:", "format: one")) ==
        "manifest: format is not an unsigned integer: 'one'");
  CHECK(ErrorOf(With("version:", "version: [1, 2]")) == "manifest: version is not a string");
  CHECK(ErrorOf(With("image:", "image: rootfs.img")) == "manifest: image is not a mapping");
  const std::string yaml = osu::SerializeManifest(Sample());
  CHECK(ErrorOf(yaml.substr(0, yaml.find("boot_files:")) + "boot_files: {a: 1}\n") ==
        "manifest: boot_files is not a list");
  CHECK(ErrorOf(With("image:", "image: {name: a, compression: xz, size: -1, sha256: " + kHexA +
                                   "}")) == "manifest: image.size is not an unsigned integer: '-1'");
  CHECK(ErrorOf(With("image:", "image: {name: a, compression: xz, size: 99999999999999999999, "
                               "sha256: " + kHexA + "}"))
            .find("image.size is not an unsigned integer") != std::string::npos);
  CHECK(ErrorOf(With("image:", "image: {name: a, compression: xz, size: 1, sha256: abc}")) ==
        "manifest: image.sha256 is not 64 hex digits");
  CHECK(ErrorOf(With("image:", "image: {name: a, compression: xz, size: 1, sha256: " +
                                   std::string(63, 'a') + "g}")) ==
        "manifest: image.sha256 is not 64 hex digits");
  CHECK(ErrorOf(With("  - {name: \"vmlinuz\"",
                     "  - {name: vmlinuz, size: 1, sha256: " + kHexA + "0}")) ==
        "manifest: boot_files[0].sha256 is not 64 hex digits");
  std::string unknown = ErrorOf(With("image:", "image: {name: a, compression: lz4, size: 1, "
                                               "sha256: " + kHexA + "}"));
  CHECK(unknown.rfind("manifest: image.compression: ", 0) == 0);
  CHECK(unknown.find("lz4") != std::string::npos);
  CHECK(ErrorOf(With("cmdline:", "cmdline: x\nextra: 1")) == "manifest: unknown key 'extra'");
  CHECK(ErrorOf(With("cmdline:", "cmdline: x\ncmdline: y")) ==
        "manifest: duplicate key 'cmdline'");
  CHECK(ErrorOf("- a\n- b\n") == "manifest: not a YAML mapping");
  CHECK(ErrorOf("format: [1\n").rfind("manifest: yaml-cpp: error", 0) == 0);
}

TEST_CASE("manifest: names and values are parsed, not judged (content_rules judges them)") {
  auto m = osu::ParseManifest(With("  - {name: \"vmlinuz\"",
                                   "  - {name: \"../a\\x1b\", size: 1, sha256: " + kHexA + "}"));
  REQUIRE(m.ok());
  CHECK(m->boot_files[0].name == "../a\x1b");
  CHECK(osu::ParseManifest(With("compatible:", "compatible: ''")).ok());
}
