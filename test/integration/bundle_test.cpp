// Bundles end to end: made by os-update-bundle, read back by BundleReader, checked against
// tar, xz, zstd, gzip and openssl.
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

TEST_CASE("bundle: created, then read back member by member") {
  Fixture f;
  const std::string bundle = f.Create("b.bundle");
  CHECK_FALSE(osu::test::FileExists(bundle + ".tmp"));
  CHECK_FALSE(osu::test::FileExists(bundle + ".image.tmp"));

  // tar lists the members in the documented order.
  CHECK(MustRun("tar -tf " + bundle) ==
        "manifest.yaml\nmanifest.sig\nvmlinuz\ninitrd.img\nrootfs.img.xz\n");
  // openssl accepts our signature over the exact manifest bytes.
  MustRun("tar -xOf " + bundle + " manifest.yaml > " + f.dir / "m.yaml");
  MustRun("tar -xOf " + bundle + " manifest.sig > " + f.dir / "m.sig");
  MustRun("openssl pkeyutl -verify -pubin -inkey " + f.pub + " -rawin -in " + f.dir / "m.yaml" +
          " -sigfile " + f.dir / "m.sig");
  // The image member is a real xz stream of the root image.
  MustRun("tar -xOf " + bundle + " rootfs.img.xz | xz -dc | cmp - " + f.rootfs);

  auto fd = osu::Fd::Open(bundle, O_RDONLY);
  REQUIRE(fd.ok());
  auto source = osu::MakeFdReader(fd->Release(), true, bundle);
  auto b = osu::BundleReader::Open(*source, bundle, {f.other_pub, f.pub});
  INFO((b.ok() ? "" : b.error().message()));
  REQUIRE(b.ok());
  CHECK((*b)->key_used() == f.pub);
  CHECK((*b)->manifest_bytes() == ReadFile(f.dir / "m.yaml"));
  const osu::Manifest& m = (*b)->manifest();
  CHECK(m.compatible == "eos-x86_64-kvm");
  CHECK(m.version == "2.0.0");
  CHECK(m.min_version == "1.0.0");
  CHECK(m.cmdline == "console=ttyS0 quiet");
  CHECK(m.compression == osu::Compression::Xz);
  CHECK(m.image.name == "rootfs.img.xz");
  CHECK(m.image.size == 3u << 20);
  CHECK(m.image.sha256 == osu::test::Sha256OfFile(f.rootfs));

  for (const auto& path : {f.vmlinuz, f.initrd}) {
    auto member = (*b)->NextBootFile();
    REQUIRE(member.ok());
    REQUIRE(member->has_value());
    CHECK((*member)->entry->name == osu::BaseName(path));
    CHECK((*member)->entry->sha256 == osu::test::Sha256OfFile(path));
    CHECK(ReadAll(*(*member)->data) == ReadFile(path));
  }
  auto end = (*b)->NextBootFile();
  REQUIRE(end.ok());
  CHECK_FALSE(end->has_value());
  auto image = (*b)->Image();
  REQUIRE(image.ok());
  auto decoder = osu::MakeDecoder(m.compression, **image, 2);
  REQUIRE(decoder.ok());
  CHECK(osu::Sha256Hex(ReadAll(**decoder)) == m.image.sha256);
  CHECK((*b)->Finish().ok());
}

TEST_CASE("bundle: every compression verifies, and the image member decodes with real tools") {
  Fixture f;
  for (const auto& [compression, member, tool] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"xz", "rootfs.img.xz", "xz -dc"},
           {"zstd", "rootfs.img.zst", "zstd -dc"},
           {"gzip", "rootfs.img.gz", "gzip -dc"},
           {"none", "rootfs.img", "cat"}}) {
    CAPTURE(compression);
    // zstd's chunks with --chunk-window 0 (format 2): one plain zstd stream of frames.
    const std::string bundle =
        f.Create("b-" + compression, compression,
                 compression == "zstd" ? std::vector<std::string>{"--chunk-window", "0"}
                                       : std::vector<std::string>{});
    if (compression == "zstd") CHECK(ManifestOf(bundle).rfind("format: 2\n", 0) == 0);
    auto r = Verify(bundle, f.pub);
    INFO(r.err);
    CHECK(r.code == 0);
    CHECK(r.out.find("valid bundle") != std::string::npos);
    MustRun("tar -xOf " + bundle + " " + member + " | " + tool + " | cmp - " + f.rootfs);
  }
}

