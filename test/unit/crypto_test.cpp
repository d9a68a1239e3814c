// SHA-256 against published vectors and sha256sum; signatures against the openssl CLI, both
// directions, for every key type a bundle may be signed with.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <string>

#include "common/fd.hpp"
#include "crypto/sha256.hpp"
#include "crypto/signature.hpp"
#include "support/support.hpp"

using namespace osu;
using osu::test::MustRun;
using osu::test::Run;
using osu::test::TempDir;

namespace {

std::string Q(const std::string& s) { return "'" + s + "'"; }

// Deterministic bytes of every value, so hashing sees more than ASCII.
std::string PseudoRandom(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  for (auto& c : s) {
    seed = seed * 1664525u + 1013904223u;
    c = static_cast<char>(seed >> 24);
  }
  return s;
}

struct KeyType {
  const char* name;
  const char* genpkey_args;
  bool pure;  // EdDSA: signs the message itself (pkeyutl -rawin), else SHA-256 (dgst)
};

const KeyType kKeyTypes[] = {
    {"ed25519", "-algorithm ED25519", true},
    {"ec-p256", "-algorithm EC -pkeyopt ec_paramgen_curve:P-256", false},
    {"rsa-2048", "-algorithm RSA -pkeyopt rsa_keygen_bits:2048", false},
};

// Makes NAME.pem (private) and NAME.pub.pem in dir with the openssl CLI.
void MakeKey(const TempDir& dir, const std::string& name, const KeyType& type) {
  MustRun(std::string("openssl genpkey ") + type.genpkey_args + " -out " + Q(dir / (name + ".pem")));
  MustRun("openssl pkey -in " + Q(dir / (name + ".pem")) + " -pubout -out " +
          Q(dir / (name + ".pub.pem")));
}

std::string OpensslSign(const KeyType& type, const std::string& key, const std::string& in,
                        const std::string& sig) {
  return type.pure ? "openssl pkeyutl -sign -rawin -inkey " + Q(key) + " -in " + Q(in) +
                         " -out " + Q(sig)
                   : "openssl dgst -sha256 -sign " + Q(key) + " -out " + Q(sig) + " " + Q(in);
}

std::string OpensslVerify(const KeyType& type, const std::string& pub, const std::string& in,
                          const std::string& sig) {
  return type.pure ? "openssl pkeyutl -verify -rawin -pubin -inkey " + Q(pub) + " -in " + Q(in) +
                         " -sigfile " + Q(sig)
                   : "openssl dgst -sha256 -verify " + Q(pub) + " -signature " + Q(sig) + " " +
                         Q(in);
}

const std::string kManifest =
    "format: 1\ncompatible: eos-x86_64-kvm\nversion: 2024.06.1\nimage:\n  name: root.img.xz\n";

}  // namespace

