// Damaged and forged bundles: each refused with exit code 2 (or the source's own error kind)
// and a one-line message naming the bundle, the member and what is wrong.
#include <catch2/catch.hpp>

#include "bundle/bundle.hpp"
#include "bundle/tar.hpp"
#include "common/fd.hpp"
#include "crypto/sha256.hpp"
#include "integration/bundle_fixture.hpp"
#include "support/support.hpp"

using namespace osu::test::bundle;  // NOLINT: test helpers
using osu::test::MustRun;
using osu::test::ReadFile;
using osu::test::RunBundle;
using osu::test::WriteFile;

TEST_CASE("bundle: not a tar, manifest missing or not first, unsigned, wrong key, edited") {
  Fixture f;
  const std::string good = f.Create("good.bundle");
  const std::string manifest = ManifestOf(good);

  WriteFile(f.dir / "text", "this is not a tar archive, it is just some text\n");
  RequireRefused(Verify(f.dir / "text", f.pub), "'" + f.dir / "text" +
                                                    "' is not a bundle: not a tar archive");
  MustRun("xz -k -c " + good + " > " + f.dir / "b.xz");
  RequireRefused(Verify(f.dir / "b.xz", f.pub), "is not a bundle: not a tar archive");

  MustRun("cd " + f.dir.path() + " && tar -cf other.tar vmlinuz");
  RequireRefused(Verify(f.dir / "other.tar", f.pub),
                 "is not a bundle: its first member is 'vmlinuz', expected 'manifest.yaml'");
  {
    auto w = osu::BundleWriter::Create(f.dir / "swapped");
    REQUIRE(w.ok());
    REQUIRE((*w)->AddBytes("manifest.sig", "x").ok());
    REQUIRE((*w)->AddBytes("manifest.yaml", manifest).ok());
    REQUIRE((*w)->Close().ok());
  }
  RequireRefused(Verify(f.dir / "swapped", f.pub), "its first member is 'manifest.sig'");

  // No manifest.sig at all: verify refuses, info still shows what is inside.
  {
    auto w = osu::BundleWriter::Create(f.dir / "nosig");
    REQUIRE(w.ok());
    REQUIRE((*w)->AddBytes("manifest.yaml", manifest).ok());
    REQUIRE((*w)->AddFile("vmlinuz", f.vmlinuz).ok());
    REQUIRE((*w)->Close().ok());
  }
  RequireRefused(Verify(f.dir / "nosig", f.pub), "is not signed");
  auto info = RunBundle({"info", f.dir / "nosig"});
  CHECK(info.code == 0);
  CHECK(info.out.find("signature:   absent") != std::string::npos);
  CHECK(info.out.find("version:     2.0.0") != std::string::npos);

  RequireRefused(Verify(good, f.other_pub),
                 "signature of manifest does not match the configured key");

  // One changed character in the manifest, the original signature kept.
  {
    auto w = osu::BundleWriter::Create(f.dir / "edited");
    REQUIRE(w.ok());
    REQUIRE((*w)->AddBytes("manifest.yaml", Replace(manifest, "2.0.0", "2.0.1")).ok());
    REQUIRE((*w)->AddBytes("manifest.sig", MustRun("tar -xOf " + good + " manifest.sig")).ok());
    REQUIRE((*w)->Close().ok());
  }
  RequireRefused(Verify(f.dir / "edited", f.pub), "signature of manifest does not match");
  // A huge "manifest" is refused from its header, before it is read.
  {
    auto w = osu::BundleWriter::Create(f.dir / "huge");
    REQUIRE(w.ok());
    REQUIRE((*w)->AddBytes("manifest.yaml", std::string(2u << 20, '#')).ok());
    REQUIRE((*w)->Close().ok());
  }
  RequireRefused(Verify(f.dir / "huge", f.pub), "manifest.yaml is 2097152 bytes, more than the limit");
}