// The image member read back the way every reader of bundles does (install, verify, delta).
std::string DecodedImage(const std::string& bundle, const std::string& pub) {
  auto fd = osu::Fd::Open(bundle, O_RDONLY);
  REQUIRE(fd.ok());
  auto source = osu::MakeFdReader(fd->Release(), true, bundle);
  auto b = osu::BundleReader::Open(*source, bundle, {pub});
  INFO((b.ok() ? "" : b.error().message()));
  REQUIRE(b.ok());
  auto image = (*b)->Image();
  REQUIRE(image.ok());
  auto decoder = osu::MakeImageDecoder(**b, **image, 0);
  REQUIRE(decoder.ok());
  std::string out;
  std::vector<uint8_t> buf(100000);  // not a multiple of anything: reads cross chunk ends
  for (;;) {
    auto n = (*decoder)->Read(buf);
    INFO((n.ok() ? "" : n.error().message()));
    REQUIRE(n.ok());
    if (*n == 0) break;
    out.append(reinterpret_cast<const char*>(buf.data()), *n);
  }
  CHECK((*b)->Finish().ok());
  return out;
}

TEST_CASE("bundle: formats 4 and 5 (the default for zstd) decode frame by frame with their index") {
  osu::test::RequireTool("zstd");
  Fixture f;
  // Text-like, so that frames lean on the window: 3 MiB of numbered records.
  std::string text;
  for (unsigned n = 0; text.size() < (3u << 20); ++n)
    text += "record " + std::to_string(n) + " value " + std::to_string(n * 7919 % 10007) + "\n";
  WriteFile(f.rootfs, text);
  const std::string five = f.Create("b5", "zstd");
  const std::string four = f.Create("b4", "zstd", {"--chunk-refs", "0"});
  const std::string two = f.Create("b2", "zstd", {"--chunk-window", "0"});
  CHECK(ManifestOf(five).rfind("format: 5\n", 0) == 0);
  CHECK(ManifestOf(four).rfind("format: 4\n", 0) == 0);
  for (const auto& b : {five, four}) {
    auto r = Verify(b, f.pub);
    INFO(b << r.err);
    CHECK(r.code == 0);
    CHECK(DecodedImage(b, f.pub) == text);
  }
  CHECK(DecodedImage(two, f.pub) == text);
  // The frames need the image before them: no longer one plain zstd stream (what the format
  // number tells older devices), and smaller than independent frames.
  CHECK(osu::test::Run("tar -xOf " + four + " rootfs.img.zst | zstd -dc >/dev/null").exit_code != 0);
  CHECK(osu::test::Run("tar -xOf " + two + " rootfs.img.zst | zstd -dc | cmp -s - " + f.rootfs).exit_code == 0);
  CHECK(ReadFile(four).size() < ReadFile(two).size());
  // --dictionary-size needs --chunk-window 0: the two do not combine.
  auto both = RunBundle({"create", "--image", f.rootfs, "--compression", "zstd", "--compatible",
                         "x", "--version", "1", "--unsigned", "--output", f.dir / "b3",
                         "--dictionary-size", "4096"});
  CHECK(both.code == 1);
  CHECK_THAT(both.err, Catch::Contains("--dictionary-size needs --chunk-window 0"));
  CHECK_FALSE(osu::test::FileExists(f.dir / "b3"));
  // References beside no window: said, not silently dropped (--chunk-window 0 alone is format 2).
  auto refs = RunBundle({"create", "--image", f.rootfs, "--compression", "zstd", "--compatible",
                         "x", "--version", "1", "--unsigned", "--output", f.dir / "b6",
                         "--chunk-window", "0", "--chunk-refs", "1"});
  CHECK(refs.code == 1);
  CHECK_THAT(refs.err, Catch::Contains("--chunk-refs needs a --chunk-window"));
  CHECK_FALSE(osu::test::FileExists(f.dir / "b6"));
}