TEST_CASE("sha256 matches the published test vectors", "[crypto][sha256]") {
  CHECK(Sha256Hex(std::string()) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(Sha256Hex(std::string("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256Hex(std::string("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  Sha256 million;
  const std::string thousand(1000, 'a');
  for (int i = 0; i < 1000; ++i) million.Update(thousand);
  CHECK(million.HexDigest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 of data streamed in uneven pieces equals sha256sum of the file",
          "[crypto][sha256]") {
  TempDir dir;
  const std::string data = PseudoRandom((3u << 20) + 12345, 7);
  osu::test::WriteFile(dir / "image", data);
  Sha256 h;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t pos = 0, step = 1;
  while (pos < data.size()) {
    size_t n = std::min(step, data.size() - pos);
    h.Update(std::span<const uint8_t>(p + pos, n));
    pos += n;
    step = step * 3 + 1;  // 1, 4, 13, ... crosses every block boundary pattern
  }
  const std::string expected = osu::test::Sha256OfFile(dir / "image");
  CHECK(h.HexDigest() == expected);
  CHECK(Sha256Hex(std::span<const uint8_t>(p, data.size())) == expected);
}

TEST_CASE("signatures interoperate with the openssl CLI", "[crypto][signature]") {
  osu::test::RequireTool("openssl");
  for (const auto& type : kKeyTypes) {
    DYNAMIC_SECTION(type.name) {
      TempDir dir;
      MakeKey(dir, "key", type);
      const std::string manifest = dir / "manifest.yaml";
      osu::test::WriteFile(manifest, kManifest);

      // Ours, checked by openssl.
      auto sig = Sign(kManifest, dir / "key.pem");
      REQUIRE(sig.ok());
      osu::test::WriteFile(dir / "ours.sig", *sig);
      MustRun(OpensslVerify(type, dir / "key.pub.pem", manifest, dir / "ours.sig"));

      // openssl's, checked by us.
      MustRun(OpensslSign(type, dir / "key.pem", manifest, dir / "theirs.sig"));
      auto matched = VerifyWithAnyKey(kManifest, osu::test::ReadFile(dir / "theirs.sig"),
                                      {dir / "key.pub.pem"});
      INFO((matched.ok() ? std::string() : matched.error().message()));
      REQUIRE(matched.ok());
      CHECK(*matched == dir / "key.pub.pem");

      // One changed byte of the manifest: rejected, by openssl and by us.
      std::string tampered = kManifest;
      tampered[tampered.find("2024")] = '3';
      osu::test::WriteFile(dir / "tampered.yaml", tampered);
      CHECK(Run(OpensslVerify(type, dir / "key.pub.pem", dir / "tampered.yaml", dir / "ours.sig"))
                .exit_code != 0);
      auto bad = VerifyWithAnyKey(tampered, *sig, {dir / "key.pub.pem"});
      REQUIRE_FALSE(bad.ok());
      CHECK(bad.error().kind() == ErrorKind::Verification);
    }
  }
}

TEST_CASE("a signature is matched against every configured key, of any type",
          "[crypto][signature]") {
  TempDir dir;
  MakeKey(dir, "ed", kKeyTypes[0]);
  MakeKey(dir, "ec", kKeyTypes[1]);
  MakeKey(dir, "other", kKeyTypes[0]);
  auto sig = Sign(kManifest, dir / "ec.pem");
  REQUIRE(sig.ok());

  auto matched = VerifyWithAnyKey(kManifest, *sig, {dir / "ed.pub.pem", dir / "ec.pub.pem"});
  REQUIRE(matched.ok());
  CHECK(*matched == dir / "ec.pub.pem");

  auto none = VerifyWithAnyKey(kManifest, *sig, {dir / "ed.pub.pem", dir / "other.pub.pem"});
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().kind() == ErrorKind::Verification);
  CHECK(none.error().message() ==
        "signature of manifest does not match any of the 2 configured keys (" +
            (dir / "ed.pub.pem") + ", " + (dir / "other.pub.pem") + ")");

  auto garbage = VerifyWithAnyKey(kManifest, "not a signature", {dir / "ed.pub.pem"});
  REQUIRE_FALSE(garbage.ok());
  CHECK(garbage.error().kind() == ErrorKind::Verification);
}

TEST_CASE("unreadable or malformed keys are configuration errors naming the file",
          "[crypto][signature]") {
  TempDir dir;
  MakeKey(dir, "ed", kKeyTypes[0]);
  osu::test::WriteFile(dir / "junk.pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n");
  auto sig = Sign(kManifest, dir / "ed.pem");
  REQUIRE(sig.ok());

  for (const std::string& path : {dir / "missing.pem", dir / "junk.pem", dir / "ed.pem"}) {
    DYNAMIC_SECTION("public key " << osu::BaseName(path)) {
      // Even when another configured key matches: a broken key file is broken config.
      auto r = VerifyWithAnyKey(kManifest, *sig, {dir / "ed.pub.pem", path});
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().kind() == ErrorKind::Usage);
      CHECK(r.error().message().find(path) != std::string::npos);
    }
  }
  for (const std::string& path : {dir / "missing.pem", dir / "junk.pem", dir / "ed.pub.pem"}) {
    DYNAMIC_SECTION("private key " << osu::BaseName(path)) {
      auto r = Sign(kManifest, path);
      REQUIRE_FALSE(r.ok());
      CHECK(r.error().kind() == ErrorKind::Usage);
      CHECK(r.error().message().find(path) != std::string::npos);
    }
  }
  auto none = VerifyWithAnyKey(kManifest, *sig, {});
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().kind() == ErrorKind::Usage);
}

TEST_CASE("generated key pairs are ed25519 PEM that openssl understands", "[crypto][signature]") {
  TempDir dir;
  const std::string priv = dir / "signing.pem", pub = dir / "signing.pub.pem";
  auto r = GenerateKeyPair(priv, pub);
  INFO((r.ok() ? std::string() : r.error().message()));
  REQUIRE(r.ok());
  CHECK(MustRun("openssl pkey -in " + Q(priv) + " -noout -text").find("ED25519") !=
        std::string::npos);
  struct stat st {};
  REQUIRE(::stat(priv.c_str(), &st) == 0);
  CHECK((st.st_mode & 077) == 0);  // a signing key is nobody else's business

  osu::test::WriteFile(dir / "m", kManifest);
  MustRun(OpensslSign(kKeyTypes[0], priv, dir / "m", dir / "m.sig"));
  auto matched = VerifyWithAnyKey(kManifest, osu::test::ReadFile(dir / "m.sig"), {pub});
  CHECK(matched.ok());

  // A second run must not destroy the key every device trusts.
  const std::string before = osu::test::ReadFile(priv);
  auto again = GenerateKeyPair(priv, pub);
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind() == ErrorKind::Usage);
  CHECK(osu::test::ReadFile(priv) == before);
}