TEST_CASE("bundle: a flipped byte in a boot file or the image is caught") {
  Fixture f;
  for (const std::string compression : {"xz", "none"}) {
    CAPTURE(compression);
    const std::string good = f.Create("good-" + compression, compression);
    const std::string bytes = ReadFile(good);
    const std::string kernel = ReadFile(f.vmlinuz);
    auto flip = [&](size_t at, const std::string& name) {
      std::string bad = bytes;
      bad[at] = static_cast<char>(bad[at] ^ 0x01);
      WriteFile(f.dir / name, bad);
      return f.dir / name;
    };
    const size_t kernel_at = bytes.find(kernel);
    REQUIRE(kernel_at != std::string::npos);
    auto r = Verify(flip(kernel_at + 5000, "bad-kernel"), f.pub);
    std::string expected = "boot file 'vmlinuz': sha256 mismatch (expected " +
                           osu::test::Sha256OfFile(f.vmlinuz) + ", got ";
    RequireRefused(r, expected);

    // The image starts after the initrd's data (padded to 512).
    const size_t image_at = bytes.find(ReadFile(f.initrd)) + 1234 + (512 - 1234 % 512) + 512;
    r = Verify(flip(image_at + 100000, "bad-image"), f.pub);
    if (compression == "none") {
      RequireRefused(r, "image 'rootfs.img': sha256 mismatch (expected " +
                            osu::test::Sha256OfFile(f.rootfs));
    } else {
      RequireRefused(r, "xz");  // the decoder's own check fires first
    }
  }
}

TEST_CASE("bundle: truncated at any point is a verification error naming the cut") {
  Fixture f;
  const std::string good = f.Create("good.bundle");
  const std::string bytes = ReadFile(good);
  // Inside the manifest, inside the signature, inside a boot file, after the boot files,
  // inside the image, just before its end.
  const size_t image_header = bytes.find(ReadFile(f.initrd)) + 1536;
  const size_t image_size = MustRun("tar -xOf " + good + " rootfs.img.xz").size();
  const std::vector<std::pair<size_t, std::string>> cuts{
      {700, "it ends inside member 'manifest.yaml'"},
      {1560, "it ends inside member 'manifest.sig'"},
      {5000, "it ends inside member 'vmlinuz'"},
      {image_header, "image 'rootfs.img.xz' is missing"},
      {image_header + 300, "it ends inside a member header"},
      {image_header + 512 + 50000, "it ends inside member 'rootfs.img.xz'"},
      {image_header + 512 + image_size - 10, "it ends inside member 'rootfs.img.xz'"}};
  for (const auto& [cut, why] : cuts) {
    CAPTURE(cut);
    WriteFile(f.dir / "cut", bytes.substr(0, cut));
    RequireRefused(Verify(f.dir / "cut", f.pub), "'" + f.dir / "cut" + "' is truncated: " + why);
  }
}

TEST_CASE("bundle: a failing source keeps its own error kind") {
  Fixture f;
  const std::string bytes = ReadFile(f.Create("good.bundle"));
  for (size_t limit : {size_t{0}, size_t{600}, size_t{3000}, size_t{200000}}) {
    CAPTURE(limit);
    FailingReader source(bytes, limit);
    auto b = osu::BundleReader::Open(source, "http://x/b", {f.pub});
    osu::Result r;
    if (!b) {
      r = b.error();
    } else {
      for (;;) {
        auto m = (*b)->NextBootFile();
        if (!m) { r = m.error(); break; }
        if (!*m) break;
        std::vector<uint8_t> buf(4096);
        while (true) {
          auto n = (*m)->data->Read(buf);
          if (!n) { r = n.error(); break; }
          if (*n == 0) break;
        }
        if (!r) break;
      }
      if (r) {
        auto image = (*b)->Image();
        if (!image) r = image.error();
        else {
          std::vector<uint8_t> buf(4096);
          while (true) {
            auto n = (*image)->Read(buf);
            if (!n) { r = n.error(); break; }
            if (*n == 0) break;
          }
        }
      }
    }
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().kind() == osu::ErrorKind::Source);
    CHECK(r.error().message() == "Connection reset while reading 'http://x/b'");
  }
}