TEST_CASE("bundle: signed with plain openssl (create --unsigned, manifest, sign --signature)") {
  Fixture f;
  const std::string bundle = f.dir / "unsigned.bundle", signed_bundle = f.dir / "signed.bundle";
  auto args = f.CreateArgs(bundle, "zstd");
  args.push_back("--unsigned");
  REQUIRE(RunBundle(args).code == 0);
  RequireRefused(Verify(bundle, f.pub), "is not signed");
  auto info = RunBundle({"info", bundle});
  CHECK(info.code == 0);
  CHECK(info.out.find("signature:   absent") != std::string::npos);

  auto manifest = RunBundle({"manifest", bundle});
  REQUIRE(manifest.code == 0);
  CHECK(manifest.out == ManifestOf(bundle));
  WriteFile(f.dir / "m.yaml", manifest.out);
  MustRun("openssl pkeyutl -sign -rawin -inkey " + f.key + " -in " + f.dir / "m.yaml" +
          " -out " + f.dir / "m.sig");
  auto sign = RunBundle({"sign", bundle, "--signature", f.dir / "m.sig", "--output", signed_bundle});
  INFO(sign.err);
  REQUIRE(sign.code == 0);
  CHECK(Verify(signed_bundle, f.pub).code == 0);
  CHECK(MustRun("tar -tf " + signed_bundle) ==
        "manifest.yaml\nmanifest.sig\nrootfs.img.zst.index\nvmlinuz\ninitrd.img\nrootfs.img.zst\n");
  RequireRefused(Verify(signed_bundle, f.other_pub), "does not match");

  // An EC key, signed the `openssl dgst` way, verifies as well.
  MustRun("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + f.dir / "ec.pem");
  MustRun("openssl pkey -in " + f.dir / "ec.pem" + " -pubout -out " + f.dir / "ec.pub");
  MustRun("openssl dgst -sha256 -sign " + f.dir / "ec.pem" + " -out " + f.dir / "ec.sig " +
          f.dir / "m.yaml");
  REQUIRE(RunBundle({"sign", bundle, "--signature", f.dir / "ec.sig", "--output",
                     f.dir / "ec.bundle"}).code == 0);
  auto ec = RunBundle({"verify", f.dir / "ec.bundle", "--key", f.pub, "--key", f.dir / "ec.pub"});
  CHECK(ec.code == 0);
  CHECK(ec.out.find("signed with '" + f.dir / "ec.pub" + "'") != std::string::npos);

  // Signing in place with a key works too, and the JSON info says it is signed.
  REQUIRE(RunBundle({"sign", bundle, "--key", f.key}).code == 0);
  CHECK(Verify(bundle, f.pub).code == 0);
  auto json = RunBundle({"info", bundle, "--json"});
  CHECK(json.out.find("\"signed\":true") != std::string::npos);
  CHECK(json.out.find("\"min_version\":\"1.0.0\"") != std::string::npos);
}

TEST_CASE("bundle: keygen makes a pair that openssl and verify accept") {
  osu::test::TempDir dir;
  auto r = RunBundle({"keygen", "--private", dir / "k.pem", "--public", dir / "k.pub"});
  REQUIRE(r.code == 0);
  CHECK(MustRun("openssl pkey -in " + dir / "k.pem" + " -noout -text").find("ED25519") !=
        std::string::npos);
  WriteFile(dir / "img", "root");
  REQUIRE(RunBundle({"create", "--image", dir / "img", "--compression", "none", "--compatible",
                     "c", "--version", "1", "--key", dir / "k.pem", "--output", dir / "b"})
              .code == 0);
  CHECK(Verify(dir / "b", dir / "k.pub").code == 0);
}

TEST_CASE("bundle CLI: usage errors and help") {
  Fixture f;
  auto help = RunBundle({"--help"});
  CHECK(help.code == 0);
  for (const char* word : {"create", "info", "verify", "manifest", "sign", "keygen", "openssl"}) {
    CHECK(help.out.find(word) != std::string::npos);
  }
  CHECK(RunBundle({"verify", "--help"}).out.find("Example: os-update-bundle verify") !=
        std::string::npos);
  CHECK(RunBundle({}).code == osu::cli::kExitUsage);
  RequireRefused(RunBundle(f.CreateArgs(f.dir / "b", "xz")), "either --key", 1);
  RequireRefused(RunBundle(f.CreateArgs(f.dir / "b", "lz4")), "--compression", 1);
  auto missing = f.CreateArgs(f.dir / "b", "xz");
  missing[2] = f.dir / "nope.img";
  missing.insert(missing.end(), {"--key", f.key});
  RequireRefused(RunBundle(missing), "nope.img", 1);
  CHECK_FALSE(osu::test::FileExists(f.dir / "b"));
  auto bad_key = f.CreateArgs(f.dir / "b", "xz");
  bad_key.insert(bad_key.end(), {"--key", f.dir / "missing.pem"});
  RequireRefused(RunBundle(bad_key), "missing.pem", 1);
  WriteFile(f.dir / ".hidden", "x");
  auto hidden = f.CreateArgs(f.dir / "b", "xz");
  hidden.insert(hidden.end(), {"--boot-file", f.dir / ".hidden", "--key", f.key});
  RequireRefused(RunBundle(hidden), "starts with '.'", 1);
  CHECK_FALSE(osu::test::FileExists(f.dir / "b"));
  RequireRefused(RunBundle({"verify", f.dir / "absent.bundle", "--key", f.pub}), "absent.bundle",
                 osu::cli::kExitSource);
  RequireRefused(RunBundle({"verify", f.Create("b"), "--key", f.dir / "no-key.pem"}),
                 "no-key.pem", 1);
}

// A member over 8 GiB cannot be said in a ustar header; pax carries it. Only the headers are
// written for real: the data source stops after 20 KiB, by then they are on disk.
TEST_CASE("tar: a member over 8 GiB gets a header that GNU tar reads") {
  osu::test::TempDir dir;
  auto tar = osu::TarWriter::Create(dir / "big.tar");
  REQUIRE(tar.ok());
  FailingReader zeros(std::string(20480, '\0'), 20480);
  const uint64_t size = (8ull << 30) + 1;
  auto r = (*tar)->Add("rootfs.img", size, zeros);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().kind() == osu::ErrorKind::Source);  // the source's error, not a tar one
  tar->reset();
  auto listing = osu::test::Run("tar -tvf " + dir / "big.tar");
  INFO(listing.output);
  CHECK(listing.output.find(std::to_string(size) + " 1970-01-01 00:00 rootfs.img") !=
        std::string::npos);
}