TEST_CASE("bundle: forged bundles signed with the real key are still refused") {
  Fixture f;
  const std::string good = f.Create("good.bundle");
  const std::string kernel = ReadFile(f.vmlinuz), initrd = ReadFile(f.initrd);
  const std::string image = MustRun("tar -xOf " + good + " rootfs.img.xz");
  auto parsed = osu::ParseManifest(ManifestOf(good));
  REQUIRE(parsed.ok());
  const osu::Manifest base = *parsed;
  const std::string forged = f.dir / "forged";
  auto members = [&](std::vector<std::pair<std::string, std::string>> extra = {}) {
    std::vector<std::pair<std::string, std::string>> all{
        {"vmlinuz", kernel}, {"initrd.img", initrd}, {"rootfs.img.xz", image}};
    all.insert(all.end(), extra.begin(), extra.end());
    return all;
  };
  const std::string n = std::to_string(base.image.size);

  SECTION("the same members re-signed verify (the forging itself is sound)") {
    Forge(forged, osu::SerializeManifest(base), f.key, members());
    CHECK(Verify(forged, f.pub).code == 0);
  }
  SECTION("unknown compression") {
    Forge(forged, Replace(osu::SerializeManifest(base), "compression: xz", "compression: lz4"),
          f.key, members());
    RequireRefused(Verify(forged, f.pub), "manifest: image.compression: ");
  }
  SECTION("boot file names with '/' or '..'") {
    for (const std::string name : {"../vmlinuz", "boot/vmlinuz", ".."}) {
      CAPTURE(name);
      osu::Manifest m = base;
      m.boot_files[0].name = name;
      Forge(forged, osu::SerializeManifest(m), f.key,
            {{name, kernel}, {"initrd.img", initrd}, {"rootfs.img.xz", image}});
      RequireRefused(Verify(forged, f.pub), "manifest: boot_files[0].name '" + name + "'");
    }
  }
  SECTION("image longer than the manifest says: refused as soon as it exceeds") {
    osu::Manifest m = base;
    m.image.size -= 1;
    Forge(forged, osu::SerializeManifest(m), f.key, members());
    RequireRefused(Verify(forged, f.pub),
                   "image 'rootfs.img.xz': size mismatch (expected " +
                       std::to_string(m.image.size) + " bytes, got more)");
  }
  SECTION("image shorter than the manifest says") {
    osu::Manifest m = base;
    m.image.size += 1;
    Forge(forged, osu::SerializeManifest(m), f.key, members());
    RequireRefused(Verify(forged, f.pub), "image 'rootfs.img.xz': size mismatch (expected " +
                                              std::to_string(m.image.size) + " bytes, got " + n +
                                              ")");
  }
  SECTION("uncompressed image of the wrong size: refused from the tar header") {
    osu::Manifest m = base;
    m.compression = osu::Compression::None;
    m.image.name = "rootfs.img";
    m.image.size += 4096;
    Forge(forged, osu::SerializeManifest(m), f.key,
          {{"vmlinuz", kernel}, {"initrd.img", initrd}, {"rootfs.img", ReadFile(f.rootfs)}});
    RequireRefused(Verify(forged, f.pub), "image 'rootfs.img': size mismatch (expected " +
                                              std::to_string(m.image.size) + " bytes, got " + n +
                                              ")");
  }
  SECTION("boot file bigger than the manifest says: refused from the tar header") {
    osu::Manifest m = base;
    m.boot_files[0].size = 100;
    Forge(forged, osu::SerializeManifest(m), f.key, members());
    RequireRefused(Verify(forged, f.pub),
                   "boot file 'vmlinuz': size mismatch (expected 100 bytes, got 70000)");
  }
  SECTION("boot file missing, out of order, or extra members") {
    Forge(forged, osu::SerializeManifest(base), f.key,
          {{"initrd.img", initrd}, {"rootfs.img.xz", image}});
    RequireRefused(Verify(forged, f.pub), "expected boot file 'vmlinuz', found member 'initrd.img'");
    Forge(forged, osu::SerializeManifest(base), f.key,
          {{"initrd.img", initrd}, {"vmlinuz", kernel}, {"rootfs.img.xz", image}});
    RequireRefused(Verify(forged, f.pub), "expected boot file 'vmlinuz', found member 'initrd.img'");
    Forge(forged, osu::SerializeManifest(base), f.key, {{"vmlinuz", kernel}});
    RequireRefused(Verify(forged, f.pub), "is truncated: boot file 'initrd.img' is missing");
    Forge(forged, osu::SerializeManifest(base), f.key, members({{"extra", "x"}}));
    RequireRefused(Verify(forged, f.pub), "unexpected member 'extra' after the image");
    Forge(forged, osu::SerializeManifest(base), f.key,
          {{"vmlinuz", kernel}, {"initrd.img", initrd}, {"other.img", image}});
    RequireRefused(Verify(forged, f.pub), "expected image 'rootfs.img.xz', found member 'other.img'");
  }
}
